//! `pandaemonium stop --pid-file PATH [--signal NAME|NUM] [--timeout SECS]`.
//!
//! Liveness is the pid file's lock, never the pid in it, and the processes signalled
//! are the lock's holders (`PidLockFile::holders`: every process with a descriptor that
//! holds an OFD, POSIX or `flock` lock on the file, from `/proc`): the child a program
//! left holding the lock when it forked and exited is found and stopped, and a pid in
//! the file that holds nothing (dead, or reused by a stranger) is never signalled. Each
//! signal goes through `PidLockFile::signal_holder`, which checks again and signals
//! through a pidfd. Then we wait up to the timeout for the lock to go, and send SIGKILL
//! to whatever still holds it; a stale file left behind is removed (under its lock).
//! Exit status: 0 stopped or not running, 1 could not stop.
//!
//! With `--supervise` the file's second line names the supervisor. The signals it
//! passes on (TERM, INT, HUP, QUIT, USR1, USR2, WINCH) go to it alone, so it stops
//! PROGRAM rather than restart it; any other goes to every holder. SIGKILL goes to the
//! supervisor first (so it can restart nothing), then to the other holders.
//!
//! Without `/proc` (or when the holders are another user's processes, which this user
//! may not inspect), `stop` says so and signals the pid the file names, while the file
//! is locked, as pid files have always been used.

use core::ffi::CStr;
use core::time::Duration;

use pandaemonium::{os, Errno, PidLockFile, Signal};

use crate::args::{self, Cursor, Item, Parsed};
use crate::out::Msg;
use crate::{pidfile, supervise};

/// The default `--timeout`, in milliseconds.
const TIMEOUT_MS: u64 = 10_000;
/// How long to wait for the lock to go after SIGKILL (at least).
const KILL_WAIT_MS: u64 = 5_000;
/// How often the lock is polled.
const POLL_MS: u32 = 20;

args::options! {
    /// `stop`'s options (`status` has the first two).
    enum Opt in OPTIONS {
        Help = "help" Inline,
        PidFile = "pid-file" Value,
        Signal = "signal" Value,
        Timeout = "timeout" Value,
    }
}

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
            // A stale file left behind goes (errors, e.g. no permission, ignored).
            let _ = pid_file.remove_if_stale();
            0
        }
        Err(()) => 1,
    }
}

/// Whether the lock is held; errors printed.
fn held(pid_file: &PidLockFile) -> Result<bool, ()> {
    pid_file.is_active().map_err(|e| {
        Msg::command("stop").detail(&e).to(2);
    })
}

