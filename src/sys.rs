//! Thin wrappers over the libc calls the stages make: one call each, `Result<_, Errno>`.
//!
//! # Safety
//!
//! This module holds (almost) all of the crate's `unsafe`: each wrapper passes
//! pointers that come from Rust references or `&CStr` and lengths that come from the
//! same slices, so the kernel only ever sees valid memory. Every wrapper says whether it
//! is async-signal-safe; the ones the daemon calls between fork and `run()` all are
//! (see the crate's "Async-signal-safety" section).
#![allow(unsafe_code)]
// libc's integer types differ per target; casts that are no-ops here are not elsewhere.
#![allow(clippy::unnecessary_cast)]

use core::ffi::{c_int, CStr};
use core::mem::MaybeUninit;

use crate::Errno;

/// A descriptor slot that holds none (what `open(2)` returns on failure). The crate
/// compares its slots with it by equality only: a slot holds `NO_FD` or a descriptor.
pub(crate) const NO_FD: c_int = -1;

// The open(2) flag sets of the crate, by purpose; `openat` adds `O_CLOEXEC` and
// `O_LARGEFILE` to each.
/// A pid file: read and write, never through a symbolic link, never blocking (on a FIFO
/// planted in its place).
pub(crate) const PID_FILE: c_int = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_NONBLOCK;
/// A pid file that must not exist yet.
pub(crate) const PID_FILE_NEW: c_int = PID_FILE | libc::O_CREAT | libc::O_EXCL;
/// Someone's pid file, to read or to probe its lock: read only, no link followed, never
/// blocking.
pub(crate) const PID_FILE_PEEK: c_int = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
/// Stage 9's input: read only, never the controlling terminal.
pub(crate) const INPUT: c_int = libc::O_RDONLY | libc::O_NOCTTY;
/// Stage 9's outputs: appended to, created if missing, never the controlling terminal.
pub(crate) const OUTPUT: c_int = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_NOCTTY;
/// A directory to resolve paths against, not to read.
pub(crate) const DIRECTORY_PATH: c_int = libc::O_PATH | libc::O_DIRECTORY;
/// A directory to list.
pub(crate) const DIRECTORY_LIST: c_int = libc::O_RDONLY | libc::O_DIRECTORY;

pub(crate) type Result<T> = core::result::Result<T, Errno>;

/// `errno`—The calling thread's last error. Async-signal-safe.
pub(crate) fn last_errno() -> Errno {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    Errno(unsafe { *libc::__errno_location() })
}

fn check(ret: c_int) -> Result<c_int> {
    if ret == -1 {
        Err(last_errno())
    } else {
        Ok(ret)
    }
}

fn check_ssize(ret: isize) -> Result<usize> {
    if ret < 0 {
        Err(last_errno())
    } else {
        Ok(ret as usize)
    }
}

/// Retries `f` while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// The C string at the start of `bytes`, up to its first NUL (`None` without one):
/// `CStr::from_bytes_until_nul` without core's word-at-a-time search, 200 bytes of
/// code for buffers of a few hundred bytes at most.
#[inline(never)]
pub(crate) fn until_nul(bytes: &[u8]) -> Option<&CStr> {
    let end = bytes.iter().position(|&b| b == 0)?;
    // SAFETY: bytes[end] is the first NUL, so bytes[..=end] ends with its only NUL.
    Some(unsafe { CStr::from_bytes_with_nul_unchecked(&bytes[..=end]) })
}

/// `strerror_r(3)`—The system's text for `errno`, written into `buf`. Not called after fork.
pub(crate) fn strerror(errno: i32, buf: &mut [u8; 128]) -> &str {
    // SAFETY: buf is a valid, writable 128-byte buffer and its length is passed.
    let ret = unsafe { libc::strerror_r(errno, buf.as_mut_ptr().cast(), buf.len()) };
    if ret != 0 {
        return "Unknown error";
    }
    match until_nul(&buf[..]) {
        // SAFETY: is_utf8 checked the bytes.
        Some(text) if is_utf8(text.to_bytes()) => unsafe {
            core::str::from_utf8_unchecked(text.to_bytes())
        },
        _ => "Unknown error",
    }
}

/// Whether `bytes` is UTF-8, as `str::from_utf8` decides (checked against it on every
/// sequence of up to 3 bytes and on 4-byte ones): the few lines of a plain decoder
/// instead of core's 500 bytes of fast paths, for a message of a few dozen bytes.
fn is_utf8(bytes: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&lead) = bytes.get(i) {
        let (len, min) = match lead {
            0x00..=0x7f => (1, 0),
            0xc2..=0xdf => (2, 0x80),
            0xe0..=0xef => (3, 0x800),
            0xf0..=0xf4 => (4, 0x1_0000),
            _ => return false,
        };
        let Some(seq) = bytes.get(i..i + len) else {
            return false;
        };
        let mut c = u32::from(lead) & (0x7f >> len);
        for &b in &seq[1..] {
            if b & 0xc0 != 0x80 {
                return false;
            }
            c = c << 6 | u32::from(b & 0x3f);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        if c < min || char::from_u32(c).is_none() {
            return false;
        }
        i += len;
    }
    true
}

#[cfg(target_env = "musl")]
extern "C" {
    /// musl's `_Fork` (musl 1.2.2; POSIX.1-2024): the libc crate does not declare it.
    fn _Fork() -> libc::pid_t;
}

/// `fork(2)`—Creates a child process. Async-signal-safe.
///
/// With musl, `_Fork` (musl 1.2.2, 2021; POSIX.1-2024, which lists it, not `fork`, as
/// async-signal-safe): the system call and the child's thread bookkeeping, without
/// `fork`'s `pthread_atfork` handlers and, in a multi-threaded process, without
/// taking libc's internal locks (malloc's, stdio's) for the child, which calls only
/// async-signal-safe functions. It also leaves out the locks' code (about 1.2 KiB of
/// a static binary: the read-write lock, timed waits, the vDSO clock). With glibc,
/// `fork`, since its `_Fork` is only in glibc 2.34 and later.
///
/// # Safety
///
/// In the child only the calling thread exists: locks held by other threads stay
/// locked forever. The caller must make sure the process is single-threaded, or that
/// the child calls only async-signal-safe functions until it execs or exits.
pub(crate) unsafe fn fork() -> Result<libc::pid_t> {
    // SAFETY: the caller upholds the single-thread / async-signal-safe contract above.
    #[cfg(target_env = "musl")]
    let pid = unsafe { _Fork() };
    // SAFETY: as above.
    #[cfg(not(target_env = "musl"))]
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(last_errno())
    } else {
        Ok(pid)
    }
}

/// `_exit(2)`—Ends the process at once: no atexit hooks, no stdio flushing. Async-signal-safe.
pub fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit takes no pointers and never returns.
    unsafe { libc::_exit(code) }
}

/// `setsid(2)`—Creates a new session and process group. Async-signal-safe.
pub(crate) fn setsid() -> Result<()> {
    // SAFETY: setsid takes no arguments.
    check(unsafe { libc::setsid() }).map(drop)
}

/// `getpid(2)`—This process's id. Async-signal-safe.
pub fn getpid() -> libc::pid_t {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::getpid() }
}

/// `getppid(2)`—The parent's process id. Async-signal-safe.
pub fn getppid() -> libc::pid_t {
    // SAFETY: getppid takes no arguments and cannot fail.
    unsafe { libc::getppid() }
}

