//! A failure in every stage that can fail: the original process gets the stage, the
//! errno and a message, exits non-zero, and nothing is left behind (the daemon has
//! exited, and no pid file of ours remains). And when a helper leaves something behind
//! anyway, unreported, the test's scope (`tests/support`) ends it.

mod support;

use std::os::unix::process::{CommandExt, ExitStatusExt};

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

// ---- and when something is left behind all the same --------------------------------
//
// A broken library (as under mutation testing) leaves daemons nobody reported. The
// test's scope ends them anyway: when it ends explicitly, when the test panics, and
// when the whole test binary is killed.

/// Field 22 of `/proc/PID/stat`: when the process started (tells a reused pid apart).
fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..]
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Runs a shell that leaves three processes behind and reports none of them on its
/// stdout: a background `sleep`, a daemon of the tool, a probe daemon. Their pids go
/// to `DIR/left` (written whole once all three run), for the test to check on; each
/// with its start time.
fn leave_three_behind(dir: &TempDir) -> Vec<(i32, u64)> {
    let left = dir.join("left");
    let script = format!(
        "sleep 1000 </dev/null >/dev/null 2>&1 & echo $! >> {l}.tmp; \
         {tool} start --pid-file {d}/tool.pid -- /bin/sleep 1000 && cat {d}/tool.pid >> {l}.tmp; \
         {probe} | sed -n 's/^pid=//p' >> {l}.tmp; \
         mv {l}.tmp {l}",
        l = left.display(),
        d = dir.path().display(),
        tool = support::sh_target(env!("CARGO_BIN_EXE_pandaemonium")),
        probe = support::sh_target(&support::helper_bin("pdm-probe")),
    );
    let out = support::run(support::host("/bin/sh").args(["-c", &script]));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, b"", "nothing reported");
    let pids: Vec<i32> = std::fs::read_to_string(&left)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    pids.into_iter()
        .map(|pid| {
            assert!(support::alive(pid), "{pid} runs");
            (pid, start_time(pid).unwrap())
        })
        .collect()
}

/// Whether the process `(pid, start time)` is gone (reaped: no such pid any more, or a
/// new process under that number).
fn gone((pid, started): (i32, u64)) -> bool {
    start_time(pid) != Some(started)
}

#[test]
fn the_scope_ends_and_reaps_what_a_helper_left_unreported() {
    let dir = TempDir::new("left");
    let left = leave_three_behind(&dir);
    support::end_scope();
    for p in left {
        assert!(gone(p), "{p:?} outlived its scope");
    }
    // A new scope begins with the next helper.
    let r = run_fields(probe().args(["--exit", "0"]));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert_eq!(support::wait_exit(r.pid()), Some(0));
}

/// The inner half of the tests below, run by them in a test binary of its own (and
/// otherwise a no-op): leaves three processes behind, writes their pids and start
/// times to `$PDM_SCOPE_INNER`, then panics, or waits to be killed.
#[test]
#[ignore = "run by the_scope_ends_*_when_its_test_* in a test binary of its own"]
fn scope_inner_leaves_three_behind() {
    let Some(report) = std::env::var_os("PDM_SCOPE_INNER") else {
        return;
    };
    let dir = TempDir::new("inner");
    let left = leave_three_behind(&dir);
    let text: String = left.iter().map(|(p, t)| format!("{p} {t}\n")).collect();
    let tmp = std::path::PathBuf::from(&report).with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &report).unwrap();
    if std::env::var_os("PDM_SCOPE_INNER_PANIC").is_some() {
        panic!("the inner test fails on purpose, leaving three processes behind");
    }
    std::thread::sleep(std::time::Duration::from_secs(120));
    panic!("never killed");
}

/// Runs `scope_inner_leaves_three_behind` in a test binary of its own; what it left
/// behind, once it has, and the running binary.
fn inner(dir: &TempDir, panic: bool) -> (Vec<(i32, u64)>, support::Spawned) {
    let report = dir.join("inner-left");
    let exe = std::env::current_exe().unwrap();
    let mut cmd = support::helper(exe.to_str().unwrap());
    cmd.args([
        "--exact",
        "scope_inner_leaves_three_behind",
        "--ignored",
        "--test-threads=1",
    ])
    .env("PDM_SCOPE_INNER", &report)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    if panic {
        cmd.env("PDM_SCOPE_INNER_PANIC", "1");
    }
    let mut binary = support::spawn(&mut cmd);
    support::wait_until("the inner test left its processes", || {
        report.exists() || binary.try_wait().is_some()
    });
    let left: Vec<(i32, u64)> = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("{e}: {:?}", binary.wait()))
        .lines()
        .map(|l| {
            let (p, t) = l.split_once(' ').unwrap();
            (p.parse().unwrap(), t.parse().unwrap())
        })
        .collect();
    assert_eq!(left.len(), 3);
    (left, binary)
}

#[test]
fn the_scope_ends_what_was_left_when_its_test_panics() {
    let dir = TempDir::new("inner-panic");
    let (left, binary) = inner(&dir, true);
    let out = binary.wait_with_output();
    assert_eq!(
        out.status.code(),
        Some(101),
        "the inner test failed: {out:?}"
    );
    for p in left {
        assert!(gone(p), "{p:?} outlived its failed test");
    }
}

#[test]
fn the_scope_ends_what_was_left_when_its_test_binary_is_killed() {
    let dir = TempDir::new("inner-kill");
    let (left, mut binary) = inner(&dir, false);
    for &p in &left {
        assert!(!gone(p), "{p:?} ended before its test");
    }
    binary.kill();
    assert_eq!(binary.wait().signal(), Some(libc::SIGKILL));
    // Nothing of the dead binary can end its scopes: each pdm-scope is told by the
    // kernel (its parent thread is gone) and ends its processes itself.
    for p in left {
        support::wait_until("the killed test's processes gone", || gone(p));
    }
}

#[test]
fn out_of_descriptors_for_the_report_pipes_is_a_clean_failure() {
    // Stage 1's three pipes need six descriptors. Three free: the second pipe2 fails.
    // Six free but stdin closed: a pipe end lands on 0 and can't be moved above 2. Either
    // way the error names the call, and the launcher's own descriptors (its stdout,
    // where these results go, among them) are as they were.
    for (args, call) in [
        (&["--nofile-free", "3"][..], "pipe2"),
        (
            &["--close-fd", "0", "--nofile-free", "6"][..],
            "fcntl F_DUPFD_CLOEXEC",
        ),
    ] {
        let r = fails(probe().args(args));
        assert_eq!(r.field("stage"), "1", "{args:?}");
        assert_eq!(r.field("errno"), libc::EMFILE.to_string(), "{args:?}");
        assert!(
            r.field("message")
                .starts_with(&format!("stage 1 (detach): {call}: ")),
            "{args:?}: {}",
            r.field("message")
        );
        assert_eq!(
            r.field("launcher_fds_after"),
            r.field("launcher_fds_before"),
            "{args:?}"
        );
    }
}
