//! Guarantees that only show at the edges: what a stage override opens with stdin
//! closed, real-time signals the launcher ignored, a uid switch that could be undone,
//! a terminal as a log, and the `/proc/self/fd` closing path above the soft limit.

mod support;

use std::ffi::CStr;

use support::{probe, run_fields, Reaper, TempDir};

#[test]
fn with_stdin_closed_a_file_opened_in_a_stage_is_not_descriptor_0() {
    let dir = TempDir::new("fill0");
    let mut reaper = Reaper::new();
    // (std's runtime reopens a closed stdin before main: the probe closes it itself.)
    let r = support::probe_via_sh(&dir, "--close-fd 0 --open-in-stage 2", "");
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    reaper.add(r.pid());
    let fd: i32 = r
        .field("output")
        .strip_prefix("stage_fd=")
        .and_then(|t| t.strip_suffix("\\n"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(fd > 2, "stage 1 filled the closed stdin: {fd}");
}

#[test]
fn a_real_time_signal_the_launcher_ignored_is_reset() {
    let dir = TempDir::new("rtsig");
    let report = dir.join("report");
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args([
        "--ignore-signal",
        "RTMAX",
        "--ignore-signal",
        "PIPE",
        "--report",
        report.to_str().unwrap(),
    ]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    reaper.add(r.pid());
    let rep = support::report(&report);
    assert_eq!(rep["sig_RTMAX"], format!("{}:dfl", libc::SIGRTMAX()));
    assert_eq!(rep["sig_PIPE"], format!("{}:dfl", libc::SIGPIPE));
}

#[test]
fn a_user_switch_that_could_be_undone_is_refused() {
    require_root!();
    // With SECBIT_NO_SETUID_FIXUP, setuid() keeps root's capabilities: the daemon
    // could setuid(0) again, and stage 3 must notice.
    let r = run_fields(probe().args(["--no-setuid-fixup", "--user", "nobody"]));
    assert_eq!(r.status, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("kind"), "PrivilegesRegained", "{}", r.stdout);
    assert_eq!(r.field("stage"), "3");
    assert_eq!(
        r.field("message"),
        "stage 3 (process ids): setuid(0) succeeded after dropping to uid 65534"
    );
    if let Ok(p) = r.field("daemon_pid").parse::<i32>() {
        support::wait_exit(p);
    }
}

/// A pseudo-terminal's subsidiary side, by path (the main side stays open in `_pty`).
struct Pty {
    _main: std::fs::File,
    path: String,
}

fn pty() -> Pty {
    use std::os::unix::io::FromRawFd;
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r with a descriptor we own and a
    // local buffer of the length passed.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut buf = [0 as libc::c_char; 64];
        assert_eq!(libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()), 0);
        let path = CStr::from_ptr(buf.as_ptr()).to_str().unwrap().to_string();
        Pty {
            _main: std::fs::File::from_raw_fd(fd),
            path,
        }
    }
}

#[test]
fn a_terminal_as_stdin_never_becomes_the_controlling_terminal() {
    // A session leader without a terminal acquires the first one it opens for reading
    // without O_NOCTTY (Linux ignores write-only opens for this). The probe, made a
    // session leader by setsid(1), does not detach; its stdin is the terminal.
    let dir = TempDir::new("noctty");
    let report = dir.join("report");
    let pty = pty();
    let mut reaper = Reaper::new();
    let mut cmd = support::host("setsid");
    if let Some(runner) = support::runner() {
        cmd.args(runner.split_whitespace());
    }
    let child = support::spawn(
        cmd.arg(support::helper_bin("pdm-probe"))
            .args([
                "--detach",
                "never",
                "--stdin",
                &pty.path,
                "--report",
                report.to_str().unwrap(),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null()),
    );
    let pid = reaper.add(child.pid());
    let rep = support::report(&report);
    assert_eq!(rep["pid"], pid.to_string(), "setsid(1) did not fork");
    let (_, _, sid, tty) = support::stat_ids(pid);
    assert_eq!(sid, pid, "the probe leads its session");
    assert_eq!(tty, 0, "stage 9 opened {} without O_NOCTTY", pty.path);
}

#[test]
fn above_the_soft_limit_the_proc_self_fd_path_still_closes() {
    // Without close_range, stage 8 lists /proc/self/fd; only where that fails does it
    // loop below the soft limit, which would miss a descriptor above it.
    let dir = TempDir::new("softlimit");
    let report = dir.join("report");
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args([
        "--raise-nofile",
        "--open-fd",
        "1500",
        "--nofile-soft",
        "1024",
        "--close-method",
        "no-close-range",
        "--report",
        report.to_str().unwrap(),
    ]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    reaper.add(r.pid());
    let rep = support::report(&report);
    assert_eq!(rep["fds"], "0,1,2", "descriptor 1500 closed too");
}

#[test]
fn stage_8_keeps_the_set_up_stderr_by_every_method() {
    // Between stage 8 and stage 9, the daemon's stderr is still the report pipe: a
    // stage-9 override's warning must reach the original process.
    for method in ["auto", "no-close-range", "loop"] {
        let mut reaper = Reaper::new();
        let r = run_fields(probe().args([
            "--close-method",
            method,
            "--say-err-in-stage",
            "9:late warning",
        ]));
        assert_eq!(r.status, Some(0), "{method}: {}\n{}", r.stdout, r.stderr);
        reaper.add(r.pid());
        assert_eq!(r.field("error"), "late warning\\n", "{method}");
    }
}

#[test]
fn sixteen_inherited_descriptors_are_all_kept() {
    // INHERIT_CAPACITY of them, with the pid file and the report channel besides.
    let dir = TempDir::new("keep16");
    let report = dir.join("report");
    let pid_path = dir.join("k.pid");
    let mut reaper = Reaper::new();
    let mut args: Vec<String> = Vec::new();
    for fd in 100..100 + pandaemonium::INHERIT_CAPACITY as i32 {
        args.extend([
            "--open-fd".into(),
            fd.to_string(),
            "--keep-fd".into(),
            fd.to_string(),
        ]);
    }
    args.extend([
        "--pid-file".into(),
        pid_path.to_str().unwrap().into(),
        "--report".into(),
        report.to_str().unwrap().into(),
    ]);
    let r = run_fields(probe().args(&args));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    reaper.add(r.pid());
    let fds: Vec<i32> = support::report(&report)["fds"]
        .split(',')
        .map(|f| f.parse().unwrap())
        .collect();
    let kept: Vec<i32> = (100..100 + pandaemonium::INHERIT_CAPACITY as i32).collect();
    assert!(kept.iter().all(|fd| fds.contains(fd)), "fds={fds:?}");
    // 0-2, the pid file, the sixteen: nothing else.
    assert_eq!(fds.len(), 3 + 1 + kept.len(), "fds={fds:?}");
}

#[test]
fn the_last_resort_loop_stops_at_the_soft_limit() {
    // Documented: without close_range and without /proc, stage 8 closes every number
    // below the soft RLIMIT_NOFILE and no further.
    let dir = TempDir::new("loop-limit");
    let report = dir.join("report");
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args([
        "--raise-nofile",
        "--open-fd",
        "1500",
        "--open-fd",
        "700",
        "--nofile-soft",
        "1024",
        "--close-method",
        "loop",
        "--report",
        report.to_str().unwrap(),
    ]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    reaper.add(r.pid());
    assert_eq!(
        support::report(&report)["fds"],
        "0,1,2,1500",
        "700 closed, 1500 above the limit"
    );
}

#[test]
fn a_daemon_that_did_not_detach_gets_sigpipe_from_the_map_at_once() {
    // Only a detached daemon keeps SIGPIPE ignored while it writes to the original
    // process; one that did not fork has no such channel.
    let dir = TempDir::new("never-pipe");
    let report = dir.join("report");
    let _daemon = support::spawn(
        probe()
            .args([
                "--detach",
                "never",
                "--ignore-signal",
                "PIPE",
                "--report",
                report.to_str().unwrap(),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null()),
    );
    let rep = support::report(&report);
    assert_eq!(rep["sig_PIPE"], format!("{}:dfl", libc::SIGPIPE));
    assert_eq!(rep["detached"], "false");
}

#[test]
fn stages_know_whether_the_daemon_detached() {
    let dir = TempDir::new("is-detached");
    let report = dir.join("report");
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args(["--report", report.to_str().unwrap()]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    reaper.add(r.pid());
    assert_eq!(support::report(&report)["detached"], "true");
}
