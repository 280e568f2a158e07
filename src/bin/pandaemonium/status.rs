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

use core::ffi::CStr;
use core::time::Duration;

use pandaemonium::PidLockFile;

use crate::args::{self, Cursor, Item, Parsed};
use crate::out::{self, Detail, Show};
use crate::pidfile;

/// `status`: returns the exit status.
pub fn main(cur: &mut Cursor) -> i32 {
    let path = match parse(cur) {
        Ok(path) => path,
        Err(code) => return code,
    };
    let pid_file = match PidLockFile::new(path, Duration::ZERO) {
        Ok(p) => p,
        Err(e) => return args::bad_value("pid-file", path, e.detail()),
    };
    match pid_file.is_active() {
        Err(e) => {
            out::error(format_args!("status: {}", Detail(&e)));
            4
        }
        Ok(true) => {
            match pidfile::read_settled(path) {
                Ok(pidfile::Pids {
                    program: Some(pid), ..
                }) => out::line(1, format_args!("{pid}")),
                Ok(_) => out::error(format_args!("status: {}: running, pid unknown", Show(path))),
                Err(e) => out::error(format_args!("status: {}: running; {e}", Show(path))),
            }
            0
        }
        Ok(false) => match pidfile::exists(path) {
            Ok(false) => {
                out::error(format_args!("status: {}: not running", Show(path)));
                3
            }
            Ok(true) => {
                match pidfile::read(path) {
                    Ok(pidfile::Pids {
                        program: Some(pid), ..
                    }) => out::error(format_args!(
                        "status: {}: dead (pid {pid}), pid file left behind",
                        Show(path)
                    )),
                    _ => out::error(format_args!(
                        "status: {}: dead, pid file left behind",
                        Show(path)
                    )),
                }
                1
            }
            Err(e) => {
                out::error(format_args!("status: {}: {e}", Show(path)));
                4
            }
        },
    }
}

fn parse(cur: &mut Cursor) -> Parsed<&'static CStr> {
    let mut path = None;
    while let Some(item) = cur.item()? {
        let (name, inline) = match item {
            Item::Opt { name, inline } => (name, inline),
            Item::End | Item::Operand(_) => {
                let what = cur.args.get(cur.next - 1).unwrap_or(c"");
                return Err(out::usage(format_args!(
                    "status: unexpected argument {}",
                    Show(what)
                )));
            }
        };
        match name {
            b"help" => {
                out::text(1, crate::HELP);
                return Err(0);
            }
            b"pid-file" => path = Some(cur.value(name, inline)?),
            _ => return Err(args::unknown(name)),
        }
    }
    path.ok_or_else(|| out::usage(format_args!("status: --pid-file PATH is required")))
}
