//! Real supervisors drive the readiness example (`examples/ready_daemon.rs`): s6
//! (`notification-fd`, as root and as nobody), a test-side reader of the readiness
//! descriptor, runit (`sv start` with a `check` script), and Debian's
//! `start-stop-daemon --notify-await` (systemd's `NOTIFY_SOCKET`).
//!
//! The supervisors are host programs (`.ci/run` installs the Debian packages `s6`,
//! `execline` and `runit`; `start-stop-daemon` comes with `dpkg`); a test whose
//! supervisor is not installed says so and returns. Everything runs in the test's scope
//! (`tests/support`), which kills and reaps what is left. No assertion is on elapsed
//! time: "ready no earlier than the daemon's delay" is an ordering (the readiness
//! marker exists only once `run()` is past its delay), and "not restarted" is a
//! bounded number of samples that all see the same pid.
//!
//! Under qemu-user the supervisors (host programs) run the emulated daemon through the
//! runner (`support::sh_target`): the daemon's pid is the emulator's, which the same
//! assertions hold for.

mod support;

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{alive, comm, host, read_pid, spawn, stat_ids, wait_exit, wait_until, TempDir};

/// The daemon's delay in `run()` before it declares readiness (milliseconds).
const DELAY_MS: &str = "300";

/// The absolute path of host program `name`, if installed (`PATH`, then the system's
/// `sbin` directories, where `start-stop-daemon` lives).
fn installed(name: &str) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .map(|p| p.into_os_string().into_string().unwrap());
    found
}

/// The paths of `names`, or `None` after saying which one is missing.
fn tools<const N: usize>(names: [&str; N]) -> Option<[String; N]> {
    let mut found = Vec::new();
    for name in names {
        match installed(name) {
            Some(path) => found.push(path),
            None => {
                eprintln!(
                    "skipped: {name} is not installed (Debian: apt-get install s6 execline runit; \
                     .ci/run installs them)"
                );
                return None;
            }
        }
    }
    found.try_into().ok()
}

/// The readiness example as a shell command word (after the runner under qemu).
fn daemon_word() -> String {
    support::sh_target(&support::helper_bin("ready_daemon"))
}

fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// A host program in the test's scope, without a `NOTIFY_SOCKET` of the test's own
/// environment (the daemon would tell that one it is ready).
fn host_cmd(program: &str) -> Command {
    let mut cmd = host(program);
    cmd.env_remove("NOTIFY_SOCKET");
    cmd
}

/// Runs a host program to completion: its exit code and its stdout and stderr together.
fn run(program: &str, args: &[&str]) -> (Option<i32>, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = support::run(host_cmd(program).args(args));
    let mut text = String::from_utf8_lossy(&stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&stderr));
    (status.code(), text)
}

/// [`run`], as uid and gid 65534 through `setpriv` when given (s6's waiters must be
/// the supervisor's user: s6-supervise could not open the FIFO a root s6-svwait makes
/// in its event directory, and root's wait would time out).
fn run_as(setpriv: Option<&str>, program: &str, args: &[&str]) -> (Option<i32>, String) {
    match setpriv {
        Some(setpriv) => {
            let mut argv = vec!["--reuid=65534", "--regid=65534", "--clear-groups", program];
            argv.extend_from_slice(args);
            run(setpriv, &argv)
        }
        None => run(program, args),
    }
}

