//! Each stage's effect and each default, seen from outside the daemon: /proc/PID/*,
//! the pid file and its lock, sessions and parents.

mod support;

use support::{probe, run_fields, TempDir};

/// The SigIgn/SigBlk mask bit of a signal (1-based numbers, the platform's own).
fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

fn mask(status: &std::collections::HashMap<String, String>, key: &str) -> u64 {
    u64::from_str_radix(&status[key], 16).unwrap()
}

/// Signals the C library reserves for itself (glibc 32-33, musl 32-34): `sigaction`
/// refuses them, so stage 7 leaves them as inherited, as systemd does. (glibc's
/// `posix_spawn`, which std's `Command` uses, hands them down ignored.)
fn libc_reserved() -> u64 {
    (32..libc::SIGRTMIN()).map(bit).fold(0, |a, b| a | b)
}

/// Starts a probe daemon with `args`; its launcher's result.
fn start(args: &[&str]) -> support::Run {
    let r = run_fields(probe().args(args));
    assert_eq!(
        r.status,
        Some(0),
        "probe failed:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.field("result"), "ok");
    r
}

#[test]
fn defaults_seen_from_proc() {
    let dir = TempDir::new("defaults");
    let pid_path = dir.join("d.pid");
    let r = start(&[
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--block-usr1-ignore-hup",
    ]);
    let pid = r.pid();
    let launcher: i32 = r.field("launcher").parse().unwrap();
    assert_ne!(pid, launcher, "stage 1 forked");

    // Stage 1: not a session leader, no controlling terminal, a session of its own.
    let (ppid, _pgrp, sid, tty) = support::stat_ids(pid);
    assert_ne!(sid, pid, "the daemon is not a session leader");
    assert_ne!(
        sid,
        support::stat_ids(std::process::id() as i32).2,
        "new session"
    );
    assert_eq!(tty, 0, "no controlling terminal");
    assert_eq!(
        ppid, r.reaper,
        "reparented to the subreaper (the scope's process that ran the launcher)"
    );

    let st = support::status(pid);
    // Stage 2: core dumps off, soft and hard.
    assert_eq!(
        support::core_limits(pid),
        ("0".to_string(), "0".to_string())
    );
    // Stage 3 default: ids unchanged.
    let me = support::status(std::process::id() as i32);
    assert_eq!(st["Uid"], me["Uid"]);
    assert_eq!(st["Gid"], me["Gid"]);
    // Stage 4: umask 077.
    assert_eq!(st["Umask"], "0077");
    // Stage 5: cwd /.
    assert_eq!(support::cwd(pid), std::path::PathBuf::from("/"));
    // Stage 6: pid file holds the daemon's pid and a newline; the file is locked.
    assert_eq!(
        std::fs::read_to_string(&pid_path).unwrap(),
        format!("{pid}\n")
    );
    assert!(support::is_locked(&pid_path), "pid file locked");
    assert!(
        support::holds_lock(pid, &pid_path),
        "the daemon's own descriptor holds the lock"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pid_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "pid file mode");
    }
    // Stage 7 is seen from /proc in `signal_state_seen_from_proc` (not under qemu) and
    // from inside the daemon in `signal_numbers_come_from_the_platform` (everywhere).
    // Stage 8 and 9: 0-2 on /dev/null, then only the pid file (at whatever number).
    support::assert_open_files(pid, ["/dev/null"; 3], &[pid_path.to_str().unwrap()]);

    // SIGTERM: pid file removed, the daemon dies of SIGTERM (shell status 143).
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(support::wait_exit(pid), Some(128 + libc::SIGTERM));
    assert!(!pid_path.exists(), "pid file removed on SIGTERM");
}

#[test]
fn the_launcher_is_left_as_it_was() {
    let dir = TempDir::new("launcher");
    let rep = dir.join("rep");
    let r = start(&["--report", rep.to_str().unwrap(), "--umask", "027"]);
    let rep = support::report(&rep);
    assert_eq!(rep["umask"], "27");
    assert_eq!(rep["pid"], r.field("pid"));
    // The launcher's own umask and core limits, before and after start(): unchanged
    // (pandaemonium lowers the launcher's core limit in its constructor).
    assert_eq!(r.field("launcher_before"), r.field("launcher_after"));
    assert!(!r.field("launcher_after").starts_with("27:"));
}

