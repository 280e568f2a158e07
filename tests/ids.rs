//! Stage 3 as root: drop to nobody, with nobody's groups, and no way back.

mod support;

use support::{probe, run_fields, Reaper, TempDir};

#[test]
fn root_drops_to_nobody_and_cannot_regain_root() {
    require_root!();
    let dir = TempDir::new("ids");
    let rep = dir.join("rep");
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args(["--user", "nobody", "--report", rep.to_str().unwrap()]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = reaper.add(r.pid());
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
    let mut reaper = Reaper::new();
    // uid 65534 has a passwd entry (nobody): its groups replace root's.
    let r = run_fields(probe().args(["--ids", "65534:65534"]));
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    let pid = reaper.add(r.pid());
    let st = support::status(pid);
    assert_eq!(st["Groups"], "65534");
    // A uid without a passwd entry gets just its gid as supplementary group.
    let r = run_fields(probe().args(["--ids", "54321:54322"]));
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    let pid = reaper.add(r.pid());
    let st = support::status(pid);
    assert_eq!(st["Uid"].split_whitespace().next(), Some("54321"));
    assert_eq!(st["Gid"].split_whitespace().next(), Some("54322"));
    assert_eq!(st["Groups"], "54322");
}
