//! The std layer: closures with captured data, users by name, errors before fork,
//! the pid-file guard, io::Error conversion, and still no allocation after fork.
#![cfg(feature = "std")]

mod support;

use support::{run_fields, TempDir};

fn std_probe() -> std::process::Command {
    support::helper(&support::helper_bin("pdm-std"))
}

/// Starts the closure daemon; its pid, once the closure has run.
fn closure_daemon(dir: &TempDir, extra: &[&str], trap: bool) -> i32 {
    let mut cmd = std_probe();
    cmd.arg("closure").arg(dir.path()).args(extra);
    if trap {
        cmd.env("PDM_ALLOC_TRAP", "1");
    }
    let r = run_fields(&mut cmd);
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    support::wait_until("the closure ran", || dir.join("closure.txt").exists());
    r.pid()
}

#[test]
fn a_closure_with_captured_data_reaches_the_daemon() {
    let dir = TempDir::new("std-closure");
    let pid = closure_daemon(&dir, &[], false);
    let text = std::fs::read_to_string(dir.join("closure.txt")).unwrap();
    assert!(text.starts_with("alpha,beta,gamma\n"), "{text}");
    assert_eq!(support::read_pid(&dir.join("closure.pid")), Some(pid));
    let st = support::status(pid);
    assert_eq!(st["Umask"], "0022");
    let ign = u64::from_str_radix(&st["SigIgn"], 16).unwrap();
    assert_ne!(ign & (1 << (libc::SIGHUP - 1)), 0, "HUP ignored by name");
    support::wait_until("log", || {
        std::fs::read_to_string(dir.join("log.txt"))
            .is_ok_and(|l| l.contains("logged from the daemon"))
    });
    // SIGTERM mapped by name to the closure's flag: it returns 0, the pid file goes.
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(support::wait_exit(pid), Some(0));
    assert!(!dir.join("closure.pid").exists());
}

#[test]
fn a_user_by_name() {
    require_root!();
    let dir = TempDir::new("std-user");
    let pid = closure_daemon(&dir, &["as-user", "nobody"], false);
    let text = std::fs::read_to_string(dir.join("closure.txt")).unwrap();
    assert!(text.contains("uid=65534\n"), "{text}");
    assert_eq!(support::status(pid)["Groups"], "65534");
}

#[test]
fn a_capability_by_name_kept_with_no_new_privileges() {
    require_root!();
    let dir = TempDir::new("std-caps");
    let extra = ["as-user", "nobody", "keep-cap", "cap_net_bind_service"];
    let pid = closure_daemon(&dir, &extra, true);
    let st = support::status(pid);
    for set in ["CapPrm", "CapEff", "CapInh", "CapAmb"] {
        assert_eq!(st[set], "0000000000000400", "{set}");
    }
    assert_eq!(st["NoNewPrivs"], "1");
    assert_eq!(st["Uid"].split_whitespace().next(), Some("65534"));
}

#[test]
fn an_unknown_capability_name_is_a_clear_error_before_fork() {
    let r = run_fields(std_probe().arg("unknown-cap"));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert_eq!(
        r.field("message"),
        "stage 3 (process ids): unknown capability: NET_BIND"
    );
    assert_eq!(r.field("kind"), "InvalidConfig");
    assert_eq!(r.field("children"), "none");
}

#[test]
fn an_unknown_user_name_is_a_clear_error_before_fork() {
    let r = run_fields(std_probe().arg("unknown-user"));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert_eq!(
        r.field("message"),
        "stage 3 (process ids): no such user: no-such-user-pdm"
    );
    assert_eq!(r.field("kind"), "UnknownUser");
    assert_eq!(r.field("children"), "none");
}

#[test]
fn io_error_conversion_keeps_the_errno_and_the_message() {
    let r = run_fields(std_probe().arg("io"));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert_eq!(r.field("kind"), "NotFound");
    assert_eq!(r.field("errno"), libc::ENOENT.to_string());
    assert_eq!(
        r.field("message"),
        "stage 5 (working directory): chdir /nonexistent-pdm: No such file or directory (os error 2)"
    );
}

#[test]
fn the_pid_file_guard_releases_on_drop() {
    let dir = TempDir::new("std-guard");
    let path = dir.join("g.pid");
    let r = run_fields(std_probe().arg("guard").arg(&path));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    assert_eq!(r.field("active"), "true");
    assert!(
        r.field("contents").ends_with("\\n\""),
        "{}",
        r.field("contents")
    );
    assert_eq!(r.field("exists_after_drop"), "false");
}

#[test]
fn std_wrappers_allocate_nothing_after_fork() {
    let dir = TempDir::new("std-alloc");
    let pid = closure_daemon(&dir, &[], true);
    assert!(support::alive(pid));
}