/// `getuid(2)`, `geteuid(2)`, `getgid(2)`—Real / effective ids. Async-signal-safe.
pub(crate) fn ids() -> (libc::uid_t, libc::uid_t, libc::gid_t) {
    // SAFETY: these take no arguments and cannot fail.
    unsafe { (libc::getuid(), libc::geteuid(), libc::getgid()) }
}

/// `pipe2(2)` with `O_CLOEXEC`—A pipe as `(read, write)`. Async-signal-safe.
#[inline(never)]
pub fn pipe() -> Result<(c_int, c_int)> {
    pipe_with(libc::O_CLOEXEC)
}

/// `pipe2(2)` with `flags` (`O_CLOEXEC`, `O_NONBLOCK`). Async-signal-safe.
pub(crate) fn pipe_with(flags: c_int) -> Result<(c_int, c_int)> {
    let mut fds = [-1 as c_int; 2];
    // A raw system call: musl's pipe2 carries a fallback to pipe + fcntl for kernels
    // before 2.6.27.
    // SAFETY: fds is a valid array of two ints for the kernel to fill.
    let ret = unsafe { libc::syscall(libc::SYS_pipe2, fds.as_mut_ptr(), flags) };
    check(ret as c_int)?;
    Ok((fds[0], fds[1]))
}

/// `close(2)`. Async-signal-safe. Errors are ignored: the descriptor is gone either way.
pub fn close(fd: c_int) {
    // SAFETY: closing an int descriptor touches no memory; callers own `fd`.
    unsafe { libc::close(fd) };
}

/// `dup2(2)`—Makes `new` a copy of `old` (clearing `FD_CLOEXEC` on `new`). Async-signal-safe.
///
/// `dup2(fd, fd)` is a no-op that keeps `FD_CLOEXEC`; callers skip that case.
pub fn dup2(old: c_int, new: c_int) -> Result<()> {
    // SAFETY: dup2 takes two ints and touches no memory.
    retry(|| check(unsafe { libc::dup2(old, new) })).map(drop)
}

/// `fcntl(2)` with an integer argument, or a pointer as one. Async-signal-safe.
///
/// On 64-bit targets one raw system call: musl's wrapper carries emulations for
/// kernels before 2.6.24 (`F_DUPFD_CLOEXEC`) and for `F_GETOWN`, 340 bytes this crate
/// never needs. On 32-bit targets libc's, which makes it `fcntl64` (the 64-bit
/// `struct flock` of the lock commands).
///
/// # Safety
///
/// `arg` is what `cmd` takes: an integer, or the address of the structure it reads
/// or writes, valid for the call.
#[inline(never)]
unsafe fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> Result<c_int> {
    #[cfg(target_pointer_width = "64")]
    // SAFETY: the caller passes the argument cmd takes; the kernel's fcntl takes the
    // same three arguments as libc's on 64-bit targets.
    let ret = unsafe { libc::syscall(libc::SYS_fcntl, fd, cmd, arg) } as c_int;
    #[cfg(not(target_pointer_width = "64"))]
    // SAFETY: as above; usize is the size of an int and of a pointer here.
    let ret = unsafe { libc::fcntl(fd, cmd, arg) };
    check(ret)
}

/// `fcntl(F_DUPFD_CLOEXEC)`—A close-on-exec copy of `fd` numbered `min` or above.
/// Async-signal-safe.
#[inline(never)]
pub fn dup_at_least(fd: c_int, min: c_int) -> Result<c_int> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int argument and touches no memory.
    unsafe { fcntl(fd, libc::F_DUPFD_CLOEXEC, min as usize) }
}

/// `fcntl(F_GETFD)`—Whether `fd` is open (`EBADF` if not). Async-signal-safe.
pub(crate) fn fd_is_open(fd: c_int) -> bool {
    // SAFETY: F_GETFD takes no argument (the third is ignored) and touches no memory.
    unsafe { fcntl(fd, libc::F_GETFD, 0) }.is_ok()
}

/// `open(2)`; the result is moved to 3 or above so it never lands on stdio.
/// Async-signal-safe.
pub(crate) fn open(path: &CStr, flags: c_int, mode: libc::mode_t) -> Result<c_int> {
    openat(libc::AT_FDCWD, path, flags, mode)
}

/// `openat(2)` relative to the directory `dir` (`AT_FDCWD`: the working directory),
/// always with `O_CLOEXEC` and `O_LARGEFILE`; the result is moved to 3 or above so it
/// never lands on stdio. Async-signal-safe.
///
/// A raw system call: musl's `open()` follows `O_CLOEXEC` with an `fcntl(F_SETFD)` for
/// kernels before 2.6.23, one call per open that Linux has not needed since 2007. The
/// raw call gets no `O_LARGEFILE` from the C library, so it is added here: without it
/// a 32-bit process can't open a file of 2 GiB or more (`EOVERFLOW`) nor grow one past
/// 2 GiB − 1 (`EFBIG`). (On 64-bit targets the kernel sets it itself.)
#[inline(never)]
pub(crate) fn openat(dir: c_int, path: &CStr, flags: c_int, mode: libc::mode_t) -> Result<c_int> {
    let fd = retry(|| {
        // SAFETY: path is a valid NUL-terminated string for the duration of the call;
        // the other arguments are integers.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat,
                dir,
                path.as_ptr(),
                flags | libc::O_CLOEXEC | libc::O_LARGEFILE,
                mode as c_int,
            )
        };
        check(ret as c_int)
    })?;
    above_stdio(fd)
}

/// `fd` itself when it is 3 or above, else a close-on-exec copy numbered 3 or above,
/// with `fd` closed (also when the copy fails): a process launched with stdio closed
/// keeps its own descriptors off 0-2. Async-signal-safe.
#[inline(never)]
pub(crate) fn above_stdio(fd: c_int) -> Result<c_int> {
    if fd > 2 {
        return Ok(fd);
    }
    let high = dup_at_least(fd, 3);
    close(fd);
    high
}

/// `read(2)`, retried on `EINTR`. Async-signal-safe.
pub fn read(fd: c_int, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: buf is valid writable memory of buf.len() bytes.
    retry(|| check_ssize(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }))
}

/// [`read`] until `buf` is full or the end of the file (a pipe's writers all closed);
/// how many bytes came: a short count only at the end or on an error. Async-signal-safe.
pub fn read_full(fd: c_int, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match read(fd, &mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

/// `pread(2)` at `offset`. Async-signal-safe.
pub(crate) fn pread(fd: c_int, buf: &mut [u8], offset: i64) -> Result<usize> {
    retry(|| {
        // SAFETY: buf is valid writable memory of buf.len() bytes.
        check_ssize(unsafe {
            libc::pread(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                offset as libc::off_t,
            )
        })
    })
}

/// `write(2)` of the whole buffer, retried on `EINTR` and short writes. Async-signal-safe.
pub fn write_all(fd: c_int, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is valid readable memory of buf.len() bytes.
        let n = retry(|| check_ssize(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }))?;
        buf = &buf[n..];
    }
    Ok(())
}

