//! Stage 1's Auto mode: no fork under init (ppid 1), inetd (stdin a socket) or a
//! supervisor that watches its child (`NOTIFY_SOCKET`); a closed stdin is not a
//! socket; Always forks even under pid 1.

mod support;

use std::os::unix::net::UnixStream;

use support::{probe, TempDir};

fn report(path: &std::path::Path) -> String {
    support::wait_until("report", || path.exists());
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn stdin_a_socket_means_inetd_no_fork_and_stdio_kept() {
    let dir = TempDir::new("inetd");
    let rep = dir.join("rep");
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut child = support::spawn(
        probe()
            .args(["--report", rep.to_str().unwrap()])
            .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                theirs,
            )))
            .stdout(std::process::Stdio::piped()),
    );
    let pid = child.pid();
    let text = report(&rep);
    // run() is in the launched process itself: it did not fork.
    assert!(text.contains(&format!("pid={pid}\n")), "{text}");
    // fds 0-2 inherited: stdin is still the socket, stdout still our pipe.
    assert!(
        support::fd_target(pid, 0).starts_with("socket:"),
        "{}",
        support::fd_target(pid, 0)
    );
    assert!(support::fd_target(pid, 1).starts_with("pipe:"));
    assert_eq!(
        support::status(pid)["Umask"],
        "0077",
        "the other stages still ran"
    );
    drop(ours);
    child.kill();
    child.wait();
}

#[test]
fn closed_stdin_is_not_taken_for_a_socket() {
    // pandaemonium's EBADF bug: a closed fd 0 made it skip detaching.
    let dir = TempDir::new("closed0");
    let r = support::probe_via_sh(&dir, "", "<&-");
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    let field = |k: &str| r.field(k).to_string();
    let pid = r.pid();
    assert_ne!(field("launcher"), field("pid"), "it forked");
    assert_eq!(support::fd_target(pid, 0), "/dev/null");
}

/// Runs the probe as a child of pid 1 in a new PID namespace (`unshare --pid --fork`
/// makes a shell pid 1 there; the probe is its child, so its getppid() is 1).
fn under_pid1(args: &str, rep: &std::path::Path) -> String {
    let cmd = format!(
        "{} {args} --report {r} --exit 0; echo rc=$?; \
         for i in $(seq 2000); do [ -e {r} ] && break; sleep 0.01; done",
        support::sh_target(&support::helper_bin("pdm-probe")),
        r = rep.display()
    );
    let out = support::run(support::host("unshare").args([
        "--pid",
        "--fork",
        "--kill-child",
        "/bin/sh",
        "-c",
        &cmd,
    ]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn parent_pid_1_means_no_fork() {
    require_root!();
    let dir = TempDir::new("pid1");
    let rep = dir.join("rep");
    let out = under_pid1("--detach auto", &rep);
    let text = report(&rep);
    let launcher = out
        .lines()
        .find_map(|l| l.strip_prefix("launcher="))
        .expect(&out);
    assert!(
        text.contains(&format!("pid={launcher}\n")),
        "no fork: run() in the launcher ({launcher}):\n{text}\n{out}"
    );
    assert!(text.contains("ppid=1\n"), "{text}");
}

#[test]
fn always_forks_even_under_pid_1() {
    // systemd Type=forking: the service is a child of pid 1 and must still fork.
    require_root!();
    let dir = TempDir::new("always");
    let rep = dir.join("rep");
    let out = under_pid1("--detach always", &rep);
    let text = report(&rep);
    let launcher = out
        .lines()
        .find_map(|l| l.strip_prefix("launcher="))
        .expect(&out);
    let pid = out
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .expect(&out);
    assert_ne!(launcher, pid, "forked");
    assert!(text.contains(&format!("pid={pid}\n")), "{text}");
}

/// Under a supervisor that watches the process it started, Auto does not fork: the
/// supervisor wants the pid it spawned (s6 restarts a daemon that "exited"; systemd
/// drops a forked daemon's `READY=1`).
fn assert_no_fork_under(vars: &[(&str, &str)], tag: &str) {
    let dir = TempDir::new(tag);
    let rep = dir.join("rep");
    let mut cmd = probe();
    cmd.args(["--report", rep.to_str().unwrap()]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = support::spawn(cmd.stdout(std::process::Stdio::piped()));
    let pid = child.pid();
    let text = report(&rep);
    assert!(
        text.contains(&format!("pid={pid}\n")),
        "{vars:?}: run() in the launched process itself: {text}"
    );
    child.kill();
    child.wait();
}

#[test]
fn notify_socket_set_means_no_fork() {
    assert_no_fork_under(
        &[("NOTIFY_SOCKET", "/run/pdm-test/notify")],
        "nofork-notify",
    );
    assert_no_fork_under(&[("NOTIFY_SOCKET", "@pdm-test")], "nofork-notify-at");
}

#[test]
fn an_empty_notify_socket_or_another_listen_pid_still_forks() {
    for (k, v) in [("NOTIFY_SOCKET", ""), ("LISTEN_PID", "1")] {
        let mut cmd = probe();
        cmd.env(k, v);
        let r = support::run_fields(&mut cmd);
        assert_eq!(r.status, Some(0), "{}{}", r.stdout, r.stderr);
        assert_ne!(r.field("launcher"), r.field("pid"), "{k}={v:?}: it forked");
    }
}
