//! Stage 2: no core dumps, also when `core_pattern` pipes cores to a program (which
//! ignores `RLIMIT_CORE`): the daemon is not dumpable.

mod support;

use support::{probe, run_fields, Reaper, TempDir};

fn dumpable(args: &[&str]) -> String {
    let dir = TempDir::new("dumpable");
    let report = dir.join("report");
    let mut reaper = Reaper::new();
    let r = run_fields(
        probe()
            .args(args)
            .args(["--report", report.to_str().unwrap()]),
    );
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    reaper.add(r.pid());
    support::report(&report)["dumpable"].clone()
}

#[test]
fn the_daemon_is_not_dumpable() {
    assert_eq!(dumpable(&[]), "0", "PR_GET_DUMPABLE in the daemon");
}

#[test]
fn allow_core_leaves_it_dumpable() {
    assert_eq!(dumpable(&["--allow-core"]), "1");
}
