//! Running another program: found before fork, `execve`d in the daemon or spawned as
//! its child, and waited for.
//!
//! The pieces a service starter or supervisor needs on top of the nine stages (the
//! `pandaemonium` tool is built on them): [`MainArgs`] (a C `main`'s arguments, for
//! `#![no_main]` programs), [`Program`] (a path searched the way `execvp` does, but
//! before fork, because `execvp` may allocate), [`Program::exec`] and
//! [`Program::spawn`] (fork and exec that reports a failed `execve`), and [`Exit`]
//! (how a child ended).
//!
//! ```no_run
//! use pandaemonium::{Exit, MainArgs, Program, PATH_CAPACITY};
//!
//! # #[allow(dead_code)]
//! # fn f(args: MainArgs) -> Result<(), pandaemonium::Errno> {
//! // In `main(argc, argv, envp)`, with `args` from `MainArgs::from_raw`:
//! // run `argv[1..]` as a child and wait for it.
//! let (Some(name), Some(argv)) = (args.get(1), args.tail(1)) else { return Ok(()) };
//! let mut buf = [0u8; PATH_CAPACITY];
//! let program = Program::find(name, argv, args.envp(), &mut buf)?;
//! let pid = program.spawn(None, None)?;
//! let exit: Exit = Exit::wait(pid)?;
//! # let _ = exit; Ok(()) }
//! ```
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, CStr};

use crate::{sys, Errno};

/// Longest path [`Program::find`] builds (Linux's `PATH_MAX`).
pub const PATH_CAPACITY: usize = 4096;

/// `PATH` when the environment has none (glibc's and musl's `execvp` default, plus the
/// sbin directories a root service needs).
const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A null-terminated argument vector for `execve`: the process's own `argv` or a tail
/// of it.
#[derive(Clone, Copy, Debug)]
pub struct Argv(*const *const c_char);

/// A null-terminated environment for `execve`.
#[derive(Clone, Copy, Debug)]
pub struct Envp(*const *const c_char);

/// A C `main`'s arguments and environment, as the C runtime passed them.
#[derive(Clone, Copy, Debug)]
pub struct MainArgs {
    argv: &'static [*const c_char],
    envp: Envp,
}

/// The empty environment, for a null `envp`.
static NO_ENV: [usize; 1] = [0];

impl MainArgs {
    /// Wraps `main(argc, argv, envp)`'s arguments.
    ///
    /// # Safety
    ///
    /// `argv` must hold `argc` valid NUL-terminated strings followed by a null pointer,
    /// `envp` must be null or a null-terminated array of such strings, and all of it
    /// must live, unchanged, for the rest of the process (as the C runtime guarantees
    /// for `main`'s arguments, as long as nothing calls `setenv`).
    pub unsafe fn from_raw(
        argc: c_int,
        argv: *const *const c_char,
        envp: *const *const c_char,
    ) -> MainArgs {
        let slice: &'static [*const c_char] = if argv.is_null() || argc <= 0 {
            &[]
        } else {
            // SAFETY: the caller guarantees argc valid entries that live for ever.
            unsafe { core::slice::from_raw_parts(argv, argc as usize) }
        };
        let envp = if envp.is_null() {
            NO_ENV.as_ptr().cast()
        } else {
            envp
        };
        MainArgs {
            argv: slice,
            envp: Envp(envp),
        }
    }

    /// How many arguments there are (`argc`).
    pub fn len(&self) -> usize {
        self.argv.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.argv.is_empty()
    }

    /// Argument `i`.
    pub fn get(&self, i: usize) -> Option<&'static CStr> {
        let ptr = *self.argv.get(i)?;
        // SAFETY: `from_raw`'s contract: a valid NUL-terminated string living for ever
        // (argv holds no null pointer before argc).
        (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) })
    }

    /// `argv[from..]` as an argument vector (`None` when `from` is past the end).
    pub fn tail(&self, from: usize) -> Option<Argv> {
        // SAFETY: from < argc, so the pointer stays inside the C runtime's argv array,
        // whose terminating null ends the tail too.
        (from < self.argv.len()).then(|| Argv(unsafe { self.argv.as_ptr().add(from) }))
    }

    /// The environment.
    pub fn envp(&self) -> Envp {
        self.envp
    }
}

extern "C" {
    /// The process's environment (POSIX): null, or a null-terminated array of
    /// NUL-terminated strings.
    static environ: *const *const c_char;
}

