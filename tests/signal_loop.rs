//! Signals a server loop can see: a handler without `SA_RESTART` interrupts a blocking
//! `accept()`; the signal pipe delivers signals in order and loses none of a burst;
//! stage 9's files reopen in place after `mv` (log rotation). Runs as any user.

mod support;

use std::path::Path;

use support::{probe, run_fields, wait_exit, wait_until, TempDir};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill with integer arguments; pid is the daemon this test started.
    let r = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        r,
        0,
        "kill {pid} {sig}: {}",
        std::io::Error::last_os_error()
    );
}

/// Starts a probe daemon with the allocation trap armed; its pid.
fn start(args: &[&str]) -> i32 {
    let mut cmd = probe();
    cmd.env("PDM_ALLOC_TRAP", "1").args(args);
    let r = run_fields(&mut cmd);
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    r.pid()
}

fn lines(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn a_handler_without_sa_restart_interrupts_a_blocking_accept() {
    let dir = TempDir::new("accept");
    let out = dir.join("accept");
    let pid = start(&["--signal", "USR1=interrupt", "--run-accept", s(&out)]);
    wait_until("the daemon's listener", || {
        dir.join("accept.listening").exists()
    });
    // Sent until accept() returns: one that comes before the call only sets the flag.
    wait_until("accept() interrupted", || {
        kill(pid, libc::SIGUSR1);
        std::thread::sleep(std::time::Duration::from_millis(5));
        out.exists()
    });
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, format!("accept={}\nflag=true\n", libc::EINTR));
    assert_eq!(wait_exit(pid), Some(0));
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "qemu-user queues a guest's pending signals itself and may run their handlers nested, in reverse, whatever the handler's mask (seen on riscv64)"
)]
fn the_signal_pipe_delivers_hup_usr1_and_term_in_order() {
    let dir = TempDir::new("sigorder");
    let log = dir.join("signals");
    let mut args = vec![];
    for sig in ["HUP", "USR1", "TERM"] {
        args.extend(["--signal".to_string(), format!("{sig}=pipe")]);
    }
    args.extend(["--run-signal-log".to_string(), s(&log).to_string()]);
    let pid = start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let st = support::status(pid);
    let caught = u64::from_str_radix(&st["SigCgt"], 16).unwrap();
    for sig in [libc::SIGHUP, libc::SIGUSR1, libc::SIGTERM] {
        assert!(caught & 1 << (sig - 1) != 0, "SigCgt {}", st["SigCgt"]);
    }
    for sig in [libc::SIGHUP, libc::SIGUSR1, libc::SIGTERM] {
        kill(pid, sig);
    }
    assert_eq!(
        wait_exit(pid),
        Some(0),
        "TERM read from the pipe ends the loop"
    );
    assert_eq!(lines(&log), [libc::SIGHUP, libc::SIGUSR1, libc::SIGTERM]);
}

#[test]
fn a_burst_of_a_thousand_signals_of_ten_kinds_loses_none() {
    // Real-time signals are queued, one delivery each (a standard signal sent again
    // while pending is merged by the kernel, before any handler could see it).
    let dir = TempDir::new("sigburst");
    let log = dir.join("signals");
    let rtmin = libc::SIGRTMIN();
    let mut args = vec![];
    for k in 0..10 {
        args.extend(["--signal".to_string(), format!("RTMIN+{k}=pipe")]);
    }
    args.extend(["--signal".to_string(), "TERM=pipe".to_string()]);
    args.extend(["--run-signal-log".to_string(), s(&log).to_string()]);
    let pid = start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for n in 0..1000 {
        kill(pid, rtmin + n % 10);
    }
    wait_until("a thousand signals read", || lines(&log).len() >= 1000);
    kill(pid, libc::SIGTERM);
    assert_eq!(wait_exit(pid), Some(0));
    let got = lines(&log);
    assert_eq!(got.len(), 1001, "the thousand and TERM, nothing more");
    for k in 0..10 {
        let n = got.iter().filter(|&&s| s == rtmin + k).count();
        assert_eq!(n, 100, "RTMIN+{k}");
    }
    assert_eq!(got.last(), Some(&libc::SIGTERM));
}

#[test]
fn reopen_on_hup_after_the_log_was_moved_away() {
    let dir = TempDir::new("reopen");
    let (log, tick) = (dir.join("log"), dir.join("tick"));
    let pid = start(&[
        "--stdout",
        s(&log),
        "--signal",
        "HUP=reopen",
        "--run-tick",
        s(&tick),
    ]);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    std::fs::write(&tick, "").unwrap();
    wait_until("the first tick", || read(&log) == "tick\n");
    let rotated = dir.join("log.1");
    std::fs::rename(&log, &rotated).unwrap();
    kill(pid, libc::SIGHUP);
    // Ticks until one lands in the new file (the handler has run by then).
    wait_until("a tick in the new log", || {
        if !tick.exists() {
            std::fs::write(&tick, "").unwrap();
        }
        read(&log).contains("tick\n")
    });
    assert!(read(&rotated).starts_with("tick\n"));
    // The daemon's stdout is the new file.
    let fd1 = support::fd_target(pid, 1);
    assert_eq!(Path::new(&fd1), log.canonicalize().unwrap());
}

#[test]
fn reopenable_stdio_needs_absolute_paths_before_fork() {
    let r = run_fields(probe().args(["--stdout", "relative.log", "--reopenable"]));
    assert_eq!(r.status, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("kind"), "InvalidConfig");
    assert_eq!(
        r.field("message"),
        "stage 9 (redirect stdio): reopenable stdio needs absolute paths: stdout relative.log"
    );
    assert_eq!(r.field("daemon_pid"), "0", "refused before fork");
}