/// One `write(2)`, not retried: how many bytes went. Async-signal-safe.
pub(crate) fn write_some(fd: c_int, buf: &[u8]) -> Result<usize> {
    // SAFETY: buf is valid readable memory of buf.len() bytes.
    check_ssize(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

/// Sets the calling thread's `errno` (a signal handler puts back what it found).
/// Async-signal-safe.
pub(crate) fn set_errno(e: Errno) {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() = e.raw() };
}

/// `pwrite(2)` of the whole buffer at `offset`. Async-signal-safe.
pub(crate) fn pwrite_all(fd: c_int, buf: &[u8], offset: i64) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &buf[done..];
        let n = retry(|| {
            // SAFETY: rest is valid readable memory of rest.len() bytes.
            check_ssize(unsafe {
                libc::pwrite(
                    fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    (offset + done as i64) as libc::off_t,
                )
            })
        })?;
        done += n;
    }
    Ok(())
}

/// `ftruncate(2)`. Async-signal-safe.
pub(crate) fn ftruncate(fd: c_int, len: i64) -> Result<()> {
    // SAFETY: ftruncate takes ints and touches no memory.
    retry(|| check(unsafe { libc::ftruncate(fd, len as libc::off_t) })).map(drop)
}

/// `fcntl(F_SETFD)`—Sets (`true`) or clears `FD_CLOEXEC` on `fd`: a descriptor without
/// it stays open across `execve`. Async-signal-safe.
pub fn set_cloexec(fd: c_int, on: bool) -> Result<()> {
    // SAFETY: F_GETFD and F_SETFD take ints and touch no memory.
    let flags = unsafe { fcntl(fd, libc::F_GETFD, 0) }?;
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    unsafe { fcntl(fd, libc::F_SETFD, new as usize) }.map(drop)
}

/// A signal set holding `sigs` (numbers the C library refuses are left out).
fn sigset(sigs: &[c_int]) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: set is writable memory the size of sigset_t; sigemptyset initialises it
    // and sigaddset only adds to it (failing, harmlessly, on an invalid number).
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for &sig in sigs {
            libc::sigaddset(set.as_mut_ptr(), sig);
        }
        set.assume_init()
    }
}

/// `sigprocmask(SIG_BLOCK, sigs)`—Adds `sigs` to the blocked set, to be taken with
/// [`wait_signal`]. Async-signal-safe.
pub fn block_signals(sigs: &[c_int]) -> Result<()> {
    let set = sigset(sigs);
    // SAFETY: set is initialised; a null old-set pointer is allowed.
    check(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, core::ptr::null_mut()) }).map(drop)
}

/// `sigtimedwait(2)`—Takes one of the (blocked) `sigs`: the signal, or `None` after
/// `timeout_ms` or when a handled signal interrupted the wait. `None` as the timeout
/// waits for ever. Async-signal-safe.
pub fn wait_signal(sigs: &[c_int], timeout_ms: Option<u64>) -> Option<c_int> {
    let set = sigset(sigs);
    let ts = timeout_ms.map(|ms| libc::timespec {
        tv_sec: (ms / 1000).min(i32::MAX as u64) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: set and ts live for the call; a null siginfo pointer is allowed.
    let sig = unsafe { libc::sigtimedwait(&set, core::ptr::null_mut(), ts_ptr) };
    (sig > 0).then_some(sig)
}

/// `write(2)` of all of `buf` that never raises `SIGPIPE`: with `SIGPIPE` blocked
/// around the write, a closed reading end is `EPIPE` and the signal that write raised
/// is taken back (`sigtimedwait` with no wait) unless one was already pending. For
/// pipes, where `MSG_NOSIGNAL` does not exist. Async-signal-safe.
pub(crate) fn write_all_quiet(fd: c_int, buf: &[u8]) -> Result<()> {
    let set = sigset(&[libc::SIGPIPE]);
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: set is initialised and old is writable memory for the old mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) };
    let mut pending = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: pending is writable memory for the set.
    let was_pending = unsafe {
        libc::sigpending(pending.as_mut_ptr()) == 0
            && libc::sigismember(pending.as_ptr(), libc::SIGPIPE) == 1
    };
    let result = write_all(fd, buf);
    if result == Err(Errno::from_raw(libc::EPIPE)) && !was_pending {
        let _ = wait_signal(&[libc::SIGPIPE], Some(0));
    }
    // SAFETY: old was filled by the call above; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), core::ptr::null_mut()) };
    result
}

/// Sets `sig`'s disposition to the default (`ignore` false) or to ignored, with no
/// handler. Errors are ignored: `KILL`, `STOP` and the C library's reserved numbers
/// refuse, and nothing else can fail. Async-signal-safe.
pub fn set_ignored(sig: c_int, ignore: bool) {
    let how = if ignore {
        Disposition::Ignore
    } else {
        Disposition::Default
    };
    let _ = sigaction(sig, how);
}

/// `waitpid(-1, WNOHANG)`—Reaps one ended child, if any: its pid and raw wait status
/// ([`Exit::from_raw`](crate::Exit::from_raw) decodes it); `Ok(None)` when no child
/// has ended; `ECHILD` when there are none. Async-signal-safe.
pub fn wait_any() -> Result<Option<(libc::pid_t, c_int)>> {
    let mut status: c_int = 0;
    // SAFETY: status is valid writable memory for the call.
    let pid = retry(|| check(unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) }))?;
    Ok((pid > 0).then_some((pid, status)))
}

/// `prctl(PR_SET_PDEATHSIG, sig)`—`sig` comes when the thread that forked this process
/// ends. Async-signal-safe.
pub(crate) fn parent_death_signal(sig: c_int) -> Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// `execve(2)`: returns only when it failed, with the reason. Async-signal-safe.
///
/// # Safety
///
/// `argv` and `envp` must be null-terminated arrays of valid NUL-terminated strings.
pub(crate) unsafe fn execve(
    path: &CStr,
    argv: *const *const core::ffi::c_char,
    envp: *const *const core::ffi::c_char,
) -> Errno {
    // SAFETY: the caller guarantees argv and envp; path is NUL-terminated.
    unsafe { libc::execve(path.as_ptr(), argv, envp) };
    last_errno()
}

/// `getcwd(2)` into `buf`, as a raw system call: musl's `getcwd` links `strdup` and
/// `malloc` for its `NULL`-buffer form. A directory outside the process's root (the
/// kernel's `(unreachable)/...`) is `ENOENT`, as the C libraries make it.
pub(crate) fn getcwd(buf: &mut [u8]) -> Result<&CStr> {
    // SAFETY: buf is valid and writable for buf.len() bytes.
    let ret = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    if ret < 0 {
        return Err(last_errno());
    }
    if buf.first() != Some(&b'/') {
        return Err(Errno::NOENT);
    }
    until_nul(buf).ok_or(Errno::NAMETOOLONG)
}

/// `access(2)` with `X_OK`.
pub(crate) fn may_execute(path: &CStr) -> Result<()> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::access(path.as_ptr(), libc::X_OK) }).map(drop)
}

/// `fchmod(2)`, as a raw system call (musl's falls back to `/proc/self/fd` paths for
/// `O_PATH` descriptors, which the crate never passes). Async-signal-safe.
pub(crate) fn fchmod(fd: c_int, mode: libc::mode_t) -> Result<()> {
    // SAFETY: fchmod takes ints and touches no memory.
    check(unsafe { libc::syscall(libc::SYS_fchmod, fd, mode) } as c_int).map(drop)
}

/// `unlink(2)`. Async-signal-safe.
pub(crate) fn unlink(path: &CStr) -> Result<()> {
    // SAFETY: path is a valid NUL-terminated string.
    check(unsafe { libc::unlink(path.as_ptr()) }).map(drop)
}