impl Envp {
    /// The process's own environment, read in place (`environ`).
    pub(crate) fn current() -> Envp {
        // SAFETY: reading the C library's pointer; it is null or valid, and the crate
        // changes the environment only while single-threaded, before fork.
        let env = unsafe { environ };
        if env.is_null() {
            Envp(NO_ENV.as_ptr().cast())
        } else {
            Envp(env)
        }
    }

    /// The value of the variable `name` (`PATH`, not `PATH=`).
    // Out of line: `Program::find` and the crate's `getenv` share one copy.
    #[inline(never)]
    pub fn get(&self, name: &[u8]) -> Option<&'static CStr> {
        let mut at = self.0;
        loop {
            // SAFETY: `MainArgs::from_raw`'s contract: a null-terminated array of
            // NUL-terminated strings living for ever.
            let entry = unsafe { *at };
            if entry.is_null() {
                return None;
            }
            // One pass over `name=`, byte by byte, never past the entry's NUL; a name
            // with a NUL or a `=` matches nothing (as musl's getenv).
            let mut i = 0;
            loop {
                // SAFETY: bytes 0..i of the entry matched `name`, none of them NUL, so
                // byte i is still inside the NUL-terminated entry.
                let b = unsafe { *entry.add(i) } as u8;
                match name.get(i) {
                    Some(&n) if n == b && b != 0 && b != b'=' => i += 1,
                    // SAFETY: `name=` is inside the entry, so its value's first byte (or
                    // its NUL) is too: the rest of the same NUL-terminated string.
                    None if b == b'=' => return Some(unsafe { CStr::from_ptr(entry.add(i + 1)) }),
                    _ => break,
                }
            }
            // SAFETY: not at the terminating null yet, so the next slot exists.
            at = unsafe { at.add(1) };
        }
    }
}

/// Another program to run: its name as given, the file to `execve`, its arguments and
/// environment.
#[derive(Clone, Copy, Debug)]
pub struct Program<'a> {
    name: &'a CStr,
    path: &'a CStr,
    argv: Argv,
    envp: Envp,
}

/// Appends `parts` to `buf` as one NUL-terminated string; its length without the NUL.
fn join(buf: &mut [u8], parts: &[&[u8]]) -> Option<usize> {
    let mut len = 0;
    for part in parts {
        let end = len + part.len();
        if end >= buf.len() || part.contains(&0) {
            return None;
        }
        buf[len..end].copy_from_slice(part);
        len = end;
    }
    buf[len] = 0;
    Some(len)
}

/// Whether `path` is a regular file this process may execute: `EACCES` when it
/// exists but is not, `ENOENT` when it is missing.
fn executable(path: &CStr) -> Result<(), Errno> {
    if sys::stat(path)?.mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Errno::ACCES);
    }
    sys::may_execute(path)
}

