//! Failure paths of the fork: the launcher going away mid-set-up, a daemon that dies
//! or hangs during set-up, a monitor whose `poll` fails. Whatever happens, the daemon
//! either runs with a valid, locked pid file, or is gone with nothing left behind.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use support::{alive, probe, run_fields, wait_exit, wait_until, Reaper, TempDir};

/// Starts the probe in the background with `args` (its own output discarded), waits
/// until its daemon reports being inside the stage given by `--wait-in-stage N:DIR`,
/// and returns the launcher and the daemon's pid.
fn launch_and_wait_in_stage(
    cmd: &mut Command,
    dir: &TempDir,
    reaper: &mut Reaper,
) -> (support::Spawned, i32) {
    let launcher = support::spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let marker = dir.join("in-stage");
    wait_until("the daemon to reach the waiting stage", || marker.exists());
    let pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    reaper.add(pid);
    (launcher, pid)
}

/// The launcher is gone: the daemon resumes (writing set-up output into the dead
/// channel), finishes stage 9 and runs, holding a valid, locked pid file.
fn daemon_outlives_its_launcher(kill_launcher: impl FnOnce(&mut support::Spawned)) {
    let dir = TempDir::new("orphaned");
    let pid_path = dir.join("o.pid");
    let report = dir.join("report");
    let mut reaper = Reaper::new();
    let mut cmd = probe();
    cmd.args([
        "--own-group",
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--wait-in-stage",
        &format!("8:{}", dir.path().display()),
    ]);
    let (mut launcher, daemon) = launch_and_wait_in_stage(&mut cmd, &dir, &mut reaper);
    kill_launcher(&mut launcher);
    launcher.wait();
    std::fs::write(dir.join("go"), b"").unwrap();
    wait_until("the daemon to reach run() or die", || {
        report.exists() || !alive(daemon)
    });
    assert!(
        alive(daemon),
        "the daemon died once its launcher was gone (SIGPIPE at its next write?)"
    );
    let rep = support::report(&report);
    assert_eq!(
        rep["pid"],
        daemon.to_string(),
        "run() started in the daemon"
    );
    assert_eq!(
        support::read_pid(&pid_path),
        Some(daemon),
        "the pid file names it"
    );
    assert!(support::is_locked(&pid_path), "and it is locked");
    // Once set-up is over, SIGPIPE has its default disposition again (the map's).
    let ign = u64::from_str_radix(&support::status(daemon)["SigIgn"], 16).unwrap();
    if !support::QEMU {
        assert_eq!(
            ign & (1 << (libc::SIGPIPE - 1)),
            0,
            "SIGPIPE no longer ignored"
        );
    }
}

#[test]
fn the_launcher_killed_during_set_up_leaves_a_running_daemon() {
    daemon_outlives_its_launcher(|launcher| launcher.kill());
}

#[test]
fn ctrl_c_to_the_launchers_process_group_leaves_a_running_daemon() {
    daemon_outlives_its_launcher(|launcher| {
        // SAFETY: kill with integer arguments; the launcher leads its own group.
        let r = unsafe { libc::kill(-launcher.pid(), libc::SIGINT) };
        assert_eq!(r, 0, "kill -INT -pgid: {}", std::io::Error::last_os_error());
    });
}

