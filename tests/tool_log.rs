//! The tool's `--supervise` logging: `--log FILE` (both streams appended, reopened on
//! SIGHUP, which PROGRAM then does not get) and `--syslog` (one datagram per line at a
//! socket of the test's own, `<PRI>TAG[PID]: MESSAGE`, long lines split, PROGRAM never
//! held up when nobody listens), and their usage errors.
//!
//! PROGRAM is a shell script that writes when the test creates a file (`go`) and
//! removes it: every wait is for a condition (bounded polls), never for a time.
#![cfg(feature = "tool-log")]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use support::tool::{expect, pids, run};
use support::{alive, wait_exit, wait_until, TempDir};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn kill(pid: i32, sig: i32) {
    assert!(pid > 0, "kill {pid}");
    // SAFETY: kill with integer arguments; pid > 0 is a process this test started.
    let r = unsafe { libc::kill(pid, sig) };
    assert!(r == 0, "kill {pid} {sig}");
}

/// A shell script for PROGRAM: `first`, then `each` every time DIR/go appears (it is
/// removed first), for ever.
fn script(dir: &TempDir, first: &str, each: &str) -> String {
    let go = dir.join("go");
    format!(
        "{first}\nwhile :; do if [ -e '{go}' ]; then rm -f '{go}'; {each}\nfi; /bin/sleep 0.01; done",
        go = s(&go)
    )
}

/// Makes PROGRAM run its `each` once, and waits until it took the file.
fn go(dir: &TempDir) {
    let go = dir.join("go");
    fs::write(&go, "").unwrap();
    wait_until("PROGRAM took the go file", || !go.exists());
}

