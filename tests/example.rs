//! The README's first command: the example daemon starts without root, writes its pid
//! file and log where it says, logs, and stops cleanly on SIGTERM.

#![cfg(feature = "std")] // examples/daemon.rs uses the std Builder

mod support;

use support::TempDir;

#[test]
#[cfg_attr(
    qemu,
    ignore = "qemu-user's /proc/self/stat hides the thread count, so the example's start() refuses to fork there"
)]
fn the_example_daemon_runs_logs_and_stops_on_sigterm() {
    let dir = TempDir::new("example");
    let mut cmd = support::helper(&support::helper_bin("daemon"));
    cmd.env("XDG_RUNTIME_DIR", dir.path());
    if support::is_root() {
        // As the README promises: no root needed.
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
    let out = support::run(&mut cmd);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid_file = dir.join("pandaemonium-example.pid");
    let log = dir.join("pandaemonium-example.log");
    assert!(
        text.contains(&format!("pid file {}", pid_file.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("log      {}", log.display())),
        "{text}"
    );
    let pid: i32 = text
        .lines()
        .find_map(|l| l.strip_prefix("started pid "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(support::read_pid(&pid_file), Some(pid));
    support::wait_until("a tick in the log", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("tick 1\n"))
    });
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(support::wait_exit(pid), Some(0), "clean stop");
    assert!(!pid_file.exists(), "pid file removed");
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .ends_with("SIGTERM received, stopping\n"));
}
