//! Thin libc wrappers for the tool: one call each, `Result<_, Errno>`.
//!
//! # Safety
//!
//! The tool's only `unsafe` besides the entry point and the one `allow_threads` call.
//! Each wrapper passes pointers that come from Rust references, `&CStr` or the
//! process's own `argv`/`envp`, with lengths from the same slices. The functions the
//! supervisor's child calls between `fork` and `execve` (`close`, `sigaction`,
//! `sigprocmask`, `execve`, `write`, `_exit`) are async-signal-safe.
#![allow(unsafe_code)]
// libc's integer types differ per target; casts that are no-ops here are not elsewhere.
#![allow(clippy::unnecessary_cast)]

use core::ffi::{c_char, c_int, CStr};

use pandaemonium::Errno;

pub type Result<T> = core::result::Result<T, Errno>;

fn check(ret: c_int) -> Result<c_int> {
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// The process's arguments and environment, as the C runtime handed them to `main`.
#[derive(Clone, Copy)]
pub struct Args {
    argv: &'static [*const c_char],
    raw: *const *const c_char,
    envp: *const *const c_char,
}

/// A null-terminated argument vector for `execve` (a tail of the process's `argv`).
#[derive(Clone, Copy)]
pub struct ExecArgv(*const *const c_char);

/// A null-terminated environment for `execve` (the process's own).
#[derive(Clone, Copy)]
pub struct Envp(*const *const c_char);

impl Args {
    /// Wraps `main`'s arguments.
    ///
    /// # Safety
    ///
    /// `argv` must hold `argc` valid NUL-terminated strings followed by a null pointer,
    /// `envp` must be null or a null-terminated array of such strings, and all of it
    /// must live, unchanged, for the rest of the process (as the C runtime guarantees).
    pub unsafe fn from_raw(
        argc: c_int,
        argv: *const *const c_char,
        envp: *const *const c_char,
    ) -> Args {
        let slice = if argv.is_null() || argc <= 0 {
            &[]
        } else {
            // SAFETY: the caller guarantees argc valid entries that live forever.
            unsafe { core::slice::from_raw_parts(argv, argc as usize) }
        };
        Args {
            argv: slice,
            raw: argv,
            envp,
        }
    }

    /// Argument `i`.
    pub fn get(&self, i: usize) -> Option<&'static CStr> {
        let ptr = *self.argv.get(i)?;
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `from_raw`'s contract: a valid NUL-terminated string living forever.
        Some(unsafe { CStr::from_ptr(ptr) })
    }

    /// `argv[from..]`, null-terminated as `argv` itself is.
    pub fn exec_argv(&self, from: usize) -> ExecArgv {
        assert!(from < self.argv.len());
        // SAFETY: from < argc, so the pointer stays inside the C runtime's argv array
        // (argc entries and the terminating null).
        ExecArgv(unsafe { self.raw.add(from) })
    }

    /// The environment.
    pub fn envp(&self) -> Envp {
        Envp(self.envp)
    }
}

/// `write(2)` until all of `buf` is written (retrying `EINTR`). Async-signal-safe.
pub fn write_all(fd: c_int, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid readable slice of buf.len() bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = Errno::last();
            if e == Errno::INTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// `read(2)`, retrying `EINTR`.
pub fn read(fd: c_int, buf: &mut [u8]) -> Result<usize> {
    loop {
        // SAFETY: buf is a valid writable slice of buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = Errno::last();
        if e != Errno::INTR {
            return Err(e);
        }
    }
}

/// `close(2)`, ignoring errors. Async-signal-safe.
pub fn close(fd: c_int) {
    // SAFETY: close takes an int; closing a descriptor we own.
    unsafe { libc::close(fd) };
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub fn pipe() -> Result<(c_int, c_int)> {
    let mut fds = [-1 as c_int; 2];
    // SAFETY: fds is a valid array of two ints.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((fds[0], fds[1]))
}

/// Sets or clears `FD_CLOEXEC` on `fd` (`fcntl(F_SETFD)`). Async-signal-safe.
pub fn set_cloexec(fd: c_int, on: bool) -> Result<()> {
    // SAFETY: fcntl with integer arguments only.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, new) }).map(drop)
}

/// `open(2)` read-only, close-on-exec; a final symlink is refused (`ELOOP`) when
/// `nofollow`.
pub fn open_read(path: &CStr, nofollow: bool) -> Result<c_int> {
    let mut flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC;
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    // SAFETY: path is a valid NUL-terminated string.
    check(unsafe { libc::open(path.as_ptr(), flags) })
}

/// `pwrite(2)` of all of `buf` at `offset`.
pub fn pwrite_all(fd: c_int, mut buf: &[u8], mut offset: i64) -> Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid readable slice of buf.len() bytes.
        let n = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), offset as _) };
        if n < 0 {
            let e = Errno::last();
            if e == Errno::INTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
        offset += n as i64;
    }
    Ok(())
}