/// Writes an executable shell script.
fn script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A file for a supervisor's output, shown when an assertion fails.
fn log_file(path: &Path) -> (Stdio, Stdio) {
    let file = File::create(path).unwrap();
    (file.try_clone().unwrap().into(), file.into())
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn kill(pid: i32, sig: i32) {
    assert!(pid > 0, "kill {pid}");
    // SAFETY: kill with integer arguments; pid > 0 is a daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill {pid} {sig}");
}

/// Whether `pid`'s descriptor `fd` is open (what `/proc/PID/fd/N` says: the link
/// itself, not the pipe it names, which no path reaches).
fn fd_open(pid: i32, fd: i32) -> bool {
    fs::symlink_metadata(format!("/proc/{pid}/fd/{fd}")).is_ok()
}

/// Whether the daemon `pid` no longer holds the readiness descriptor 3, a pipe or the
/// file `file`. Under qemu-user the emulator may open files of its own, so there it is
/// "3 is not that pipe or file".
fn readiness_fd_closed(pid: i32, file: Option<&Path>) -> bool {
    if support::QEMU {
        let target = support::fd_target(pid, 3);
        match file {
            Some(file) => Path::new(&target) != file,
            None => !target.starts_with("pipe:"),
        }
    } else {
        !fd_open(pid, 3)
    }
}

/// Waits until the daemon `pid` has closed its readiness descriptor (it may still be
/// between its write and its close when the supervisor has read the newline). As a
/// user other than root the daemon's `/proc/PID/fd` is root's (it is not dumpable):
/// then this says so and checks nothing.
fn wait_readiness_fd_closed(pid: i32, file: Option<&Path>) {
    if !support::inspectable(pid) {
        assert!(!support::is_root(), "root can read /proc/{pid}/fd");
        eprintln!("not checked: /proc/{pid}/fd of the non-dumpable daemon needs root");
        return;
    }
    wait_until("the daemon closes its readiness descriptor 3", || {
        readiness_fd_closed(pid, file) || !alive(pid)
    });
    assert!(alive(pid), "the daemon {pid} died after its readiness");
}

/// Takes `samples` samples, `interval` apart, of something that should never happen;
/// panics with `what` at the first that sees it. A bounded negative check: it says
/// only that none of the samples saw it, never how long anything took.
fn never(what: &str, samples: u32, interval: Duration, mut happened: impl FnMut() -> bool) {
    for n in 1..=samples {
        std::thread::sleep(interval);
        assert!(!happened(), "{what} (sample {n} of {samples})");
    }
}

/// Chowns `path` and everything under it to uid and gid 65534.
fn chown_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_nobody(&entry.unwrap().path());
        }
    }
}

/// `s6-svstat -o pid,up,ready`: the service's pid (-1 when down), whether it is up
/// and whether it is ready.
fn svstat(user: Option<&str>, s6_svstat: &str, svc: &Path) -> (i32, bool, bool) {
    let (code, out) = run_as(user, s6_svstat, &["-o", "pid,up,ready", s(svc)]);
    assert_eq!(code, Some(0), "s6-svstat {}: {out}", svc.display());
    match out.split_whitespace().collect::<Vec<_>>()[..] {
        [pid, up, ready] => (pid.parse().unwrap(), up == "true", ready == "true"),
        _ => panic!("s6-svstat -o pid,up,ready: {out:?}"),
    }
}

