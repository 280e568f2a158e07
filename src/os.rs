//! Thin system-call wrappers for programs built on the crate: the ones the stages use
//! themselves, one call each, `Result<_, Errno>`, no allocation.
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

use core::ffi::c_int;

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
}