impl<'a> Program<'a> {
    /// Finds `name` the way `execvp(3)` would, so that the daemon (or the child) only
    /// has to call `execve`, which is async-signal-safe:
    ///
    /// - an absolute path is used as it is;
    /// - a relative path with a `/` is taken from the current directory (made absolute
    ///   here, since stage 5 changes directory);
    /// - a bare name is searched in `envp`'s `PATH` (or the usual default) for a
    ///   regular file this process may execute; an empty or relative entry is relative
    ///   to the current directory.
    ///
    /// `argv` is the program's argument vector, `argv[0]` included.
    ///
    /// # Errors
    ///
    /// `ENOENT` when nothing is found; `EACCES` when only files we may not execute are;
    /// `ENAMETOOLONG` beyond [`PATH_CAPACITY`]; `getcwd` failures.
    pub fn find(
        name: &'a CStr,
        argv: Argv,
        envp: Envp,
        buf: &'a mut [u8; PATH_CAPACITY],
    ) -> Result<Program<'a>, Errno> {
        let bytes = name.to_bytes();
        let path = if bytes.first() == Some(&b'/') {
            name
        } else if bytes.is_empty() {
            return Err(Errno::NOENT);
        } else {
            let mut cwd_buf = [0u8; PATH_CAPACITY];
            let cwd = sys::getcwd(&mut cwd_buf)?.to_bytes();
            let len = if bytes.contains(&b'/') {
                join(buf, &[cwd, b"/", bytes]).ok_or(Errno::NAMETOOLONG)?
            } else {
                let search = envp.get(b"PATH").map_or(DEFAULT_PATH, CStr::to_bytes);
                search_path(bytes, search, cwd, buf)?
            };
            crate::sys::until_nul(&buf[..=len]).ok_or(Errno::NOENT)?
        };
        Ok(Program {
            name,
            path,
            argv,
            envp,
        })
    }

    /// The same program with `entry` (`NAME=value`) in its environment, replacing any
    /// variable of that name: the new environment is built in `slots`, pointers to the
    /// old one's strings and to `entry`, so nothing is allocated.
    ///
    /// ```
    /// use pandaemonium::{MainArgs, Program, PATH_CAPACITY};
    ///
    /// # #[allow(dead_code)]
    /// fn with_socket(args: MainArgs) -> Result<(), pandaemonium::Errno> {
    ///     let (Some(name), Some(argv)) = (args.get(1), args.tail(1)) else { return Ok(()) };
    ///     let mut buf = [0u8; PATH_CAPACITY];
    ///     let mut slots = [core::ptr::null(); 512];
    ///     let program = Program::find(name, argv, args.envp(), &mut buf)?
    ///         .with_env(c"NOTIFY_SOCKET=/run/x/notify", &mut slots)?;
    ///     let _ = program.spawn(None, None)?;
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// `EINVAL` when `entry` has no `=` or starts with one; `E2BIG` when `slots` can't
    /// hold the environment, `entry` and the terminating null.
    pub fn with_env(
        self,
        entry: &'a CStr,
        slots: &'a mut [*const c_char],
    ) -> Result<Program<'a>, Errno> {
        let text = entry.to_bytes();
        let name = match text.iter().position(|&b| b == b'=') {
            Some(at) if at > 0 => &text[..=at],
            _ => return Err(Errno::INVAL),
        };
        let mut len = 0;
        let mut at = self.envp.0;
        loop {
            // SAFETY: `MainArgs::from_raw`'s contract (or a previous `with_env`): a
            // null-terminated array of NUL-terminated strings living as long as 'a.
            let old = unsafe { *at };
            if old.is_null() {
                break;
            }
            // SAFETY: as above.
            if !unsafe { CStr::from_ptr(old) }.to_bytes().starts_with(name) {
                *slots.get_mut(len).ok_or(Errno::from_raw(libc::E2BIG))? = old;
                len += 1;
            }
            // SAFETY: not at the terminating null yet, so the next slot exists.
            at = unsafe { at.add(1) };
        }
        if len + 2 > slots.len() {
            return Err(Errno::from_raw(libc::E2BIG));
        }
        slots[len] = entry.as_ptr();
        slots[len + 1] = core::ptr::null();
        Ok(Program {
            envp: Envp(slots.as_ptr()),
            ..self
        })
    }

    /// The name as given to [`find`](Self::find).
    pub fn name(&self) -> &'a CStr {
        self.name
    }

    /// The file that is `execve`d.
    pub fn path(&self) -> &'a CStr {
        self.path
    }

    /// `execve`s the program: returns only when that failed, with the reason.
    /// Async-signal-safe: call it in `run()` to become the program.
    pub fn exec(&self) -> Errno {
        // SAFETY: argv and envp come from `MainArgs` (its contract: null-terminated
        // arrays of NUL-terminated strings living for ever).
        unsafe { sys::execve(self.path, self.argv.0, self.envp.0) }
    }

    /// Forks and execs the program as a child of this process; its pid once `execve`
    /// succeeded, or why it failed (a close-on-exec pipe tells, so the answer is never
    /// a guess), with the failed child reaped.
    ///
    /// The child starts with every signal disposition at its default and no signal
    /// blocked, whatever this process set up for itself. `keep_fd` stays open in the
    /// program (its `FD_CLOEXEC` is cleared in the child only: a pid file's lock
    /// descriptor, say, so that the program holds the lock too). `parent_death` is the
    /// signal the program gets when this process (the thread that spawned it) ends,
    /// even of `SIGKILL` (`PR_SET_PDEATHSIG`; a parent that died before it was set is
    /// noticed and the child exits at once). The child calls only async-signal-safe
    /// functions, so spawning is sound from a multi-threaded process too.
    ///
    /// # Errors
    ///
    /// `pipe` and `fork` failures; `execve`'s (`ENOENT`, `EACCES`, `ENOEXEC`...);
    /// `prctl` and `fcntl` failures in the child.
    pub fn spawn(&self, keep_fd: Option<c_int>, parent_death: Option<c_int>) -> Result<u32, Errno> {
        self.spawn_to(keep_fd, parent_death, None)
    }

    /// [`spawn`](Self::spawn), with the program's stdout and stderr both on `output`
    /// (`dup2`'d onto 1 and 2 in the child; `output` itself stays close-on-exec): the
    /// write end of a pipe whose read end the caller reads, as a supervisor that logs
    /// its program's output does.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn); `dup2` failures in the child (`EBADF`).
    pub fn spawn_with_output(
        &self,
        keep_fd: Option<c_int>,
        parent_death: Option<c_int>,
        output: c_int,
    ) -> Result<u32, Errno> {
        self.spawn_to(keep_fd, parent_death, Some(output))
    }

    fn spawn_to(
        &self,
        keep_fd: Option<c_int>,
        parent_death: Option<c_int>,
        output: Option<c_int>,
    ) -> Result<u32, Errno> {
        let parent = sys::getpid();
        let (read_end, write_end) = sys::pipe()?;
        // SAFETY: the child below calls only async-signal-safe functions (close,
        // sigaction, prctl, getppid, fcntl, dup2, sigprocmask, execve, write, _exit)
        // before it execs or exits.
        let forked = unsafe { sys::fork() };
        let pid = match forked {
            Err(e) => {
                sys::close(read_end);
                sys::close(write_end);
                return Err(e);
            }
            Ok(0) => {
                sys::close(read_end);
                let e = self.prepare_child(keep_fd, parent_death, output, parent);
                let _ = sys::write_all(write_end, &e.raw().to_ne_bytes());
                sys::exit_now(127)
            }
            Ok(pid) => pid,
        };
        sys::close(write_end);
        let mut buf = [0u8; 4];
        let got = sys::read_full(read_end, &mut buf);
        sys::close(read_end);
        if got == 0 {
            return Ok(pid as u32);
        }
        let _ = sys::waitpid(pid);
        Err(if got == buf.len() {
            Errno::from_raw(i32::from_ne_bytes(buf))
        } else {
            Errno::INVAL
        })
    }

    /// The child's side of [`spawn`](Self::spawn): returns only on failure.
    fn prepare_child(
        &self,
        keep_fd: Option<c_int>,
        parent_death: Option<c_int>,
        output: Option<c_int>,
        parent: libc::pid_t,
    ) -> Errno {
        for sig in 1..=sys::sigrtmax() {
            sys::set_ignored(sig, false);
        }
        if let Some(sig) = parent_death {
            if let Err(e) = sys::parent_death_signal(sig) {
                return e;
            }
            if sys::getppid() != parent {
                // The parent is gone already: nobody to run for, nobody to tell.
                sys::exit_now(1);
            }
        }
        if let Some(fd) = keep_fd {
            if let Err(e) = sys::set_cloexec(fd, false) {
                return e;
            }
        }
        if let Some(fd) = output {
            for stdio in [1, 2] {
                let moved = if fd == stdio {
                    sys::set_cloexec(fd, false)
                } else {
                    sys::dup2(fd, stdio)
                };
                if let Err(e) = moved {
                    return e;
                }
            }
        }
        if let Err(e) = sys::unblock_all_signals() {
            return e;
        }
        self.exec()
    }
}

