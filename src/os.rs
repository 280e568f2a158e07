//! Thin system-call wrappers for programs built on the crate: the ones the stages use
//! themselves, and the few a supervisor adds (`open`, `poll`, `signalfd`), one call
//! each, `Result<_, Errno>`, no allocation.
//!
//! For `no_std` service starters and supervisors (the `pandaemonium` tool is built on
//! them) that would otherwise carry their own copy of this layer. Each function says
//! whether it is async-signal-safe; those that are may be called between `fork` and
//! `execve` and in signal handlers.
//!
//! ```
//! use pandaemonium::os;
//!
//! let (read_end, write_end) = os::pipe()?;
//! os::write_all(write_end, b"ready\n")?;
//! let mut buf = [0u8; 16];
//! assert_eq!(os::read(read_end, &mut buf)?, 6);
//! os::close(read_end);
//! os::close(write_end);
//! # Ok::<(), pandaemonium::Errno>(())
//! ```

use core::ffi::{c_int, CStr};

use crate::Errno;

pub use crate::sys::{
    block_signals, close, dup2, dup_at_least, exit_now, getpid, monotonic_ms, pipe, read,
    read_full, set_cloexec, set_ignored, sigrtmax, sleep_ms, wait_signal, write_all,
};

/// `kill(2)` to exactly one process: `pid` 0 (the caller's process group) and pids
/// beyond `pid_t` (which would wrap to negative: groups, or every process) are refused
/// with `ESRCH`. Async-signal-safe.
///
/// # Errors
///
/// `ESRCH` when there is no such process; `EPERM` when it is not ours to signal;
/// `EINVAL` for an invalid signal.
pub fn kill(pid: u32, sig: c_int) -> Result<(), Errno> {
    match libc::pid_t::try_from(pid) {
        Ok(pid) if pid > 0 => crate::sys::kill(pid, sig),
        _ => Err(Errno::SRCH),
    }
}

/// `open(2)` with `flags` (`O_CLOEXEC` and `O_LARGEFILE` added) and `mode` for a file
/// it creates; the descriptor is 3 or above, never on stdio. Async-signal-safe.
///
/// # Errors
///
/// `open`'s: `ENOENT`, `EACCES`, `EISDIR`...
pub fn open(path: &CStr, flags: c_int, mode: libc::mode_t) -> Result<c_int, Errno> {
    crate::sys::open(path, flags, mode)
}

/// `poll(2)` of `fds` for up to `timeout_ms` milliseconds (below 0: no limit), retried
/// on `EINTR`: how many have events (0 after the timeout). Async-signal-safe.
///
/// # Errors
///
/// `EINVAL` for too many descriptors; `ENOMEM`.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: c_int) -> Result<usize, Errno> {
    crate::sys::poll_in(fds, timeout_ms)
}

/// `signalfd(2)` (`SFD_CLOEXEC`) for the signals `sigs`: a descriptor that is readable
/// (to `poll`) while one of them is pending. Block them first ([`block_signals`]), and
/// take them with [`wait_signal`] (no wait): the descriptor is only polled, never read.
/// Linux only. Async-signal-safe.
///
/// With a pipe and the signals in one `poll`, a supervisor waits for its program's
/// output and its signals at once, with no handler.
///
/// # Errors
///
/// `EMFILE`, `ENFILE`, `ENOMEM`.
#[allow(unsafe_code)]
pub fn signalfd(sigs: &[c_int]) -> Result<c_int, Errno> {
    let mut set = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset then writes into it (an
    // invalid number is refused with EINVAL and leaves it as it was).
    let set = unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for &sig in sigs {
            libc::sigaddset(set.as_mut_ptr(), sig);
        }
        set.assume_init()
    };
    // SAFETY: set is an initialised sigset_t living for the call.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    if fd == -1 {
        Err(Errno::last())
    } else {
        Ok(fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_never_targets_a_group() {
        assert_eq!(kill(0, 0), Err(Errno::SRCH));
        assert_eq!(kill(u32::MAX, 0), Err(Errno::SRCH));
        assert_eq!(kill(1 << 31, 0), Err(Errno::SRCH));
        assert_eq!(kill(getpid() as u32, 0), Ok(()));
    }

    #[test]
    fn signalfd_is_readable_while_a_blocked_signal_is_pending() {
        // SIGWINCH, blocked on this thread only (the other tests' threads keep their
        // masks): raised to this thread, it stays pending here.
        let sig = libc::SIGWINCH;
        let fd = signalfd(&[sig]).unwrap();
        let mut pfd = [libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        #[allow(unsafe_code)]
        // SAFETY: the set is initialised by sigemptyset; pthread_sigmask and
        // pthread_kill take it and integers (this thread's own handle).
        unsafe {
            let mut set = core::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut());
            assert_eq!(poll(&mut pfd, 0), Ok(0), "nothing pending yet");
            libc::pthread_kill(libc::pthread_self(), sig);
        }
        assert_eq!(poll(&mut pfd, 1000), Ok(1));
        assert_eq!(wait_signal(&[sig], Some(0)), Some(sig));
        assert_eq!(poll(&mut pfd, 0), Ok(0), "taken");
        close(fd);
    }

    #[test]
    fn open_creates_with_the_flags_and_mode_given() {
        extern crate std;
        let dir = crate::test_dir::TestDir::new("os-open");
        let path = dir.path("f");
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND;
        let fd = open(&path, flags, 0o640).unwrap();
        assert!(fd > 2);
        write_all(fd, b"x").unwrap();
        close(fd);
        let fd = open(&path, flags, 0o600).unwrap();
        write_all(fd, b"y").unwrap();
        close(fd);
        assert_eq!(std::fs::read(dir.0.join("f")).unwrap(), b"xy");
        assert_eq!(open(&dir.path("none/f"), flags, 0o600), Err(Errno::NOENT));
    }
}
