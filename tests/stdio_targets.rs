//! Stage 9's targets as a user means them: `Stdio::Fd(1)` and `Fd(2)` are the
//! launcher's stdout and stderr, a relative path is the launcher's working directory's,
//! a log of 2 GiB or more opens and grows on 32-bit targets, and what `print!` left
//! buffered reaches the file when `run()` returns.

mod support;

use std::fs;
use std::path::Path;

use support::{alive, probe, run_fields, wait_exit, wait_until, Reaper, TempDir};

/// Waits until `path` holds `text` or the daemon `pid` is gone; whether it holds it.
fn file_gets(path: &Path, text: &str, pid: i32) -> bool {
    let has = || fs::read_to_string(path).is_ok_and(|t| t.contains(text));
    wait_until("the text in the file, or the daemon's death", || {
        has() || !alive(pid)
    });
    has()
}

#[test]
fn fd_1_and_2_are_the_launchers_stdout_and_stderr() {
    let dir = TempDir::new("fd12");
    let err = dir.join("launcher-stderr");
    let report = dir.join("report");
    let mut reaper = Reaper::new();
    let r = support::probe_via_sh(
        &dir,
        &format!(
            "--stdout fd:1 --stderr fd:2 --write-line-in-run from-the-daemon --report {}",
            report.display()
        ),
        &format!("2>{}", err.display()),
    );
    assert_eq!(r.status, Some(0), "{}", r.stdout);
    let pid = reaper.add(r.pid());
    assert!(
        file_gets(&err, "from-the-daemon", pid),
        "the daemon's stderr is the launcher's (and the daemon is alive): {:?}",
        fs::read_to_string(&err)
    );
    // The launcher's stdout is the file its results went to (`probe_via_sh`).
    assert!(
        file_gets(&dir.join("probe-result"), "from-the-daemon", pid),
        "the daemon's stdout is the launcher's"
    );
    // The copies made before the report pipes took 1 and 2 are closed after stage 9.
    assert_eq!(support::report(&report)["fds"], "0,1,2");
    assert!(alive(pid));
}

#[test]
fn relative_paths_are_the_launchers_working_directorys() {
    let dir = TempDir::new("relative");
    let name = format!("pdm-rel-{}.log", std::process::id());
    fs::write(dir.join("in.txt"), b"input\n").unwrap();
    let mut reaper = Reaper::new();
    let r = run_fields(probe().current_dir(dir.path()).args([
        "--stdout",
        &name,
        "--stdin",
        "in.txt",
        "--write-in-run",
        "relative",
    ]));
    let stray = Path::new("/").join(&name);
    let stray_existed = stray.exists();
    let _ = fs::remove_file(&stray);
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = reaper.add(r.pid());
    assert!(
        !stray_existed,
        "stage 9 opened the log in / (stage 5's directory)"
    );
    assert!(file_gets(&dir.join(&name), "relative", pid));
    let r = run_fields(
        probe()
            .current_dir(dir.path())
            .args(["--stdout", "no-such-dir/x.log"]),
    );
    assert_eq!(r.status, Some(3), "{}", r.stdout);
    assert_eq!(
        r.field("message"),
        "stage 9 (redirect stdio): open no-such-dir/x.log for stdout: No such file or directory (os error 2)"
    );
    if let Ok(p) = r.field("daemon_pid").parse::<i32>() {
        wait_exit(p);
    }
}

#[test]
fn the_tools_relative_log_is_in_the_callers_directory() {
    let dir = TempDir::new("tool-relative");
    let name = format!("pdm-tool-rel-{}.log", std::process::id());
    let out = support::run(
        support::helper(env!("CARGO_BIN_EXE_pandaemonium"))
            .current_dir(dir.path())
            .args([
                "start",
                "--stdout",
                &name,
                "--",
                "/bin/echo",
                "from-the-program",
            ]),
    );
    let stray = Path::new("/").join(&name);
    let stray_existed = stray.exists();
    let _ = fs::remove_file(&stray);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stray_existed, "the tool's --stdout landed in /");
    wait_until("the program's output", || {
        fs::read_to_string(dir.join(&name)).is_ok_and(|t| t == "from-the-program\n")
    });
}

#[test]
fn a_log_of_3_gib_opens_and_grows() {
    let dir = TempDir::new("largefile");
    let log = dir.join("big.log");
    let size: u64 = 3 << 30;
    fs::File::create(&log).unwrap().set_len(size).unwrap(); // sparse
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args([
        "--stdout",
        log.to_str().unwrap(),
        "--write-in-run",
        "beyond-3-gib",
    ]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = reaper.add(r.pid());
    let grown = size + "beyond-3-gib".len() as u64;
    wait_until(
        "the line appended past 3 GiB, or the daemon's death",
        || fs::metadata(&log).unwrap().len() == grown || !alive(pid),
    );
    assert_eq!(fs::metadata(&log).unwrap().len(), grown);
    assert!(alive(pid), "no SIGXFSZ / EFBIG");
}

// The core flushes std's stdout only when built with its `std` feature.
#[cfg(feature = "std")]
#[test]
#[cfg_attr(
    qemu,
    ignore = "the helpers opt out of the thread check under qemu-user (the guest reads 0 threads), and with allow_threads the daemon leaves std's stdout alone by design"
)]
fn what_print_left_buffered_is_written_when_run_returns() {
    let dir = TempDir::new("flush");
    let log = dir.join("p.log");
    let r = run_fields(probe().args([
        "--stdout",
        log.to_str().unwrap(),
        "--print-in-run",
        "printed without a newline",
        "--exit",
        "0",
    ]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(wait_exit(r.pid()), Some(0));
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "printed without a newline"
    );
}

#[cfg(feature = "std")]
#[test]
#[cfg_attr(
    qemu,
    ignore = "the helpers opt out of the thread check under qemu-user (the guest reads 0 threads), and with allow_threads the daemon leaves std's stdout alone by design"
)]
fn the_builders_closure_output_is_flushed_too() {
    let dir = TempDir::new("flush-std");
    let r = run_fields(
        support::helper(&support::helper_bin("pdm-std"))
            .arg("print")
            .arg(dir.path()),
    );
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(wait_exit(r.pid()), Some(0));
    assert_eq!(
        fs::read_to_string(dir.join("print.log")).unwrap(),
        "printed without a newline"
    );
}

#[test]
fn a_relative_log_in_a_directory_the_launcher_may_not_read() {
    require_root!();
    // The launcher's directory is opened O_PATH: search permission is enough, as it is
    // for opening the log by name. (As root every directory is readable: the launcher
    // runs as nobody here.)
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("wx-dir");
    let inner = dir.join("wx");
    fs::create_dir(&inner).unwrap();
    fs::set_permissions(&inner, fs::Permissions::from_mode(0o333)).unwrap();
    let mut reaper = Reaper::new();
    let mut cmd = probe();
    std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
    std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
    let r = run_fields(cmd.current_dir(&inner).args([
        "--stdout",
        "rel.log",
        "--write-in-run",
        "unreadable-dir",
    ]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = reaper.add(r.pid());
    assert!(file_gets(&inner.join("rel.log"), "unreadable-dir", pid));
}
