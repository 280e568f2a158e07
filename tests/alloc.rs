//! No allocation between fork and run(): the probe's global allocator aborts the
//! daemon on any allocation in that window (`PDM_ALLOC_TRAP=1`).

mod support;

use support::{probe, run_fields, Reaper, TempDir};

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
        cmd.args(["--user", "nobody"]);
    }
    let r = run_fields(&mut cmd);
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = reaper.add(r.pid());
    assert_eq!(support::read_pid(&pid_path), Some(pid));
    assert_eq!(r.field("output"), "set-up output\\n");
}

#[test]
fn the_trap_does_catch_an_allocation() {
    // The same trap fails a daemon that allocates in a stage: the test above can fail.
    let r = run_fields(
        probe()
            .env("PDM_ALLOC_TRAP", "1")
            .args(["--alloc-in-stage", "4"]),
    );
    assert_eq!(r.status, Some(3), "{}", r.stdout);
    assert_eq!(r.field("kind"), "DaemonDied");
    assert!(
        r.field("error").contains("ALLOCATION BETWEEN FORK AND RUN"),
        "{}",
        r.stdout
    );
    if let Ok(p) = r.field("daemon_pid").parse::<i32>() {
        support::wait_exit(p);
    }
}
