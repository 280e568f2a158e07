//! The daemon's clean exit: remove its pid file if still ours, then `_exit`.
//!
//! Signal handlers can't reach the `Daemon` value (it may be gone by then, after
//! [`activate`](crate::Daemon::activate)), so stage 6 copies what removal needs, the
//! path, the descriptor and the file's device and inode, into these statics. Only
//! atomics are used, so reading them from a signal handler is async-signal-safe
//! and needs no `unsafe`.

use core::ffi::{c_int, CStr};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU8, Ordering::SeqCst};

use crate::pidfile::{names, PID_PATH_CAPACITY};
use crate::sys::{self, FileId};

// A `const` is the way to repeat a non-`Copy` initialiser in an array expression.
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: AtomicU8 = AtomicU8::new(0);
static PATH: [AtomicU8; PID_PATH_CAPACITY + 1] = [EMPTY; PID_PATH_CAPACITY + 1];
static FD: AtomicI32 = AtomicI32::new(sys::NO_FD);
// Device and inode as 32-bit halves: 32-bit MIPS and PowerPC have no 64-bit atomics.
static DEV: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];
static INO: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];

fn store64(slot: &[AtomicU32; 2], v: u64) {
    slot[0].store((v >> 32) as u32, SeqCst);
    slot[1].store(v as u32, SeqCst);
}

fn load64(slot: &[AtomicU32; 2]) -> u64 {
    (u64::from(slot[0].load(SeqCst)) << 32) | u64::from(slot[1].load(SeqCst))
}
static ARMED: AtomicBool = AtomicBool::new(false);
/// The daemon's end of the status pipe while set-up runs (-1 otherwise).
static REPORT_FD: AtomicI32 = AtomicI32::new(sys::NO_FD);

/// Records (or, with `sys::NO_FD`, clears) the daemon's status-pipe descriptor.
pub(crate) fn set_report_fd(fd: c_int) {
    REPORT_FD.store(fd, SeqCst);
}

/// The daemon's status-pipe descriptor during set-up, or `sys::NO_FD`.
pub(crate) fn report_fd() -> c_int {
    REPORT_FD.load(SeqCst)
}

/// Records the sealed pid file (stage 6, before any handler is installed).
pub(crate) fn register(path: &CStr, fd: c_int, id: FileId) {
    ARMED.store(false, SeqCst);
    let bytes = path.to_bytes_with_nul();
    for (slot, &b) in PATH.iter().zip(bytes) {
        slot.store(b, SeqCst);
    }
    FD.store(fd, SeqCst);
    store64(&DEV, id.dev);
    store64(&INO, id.ino);
    ARMED.store(true, SeqCst);
}

/// Disarms the clean-up when the file is released by other means (`fd` is ours).
pub(crate) fn forget(fd: c_int) {
    if FD.load(SeqCst) == fd {
        ARMED.store(false, SeqCst);
    }
}

/// Removes the daemon's pid file if the path still names the file it locked.
///
/// Returns whether it removed it. Async-signal-safe: call it from your own signal
/// handlers (the default `SIGTERM` handler calls it). A no-op outside a daemon whose
/// stage 6 sealed a pid file, and after the first removal.
pub fn remove_pid_file() -> bool {
    if !ARMED.swap(false, SeqCst) {
        return false;
    }
    // PATH's last slot is never written: the copy always holds a NUL.
    let mut buf = [0u8; PID_PATH_CAPACITY + 1];
    for (b, slot) in buf.iter_mut().zip(&PATH) {
        *b = slot.load(SeqCst);
    }
    let Ok(path) = CStr::from_bytes_until_nul(&buf) else {
        return false;
    };
    let id = FileId {
        dev: load64(&DEV),
        ino: load64(&INO),
    };
    names(path, id) && sys::unlink(path).is_ok()
}

/// Ends the daemon cleanly: removes its pid file if still ours, then `_exit(code)`
/// (no atexit hooks, no stdio flushing). Async-signal-safe.
///
/// With std, what `print!` left in std's stdout buffer is lost here (flushing takes a
/// lock a signal handler must not take): call `std::io::stdout().flush()` first when
/// not in a handler, or return from `run()`, after which the daemon flushes it.
pub fn exit(code: i32) -> ! {
    remove_pid_file();
    sys::exit_now(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_64_bit_device_or_inode_survives_its_two_halves() {
        let slot = [AtomicU32::new(0), AtomicU32::new(0)];
        for v in [
            0,
            1,
            0xffff_ffff,
            0x1_0000_0000,
            0x1234_5678_9abc_def0,
            u64::MAX,
        ] {
            store64(&slot, v);
            assert_eq!(load64(&slot), v, "{v:#x}");
        }
    }
}
