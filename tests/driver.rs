//! The stage driver's own edges: a panic in the launcher's stage code unwinds, the
//! stage count, a stage-1 override that does not detach, the SIGTERM clean-up after the
//! daemon released its pid file, and the longest pid file path.

mod support;

use std::fs;
use std::process::Stdio;

use support::{probe, run_fields, wait_exit, wait_until, Reaper, TempDir};

#[test]
fn a_panic_in_the_launchers_stage_code_unwinds_out_of_start() {
    // Stage 1's override runs in the launcher before anything forks: its panic is the
    // launcher's own, and must reach the caller's catch_unwind.
    let r = run_fields(probe().args(["--panic-in-stage", "1", "--catch-panic"]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("caught_panic"), "true");
    assert!(!r.stdout.contains("PDMN"), "no record written to stdout");
}

#[test]
fn the_daemon_knows_how_many_stages_it_has_done() {
    let mut reaper = Reaper::new();
    for n in ["1", "4", "8"] {
        let r = run_fields(probe().args(["--stage-first", n]));
        assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
        reaper.add(r.pid());
        assert!(
            r.field("output")
                .starts_with(&format!("stages_done={n}\\n")),
            "{}",
            r.field("output")
        );
    }
}

#[test]
fn a_stage_1_override_that_does_not_detach_keeps_stdio() {
    let dir = TempDir::new("nodetach");
    let out = dir.join("out.log");
    let report = dir.join("report");
    let mut reaper = Reaper::new();
    let child = support::spawn(
        probe()
            .args([
                "--skip-detach",
                "--stdout",
                out.to_str().unwrap(),
                "--report",
                report.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let pid = reaper.add(child.pid());
    let rep = support::report(&report);
    assert_eq!(
        rep["pid"],
        pid.to_string(),
        "this process became the daemon"
    );
    assert_eq!(rep["fds"], "0,1,2", "stage 9 closed nothing of stdio");
}

#[test]
fn sigterm_after_the_daemon_released_its_pid_file_leaves_the_path_alone() {
    // The daemon removes its pid file itself; the test then puts the very same file
    // (same device and inode, through a second link) back at the path. The SIGTERM
    // clean-up must know the file is no longer its business.
    let dir = TempDir::new("released");
    let pid_path = dir.join("r.pid");
    let link = dir.join("link");
    let mut reaper = Reaper::new();
    let mut child = support::spawn(
        probe()
            .args([
                "--mode",
                "activate-release",
                "--pid-file",
                pid_path.to_str().unwrap(),
                "--stdout",
                dir.join("out.log").to_str().unwrap(),
                "--wait-in-stage",
                &format!("9:{}", dir.path().display()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    wait_until("the daemon in stage 9", || dir.join("in-stage").exists());
    let pid: i32 = fs::read_to_string(dir.join("in-stage"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    reaper.add(pid);
    fs::hard_link(&pid_path, &link).unwrap();
    fs::write(dir.join("go"), b"").unwrap();
    assert_eq!(child.wait().code(), Some(0), "activate's original exits 0");
    wait_until("the daemon released its pid file", || !pid_path.exists());
    fs::rename(&link, &pid_path).unwrap();
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(wait_exit(pid), Some(128 + libc::SIGTERM));
    assert!(
        pid_path.exists(),
        "the clean-up removed a file it had released"
    );
}

#[test]
fn the_longest_pid_file_path_is_removed_on_sigterm() {
    let dir = TempDir::new("longpath");
    // PID_PATH_CAPACITY bytes in all.
    let base = dir.path().display().to_string();
    let name = "p".repeat(pandaemonium::PID_PATH_CAPACITY - base.len() - 1);
    let pid_path = dir.join(&name);
    assert_eq!(pid_path.as_os_str().len(), pandaemonium::PID_PATH_CAPACITY);
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = reaper.add(r.pid());
    assert_eq!(support::read_pid(&pid_path), Some(pid));
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(wait_exit(pid), Some(128 + libc::SIGTERM));
    assert!(!pid_path.exists());
}

#[test]
fn after_all_nine_stages_start_and_activate_still_run_the_daemon() {
    // `stage(Stage::Redirect)` does all nine; start() (or activate()) then has no stage
    // left to run, and goes on to run().
    let dir = TempDir::new("after9");
    let mut reaper = Reaper::new();
    for mode in ["start", "activate"] {
        let marker = dir.join(format!("ran-{mode}"));
        let r = run_fields(probe().args([
            "--stage-first",
            "9",
            "--mode",
            mode,
            "--marker",
            marker.to_str().unwrap(),
        ]));
        assert_eq!(r.status, Some(0), "{mode}: {}\n{}", r.stdout, r.stderr);
        reaper.add(r.pid());
        wait_until("run() in the daemon", || marker.exists());
    }
}

#[test]
fn once_activated_start_and_activate_are_refused() {
    let dir = TempDir::new("activated");
    let marker = dir.join("again");
    let out = support::run(probe().args([
        "--mode",
        "activate-then-start",
        "--marker",
        marker.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(0));
    wait_until("the daemon's answer", || marker.exists());
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        "start=Err(StageOrder)\nactivate=Err(StageOrder)\n"
    );
}

#[test]
fn run_monitor_sees_the_set_up_output_as_it_comes() {
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args(["--say", "live", "--say-err", "to stderr"]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    reaper.add(r.pid());
    assert_eq!(
        r.field("monitored"),
        "live\\n",
        "Run::monitor got the stdout chunks"
    );
}

#[test]
fn activate_hands_back_a_failure_before_any_fork() {
    // Stage 1's override fails in the launcher: activate() returns the error (it is
    // not the original process of a daemon, which would print and exit).
    let r = run_fields(probe().args(["--mode", "activate", "--fail-stage", "1"]));
    assert_eq!(r.status, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("kind"), "Custom");
    assert_eq!(r.field("stage"), "1");
}

#[test]
fn after_a_stage_1_override_that_did_not_detach_detach_is_refused() {
    // This process became the daemon in stage 1: a later detach() must not fork it.
    let r = run_fields(probe().args(["--skip-detach", "--detach-in-stage", "2", "--exit", "0"]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("detach_again"), "Err(StageOrder)");
}

#[test]
fn an_overrides_own_detached_kind_is_still_a_failure() {
    // ErrorKind::Detached is the driver's marker in the original process only: from a
    // stage override in the daemon it is a failure like any other.
    let r = run_fields(probe().args(["--fake-detached-in-stage", "3"]));
    assert_eq!(r.status, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("kind"), "Detached");
    assert_eq!(
        r.field("message"),
        "stage 3 (process ids): an override's own Detached error"
    );
    wait_exit(r.field("daemon_pid").parse().unwrap());
}

#[test]
fn a_panic_in_run_writes_no_record_into_the_daemons_stdout() {
    // After stage 9 the report channel is closed: the panic guard around run() has
    // nothing to report to, least of all descriptor 1 (here, the daemon's log).
    let dir = TempDir::new("panic-run");
    let log = dir.join("out.log");
    let r = run_fields(probe().args(["--panic-in-stage", "10", "--stdout", log.to_str().unwrap()]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(wait_exit(r.pid()), Some(101), "a panic in run() exits 101");
    assert_eq!(
        fs::read(&log).unwrap(),
        b"",
        "nothing was written to stdout"
    );
}

#[test]
fn a_start_that_fails_before_fork_leaves_no_descriptor_open() {
    // A relative stdio path makes start() open the launcher's directory first; a
    // failure in the launcher's stage 1 must close it again.
    let dir = TempDir::new("fail-before-fork");
    let r = run_fields(probe().current_dir(dir.path()).args([
        "--stdout",
        "relative.log",
        "--fail-stage",
        "1",
    ]));
    assert_eq!(r.status, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("stage"), "1");
    assert_eq!(
        r.field("launcher_fds_after"),
        r.field("launcher_fds_before")
    );
}

#[test]
fn start_leaves_the_launchers_descriptors_as_they_were() {
    // The report pipes (and the directory opened for a relative path) are the
    // launcher's only while it monitors: after start() returns, whether the daemon
    // started, failed, or was given up on, none of them is left open.
    let dir = TempDir::new("launcher-fds");
    let wait = format!("8:{}", dir.path().display());
    for args in [
        &["--stdout", "relative.log"][..],
        &["--fail-stage", "5"][..],
        &["--start-timeout", "200", "--wait-in-stage", &wait][..],
        // Given up on, while a child of the daemon holds the status pipe for ever: the
        // original stops waiting for its end (a few seconds) and closes its own.
        &[
            "--start-timeout",
            "200",
            "--fork-holder-in-stage",
            "8:all",
            "--wait-in-stage",
            &wait,
        ][..],
    ] {
        let r = run_fields(probe().current_dir(dir.path()).args(args));
        assert!(
            r.status == Some(0) || r.status == Some(3),
            "{args:?}: {}",
            r.stderr
        );
        let after = r
            .fields
            .get("launcher_fds_after")
            .expect("launcher_fds_after");
        assert_eq!(after, r.field("launcher_fds_before"), "{args:?}");
    }
}