/// A service of a real `s6-svscan` (run as root or as nobody, uid and gid 65534):
/// `run` execs the daemon with `--ready-fd 3`, `notification-fd` is 3.
fn s6_service(as_nobody: bool) {
    let Some([svscan, svwait, svstat_bin, svc_bin, svscanctl, setpriv]) = tools([
        "s6-svscan",
        "s6-svwait",
        "s6-svstat",
        "s6-svc",
        "s6-svscanctl",
        "setpriv",
    ]) else {
        return;
    };
    let dir = TempDir::new("s6");
    let scan = dir.join("scan");
    let svc = scan.join("svc");
    fs::create_dir_all(&svc).unwrap();
    let pid_file = dir.join("p.pid");
    script(
        &svc.join("run"),
        &format!(
            "exec {} --ready-fd 3 {} {DELAY_MS}",
            daemon_word(),
            s(&pid_file)
        ),
    );
    fs::write(svc.join("notification-fd"), "3\n").unwrap();
    // The user s6 and its controls run as: nobody through setpriv, or this test's.
    let user = as_nobody.then_some(setpriv.as_str());
    let mut cmd = if as_nobody {
        chown_nobody(&scan);
        let mut cmd = host_cmd(&setpriv);
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            svscan.as_str(),
        ]);
        cmd
    } else {
        host_cmd(&svscan)
    };
    let log = dir.join("s6-svscan.log");
    let (out, err) = log_file(&log);
    let mut tree = spawn(cmd.arg(&scan).stdin(Stdio::null()).stdout(out).stderr(err));

    // s6-svwait needs the service's supervise/ directory, which s6-supervise makes.
    wait_until("s6-supervise writes the service's status", || {
        svc.join("supervise/status").exists()
    });
    let (code, text) = run_as(user, &svwait, &["-U", "-t", "20000", s(&svc)]);
    assert_eq!(
        code,
        Some(0),
        "s6-svwait -U (up and ready): {text}\ns6-svscan's log:\n{}",
        read(&log)
    );
    let (pid, up, ready) = svstat(user, &svstat_bin, &svc);
    assert!(up && ready, "s6-svstat: up {up}, ready {ready}");
    // Ready only once run() is past its delay, which is after stage 6: the pid file is
    // there, and it names the process s6 started (the daemon did not fork).
    assert_eq!(
        read_pid(&pid_file),
        Some(pid),
        "the pid file names the pid s6 supervises"
    );
    let parent = stat_ids(pid).0;
    assert_eq!(
        comm(parent),
        "s6-supervise",
        "the daemon {pid}'s parent {parent} is s6-supervise"
    );
    if as_nobody {
        let uid = support::status(pid)["Uid"].clone();
        assert!(uid.starts_with("65534\t"), "the daemon's Uid: {uid}");
    }
    wait_readiness_fd_closed(pid, None);
    // s6 restarts a service whose process ends (a daemon that forked): none of the
    // samples may see another pid, or the service down.
    never(
        "s6 restarted the service: no longer the same pid",
        6,
        Duration::from_millis(500),
        || {
            let (now, up, _) = svstat(user, &svstat_bin, &svc);
            now != pid || !up
        },
    );
    assert!(alive(pid));

    let (code, text) = run_as(user, &svc_bin, &["-d", s(&svc)]);
    assert_eq!(code, Some(0), "s6-svc -d: {text}");
    wait_until("the daemon's SIGTERM clean-up removes its pid file", || {
        !pid_file.exists()
    });
    wait_until("the daemon ends", || !alive(pid));
    let (code, text) = run_as(user, &svscanctl, &["-t", s(&scan)]);
    assert_eq!(code, Some(0), "s6-svscanctl -t: {text}");
    let status = tree.wait();
    assert!(
        status.success(),
        "s6-svscan: {status}; its log:\n{}",
        read(&log)
    );
}

#[test]
fn s6_waits_for_the_newline_and_supervises_the_process_it_started() {
    s6_service(false);
}

#[test]
fn s6_as_nobody_waits_for_the_newline_and_supervises_the_process_it_started() {
    if !support::is_root() {
        eprintln!("skipped: needs root (s6-svscan runs as uid 65534)");
        return;
    }
    s6_service(true);
}

/// The daemon under `/bin/sh -c SCRIPT`, whose stdout (the readiness pipe, `3>&1`) and
/// stdin are piped to the test. `SCRIPT` execs the daemon, so its pid is the daemon's.
fn daemon_on_a_pipe(dir: &TempDir, before: &str) -> (support::Spawned, PathBuf) {
    let pid_file = dir.join("p.pid");
    let cmd = format!(
        "{before}exec {} --ready-fd 3 {} {DELAY_MS} 3>&1 >/dev/null </dev/null",
        daemon_word(),
        s(&pid_file)
    );
    let (_, err) = log_file(&dir.join("stderr"));
    let spawned = spawn(
        host_cmd("/bin/sh")
            .args(["-c", &cmd])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err),
    );
    (spawned, pid_file)
}

/// SIGTERM to the daemon `pid` (a process of the test's scope): it ends by SIGTERM
/// (`Action::Exit`: clean up, then the default action) and removes its pid file.
fn stop(pid: i32, pid_file: &Path) {
    kill(pid, libc::SIGTERM);
    assert_eq!(
        wait_exit(pid),
        Some(128 + libc::SIGTERM),
        "the daemon's end on SIGTERM"
    );
    assert!(!pid_file.exists(), "the daemon removed its pid file");
}

