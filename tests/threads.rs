//! Forking a multi-threaded caller: refused by default; with the explicit, unsafe
//! opt-in, 200 daemonizations while other threads hammer malloc and a mutex, no hang.

mod support;

use support::run_fields;

fn threaded() -> std::process::Command {
    support::helper(&support::helper_bin("pdm-threaded"))
}

/// Runs `pdm-threaded MODE` and checks that its start was refused with `Threaded`,
/// four threads and `message`.
fn refused(mode: &str, message: &str) -> support::Run {
    let r = run_fields(threaded().arg(mode));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("kind"), "Threaded");
    assert_eq!(r.field("holder"), "4", "main thread + 3 hammering threads");
    assert_eq!(r.field("message"), message);
    r
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "qemu-user 7.2 reports 0 threads in /proc/self/stat, so the count is unknown there"
)]
fn a_multi_threaded_caller_is_refused_and_nothing_forks() {
    let r = refused(
        "refuse",
        "stage 1 (detach): refusing to fork a multi-threaded process (4 threads)",
    );
    assert_eq!(r.field("children"), "none", "no fork happened");
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "qemu-user 7.2 reports 0 threads in /proc/self/stat, so the count is unknown there"
)]
fn without_a_fork_stage_3_refuses_a_multi_threaded_process_and_changes_no_id() {
    // Stage 3's calls change the calling thread's ids alone: the other three threads
    // would stay root.
    require_root!();
    let r = refused(
        "never-ids",
        "stage 3 (process ids): refusing to change the ids of a multi-threaded process (only the calling thread would change) (4 threads)",
    );
    assert_eq!(r.field("uid"), "0 0 0 0", "no id changed");
    assert_eq!(r.field("gid"), "0 0 0 0");
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "qemu-user's /proc/self/task lists the emulator's own threads, and it has no /proc/thread-self"
)]
fn without_a_fork_and_with_the_opt_in_stage_3_changes_the_calling_thread_alone() {
    // `allow_threads` lets stage 3 run without a fork; its raw calls change this
    // thread, as its contract says, and the other threads stay root.
    require_root!();
    let dir = support::TempDir::new("threads-never-optin");
    let report = dir.join("report");
    let r = run_fields(threaded().arg("never-ids-optin").arg(&report));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let rep = support::report(&report);
    assert_eq!(rep["uid"], "65534 65534 65534 65534", "{rep:?}");
    assert_eq!(rep["gid"], "65534 65534 65534 65534", "{rep:?}");
    assert_eq!(rep["other_uid"], "0 0 0 0", "another thread: {rep:?}");
}

#[test]
fn with_the_opt_in_200_daemonizations_never_hang() {
    let r = run_fields(threaded().args(["optin", "200"]));
    assert_eq!(
        r.status,
        Some(0),
        "exit 9 is the watchdog (a hang): {}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.field("ok"), "200", "{}", r.stdout);
}