/// Runs the probe expecting `start()` to fail; returns its result fields.
fn start_fails(args: &[&str]) -> support::Run {
    let r = run_fields(probe().args(args));
    assert_eq!(
        r.status,
        Some(3),
        "start must fail:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    r
}

fn daemon_pid(r: &support::Run) -> i32 {
    r.field("daemon_pid").parse().unwrap()
}

#[test]
fn a_daemon_killed_after_sealing_leaves_no_pid_file() {
    for (how, stage) in [("--die-in-stage", "8"), ("--abort-in-stage", "7")] {
        let dir = TempDir::new("killed");
        let pid_path = dir.join("k.pid");
        let r = start_fails(&["--pid-file", pid_path.to_str().unwrap(), how, stage]);
        assert_eq!(r.field("kind"), "DaemonDied", "{how}: {}", r.stdout);
        let pid = daemon_pid(&r);
        assert!(pid > 0, "{how}: the daemon's pid is known");
        wait_exit(pid);
        assert!(
            !pid_path.exists(),
            "{how} {stage}: the original process removed the pid file the daemon left"
        );
    }
}

#[test]
fn a_daemon_killed_before_sealing_an_acquired_file_leaves_no_pid_file() {
    // Acquired in the launcher (empty), handed to the daemon, which dies in stage 3.
    let dir = TempDir::new("killed-acq");
    let pid_path = dir.join("a.pid");
    let r = start_fails(&[
        "--acquire-first",
        pid_path.to_str().unwrap(),
        "--die-in-stage",
        "3",
    ]);
    assert_eq!(r.field("kind"), "DaemonDied", "{}", r.stdout);
    wait_exit(daemon_pid(&r));
    assert!(
        !pid_path.exists(),
        "the acquired, empty file is removed too"
    );
}

#[test]
fn a_daemon_that_fails_before_sealing_an_acquired_file_removes_it() {
    // Acquired in the launcher, handed over, then stage 3 fails in the daemon: the
    // daemon removes the (empty) file itself before it reports.
    let dir = TempDir::new("failed-acq");
    let pid_path = dir.join("a.pid");
    let r = start_fails(&[
        "--acquire-first",
        pid_path.to_str().unwrap(),
        "--fail-stage",
        "3",
    ]);
    assert_eq!(r.field("kind"), "Custom", "{}", r.stdout);
    wait_exit(daemon_pid(&r));
    assert!(!pid_path.exists(), "the acquired file is removed");
}

#[test]
fn an_empty_file_the_daemon_never_touched_is_left_alone() {
    // The daemon dies in stage 3, before stage 6: the empty file at the path is not
    // its own (it acquired nothing, and nothing was handed over): left alone.
    let dir = TempDir::new("killed-empty");
    let pid_path = dir.join("e.pid");
    std::fs::write(&pid_path, b"").unwrap();
    let r = start_fails(&[
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--die-in-stage",
        "3",
    ]);
    assert_eq!(r.field("kind"), "DaemonDied", "{}", r.stdout);
    wait_exit(daemon_pid(&r));
    assert!(pid_path.exists(), "someone else's empty file was removed");
}

#[test]
fn a_pid_file_still_locked_by_the_daemons_child_is_kept() {
    // The daemon forked a child (which inherits the locked descriptor, and stdout and
    // stderr, the set-up output pipes) and died: the child is a live holder, so the
    // original process leaves the file; and it returns once the status pipe closed,
    // without waiting for the child's end of the output pipes.
    let dir = TempDir::new("killed-child");
    let pid_path = dir.join("c.pid");
    let r = start_fails(&[
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--fork-holder-in-stage",
        &format!("8:{}", pid_path.display()),
        "--die-in-stage",
        "8",
    ]);
    assert_eq!(r.field("kind"), "DaemonDied", "{}", r.stdout);
    assert!(pid_path.exists(), "a live holder's file was removed");
    assert!(
        support::is_locked(&pid_path),
        "still locked, by the daemon's child"
    );
}

#[test]
fn seal_rewrites_a_handed_over_file_whole() {
    // Acquired in the launcher; before the daemon seals it, the file gets longer
    // content: the daemon's pid replaces it, with nothing of the old left after it.
    let dir = TempDir::new("seal-junk");
    let pid_path = dir.join("s.pid");
    let mut reaper = Reaper::new();
    let mut cmd = probe();
    cmd.args([
        "--acquire-first",
        pid_path.to_str().unwrap(),
        "--wait-in-stage",
        &format!("5:{}", dir.path().display()),
    ]);
    let (launcher, daemon) = launch_and_wait_in_stage(&mut cmd, &dir, &mut reaper);
    std::fs::write(&pid_path, b"123456789012345678\n").unwrap();
    std::fs::write(dir.join("go"), b"").unwrap();
    assert_eq!(launcher.wait_with_output().status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&pid_path).unwrap(),
        format!("{daemon}\n")
    );
}

