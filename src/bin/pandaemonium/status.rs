//! `pandaemonium status --pid-file PATH`, with the LSB init-script exit codes.
//!
//! | status | meaning | output |
//! |---|---|---|
//! | 0 | running: a live process holds the lock | the pid, on stdout |
//! | 1 | dead, but the pid file exists (nobody holds its lock) | a line on stderr |
//! | 3 | not running: no pid file | a line on stderr |
//! | 4 | unknown: the file can't be read (permissions, a symlink...) | a line on stderr |
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
    let mut m = Msg::error();
    m.s("status: ");
    let code = match pid_file.is_active() {
        Err(e) => {
            m.detail(&e);
            4
        }
        Ok(true) => match pidfile::read_settled(path) {
            Ok(pidfile::Pids {
                program: Some(pid), ..
            }) => {
                Msg::new().n(u64::from(pid)).to(1);
                return 0;
            }
            Ok(_) => {
                m.c(path).s(": running, but names no pid");
                0
            }
            Err(e) => {
                m.c(path).s(": running; ").errno(e);
                0
            }
        },
        Ok(false) => match pidfile::exists(path) {
            Ok(false) => {
                m.c(path).s(": not running");
                3
            }
            Ok(true) => {
                m.c(path).s(": dead");
                if let Ok(pidfile::Pids {
                    program: Some(pid), ..
                }) = pidfile::read(path)
                {
                    m.s(" (pid ").n(u64::from(pid)).s(")");
                }
                m.s(", pid file left behind");
                1
            }
            Err(e) => {
                m.c(path).s(": ").errno(e);
                4
            }
        },
    };
    m.to(2);
    code
}
