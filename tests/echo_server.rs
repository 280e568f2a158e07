//! `examples/echo_server.rs`, driven as a user would: start it, talk to it, rotate its
//! log (`mv`, then `SIGHUP`), stop it (`SIGTERM`). Runs as any user.
#![cfg(feature = "std")] // examples/echo_server.rs needs the std feature

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;

use support::{helper, helper_bin, run_fields, wait_exit, wait_until, TempDir};

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn say(port: u16, text: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(text.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    line
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill with integer arguments; pid is the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "qemu-user's /proc/self/stat hides the thread count, so the example's start() refuses to fork there"
)]
fn the_echo_server_serves_rotates_its_log_and_stops() {
    let dir = TempDir::new("echo");
    let (pid_file, log) = (dir.join("echo.pid"), dir.join("echo.log"));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = helper(&helper_bin("echo_server"));
    cmd.args([&addr, pid_file.to_str().unwrap(), log.to_str().unwrap()]);
    let r = run_fields(&mut cmd);
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = support::read_pid(&pid_file).expect("the daemon's pid in its pid file");
    assert!(
        r.stdout.contains(&format!("pid {pid}, on {addr}")),
        "{}",
        r.stdout
    );
    // Bound before fork: the port is the daemon's, its listener open there.
    assert_eq!(say(port, "hello\n"), "hello\n");
    wait_until("the first echo logged", || {
        read(&log).contains("echoed 6 bytes")
    });

    // logrotate: move the log away, then HUP; the daemon writes to a new one.
    let rotated = dir.join("echo.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    signal(pid, libc::SIGHUP);
    wait_until("the reopened log", || {
        read(&log).contains("reopened the log")
    });
    assert_eq!(say(port, "again, longer\n"), "again, longer\n");
    wait_until("the second echo logged", || {
        read(&log).contains("echoed 14 bytes")
    });
    let old = read(&rotated);
    assert!(
        old.contains("serving\n") && old.contains("echoed 6 bytes"),
        "{old}"
    );
    assert!(
        !old.contains("reopened") && !old.contains("14 bytes"),
        "{old}"
    );

    // TERM: a clean stop from the loop, status 0, the pid file gone.
    signal(pid, libc::SIGTERM);
    assert_eq!(wait_exit(pid), Some(0));
    assert!(read(&log).ends_with("stopping\n"), "{}", read(&log));
    assert!(!pid_file.exists());
}

#[test]
fn a_port_in_use_fails_in_the_terminal_before_anything_forks() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new("echo-busy");
    let pid_file = dir.join("echo.pid");
    let mut cmd = helper(&helper_bin("echo_server"));
    cmd.args([&addr, pid_file.to_str().unwrap(), "/dev/null"]);
    let r = run_fields(&mut cmd);
    assert_eq!(r.status, Some(1));
    assert!(
        r.stderr.starts_with(&format!("echo_server: {addr}: ")),
        "{}",
        r.stderr
    );
    assert!(!pid_file.exists());
}