/// `ftruncate(2)`.
pub fn ftruncate(fd: c_int, len: i64) -> Result<()> {
    // SAFETY: ftruncate takes integers only.
    check(unsafe { libc::ftruncate(fd, len as _) }).map(drop)
}

/// A file's identity: (device, inode).
pub type FileId = (u64, u64);

/// `fstat(2)`: the identity of `fd`'s file.
pub fn fstat_id(fd: c_int) -> Result<FileId> {
    // SAFETY: all-zero bytes are a valid struct stat.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: st is a valid, writable struct stat.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// `lstat(2)`: the identity and mode of `path` (a symlink is not followed).
pub fn lstat(path: &CStr) -> Result<(FileId, libc::mode_t)> {
    // SAFETY: all-zero bytes are a valid struct stat.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: path is NUL-terminated and st a valid, writable struct stat.
    check(unsafe { libc::lstat(path.as_ptr(), &mut st) })?;
    Ok(((st.st_dev as u64, st.st_ino as u64), st.st_mode))
}

/// Whether `path` is a regular file this process may execute (`stat` + `access(X_OK)`):
/// `EACCES` when it exists but is not, `ENOENT` when it is missing.
pub fn executable(path: &CStr) -> Result<()> {
    // SAFETY: all-zero bytes are a valid struct stat.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: path is NUL-terminated and st a valid, writable struct stat.
    check(unsafe { libc::stat(path.as_ptr(), &mut st) })?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Errno::ACCES);
    }
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::access(path.as_ptr(), libc::X_OK) }).map(drop)
}

/// `getcwd(3)` into `buf`.
pub fn getcwd(buf: &mut [u8]) -> Result<&CStr> {
    // SAFETY: buf is valid and writable for buf.len() bytes.
    let p = unsafe { libc::getcwd(buf.as_mut_ptr().cast(), buf.len()) };
    if p.is_null() {
        return Err(Errno::last());
    }
    CStr::from_bytes_until_nul(buf).map_err(|_| Errno::NAMETOOLONG)
}

/// `getenv(3)`. Only the launcher calls it, before anything forks.
pub fn getenv(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: name is NUL-terminated; nothing in this single-threaded program ever
    // changes the environment, so the returned string lives on unchanged.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        None
    } else {
        // SAFETY: getenv returned a valid NUL-terminated string (see above).
        Some(unsafe { CStr::from_ptr(p) })
    }
}

/// `fork(2)`.
///
/// # Safety
///
/// The process must be single-threaded (the tool never starts a thread), and the child
/// must call only async-signal-safe functions until it execs or `_exit`s.
pub unsafe fn fork() -> Result<libc::pid_t> {
    // SAFETY: the caller upholds the contract above.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(Errno::last())
    } else {
        Ok(pid)
    }
}

/// `execve(2)`: returns only when it failed, with the reason. Async-signal-safe.
pub fn execve(path: &CStr, argv: ExecArgv, envp: Envp) -> Errno {
    static EMPTY: [usize; 1] = [0];
    let envp = if envp.0.is_null() {
        EMPTY.as_ptr().cast()
    } else {
        envp.0
    };
    // SAFETY: path is NUL-terminated; argv and envp are null-terminated arrays of
    // NUL-terminated strings from the C runtime (`Args::from_raw`'s contract), or the
    // static empty environment.
    unsafe { libc::execve(path.as_ptr(), argv.0, envp) };
    Errno::last()
}

/// `_exit(2)`: no atexit hooks, no flushing. Async-signal-safe.
pub fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit takes an int and never returns.
    unsafe { libc::_exit(code) }
}

/// `geteuid(2)`.
pub fn euid() -> libc::uid_t {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// `setgroups(2)`. Async-signal-safe (a single system call).
pub fn setgroups(groups: &[libc::gid_t]) -> Result<()> {
    // SAFETY: groups is a valid slice of groups.len() gids.
    check(unsafe { libc::setgroups(groups.len() as _, groups.as_ptr()) }).map(drop)
}

/// `setgid(2)`. Async-signal-safe.
pub fn setgid(gid: libc::gid_t) -> Result<()> {
    // SAFETY: setgid takes an integer.
    check(unsafe { libc::setgid(gid) }).map(drop)
}

/// `setuid(2)`. Async-signal-safe.
pub fn setuid(uid: libc::uid_t) -> Result<()> {
    // SAFETY: setuid takes an integer.
    check(unsafe { libc::setuid(uid) }).map(drop)
}

/// `getpid(2)`.
pub fn getpid() -> u32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() as u32 }
}

