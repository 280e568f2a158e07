//! Set-up output beyond the capture's capacity: kept up to `CAPTURE_CAPACITY` bytes,
//! and the truncation is visible (in `Started`, on failure, and in `report()`).

mod support;

use pandaemonium::CAPTURE_CAPACITY;
use support::{probe, run_fields, Reaper};

#[test]
fn output_that_fills_the_capture_exactly_is_not_truncated() {
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args(["--say-bytes", &CAPTURE_CAPACITY.to_string()]));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    reaper.add(r.pid());
    assert_eq!(r.field("output").len(), CAPTURE_CAPACITY);
    assert_eq!(r.field("output_truncated"), "false");
    assert_eq!(r.field("error_truncated"), "false");
}

#[test]
fn one_byte_more_is_truncated() {
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args(["--say-bytes", &(CAPTURE_CAPACITY + 1).to_string()]));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    reaper.add(r.pid());
    assert_eq!(r.field("output").len(), CAPTURE_CAPACITY);
    assert_eq!(r.field("output_truncated"), "true");
}

#[test]
fn truncation_is_visible_when_start_fails() {
    let r = run_fields(probe().args(["--say-bytes", "10000", "--fail-stage", "3"]));
    assert_eq!(r.status, Some(3), "{}", r.stderr);
    assert_eq!(r.field("output_truncated"), "true");
    if let Ok(p) = r.field("daemon_pid").parse::<i32>() {
        support::wait_exit(p);
    }
}

#[test]
fn report_says_the_output_was_cut() {
    // The daemon's run() returns at once (`--exit 0`): report() does not say its pid.
    let out =
        support::run(probe().args(["--mode", "report", "--say-bytes", "5000", "--exit", "0"]));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.ends_with(&"x".repeat(CAPTURE_CAPACITY)),
        "report() prints the captured output"
    );
    assert!(
        stderr.contains(&format!(
            "(the daemon's set-up stdout was cut at {CAPTURE_CAPACITY} bytes)"
        )),
        "{stderr}"
    );
}

#[test]
fn far_more_output_than_a_pipe_holds_neither_blocks_nor_is_kept() {
    // 200 KB of set-up output: the original keeps reading (and dropping) it while it
    // waits for the status records, so the daemon never blocks on a full pipe.
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args(["--say-bytes", "200000", "--say-err", "after"]));
    assert_eq!(r.status, Some(0), "{}", r.stderr);
    reaper.add(r.pid());
    assert_eq!(r.field("output").len(), CAPTURE_CAPACITY);
    assert_eq!(r.field("output_truncated"), "true");
    assert_eq!(r.field("error"), "after\\n");
}
