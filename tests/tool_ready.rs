//! `pandaemonium start --notify` and `--ready-fd`: the tool as a readiness-aware
//! launcher, against real clients (`systemd-notify`, python3 senders).
//!
//! Every process runs in the test's scope (`tests/support`). No test asserts on
//! elapsed time except as a lower bound or with a wide margin against the timeout
//! the test chose (an end reported at once, not after the timeout).
#![cfg(feature = "tool-readiness")]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::tool::{expect, pids, run, tool, Out};
use support::{alive, comm, ppid, wait_until, TempDir};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Whether `program` is installed; says so when it is not.
fn have(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/bin".into(), "/bin".into()])
        .any(|d: PathBuf| d.join(program).is_file());
    if !found {
        eprintln!("skipped: {program} is not installed");
    }
    found
}

/// A python3 that the tool finds (pyenv's shims need pyenv's environment).
fn python3() -> Option<String> {
    if !have("python3") {
        eprintln!("skipped: no python3");
        return None;
    }
    let out =
        support::run(support::host("python3").args(["-c", "import sys; print(sys.executable)"]));
    let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
    if path.is_empty() {
        eprintln!("skipped: no python3");
        return None;
    }
    Some(path)
}

/// `start --pid-file PID OPTS -- PROGRAM...` to completion, and how long it took.
fn start(pid_file: &Path, opts: &[&str], program: &[&str]) -> (Out, Duration) {
    let mut args = vec!["start", "--pid-file", s(pid_file)];
    args.extend_from_slice(opts);
    args.push("--");
    args.extend_from_slice(program);
    let t0 = Instant::now();
    let out = run(&args);
    (out, t0.elapsed())
}

fn ok(out: &Out) {
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (Some(0), "", ""),
        "{out:?}"
    );
}

fn failed(out: &Out, says: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(says), "expected {says:?} in {out:?}");
}