/// Sends `sig` to `pid` if the lock is still held. `Ok(false)`: it was not.
fn signal(pid_file: &PidLockFile, pid: u32, sig: Signal) -> Result<bool, ()> {
    if !held(pid_file)? {
        return Ok(false);
    }
    match os::kill(pid, sig.number()) {
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
    let deadline = os::monotonic_ms().saturating_add(ms);
    loop {
        if !held(pid_file)? {
            return Ok(true);
        }
        if os::monotonic_ms() >= deadline {
            return Ok(false);
        }
        os::sleep_ms(POLL_MS);
    }
}

fn stop(opts: &Stop, pid_file: &PidLockFile) -> Result<(), ()> {
    if !held(pid_file)? {
        return Ok(());
    }
    let holders = match pidfile::holders("stop", pid_file) {
        Ok(h) if !h.is_empty() => h,
        Ok(_) => return Ok(()), // it went meanwhile
        Err(()) => return stop_named(opts, pid_file),
    };
    let named = pidfile::read(pid_file).unwrap_or_default();
    if let Some(pid) = named.program.filter(|&p| !holders.contains(p)) {
        pidfile::not_holding("stop", pid_file, pid)
            .s(": not signalled")
            .to(2);
    }
    let sig = opts.signal;
    let supervisor = named
        .supervisor
        .and_then(|sv| supervisor_of(opts, pid_file, &holders, sv));
    let sent = match supervisor {
        Some(sv) if supervise::FORWARDED.contains(&sig.number()) => {
            signal_supervisor(pid_file, sv, sig)?
        }
        _ => signal_all(pid_file, holders.pids(), sig)?,
    };
    if released(pid_file, opts.timeout_ms)? {
        return Ok(());
    }
    let mut m = Msg::error();
    m.s("stop: ")
        .c(opts.path)
        .s(" still locked ")
        .secs(opts.timeout_ms)
        .s(" s after ");
    m.signal(sig.number()).s(" to pid");
    pid_list(&mut m, &sent);
    m.s("; sending SIGKILL").to(2);
    // The supervisor first, so that it restarts nothing; then every holder left.
    if let Some(sv) = supervisor {
        signal_supervisor(pid_file, sv, Signal::KILL)?;
    }
    if let Ok(left) = pid_file.holders() {
        signal_all(pid_file, left.pids(), Signal::KILL)?;
    }
    if released(pid_file, opts.timeout_ms.max(KILL_WAIT_MS))? {
        return Ok(());
    }
    let mut m = Msg::error();
    m.s("stop: ").c(opts.path).s(": still locked after SIGKILL");
    if let Ok(left) = pid_file.holders() {
        m.s(", by pid");
        pid_list(&mut m, left.pids());
    }
    m.to(2);
    Err(())
}

/// The supervisor the file names on its second line, if it is one: a holder of the
/// lock, or a process this user may not inspect (the supervisor made itself
/// non-dumpable in stage 2, which hides its descriptors from a user other than root),
/// then taken on the file's word while the file is locked, and said so.
fn supervisor_of(
    opts: &Stop,
    pid_file: &PidLockFile,
    holders: &pandaemonium::Holders,
    sv: u32,
) -> Option<Supervisor> {
    if holders.contains(sv) {
        return Some(Supervisor {
            pid: sv,
            verified: true,
        });
    }
    let hidden = matches!(pid_file.is_held_by(sv), Err(e)
        if matches!(e.errno(), Some(Errno::ACCES | Errno::PERM)));
    if !hidden {
        return None;
    }
    Msg::about("stop", opts.path)
        .s(" names supervisor pid ")
        .n(u64::from(sv))
        .s(", which this user can't inspect: signalled while the file is locked")
        .to(2);
    Some(Supervisor {
        pid: sv,
        verified: false,
    })
}

/// The supervisor's pid, and whether it was seen holding the lock.
#[derive(Clone, Copy)]
struct Supervisor {
    pid: u32,
    verified: bool,
}

/// Signals the supervisor: as a holder, or on the file's word while it is locked.
fn signal_supervisor(
    pid_file: &PidLockFile,
    sv: Supervisor,
    sig: Signal,
) -> Result<heapless::Vec<u32, { pandaemonium::HOLDERS_CAPACITY }>, ()> {
    if sv.verified {
        return signal_all(pid_file, &[sv.pid], sig);
    }
    let mut sent = heapless::Vec::new();
    if signal(pid_file, sv.pid, sig)? {
        let _ = sent.push(sv.pid);
    }
    Ok(sent)
}

/// Sends `sig` to each of `pids` that still holds the lock; the pids signalled.
fn signal_all(
    pid_file: &PidLockFile,
    pids: &[u32],
    sig: Signal,
) -> Result<heapless::Vec<u32, { pandaemonium::HOLDERS_CAPACITY }>, ()> {
    let mut sent = heapless::Vec::new();
    for &pid in pids {
        match pid_file.signal_holder(pid, sig) {
            Ok(true) => {
                let _ = sent.push(pid);
            }
            Ok(false) => {}
            Err(e) => {
                Msg::command("stop").detail(&e).to(2);
                return Err(());
            }
        }
    }
    Ok(sent)
}

/// ` 12, 34` after a message.
fn pid_list(m: &mut Msg, pids: &[u32]) {
    for (i, &pid) in pids.iter().enumerate() {
        m.s(if i == 0 { " " } else { ", " }).n(u64::from(pid));
    }
}

/// Without holders to go by: signals the pid the file names while the file is locked
/// (checked right before each `kill`).
fn stop_named(opts: &Stop, pid_file: &PidLockFile) -> Result<(), ()> {
    let pids = pidfile::read_settled(pid_file).map_err(|e| {
        Msg::command("stop").detail(&e).to(2);
    })?;
    let Some(program) = pids.program else {
        Msg::about("stop", opts.path)
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
            let now = pidfile::read(pid_file).ok().and_then(|p| p.program);
            if signal(pid_file, sv, Signal::KILL)? {
                match now.unwrap_or(program) {
                    pid if pid != sv => {
                        let _ = os::kill(pid, libc::SIGKILL);
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
    Msg::about("stop", opts.path)
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
        let (opt, v) = cur.option(&OPTIONS, name, inline)?;
        match opt {
            Opt::Help => {
                crate::help();
                return Err(0);
            }
            Opt::PidFile => path = Some(v),
            Opt::Signal if command == "stop" => {
                signal = Signal::parse_bytes(v.to_bytes())
                    .map_err(|_| args::bad_value("signal", v, "no such signal"))?;
            }
            Opt::Timeout if command == "stop" => {
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