#[test]
fn configured_values_reach_the_daemon() {
    let dir = TempDir::new("config");
    let out = dir.join("out.log");
    let err = dir.join("err.log");
    let r = start(&[
        "--umask",
        "022",
        "--workdir",
        "/tmp",
        "--allow-core",
        "--stdout",
        out.to_str().unwrap(),
        "--stderr",
        err.to_str().unwrap(),
        "--signal",
        "SIGHUP=ign",
        "--signal",
        "TSTP=dfl",
    ]);
    let pid = r.pid();
    let st = support::status(pid);
    assert_eq!(st["Umask"], "0022");
    assert_eq!(support::cwd(pid), std::path::PathBuf::from("/tmp"));
    // Core dumps left alone: the hard limit is still the launcher's (the test's).
    let mine = support::core_limits(std::process::id() as i32);
    assert_eq!(support::core_limits(pid), mine);
    assert_ne!(mine.1, "0");
    assert_eq!(support::fd_target(pid, 1), out.display().to_string());
    assert_eq!(support::fd_target(pid, 2), err.display().to_string());
    assert_eq!(support::fd_target(pid, 0), "/dev/null");
    assert!(out.exists() && err.exists());
}

#[test]
fn signal_numbers_come_from_the_platform() {
    // Fails on MIPS if the default map hard-coded x86 numbers (TSTP 20, TTIN 21, TTOU 22).
    let dir = TempDir::new("signums");
    let rep = dir.join("rep");
    // The launcher ignores SIGHUP and blocks SIGUSR1: reset in the daemon.
    start(&["--block-usr1-ignore-hup", "--report", rep.to_str().unwrap()]);
    let rep = support::report(&rep);
    assert_eq!(rep["sig_TSTP"], format!("{}:ign", libc::SIGTSTP));
    assert_eq!(rep["sig_TTIN"], format!("{}:ign", libc::SIGTTIN));
    assert_eq!(rep["sig_TTOU"], format!("{}:ign", libc::SIGTTOU));
    assert_eq!(rep["sig_TERM"], format!("{}:handler", libc::SIGTERM));
    assert_eq!(rep["sig_HUP"], format!("{}:dfl", libc::SIGHUP));
    assert_eq!(rep["blocked"], "[]");
    assert_eq!(rep["umask"], "77");
    assert_eq!(rep["fds"], "0,1,2");
}

#[test]
fn a_user_handler_gets_the_same_clean_up() {
    let dir = TempDir::new("usr1");
    let pid_path = dir.join("u.pid");
    let r = start(&[
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--signal",
        "USR1=usr1flag",
    ]);
    let pid = r.pid();
    assert!(pid_path.exists());
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    assert_eq!(
        support::wait_exit(pid),
        Some(42),
        "pandaemonium::exit(42) from run()"
    );
    assert!(!pid_path.exists(), "pid file removed by pandaemonium::exit");
}

#[test]
fn run_returning_removes_the_pid_file_and_exits_with_its_status() {
    let dir = TempDir::new("runexit");
    let pid_path = dir.join("r.pid");
    let marker = dir.join("ran");
    let r = start(&[
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--exit",
        "7",
        "--marker",
        marker.to_str().unwrap(),
    ]);
    assert_eq!(support::wait_exit(r.pid()), Some(7));
    assert!(marker.exists());
    assert!(!pid_path.exists());
}

#[test]
fn set_up_output_and_error_reach_the_original() {
    let r = start(&["--say", "hello from stage 2", "--say-err", "a warning"]);
    assert_eq!(r.field("output"), "hello from stage 2\\n");
    assert_eq!(r.field("error"), "a warning\\n");
    assert_eq!(
        r.field("second"),
        "StageOrder",
        "a second start() is refused"
    );
}