/// The identity of a file: device and inode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

/// File type bits, identity, links and owner, from `fstat`/`lstat`.
#[derive(Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) id: FileId,
    pub(crate) mode: u32,
    pub(crate) nlink: u64,
    pub(crate) uid: libc::uid_t,
}

fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        id: FileId {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        },
        mode: st.st_mode as u32,
        nlink: st.st_nlink as u64,
        uid: st.st_uid,
    }
}

/// `fstat(2)`. Async-signal-safe.
pub(crate) fn fstat(fd: c_int) -> Result<Stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st points to writable memory the size of struct stat.
    check(unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so it filled st.
    Ok(stat_of(unsafe { st.assume_init_ref() }))
}

/// `lstat(2)`: does not follow a final symlink. Async-signal-safe (POSIX 2008 lists it).
pub(crate) fn lstat(path: &CStr) -> Result<Stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: path is NUL-terminated; st points to writable memory the size of struct stat.
    check(unsafe { libc::lstat(path.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: lstat succeeded, so it filled st.
    Ok(stat_of(unsafe { st.assume_init_ref() }))
}

/// `stat(2)`: follows symlinks. Async-signal-safe.
pub(crate) fn stat(path: &CStr) -> Result<Stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: path is NUL-terminated; st points to writable memory the size of struct stat.
    check(unsafe { libc::stat(path.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: stat succeeded, so it filled st.
    Ok(stat_of(unsafe { st.assume_init_ref() }))
}

/// Whether `fd` is a socket (`fstat` + `S_ISSOCK`); a closed fd is not. Async-signal-safe.
pub(crate) fn is_socket(fd: c_int) -> bool {
    matches!(fstat(fd), Ok(st) if st.mode & libc::S_IFMT == libc::S_IFSOCK)
}

/// `chdir(2)`. Async-signal-safe.
pub(crate) fn chdir(path: &CStr) -> Result<()> {
    // SAFETY: path is a valid NUL-terminated string.
    check(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

/// `umask(2)`—Sets the mask, returns the old one. Async-signal-safe; cannot fail.
pub(crate) fn umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask takes an int and cannot fail.
    unsafe { libc::umask(mask) }
}

/// `prlimit64(2)` on this process: sets `resource` to `new` (when given) and returns
/// the limit it had, as `(soft, hard)`. One raw system call (Linux 2.6.36), whose
/// `struct rlimit64` is two `u64` on every architecture; libc's `setrlimit` would
/// instead link musl's all-threads broadcast (`__synccall`, about 1.5 KiB) for kernels
/// without it, though limits are the whole process's. Async-signal-safe.
fn prlimit(resource: libc::c_int, new: Option<[u64; 2]>) -> Result<[u64; 2]> {
    let mut old = [0u64; 2];
    let new_ptr = new.as_ref().map_or(core::ptr::null(), |n| n.as_ptr());
    // SAFETY: new_ptr is null or points at two u64 (the kernel's struct rlimit64)
    // living for the call; old is writable memory of that layout.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0 as libc::c_long,
            resource as libc::c_long,
            new_ptr,
            old.as_mut_ptr(),
        )
    };
    check(ret as c_int).map(|_| old)
}

/// `RLIMIT_CORE` to `{0, 0}`—No core dumps, and no raising it again without
/// privilege. Async-signal-safe.
pub(crate) fn no_core_dumps() -> Result<()> {
    prlimit(libc::RLIMIT_CORE as libc::c_int, Some([0, 0])).map(drop)
}

/// `prctl(PR_SET_DUMPABLE, 0)`—No core dump even when `core_pattern` pipes to a
/// program (which ignores `RLIMIT_CORE`), and no `ptrace` attach or `/proc/PID/fd`
/// reading by the same user. Reset by `execve` of an ordinary program. One system call
/// (async-signal-safe in practice; not in POSIX's list).
pub(crate) fn not_dumpable() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// `RLIMIT_NOFILE`'s soft limit (`u64::MAX` when unlimited), 1024 if it can't be
/// read. Async-signal-safe.
pub(crate) fn nofile_soft_limit() -> u64 {
    prlimit(libc::RLIMIT_NOFILE as libc::c_int, None).map_or(1024, |[soft, _]| soft)
}

/// The system calls that take 32-bit ids: on i386 and 32-bit ARM (and the other
/// architectures that began with 16-bit ids) `setuid` and the like are the old 16-bit
/// calls, and libc's wrappers call the `32` ones.
#[cfg(any(
    target_arch = "x86",
    target_arch = "arm",
    target_arch = "m68k",
    target_arch = "sparc"
))]
mod id_calls {
    pub(super) use libc::{
        SYS_setgid32 as SETGID, SYS_setgroups32 as SETGROUPS, SYS_setuid32 as SETUID,
    };
}
#[cfg(not(any(
    target_arch = "x86",
    target_arch = "arm",
    target_arch = "m68k",
    target_arch = "sparc"
)))]
mod id_calls {
    pub(super) use libc::{SYS_setgid as SETGID, SYS_setgroups as SETGROUPS, SYS_setuid as SETUID};
}

// setuid, setgid and setgroups are raw system calls, which change the calling thread's
// credentials alone (as the kernel does; the capabilities were always per thread):
// stage 3 runs them only in a process with no other thread, after stage 1's fork or,
// without a fork, once `Stages::process_ids` has counted the threads. (libc's wrappers
// would broadcast them to every thread, which links musl's `__synccall`, about
// 1.5 KiB.)

/// `setgroups(2)`, for the calling thread. Async-signal-safe (one system call).
pub(crate) fn setgroups(groups: &[libc::gid_t]) -> Result<()> {
    // SAFETY: the pointer and length come from the same slice of 32-bit gids, what
    // the call (the `32` one where there are two) reads.
    let ret = unsafe {
        libc::syscall(
            id_calls::SETGROUPS,
            groups.len() as libc::c_long,
            groups.as_ptr(),
        )
    };
    check(ret as c_int).map(drop)
}

/// `setgid(2)`, for the calling thread. Async-signal-safe (one system call).
pub(crate) fn setgid(gid: libc::gid_t) -> Result<()> {
    // SAFETY: setgid takes an integer and touches no memory.
    check(unsafe { libc::syscall(id_calls::SETGID, gid as libc::c_long) } as c_int).map(drop)
}

/// `setuid(2)`, for the calling thread. Async-signal-safe (one system call).
pub(crate) fn setuid(uid: libc::uid_t) -> Result<()> {
    // SAFETY: setuid takes an integer and touches no memory.
    check(unsafe { libc::syscall(id_calls::SETUID, uid as libc::c_long) } as c_int).map(drop)
}

/// `chroot(2)`. Async-signal-safe (a plain system call on Linux).
pub(crate) fn chroot(path: &CStr) -> Result<()> {
    // SAFETY: path is a valid NUL-terminated string.
    check(unsafe { libc::chroot(path.as_ptr()) }).map(drop)
}

