//! Readiness in the core: with `wait_ready`, `start()` returns once `run()` called
//! `ready()`, or fails with how the daemon ended (exit status, signal), or after the
//! timeout with the daemon killed; nothing is left behind when it fails. Driven through
//! `examples/ready_daemon.rs`.

mod support;

use std::time::{Duration, Instant};

use support::TempDir;

/// `ready_daemon ARGS` run to completion.
fn run(args: &[&str]) -> support::Run {
    let mut cmd = support::helper(&support::helper_bin("ready_daemon"));
    cmd.args(args);
    support::run_fields(&mut cmd)
}

/// `ready_daemon ARGS` run to completion: (exit status, stdout, stderr).
fn ready_daemon(args: &[&str]) -> (Option<i32>, String, String) {
    let r = run(args);
    (r.status, r.stdout, r.stderr)
}

/// The pid in `started pid N` or in `... (pid N)`.
fn pid_in(text: &str) -> i32 {
    let at = text
        .find("started pid ")
        .map(|i| i + "started pid ".len())
        .or_else(|| text.rfind("(pid ").map(|i| i + "(pid ".len()))
        .unwrap_or_else(|| panic!("no pid in {text:?}"));
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

#[test]
fn start_returns_once_the_daemon_is_ready() {
    let dir = TempDir::new("ready-wait");
    let pid_file = dir.join("p.pid");
    let before = Instant::now();
    let r = run(&["--wait-ready", "20", pid_file.to_str().unwrap(), "300"]);
    let (status, out, err) = (r.status, &r.stdout, &r.stderr);
    // A lower bound only: run() sleeps 300 ms before it declares itself ready, so
    // `start()` cannot have returned earlier, however slow the machine is.
    let elapsed = before.elapsed();
    assert_eq!(status, Some(0), "{out}{err}");
    let pid = pid_in(out);
    assert!(
        elapsed >= Duration::from_millis(300),
        "returned after {elapsed:?}, before the daemon's 300 ms delay"
    );
    assert!(support::alive(pid), "the ready daemon serves");
    assert_eq!(support::read_pid(&pid_file), Some(pid));
    // The process between the forks waited for readiness, then went: the daemon's
    // parent is the scope's reaper (init, outside tests), not a leftover intermediate.
    let (ppid, _, session, _) = support::stat_ids(pid);
    assert_ne!(session, pid, "the second fork: not a session leader");
    assert_eq!(ppid, r.reaper, "reparented: the intermediate has exited");
    // SAFETY: kill with integer arguments; the scope reaps the daemon.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(support::wait_exit(pid), Some(128 + libc::SIGTERM));
    assert!(!pid_file.exists(), "removed at SIGTERM");
}

#[test]
fn without_waiting_start_returns_at_stage_9() {
    let dir = TempDir::new("ready-nowait");
    let pid_file = dir.join("p.pid");
    // The daemon would be ready only after 60 s: start() returns without it.
    let (status, out, err) = ready_daemon(&[pid_file.to_str().unwrap(), "60000"]);
    assert_eq!(status, Some(0), "{out}{err}");
    let pid = pid_in(&out);
    assert!(support::alive(pid));
    assert_eq!(support::read_pid(&pid_file), Some(pid));
}

#[test]
fn the_launcher_gets_the_exit_status_itself_not_only_its_text() {
    // `Error::exit()` comes from the record the process between the forks sends, not
    // from the message: the probe's run() returns 7 without declaring readiness.
    let dir = TempDir::new("ready-exit-field");
    let pid_file = dir.join("p.pid");
    let r = support::run_fields(support::probe().args([
        "--wait-ready",
        "20",
        "--exit",
        "7",
        "--pid-file",
        pid_file.to_str().unwrap(),
    ]));
    assert_eq!(r.status, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("kind"), "NotReady", "{}", r.stdout);
    assert_eq!(r.field("stage"), "0", "run() is no set-up stage");
    assert_eq!(r.field("exit"), "Some(Code(7))", "{}", r.stdout);
    assert_eq!(r.field("errno"), "0");
    assert!(!pid_file.exists(), "the daemon removed its pid file");
}

#[test]
fn a_daemon_that_exits_before_ready_is_reported_with_its_status() {
    let dir = TempDir::new("ready-exit");
    let pid_file = dir.join("p.pid");
    let (status, out, err) = ready_daemon(&[
        "--wait-ready",
        "20",
        "--fail-before-ready",
        "42",
        pid_file.to_str().unwrap(),
        "100",
    ]);
    assert_eq!(status, Some(1), "{out}{err}");
    assert!(
        err.contains("ready_daemon: run: exited with status 42 before it was ready (pid "),
        "{err}"
    );
    let pid = pid_in(&err);
    assert!(!support::alive(pid), "the daemon ended");
    assert!(!pid_file.exists(), "the daemon removed its pid file");
    assert!(out.is_empty(), "not started: {out}");
}

#[test]
fn a_daemon_killed_before_ready_is_reported_with_its_signal() {
    let dir = TempDir::new("ready-kill");
    let pid_file = dir.join("p.pid");
    let mut cmd = support::helper(&support::helper_bin("ready_daemon"));
    cmd.args(["--wait-ready", "60", pid_file.to_str().unwrap(), "60000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let launcher = support::spawn(&mut cmd);
    support::wait_until("the daemon's pid file", || {
        support::read_pid(&pid_file).is_some()
    });
    let pid = support::read_pid(&pid_file).unwrap();
    // SAFETY: kill with integer arguments; pid is the daemon the launcher waits for.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let out = launcher.wait_with_output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "run: killed by signal 9 (SIGKILL) before it was ready (pid {pid})"
        )),
        "{err}"
    );
    assert!(
        !pid_file.exists(),
        "the launcher removed what the daemon left"
    );
}

#[test]
fn a_daemon_not_ready_in_time_is_killed_and_leaves_nothing() {
    let dir = TempDir::new("ready-timeout");
    let pid_file = dir.join("p.pid");
    let (status, out, err) =
        ready_daemon(&["--wait-ready", "1", pid_file.to_str().unwrap(), "600000"]);
    assert_eq!(status, Some(1), "{out}{err}");
    assert!(
        err.contains("ready_daemon: run: not ready within 1000 ms; the daemon was killed (pid "),
        "{err}"
    );
    let pid = pid_in(&err);
    support::wait_until("the killed daemon gone", || !support::alive(pid));
    assert!(!pid_file.exists(), "the launcher removed the pid file");
}

#[test]
fn a_failed_stage_is_reported_as_before_when_waiting() {
    // A stage failure stands: the intermediate's report of the daemon's exit after it
    // does not replace it.
    let dir = TempDir::new("ready-stage");
    let pid_file = dir.join("missing-dir").join("p.pid");
    let (status, out, err) = ready_daemon(&["--wait-ready", "20", pid_file.to_str().unwrap(), "0"]);
    assert_eq!(status, Some(1), "{out}{err}");
    assert!(err.contains("ready_daemon: stage 6 (pid file): "), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
}
