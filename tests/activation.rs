//! Socket activation: the descriptors `systemd-socket-activate` passes reach a detached
//! daemon's `run()` with their names and serve there; the variables are gone from its
//! environment; descriptors meant for another process are closed by stage 8; bad
//! values are an error before anything forks. Driven through
//! `tests/helpers/activated.rs`.

mod support;

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::net::UnixStream;

use support::TempDir;

fn activated() -> String {
    support::helper_bin("pdm-activated")
}

/// The daemon's report, once written.
fn report(path: &std::path::Path) -> HashMap<String, String> {
    support::report(path)
}

/// Connects to `path` (the supervisor may not listen yet) and reads the answer.
fn answer(path: &std::path::Path) -> String {
    let mut conn = None;
    support::wait_until("the socket accepts", || {
        conn = UnixStream::connect(path).ok();
        conn.is_some()
    });
    let mut text = String::new();
    conn.unwrap().read_to_string(&mut text).unwrap();
    text
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "systemd-socket-activate execs the target binary directly, without the emulator"
)]
fn a_detached_daemon_serves_on_each_named_socket() {
    if !std::path::Path::new("/usr/bin/systemd-socket-activate").exists() {
        eprintln!("skipped: no systemd-socket-activate (Debian package systemd)");
        return;
    }
    let dir = TempDir::new("activate");
    let (a, b, rep) = (dir.join("a.sock"), dir.join("b.sock"), dir.join("rep"));
    let mut cmd = support::host("/usr/bin/systemd-socket-activate");
    cmd.args(["-l", a.to_str().unwrap(), "-l", b.to_str().unwrap()])
        .arg("--fdname=ctl:data")
        .args([&activated(), rep.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let launcher = support::spawn(&mut cmd);
    let launcher_pid = launcher.pid();
    // The first connection makes systemd-socket-activate exec the program.
    assert_eq!(answer(&a), "ctl\n");
    assert_eq!(answer(&b), "data\n");
    let out = launcher.wait_with_output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&rep);
    let pid: i32 = r["pid"].parse().unwrap();
    assert!(stdout.contains(&format!("started pid {pid}")), "{stdout}");
    assert_ne!(pid, launcher_pid, "detached: not the pid LISTEN_PID named");
    assert_eq!(r["names"], "ctl,data");
    assert_eq!(r["fds"], "3,4");
    assert_eq!(r["env"], "", "LISTEN_* removed before the fork");
    if !support::is_root() {
        eprintln!("the daemon's descriptors not inspected: its /proc/PID/fd is root's");
        return;
    }
    for fd in [3, 4] {
        assert!(
            support::fd_target(pid, fd).starts_with("socket:"),
            "fd {fd}: {}",
            support::fd_target(pid, fd)
        );
        let flags = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap();
        let flags = flags
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
            .unwrap();
        assert_ne!(flags & libc::O_CLOEXEC as u32, 0, "fd {fd} close-on-exec");
    }
}

/// `pdm-activated` under `sh -c`, with `LISTEN_*` from `vars` (`$$` is the program's
/// own pid: `exec` keeps it) and `redirections`.
fn via_sh(dir: &TempDir, vars: &str, redirections: &str) -> support::Run {
    let rep = dir.join("rep");
    let script = format!(
        "{vars} exec {} {} {redirections}",
        support::sh_target(&activated()),
        rep.display()
    );
    support::run_fields(support::host("/bin/sh").args(["-c", &script]))
}

#[test]
fn descriptors_meant_for_another_process_are_closed() {
    let dir = TempDir::new("activate-other");
    let r = via_sh(
        &dir,
        "LISTEN_PID=1 LISTEN_FDS=2 LISTEN_FDNAMES=a:b",
        "3</dev/null 4</dev/null",
    );
    assert_eq!(r.status, Some(0), "{}{}", r.stdout, r.stderr);
    let rep = report(&dir.join("rep"));
    assert_eq!(rep["names"], "", "not ours: none taken");
    let pid: i32 = rep["pid"].parse().unwrap();
    if !support::is_root() {
        eprintln!("the daemon's descriptors not checked: its /proc/PID/fd is root's");
        return;
    }
    let open = support::fds(pid);
    assert!(
        !open.contains(&3) && !open.contains(&4),
        "3 and 4 closed by stage 8: {:?}",
        support::open_files(pid)
    );
}

#[test]
fn detach_auto_does_not_fork_under_socket_activation() {
    // The supervisor watches the pid it started (LISTEN_PID): with `Detach::Auto` the
    // daemon is that process. NOTIFY_SOCKET, which would say the same, is unset.
    let dir = TempDir::new("activate-auto");
    let rep = dir.join("rep");
    let script = format!(
        "unset NOTIFY_SOCKET; LISTEN_PID=$$ LISTEN_FDS=1 exec {} {} --auto 3</dev/null",
        support::sh_target(&activated()),
        rep.display()
    );
    let mut shell = support::spawn(
        support::host("/bin/sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null()),
    );
    support::wait_until("the daemon's report", || rep.exists());
    let r = report(&rep);
    assert_eq!(r["names"], "unknown", "the descriptor was taken");
    assert_eq!(
        r["pid"],
        shell.pid().to_string(),
        "not forked: the daemon is the process LISTEN_PID named"
    );
    shell.kill();
}

#[test]
fn bad_values_fail_before_anything_forks() {
    for (vars, redirections, message) in [
        ("LISTEN_PID=$$ LISTEN_FDS=abc", "", "LISTEN_FDS=abc"),
        ("LISTEN_PID=$$ LISTEN_FDS=0", "", "LISTEN_FDS=0"),
        ("LISTEN_PID=x LISTEN_FDS=1", "3</dev/null", "LISTEN_PID=x"),
        (
            "LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=ctl",
            "3</dev/null 4</dev/null",
            "LISTEN_FDNAMES=ctl",
        ),
        (
            "LISTEN_PID=$$ LISTEN_FDS=2",
            "3</dev/null 4<&-",
            "LISTEN_FDS=2: fd 4",
        ),
    ] {
        let dir = TempDir::new("activate-bad");
        let r = via_sh(&dir, vars, redirections);
        assert_eq!(r.status, Some(3), "{vars}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.starts_with("error: ") && r.stdout.contains(message),
            "{vars}: {}",
            r.stdout
        );
        assert!(!dir.join("rep").exists(), "{vars}: no daemon ran");
    }
}
