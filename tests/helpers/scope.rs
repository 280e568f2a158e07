//! Test helper `pdm-scope`: the subreaper every helper program of a test runs under
//! (the test's scope, `tests/support`), so that whatever a helper leaves behind ends
//! with its test, reported or not.
//!
//! `pdm-scope pdm-scope-2 DIR PARENT PROGRAM [ARG...]`:
//!
//! 1. becomes a child subreaper and leaves the test's process group (a kill of that
//!    group must not end the scope before the scope ends its descendants);
//! 2. asks for SIGTERM when its parent thread (the test's thread) exits
//!    (`PR_SET_PDEATHSIG`), and ends at once if PARENT is already gone;
//! 3. runs PROGRAM with the stdio, environment, working directory, ids and signal mask
//!    it was itself given, writes `DIR/start-<own pid>` (`pid=N`, or `error=...` and exit
//!    127), then points its own stdio at `/dev/null` (only PROGRAM's copies stay open);
//! 4. reaps every child, PROGRAM and the daemons reparented to it alike, writing
//!    `DIR/exit-<pid>` before the zombie goes (so a pid that is gone without a record
//!    was never reaped here): `exit N`, or `signal NAME` (`signal NAME core`), by name
//!    since under qemu-user this host build's numbers are not the target's;
//! 5. on SIGTERM, SIGHUP or SIGINT, or when PARENT is gone, SIGKILLs its children round
//!    after round (a child's children are reparented to it when the child dies) and
//!    reaps them; SIGUSR1 SIGKILLs PROGRAM only (`Spawned::kill`), if not yet reaped;
//! 6. exits 0 once it has no child left (nothing can be reparented to it any more).
//!
//! Records are written through a temporary file and a rename: a reader that waits for
//! one to exist reads it whole. Exit 125: bad usage, or the subreaper call failed (under
//! qemu-user an emulated `prctl(PR_SET_CHILD_SUBREAPER)` fails: there `ci/` installs a
//! host build and names it in `PANDAEMONIUM_TEST_SCOPE`).
//!
//! Only direct children are ever signalled: a child's pid can't be reused before we
//! reap it, so a kill never reaches a stranger.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

#[path = "signal_names.rs"]
mod signal_names;

/// The first argument: `tests/support` and this helper speak the same protocol (a
/// stale host build under qemu is refused instead of misread).
const PROTOCOL: &str = "pdm-scope-2";

fn usage(msg: &str) -> ! {
    eprintln!("pdm-scope: {msg}");
    eprintln!("usage: pdm-scope {PROTOCOL} DIR PARENT PROGRAM [ARG...]");
    std::process::exit(125)
}

/// Writes `text` to `DIR/name` through a temporary file and a rename. Errors are
/// ignored: the test may have removed the directory already.
fn record(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join(name));
    }
}

fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

fn getppid() -> i32 {
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Our children, from `/proc/*/stat` (field 4 is the parent's pid).
fn children(me: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rfind(')')
                    .and_then(|i| s[i + 1..].split_whitespace().nth(1)?.parse::<i32>().ok())
                    == Some(me)
            })
        })
        .collect()
}

/// How a child `waitid` saw exit ended: `exit N`, `signal NAME` or `signal NAME core`.
fn how_it_ended(info: &libc::siginfo_t) -> String {
    // SAFETY: `info` was filled by waitid for an exited child (SIGCHLD fields).
    let status = unsafe { info.si_status() };
    match info.si_code {
        libc::CLD_EXITED => format!("exit {status}"),
        libc::CLD_DUMPED => format!("signal {} core", signal_names::name(status)),
        _ => format!("signal {}", signal_names::name(status)),
    }
}

