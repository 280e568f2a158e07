//! No allocation and no deallocation between fork and run(): with `PDM_ALLOC_TRAP=1`
//! the helpers' allocator (`tests/helpers/alloc_trap.rs`, which replaces the C
//! library's `malloc` family, so Rust's and C's allocations are one path) aborts the
//! daemon on any call into it in that window.

mod support;

use support::{probe, run_fields, Reaper, TempDir};

/// The trap's message, written to the daemon's stderr before it aborts.
const TRAPPED: &str = "ALLOCATION BETWEEN FORK AND RUN";

#[test]
fn every_stage_passes_under_an_aborting_allocator() {
    let dir = TempDir::new("alloc");
    let pid_path = dir.join("a.pid");
    let out = dir.join("out.log");
    let mut reaper = Reaper::new();
    let mut cmd = probe();
    cmd.env("PDM_ALLOC_TRAP", "1").args([
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--umask",
        "027",
        "--workdir",
        "/tmp",
        "--signal",
        "HUP=ign",
        "--signal",
        "USR1=usr1flag",
        "--open-fd",
        "40",
        "--keep-fd",
        "40",
        "--stdout",
        out.to_str().unwrap(),
        "--say",
        "set-up output",
    ]);
    if support::is_root() {
        // Resolved in the launcher (getpwnam_r, NSS): allocation is allowed there.
        cmd.args(["--user", "nobody"]);
    }
    let r = run_fields(&mut cmd);
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = reaper.add(r.pid());
    assert_eq!(support::read_pid(&pid_path), Some(pid));
    assert_eq!(r.field("output"), "set-up output\\n");
}

/// Starts the probe under the trap with `args` (a fault injected in some stage) and
/// checks that the trap killed the daemon in that stage.
fn assert_trapped(args: &[&str]) {
    let r = run_fields(probe().env("PDM_ALLOC_TRAP", "1").args(args));
    if let Some(p) = r.fields.get("daemon_pid").and_then(|p| p.parse().ok()) {
        support::wait_exit(p);
    }
    // (Had it started, untrapped, the test's scope ends it.)
    assert_eq!(
        r.status,
        Some(3),
        "{args:?}: start() must fail, the trap aborting the daemon\n{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.field("kind"), "DaemonDied", "{}", r.stdout);
    assert!(r.field("error").contains(TRAPPED), "{}", r.stdout);
}

#[test]
fn the_trap_does_catch_an_allocation() {
    // The same trap fails a daemon that allocates in a stage: the test above can fail.
    assert_trapped(&["--alloc-in-stage", "4"]);
}

#[test]
fn the_trap_catches_the_c_librarys_malloc_and_free() {
    // `libc::malloc` + `libc::free` in stage 4: not Rust's allocator at all.
    assert_trapped(&["--libc-malloc-in-stage", "4"]);
}

#[test]
fn the_trap_catches_a_deallocation() {
    // A Box allocated in the launcher, before fork, dropped in stage 4.
    assert_trapped(&["--free-in-stage", "4"]);
}

#[test]
fn without_the_variable_the_same_faults_pass() {
    // The trap is what fails the daemons above: unarmed, they start.
    for fault in [
        "--alloc-in-stage",
        "--libc-malloc-in-stage",
        "--free-in-stage",
    ] {
        let mut reaper = Reaper::new();
        let r = run_fields(probe().env_remove("PDM_ALLOC_TRAP").args([fault, "4"]));
        assert_eq!(r.status, Some(0), "{fault}\n{}\n{}", r.stdout, r.stderr);
        reaper.add(r.pid());
        assert_eq!(r.field("error"), "", "{fault}");
    }
}

/// `Builder::activate` returns inside the daemon: everything up to that return (the
/// library's own clean-up on the way out included) is in the trapped window.
#[cfg(feature = "std")]
#[test]
fn std_activate_allocates_and_frees_nothing_in_the_daemon() {
    let dir = TempDir::new("alloc-activate");
    let (pid_path, activated, err_log) = (
        dir.join("activate.pid"),
        dir.join("activated.txt"),
        dir.join("err.log"),
    );
    let out = support::run(
        support::helper(&support::helper_bin("pdm-std"))
            .env("PDM_ALLOC_TRAP", "1")
            .arg("activate")
            .arg(dir.path()),
    );
    // The original exits 0 once the daemon finished stage 9: the pid file is sealed
    // (a daemon that got as far as run() may have removed it again since).
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let has_content = |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.len() > 0);
    let pid = support::read_pid(&pid_path);
    support::wait_until("activated.txt or err.log", || {
        has_content(&activated) || has_content(&err_log)
    });
    let pid = support::read_pid(&activated)
        .or(pid)
        .expect("the daemon's pid: activated.txt or its pid file");
    let status = support::wait_exit(pid);
    let err = std::fs::read_to_string(&err_log).unwrap_or_default();
    assert!(
        !err.contains(TRAPPED),
        "the daemon allocated or freed between fork and the return of Builder::activate() \
         (the trap aborted it, status {status:?}); its stderr (err.log): {err:?}"
    );
    assert_eq!(
        support::read_pid(&activated),
        Some(pid),
        "activate() returned in the daemon and it wrote its pid; err.log: {err:?}"
    );
    assert_eq!(status, Some(0), "the daemon exits 0; err.log: {err:?}");
}