#[test]
fn a_pid_file_someone_else_took_over_is_left_alone() {
    // The daemon dies in stage 8; by then the file no longer names it (here: another
    // process wrote its own pid): the original process must not remove it.
    let dir = TempDir::new("killed-other");
    let pid_path = dir.join("o.pid");
    let mut reaper = Reaper::new();
    let mut cmd = probe();
    cmd.args([
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--wait-in-stage",
        &format!("8:{}", dir.path().display()),
        "--die-in-stage",
        "8",
    ]);
    let (launcher, _daemon) = launch_and_wait_in_stage(&mut cmd, &dir, &mut reaper);
    std::fs::write(&pid_path, b"1\n").unwrap();
    std::fs::write(dir.join("go"), b"").unwrap();
    let out = launcher.wait_with_output();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        std::fs::read_to_string(&pid_path).unwrap(),
        "1\n",
        "left alone"
    );
}

#[test]
fn a_panic_after_sealing_is_reported_and_leaves_no_pid_file() {
    let dir = TempDir::new("panicked");
    let pid_path = dir.join("p.pid");
    let r = start_fails(&[
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--panic-in-stage",
        "8",
    ]);
    assert_eq!(r.field("kind"), "Panicked", "{}", r.stdout);
    assert_eq!(r.field("stage"), "8");
    assert!(
        r.field("error").contains("panicking in stage 8"),
        "{}",
        r.stdout
    );
    wait_exit(daemon_pid(&r));
    assert!(!pid_path.exists());
}

#[test]
fn a_stage_that_blocks_meets_the_start_timeout() {
    let dir = TempDir::new("timeout");
    let pid_path = dir.join("t.pid");
    let mut reaper = Reaper::new();
    let wait = format!("8:{}", dir.path().display());
    let r = start_fails(&[
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--start-timeout",
        "300",
        "--wait-in-stage",
        &wait,
    ]);
    assert_eq!(r.field("kind"), "Timeout", "{}", r.stdout);
    assert_eq!(r.field("stage"), "8", "the stage the daemon was in");
    let pid = reaper.add(daemon_pid(&r));
    assert_eq!(r.field("holder"), pid.to_string());
    assert_eq!(
        r.field("message"),
        format!(
            "stage 8 (close files): no result within 300 ms; the daemon was killed (pid {pid})"
        )
    );
    assert_eq!(
        wait_exit(pid),
        Some(128 + libc::SIGKILL),
        "killed by the original"
    );
    assert!(!pid_path.exists(), "and its pid file removed");
}

#[test]
fn a_start_timeout_that_does_not_expire_changes_nothing() {
    let dir = TempDir::new("timeout-ok");
    let pid_path = dir.join("t.pid");
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args([
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--start-timeout",
        "600000",
        "--say",
        "hello",
    ]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = reaper.add(r.pid());
    assert_eq!(r.field("output"), "hello\\n");
    assert_eq!(support::read_pid(&pid_path), Some(pid));
}

#[test]
fn a_poll_error_in_the_monitor_is_an_error_and_leaves_no_daemon() {
    let dir = TempDir::new("pollerr");
    let mut reaper = Reaper::new();
    let wait = format!("8:{}", dir.path().display());
    // The daemon waits in stage 8 (for a file that never comes): only the original's
    // own failure can end this start.
    let r = start_fails(&["--poll-fail", "--wait-in-stage", &wait]);
    assert_eq!(r.field("kind"), "Os", "{}", r.stdout);
    assert_eq!(r.field("errno"), libc::EINVAL.to_string());
    assert!(
        r.field("message").contains("poll (the report channel)"),
        "{}",
        r.stdout
    );
    let pid = reaper.add(daemon_pid(&r));
    assert!(pid > 0, "{}", r.stdout);
    assert_eq!(
        wait_exit(pid),
        Some(128 + libc::SIGKILL),
        "the daemon was killed"
    );
    assert!(!Path::new(&dir.join("go")).exists());
}
