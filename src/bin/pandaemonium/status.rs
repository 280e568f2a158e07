//! `pandaemonium status --pid-file PATH`, with the LSB init-script exit codes.
//!
//! | status | meaning | output |
//! |---|---|---|
//! | 0 | running: a live process holds the lock | the holders' pids, on stdout |
//! | 1 | dead, but the pid file exists (nobody holds its lock) | a line on stderr |
//! | 3 | not running: no pid file | a line on stderr |
//! | 4 | unknown: the file can't be read (permissions, a symlink...) | a line on stderr |
//!
//! The pids printed are the lock's holders (`PidLockFile::holders`, from `/proc`), the
//! one the file names first when it is one of them, on one line; a pid in the file that
//! holds nothing (the program forked and exited, leaving the lock to its child) is
//! named on stderr. Without `/proc`, or when the holders are another user's processes,
//! the pid the file names is printed, and stderr says why.
//!
//! Read-only: it never takes the lock, so it can't make a concurrent start fail.

use core::time::Duration;

use pandaemonium::PidLockFile;

use crate::args::{self, Cursor};
use crate::out::Msg;
use crate::pidfile;

/// `status`: returns the exit status.
pub fn main(cur: &mut Cursor) -> i32 {
    let path = match crate::stop::parse(cur, "status") {
        Ok(opts) => opts.path,
        Err(code) => return code,
    };
    let pid_file = match PidLockFile::new(path, Duration::ZERO) {
        Ok(p) => p,
        Err(e) => return args::bad_pid_file(path, &e),
    };
    let mut m = Msg::command("status");
    let code = match pid_file.is_active() {
        Err(e) => {
            m.detail(&e);
            4
        }
        Ok(true) => match pidfile::holders("status", &pid_file) {
            Ok(h) if !h.is_empty() => {
                print_holders(&pid_file, h.pids());
                return 0;
            }
            // It went meanwhile.
            Ok(_) => {
                m.c(path).s(": not running");
                3
            }
            Err(()) => return named(&pid_file),
        },
        Ok(false) => match pid_file.exists() {
            Ok(false) => {
                m.c(path).s(": not running");
                3
            }
            Ok(true) => {
                m.c(path).s(": dead");
                if let Ok(pidfile::Pids {
                    program: Some(pid), ..
                }) = pidfile::read(&pid_file)
                {
                    m.s(" (pid ").n(u64::from(pid)).s(")");
                }
                m.s(", pid file left behind");
                1
            }
            Err(e) => {
                m.detail(&e);
                4
            }
        },
    };
    m.to(2);
    code
}

/// Prints the holders, the one the file names first when it is one of them, and says
/// on stderr when the file names a pid that holds nothing.
fn print_holders(pid_file: &PidLockFile, holders: &[u32]) {
    let first = pidfile::read(pid_file)
        .ok()
        .and_then(|p| p.program)
        .filter(|&p| p > 0);
    let mut line = Msg::new();
    let ordered = first
        .filter(|p| holders.contains(p))
        .into_iter()
        .chain(holders.iter().copied().filter(|&p| Some(p) != first));
    for (i, pid) in ordered.enumerate() {
        line.s(if i == 0 { "" } else { " " }).n(u64::from(pid));
    }
    line.to(1);
    if let Some(pid) = first.filter(|p| !holders.contains(p)) {
        pidfile::not_holding("status", pid_file, pid).to(2);
    }
}

/// Running, without holders to go by: prints the pid the file names.
fn named(pid_file: &PidLockFile) -> i32 {
    let path = pid_file.path();
    let mut m = Msg::command("status");
    match pidfile::read_settled(pid_file) {
        Ok(pidfile::Pids {
            program: Some(pid), ..
        }) => {
            Msg::new().n(u64::from(pid)).to(1);
            return 0;
        }
        Ok(_) => {
            m.c(path).s(": running, but names no pid");
        }
        Err(e) => {
            m.c(path).s(": running; ").detail(&e);
        }
    }
    m.to(2);
    0
}