/// `prctl(option, arg)` with integer arguments: `PR_SET_KEEPCAPS`, `PR_CAPBSET_READ`,
/// `PR_CAPBSET_DROP`, `PR_SET_NO_NEW_PRIVS`; its non-negative result. Async-signal-safe.
pub(crate) fn prctl(option: c_int, arg: libc::c_ulong) -> Result<c_int> {
    // SAFETY: these options take integers and touch no memory.
    check(unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
}

/// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)`. Async-signal-safe.
pub(crate) fn ambient_raise(cap: u8) -> Result<()> {
    // SAFETY: integer arguments only.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(ret).map(drop)
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_V3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct` (libc has no capget/capset wrappers).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The calling thread's capability sets (`capget(2)`), as 64-bit masks:
/// `[effective, permitted, inheritable]`. Async-signal-safe.
pub(crate) fn capget() -> Result<[u64; 3]> {
    let mut header = CapHeader {
        version: CAPABILITY_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and the two-element data array (version 3's size) are valid
    // writable memory for the call.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    check(ret as c_int)?;
    let both = |f: fn(&CapData) -> u32| u64::from(f(&data[0])) | u64::from(f(&data[1])) << 32;
    Ok([
        both(|d| d.effective),
        both(|d| d.permitted),
        both(|d| d.inheritable),
    ])
}

/// `capset(2)` of the calling thread's three sets at once, from 64-bit masks.
/// Async-signal-safe.
pub(crate) fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    let mut header = CapHeader {
        version: CAPABILITY_V3,
        pid: 0,
    };
    let word = |mask: u64, i: u32| (mask >> (32 * i)) as u32;
    let data = [0, 1].map(|i| CapData {
        effective: word(effective, i),
        permitted: word(permitted, i),
        inheritable: word(inheritable, i),
    });
    // SAFETY: header and the two-element data array are valid memory for the call.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    check(ret as c_int).map(drop)
}

/// `sigprocmask(SIG_SETMASK, ∅)`—Unblocks every signal. Async-signal-safe.
pub(crate) fn unblock_all_signals() -> Result<()> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: set is writable memory the size of sigset_t; sigemptyset initialises it.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    // SAFETY: set was initialised by sigemptyset; a null old-set pointer is allowed.
    check(unsafe { libc::sigprocmask(libc::SIG_SETMASK, set.as_ptr(), core::ptr::null_mut()) })
        .map(drop)
}

/// `sigprocmask(SIG_UNBLOCK, {sig})`. Async-signal-safe.
pub(crate) fn unblock_signal(sig: c_int) -> Result<()> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: set is writable memory the size of sigset_t; sigemptyset initialises it
    // and sigaddset adds one valid signal number to it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), sig);
    }
    // SAFETY: set was initialised above; a null old-set pointer is allowed.
    check(unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, set.as_ptr(), core::ptr::null_mut()) })
        .map(drop)
}

/// A signal disposition for [`sigaction`].
#[derive(Clone, Copy)]
pub(crate) enum Disposition {
    Default,
    Ignore,
    /// A handler installed with `SA_RESTART`: interrupted system calls resume.
    Handler(extern "C" fn(c_int)),
    /// A handler installed without it, with every signal blocked while it runs: a
    /// blocking call the signal interrupts (`accept`, `read`, `poll`) fails with
    /// `EINTR`, so a loop sees what the handler did.
    Interrupting(extern "C" fn(c_int)),
}

/// `sigaction(2)`—Sets `sig`'s disposition with an empty handler mask, and
/// `SA_RESTART` for [`Disposition::Handler`]. Async-signal-safe.
pub(crate) fn sigaction(sig: c_int, disposition: Disposition) -> Result<()> {
    // SAFETY: all-zero bytes are a valid struct sigaction (null handler, empty mask, no flags).
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = match disposition {
        Disposition::Default => libc::SIG_DFL,
        Disposition::Ignore => libc::SIG_IGN,
        Disposition::Handler(f) => {
            sa.sa_flags = libc::SA_RESTART;
            f as usize
        }
        Disposition::Interrupting(f) => {
            // One at a time: signals pending together then run their handlers in
            // the order the kernel takes them (else each nests over the last, and
            // they run in reverse).
            // SAFETY: sa_mask is a valid sigset_t inside sa.
            unsafe { libc::sigfillset(&mut sa.sa_mask) };
            f as usize
        }
    };
    // SAFETY: sa is initialised above; a null old-action pointer is allowed.
    check(unsafe { libc::sigaction(sig, &sa, core::ptr::null_mut()) }).map(drop)
}

/// A signal's disposition as it was, saved by [`ignore_saving`] to be put back by
/// [`restore`].
#[derive(Clone, Copy)]
pub(crate) struct Saved(libc::sigaction);

impl core::fmt::Debug for Saved {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Saved")
    }
}

/// `sigaction(2)`: ignores `sig`, returning its disposition until now. Async-signal-safe.
pub(crate) fn ignore_saving(sig: c_int) -> Result<Saved> {
    // SAFETY: all-zero bytes are a valid struct sigaction (null handler, empty mask, no flags).
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = libc::SIG_IGN;
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: sa is initialised and old is writable, both for the duration of the call.
    check(unsafe { libc::sigaction(sig, &sa, &mut old) })?;
    Ok(Saved(old))
}

/// `sigaction(2)`: puts back a disposition [`ignore_saving`] saved. Async-signal-safe.
pub(crate) fn restore(sig: c_int, saved: &Saved) -> Result<()> {
    // SAFETY: saved.0 was filled by the kernel; a null old-action pointer is allowed.
    check(unsafe { libc::sigaction(sig, &saved.0, core::ptr::null_mut()) }).map(drop)
}

/// The highest signal number (`SIGRTMAX`). Async-signal-safe.
pub fn sigrtmax() -> c_int {
    libc::SIGRTMAX()
}

/// `kill(2)`. Async-signal-safe.
pub fn kill(pid: libc::pid_t, sig: c_int) -> Result<()> {
    // SAFETY: kill takes ints and touches no memory.
    check(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// `pidfd_open(2)` (Linux 5.3): a descriptor that names process `pid` itself, not
/// whichever process gets its number next. `ENOSYS` on older kernels (and qemu-user
/// builds without it). Close-on-exec.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> Result<c_int> {
    // SAFETY: pidfd_open takes a pid and a flags word and touches no memory.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    check(ret as c_int)
}

/// `pidfd_send_signal(2)`: `kill` through a pidfd, so a reused pid is never signalled
/// (`ESRCH` once the process is gone).
pub(crate) fn pidfd_send_signal(pidfd: c_int, sig: c_int) -> Result<()> {
    // SAFETY: a null siginfo is allowed (the kernel fills in a kill-like one).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            core::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    check(ret as c_int).map(drop)
}

/// `waitpid(2)` for one child, retried on `EINTR`: the raw wait status.
pub(crate) fn waitpid(pid: libc::pid_t) -> Result<c_int> {
    let mut status: c_int = 0;
    // SAFETY: status is valid writable memory for the call.
    retry(|| check(unsafe { libc::waitpid(pid, &mut status, 0) }))?;
    Ok(status)
}

/// `poll(2)` on up to three descriptors for input; `timeout_ms` < 0 waits forever.
/// Returns how many are ready (0 on timeout); `EINTR` is retried.
pub(crate) fn poll_in(fds: &mut [libc::pollfd], timeout_ms: c_int) -> Result<usize> {
    // SAFETY: the pointer and length come from the same slice of pollfd.
    retry(|| check(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) }))
        .map(|n| n as usize)
}

/// `nanosleep(2)` for `ms` milliseconds (restarted after signals). Async-signal-safe.
pub fn sleep_ms(ms: u32) {
    let mut req = libc::timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    };
    let mut rem = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: req and rem are valid timespecs for the duration of each call.
    while unsafe { libc::nanosleep(&req, &mut rem) } == -1 && last_errno() == Errno::INTR {
        req = rem;
    }
}

/// `clock_gettime(CLOCK_MONOTONIC)` as seconds and nanoseconds, both widened to `u64`
/// (where `time_t` is 32 bits, `tv_sec * 1_000_000` in `time_t` would overflow after
/// 35 minutes of uptime). Async-signal-safe.
///
/// On 64-bit targets one raw system call, whose `struct timespec` is two `long`s
/// there: libc's wrapper would look the call up in the vDSO first, which links musl's
/// ELF symbol lookup (about 700 bytes) to save some 50 ns on each of the few calls this
/// crate makes (timeouts, polling, `MONOTONIC_USEC=`). On 32-bit targets libc's, which
/// picks between the 64-bit-time call and the old one for the kernel it runs on.
fn monotonic() -> (u64, u64) {
    #[cfg(target_pointer_width = "64")]
    {
        let mut ts: [libc::c_long; 2] = [0; 2];
        // SAFETY: ts is writable memory of the kernel's timespec layout on 64-bit
        // targets; CLOCK_MONOTONIC always exists on Linux.
        unsafe {
            libc::syscall(
                libc::SYS_clock_gettime,
                libc::CLOCK_MONOTONIC as libc::c_long,
                ts.as_mut_ptr(),
            )
        };
        (ts[0] as u64, ts[1] as u64)
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is valid writable memory; CLOCK_MONOTONIC always exists on Linux.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        (ts.tv_sec as u64, ts.tv_nsec as u64)
    }
}

/// `clock_gettime(CLOCK_MONOTONIC)` in milliseconds. Async-signal-safe.
pub fn monotonic_ms() -> u64 {
    let (secs, nanos) = monotonic();
    secs * 1000 + nanos / 1_000_000
}

/// `close_range(2)` (Linux 5.9) through a raw system call: the libc crate has no musl
/// wrapper. `ENOSYS` on older kernels. Async-signal-safe (one system call).
pub(crate) fn close_range(first: u32, last: u32) -> Result<()> {
    // SAFETY: close_range takes three ints and touches no user memory.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if ret == -1 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// `getdents64(2)` through a raw system call (musl before 1.2.4 has no wrapper): fills
/// `buf` with `linux_dirent64` records, 0 at the end. Async-signal-safe (one system call).
pub(crate) fn getdents64(fd: c_int, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: the pointer and length come from the same writable slice.
    let ret = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
    if ret < 0 {
        Err(last_errno())
    } else {
        Ok(ret as usize)
    }
}

/// Lock operations on a pid file. Two locks are taken on the same open file:
///
/// - an open-file-description lock (`F_OFD_SETLK`, Linux 3.15), which belongs to the
///   open file and so survives fork, unlike classic `fcntl` record locks, and conflicts
///   with those (Python's `fcntl.lockf`, lockfile libraries);
/// - a `flock(2)` lock, which Linux keeps apart from `fcntl`'s, for the programs that use
///   it (FreeBSD's pidfile(3), util-linux `flock`, the `daemonize` crate). Same owner
///   rules: it belongs to the open file and survives fork and exec.
///
/// Either held by someone else means "held". Kernels without OFD locks (`EINVAL`) get
/// the `flock` alone.
pub(crate) mod lock {
    use super::*;

    /// How many times a `flock` contested by shared holders only is retried,
    /// [`FLOCK_PAUSE_MS`] apart (two seconds in all): a holder query ([`is_held`]) and
    /// a stale-file removal ([`try_shared`]) hold a shared `flock` for an instant, and
    /// a start must not fail because of them. An exclusive holder fails at once.
    const FLOCK_TRIES: u32 = 2000;
    const FLOCK_PAUSE_MS: u32 = 1;

    fn whole_file(kind: c_int) -> libc::flock {
        // SAFETY: all-zero bytes are a valid struct flock (and clear any padding fields).
        let mut fl: libc::flock = unsafe { core::mem::zeroed() };
        fl.l_type = kind as _;
        fl.l_whence = libc::SEEK_SET as _;
        fl
    }

    fn flock(fd: c_int, op: c_int) -> Result<()> {
        // SAFETY: flock takes ints and touches no memory.
        match check(unsafe { libc::flock(fd, op) }) {
            Ok(_) => Ok(()),
            Err(e) if e.raw() == libc::EWOULDBLOCK => Err(Errno::AGAIN),
            Err(e) => Err(e),
        }
    }

    /// Takes both exclusive locks without waiting (beyond [`FLOCK_TRIES`] short
    /// retries): `Err(EAGAIN)` while another open file holds either. On failure the
    /// caller closes `fd`, which drops what was taken. Async-signal-safe.
    pub(crate) fn try_exclusive(fd: c_int) -> Result<()> {
        let fl = whole_file(libc::F_WRLCK);
        // SAFETY: fl is a valid struct flock for the duration of the call.
        match unsafe { fcntl(fd, libc::F_OFD_SETLK, &fl as *const libc::flock as usize) } {
            Ok(_) | Err(Errno::INVAL) => {}
            Err(e) if e.raw() == libc::EACCES || e.raw() == libc::EWOULDBLOCK => {
                return Err(Errno::AGAIN)
            }
            Err(e) => return Err(e),
        }
        // Counted down through `black_box`, so that an optimising build does not
        // unroll the retries.
        let mut tries = core::hint::black_box(FLOCK_TRIES);
        loop {
            match flock(fd, libc::LOCK_EX | libc::LOCK_NB) {
                // Held: exclusively (a live holder), or shared only (a query or a
                // removal, for an instant: then a shared lock of ours is granted).
                Err(Errno::AGAIN) if tries > 1 && try_shared(fd).is_ok() => {
                    unlock(fd);
                    tries -= 1;
                    sleep_ms(FLOCK_PAUSE_MS);
                }
                other => return other,
            }
        }
    }

    /// Takes a shared `flock` without waiting: `Err(EAGAIN)` while another open file
    /// holds it exclusively. Held until [`unlock`] or the last close; a starting
    /// [`try_exclusive`] waits for it. Async-signal-safe.
    pub(crate) fn try_shared(fd: c_int) -> Result<()> {
        flock(fd, libc::LOCK_SH | libc::LOCK_NB)
    }

    /// Drops this open file's `flock`. Async-signal-safe.
    pub(crate) fn unlock(fd: c_int) {
        let _ = flock(fd, libc::LOCK_UN);
    }

    /// Whether another open file holds an OFD or POSIX `fcntl` lock on `fd`'s file
    /// (`F_OFD_GETLK`; kernels without OFD locks answer "no").
    pub(crate) fn record_locked(fd: c_int) -> Result<bool> {
        let mut fl = whole_file(libc::F_WRLCK);
        // SAFETY: fl is a valid, writable struct flock for the duration of the call.
        match unsafe { fcntl(fd, libc::F_OFD_GETLK, &mut fl as *mut libc::flock as usize) } {
            Ok(_) => Ok(fl.l_type as c_int != libc::F_UNLCK),
            Err(Errno::INVAL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether some other open file holds a lock of any kind on `fd`'s file, without
    /// taking it: `F_OFD_GETLK` answers for OFD and `fcntl` locks; only when it says
    /// "free" is a shared `flock` tried and dropped at once (a start racing with that
    /// instant retries its own `flock`, see [`try_exclusive`]).
    pub(crate) fn is_held(fd: c_int) -> Result<bool> {
        if record_locked(fd)? {
            return Ok(true);
        }
        match try_shared(fd) {
            Ok(()) => {
                unlock(fd);
                Ok(false)
            }
            Err(Errno::AGAIN) => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// Reads a small file (`/proc/self/stat`) into `buf`; returns the bytes read. Not
/// called after fork.
pub(crate) fn read_small_file<'b>(path: &CStr, buf: &'b mut [u8]) -> Result<&'b [u8]> {
    let fd = open(path, libc::O_RDONLY, 0)?;
    let mut len = 0;
    let result = loop {
        match read(fd, &mut buf[len..]) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                len += n;
                if len == buf.len() {
                    break Ok(());
                }
            }
            Err(e) => break Err(e),
        }
    };
    close(fd);
    result.map(|()| &buf[..len])
}

/// The user database entry fields the stages need, copied out of `getpwnam_r`.
pub(crate) struct Passwd {
    pub(crate) uid: libc::uid_t,
    pub(crate) gid: libc::gid_t,
    pub(crate) name: heapless::Vec<u8, 64>,
}

fn passwd_from(pw: &libc::passwd) -> Passwd {
    let mut name = heapless::Vec::new();
    if !pw.pw_name.is_null() {
        // SAFETY: getpw*_r set pw_name to a NUL-terminated string inside our buffer.
        let bytes = unsafe { CStr::from_ptr(pw.pw_name) }.to_bytes();
        let _ = name.extend_from_slice(&bytes[..bytes.len().min(63)]);
    }
    Passwd {
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        name,
    }
}

/// `getpwnam_r(3)` / `getpwuid_r(3)`—Looks a user up. `Ok(None)` when there is no such
/// user. Not async-signal-safe (NSS, files): called before fork only.
pub(crate) fn getpw(name: Option<&CStr>, uid: libc::uid_t) -> Result<Option<Passwd>> {
    let mut buf = [0u8; 2048];
    // SAFETY: all-zero bytes are a valid struct passwd (null pointers, zero ids).
    let mut pw: libc::passwd = unsafe { core::mem::zeroed() };
    let mut result: *mut libc::passwd = core::ptr::null_mut();
    let ret = match name {
        // SAFETY: name is NUL-terminated; pw, buf and result are valid for the call and
        // buf's length is passed with it.
        Some(n) => unsafe {
            libc::getpwnam_r(
                n.as_ptr(),
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        },
        // SAFETY: as above.
        None => unsafe {
            libc::getpwuid_r(
                uid,
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        },
    };
    if result.is_null() {
        return if ret == 0 || ret == libc::ENOENT || ret == libc::ESRCH {
            Ok(None)
        } else {
            Err(Errno(ret))
        };
    }
    Ok(Some(passwd_from(&pw)))
}

/// `getgrnam_r(3)`—A group's id by name; `Ok(None)` when there is none. Before fork only.
pub(crate) fn getgrnam(name: &CStr) -> Result<Option<libc::gid_t>> {
    let mut buf = [0u8; 4096];
    // SAFETY: all-zero bytes are a valid struct group.
    let mut gr: libc::group = unsafe { core::mem::zeroed() };
    let mut result: *mut libc::group = core::ptr::null_mut();
    // SAFETY: name is NUL-terminated; gr, buf and result are valid for the call.
    let ret = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut gr,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if result.is_null() {
        return if ret == 0 || ret == libc::ENOENT || ret == libc::ESRCH {
            Ok(None)
        } else {
            Err(Errno(ret))
        };
    }
    Ok(Some(gr.gr_gid))
}

/// `getgrouplist(3)`—`user`'s supplementary groups plus `gid`, into `out`; returns how
/// many. `Err(ERANGE)` when `out` is too small. Before fork only.
pub(crate) fn getgrouplist(
    user: &CStr,
    gid: libc::gid_t,
    out: &mut [libc::gid_t],
) -> Result<usize> {
    let mut n = out.len() as c_int;
    // SAFETY: user is NUL-terminated; out has room for n entries, as passed.
    let ret = unsafe { libc::getgrouplist(user.as_ptr(), gid, out.as_mut_ptr(), &mut n) };
    if ret < 0 {
        Err(Errno(libc::ERANGE))
    } else {
        Ok(n as usize)
    }
}

/// Turns `bytes` (no interior NUL) into a NUL-terminated `CStr` inside `buf`.
pub(crate) fn cstr_in<'b>(bytes: &[u8], buf: &'b mut [u8]) -> Option<&'b CStr> {
    if bytes.len() >= buf.len() || bytes.contains(&0) {
        return None;
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()] = 0;
    until_nul(&buf[..=bytes.len()])
}

/// `exit(3)`—Ends the process normally: atexit hooks and stdio flushing run. Not
/// async-signal-safe: the original process only.
pub(crate) fn exit_normal(code: c_int) -> ! {
    // SAFETY: exit takes an int and never returns; only the original process calls it.
    unsafe { libc::exit(code) }
}

/// `getenv(3)`—The value of the environment variable `name`, or `None` when unset.
/// Reads the environment in place: no allocation, and no lock in glibc or musl, so
/// it may be read in the daemon and its signal handlers (not POSIX-listed as
/// async-signal-safe; assumed so for that reason). The value lives until the variable
/// changes, which this crate does only while single-threaded, before fork
/// ([`unsetenv`]).
///
/// A scan of `environ` (what glibc's and musl's `getenv` do), shared with
/// [`Envp::get`](crate::Envp::get): the C library's own costs a few hundred bytes more.
pub(crate) fn getenv(name: &CStr) -> Option<&'static CStr> {
    crate::Envp::current().get(name.to_bytes())
}

/// `unsetenv(3)`—Removes `name` from the environment (success if it was not set). Not
/// async-signal-safe, and not thread-safe: it changes memory `getenv` in other threads
/// may be reading. Only while single-threaded.
pub(crate) fn unsetenv(name: &CStr) -> Result<()> {
    // SAFETY: name is NUL-terminated; the callers are single-threaded (see above).
    check(unsafe { libc::unsetenv(name.as_ptr()) }).map(drop)
}

/// `socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC)`—An unbound, unconnected Unix datagram
/// socket. Async-signal-safe.
pub(crate) fn unix_datagram_socket() -> Result<c_int> {
    // SAFETY: socket takes ints and touches no memory.
    check(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })
}

/// `sendto(2)` with `MSG_NOSIGNAL` of one datagram to the Unix address `addr`, its
/// first `len` bytes (capped at its size), retried on `EINTR`: the bytes sent.
/// Async-signal-safe.
pub(crate) fn sendto_unix(
    fd: c_int,
    buf: &[u8],
    addr: &libc::sockaddr_un,
    len: libc::socklen_t,
) -> Result<usize> {
    let len = len.min(core::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t);
    retry(|| {
        // SAFETY: buf is valid readable memory of buf.len() bytes; addr is a valid
        // sockaddr_un of at least len bytes (capped above).
        check_ssize(unsafe {
            libc::sendto(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
                (addr as *const libc::sockaddr_un).cast(),
                len,
            )
        })
    })
}

/// `mkdtemp(3)`—Makes a fresh directory, mode 0700, from `template` (ending in
/// `XXXXXX`, replaced in place). Not called after fork.
pub(crate) fn mkdtemp(template: &mut [u8]) -> Result<()> {
    if template.last() != Some(&0) {
        return Err(Errno::INVAL);
    }
    // SAFETY: template is writable and NUL-terminated (checked above).
    let made = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if made.is_null() {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// `rmdir(2)`. Async-signal-safe.
pub(crate) fn rmdir(path: &CStr) -> Result<()> {
    // SAFETY: path is a valid NUL-terminated string.
    check(unsafe { libc::rmdir(path.as_ptr()) }).map(drop)
}

/// `lchown(2)`. Async-signal-safe.
pub(crate) fn lchown(path: &CStr, uid: libc::uid_t, gid: libc::gid_t) -> Result<()> {
    // SAFETY: path is a valid NUL-terminated string.
    check(unsafe { libc::lchown(path.as_ptr(), uid, gid) }).map(drop)
}

/// `access(path, W_OK)`: whether this process may write in `path`. Async-signal-safe.
pub(crate) fn writable(path: &CStr) -> bool {
    // SAFETY: path is a valid NUL-terminated string.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

/// `bind(2)` of a Unix socket to the address `addr`, its first `len` bytes.
pub(crate) fn bind_unix(fd: c_int, addr: &libc::sockaddr_un, len: libc::socklen_t) -> Result<()> {
    let len = len.min(core::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t);
    // SAFETY: addr is a valid sockaddr_un of at least len bytes (capped above).
    check(unsafe { libc::bind(fd, (addr as *const libc::sockaddr_un).cast(), len) }).map(drop)
}

/// `setsockopt(SOL_SOCKET, SO_PASSCRED, 1)`: every datagram received carries its
/// sender's credentials.
pub(crate) fn pass_credentials(fd: c_int) -> Result<()> {
    let one: c_int = 1;
    // SAFETY: &one is valid readable memory of the given size.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&one as *const c_int).cast(),
            core::mem::size_of::<c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Room for the control messages of one received notification: credentials and some
/// 50 descriptors (a `cmsghdr` is 16 bytes on 64-bit Linux, `ucred` 12). More are
/// cut by the kernel (`MSG_CTRUNC`), which closes them itself.
const CONTROL_LEN: usize = 256;

/// One datagram received by [`recv_datagram`].
pub(crate) struct Datagram {
    /// Bytes written into the buffer.
    pub(crate) len: usize,
    /// The datagram was longer than the buffer (`MSG_TRUNC`): the rest was dropped.
    pub(crate) truncated: bool,
    /// The sender's pid from `SCM_CREDENTIALS`, when there was one.
    pub(crate) pid: Option<u32>,
    /// Descriptors that came with it (`SCM_RIGHTS`), already closed.
    pub(crate) fds: usize,
}

/// `recvmsg(2)`, `MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC`, of one datagram into
/// `buf`: its length, whether it was cut, the sender's pid (`SCM_CREDENTIALS`, with
/// `SO_PASSCRED`), and how many descriptors came with it, each closed at once (a
/// sender such as `systemd-notify` waits for them to close).
pub(crate) fn recv_datagram(fd: c_int, buf: &mut [u8]) -> Result<Datagram> {
    #[repr(C, align(8))]
    struct Control([u8; CONTROL_LEN]);
    let mut control = Control([0; CONTROL_LEN]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = CONTROL_LEN as _;
    let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC | libc::MSG_TRUNC;
    // SAFETY: msg points to valid iovec and control buffers of the lengths given.
    let n = retry(|| check_ssize(unsafe { libc::recvmsg(fd, &mut msg, flags) }))?;
    let mut got = Datagram {
        len: n.min(buf.len()),
        truncated: n > buf.len() || msg.msg_flags & libc::MSG_TRUNC != 0,
        pid: None,
        fds: 0,
    };
    // SAFETY: msg's control buffer was filled by the kernel; CMSG_FIRSTHDR and
    // CMSG_NXTHDR stay within msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: cmsg is a valid header inside the control buffer (see above).
        let (level, kind, len) =
            unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
        // SAFETY: as above; the data follows the header.
        let data = unsafe { libc::CMSG_DATA(cmsg) };
        // SAFETY: CMSG_LEN(0) is a constant computation.
        let header = unsafe { libc::CMSG_LEN(0) } as usize;
        let payload = (len as usize).saturating_sub(header);
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            for i in 0..payload / core::mem::size_of::<c_int>() {
                // SAFETY: the kernel wrote payload bytes of descriptors at data.
                let fd = unsafe { data.cast::<c_int>().add(i).read_unaligned() };
                close(fd);
                got.fds += 1;
            }
        } else if level == libc::SOL_SOCKET
            && kind == libc::SCM_CREDENTIALS
            && payload >= core::mem::size_of::<libc::ucred>()
        {
            // SAFETY: the kernel wrote a ucred at data (length checked).
            let cred = unsafe { data.cast::<libc::ucred>().read_unaligned() };
            got.pid = u32::try_from(cred.pid).ok().filter(|&p| p > 0);
        }
        // SAFETY: msg and cmsg as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok(got)
}

/// `clock_gettime(CLOCK_MONOTONIC)` in microseconds. Async-signal-safe.
pub(crate) fn monotonic_us() -> u64 {
    let (secs, nanos) = monotonic();
    secs * 1_000_000 + nanos / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `until_nul` agrees with core's `CStr::from_bytes_until_nul`.
    #[test]
    fn until_nul_agrees_with_core() {
        for bytes in [
            &b""[..],
            b"\0",
            b"a",
            b"ab\0",
            b"ab\0cd\0",
            b"\0\0x",
            b"abc",
        ] {
            assert_eq!(
                until_nul(bytes),
                CStr::from_bytes_until_nul(bytes).ok(),
                "{bytes:?}"
            );
        }
    }

    /// `is_utf8` agrees with `str::from_utf8` on every sequence of one and two bytes
    /// and on the boundary cases of three and four (overlong forms, surrogates, past
    /// U+10FFFF, truncated sequences).
    #[test]
    fn is_utf8_agrees_with_core() {
        for a in 0..=255u8 {
            assert_eq!(is_utf8(&[a]), core::str::from_utf8(&[a]).is_ok(), "{a:#x}");
            for b in 0..=255u8 {
                let s = [a, b];
                assert_eq!(is_utf8(&s), core::str::from_utf8(&s).is_ok(), "{s:x?}");
            }
        }
        for s in [
            &[0xe0, 0x80, 0x80][..],
            &[0xe0, 0xa0, 0x80],
            &[0xed, 0xa0, 0x80],
            &[0xed, 0x9f, 0xbf],
            &[0xef, 0xbf, 0xbf],
            &[0xf0, 0x8f, 0xbf, 0xbf],
            &[0xf0, 0x90, 0x80, 0x80],
            &[0xf4, 0x8f, 0xbf, 0xbf],
            &[0xf4, 0x90, 0x80, 0x80],
            &[0xf0, 0x90, 0x80],
            "Keine Berechtigung: Zugriff verweigert (é, ü, 文)".as_bytes(),
        ] {
            assert_eq!(is_utf8(s), core::str::from_utf8(s).is_ok(), "{s:x?}");
        }
    }

    #[test]
    fn strerror_gives_the_system_text() {
        let mut buf = [0u8; 128];
        assert_eq!(
            strerror(libc::ENOENT, &mut buf),
            "No such file or directory"
        );
    }
}
