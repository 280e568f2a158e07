//! The pid file's contents, beyond the pid the core writes.
//!
//! Exec'ing PROGRAM directly, the file is the core's: `PID\n`, PROGRAM's pid (the
//! daemon became PROGRAM). Supervising, the supervisor holds the lock and rewrites it
//! with two lines ([`pandaemonium::rewrite_pid_file`]), `PROGRAM_PID\nSUPERVISOR_PID\n`
//! (between restarts, both are the supervisor's). Tools that read the first line see
//! PROGRAM; `stop` uses the second to stop the supervisor rather than have it restart
//! PROGRAM.

use pandaemonium::{os, Error, PidLockFile};

/// The pids a pid file names.
#[derive(Clone, Copy, Default)]
pub struct Pids {
    /// The first line: PROGRAM (or the daemon, or the supervisor between restarts).
    pub program: Option<u32>,
    /// The second line: the supervisor, with `--supervise`.
    pub supervisor: Option<u32>,
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