/// `kill(2)`.
pub fn kill(pid: u32, sig: c_int) -> Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| Errno::SRCH)?;
    if pid <= 0 {
        return Err(Errno::SRCH);
    }
    // SAFETY: kill takes integers only; pid > 0, so exactly one process is targeted.
    check(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// `waitpid(pid, WNOHANG)` (`pid` -1: any child): the child reaped and its raw status.
pub fn wait_any() -> Result<Option<(u32, c_int)>> {
    let mut status = 0;
    // SAFETY: status is a valid, writable int.
    let pid = check(unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) })?;
    Ok((pid > 0).then_some((pid as u32, status)))
}

/// `waitpid(pid, 0)`, retrying `EINTR`.
pub fn wait_for(pid: u32) -> Result<c_int> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid, writable int.
        match check(unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) }) {
            Ok(_) => return Ok(status),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// How a child ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// `exit(code)`.
    Exited(c_int),
    /// Killed by this signal.
    Signaled(c_int),
}

/// Decodes a wait status.
pub fn death(status: c_int) -> Death {
    if libc::WIFSIGNALED(status) {
        Death::Signaled(libc::WTERMSIG(status))
    } else {
        Death::Exited(libc::WEXITSTATUS(status))
    }
}

fn sigset(sigs: &[c_int]) -> libc::sigset_t {
    // SAFETY: all-zero bytes are a valid sigset_t; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: set is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for &sig in sigs {
        // SAFETY: as above; an invalid number only makes sigaddset fail.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    set
}

/// `sigprocmask(how, sigs)`. Async-signal-safe.
fn sigprocmask(how: c_int, sigs: &[c_int]) -> Result<()> {
    let set = sigset(sigs);
    // SAFETY: set is a valid sigset_t; the old mask is not asked for.
    check(unsafe { libc::sigprocmask(how, &set, core::ptr::null_mut()) }).map(drop)
}

/// Blocks `sigs` (added to the mask).
pub fn block(sigs: &[c_int]) -> Result<()> {
    sigprocmask(libc::SIG_BLOCK, sigs)
}

/// Unblocks every signal. Async-signal-safe.
pub fn unblock_all() -> Result<()> {
    sigprocmask(libc::SIG_SETMASK, &[])
}

/// Sets `sig`'s disposition to `SIG_DFL` or `SIG_IGN` (errors ignored: `KILL`, `STOP`
/// and the C library's reserved numbers refuse). Async-signal-safe.
fn set_disposition(sig: c_int, how: libc::sighandler_t) {
    // SAFETY: all-zero bytes are a valid struct sigaction (SIG_DFL, empty mask).
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = how;
    // SAFETY: sa is a valid struct sigaction; the old action is not asked for.
    unsafe { libc::sigaction(sig, &sa, core::ptr::null_mut()) };
}

/// Restores `sig`'s default disposition. Async-signal-safe.
pub fn default_disposition(sig: c_int) {
    set_disposition(sig, libc::SIG_DFL);
}

/// Ignores `sig`. Async-signal-safe.
pub fn ignore(sig: c_int) {
    set_disposition(sig, libc::SIG_IGN);
}

/// The highest signal number (`SIGRTMAX`).
pub fn sigrtmax() -> c_int {
    libc::SIGRTMAX()
}

/// `prctl(PR_SET_PDEATHSIG, sig)`: `sig` comes when the parent ends. Async-signal-safe.
pub fn parent_death_signal(sig: c_int) -> Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// `getppid(2)`. Async-signal-safe.
pub fn getppid() -> u32 {
    // SAFETY: getppid has no arguments and cannot fail.
    unsafe { libc::getppid() as u32 }
}

/// `sigtimedwait(2)` for the (blocked) `sigs`: the signal taken, or `None` after
/// `timeout_ms` (or on `EINTR`). `None` as the timeout waits for ever.
pub fn wait_signal(sigs: &[c_int], timeout_ms: Option<u64>) -> Option<c_int> {
    let set = sigset(sigs);
    let ts = timeout_ms.map(|ms| libc::timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: set and ts are valid for the call; no siginfo is asked for.
    let sig = unsafe { libc::sigtimedwait(&set, core::ptr::null_mut(), ts_ptr) };
    (sig > 0).then_some(sig)
}

/// `clock_gettime(CLOCK_MONOTONIC)` in milliseconds.
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// Sleeps `ms` milliseconds (`nanosleep`, resumed after `EINTR`).
pub fn sleep_ms(ms: u64) {
    let mut req = libc::timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    };
    let mut rem = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: req and rem are valid timespecs for the duration of each call.
    while unsafe { libc::nanosleep(&req, &mut rem) } == -1 && Errno::last() == Errno::INTR {
        req = rem;
    }
}