/// A python3 notification client run as PROGRAM: `body` runs with `s` a datagram
/// socket and `addr` the `NOTIFY_SOCKET` path; then it sleeps.
fn client(python: &str, body: &str) -> Vec<String> {
    let script = format!(
        "import os, socket, sys, time, array, select\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         addr = os.environ['NOTIFY_SOCKET']\n\
         {body}\n\
         time.sleep(600)\n"
    );
    vec![python.to_string(), "-c".to_string(), script]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn notify_with_systemd_notify_returns_once_ready() {
    if !have("systemd-notify") {
        return;
    }
    let dir = TempDir::new("rdy-sdn");
    let pid_file = dir.join("p.pid");
    let info = dir.join("info");
    let script = format!(
        "d=$(dirname \"$NOTIFY_SOCKET\"); stat -c '%a %u' \"$d\" > {i}; echo \"$NOTIFY_SOCKET\" >> {i}; \
         sleep 0.3; systemd-notify --ready; exec sleep 600",
        i = s(&info)
    );
    let (out, took) = start(&pid_file, &["--notify=10"], &["sh", "-c", &script]);
    ok(&out);
    assert!(
        took >= Duration::from_millis(300),
        "returned before PROGRAM's 300 ms: {took:?}"
    );
    // The bound is 1 s; the margin is wide, but far below systemd-notify's 5 s
    // barrier wait (what a receiver that keeps its descriptor costs).
    assert!(took < Duration::from_secs(4), "{took:?}");
    let pid = pids(&pid_file).0.expect("a pid");
    assert!(alive(pid));
    // The pid file names PROGRAM, which then execs sleep.
    wait_until("sh exec'd sleep", || comm(pid) == "sleep");
    let info = fs::read_to_string(&info).unwrap();
    let mut lines = info.lines();
    // SAFETY: geteuid takes no arguments and cannot fail.
    let me = unsafe { libc::geteuid() };
    assert_eq!(
        lines.next(),
        Some(format!("700 {me}").as_str()),
        "a private directory, the caller's"
    );
    let socket = PathBuf::from(lines.next().unwrap());
    assert!(
        socket.starts_with("/run") || socket.starts_with("/tmp"),
        "{socket:?}"
    );
    assert!(
        !socket.parent().unwrap().exists(),
        "the socket's directory is removed: {socket:?}"
    );
}

#[test]
fn notify_reports_an_exit_before_ready_at_once() {
    let dir = TempDir::new("rdy-exit");
    let pid_file = dir.join("p.pid");
    let (out, took) = start(&pid_file, &["--notify"], &["sh", "-c", "sleep 0.2; exit 3"]);
    failed(&out, "exited with status 3 before it was ready");
    // The default timeout is 60 s: reported as it happened, not then.
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(!pid_file.exists());
}

#[test]
fn notify_reports_a_kill_before_ready() {
    let dir = TempDir::new("rdy-kill");
    let pid_file = dir.join("p.pid");
    let (out, _) = start(&pid_file, &["--notify=20"], &["sh", "-c", "kill -9 $$"]);
    failed(&out, "killed by signal 9 (SIGKILL) before it was ready");
    assert!(!pid_file.exists());
}

#[test]
fn notify_timeout_kills_program_and_leaves_nothing() {
    let dir = TempDir::new("rdy-timeout");
    let pid_file = dir.join("p.pid");
    let marker = dir.join("marker");
    let script = format!("echo $$ > {}; exec sleep 600", s(&marker));
    let (out, took) = start(&pid_file, &["--notify=1"], &["sh", "-c", &script]);
    failed(&out, "not ready within 1000 ms");
    assert!(took >= Duration::from_secs(1), "{took:?}");
    let pid: i32 = fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
    wait_until("PROGRAM killed", || !alive(pid));
    assert!(!pid_file.exists(), "no pid file left");
}

#[test]
fn notify_errno_is_given_when_program_then_fails() {
    if !have("systemd-notify") {
        return;
    }
    let dir = TempDir::new("rdy-errno");
    let pid_file = dir.join("p.pid");
    let (out, _) = start(
        &pid_file,
        &["--notify=20"],
        &["sh", "-c", "systemd-notify ERRNO=2; exit 1"],
    );
    failed(&out, "exited with status 1 before it was ready");
    assert!(out.stderr.contains("No such file or directory"), "{out:?}");
}

#[test]
fn extend_timeout_usec_is_microseconds() {
    let Some(py) = python3() else { return };
    let dir = TempDir::new("rdy-extend");
    let pid_file = dir.join("p.pid");
    // 3 s more: READY at 2 s comes within it.
    let extended = client(
        &py,
        "s.sendto(b'EXTEND_TIMEOUT_USEC=3000000', addr)\ntime.sleep(2)\ns.sendto(b'READY=1', addr)",
    );
    let (out, took) = start(&pid_file, &["--notify=1"], &strs(&extended));
    ok(&out);
    assert!(took >= Duration::from_secs(2), "{took:?}");
    // 5 ms more (5 s if read as milliseconds): the 1 s timeout stands.
    let short = client(
        &py,
        "s.sendto(b'EXTEND_TIMEOUT_USEC=5000', addr)\ntime.sleep(2.5)\ns.sendto(b'READY=1', addr)",
    );
    let pid_file = dir.join("q.pid");
    let (out, _) = start(&pid_file, &["--notify=1"], &strs(&short));
    failed(&out, "not ready within");
    assert!(!pid_file.exists());
}

#[test]
fn a_strangers_ready_is_ignored() {
    let Some(py) = python3() else { return };
    let dir = TempDir::new("rdy-stranger");
    let pid_file = dir.join("p.pid");
    let sock = dir.join("sock");
    let script = format!(
        "echo \"$NOTIFY_SOCKET\" > {}.new; mv {0}.new {0}; exec sleep 600",
        s(&sock)
    );
    let mut cmd = tool([
        "start",
        "--pid-file",
        s(&pid_file),
        "--notify=3",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let launcher = support::spawn(&mut cmd);
    wait_until("PROGRAM named its socket", || sock.exists());
    let address = fs::read_to_string(&sock).unwrap().trim().to_string();
    // Not PROGRAM, not its child: the test's own process, started apart.
    let sent = support::run(support::host(&py).args([
        "-c",
        "import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', sys.argv[1])",
        &address,
    ]));
    assert!(sent.status.success(), "{sent:?}");
    let out = launcher.wait_with_output();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not ready within 3000 ms"), "{stderr}");
}

#[test]
fn a_full_datagram_is_read_whole_and_descriptors_are_closed() {
    let Some(py) = python3() else { return };
    let dir = TempDir::new("rdy-big");
    let pid_file = dir.join("p.pid");
    // A descriptor first: the client goes on only once the launcher closed its copy
    // (else it exits 7 after 5 s, before ready). Then 4096 bytes whose last line,
    // to the very last byte, is READY=1.
    let body = "r, w = os.pipe()\n\
                s.sendmsg([b'FDSTORE=1'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [w]))], 0, addr)\n\
                os.close(w)\n\
                if not select.select([r], [], [], 5)[0] or os.read(r, 1) != b'': sys.exit(7)\n\
                head = b'STATUS='\n\
                tail = b'\\nREADY=1'\n\
                big = head + b'x' * (4096 - len(head) - len(tail)) + tail\n\
                assert len(big) == 4096\n\
                s.sendto(big, addr)";
    let (out, _) = start(&pid_file, &["--notify=20"], &strs(&client(&py, body)));
    ok(&out);
}

#[test]
fn a_truncated_datagram_is_ignored() {
    let Some(py) = python3() else { return };
    let dir = TempDir::new("rdy-trunc");
    let pid_file = dir.join("p.pid");
    // READY=1 first, then padding past 4096 bytes: systemd drops such a datagram.
    let body = "s.sendto(b'READY=1\\nSTATUS=' + b'x' * 5000, addr)";
    let (out, _) = start(&pid_file, &["--notify=1"], &strs(&client(&py, body)));
    failed(&out, "not ready within");
}

#[test]
fn mainpid_goes_into_the_pid_file() {
    if !have("systemd-notify") {
        return;
    }
    let dir = TempDir::new("rdy-mainpid");
    let pid_file = dir.join("p.pid");
    let main = dir.join("main");
    let script = format!(
        "sleep 600 & echo $! > {}; systemd-notify --ready --pid=$!; wait",
        s(&main)
    );
    let (out, _) = start(&pid_file, &["--notify=10"], &["sh", "-c", &script]);
    ok(&out);
    let main: i32 = fs::read_to_string(&main).unwrap().trim().parse().unwrap();
    assert_eq!(
        pids(&pid_file),
        (Some(main), None),
        "MAINPID is the pid file's pid"
    );
    assert_eq!(comm(main), "sleep");
}

#[test]
fn mainpid_zero_names_no_process() {
    let Some(py) = python3() else { return };
    let dir = TempDir::new("rdy-mainpid0");
    let pid_file = dir.join("p.pid");
    let marker = dir.join("me");
    // MAINPID=0 is no pid (systemd refuses it): PROGRAM stays the main process.
    let body = format!(
        "open('{}', 'w').write(str(os.getpid()))\ns.sendto(b'MAINPID=0\\nREADY=1', addr)",
        s(&marker)
    );
    let (out, _) = start(&pid_file, &["--notify=20"], &strs(&client(&py, &body)));
    ok(&out);
    let me: i32 = fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
    assert_eq!(pids(&pid_file), (Some(me), None), "PROGRAM, not 0");
}

#[test]
fn ready_fd_newline_means_ready() {
    let dir = TempDir::new("rdy-fd");
    let pid_file = dir.join("p.pid");
    let (out, took) = start(
        &pid_file,
        &["--ready-fd", "3:10"],
        &["sh", "-c", "sleep 0.3; echo >&3; exec sleep 600"],
    );
    ok(&out);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let pid = pids(&pid_file).0.expect("a pid");
    wait_until("sh exec'd sleep", || comm(pid) == "sleep");
    // PROGRAM keeps its end (its own to close).
    assert!(support::fd_target(pid, 3).starts_with("pipe:"));
}

#[test]
fn ready_fd_closed_without_a_newline_is_not_ready() {
    let dir = TempDir::new("rdy-fd-eof");
    let pid_file = dir.join("p.pid");
    let (out, _) = start(
        &pid_file,
        &["--ready-fd", "3:1"],
        &["sh", "-c", "exec 3>&-; exec sleep 600"],
    );
    failed(&out, "not ready within 1000 ms");
    let pid_file = dir.join("q.pid");
    let (out, _) = start(&pid_file, &["--ready-fd", "5"], &["sh", "-c", "exit 4"]);
    failed(&out, "exited with status 4 before it was ready");
}

#[test]
fn supervise_notify_returns_at_the_first_readiness() {
    if !have("systemd-notify") {
        return;
    }
    let dir = TempDir::new("rdy-sv");
    let pid_file = dir.join("p.pid");
    let (out, _) = start(
        &pid_file,
        &["--supervise", "--notify=10"],
        &[
            "sh",
            "-c",
            "sleep 0.3; systemd-notify --ready; exec sleep 600",
        ],
    );
    ok(&out);
    let (Some(program), Some(supervisor)) = pids(&pid_file) else {
        panic!("two pids in the pid file")
    };
    assert!(alive(supervisor) && alive(program));
    assert_eq!(ppid(program), supervisor);
    wait_until("sh exec'd sleep", || comm(program) == "sleep");
}

#[test]
fn supervise_ready_fd() {
    let dir = TempDir::new("rdy-sv-fd");
    let pid_file = dir.join("p.pid");
    let (out, _) = start(
        &pid_file,
        &["--supervise", "--ready-fd", "4:10"],
        &["sh", "-c", "sleep 0.2; echo >&4; exec sleep 600"],
    );
    ok(&out);
    let (Some(program), Some(supervisor)) = pids(&pid_file) else {
        panic!("two pids in the pid file")
    };
    assert_eq!(ppid(program), supervisor);
}

#[test]
fn usage_errors() {
    for args in [
        &["start", "--notify", "--foreground", "--", "true"][..],
        &["start", "--foreground", "--ready-fd", "3", "--", "true"],
        &["start", "--notify", "--detach", "never", "--", "true"],
        &["start", "--notify=abc", "--", "true"],
        &["start", "--notify=0", "--", "true"],
        &["start", "--ready-fd", "2", "--", "true"],
        &["start", "--ready-fd", "x", "--", "true"],
        &["start", "--ready-fd", "3:", "--", "true"],
        &["start", "--notify", "--ready-fd", "3", "--", "true"],
    ] {
        let out = expect(2, args);
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
    }
}

#[test]
fn notify_as_another_user_gets_a_socket_it_owns() {
    if !support::is_root() {
        eprintln!("skipped: --user needs root");
        return;
    }
    if !have("systemd-notify") {
        return;
    }
    let dir = TempDir::new("rdy-user");
    let pid_file = dir.join("p.pid");
    let info = dir.join("info");
    // Not root, systemd-notify's credentials are its own pid: a child of PROGRAM.
    let script = format!(
        "stat -c '%a %U' \"$(dirname \"$NOTIFY_SOCKET\")\" \"$NOTIFY_SOCKET\" > {}; \
         systemd-notify --ready; exec sleep 600",
        s(&info)
    );
    let (out, _) = start(
        &pid_file,
        &["--user", "nobody", "--notify=10"],
        &["sh", "-c", &script],
    );
    ok(&out);
    let info = fs::read_to_string(&info).unwrap();
    let lines: Vec<&str> = info.lines().collect();
    assert_eq!(lines[0], "700 nobody", "{info}");
    assert!(lines[1].ends_with(" nobody"), "{info}");
    let pid = pids(&pid_file).0.expect("a pid");
    assert_eq!(
        support::status(pid)["Uid"].split_whitespace().next(),
        Some("65534")
    );
}

#[test]
fn under_systemd_the_launcher_relays_the_main_pid_once_ready() {
    if !have("systemd-notify") {
        return;
    }
    use std::os::unix::net::UnixDatagram;
    let dir = TempDir::new("rdy-relay");
    let outer = dir.join("outer.sock");
    let receiver = UnixDatagram::bind(&outer).unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let pid_file = dir.join("p.pid");
    let main = dir.join("main");
    let script = format!(
        "sleep 600 & echo $! > {}; systemd-notify --ready --pid=$!; wait",
        s(&main)
    );
    let mut cmd = tool([
        "start",
        "--pid-file",
        s(&pid_file),
        "--notify=10",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    cmd.env("NOTIFY_SOCKET", &outer);
    let out = support::run(&mut cmd);
    assert!(out.status.success(), "{out:?}");
    let main: i32 = fs::read_to_string(&main).unwrap().trim().parse().unwrap();
    let mut buf = [0u8; 4096];
    let n = receiver.recv(&mut buf).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        format!("MAINPID={main}\nREADY=1\n"),
        "one datagram, naming the service's process"
    );
}