#[test]
fn the_readiness_descriptor_gets_exactly_one_newline_then_eof() {
    let dir = TempDir::new("ready-pipe");
    let (mut daemon, pid_file) = daemon_on_a_pipe(&dir, "");
    let pid = daemon.pid();
    let mut pipe = daemon.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // The reader: everything until EOF, which comes when the daemon closes the
    // descriptor (it is the pipe's only writer). Then it closes the read end.
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let r = pipe.read_to_end(&mut got).map(|_| got);
        let _ = tx.send(r);
    });
    let got = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            panic!(
                "no EOF on the readiness pipe: the daemon {pid} never closed it (alive: {}; \
                 stderr: {})",
                alive(pid),
                read(&dir.join("stderr"))
            )
        })
        .expect("read the readiness pipe");
    assert_eq!(
        got, b"\n",
        "what the daemon wrote to its readiness descriptor"
    );
    // The daemon is the process the shell exec'd (it did not fork), past its delay.
    assert_eq!(
        read_pid(&pid_file),
        Some(pid),
        "the pid file names the daemon"
    );
    // With the read end closed, the daemon goes on (it writes no more: no SIGPIPE).
    never(
        "the daemon died once the reader had closed the pipe",
        3,
        Duration::from_millis(100),
        || !alive(pid),
    );
    stop(pid, &pid_file);
}

#[test]
fn a_reader_gone_before_readiness_is_no_sigpipe_death() {
    if !support::is_root() {
        // The only sign that ready() has run is the closed descriptor, in the
        // non-dumpable daemon's /proc/PID/fd.
        eprintln!("skipped: needs root (to read the daemon's /proc/PID/fd)");
        return;
    }
    let dir = TempDir::new("ready-epipe");
    // The shell waits for its stdin to end before it execs the daemon: the test closes
    // the pipe's read end first, so the daemon's newline meets EPIPE.
    let (mut daemon, pid_file) = daemon_on_a_pipe(&dir, "read -r line; ");
    let pid = daemon.pid();
    drop(daemon.stdout.take());
    drop(daemon.stdin.take());
    // The pid file (stage 6) is written while the descriptor is open (from the exec
    // to ready()): once it names the daemon, a closed descriptor means ready() ran.
    wait_until("the daemon's pid file", || read_pid(&pid_file) == Some(pid));
    wait_until("the daemon is past ready()", || {
        readiness_fd_closed(pid, None) || !alive(pid)
    });
    assert!(
        alive(pid),
        "the daemon died writing to a pipe without a reader: {:?} (128+{} is SIGPIPE)",
        wait_exit(pid),
        libc::SIGPIPE
    );
    stop(pid, &pid_file);
}

/// `sv status`: the service's pid, if it runs.
fn sv_pid(sv: &str, svc: &Path) -> Option<i32> {
    let (_, out) = run(sv, &["status", s(svc)]);
    let rest = out.split_once("(pid ")?.1;
    rest.split_once(')')?.0.parse().ok()
}

#[test]
fn runit_sv_start_returns_ok_once_the_daemon_is_ready() {
    let Some([runsv, sv]) = tools(["runsv", "sv"]) else {
        return;
    };
    let dir = TempDir::new("runit");
    let svc = dir.join("svc");
    fs::create_dir(&svc).unwrap();
    let pid_file = dir.join("p.pid");
    let marker = dir.join("ready");
    // runit has no readiness protocol: the readiness descriptor is a file, and `check`
    // (which `sv start` runs until it succeeds) says whether the newline is there.
    script(
        &svc.join("run"),
        &format!(
            "exec {} --ready-fd 3 {} {DELAY_MS} 3>{}",
            daemon_word(),
            s(&pid_file),
            s(&marker)
        ),
    );
    script(&svc.join("check"), &format!("test -s {}", s(&marker)));
    let log = dir.join("runsv.log");
    let (out, err) = log_file(&log);
    let mut runsv = spawn(
        host_cmd(&runsv)
            .arg(&svc)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err),
    );

    // sv fails at once ("unable to open supervise/ok") until runsv reads that FIFO:
    // the same non-blocking open for writing as sv's succeeds only then.
    wait_until("runsv reads supervise/ok", || {
        fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(svc.join("supervise/ok"))
            .is_ok()
    });
    let (code, text) = run(&sv, &["-w", "20", "start", s(&svc)]);
    assert!(
        code == Some(0) && text.starts_with("ok: run:"),
        "sv -w 20 start: {code:?} {text}\nrunsv's log:\n{}",
        read(&log)
    );
    // Ready only after run()'s delay: the newline is there, and only it.
    assert_eq!(read(&marker), "\n", "the readiness descriptor's file");
    let pid = sv_pid(&sv, &svc).expect("sv status: a pid");
    assert_eq!(
        read_pid(&pid_file),
        Some(pid),
        "the pid file names the pid runsv started"
    );
    assert_eq!(stat_ids(pid).0, runsv.pid(), "the daemon's parent is runsv");
    wait_readiness_fd_closed(pid, Some(&marker));

    let (code, text) = run(&sv, &["exit", s(&svc)]);
    assert_eq!(code, Some(0), "sv exit: {text}");
    wait_until("the daemon's SIGTERM clean-up removes its pid file", || {
        !pid_file.exists()
    });
    let status = runsv.wait();
    assert!(
        status.success(),
        "runsv: {status}; its log:\n{}",
        read(&log)
    );
}

