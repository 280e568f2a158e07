//! The daemon's clean exit: remove its pid file if still ours, then `_exit`.
//!
//! Signal handlers can't reach the `Daemon` value (it may be gone by then, after
//! [`activate`](crate::Daemon::activate)), so stage 6 copies what removal needs, the
//! path, the descriptor and the file's device and inode, into these statics. Only
//! atomics are used, so reading them from a signal handler is async-signal-safe
//! and needs no `unsafe`.

use core::ffi::{c_int, CStr};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU8, Ordering::SeqCst};

use crate::decimal::Dec;
use crate::pidfile::{names, PID_PATH_CAPACITY};
use crate::sys::{self, FileId};
use crate::Errno;

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
    // Swapped first: a handler interrupting this call finds it disarmed already.
    if !ARMED.swap(false, SeqCst) {
        return false;
    }
    let mut buf = [0u8; PID_PATH_CAPACITY + 1];
    let Some((path, _, id)) = registered(&mut buf) else {
        return false;
    };
    names(path, id) && sys::unlink(path).is_ok()
}

/// The daemon's sealed pid file as stage 6 registered it: path (in `buf`), descriptor
/// and identity (whether armed or not: callers check).
fn registered(buf: &mut [u8; PID_PATH_CAPACITY + 1]) -> Option<(&CStr, c_int, FileId)> {
    // PATH's last slot is never written: the copy always holds a NUL.
    for (b, slot) in buf.iter_mut().zip(&PATH) {
        *b = slot.load(SeqCst);
    }
    let path = crate::sys::until_nul(buf)?;
    let id = FileId {
        dev: load64(&DEV),
        ino: load64(&INO),
    };
    Some((path, FD.load(SeqCst), id))
}

/// Most pids [`rewrite_pid_file`] writes.
pub const PID_LINES_CAPACITY: usize = 4;

/// Rewrites the daemon's sealed pid file with `pids`, one per line: a supervisor that
/// stays the daemon writes its program's pid first (what tools that read one pid
/// see), then its own. Overwrites, then cuts, so a reader never sees an empty file.
/// Async-signal-safe.
///
/// # Errors
///
/// `EBADF` outside a daemon whose stage 6 sealed a pid file (or after
/// [`remove_pid_file`]); `ESTALE` when the path no longer names that file (it is left
/// alone); `EINVAL` for no pid or more than [`PID_LINES_CAPACITY`]; `pwrite` and
/// `ftruncate` failures.
pub fn rewrite_pid_file(pids: &[u32]) -> Result<(), Errno> {
    if pids.is_empty() || pids.len() > PID_LINES_CAPACITY {
        return Err(Errno::INVAL);
    }
    if !ARMED.load(SeqCst) {
        return Err(Errno::BADF);
    }
    let mut buf = [0u8; PID_PATH_CAPACITY + 1];
    let (path, fd, id) = registered(&mut buf).ok_or(Errno::BADF)?;
    if !names(path, id) {
        return Err(Errno::from_raw(libc::ESTALE));
    }
    let mut text = [0u8; PID_LINES_CAPACITY * 11];
    let mut len = 0;
    for &pid in pids {
        let dec = Dec::new(i64::from(pid));
        let digits = dec.as_bytes();
        text[len..len + digits.len()].copy_from_slice(digits);
        len += digits.len();
        text[len] = b'\n';
        len += 1;
    }
    sys::pwrite_all(fd, &text[..len], 0)?;
    sys::ftruncate(fd, len as i64)
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

    /// One test, not several: the registration is process-wide.
    #[test]
    fn a_rewrite_takes_one_to_four_pids_into_the_registered_file_only() {
        extern crate std;
        assert_eq!(rewrite_pid_file(&[]), Err(Errno::INVAL));
        assert_eq!(
            rewrite_pid_file(&[1; PID_LINES_CAPACITY + 1]),
            Err(Errno::INVAL)
        );
        // Outside a daemon whose stage 6 sealed a file: nothing to rewrite.
        assert_eq!(rewrite_pid_file(&[1; PID_LINES_CAPACITY]), Err(Errno::BADF));
        assert_eq!(rewrite_pid_file(&[1]), Err(Errno::BADF));
        // Registered as stage 6 does: the widest pids fit, one per line.
        let dir = crate::test_dir::TestDir::new("rewrite");
        let path = dir.0.join("p.pid");
        std::fs::write(&path, "1\n").unwrap();
        let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        let fd = sys::open(&cpath, sys::PID_FILE, 0).unwrap();
        register(&cpath, fd, sys::fstat(fd).unwrap().id);
        rewrite_pid_file(&[u32::MAX; PID_LINES_CAPACITY]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "4294967295\n".repeat(PID_LINES_CAPACITY));
        rewrite_pid_file(&[7, 8]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "7\n8\n",
            "cut to size"
        );
        // Replaced by another file: left alone.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "other\n").unwrap();
        assert_eq!(rewrite_pid_file(&[9]), Err(Errno::from_raw(libc::ESTALE)));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "other\n");
        forget(fd);
        sys::close(fd);
        assert_eq!(rewrite_pid_file(&[1]), Err(Errno::BADF));
    }

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
