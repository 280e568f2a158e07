//! A failure in every stage that can fail: the original process gets the stage, the
//! errno and a message, exits non-zero, and nothing is left behind (the daemon has
//! exited, and no pid file of ours remains).

mod support;

use std::os::unix::process::CommandExt;

use support::{probe, run_fields, TempDir};

/// Runs a probe expected to fail; checks the daemon (if one forked) exited with 1.
fn fails(cmd: &mut std::process::Command) -> support::Run {
    let r = run_fields(cmd);
    assert_eq!(
        r.status,
        Some(3),
        "probe should fail:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.field("result"), "err");
    if let Some(pid) = r
        .fields
        .get("daemon_pid")
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|&p| p > 0)
    {
        // The daemon reported, cleaned up and exited before start() returned.
        assert_eq!(support::wait_exit(pid), Some(1), "failed daemon exits 1");
    }
    r
}

#[test]
fn stage5_bad_working_directory() {
    let dir = TempDir::new("f5");
    let pid_path = dir.join("f.pid");
    let r = fails(probe().args([
        "--workdir",
        "/nonexistent-pdm",
        "--pid-file",
        pid_path.to_str().unwrap(),
    ]));
    assert_eq!(
        r.field("message"),
        "stage 5 (working directory): chdir /nonexistent-pdm: No such file or directory (os error 2)"
    );
    assert_eq!(r.field("stage"), "5");
    assert_eq!(r.field("errno"), libc::ENOENT.to_string());
    assert!(
        r.field("daemon_pid") != "0",
        "the daemon forked and reported"
    );
    assert!(!pid_path.exists());
}

#[test]
fn stage3_unknown_user_is_refused_before_fork() {
    let r = fails(probe().args(["--user", "no-such-user-pdm"]));
    assert_eq!(
        r.field("message"),
        "stage 3 (process ids): no such user: no-such-user-pdm"
    );
    assert_eq!(r.field("kind"), "UnknownUser");
    assert!(
        !r.stdout.contains("launcher="),
        "refused while configuring, before any fork"
    );
}

#[test]
fn stage3_switching_user_without_root_fails_with_eperm() {
    require_root!();
    let r = fails(probe().uid(65534).gid(65534).args(["--ids", "0:0"]));
    assert_eq!(r.field("stage"), "3");
    assert_eq!(r.field("errno"), libc::EPERM.to_string());
    assert_eq!(
        r.field("message"),
        "stage 3 (process ids): setgid 0: Operation not permitted (os error 1)"
    );
}

#[test]
fn stage6_locked_pid_file() {
    let dir = TempDir::new("f6");
    let pid_path = dir.join("l.pid");
    let first = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(first.status, Some(0));
    let holder = first.pid();
    let r = fails(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(
        r.field("message"),
        format!(
            "stage 6 (pid file): {}: already running (pid {holder})",
            pid_path.display()
        )
    );
    assert_eq!(r.field("kind"), "AlreadyRunning");
    assert_eq!(
        support::read_pid(&pid_path),
        Some(holder),
        "the holder's pid file is untouched"
    );
    assert!(support::alive(holder));
}

#[test]
fn stage6_pid_directory_missing() {
    let r = fails(probe().args(["--pid-file", "/nonexistent-pdm/x.pid"]));
    assert_eq!(
        r.field("message"),
        "stage 6 (pid file): open /nonexistent-pdm/x.pid: No such file or directory (os error 2)"
    );
}

#[test]
fn stage6_pid_directory_unwritable() {
    require_root!();
    let dir = TempDir::new("f6w");
    let locked = dir.join("root-only");
    std::fs::create_dir(&locked).unwrap();
    let pid_path = locked.join("x.pid");
    let r = fails(
        probe()
            .uid(65534)
            .gid(65534)
            .args(["--pid-file", pid_path.to_str().unwrap()]),
    );
    assert_eq!(r.field("errno"), libc::EACCES.to_string());
    assert_eq!(r.field("stage"), "6");
    assert!(!pid_path.exists());
}

#[test]
fn stage9_bad_redirect_path() {
    let dir = TempDir::new("f9");
    let pid_path = dir.join("r.pid");
    let r = fails(probe().args([
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--stdout",
        "/nonexistent-pdm/out.log",
    ]));
    assert_eq!(
        r.field("message"),
        "stage 9 (redirect stdio): open /nonexistent-pdm/out.log for stdout: No such file or directory (os error 2)"
    );
    assert!(
        !pid_path.exists(),
        "the sealed pid file was removed by the failing daemon"
    );
}

#[test]
fn a_failure_in_any_stage_is_reported_with_its_stage() {
    let dir = TempDir::new("fany");
    for n in 1..=9u8 {
        let pid_path = dir.join(format!("s{n}.pid"));
        let r = fails(probe().args([
            "--fail-stage",
            &n.to_string(),
            "--pid-file",
            pid_path.to_str().unwrap(),
            "--say",
            "before the failure",
        ]));
        assert_eq!(r.field("stage"), n.to_string());
        assert_eq!(r.field("kind"), "Custom");
        assert!(
            r.field("message").ends_with("probe failure"),
            "{}",
            r.field("message")
        );
        if n > 1 {
            // Set-up stderr (the daemon's own words) comes back as `error`.
            assert_eq!(
                r.field("error"),
                "probe: failing on purpose\\n",
                "stage {n}"
            );
        }
        if n > 2 {
            assert_eq!(r.field("output"), "before the failure\\n", "stage {n}");
        }
        assert!(!pid_path.exists(), "stage {n}: no pid file left");
    }
}

#[test]
fn bad_configuration_is_refused_before_fork() {
    for (args, kind, message) in [
        (vec!["--pid-file", "run/x.pid"], "InvalidConfig", "stage 6 (pid file): pid file path must be absolute: run/x.pid"),
        (vec!["--pid-file", ""], "InvalidConfig", "stage 6 (pid file): pid file path must be absolute: (empty)"),
        (vec!["--signal", "SIGKILL=ign"], "InvalidConfig", "stage 7 (signal handlers): cannot catch or ignore SIGKILL"),
        (vec!["--signal", "STOP=exit"], "InvalidConfig", "stage 7 (signal handlers): cannot catch or ignore SIGSTOP"),
        (vec!["--signal", "SIGNOPE=ign"], "InvalidConfig", "stage 7 (signal handlers): no such signal: SIGNOPE"),
        (vec!["--keep-fd", "777"], "Os", "stage 8 (close files): inherit_files: not an open descriptor: 777: Bad file descriptor (os error 9)"),
        (vec!["--workdir", ""], "InvalidConfig", "stage 5 (working directory): working directory must not be empty"),
    ] {
        let r = fails(probe().args(&args));
        assert_eq!(r.field("kind"), kind, "{args:?}");
        assert_eq!(r.field("message"), message, "{args:?}");
        assert!(!r.stdout.contains("launcher="), "{args:?}: refused before any fork");
    }
}

#[test]
fn too_many_inherited_files_is_a_capacity_error() {
    let mut args = Vec::new();
    for fd in 100..117 {
        args.extend([
            "--open-fd".to_string(),
            fd.to_string(),
            "--keep-fd".to_string(),
            fd.to_string(),
        ]);
    }
    let r = fails(probe().args(&args));
    assert_eq!(r.field("kind"), "Capacity");
    assert_eq!(
        r.field("message"),
        "stage 8 (close files): inherit_files holds 16 descriptors"
    );
}
