//! The pid file's contents, beyond what the core's `PidLockFile` writes.
//!
//! Exec'ing PROGRAM directly, the file is the core's: `PID\n`, PROGRAM's pid (the
//! daemon became PROGRAM). Supervising, the supervisor holds the lock and writes two
//! lines, `PROGRAM_PID\nSUPERVISOR_PID\n` (while no program runs, between restarts,
//! both are the supervisor's). Tools that read the first line see PROGRAM; `stop` uses
//! the second to stop the supervisor rather than have it restart PROGRAM.

use core::ffi::CStr;
use core::time::Duration;

use pandaemonium::{Errno, PidLockFile};

use crate::out::digits;
use crate::{args, sys};

/// The pids a pid file names.
#[derive(Clone, Copy, Default)]
pub struct Pids {
    /// The first line: PROGRAM (or the daemon, or the supervisor between restarts).
    pub program: Option<u32>,
    /// The second line: the supervisor, with `--supervise`.
    pub supervisor: Option<u32>,
}

/// Writes `program` and `supervisor` into the locked pid file `fd`, after checking that
/// `path` still names it (device and inode, as the core's `release` does).
///
/// # Errors
///
/// `ESTALE` when `path` names another file (or none); `pwrite`/`ftruncate` failures.
pub fn write_pids(fd: i32, path: &CStr, program: u32, supervisor: u32) -> Result<(), Errno> {
    let ours = sys::fstat_id(fd)?;
    if !matches!(sys::lstat(path), Ok((id, _)) if id == ours) {
        return Err(Errno::from_raw(libc::ESTALE));
    }
    let mut line = [0u8; 22];
    let mut len = 0;
    for pid in [program, supervisor] {
        let mut buf = [0u8; 20];
        let text = digits(u64::from(pid), &mut buf);
        line[len..len + text.len()].copy_from_slice(text);
        len += text.len();
        line[len] = b'\n';
        len += 1;
    }
    // Overwrite, then cut: a reader never sees an empty file.
    sys::pwrite_all(fd, &line[..len], 0)?;
    sys::ftruncate(fd, len as i64)
}

/// Reads the pids in the file; none when it is missing or empty.
///
/// # Errors
///
/// `open`/`read` failures other than `ENOENT` (e.g. `ELOOP` for a symlink).
pub fn read(path: &CStr) -> Result<Pids, Errno> {
    let fd = match sys::open_read(path, true) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Pids::default()),
        Err(e) => return Err(e),
    };
    let mut buf = [0u8; 64];
    let n = sys::read(fd, &mut buf);
    sys::close(fd);
    let mut lines = buf[..n?].split(|&b| b == b'\n');
    let mut next = || lines.next().and_then(args::decimal).filter(|&p| p > 0);
    Ok(Pids {
        program: next(),
        supervisor: next(),
    })
}

/// [`read`], re-read briefly while a holder has locked the file but not yet written
/// its pid (FreeBSD's pidfile(3) waits the same 20 × 5 ms).
pub fn read_settled(path: &CStr) -> Result<Pids, Errno> {
    for _ in 0..20 {
        let pids = read(path)?;
        if pids.program.is_some() {
            return Ok(pids);
        }
        sys::sleep_ms(5);
    }
    read(path)
}

/// Whether something is at `path` (a symlink counts).
pub fn exists(path: &CStr) -> Result<bool, Errno> {
    match sys::lstat(path) {
        Ok(_) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a stale pid file ([`PidLockFile::remove_if_stale`]: never while a process
/// holds it, never making a concurrent start fail). Errors are ignored (e.g. no
/// permission).
pub fn remove_stale(path: &'static CStr) {
    if let Ok(pid_file) = PidLockFile::new(path, Duration::ZERO) {
        let _ = pid_file.remove_if_stale();
    }
}