/// Starts PROGRAM (`sh -c SCRIPT ARG0`) supervised with `opts`: (PROGRAM, supervisor).
fn start(pid_file: &Path, opts: &[&str], script: &str) -> (i32, i32) {
    let mut args = vec!["start", "--pid-file", s(pid_file), "--supervise"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    let out = expect(0, &args);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    match pids(pid_file) {
        (Some(program), Some(supervisor)) => (program, supervisor),
        other => panic!("pid file: {other:?}"),
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A datagram socket of the test's own, where the tool's syslog lines arrive.
struct Listener {
    sock: UnixDatagram,
    path: PathBuf,
    got: Vec<String>,
}

impl Listener {
    fn bind(path: PathBuf) -> Listener {
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_nonblocking(true).unwrap();
        Listener {
            sock,
            path,
            got: Vec::new(),
        }
    }

    /// Receives until `done` holds for what came (kept in `got`).
    fn until(&mut self, what: &str, mut done: impl FnMut(&[String]) -> bool) {
        let mut buf = vec![0u8; 65536];
        wait_until(what, || {
            while let Ok(n) = self.sock.recv(&mut buf) {
                self.got
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            done(&self.got)
        });
    }

    /// Receives until `line` came; everything that came by then.
    fn until_line(&mut self, line: &str) -> Vec<String> {
        self.until(line, |got| got.iter().any(|d| d == line));
        std::mem::take(&mut self.got)
    }

    /// Closes and removes the socket: no daemon listens any more.
    fn remove(self) -> PathBuf {
        drop(self.sock);
        fs::remove_file(&self.path).unwrap();
        self.path
    }
}

#[test]
fn log_appends_both_streams_and_reopens_on_hup_which_program_never_gets() {
    let dir = TempDir::new("tool-log");
    let pid_file = dir.join("p.pid");
    let log = dir.join("out.log");
    let rotated = dir.join("out.log.1");
    // No trap: a HUP passed on would kill the shell.
    let (program, supervisor) = start(
        &pid_file,
        &["--log", s(&log)],
        &script(&dir, "echo one; echo two >&2", "i=$((i+1)); echo line $i"),
    );
    wait_until("both streams in FILE", || read(&log) == "one\ntwo\n");
    assert_eq!(mode(&log), 0o600, "0640 before the default umask 077");
    go(&dir);
    wait_until("line 1", || read(&log).ends_with("line 1\n"));
    // logrotate: mv, then HUP to the supervisor.
    fs::rename(&log, &rotated).unwrap();
    kill(supervisor, libc::SIGHUP);
    wait_until("FILE reopened", || log.exists());
    go(&dir);
    wait_until("line 2 in the new FILE", || read(&log) == "line 2\n");
    assert_eq!(read(&rotated), "one\ntwo\nline 1\n");
    assert!(alive(program) && alive(supervisor), "HUP not passed on");
    assert_eq!(pids(&pid_file), (Some(program), Some(supervisor)));
    // A reopen that fails (FILE is now a directory) keeps the old file, and says so.
    let old = dir.join("out.log.2");
    fs::rename(&log, &old).unwrap();
    fs::create_dir(&log).unwrap();
    kill(supervisor, libc::SIGHUP);
    let said = format!(
        "pandaemonium: --log {}: Is a directory (os error 21) (on SIGHUP; still writing to the old file)\n",
        s(&log)
    );
    wait_until("the failed reopen noted", || read(&old).ends_with(&said));
    go(&dir);
    wait_until("line 3 in the old FILE", || {
        read(&old) == format!("line 2\n{said}line 3\n")
    });
    assert!(alive(program));
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    assert_eq!(wait_exit(supervisor), Some(128 + libc::SIGTERM));
    assert!(!pid_file.exists());
}

#[test]
fn a_log_file_that_cannot_be_opened_fails_the_start_and_leaves_nothing() {
    let dir = TempDir::new("tool-log-fail");
    let pid_file = dir.join("p.pid");
    let marker = dir.join("ran");
    let missing = dir.join("missing").join("out.log");
    let program = format!("touch '{}'", s(&marker));
    for detach in ["always", "never"] {
        let out = run([
            "start",
            "--pid-file",
            s(&pid_file),
            "--detach",
            detach,
            "--supervise",
            "--log",
            s(&missing),
            "--",
            "/bin/sh",
            "-c",
            &program,
        ]);
        assert_eq!(out.code, Some(1), "{detach}: {out:?}");
        assert_eq!(
            out.stderr,
            format!(
                "pandaemonium: --log {}: No such file or directory (os error 2)\n",
                s(&missing)
            ),
            "{detach}"
        );
        assert!(!marker.exists(), "{detach}: PROGRAM never started");
        assert!(!pid_file.exists(), "{detach}: no pid file left");
        assert!(!missing.parent().unwrap().exists());
    }
    // The umask is the daemon's (stage 4): 027 lets a log group read.
    let log = dir.join("group.log");
    let (program, supervisor) = start(
        &pid_file,
        &["--umask", "027", "--log", s(&log)],
        "echo hello; exec /bin/sleep 1000",
    );
    wait_until("hello", || read(&log) == "hello\n");
    assert_eq!(mode(&log), 0o640);
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    assert_eq!(wait_exit(supervisor), Some(128 + libc::SIGTERM));
    assert!(!alive(program));
}

#[test]
fn syslog_lines_arrive_with_pri_tag_and_pid_and_long_lines_split() {
    let dir = TempDir::new("tool-syslog");
    let pid_file = dir.join("p.pid");
    let mut listener = Listener::bind(dir.join("log.sock"));
    let big = dir.join("big");
    let line: String = (0..10_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    fs::write(&big, format!("{line}\n")).unwrap();
    let (program, supervisor) = start(
        &pid_file,
        &["--syslog=mytag", "--syslog-socket", s(&listener.path)],
        &script(
            &dir,
            "echo hello; printf 'to stderr\\r\\n' >&2; echo; trap 'echo hup' HUP",
            &format!("cat '{}'", s(&big)),
        ),
    );
    let header = format!("<29>mytag[{program}]: ");
    let got = listener.until_line(&format!("{header}to stderr"));
    assert_eq!(
        got,
        [format!("{header}hello"), format!("{header}to stderr")],
        "daemon.notice is 29; the '\\r' dropped, the empty line not sent"
    );
    // A 10 KB line: several datagrams, each with the header, of at most 1023 bytes.
    go(&dir);
    listener.until("the 10 KB line", |got| {
        got.iter().map(|d| d.len() - header.len()).sum::<usize>() >= line.len()
    });
    let got = std::mem::take(&mut listener.got);
    assert!(got.len() >= 10, "{}", got.len());
    let mut whole = String::new();
    for d in &got {
        assert!(d.len() <= 1023, "{}", d.len());
        whole.push_str(d.strip_prefix(&header).expect("the header"));
    }
    assert_eq!(whole, line);
    // Without --log, HUP goes to PROGRAM.
    kill(supervisor, libc::SIGHUP);
    listener.until_line(&format!("{header}hup"));
    assert!(alive(supervisor));
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_exit(supervisor);
    // The facility and priority options, and the default tag: PROGRAM's name.
    let (program, supervisor) = start(
        &pid_file,
        &[
            "--syslog-facility",
            "local3",
            "--syslog-priority=err",
            "--syslog-socket",
            s(&listener.path),
        ],
        "echo local3.err; exec /bin/sleep 1000",
    );
    listener.until_line(&format!("<155>sh[{program}]: local3.err"));
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_exit(supervisor);
}

#[test]
fn program_keeps_running_while_no_syslog_daemon_listens() {
    let dir = TempDir::new("tool-syslog-gone");
    let pid_file = dir.join("p.pid");
    let mut listener = Listener::bind(dir.join("log.sock"));
    let flood = dir.join("flood");
    let wrote = dir.join("wrote");
    // Each go: 10,000 lines of 99 bytes (fold leaves the last one unended: echo ends
    // it) while DIR/flood exists, then a file, then a line.
    let each = format!(
        "if [ -e '{}' ]; then head -c 990000 /dev/zero | tr '\\0' y | fold -w 99; echo; fi; \
         : > '{}'; echo done",
        s(&flood),
        s(&wrote)
    );
    let (program, supervisor) = start(
        &pid_file,
        &["--syslog=t", "--syslog-socket", s(&listener.path)],
        &script(&dir, "echo ready", &each),
    );
    listener.until_line(&format!("<29>t[{program}]: ready"));
    let path = listener.remove();
    fs::write(&flood, "").unwrap();
    go(&dir);
    wait_until("PROGRAM wrote 1 MB with nobody listening", || {
        wrote.exists()
    });
    assert!(alive(program) && alive(supervisor));
    // The daemon comes back: later lines arrive again. (What the supervisor had not
    // read yet of the flood comes first, faster than the socket's queue of 10 takes
    // it: until that is gone, lines are dropped, so PROGRAM is asked again.)
    fs::remove_file(&flood).unwrap();
    let mut listener = Listener::bind(path);
    let go = dir.join("go");
    let done = format!("<29>t[{program}]: done");
    listener.until("a line arrives again", |got| {
        if !go.exists() {
            fs::write(&go, "").unwrap();
        }
        got.contains(&done)
    });
    let y = format!("<29>t[{program}]: {}", "y".repeat(99));
    let got = &listener.got;
    assert!(got.iter().all(|d| *d == y || *d == done), "{got:?}");
    assert!(alive(program));
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_exit(supervisor);
}

#[test]
fn log_and_syslog_together_follow_a_restarted_program() {
    let dir = TempDir::new("tool-log-both");
    let pid_file = dir.join("p.pid");
    let log = dir.join("out.log");
    let mut listener = Listener::bind(dir.join("log.sock"));
    // PROGRAM says its pid, leaves a line unended and fails at the first go.
    let (first, supervisor) = start(
        &pid_file,
        &[
            "--restart=0.1",
            "--log",
            s(&log),
            "--syslog",
            "--syslog-socket",
            s(&listener.path),
        ],
        &script(&dir, "echo pid $$; printf 'last words'", "exit 3"),
    );
    listener.until_line(&format!("<29>sh[{first}]: pid {first}"));
    go(&dir);
    let second = {
        let mut second = None;
        wait_until("PROGRAM restarted", || {
            second = pids(&pid_file).0.filter(|&p| p != first && p != supervisor);
            second.is_some()
        });
        second.unwrap()
    };
    let got = listener.until_line(&format!("<29>sh[{second}]: pid {second}"));
    assert_eq!(
        got,
        [
            format!("<29>sh[{first}]: last words"),
            format!("<29>sh[{second}]: pid {second}"),
        ],
        "the unended line sent under the first pid"
    );
    wait_until("both in FILE", || {
        read(&log) == format!("pid {first}\nlast wordspid {second}\nlast words")
    });
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    assert_eq!(wait_exit(supervisor), Some(128 + libc::SIGTERM));
}

/// What PROGRAM left in the pipe when it ended is logged before the supervisor ends:
/// 60 KB written while the supervisor was stopped, and an unended last line.
#[test]
fn output_left_when_program_ends_is_logged() {
    let dir = TempDir::new("tool-log-drain");
    let pid_file = dir.join("p.pid");
    let log = dir.join("out.log");
    let (program, supervisor) = start(
        &pid_file,
        &["--log", s(&log)],
        &script(&dir, ":", "head -c 60000 /dev/zero | tr '\\0' x; exit 0"),
    );
    kill(supervisor, libc::SIGSTOP);
    go(&dir);
    wait_until("PROGRAM ended", || !alive(program));
    kill(supervisor, libc::SIGCONT);
    assert_eq!(wait_exit(supervisor), Some(0));
    assert_eq!(read(&log), "x".repeat(60_000));
    let mut listener = Listener::bind(dir.join("log.sock"));
    let (program, supervisor) = start(
        &pid_file,
        &["--syslog", "--syslog-socket", s(&listener.path)],
        &script(&dir, ":", "printf 'last words'; exit 0"),
    );
    go(&dir);
    assert_eq!(wait_exit(supervisor), Some(0));
    listener.until_line(&format!("<29>sh[{program}]: last words"));
}

/// A PROGRAM that keeps failing: each run's output in FILE, the supervisor's own
/// messages on its stderr (not in FILE), the delay doubling from one restart to the
/// next (a run shorter than a minute does not reset it).
#[test]
fn a_failing_program_logs_each_run_and_backs_off() {
    let dir = TempDir::new("tool-log-backoff");
    let pid_file = dir.join("p.pid");
    let log = dir.join("out.log");
    let stderr = dir.join("supervisor.log");
    let (_, supervisor) = start(
        &pid_file,
        &["--restart=0.05", "--log", s(&log), "--stderr", s(&stderr)],
        "echo run; exit 3",
    );
    let delays = || -> Vec<String> {
        read(&stderr)
            .lines()
            .filter_map(|l| l.split_once("; restarting in "))
            .map(|(_, d)| d.to_string())
            .collect()
    };
    wait_until("three restarts", || delays().len() >= 3);
    assert_eq!(
        delays()[..3],
        ["0.05 s", "0.1 s", "0.2 s"],
        "{}",
        read(&stderr)
    );
    wait_until("the fourth run", || {
        read(&log).matches("run\n").count() >= 4
    });
    assert!(!read(&log).contains("pandaemonium"), "{}", read(&log));
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_exit(supervisor);
}

/// Whether `sig` is pending for the whole process `pid` (`ShdPnd`).
fn pending(pid: i32, sig: i32) -> bool {
    let mask = u64::from_str_radix(&support::status(pid)["ShdPnd"], 16).unwrap();
    mask & (1 << (sig - 1)) != 0
}

/// Between restarts (no PROGRAM running), HUP still reopens the log, a signal that
/// does not mean "stop" leaves the supervisor waiting, and TERM ends it.
#[test]
fn signals_between_restarts() {
    let dir = TempDir::new("tool-log-idle");
    let pid_file = dir.join("p.pid");
    let log = dir.join("out.log");
    let (_, supervisor) = start(
        &pid_file,
        &["--restart=60", "--log", s(&log)],
        "echo failing; exit 3",
    );
    wait_until("waiting to restart", || {
        pids(&pid_file) == (Some(supervisor), Some(supervisor))
    });
    kill(supervisor, libc::SIGUSR1);
    wait_until("USR1 taken", || !pending(supervisor, libc::SIGUSR1));
    // HUP, after it: the supervisor is still there to reopen the log.
    fs::rename(&log, dir.join("out.log.1")).unwrap();
    kill(supervisor, libc::SIGHUP);
    wait_until("FILE reopened", || log.exists());
    kill(supervisor, libc::SIGTERM);
    assert_eq!(wait_exit(supervisor), Some(0));
    assert!(!pid_file.exists());
    assert_eq!(read(&dir.join("out.log.1")), "failing\n");
}

#[test]
fn log_and_syslog_usage_errors_exit_2_with_one_line_before_any_fork() {
    let dir = TempDir::new("tool-log-usage");
    let pid_file = dir.join("p.pid");
    let marker = dir.join("ran");
    let program = format!("touch '{}'", s(&marker));
    let log = dir.join("out.log");
    let long = format!("/{}", "s".repeat(107));
    let help = " (see pandaemonium --help)\n";
    let need = "pandaemonium: start: --log and --syslog need --supervise";
    let facility = "pandaemonium: --syslog-facility kernel: not a facility: kern, user, mail, \
                    daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0 to local7";
    let priority = "pandaemonium: --syslog-priority warn: not a priority: emerg, alert, crit, \
                    err, warning, notice, info, debug";
    let socket = |path: &str| {
        format!("pandaemonium: --syslog-socket {path}: not a socket path (1 to 107 bytes)")
    };
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--log", s(&log)], need.to_string()),
        (vec!["--syslog"], need.to_string()),
        (vec!["--syslog=tag"], need.to_string()),
        (vec!["--syslog-facility", "local3"], need.to_string()),
        (vec!["--syslog-priority=err"], need.to_string()),
        (vec!["--syslog-socket", "/dev/log"], need.to_string()),
        (
            vec!["--supervise", "--syslog-facility", "kernel"],
            facility.to_string(),
        ),
        (
            vec!["--supervise", "--syslog-priority", "warn"],
            priority.to_string(),
        ),
        (
            vec!["--supervise", "--log", "out.log"],
            "pandaemonium: --log out.log: not an absolute path".to_string(),
        ),
        (vec!["--supervise", "--syslog-socket", ""], socket("")),
        (vec!["--supervise", "--syslog-socket", &long], socket(&long)),
    ];
    for (opts, message) in cases {
        let mut args = vec!["start", "--pid-file", s(&pid_file)];
        args.extend_from_slice(&opts);
        args.extend_from_slice(&["--", "/bin/sh", "-c", &program]);
        let out = run(&args);
        assert_eq!(out.code, Some(2), "{opts:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{opts:?}");
        assert_eq!(out.stderr, format!("{message}{help}"), "{opts:?}");
        assert!(
            !pid_file.exists() && !marker.exists() && !log.exists(),
            "{opts:?} got as far as forking"
        );
    }
    // A value is needed.
    let out = run(["start", "--supervise", "--log"]);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr,
        format!("pandaemonium: option --log needs a value{help}")
    );
    // The help names the options.
    let out = expect(0, ["--help"]);
    for flag in [
        "--log FILE",
        "--syslog[=TAG]",
        "--syslog-facility FAC",
        "--syslog-priority PRI",
        "--syslog-socket PATH",
    ] {
        assert!(out.stdout.contains(flag), "--help lacks {flag}");
    }
    assert!(out.stdout.lines().all(|l| l.len() <= 80));
}