/// Searches `path` (`PATH`'s value) for `name`; the length of the path found in `buf`.
fn search_path(name: &[u8], path: &[u8], cwd: &[u8], buf: &mut [u8]) -> Result<usize, Errno> {
    let mut denied = false;
    for dir in path.split(|&b| b == b':') {
        let len = match dir {
            b"" => join(buf, &[cwd, b"/", name]),
            [b'/', ..] => join(buf, &[dir, b"/", name]),
            _ => join(buf, &[cwd, b"/", dir, b"/", name]),
        };
        let Some(len) = len else { continue };
        let Some(candidate) = crate::sys::until_nul(&buf[..=len]) else {
            continue;
        };
        match executable(candidate) {
            Ok(()) => return Ok(len),
            Err(Errno::ACCES) => denied = true,
            Err(_) => {}
        }
    }
    Err(if denied { Errno::ACCES } else { Errno::NOENT })
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit(code)`.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl Exit {
    /// Decodes a raw `waitpid` status.
    pub fn from_raw(status: c_int) -> Exit {
        if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status))
        } else {
            Exit::Code(libc::WEXITSTATUS(status))
        }
    }

    /// As a shell reports it: the code, or 128 + the signal.
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(sig) => 128 + sig,
        }
    }

    /// Waits for the child `pid` to end (`waitpid`, retried on `EINTR`).
    ///
    /// # Errors
    ///
    /// `ECHILD` when `pid` is not a child of this process.
    pub fn wait(pid: u32) -> Result<Exit, Errno> {
        let pid = libc::pid_t::try_from(pid).map_err(|_| Errno::CHILD)?;
        sys::waitpid(pid).map(Exit::from_raw)
    }

    /// Reaps one ended child without waiting: its pid and how it ended, or `None`
    /// when none has ended. Async-signal-safe.
    ///
    /// # Errors
    ///
    /// `ECHILD` when this process has no children.
    pub fn reap_any() -> Result<Option<(u32, Exit)>, Errno> {
        Ok(sys::wait_any()?.map(|(pid, status)| (pid as u32, Exit::from_raw(status))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_decode_as_a_shell_shows_them() {
        assert_eq!(Exit::from_raw(0), Exit::Code(0));
        assert_eq!(Exit::from_raw(3 << 8), Exit::Code(3));
        assert_eq!(Exit::from_raw(libc::SIGKILL), Exit::Signal(libc::SIGKILL));
        assert_eq!(Exit::Code(3).status(), 3);
        assert_eq!(Exit::Signal(15).status(), 143);
    }

    #[test]
    fn main_args_are_argv_and_its_tails() {
        static ARGV: [usize; 1] = [0];
        let argv = [c"prog".as_ptr(), c"-x".as_ptr(), core::ptr::null()];
        // SAFETY: two valid strings and the terminating null, alive for the test (the
        // 'static contract is only needed past it); a null envp.
        let args = unsafe { MainArgs::from_raw(2, argv.as_ptr(), core::ptr::null()) };
        assert_eq!((args.len(), args.is_empty()), (2, false));
        assert_eq!(
            (args.get(0), args.get(1), args.get(2)),
            (Some(c"prog"), Some(c"-x"), None)
        );
        assert!(args.tail(1).is_some());
        assert!(args.tail(2).is_none(), "past the last argument");
        assert_eq!(args.envp().get(b"PATH"), None, "a null envp is empty");
        // SAFETY: argc 0 with a pointer to a lone null.
        let none = unsafe { MainArgs::from_raw(0, ARGV.as_ptr().cast(), core::ptr::null()) };
        assert_eq!(
            (none.len(), none.is_empty(), none.tail(0).is_none()),
            (0, true, true)
        );
    }

    #[test]
    fn environment_lookup_needs_the_whole_name() {
        let entries = [
            c"PATHX=/no".as_ptr(),
            c"PA".as_ptr(),
            c"EMPTY=".as_ptr(),
            c"PATH=/bin:/x".as_ptr(),
            c"A=b=c".as_ptr(),
            core::ptr::null(),
        ];
        let envp = Envp(entries.as_ptr());
        assert_eq!(envp.get(b"PATH"), Some(c"/bin:/x"));
        assert_eq!(envp.get(b"PAT"), None);
        assert_eq!(envp.get(b"HOME"), None);
        assert_eq!(envp.get(b"EMPTY"), Some(c""));
        assert_eq!(envp.get(b"A"), Some(c"b=c"), "the first '=' ends the name");
        assert_eq!(envp.get(b"A=b"), None, "a name holds no '='");
        // A name with a NUL never matches, and the scan stops at each entry's NUL.
        assert_eq!(envp.get(b"PA\0"), None);
        assert_eq!(envp.get(b"PA\0TH"), None);
        assert_eq!(envp.get(b""), None, "no entry starts with '='");
    }

    #[test]
    fn a_path_search_finds_the_first_executable_and_says_why_not() {
        let mut buf = [0u8; PATH_CAPACITY];
        let len = search_path(b"sh", b"/nonexistent::/bin", b"/nonexistent-cwd", &mut buf).unwrap();
        assert_eq!(&buf[..len], b"/bin/sh");
        // An empty entry is the current directory itself (no doubled slash).
        let len = search_path(b"sh", b"/nonexistent:", b"/bin", &mut buf).unwrap();
        assert_eq!(&buf[..len], b"/bin/sh");
        // A relative entry is relative to it.
        let len = search_path(b"sh", b"bin", b"/", &mut buf).unwrap();
        assert_eq!(&buf[..len], b"//bin/sh");
        assert_eq!(
            search_path(b"no-such-program-x", b"/bin", b"/", &mut buf),
            Err(Errno::NOENT)
        );
        // /etc/passwd exists but is not executable.
        assert_eq!(
            search_path(b"passwd", b"/etc", b"/", &mut buf),
            Err(Errno::ACCES)
        );
        let mut small = [0u8; 7]; // "/bin/sh" and its NUL need 8
        assert_eq!(
            search_path(b"sh", b"/bin", b"/", &mut small),
            Err(Errno::NOENT)
        );
    }
}