#[test]
fn stage_then_custom_step_then_start() {
    // stage(4) (the seed's stage4()), a custom step, then start() runs 5-9.
    let dir = TempDir::new("stage4");
    let custom = dir.join("custom-file");
    let marker = dir.join("ran");
    let mut cmd = probe();
    cmd.current_dir(dir.path()).args([
        "--stage-first",
        "4",
        "--custom-file",
        "custom-file",
        "--umask",
        "027",
        "--marker",
        marker.to_str().unwrap(),
    ]);
    let r = run_fields(&mut cmd);
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    support::wait_until("run() reached", || marker.exists());
    // The custom step ran after stage 4 (umask 027 applied: mode 0640 from 0666) and
    // before stage 5 (still in the launcher's directory, not /).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&custom).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert_eq!(support::cwd(r.pid()), std::path::PathBuf::from("/"));
}

#[test]
fn a_stage_already_done_is_refused() {
    // After stage(4) in the daemon, stage(1) again is StageOrder; the daemon's
    // set-up stdout carries that answer back.
    let r = run_fields(probe().args(["--stage-first", "4"]));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert_eq!(r.field("output"), "stages_done=4\\nagain=StageOrder\\n");
    assert_eq!(
        r.field("after_detach"),
        "StageOrder",
        "no stage in the original after detach"
    );
    assert_eq!(r.field("start_after_detach"), "StageOrder");
}