fn main() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(PROTOCOL)) {
        usage(&format!(
            "not protocol {PROTOCOL} (a stale build? under qemu, run ci/setup-cross.sh again)"
        ));
    }
    let dir = PathBuf::from(args.next().unwrap_or_else(|| usage("no DIR")));
    let parent: i32 = args
        .next()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or_else(|| usage("no PARENT pid"));
    let program: OsString = args.next().unwrap_or_else(|| usage("no PROGRAM"));
    let program_args: Vec<OsString> = args.collect();
    let me = getpid();

    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        let e = std::io::Error::last_os_error();
        record(
            &dir,
            &format!("start-{me}"),
            &format!("error=PR_SET_CHILD_SUBREAPER: {e}\n"),
        );
        usage(&format!("PR_SET_CHILD_SUBREAPER: {e}"));
    }
    // Our own process group: killpg on the test's group (what a test runner's timeout
    // may do) leaves us alive to end what we hold, once our parent is gone.
    // SAFETY: setpgid on ourselves.
    unsafe { libc::setpgid(0, 0) };

    // The signals we wait for, blocked (then taken with sigtimedwait, none lost);
    // PROGRAM gets the mask we were given.
    // SAFETY: all-zero bytes are valid sigset_t values, filled by the calls below.
    let (mut set, mut given): (libc::sigset_t, libc::sigset_t) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: sigset operations on local sets, then sigprocmask on this thread.
    unsafe {
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGUSR1,
        ] {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut given);
    }
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let mut ending = getppid() != parent; // the test's thread ended before the prctl

    let mut program_pid = 0;
    if ending {
        record(&dir, &format!("start-{me}"), "error=the test ended first\n");
    } else {
        let mut cmd = std::process::Command::new(&program);
        cmd.args(&program_args);
        // SAFETY: the closure only calls sigprocmask (async-signal-safe) on a copied set.
        unsafe {
            cmd.pre_exec(move || {
                libc::sigprocmask(libc::SIG_SETMASK, &given, std::ptr::null_mut());
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(child) => {
                program_pid = child.id() as i32;
                record(
                    &dir,
                    &format!("start-{me}"),
                    &format!("pid={program_pid}\n"),
                );
            }
            Err(e) => {
                let shown = String::from_utf8_lossy(program.as_bytes()).into_owned();
                record(
                    &dir,
                    &format!("start-{me}"),
                    &format!("error=exec {shown}: {e}\n"),
                );
                std::process::exit(127);
            }
        }
    }
    // Only PROGRAM's copies of the test's pipes stay open: EOF comes when PROGRAM and
    // its descendants are done with them, as if the test had started PROGRAM itself.
    // SAFETY: open a valid path; dup2 onto our own stdio; close the spare descriptor.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }

    let mut program_reaped = false;
    loop {
        // Reap whatever has exited, recording each status before its zombie goes.
        loop {
            // SAFETY: all-zero bytes are a valid siginfo_t; waitid fills it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid writes only into `info`.
            let r = unsafe {
                libc::waitid(
                    libc::P_ALL,
                    0,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                )
            };
            if r == -1 {
                match errno() {
                    libc::EINTR => continue,
                    // No child left: nothing can be reparented to us any more.
                    libc::ECHILD => std::process::exit(0),
                    _ => std::process::exit(125),
                }
            }
            // SAFETY: filled by waitid (zero when no child has exited).
            let pid = unsafe { info.si_pid() };
            if pid == 0 {
                break;
            }
            record(
                &dir,
                &format!("exit-{pid}"),
                &format!("{}\n", how_it_ended(&info)),
            );
            let mut status = 0;
            // SAFETY: reaps the zombie waitid reported; writes only into `status`.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            if pid == program_pid {
                program_reaped = true;
            }
        }
        if getppid() != parent {
            ending = true;
        }
        if ending {
            for pid in children(me) {
                // SAFETY: kill with integer arguments; `pid` is our child, not yet reaped
                // (so its number is not reused).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let timeout = libc::timespec {
            tv_sec: if ending { 0 } else { 1 },
            tv_nsec: if ending { 20_000_000 } else { 0 },
        };
        // SAFETY: all-zero bytes are a valid siginfo_t.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waits for one of the blocked signals in `set`, writing into `info`.
        match unsafe { libc::sigtimedwait(&set, &mut info, &timeout) } {
            libc::SIGTERM | libc::SIGHUP | libc::SIGINT => ending = true,
            libc::SIGUSR1 if !program_reaped && program_pid > 0 => {
                // SAFETY: kill with integer arguments; PROGRAM is our unreaped child.
                unsafe { libc::kill(program_pid, libc::SIGKILL) };
            }
            _ => {} // SIGCHLD, a timeout or EINTR: look again
        }
    }
}
