//! The tool's failure paths that the core's cannot cover: its supervisor writes to the
//! original process after the core's channel has closed.

mod support;

use support::{wait_until, Reaper, TempDir};

use support::tool::TOOL;

fn sig_ignored(pid: i32, sig: i32) -> bool {
    let ign = u64::from_str_radix(&support::status(pid)["SigIgn"], 16).unwrap();
    ign & (1 << (sig - 1)) != 0
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "qemu-user shows its own signal state in /proc (host numbers, all fatal signals caught)"
)]
fn the_supervisor_ignores_sigpipe_and_its_program_does_not() {
    let dir = TempDir::new("tool-sigpipe");
    let pid_file = dir.join("p.pid");
    let mut reaper = Reaper::new();
    let out = support::run(support::helper(TOOL).args([
        "start",
        "--supervise",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--",
        "/bin/sleep",
        "1000",
    ]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&pid_file).unwrap();
    let pids: Vec<i32> = text.lines().map(|l| l.parse().unwrap()).collect();
    let (program, supervisor) = (pids[0], pids[1]);
    reaper.add(supervisor);
    reaper.add(program);
    wait_until("PROGRAM exec'd", || {
        std::fs::read_to_string(format!("/proc/{program}/comm")).is_ok_and(|c| c == "sleep\n")
    });
    // A launcher gone before the supervisor's "PROGRAM started" is an EPIPE to it.
    assert!(
        sig_ignored(supervisor, libc::SIGPIPE),
        "the supervisor ignores SIGPIPE"
    );
    assert!(
        !sig_ignored(program, libc::SIGPIPE),
        "PROGRAM gets the default back"
    );
}