#[test]
fn activate_returns_inside_the_daemon() {
    // The foreground/daemon pattern: the original prints output and exits 0; the
    // daemon returns from activate() and runs.
    let dir = TempDir::new("activate");
    let pid_path = dir.join("a.pid");
    let rep = dir.join("rep");
    let out = support::run(probe().args([
        "--mode",
        "activate",
        "--say",
        "setting up",
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--report",
        rep.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("setting up\n"),
        "original printed the output: {stdout}"
    );
    let pid = support::read_pid(&pid_path).expect("pid file sealed");
    let rep = support::report(&rep);
    assert_eq!(
        rep["pid"],
        pid.to_string(),
        "run() after activate() is in the sealed daemon"
    );
}

#[test]
fn activate_failure_makes_the_original_exit_non_zero() {
    let out = support::run(probe().args(["--mode", "activate", "--workdir", "/nonexistent-pdm"]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stage 5 (working directory): chdir /nonexistent-pdm: No such file or directory (os error 2)"), "{stderr}");
}

#[test]
fn launched_with_stdio_closed() {
    // The daemon's 0-2 end on /dev/null, and no file it opens lands on 0-2. (std's
    // runtime reopens a closed 0-2 on /dev/null before main, so the probe closes 0 and 2
    // itself; 1 carries its results, `--out`.)
    let dir = TempDir::new("closed");
    let pid_path = dir.join("c.pid");
    let rep = dir.join("rep");
    let args = format!(
        "--close-fd 0 --close-fd 2 --pid-file {} --report {}",
        pid_path.display(),
        rep.display()
    );
    let r = support::probe_via_sh(&dir, &args, "<&- >&- 2>&-");
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    let pid = support::read_pid(&pid_path).expect("pid file");
    let rep = support::report(&rep);
    assert!(
        rep["probe_fd"].parse::<i32>().unwrap() > 2,
        "a file opened in run() lands above 2"
    );
    // 0-2 on /dev/null, the pid file above 2 (and nothing else).
    support::assert_open_files(pid, ["/dev/null"; 3], &[pid_path.to_str().unwrap()]);
}

#[test]
fn launched_with_stdio_closed_without_detaching() {
    // Not detached, the launcher itself becomes the daemon: the shell's process.
    let dir = TempDir::new("closed-never");
    let rep = dir.join("rep");
    let pid_path = dir.join("n.pid");
    let cmd = format!(
        "exec {} --out {} {} --close-fd 0 --close-fd 2 --detach never --pid-file {} --report {} <&- >&- 2>&-",
        support::sh_target(&support::helper_bin("pdm-probe")),
        dir.join("probe-result").display(),
        support::probe_flags(),
        pid_path.display(),
        rep.display()
    );
    let mut sh = support::spawn(support::host("/bin/sh").args(["-c", &cmd]));
    let pid = sh.pid();
    let rep = support::report(&rep);
    assert_eq!(rep["pid"], pid.to_string(), "run() in the launched process");
    assert!(rep["probe_fd"].parse::<i32>().unwrap() > 2);
    // From inside: 0-2 filled and one descriptor above them...
    let inside: Vec<i32> = rep["fds"].split(',').map(|f| f.parse().unwrap()).collect();
    assert!(
        inside.len() == 4 && inside[..3] == [0, 1, 2] && inside[3] > 2,
        "fds={}",
        rep["fds"]
    );
    // ... which, seen from outside, is the pid file.
    let open = support::open_files(pid);
    assert_eq!(open.range(..3).count(), 3, "0-2 filled: {open:?}");
    let above: Vec<&String> = open.range(3..).map(|(_, t)| t).collect();
    assert_eq!(above, [&pid_path.display().to_string()], "{open:?}");
    // SAFETY: kill with integer arguments; `pid` is a live child of the scope.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(sh.wait().signal(), Some(libc::SIGTERM));
    assert!(!pid_path.exists(), "pid file removed on SIGTERM");
}

#[test]
fn the_lock_outlives_a_dropped_daemon_after_activate() {
    let dir = TempDir::new("actdrop");
    let pid_path = dir.join("ad.pid");
    let marker = dir.join("ran");
    let out = support::run(probe().args([
        "--mode",
        "activate-drop",
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--marker",
        marker.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(0));
    let pid = support::read_pid(&pid_path).expect("sealed");
    // run() writes the marker after the Daemon was dropped.
    support::wait_until("the daemon is in run()", || marker.exists());
    assert!(support::is_locked(&pid_path), "still locked");
    let again = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(again.status, Some(3));
    assert_eq!(
        again.field("message"),
        format!(
            "stage 6 (pid file): {}: already running (pid {pid})",
            pid_path.display()
        )
    );
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "qemu-user shows its own signal state in /proc (host numbers, all fatal signals caught)"
)]
fn signal_state_seen_from_proc() {
    let dir = TempDir::new("sigproc");
    // The launcher blocks SIGUSR1 and ignores SIGHUP: the daemon must not inherit either.
    let r = start(&["--block-usr1-ignore-hup"]);
    let st = support::status(r.pid());
    assert_eq!(mask(&st, "SigBlk"), 0);
    assert_eq!(
        mask(&st, "SigIgn") & !libc_reserved(),
        bit(libc::SIGTSTP) | bit(libc::SIGTTIN) | bit(libc::SIGTTOU)
    );
    assert_ne!(
        mask(&st, "SigCgt") & bit(libc::SIGTERM),
        0,
        "SIGTERM caught"
    );
    // A user map over the defaults: HUP ignored, TSTP back to default.
    let r = start(&["--signal", "SIGHUP=ign", "--signal", "TSTP=dfl"]);
    let st = support::status(r.pid());
    assert_eq!(
        mask(&st, "SigIgn") & !libc_reserved(),
        bit(libc::SIGHUP) | bit(libc::SIGTTIN) | bit(libc::SIGTTOU)
    );
    drop(dir);
}

#[test]
fn a_user_signal_map_overrides_the_defaults_seen_from_inside() {
    // The daemon's own view (sigaction), right on every architecture and under qemu.
    let dir = TempDir::new("sigmap");
    let rep = dir.join("rep");
    start(&[
        "--signal",
        "SIGHUP=ign",
        "--signal",
        "TSTP=dfl",
        "--block-usr1-ignore-hup",
        "--report",
        rep.to_str().unwrap(),
    ]);
    let rep = support::report(&rep);
    assert_eq!(rep["sig_HUP"], format!("{}:ign", libc::SIGHUP));
    assert_eq!(rep["sig_TSTP"], format!("{}:dfl", libc::SIGTSTP));
    assert_eq!(rep["sig_TTIN"], format!("{}:ign", libc::SIGTTIN));
    assert_eq!(
        rep["blocked"], "[]",
        "the launcher's blocked SIGUSR1 is not inherited"
    );
}
