//! The pid file under contention: concurrent starts, SIGKILL, symlinks, stale files.

mod support;

use std::process::Stdio;

use support::{probe, run_fields, TempDir};

#[test]
fn fifty_concurrent_starts_make_exactly_one_daemon() {
    let dir = TempDir::new("race");
    let pid_path = dir.join("race.pid");
    let children: Vec<_> = (0..50)
        .map(|_| {
            support::spawn(
                probe()
                    .args(["--pid-file", pid_path.to_str().unwrap()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped()),
            )
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for child in children {
        let out = child.wait_with_output();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(str::to_string)
        };
        match out.status.code() {
            Some(0) => winners.push(field("pid").unwrap().parse::<i32>().unwrap()),
            Some(3) => {
                if let Some(p) = field("daemon_pid")
                    .and_then(|p| p.parse::<i32>().ok())
                    .filter(|&p| p > 0)
                {
                    support::wait_exit(p);
                }
                losers.push(field("message").unwrap());
            }
            other => panic!("unexpected exit {other:?}: {text}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one daemon");
    assert_eq!(losers.len(), 49);
    let winner = winners[0];
    let expected = format!(
        "stage 6 (pid file): {}: already running (pid {winner})",
        pid_path.display()
    );
    // A loser that found the lock taken between the winner's lock and its seal re-reads
    // the file only briefly (FreeBSD's 20 x 5 ms) for the pid; on a busy machine it may
    // get none, and says so without one. Never another pid.
    let without_pid = format!(
        "stage 6 (pid file): {}: already running",
        pid_path.display()
    );
    for message in &losers {
        assert!(message == &expected || message == &without_pid, "{message}");
    }
    assert_eq!(support::read_pid(&pid_path), Some(winner));
    assert!(support::alive(winner));
}

#[test]
fn sigkill_never_blocks_the_next_start() {
    let dir = TempDir::new("kill9");
    let pid_path = dir.join("k.pid");
    let first = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(first.status, Some(0));
    let old = first.pid();
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(old, libc::SIGKILL) };
    assert_eq!(support::wait_exit(old), Some(128 + libc::SIGKILL));
    assert_eq!(
        support::read_pid(&pid_path),
        Some(old),
        "the stale file is still there"
    );
    let second = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(second.status, Some(0), "{}", second.stdout);
    let new = second.pid();
    assert_ne!(new, old);
    assert_eq!(
        support::read_pid(&pid_path),
        Some(new),
        "the pid file holds the new pid"
    );
}

#[test]
fn a_stale_file_with_junk_is_taken_over() {
    let dir = TempDir::new("junk");
    let pid_path = dir.join("j.pid");
    std::fs::write(&pid_path, "banana\n").unwrap();
    let r = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(r.status, Some(0));
    let pid = r.pid();
    assert_eq!(
        std::fs::read_to_string(&pid_path).unwrap(),
        format!("{pid}\n")
    );
}

#[test]
fn a_symlinked_pid_file_is_refused_and_its_target_untouched() {
    let dir = TempDir::new("symlink");
    let target = dir.join("target");
    std::fs::write(&target, "precious\n").unwrap();
    let link = dir.join("link.pid");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let r = run_fields(probe().args(["--pid-file", link.to_str().unwrap()]));
    assert_eq!(r.status, Some(3));
    assert_eq!(r.field("stage"), "6");
    assert_eq!(r.field("errno"), libc::ELOOP.to_string());
    assert!(r
        .field("message")
        .starts_with(&format!("stage 6 (pid file): open {}: ", link.display())));
    if let Some(p) = r
        .fields
        .get("daemon_pid")
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|&p| p > 0)
    {
        support::wait_exit(p);
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_replaced_pid_file_is_not_removed_by_the_old_daemon() {
    // FreeBSD pidfile(3)'s dev/ino check: someone replaces the file; the daemon's
    // SIGTERM clean-up must leave the new file alone.
    let dir = TempDir::new("replaced");
    let pid_path = dir.join("p.pid");
    let r = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(r.status, Some(0));
    let pid = r.pid();
    std::fs::remove_file(&pid_path).unwrap();
    std::fs::write(&pid_path, "12345\n").unwrap();
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(support::wait_exit(pid), Some(128 + libc::SIGTERM));
    assert_eq!(std::fs::read_to_string(&pid_path).unwrap(), "12345\n");
}

#[test]
fn a_timeout_waits_for_the_holder_to_go() {
    let dir = TempDir::new("timeout");
    let pid_path = dir.join("t.pid");
    let first = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(first.status, Some(0));
    let old = first.pid();
    // A second start that may wait up to 30 s for the holder.
    let second = support::spawn(
        probe()
            .args(["--pid-timeout", &format!("30000:{}", pid_path.display())])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // Only once the waiter's daemon is up and contending do we stop the holder: a
    // process with the waiter's command line in a session of its own (not the launcher
    // nor its pdm-scope, in ours) that does not lead it (not the first fork).
    // SAFETY: getsid(0) reads our own session id.
    let ours = unsafe { libc::getsid(0) };
    support::wait_until("second start contending", || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .any(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.contains("--pid-timeout") && c.contains("t.pid"))
                    && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                        let after = &s[s.rfind(')').unwrap() + 2..];
                        let sid = after.split_whitespace().nth(3).unwrap().parse::<i32>();
                        sid.is_ok_and(|sid| sid != ours && sid != pid)
                    })
            })
    });
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(old, libc::SIGTERM) };
    let out = second.wait_with_output();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let new: i32 = text
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(support::read_pid(&pid_path), Some(new));
}

#[test]
fn acquire_in_the_foreground_then_seal_in_the_daemon() {
    // The seed's pattern: PidLockFile::acquire() in the launcher, handed to the daemon.
    let dir = TempDir::new("fg");
    let pid_path = dir.join("fg.pid");
    let r = run_fields(probe().args(["--acquire-first", pid_path.to_str().unwrap()]));
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    let pid = r.pid();
    assert_eq!(support::read_pid(&pid_path), Some(pid));
    assert!(
        support::is_locked(&pid_path),
        "still locked after the launcher exited"
    );
    // Held by the daemon alone: a second start is refused.
    let again = run_fields(probe().args(["--acquire-first", pid_path.to_str().unwrap()]));
    assert_eq!(again.status, Some(3));
    assert_eq!(again.field("kind"), "AlreadyRunning");
    assert_eq!(again.field("holder"), pid.to_string());
}
