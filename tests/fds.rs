//! Stage 8: inherited descriptors are closed, however high, by every method; the
//! ones to keep stay open.

mod support;

use support::{probe, run_fields, TempDir};

fn hard_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a local.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    #[allow(clippy::unnecessary_cast)] // rlim_t is 32-bit on 32-bit glibc
    let max = lim.rlim_max as u64;
    max
}

fn check_method(method: &str) {
    let top = (hard_nofile().min(1 << 20) - 1).to_string();
    let dir = TempDir::new("fds");
    let pid_path = dir.join("f.pid");
    let r = run_fields(probe().args([
        "--raise-nofile",
        "--open-fd",
        "1000",
        "--open-fd",
        &top,
        "--open-fd",
        "7",
        "--open-fd",
        "12",
        "--keep-fd",
        "12",
        "--pid-file",
        pid_path.to_str().unwrap(),
        "--close-method",
        method,
    ]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = r.pid();
    // 0-2 on /dev/null; above them the pid file (whatever its number: that depends on
    // what the launcher inherited) and the kept 12, at its number; 7, 1000 and the top
    // of the limit (all /dev/null too) closed.
    let files = support::open_files(pid);
    assert_eq!(
        files.get(&12).map(String::as_str),
        Some("/dev/null"),
        "method {method}: {files:?}"
    );
    support::assert_open_files(
        pid,
        ["/dev/null"; 3],
        &[pid_path.to_str().unwrap(), "/dev/null"],
    );
}

#[test]
fn close_range_closes_fd_1000_and_the_top_of_the_limit() {
    check_method("auto");
}

#[test]
fn without_close_range_proc_self_fd_is_read() {
    check_method("no-close-range");
}

#[test]
fn without_close_range_or_proc_a_bounded_loop_closes() {
    check_method("loop");
}

#[test]
fn inherited_file_keeps_its_identity() {
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new("inherit");
    // fd 9 open on a real file in the launcher: sh opens it, the probe keeps it.
    let file = dir.join("kept");
    std::fs::write(&file, "x").unwrap();
    let r = support::probe_via_sh(&dir, "--keep-fd 9", &format!("9<{}", file.display()));
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    let pid = r.pid();
    // Kept at its number; nothing else above 2.
    assert_eq!(support::fd_target(pid, 9), file.display().to_string());
    support::assert_open_files(pid, ["/dev/null"; 3], &[file.to_str().unwrap()]);
    let seen = std::fs::metadata(format!("/proc/{pid}/fd/9")).unwrap();
    assert_eq!(
        seen.ino(),
        std::fs::metadata(&file).unwrap().ino(),
        "same inode in the daemon"
    );
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "under qemu the probe opts out of the thread check (qemu hides the count)"
)]
fn without_proc_the_thread_check_refuses_and_the_loop_still_closes() {
    require_root!();
    // /proc unmounted in a private mount namespace: threads can't be counted.
    let r = run_fields(probe().args(["--no-proc", "--open-fd", "1000"]));
    assert_eq!(r.status, Some(3));
    assert_eq!(r.field("kind"), "ThreadsUnknown");
    // With the explicit opt-in, the daemon starts and the fallback closes fd 1000.
    let r = run_fields(probe().args([
        "--no-proc",
        "--allow-threads",
        "--open-fd",
        "1000",
        "--open-fd",
        "50",
        "--close-method",
        "no-close-range",
    ]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    support::assert_open_files(r.pid(), ["/dev/null"; 3], &[]);
}
