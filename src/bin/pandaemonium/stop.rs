//! `pandaemonium stop --pid-file PATH [--signal NAME|NUM] [--timeout SECS]`.
//!
//! Liveness is the pid file's lock, never the pid in it: the signal is sent only while
//! a live process holds the lock (checked right before each `kill`), so a stale file
//! whose pid has been reused by a stranger makes us signal no one. Then we wait up to
//! the timeout for the lock to go, and send SIGKILL; a stale file left behind is
//! removed (under its lock). Exit status: 0 stopped or not running, 1 could not stop.
//!
//! With `--supervise` the file's second line names the supervisor. The signals it
//! passes on (TERM, INT, HUP, USR1, USR2) go to it, so it stops PROGRAM rather than
//! restart it; any other goes to PROGRAM. SIGKILL goes to the supervisor first (so it
//! can restart nothing), then to PROGRAM.

use core::ffi::CStr;
use core::time::Duration;

use pandaemonium::{Errno, PidLockFile, Signal};

use crate::args::{self, Cursor, Item, Parsed};
use crate::out::{self, Msg};
use crate::{pidfile, supervise, sys};

/// The default `--timeout`, in milliseconds.
const TIMEOUT_MS: u64 = 10_000;
/// How long to wait for the lock to go after SIGKILL (at least).
const KILL_WAIT_MS: u64 = 5_000;
/// How often the lock is polled.
const POLL_MS: u64 = 20;

/// What `stop` (or `status`) was asked.
pub struct Stop {
    /// `--pid-file`.
    pub path: &'static CStr,
    signal: Signal,
    timeout_ms: u64,
}

/// `stop`: returns the exit status.
pub fn main(cur: &mut Cursor) -> i32 {
    let opts = match parse(cur, "stop") {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    let pid_file = match PidLockFile::new(opts.path, Duration::ZERO) {
        Ok(p) => p,
        Err(e) => return args::bad_pid_file(opts.path, &e),
    };
    match stop(&opts, &pid_file) {
        Ok(()) => {
            pidfile::remove_stale(opts.path);
            0
        }
        Err(()) => 1,
    }
}

/// Whether the lock is held; errors printed.
fn held(pid_file: &PidLockFile) -> Result<bool, ()> {
    pid_file.is_active().map_err(|e| {
        Msg::error().s("stop: ").detail(&e).to(2);
    })
}

/// Sends `sig` to `pid` if the lock is still held. `Ok(false)`: it was not.
fn signal(pid_file: &PidLockFile, pid: u32, sig: Signal) -> Result<bool, ()> {
    if !held(pid_file)? {
        return Ok(false);
    }
    match sys::kill(pid, sig.number()) {
        // Gone already: the lock goes with it (or with its last child).
        Ok(()) | Err(Errno::SRCH) => Ok(true),
        Err(e) => {
            Msg::error()
                .s("stop: kill ")
                .signal(sig.number())
                .s(" pid ")
                .n(u64::from(pid))
                .s(": ")
                .errno(e)
                .to(2);
            Err(())
        }
    }
}

/// Waits up to `ms` for the lock to go; whether it went.
fn released(pid_file: &PidLockFile, ms: u64) -> Result<bool, ()> {
    let deadline = sys::monotonic_ms().saturating_add(ms);
    loop {
        if !held(pid_file)? {
            return Ok(true);
        }
        if sys::monotonic_ms() >= deadline {
            return Ok(false);
        }
        sys::sleep_ms(POLL_MS);
    }
}

fn stop(opts: &Stop, pid_file: &PidLockFile) -> Result<(), ()> {
    if !held(pid_file)? {
        return Ok(());
    }
    let pids = pidfile::read_settled(opts.path).map_err(|e| {
        Msg::error().s("stop: ").c(opts.path).s(": ").errno(e).to(2);
    })?;
    let Some(program) = pids.program else {
        Msg::error()
            .s("stop: ")
            .c(opts.path)
            .s(": locked, but names no pid")
            .to(2);
        return Err(());
    };
    let target = match pids.supervisor {
        Some(sv) if supervise::FORWARDED.contains(&opts.signal.number()) => sv,
        _ => program,
    };
    if !signal(pid_file, target, opts.signal)? || released(pid_file, opts.timeout_ms)? {
        return Ok(());
    }
    Msg::error()
        .s("stop: pid ")
        .n(u64::from(target))
        .s(" still running ")
        .secs(opts.timeout_ms)
        .s(" s after ")
        .signal(opts.signal.number())
        .s("; sending SIGKILL")
        .to(2);
    match pids.supervisor {
        Some(sv) => {
            // The supervisor first, so that it restarts nothing; then PROGRAM as the
            // file names it now (the supervisor may have restarted it), read while
            // the supervisor still held the lock.
            let now = pidfile::read(opts.path).ok().and_then(|p| p.program);
            if signal(pid_file, sv, Signal::KILL)? {
                match now.unwrap_or(program) {
                    pid if pid != sv => {
                        let _ = sys::kill(pid, libc::SIGKILL);
                    }
                    _ => {}
                }
            }
        }
        None => {
            signal(pid_file, program, Signal::KILL)?;
        }
    }
    if released(pid_file, opts.timeout_ms.max(KILL_WAIT_MS))? {
        return Ok(());
    }
    Msg::error()
        .s("stop: ")
        .c(opts.path)
        .s(": still locked after SIGKILL (by a child of pid ")
        .n(u64::from(program))
        .s("?)")
        .to(2);
    Err(())
}

/// Parses `stop`'s options, or `status`'s (`--pid-file` only).
pub fn parse(cur: &mut Cursor, command: &str) -> Parsed<Stop> {
    let mut path = None;
    let mut signal = Signal::TERM;
    let mut timeout_ms = TIMEOUT_MS;
    while let Some(item) = cur.item()? {
        let Item::Opt { name, inline } = item else {
            return Err(args::unexpected(command, cur));
        };
        match name {
            b"help" => {
                out::text(1, crate::HELP);
                return Err(0);
            }
            b"pid-file" => path = Some(cur.value(name, inline)?),
            b"signal" if command == "stop" => {
                let v = cur.value(name, inline)?;
                let text = core::str::from_utf8(v.to_bytes()).unwrap_or("?");
                signal = Signal::parse(text)
                    .map_err(|_| args::bad_value("signal", v, "no such signal"))?;
            }
            b"timeout" if command == "stop" => {
                let v = cur.value(name, inline)?;
                timeout_ms = args::seconds(v.to_bytes())
                    .ok_or_else(|| args::bad_value("timeout", v, "not a number of seconds"))?;
            }
            _ => return Err(args::unknown(name)),
        }
    }
    let Some(path) = path else {
        return Err(Msg::error()
            .s(command)
            .s(": --pid-file PATH is required")
            .usage());
    };
    Ok(Stop {
        path,
        signal,
        timeout_ms,
    })
}
