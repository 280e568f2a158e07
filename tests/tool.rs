//! The `pandaemonium` tool, run as a user would run it from a shell script: every
//! flag, every exit code, the 30-start race, stop's escalation and its refusal to
//! signal a stranger, and `--supervise --restart`.
//!
//! Every process a test starts runs in its scope (`tests/support`), which kills and
//! reaps them all on the way out, failed assertions included; no test asserts on
//! elapsed time (waits are bounded polls).

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;

use pandaemonium::{Errno, Error, Stage};
use support::{alive, comm, fd_target, fds, host, ppid, wait_exit, wait_until, TempDir};

use support::tool::{expect, pids, run, start, tool, TOOL};

fn pid_in(path: &Path) -> i32 {
    pids(path)
        .0
        .unwrap_or_else(|| panic!("no pid in {}", path.display()))
}

/// Whether `pid` ignores `sig` (`/proc/PID/status`).
fn ignores(pid: i32, sig: i32) -> bool {
    let mask = u64::from_str_radix(&support::status(pid)["SigIgn"], 16).unwrap();
    mask & (1 << (sig - 1)) != 0
}

fn kill(pid: i32, sig: i32) {
    assert!(pid > 0, "kill {pid}");
    // SAFETY: kill with integer arguments; pid > 0 is a process this test started.
    let r = unsafe { libc::kill(pid, sig) };
    assert!(r == 0, "kill {pid} {sig}");
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn help_and_version() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["start", "--help"],
        &["stop", "--help"],
        &["status", "-h"],
    ] {
        let out = expect(0, args);
        assert!(
            out.stdout.starts_with("usage: pandaemonium start "),
            "{}",
            out.stdout
        );
        for flag in [
            "--pid-file",
            "--chdir",
            "--umask",
            "--user",
            "--stdin",
            "--stdout",
            "--stderr",
            "--keep-fd",
            "--allow-core",
            "--detach",
            "--foreground",
            "--supervise",
            "--restart",
            "--signal",
            "--timeout",
        ] {
            assert!(out.stdout.contains(flag), "--help lacks {flag}");
        }
        assert_eq!(out.stderr, "");
    }
    let out = expect(0, ["--version"]);
    assert_eq!(
        out.stdout,
        format!("pandaemonium {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// A value of any length keeps the reason in the message: the value is shortened in
/// the middle, never the line at its end.
#[test]
fn usage_errors_keep_their_reason_whatever_the_length() {
    let long_path = format!("/{}", "a".repeat(4095));
    let long_option = format!("--{}", "x".repeat(3000));
    for (args, reason) in [
        (
            vec!["start", "--pid-file", &long_path, "--", "/bin/true"],
            ": longer than 255 bytes (see pandaemonium --help)\n",
        ),
        (
            vec!["status", "--pid-file", &long_path],
            ": longer than 255 bytes (see pandaemonium --help)\n",
        ),
        (
            vec!["start", &long_option, "--", "/bin/true"],
            " (see pandaemonium --help)\n",
        ),
    ] {
        let out = expect(2, &args);
        assert!(out.stderr.ends_with(reason), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains("..."), "shortened in the middle");
        assert!(out.stderr.len() < 512, "{}", out.stderr.len());
    }
}

#[test]
fn usage_errors_exit_2_with_one_line_before_any_fork() {
    let dir = TempDir::new("tool-usage");
    let pid = dir.join("p.pid");
    let marker = dir.join("ran");
    let p = s(&pid);
    // Were PROGRAM ever run, it would leave this file.
    let program = format!("touch {}", s(&marker));
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["frobnicate"],
        vec![
            "start",
            "--pid-file",
            p,
            "--bogus",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec!["start", "-x", "--", "/bin/sh", "-c", &program],
        vec!["start", "--pid-file"],
        vec![
            "start",
            "--pid-file",
            p,
            "--umask",
            "089",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--umask=1000",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            "relative.pid",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--user",
            "pdm-no-such-user",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--user",
            "root:pdm-no-such-group",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--user",
            "4242",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec!["start", "--pid-file", p],
        vec!["start", "--pid-file", p, "--"],
        vec![
            "start",
            "--pid-file",
            p,
            "--restart",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--supervise",
            "--restart=soon",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--supervise",
            "--restart=0",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--detach",
            "sometimes",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--keep-fd",
            "987",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--keep-fd",
            "seven",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--allow-core=yes",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--chdir",
            "",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec![
            "start",
            "--pid-file",
            p,
            "--stdout",
            "",
            "--",
            "/bin/sh",
            "-c",
            &program,
        ],
        vec!["stop"],
        vec!["stop", "--pid-file", "relative.pid"],
        vec!["stop", "--pid-file", p, "--signal", "SIGNOPE"],
        vec!["stop", "--pid-file", p, "--timeout", "soon"],
        vec!["stop", "--pid-file", p, "extra"],
        vec!["status"],
        vec!["status", "--pid-file", p, "--bogus"],
        vec!["status", "--pid-file=relative.pid"],
    ];
    for args in cases {
        let out = run(&args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(
            out.stderr.starts_with("pandaemonium: ") && out.stderr.ends_with('\n'),
            "{args:?}: {:?}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {:?}", out.stderr);
        assert!(
            !pid.exists() && !marker.exists(),
            "{args:?} got as far as forking"
        );
    }
    let out = run(["start", "--umask", "089", "--", "/bin/true"]);
    assert_eq!(
        out.stderr,
        "pandaemonium: --umask 089: not an octal mask (0 to 777) (see pandaemonium --help)\n"
    );
}

#[test]
fn start_execs_program_holding_the_lock_then_status_and_stop() {
    let dir = TempDir::new("tool-start");
    let pid_file = dir.join("sleep.pid");
    let pid = start(&pid_file, &[], &["/bin/sleep", "1000"]);
    // The pid file names PROGRAM itself: the daemon exec'd it.
    assert_eq!(comm(pid), "sleep");
    assert_eq!(
        fs::read(format!("/proc/{pid}/cmdline")).unwrap(),
        b"/bin/sleep\x001000\x00"
    );
    assert_eq!(fs::read_to_string(&pid_file).unwrap(), format!("{pid}\n"));
    // ... and holds the lock through the descriptor kept open across exec.
    let held: Vec<i32> = fds(pid)
        .into_iter()
        .filter(|&fd| fd_target(pid, fd) == s(&pid_file))
        .collect();
    assert_eq!(held.len(), 1, "fds of {pid}: {:?}", fds(pid));
    assert!(support::is_locked(&pid_file));
    // Detached: another session; stdio on /dev/null and, above 2, nothing but the pid
    // file (the exec-status pipe and whatever the tool inherited are closed).
    // SAFETY: getsid(0) reads our own session id.
    assert_ne!(support::stat_ids(pid).2, unsafe { libc::getsid(0) });
    support::assert_open_files(pid, ["/dev/null"; 3], &[s(&pid_file)]);
    let out = expect(0, ["status", "--pid-file", s(&pid_file)]);
    assert_eq!(
        (out.stdout, out.stderr),
        (format!("{pid}\n"), String::new())
    );
    let out = expect(0, ["stop", "--pid-file", s(&pid_file)]);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    assert_eq!(wait_exit(pid), Some(128 + libc::SIGTERM));
    assert!(
        !pid_file.exists(),
        "stop removes the pid file PROGRAM left behind"
    );
    expect(3, ["status", "--pid-file", s(&pid_file)]);
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
}

#[test]
fn start_is_refused_while_a_live_holder_exists() {
    let dir = TempDir::new("tool-twice");
    let pid_file = dir.join("p.pid");
    let pid = start(&pid_file, &[], &["/bin/sleep", "1000"]);
    let out = expect(
        1,
        [
            "start",
            "--pid-file",
            s(&pid_file),
            "--",
            "/bin/sleep",
            "1000",
        ],
    );
    let expected = format!(
        "pandaemonium: stage 6 (pid file): {}: already running (pid {pid})\n",
        s(&pid_file)
    );
    assert_eq!(out.stderr, expected);
    assert!(alive(pid));
    assert_eq!(pid_in(&pid_file), pid);
}

#[test]
fn exec_failures_are_reported_and_leave_nothing_behind() {
    let dir = TempDir::new("tool-exec");
    let pid_file = dir.join("p.pid");
    let script = dir.join("not-executable");
    fs::write(&script, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    for (program, error) in [
        (
            "/nonexistent/program",
            "No such file or directory (os error 2)",
        ),
        (s(&script), "Permission denied (os error 13)"),
        // Not found in PATH: refused before anything forks, with the same message.
        (
            "pdm-no-such-program",
            "No such file or directory (os error 2)",
        ),
    ] {
        for supervise in [&[][..], &["--supervise"]] {
            let mut args = vec!["start", "--pid-file", s(&pid_file)];
            args.extend_from_slice(supervise);
            args.extend_from_slice(&["--", program, "arg"]);
            let out = expect(1, &args);
            assert_eq!(
                out.stderr,
                format!("pandaemonium: exec {program}: {error}\n"),
                "{args:?}"
            );
            assert!(!pid_file.exists(), "{args:?} left its pid file");
        }
    }
}

#[test]
fn stage_failures_name_the_stage_as_the_core_does() {
    let dir = TempDir::new("tool-stage");
    let pid_file = dir.join("p.pid");
    // Paths in this test's directory, which a mutant that took them for the pid file
    // would write there, not in /.
    let missing = dir.join("missing");
    let missing_in = dir.join("missing/in");
    let out = expect(
        1,
        [
            "start",
            "--pid-file",
            s(&pid_file),
            "--chdir",
            s(&missing),
            "--",
            "/bin/sleep",
            "1",
        ],
    );
    let e = Error::os(
        Stage::WorkingDirectory,
        Errno::NOENT,
        "chdir",
        s(&missing).as_bytes(),
    );
    assert_eq!(out.stderr, format!("pandaemonium: {e}\n"));
    assert!(!pid_file.exists());
    let out = expect(
        1,
        [
            "start",
            "--pid-file",
            s(&pid_file),
            "--stdin",
            s(&missing_in),
            "--",
            "/bin/sleep",
            "1",
        ],
    );
    assert!(
        out.stderr.starts_with(&format!(
            "pandaemonium: stage 9 (redirect stdio): open {}",
            s(&missing_in)
        )),
        "{}",
        out.stderr
    );
    assert!(!pid_file.exists());
}

#[test]
fn chdir_umask_and_core_limit() {
    let dir = TempDir::new("tool-process");
    let pid_file = dir.join("p.pid");
    let pid = start(
        &pid_file,
        &["--chdir", s(dir.path()), "--umask", "027", "--allow-core"],
        &["/bin/sleep", "1000"],
    );
    assert_eq!(support::cwd(pid), dir.path());
    assert_eq!(support::status(pid)["Umask"], "0027");
    assert_eq!(
        support::core_limits(pid),
        support::core_limits(std::process::id() as i32)
    );
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_exit(pid);
    // The defaults: /, 077, no core dumps.
    let pid = start(&pid_file, &[], &["/bin/sleep", "1000"]);
    assert_eq!(support::cwd(pid), Path::new("/"));
    assert_eq!(support::status(pid)["Umask"], "0077");
    assert_eq!(
        support::core_limits(pid),
        ("0".to_string(), "0".to_string())
    );
    // PROGRAM gets default signals: none of 1-31 ignored (not even the terminal stop
    // signals the core ignores), none blocked. (libc's reserved real-time signals are
    // left as inherited: glibc's posix_spawn, which std uses, hands them over ignored.)
    let ignored = u64::from_str_radix(&support::status(pid)["SigIgn"], 16).unwrap();
    assert_eq!(ignored & 0x7fff_ffff, 0, "SigIgn {ignored:x}");
    assert_eq!(support::status(pid)["SigBlk"], "0000000000000000");
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_exit(pid);
}

#[test]
fn stdin_stdout_stderr_redirection() {
    let dir = TempDir::new("tool-stdio");
    let pid_file = dir.join("p.pid");
    let (input, output, errors) = (dir.join("in"), dir.join("out.log"), dir.join("err.log"));
    fs::write(&input, "hello\n").unwrap();
    fs::write(&output, "earlier\n").unwrap();
    let program = "read line; echo \"got $line\"; echo oops >&2; exec /bin/sleep 1000";
    let pid = start(
        &pid_file,
        &[
            "--stdin",
            s(&input),
            "--stdout",
            s(&output),
            "--stderr",
            s(&errors),
        ],
        &["/bin/sh", "-c", program],
    );
    wait_until("the program's output", || {
        fs::read_to_string(&output).unwrap() == "earlier\ngot hello\n"
    });
    wait_until("the program's errors", || {
        fs::read_to_string(&errors).unwrap_or_default() == "oops\n"
    });
    assert_eq!(fd_target(pid, 0), s(&input));
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_exit(pid);
}

#[test]
fn keep_fd_from_a_shell_script() {
    let dir = TempDir::new("tool-keepfd");
    let pid_file = dir.join("p.pid");
    let kept = dir.join("kept");
    for keep in [true, false] {
        let flag = if keep { "--keep-fd 7" } else { "" };
        let script = format!(
            "exec 7>'{}'; exec {} start {flag} --pid-file '{}' -- /bin/sleep 1000",
            s(&kept),
            support::sh_target(TOOL),
            s(&pid_file)
        );
        let out = support::run(support::host("/bin/sh").args(["-c", &script]));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = pid_in(&pid_file);
        // 7 kept at its number, or closed; above 2 nothing else but the pid file.
        assert_eq!(
            fd_target(pid, 7) == s(&kept),
            keep,
            "fds of {pid}: {:?}",
            support::open_files(pid)
        );
        let files: &[&str] = if keep {
            &[s(&pid_file), s(&kept)]
        } else {
            &[s(&pid_file)]
        };
        support::assert_open_files(pid, ["/dev/null"; 3], files);
        expect(0, ["stop", "--pid-file", s(&pid_file)]);
        wait_exit(pid);
    }
}

#[test]
fn user_and_group() {
    require_root!();
    let dir = TempDir::new("tool-user");
    let pid_file = dir.join("p.pid");
    for (spec, uid, gid) in [
        ("nobody", "65534", None),
        ("4242:4242", "4242", Some("4242")),
        ("65534:1", "65534", Some("1")),
    ] {
        let pid = start(&pid_file, &["--user", spec], &["/bin/sleep", "1000"]);
        let st = support::status(pid);
        assert_eq!(
            st["Uid"].split_whitespace().collect::<Vec<_>>(),
            [uid; 4],
            "{spec}"
        );
        let gids: Vec<&str> = st["Gid"].split_whitespace().collect();
        if let Some(gid) = gid {
            assert_eq!(gids, [gid; 4], "{spec}");
        }
        // The primary group is among the supplementary groups; root's are gone.
        let groups: Vec<&str> = st["Groups"].split_whitespace().collect();
        assert!(
            groups.contains(&gids[0]) && !groups.contains(&"0"),
            "{spec}: {groups:?}"
        );
        expect(0, ["stop", "--pid-file", s(&pid_file)]);
        wait_exit(pid);
    }
}

/// The pid file is acquired by the caller, still root, before the user switch (as
/// start-stop-daemon --chuid writes it): a pid file in a directory only root may write
/// works with `--user nobody`; a start that fails leaves nothing there; the file the
/// unprivileged program could not remove is taken over by the next start.
#[test]
fn user_switch_with_a_pid_file_in_a_root_only_directory() {
    require_root!();
    let dir = TempDir::new("tool-run");
    let run = dir.join("run");
    fs::create_dir(&run).unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
    let pid_file = run.join("n.pid");
    for opts in [
        &["--user", "nobody"][..],
        &["--user", "nobody", "--supervise"],
    ] {
        let pid = start(&pid_file, opts, &["/bin/sleep", "1000"]);
        assert_eq!(support::status(pid)["Uid"], "65534\t65534\t65534\t65534");
        let meta = fs::metadata(&pid_file).unwrap();
        assert_eq!(meta.uid(), 0, "{opts:?}: created by root");
        assert!(
            support::holds_lock(pid, &pid_file),
            "{opts:?}: PROGRAM holds the lock"
        );
        expect(0, ["status", "--pid-file", s(&pid_file)]);
        expect(0, ["stop", "--pid-file", s(&pid_file)]);
        wait_until("stopped", || !alive(pid));
        assert!(
            !pid_file.exists(),
            "{opts:?}: stop removes what nobody could not"
        );
    }
    // A failed start (after the fork, as nobody) leaves nothing behind.
    let out = expect(
        1,
        [
            "start",
            "--pid-file",
            s(&pid_file),
            "--user",
            "nobody",
            "--chdir",
            "/nonexistent",
            "--",
            "/bin/sleep",
            "1000",
        ],
    );
    assert!(
        out.stderr.contains("stage 5 (working directory)"),
        "{}",
        out.stderr
    );
    assert!(!pid_file.exists(), "the failed start left {}", s(&pid_file));
    // PROGRAM ends by itself: as nobody it can't remove the file; the next start takes
    // it over.
    let pid = start(
        &pid_file,
        &["--user", "nobody"],
        &["/bin/sh", "-c", "exit 0"],
    );
    wait_until("PROGRAM ended", || !alive(pid));
    wait_until("its lock gone", || !support::is_locked(&pid_file));
    assert!(pid_file.exists(), "left behind by an unprivileged PROGRAM");
    let pid = start(&pid_file, &["--user", "nobody"], &["/bin/sleep", "1000"]);
    assert_eq!(pid_in(&pid_file), pid);
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_until("stopped", || !alive(pid));
}

#[test]
fn foreground_and_detach_never_run_in_the_calling_process() {
    let dir = TempDir::new("tool-fg");
    let pid_file = dir.join("p.pid");
    for flags in [
        &["--foreground"][..],
        &["--detach", "never"],
        &["--detach=never"],
    ] {
        let mut cmd = tool(["start", "--pid-file", s(&pid_file)]);
        cmd.args(flags)
            .args(["--", "/bin/sleep", "1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut spawned = support::spawn(&mut cmd);
        let child = spawned.pid();
        wait_until("the pid file", || {
            pids(&pid_file).0 == Some(child) && comm(child) == "sleep"
        });
        expect(0, ["stop", "--pid-file", s(&pid_file)]);
        let status = spawned.wait();
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{flags:?}");
    }
}

#[test]
fn detach_auto_stays_under_inetd_and_always_detaches() {
    let dir = TempDir::new("tool-detach");
    let pid_file = dir.join("p.pid");
    // stdin a socket (inetd style): auto does not fork, PROGRAM keeps the socket.
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut cmd = tool([
        "start",
        "--detach",
        "auto",
        "--pid-file",
        s(&pid_file),
        "--",
        "/bin/sleep",
        "1000",
    ]);
    cmd.stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut spawned = support::spawn(&mut cmd);
    let child = spawned.pid();
    wait_until("the pid file", || {
        pids(&pid_file).0 == Some(child) && comm(child) == "sleep"
    });
    assert!(fd_target(child, 0).starts_with("socket:"));
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    spawned.wait();
    drop(ours);
    // always: forks even so, into a session of its own.
    let pid = start(&pid_file, &["--detach", "always"], &["/bin/sleep", "1000"]);
    // SAFETY: getsid(0) reads our own session id.
    assert_ne!(support::stat_ids(pid).2, unsafe { libc::getsid(0) });
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_exit(pid);
}

/// Live processes whose command line is exactly `argv`.
fn running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid: &i32| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want) && alive(pid)
        })
        .collect()
}

#[test]
fn race_of_30_starts_yields_exactly_one_program() {
    let dir = TempDir::new("tool-race");
    let pid_file = dir.join("race.pid");
    // A command line of this run's own (sleep takes fractional seconds): the machine
    // may be running this very test elsewhere (another checkout, a mutation run).
    let seconds = format!("7301.{}", std::process::id());
    let program = ["/bin/sleep", seconds.as_str()];
    let mut starts = Vec::new();
    for _ in 0..30 {
        let mut cmd = tool([
            "start",
            "--pid-file",
            s(&pid_file),
            "--",
            program[0],
            program[1],
        ]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        starts.push(support::spawn(&mut cmd));
    }
    let outs: Vec<_> = starts.into_iter().map(|c| c.wait_with_output()).collect();
    let winners = outs.iter().filter(|o| o.status.code() == Some(0)).count();
    let pid = pids(&pid_file).0;
    assert_eq!(winners, 1);
    for o in outs.iter().filter(|o| o.status.code() != Some(0)) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("stage 6 (pid file)") && err.contains("already running"),
            "{err}"
        );
    }
    assert_eq!(running(&program), vec![pid.unwrap()]);
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_exit(pid.unwrap());
    assert_eq!(running(&program), Vec::<i32>::new());
}

/// `stop` removes a stale pid file; a `start` racing it must never fail because of that
/// removal (it holds a shared `flock` only, which `start` waits out), and no daemon is
/// left without the lock.
#[test]
fn stale_file_removal_never_fails_a_racing_start() {
    let dir = TempDir::new("tool-stale-race");
    let pid_file = dir.join("p.pid");
    // A command line of this run alone, to count what is left of it.
    let secs = format!("1{:06}", std::process::id());
    for round in 0..50 {
        fs::write(&pid_file, "999999\n").unwrap(); // stale: nobody holds it
        let starting = support::spawn(
            tool([
                "start",
                "--pid-file",
                s(&pid_file),
                "--",
                "/bin/sleep",
                &secs,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        );
        let mut stopping = support::spawn(
            tool(["stop", "--pid-file", s(&pid_file)])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        assert_eq!(stopping.wait().code(), Some(0), "round {round}: stop");
        // The start may lose to the stop (which signals whatever holds the lock, the
        // starting daemon too); it must never fail as "already running".
        let out = starting.wait_with_output();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("already running"), "round {round}: {err}");
        // Whatever started runs holding the lock, or the stop ended it.
        expect(0, ["stop", "--pid-file", s(&pid_file)]);
        assert!(
            !support::is_locked(&pid_file) && !pid_file.exists(),
            "round {round}"
        );
    }
    assert_eq!(
        running(&["/bin/sleep", &secs]),
        Vec::<i32>::new(),
        "no orphan"
    );
}

/// A shared `flock` held for a moment (what a lock query or a stale-file removal takes)
/// does not make `start` fail: it waits it out, holding its own OFD lock meanwhile.
#[test]
fn a_start_waits_out_a_passing_shared_flock() {
    let dir = TempDir::new("tool-shared-flock");
    let pid_file = dir.join("p.pid");
    let ready = dir.join("ready");
    let go = dir.join("go");
    fs::write(&pid_file, "").unwrap();
    let script = format!(
        ": > '{}'; while [ ! -e '{}' ]; do /bin/sleep 0.01; done",
        s(&ready),
        s(&go)
    );
    let _query = support::spawn(
        host("flock")
            .args(["-s", s(&pid_file), "/bin/sh", "-c", &script])
            .stdin(Stdio::null()),
    );
    wait_until("the shared flock", || ready.exists());
    let mut starting = support::spawn(
        tool([
            "start",
            "--pid-file",
            s(&pid_file),
            "--",
            "/bin/sleep",
            "1000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped()),
    );
    let launcher = starting.pid();
    wait_until(
        "the start has its OFD lock, and waits for the flock",
        || support::holds_lock(launcher, &pid_file) || starting.try_wait().is_some(),
    );
    // The start retries for at least two seconds (2000 pauses of at least 1 ms): let
    // it retry for a fifth of that before the query goes (a start that gave up after
    // a few milliseconds, as it once did, has failed by then).
    std::thread::sleep(std::time::Duration::from_millis(400));
    fs::write(&go, "").unwrap();
    let out = starting.wait_with_output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = pid_in(&pid_file);
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_until("stopped", || !alive(pid));
}

#[test]
fn stop_escalates_to_sigkill_after_the_timeout() {
    let dir = TempDir::new("tool-kill");
    let pid_file = dir.join("p.pid");
    let pid = start(
        &pid_file,
        &[],
        &["/bin/sh", "-c", "trap '' TERM; exec /bin/sleep 1000"],
    );
    wait_until("TERM ignored", || ignores(pid, libc::SIGTERM));
    let out = expect(0, ["stop", "--pid-file", s(&pid_file), "--timeout", "0.3"]);
    assert!(out.stderr.contains("sending SIGKILL"), "{}", out.stderr);
    assert_eq!(wait_exit(pid), Some(128 + libc::SIGKILL));
    assert!(!pid_file.exists());
}

#[test]
fn stop_never_signals_an_unrelated_process_named_by_a_stale_file() {
    let dir = TempDir::new("tool-stranger");
    let pid_file = dir.join("p.pid");
    let mut stranger = support::spawn(support::host("/bin/sleep").arg("1000").stdin(Stdio::null()));
    fs::write(&pid_file, format!("{}\n", stranger.pid())).unwrap();
    // Its pid is live, but nobody holds the lock: dead (1), as far as we know.
    let out = expect(1, ["status", "--pid-file", s(&pid_file)]);
    assert!(
        out.stderr
            .contains(&format!("dead (pid {})", stranger.pid())),
        "{}",
        out.stderr
    );
    expect(0, ["stop", "--pid-file", s(&pid_file), "--signal", "KILL"]);
    assert!(stranger.try_wait().is_none(), "the stranger was signalled");
    assert!(!pid_file.exists(), "the stale file is removed");
    expect(3, ["status", "--pid-file", s(&pid_file)]);
}

#[test]
fn stop_signal_option_by_name_and_number() {
    let dir = TempDir::new("tool-signal");
    let pid_file = dir.join("p.pid");
    for (signal, number) in [
        ("INT", libc::SIGINT),
        ("SIGHUP", libc::SIGHUP),
        (&*libc::SIGUSR1.to_string(), libc::SIGUSR1),
    ] {
        let pid = start(&pid_file, &[], &["/bin/sleep", "1000"]);
        expect(0, ["stop", "--pid-file", s(&pid_file), "--signal", signal]);
        assert_eq!(wait_exit(pid), Some(128 + number), "--signal {signal}");
    }
}

#[test]
fn status_and_stop_exit_codes() {
    let dir = TempDir::new("tool-codes");
    let pid_file = dir.join("p.pid");
    // 3 / 0: no pid file.
    expect(3, ["status", "--pid-file", s(&pid_file)]);
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    // 1: dead, the file left behind (PROGRAM died by itself: nobody removes it).
    let pid = start(&pid_file, &[], &["/bin/sleep", "1000"]);
    kill(pid, libc::SIGKILL);
    wait_exit(pid);
    expect(1, ["status", "--pid-file", s(&pid_file)]);
    // 4 (status) and 1 (stop): unreadable, here a symlink.
    let link = dir.join("link.pid");
    std::os::unix::fs::symlink(&pid_file, &link).unwrap();
    let out = expect(4, ["status", "--pid-file", s(&link)]);
    let eloop = format!("(os error {})", libc::ELOOP);
    assert!(out.stderr.contains(&eloop), "{}", out.stderr);
    expect(1, ["stop", "--pid-file", s(&link)]);
    assert!(pid_file.exists(), "a symlink's target is left alone");
    // 0 (stop): the lock's holders are PROGRAM and a child that inherited it, both
    // ignoring TERM: SIGKILL ends them both.
    let child_pid = dir.join("child.pid");
    let script = format!(
        "trap '' TERM; /bin/sleep 1000 & echo $! > '{}'; wait",
        s(&child_pid)
    );
    let pid = start(&pid_file, &[], &["/bin/sh", "-c", &script]);
    wait_until("the child", || {
        fs::read_to_string(&child_pid).is_ok_and(|t| t.ends_with('\n'))
    });
    let child = pid_in(&child_pid);
    let out = expect(0, ["stop", "--pid-file", s(&pid_file), "--timeout", "0.2"]);
    assert!(
        out.stderr.contains(&format!(
            "after SIGTERM to pid {pid}, {child}; sending SIGKILL"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(wait_exit(pid), Some(128 + libc::SIGKILL));
    wait_until("the child killed too", || !alive(child));
    expect(3, ["status", "--pid-file", s(&pid_file)]);
}

#[test]
fn supervise_holds_the_lock_and_forwards_signals() {
    let dir = TempDir::new("tool-supervise");
    let pid_file = dir.join("p.pid");
    for sig in [libc::SIGUSR1, libc::SIGHUP, libc::SIGTERM, libc::SIGQUIT] {
        let program = start(&pid_file, &["--supervise"], &["/bin/sleep", "1000"]);
        let supervisor = pids(&pid_file).1.expect("the supervisor's pid on line 2");
        assert_eq!(comm(program), "sleep");
        assert_eq!(ppid(program), supervisor);
        // The supervisor and PROGRAM (exec'd, so dumpable again and readable as any
        // user) both hold the lock.
        assert!(support::holds_lock(program, &pid_file));
        let out = expect(0, ["status", "--pid-file", s(&pid_file)]);
        if support::inspectable(supervisor) {
            assert!(support::holds_lock(supervisor, &pid_file));
            assert_eq!(out.stdout, format!("{program} {supervisor}\n"));
        } else {
            // As a user other than root the supervisor (not exec'd, so non-dumpable since
            // stage 2) hides its descriptors: status shows the holder it can see.
            assert_eq!(out.stdout, format!("{program}\n"));
        }
        kill(supervisor, sig);
        // PROGRAM died of the forwarded signal; the supervisor ends with its status.
        assert_eq!(wait_exit(supervisor), Some(128 + sig), "signal {sig}");
        assert!(!pid_file.exists());
    }
}

#[test]
fn supervise_forwards_winch() {
    let dir = TempDir::new("tool-winch");
    let pid_file = dir.join("p.pid");
    let seen = dir.join("seen");
    let ready = dir.join("ready");
    let script = format!(
        "trap 'echo winch > {}' WINCH; : > {}; while :; do /bin/sleep 0.05; done",
        s(&seen),
        s(&ready)
    );
    start(&pid_file, &["--supervise"], &["/bin/sh", "-c", &script]);
    let supervisor = pids(&pid_file).1.unwrap();
    wait_until("PROGRAM's trap is set", || ready.exists());
    kill(supervisor, libc::SIGWINCH);
    wait_until("PROGRAM's WINCH trap", || seen.exists());
    assert!(alive(supervisor), "WINCH does not stop the supervisor");
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_exit(supervisor);
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "qemu-user shows its own signal state in /proc (host numbers, all fatal signals caught)"
)]
fn supervise_lives_through_stray_signals() {
    let dir = TempDir::new("tool-strays");
    let pid_file = dir.join("p.pid");
    let program = start(&pid_file, &["--supervise"], &["/bin/sleep", "1000"]);
    let supervisor = pids(&pid_file).1.unwrap();
    let strays = [
        libc::SIGALRM,
        libc::SIGPIPE,
        libc::SIGVTALRM,
        libc::SIGTSTP,
        libc::SIGRTMIN(),
    ];
    for sig in strays {
        assert!(ignores(supervisor, sig), "signal {sig} is ignored");
        kill(supervisor, sig);
    }
    expect(0, ["status", "--pid-file", s(&pid_file)]);
    assert!(alive(supervisor) && alive(program));
    // PROGRAM got their defaults back.
    for sig in strays {
        assert!(!ignores(program, sig), "PROGRAM ignores signal {sig}");
    }
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    assert_eq!(wait_exit(supervisor), Some(128 + libc::SIGTERM));
}

#[test]
fn program_ends_with_a_supervisor_killed_by_sigkill() {
    let dir = TempDir::new("tool-svkill");
    let pid_file = dir.join("p.pid");
    let program = start(&pid_file, &["--supervise"], &["/bin/sleep", "1000"]);
    let supervisor = pids(&pid_file).1.unwrap();
    kill(supervisor, libc::SIGKILL);
    wait_until("PROGRAM ended by its parent-death signal", || {
        !alive(program)
    });
    // (The lock goes with the last descriptor: the supervisor's too, whose exit may
    // lag, under qemu-user, behind its SIGKILL.)
    wait_until("the lock gone with both", || !support::is_locked(&pid_file));
    expect(1, ["status", "--pid-file", s(&pid_file)]);
    // A program that ignores TERM outlives it, but holds the lock: shown and stoppable.
    let program = start(
        &pid_file,
        &["--supervise"],
        &["/bin/sh", "-c", "trap '' TERM; exec /bin/sleep 1000"],
    );
    let supervisor = pids(&pid_file).1.unwrap();
    wait_until("TERM ignored", || ignores(program, libc::SIGTERM));
    kill(supervisor, libc::SIGKILL);
    wait_until("the supervisor gone", || !alive(supervisor));
    let out = expect(0, ["status", "--pid-file", s(&pid_file)]);
    assert_eq!(out.stdout, format!("{program}\n"));
    expect(0, ["stop", "--pid-file", s(&pid_file), "--timeout", "0.2"]);
    wait_until("PROGRAM stopped", || !alive(program));
}

#[test]
fn supervise_restart_brings_a_killed_program_back_then_stop_ends_both() {
    let dir = TempDir::new("tool-restart");
    let pid_file = dir.join("p.pid");
    let log = dir.join("supervisor.log");
    let mut program = start(
        &pid_file,
        &["--supervise", "--restart=0.1", "--stderr", s(&log)],
        &["/bin/sleep", "1000"],
    );
    let supervisor = pids(&pid_file).1.unwrap();
    for _ in 0..3 {
        kill(program, libc::SIGKILL);
        let old = program;
        wait_until(
            "a new program",
            || matches!(pids(&pid_file), (Some(p), Some(sv)) if p != old && p != sv && alive(p) && comm(p) == "sleep"),
        );
        program = pid_in(&pid_file);
        assert_eq!(ppid(program), supervisor);
        assert_eq!(pids(&pid_file).1, Some(supervisor));
    }
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("killed by SIGKILL; restarting in").count(),
        3,
        "{text}"
    );
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    assert_eq!(wait_exit(supervisor), Some(128 + libc::SIGTERM));
    wait_until("the program gone", || !alive(program));
    assert!(!pid_file.exists());
}

#[test]
fn supervise_stop_escalation_ends_supervisor_and_program() {
    let dir = TempDir::new("tool-svkill");
    let pid_file = dir.join("p.pid");
    let program = start(
        &pid_file,
        &["--supervise", "--restart=0.1"],
        &["/bin/sh", "-c", "trap '' TERM; exec /bin/sleep 1000"],
    );
    let supervisor = pids(&pid_file).1.unwrap();
    wait_until("TERM ignored", || ignores(program, libc::SIGTERM));
    let out = expect(0, ["stop", "--pid-file", s(&pid_file), "--timeout", "0.3"]);
    assert!(out.stderr.contains("sending SIGKILL"), "{}", out.stderr);
    assert_eq!(wait_exit(supervisor), Some(128 + libc::SIGKILL));
    assert_eq!(wait_exit(program), Some(128 + libc::SIGKILL));
    assert!(!pid_file.exists());
}

#[test]
fn supervise_ends_with_a_clean_or_failed_program() {
    let dir = TempDir::new("tool-svexit");
    let pid_file = dir.join("p.pid");
    let go = dir.join("go");
    let log = dir.join("log");
    let wait_go = format!(
        "while [ ! -e '{}' ]; do /bin/sleep 0.02; done; exit $0",
        s(&go)
    );
    // Exit 0 is clean even with --restart; exit 3 without --restart ends it too; a
    // TERM straight to PROGRAM is a clean stop, not restarted.
    for (opts, code) in [
        (&["--restart=0.1"][..], "0"),
        (&[], "3"),
        (&["--restart=0.1"], "term"),
    ] {
        let _ = fs::remove_file(&go);
        let mut all = vec!["--supervise", "--stderr", s(&log)];
        all.extend_from_slice(opts);
        let program = start(&pid_file, &all, &["/bin/sh", "-c", &wait_go, code]);
        let supervisor = pids(&pid_file).1.unwrap();
        let expected = match code {
            "term" => {
                kill(program, libc::SIGTERM);
                128 + libc::SIGTERM
            }
            _ => {
                fs::write(&go, "").unwrap();
                code.parse().unwrap()
            }
        };
        assert_eq!(wait_exit(supervisor), Some(expected), "{opts:?} {code}");
        assert!(!pid_file.exists());
    }
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains(" exited with status 3\n"), "{text}");
    assert!(!text.contains("restarting"), "{text}");
}

/// PROGRAM is found before fork as `execvp` would find it, and exec'd by absolute path
/// after stage 5 moved the daemon to `/`: a bare name in `PATH` (a relative `PATH`
/// entry is the caller's directory's), and `./NAME` from the caller's directory.
#[test]
fn program_is_found_in_path_or_from_the_callers_directory() {
    let dir = TempDir::new("tool-find");
    let pid_file = dir.join("p.pid");
    fs::create_dir(dir.join("bin")).unwrap();
    let ours = dir.join("bin").join("pdm-sleep");
    fs::copy("/bin/sleep", &ours).unwrap();
    let unexecutable = dir.join("pdm-plain");
    fs::write(&unexecutable, "").unwrap();
    // The system's directories last: under qemu the runner itself is found in PATH.
    let system = "/usr/local/bin:/usr/bin:/bin";
    for (path, program) in [
        ("/nonexistent:bin", "pdm-sleep"),
        ("/nonexistent:/bin", "sleep"),
        ("/nonexistent", "./bin/pdm-sleep"),
    ] {
        let mut cmd = tool(["start", "--pid-file", s(&pid_file), "--", program, "1000"]);
        cmd.env("PATH", format!("{path}:{system}"))
            .current_dir(&dir.0);
        let out = support::run(&mut cmd);
        assert_eq!(out.status.code(), Some(0), "{program}: {out:?}");
        let pid = pids(&pid_file).0.expect("a pid");
        if program == "sleep" {
            // The system's sleep (its path is not compared: under qemu with a library
            // prefix, this emulated test sees the host's /bin through qemu's remapping).
            assert_eq!(comm(pid), "sleep");
        } else {
            let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
            let canonical = |p: &Path| fs::canonicalize(p).unwrap();
            assert_eq!(canonical(&exe), canonical(&ours), "{program}");
        }
        expect(0, ["stop", "--pid-file", s(&pid_file)]);
        wait_exit(pid);
    }
    // Only a file we may not execute: EACCES, as execvp says.
    let mut cmd = tool(["start", "--pid-file", s(&pid_file), "--", "pdm-plain"]);
    cmd.env("PATH", format!("{}:{system}", s(&dir.0)))
        .current_dir(&dir.0);
    let out = support::run(&mut cmd);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "pandaemonium: exec pdm-plain: Permission denied (os error 13)\n"
    );
}