/// `start-stop-daemon --start --background --notify-await` for the daemon with
/// `args`, s-s-d's own pid file (`--make-pidfile`: the pid it started) at `ssd_pid`.
fn ssd_start(ssd: &str, timeout: &str, ssd_pid: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut argv = vec![
        "--start",
        "--background",
        "--notify-await",
        "--notify-timeout",
        timeout,
        "--make-pidfile",
        "--pidfile",
        s(ssd_pid),
    ];
    let daemon = support::helper_bin("ready_daemon");
    let word;
    if support::runner().is_some() {
        // The emulated daemon through the runner, as a shell command word.
        word = format!("exec {} {}", daemon_word(), args.join(" "));
        argv.extend(["--startas", "/bin/sh", "--", "-c", &word]);
    } else {
        argv.extend(["--exec", &daemon, "--"]);
        argv.extend_from_slice(args);
    }
    run(ssd, &argv)
}

#[test]
fn start_stop_daemon_notify_await_returns_once_the_daemon_is_ready() {
    let Some([ssd]) = tools(["start-stop-daemon"]) else {
        return;
    };
    let dir = TempDir::new("ssd");
    let pid_file = dir.join("p.pid");
    let ssd_pid = dir.join("ssd.pid");
    let (code, text) = ssd_start(&ssd, "20", &ssd_pid, &[s(&pid_file), DELAY_MS]);
    assert_eq!(
        code,
        Some(0),
        "start-stop-daemon --notify-await: the daemon never sent READY=1: {text}"
    );
    // Ready only after run()'s delay, after stage 6: the pid file is there, naming the
    // process s-s-d started (under NOTIFY_SOCKET the daemon does not fork).
    let pid = read_pid(&ssd_pid).expect("start-stop-daemon's pid file");
    assert_eq!(
        read_pid(&pid_file),
        Some(pid),
        "the daemon is the pid s-s-d started"
    );
    assert!(alive(pid), "the daemon serves");
    stop(pid, &pid_file);
}

#[test]
fn start_stop_daemon_notify_await_fails_for_a_daemon_that_exits_before_ready() {
    let Some([ssd]) = tools(["start-stop-daemon"]) else {
        return;
    };
    let dir = TempDir::new("ssd-fail");
    let pid_file = dir.join("p.pid");
    let ssd_pid = dir.join("ssd.pid");
    // s-s-d does not notice the daemon's end: it waits out its (short) timeout.
    let (code, text) = ssd_start(
        &ssd,
        "2",
        &ssd_pid,
        &["--fail-before-ready", "3", s(&pid_file), DELAY_MS],
    );
    assert!(
        code.is_some_and(|c| c != 0),
        "start-stop-daemon --notify-await for a daemon that exits 3 before ready: {code:?} {text}"
    );
    // Not a start that never happened: s-s-d's child wrote its pid file and exec'd.
    assert!(
        read_pid(&ssd_pid).is_some(),
        "start-stop-daemon started nothing: {text}"
    );
}
