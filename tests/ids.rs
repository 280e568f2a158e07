//! Stage 3 as root: drop to nobody, with nobody's groups, and no way back.

mod support;

use support::{probe, run_fields, TempDir};

#[test]
fn root_drops_to_nobody_and_cannot_regain_root() {
    require_root!();
    let dir = TempDir::new("ids");
    let rep = dir.join("rep");
    let r = run_fields(probe().args(["--user", "nobody", "--report", rep.to_str().unwrap()]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = r.pid();
    let st = support::status(pid);
    assert_eq!(
        st["Uid"].split_whitespace().collect::<Vec<_>>(),
        ["65534"; 4],
        "real, effective, saved, fs uid"
    );
    assert_eq!(
        st["Gid"].split_whitespace().collect::<Vec<_>>(),
        ["65534"; 4]
    );
    assert_eq!(
        st["Groups"], "65534",
        "root's supplementary groups are gone"
    );
    support::wait_until("report", || rep.exists());
    let rep = std::fs::read_to_string(&rep).unwrap();
    assert!(rep.contains("setuid0=-1\n"), "{rep}");
    assert!(
        rep.contains(&format!("setuid0_errno={}\n", libc::EPERM)),
        "{rep}"
    );
}

#[test]
fn numeric_ids_with_initgroups_semantics() {
    require_root!();
    // uid 65534 has a passwd entry (nobody): its groups replace root's.
    let r = run_fields(probe().args(["--ids", "65534:65534"]));
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    let pid = r.pid();
    let st = support::status(pid);
    assert_eq!(st["Groups"], "65534");
    // A uid without a passwd entry gets just its gid as supplementary group.
    let r = run_fields(probe().args(["--ids", "54321:54322"]));
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    let pid = r.pid();
    let st = support::status(pid);
    assert_eq!(st["Uid"].split_whitespace().next(), Some("54321"));
    assert_eq!(st["Gid"].split_whitespace().next(), Some("54322"));
    assert_eq!(st["Groups"], "54322");
}

#[test]
fn ids_above_65535_are_whole_and_set_without_a_fork_too() {
    // i386 and 32-bit ARM have 16-bit setuid/setgid/setgroups beside the 32-bit ones:
    // 100000 through the old call would become 34464.
    require_root!();
    let whole = |pid: i32, how: &str| {
        let st = support::status(pid);
        assert_eq!(
            st["Uid"].split_whitespace().collect::<Vec<_>>(),
            ["100000"; 4],
            "{how}: real, effective, saved, fs uid"
        );
        assert_eq!(
            st["Gid"].split_whitespace().collect::<Vec<_>>(),
            ["100001"; 4],
            "{how}"
        );
        assert_eq!(st["Groups"], "100001", "{how}");
    };
    let r = run_fields(probe().args(["--ids", "100000:100001"]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    whole(r.pid(), "detached");
    // Without a fork (one thread: stage 3 counts them first).
    let dir = TempDir::new("ids-never");
    let report = dir.join("report");
    let _daemon = support::spawn(
        probe()
            .args(["--ids", "100000:100001", "--detach", "never"])
            .args(["--report", report.to_str().unwrap()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null()),
    );
    let rep = support::report(&report);
    whole(rep["pid"].parse().unwrap(), "not detached");
}

#[test]
fn a_root_only_pid_directory_with_a_user_switch() {
    // Stage 3 runs before stage 6, so a daemon that drops to nobody can't create its pid
    // file in a root-only directory (like /run). The recipe: acquire the pid file as root
    // in the launcher, hand it over, and the daemon seals it through the open descriptor.
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("rootonly");
    let run = dir.join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pid_path = run.join("d.pid");

    // Without the recipe: stage 6 fails as nobody, with the path and EACCES.
    let r =
        run_fields(probe().args(["--user", "nobody", "--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(r.status, Some(3));
    assert_eq!(r.field("stage"), "6");
    assert_eq!(r.field("errno"), libc::EACCES.to_string());
    if let Ok(p) = r.field("daemon_pid").parse::<i32>() {
        support::wait_exit(p);
    }

    // With it: the daemon (uid 65534) holds the lock and its pid is in the file.
    let r = run_fields(probe().args([
        "--user",
        "nobody",
        "--acquire-first",
        pid_path.to_str().unwrap(),
    ]));
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    let pid = r.pid();
    assert_eq!(support::read_pid(&pid_path), Some(pid));
    assert_eq!(
        support::status(pid)["Uid"].split_whitespace().next(),
        Some("65534")
    );
    assert!(
        support::holds_lock(pid, &pid_path),
        "the daemon's own descriptor holds the lock"
    );
    // On SIGTERM nobody can't unlink in root's directory: the file stays, unlocked, and
    // the next start takes it over.
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(support::wait_exit(pid), Some(128 + libc::SIGTERM));
    let r = run_fields(probe().args([
        "--user",
        "nobody",
        "--acquire-first",
        pid_path.to_str().unwrap(),
    ]));
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    let next = r.pid();
    assert_eq!(support::read_pid(&pid_path), Some(next));
}
