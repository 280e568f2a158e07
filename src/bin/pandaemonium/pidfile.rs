//! The pid file's contents, beyond the pid the core writes.
//!
//! Exec'ing PROGRAM directly, the file is the core's: `PID\n`, PROGRAM's pid (the
//! daemon became PROGRAM). Supervising, the supervisor holds the lock and rewrites it
//! with two lines ([`pandaemonium::rewrite_pid_file`]), `PROGRAM_PID\nSUPERVISOR_PID\n`
//! (between restarts, both are the supervisor's). Tools that read the first line see
//! PROGRAM; `stop` uses the second to stop the supervisor rather than have it restart
//! PROGRAM.

use pandaemonium::{os, Error, Holders, PidLockFile};

use crate::out::Msg;

/// The pids a pid file names.
#[derive(Clone, Copy, Default)]
pub struct Pids {
    /// The first line: PROGRAM (or the daemon, or the supervisor between restarts).
    pub program: Option<u32>,
    /// The second line: the supervisor, with `--supervise`.
    pub supervisor: Option<u32>,
}

/// The processes holding the file's lock (`PidLockFile::holders`); empty when the
/// lock went meanwhile. `Err` when there are none to go by (no `/proc`, or holders
/// this user may not inspect), said on stderr for `command`: the caller then goes by
/// the pid the file names, while the file is locked.
pub fn holders(command: &str, pid_file: &PidLockFile) -> Result<Holders, ()> {
    let why = match pid_file.holders() {
        Ok(h) if !h.is_empty() || !pid_file.is_active().unwrap_or(true) => return Ok(h),
        Ok(_) => None,
        Err(e) => Some(e),
    };
    let mut m = Msg::about(command, pid_file.path());
    m.s(": no lock holders to go by (");
    match &why {
        None => m.s("this user may not inspect them"),
        Some(e) => m.detail(e),
    };
    m.s("); going by the pid the file names").to(2);
    Err(())
}

/// `COMMAND: PATH names pid PID, which does not hold its lock` (the program forked and
/// exited, leaving the lock to its child, or the pid is a stranger's now), to go on.
#[inline(never)]
pub fn not_holding(command: &str, pid_file: &PidLockFile, pid: u32) -> Msg {
    let mut m = Msg::about(command, pid_file.path());
    m.s(" names pid ")
        .n(u64::from(pid))
        .s(", which does not hold its lock");
    m
}

/// Reads the pids in the file; none when it is missing or empty.
pub fn read(pid_file: &PidLockFile) -> Result<Pids, Error> {
    let [program, supervisor] = pid_file.read_pids()?;
    Ok(Pids {
        program,
        supervisor,
    })
}

/// [`read`], re-read briefly while a holder has locked the file but not yet written
/// its pid (FreeBSD's pidfile(3) waits the same 20 × 5 ms).
pub fn read_settled(pid_file: &PidLockFile) -> Result<Pids, Error> {
    for _ in 0..20 {
        let pids = read(pid_file)?;
        if pids.program.is_some() {
            return Ok(pids);
        }
        os::sleep_ms(5);
    }
    read(pid_file)
}
