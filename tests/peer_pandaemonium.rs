//! pandaemonium's own suite (`pandaemonium/test/__main__.py` in ethanfurman/pandaemonium,
//! every stored version; earlier `pandaemonium_test.py`), ported to our API, plus the
//! behaviours of its `Daemon` and `PidLockFile` methods (`pandaemonium/__init__.py`,
//! PyPI 0.9.1) that the suite does not test. Daemons fork in `pdm-peer-pandaemonium`,
//! never here; the `PidLockFile` cases run in this process, which forks nothing.
//!
//! | their case | here | status |
//! |---|---|---|
//! | `TestFileTracker.test` | — | not applicable: `FileTracker` wraps Python's `open()` to list files for stage 8; we close descriptors by number (`close_range`), there is nothing to track |
//! | `TestPidLockFile.test_acquire_file_missing` | `test_acquire_file_missing` | ported |
//! | `TestPidLockFile.test_acquire_file_stale` (empty file) | `test_acquire_file_stale` | changed: taken over at once because nobody holds its lock (theirs waits up to a minute for a pid, then breaks the lock) |
//! | `TestPidLockFile.test_acquire_file_locked` | `test_acquire_file_locked` | changed: `seal(1)` (a foreign pid, to dodge their "third-party lock" rule) does not exist; `seal` writes our pid, and a second object in the same process is refused all the same |
//! | `TestPidLockFile.test_acquire_file_locked_with_timeout` | `test_acquire_file_locked_with_timeout`, `acquire_timeout_waits_for_the_holder` | ported (timeout a `Duration`, not minutes) |
//! | `TestPidLockFile.test_context_reentrant` | — | not applicable: no context manager and no `reentrant` flag; scope and `Drop` close the lock, `release` removes the file |
//! | `TestPidLockFile.test_context_not_reentrant_without_context_manager` | `test_context_not_reentrant_without_context_manager` | changed: sealing twice is `StageOrder` (their `LockError`), with no reentrant variant |
//! | `TestPidLockFile.test_context_not_reentrant` | `test_context_not_reentrant` | changed: acquiring a sealed (or acquired) object again is `StageOrder` (their `LockNotReentrant`) |
//! | `TestDaemon.test_target` | `test_target` | ported |
//! | `TestDaemon.test_run` | `test_run` | ported (`raise SystemExit` is `run()` returning 0) |
//! | `TestDaemon.test_failure` | `test_failure`, `test_failure_as_error`, `panic_in_a_stage_stays_in_the_daemon` | ported: the exception is a panic (`1 / 0`); Rust's other idiom, an `Err` from the stage, as well; a panic after stage 6 |
//! | `TestDaemon.test_pid_lock` | `test_pid_lock` | ported (a temp dir, not `/tmp/test_daemon.pid`) |
//! | `Daemon.activate` | `activate_returns_in_the_daemon` | ported |
//! | `Daemon.activate`, failed daemon | `activate_failure_exits_1` | changed: the original process exits 1 (theirs `os._exit(EX_OK)` whatever happened) |
//! | `Daemon.start`/`activate` twice (`DaemonError`) | `daemon_already_started`, `activate_returns_in_the_daemon` | ported: `StageOrder` |
//! | `check_stage` (stage twice, or in the parent) | `check_stage_twice` | ported: `StageOrder` |
//! | `Daemon.start`: any stderr output is a `DaemonError` | `setup_stderr_is_not_a_failure` | changed: the report channel decides; stderr is captured as `error` |
//! | `Daemon.run` without a target (`DaemonError('nothing to do')`) | — | not applicable: `target()` needs a function, `Run` needs `run` (compile time) |
//! | `PidLockFile(relative)` (`LockError`) | `relative_path_refused` | ported: `InvalidConfig` |
//! | `PidLockFile.seal` writes `PID\nTIMESTAMP` | `seal_writes_pid_only` | changed: timestamps are not written |
//! | `PidLockFile.read_pid` | `read_pid` | ported (reads their two-line format too) |
//! | `PidLockFile.is_active` / `is_stale` (`kill(pid, 0)`) | `is_active_is_the_lock`, `stale_is_nobody_holding_the_lock` | changed: liveness from the lock, not from the pid |
//! | `PidLockFile.acquire` "third-party lock" (file holds our pid or our parent's) | `stale_is_nobody_holding_the_lock` | changed: no exemption; unlocked is stale, locked is already running |
//! | `PidLockFile.is_primary` | `is_acquired` | ported |
//! | `PidLockFile.release` of an unowned lock (`LockError`) | `release_unowned` | changed: `Ok(false)`, the file left alone |
//! | `PidLockFile.release` when "hijacked" (another pid in the file) | `release_after_contents_rewritten` | changed: the file we locked is ours whatever it says, and is removed |
//! | `PidLockFile.break_lock`, `is_locked`, `__enter__`/`__exit__` | — | not applicable: no such API; `acquire` takes a stale file over |

mod support;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pandaemonium::{target, Daemon, ErrorKind, PidLockFile, Stage};
use support::TempDir;

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn me() -> u32 {
    std::process::id()
}

/// A pid file path in a fresh directory: (dir, path, path as a C string).
fn pid_path(tag: &str) -> (TempDir, PathBuf, CString) {
    let dir = TempDir::new(tag);
    let path = dir.join("test.pid");
    let c = cpath(&path);
    (dir, path, c)
}

/// Runs `pdm-peer-pandaemonium ARGS` to completion.
fn peer(args: &[&str]) -> support::Run {
    support::run_fields(support::helper(&support::helper_bin("pdm-peer-pandaemonium")).args(args))
}

/// How the helper prints captured text.
fn esc(s: &str) -> String {
    s.escape_default().to_string()
}

/// The daemon's pid as its stage 2 announced it (`daemon_pid=N`), in escaped captured
/// output or in plain helper stdout.
fn announced_pid(text: &str) -> i32 {
    let at = text
        .find("daemon_pid=")
        .unwrap_or_else(|| panic!("no daemon_pid= in {text}"));
    let digits: String = text[at + 11..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

fn ok(r: &support::Run) {
    assert_eq!(
        r.status,
        Some(0),
        "helper failed:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.field("result"), "ok", "{}", r.stdout);
}

// ---- TestDaemon ----------------------------------------------------------------------

/// pandaemonium/test/__main__.py: TestDaemon.test_target — `Daemon(target=leave_message,
/// stdout=w)`: the target runs in the daemon and what it prints comes out of the pipe.
#[test]
fn test_target() {
    let r = peer(&["target"]);
    let pid = r.pid();
    ok(&r);
    assert_eq!(r.field("message"), esc("Okay, I made it!  G'bye!\n"));
    assert_eq!(
        support::wait_exit(pid),
        Some(0),
        "the target's return is the exit status"
    );
}

/// pandaemonium/test/__main__.py: TestDaemon.test_run — a `Daemon` subclass overriding
/// `run` (here a `Run` impl), with stdout on a pipe; `raise SystemExit` is status 0.
#[test]
fn test_run() {
    let r = peer(&["run"]);
    let pid = r.pid();
    ok(&r);
    assert_eq!(r.field("message"), esc("Running like the wind!\n"));
    assert_eq!(support::wait_exit(pid), Some(0));
}

/// pandaemonium/test/__main__.py: TestDaemon.test_failure — `DeadDaemon.stage5` does
/// `1 / 0`; `start()` fails and the daemon's error output names the exception. In Rust
/// the exception is a panic ("attempt to divide by zero"): the daemon reports
/// `Panicked` in stage 5, removes what it made and exits; `run` never runs.
#[test]
fn test_failure() {
    let r = peer(&["failure"]);
    let pid = announced_pid(r.field("output"));
    assert_eq!(
        r.status,
        Some(0),
        "{}
{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.field("result"), "err", "start() must fail: {}", r.stdout);
    assert_eq!(r.field("kind"), "Panicked", "{}", r.stdout);
    assert_eq!(r.field("stage"), "5", "{}", r.stdout);
    assert_eq!(
        r.field("reported_pid"),
        pid.to_string(),
        "Daemon::daemon_pid"
    );
    assert!(
        r.field("error").contains("attempt to divide by zero"),
        "{}",
        r.field("error")
    );
    assert!(!r.field("output").contains("wow! it happenned!"));
    let status = support::wait_exit(pid);
    assert!(
        matches!(status, Some(s) if s != 0),
        "the daemon died: {status:?}"
    );
}

/// pandaemonium/test/__main__.py: TestDaemon.test_failure, with the exception after
/// stage 6 — a panic in stage 7 of a daemon with a pid file. Expected (lib.rs: "When a
/// stage fails in the daemon, the daemon removes its pid file, reports through the
/// channel and exits: nothing is left behind"; STYLE trap 14: "In the child, a panic must
/// become `_exit` with a report. It must never unwind."): the launcher's destructors do
/// not run in the daemon, the pid file is gone, the failure names stage 7.
#[test]
fn panic_in_a_stage_stays_in_the_daemon() {
    let dir = TempDir::new("pdm-panic-stage7");
    let (pidf, marker) = (dir.join("d.pid"), dir.join("marker"));
    let r = peer(&[
        "panic-stage7",
        pidf.to_str().unwrap(),
        marker.to_str().unwrap(),
    ]);
    let pid = announced_pid(r.field("output"));
    assert_eq!(r.field("result"), "err", "{}", r.stdout);
    let status = support::wait_exit(pid);
    assert!(matches!(status, Some(s) if s != 0), "{status:?}");
    assert!(
        !marker.exists(),
        "a value of the launcher's main() was dropped in the daemon: {:?}",
        std::fs::read_to_string(&marker)
    );
    assert!(!pidf.exists(), "the pid file was left behind");
    assert_eq!(
        r.field("stage"),
        "7",
        "the failure names the stage: {}",
        r.stdout
    );
}

/// pandaemonium/test/__main__.py: TestDaemon.test_failure — as above, with the stage
/// failing the Rust way (`Err` from the `stage5` override): `start()` returns that error
/// (stage 5, its message) and the daemon exits 1.
#[test]
fn test_failure_as_error() {
    let r = peer(&["failure-error"]);
    let pid = announced_pid(r.field("output"));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("result"), "err", "start() must fail: {}", r.stdout);
    assert_eq!(r.field("kind"), "Custom");
    assert_eq!(r.field("stage"), "5");
    assert_eq!(
        r.field("reported_pid"),
        pid.to_string(),
        "Daemon::daemon_pid"
    );
    assert!(
        r.field("detail").contains("ZeroDivisionError"),
        "{}",
        r.stdout
    );
    assert!(
        r.field("message")
            .starts_with("stage 5 (working directory): "),
        "{}",
        r.stdout
    );
    assert!(!r.field("output").contains("wow! it happenned!"));
    assert_eq!(support::wait_exit(pid), Some(1), "a failed daemon exits 1");
}

/// pandaemonium/test/__main__.py: TestDaemon.test_pid_lock — a target daemon with a pid
/// file starts and prints. Also seen: from inside, the file holds the daemon's pid and
/// is active; the daemon removes it when the target returns.
#[test]
fn test_pid_lock() {
    let (_dir, path, _) = pid_path("pdm-pid-lock");
    let r = peer(&["pid-lock", path.to_str().unwrap()]);
    let pid = r.pid();
    ok(&r);
    assert_eq!(
        r.field("message"),
        esc(&format!(
            "pid file must have worked!!\npid_file_pid=Some({pid})\npid_file_active=Some(true)\nmy_pid={pid}\n"
        ))
    );
    assert_eq!(support::wait_exit(pid), Some(0));
    assert!(
        !path.exists(),
        "the daemon removed its pid file on the way out"
    );
}

/// pandaemonium/__init__.py: Daemon.start — `start()` again is "daemon already
/// started/activated" (a `DaemonError`); ours is `StageOrder`.
#[test]
fn daemon_already_started() {
    let r = peer(&["target"]);
    let pid = r.pid();
    ok(&r);
    assert_eq!(r.field("second"), "StageOrder");
    assert_eq!(support::wait_exit(pid), Some(0));
}

/// pandaemonium/__init__.py: check_stage — a stage already run, or any stage in the
/// parent after detaching, is "Attempted to run stage N twice"; ours is `StageOrder`, in
/// the daemon (stages 2 and 4 after `stage(Umask)`) and in the original process.
#[test]
fn check_stage_twice() {
    let r = peer(&["check-stage"]);
    let pid = r.pid();
    ok(&r);
    assert_eq!(
        r.field("output"),
        esc(&format!(
            "daemon_pid={pid}\nagain_2=StageOrder\nagain_4=StageOrder\n"
        ))
    );
    assert_eq!(r.field("original_start"), "StageOrder");
    assert_eq!(r.field("original_stage"), "StageOrder");
    assert_eq!(
        support::wait_exit(pid),
        Some(0),
        "the daemon went on to start() and run()"
    );
}

/// pandaemonium/__init__.py: Daemon.start / monitor — set-up stdout and stderr are
/// captured as `output` and `error`. Changed: theirs raises `DaemonError` whenever
/// anything reached stderr; ours fails only on a failure the daemon reports, so a
/// warning on stderr is captured and the start succeeds.
#[test]
fn setup_stderr_is_not_a_failure() {
    let r = peer(&["capture"]);
    let pid = r.pid();
    ok(&r);
    assert_eq!(r.field("output"), esc(&format!("daemon_pid={pid}\n")));
    assert_eq!(
        r.field("error"),
        esc(&format!("set-up warning from {pid}\n"))
    );
    assert_eq!(support::wait_exit(pid), Some(0));
}

/// pandaemonium/__init__.py: Daemon.activate — returns in the daemon; the parent prints
/// the daemon's set-up output and error and exits `EX_OK`. A second `activate()` in the
/// daemon is "already started/activated" (`StageOrder`).
#[test]
fn activate_returns_in_the_daemon() {
    let dir = TempDir::new("pdm-activate");
    let (rep, pidf) = (dir.join("report"), dir.join("d.pid"));
    let r = peer(&["activate", rep.to_str().unwrap(), pidf.to_str().unwrap()]);
    let pid = announced_pid(&r.stdout);
    assert_eq!(
        r.status,
        Some(0),
        "the original exits 0:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(
        r.stdout,
        format!("daemon_pid={pid}\n"),
        "set-up output printed"
    );
    assert_eq!(
        r.stderr,
        format!("set-up warning from {pid}\n"),
        "set-up error printed"
    );

    let seen = support::report(&rep);
    assert_eq!(seen["pid"], pid.to_string());
    assert_eq!(seen["activated_pid"], pid.to_string());
    assert_eq!(seen["activate_twice"], "StageOrder");
    assert_eq!(support::read_pid(&pidf), Some(pid));
    if support::inspectable(pid) {
        assert!(
            support::holds_lock(pid, &pidf),
            "the daemon holds its pid file"
        );
    } else {
        // As a user other than root the (non-dumpable) daemon's descriptors are hidden:
        // the file is locked, and the original has exited, so the daemon holds it.
        assert!(support::is_locked(&pidf), "the daemon holds its pid file");
    }

    // SAFETY: kill with integer arguments; `pid` is our (reparented) daemon.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(support::wait_exit(pid), Some(128 + libc::SIGTERM));
    assert!(!pidf.exists(), "SIGTERM removed the pid file");
}

/// pandaemonium/__init__.py: Daemon.activate, failing daemon (stage 5: no such working
/// directory). Changed: theirs prints the error and exits `EX_OK` all the same; ours
/// prints it and exits 1. The failed daemon exits 1 and leaves nothing behind.
#[test]
fn activate_failure_exits_1() {
    let dir = TempDir::new("pdm-activate-fail");
    let (rep, pidf) = (dir.join("report"), dir.join("d.pid"));
    let r = peer(&[
        "activate",
        rep.to_str().unwrap(),
        pidf.to_str().unwrap(),
        "/nonexistent-pdm-peer",
    ]);
    let pid = announced_pid(&r.stdout);
    assert_eq!(r.status, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("stage 5 (working directory): chdir /nonexistent-pdm-peer"),
        "{}",
        r.stderr
    );
    assert_eq!(support::wait_exit(pid), Some(1));
    assert!(!rep.exists(), "activate() never returned in the daemon");
    assert!(!pidf.exists());
}

// ---- TestPidLockFile -----------------------------------------------------------------

/// pandaemonium/test/__main__.py: TestPidLockFile.test_acquire_file_missing — acquire
/// creates the file (empty: no pid until seal) and locks it; release removes it.
#[test]
fn test_acquire_file_missing() {
    let (_dir, path, c) = pid_path("pdm-missing");
    let mut plf = PidLockFile::new(&c, Duration::ZERO).unwrap();
    plf.acquire(None).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"");
    assert!(support::holds_lock(me() as i32, &path));
    assert!(plf.release().unwrap());
    assert!(!path.exists());
}

/// pandaemonium/test/__main__.py: TestPidLockFile.test_acquire_file_stale — an empty
/// file is stale. Changed: stale means nobody holds its lock, so it is taken over at
/// once (theirs waits up to a minute for a pid to appear, then breaks the lock).
#[test]
fn test_acquire_file_stale() {
    let (_dir, path, c) = pid_path("pdm-stale");
    std::fs::write(&path, "").unwrap();
    let mut plf = PidLockFile::new(&c, Duration::ZERO).unwrap();
    plf.acquire(None).unwrap();
    assert!(support::holds_lock(me() as i32, &path));
    assert!(plf.release().unwrap());
    assert!(!path.exists());
}

/// pandaemonium/test/__main__.py: TestPidLockFile.test_acquire_file_locked — a sealed
/// lock refuses a second `PidLockFile` (`AlreadyLocked`; ours `AlreadyRunning`, naming
/// the pid). Changed: theirs seals with a foreign pid (`seal(1)`) because a file holding
/// its own pid counts as a "third-party lock"; ours writes our pid and the second object,
/// in the same process, is refused all the same.
#[test]
fn test_acquire_file_locked() {
    let (_dir, path, c) = pid_path("pdm-locked");
    let mut locker = PidLockFile::new(&c, Duration::ZERO).unwrap();
    locker.seal().unwrap();
    let mut too_late = PidLockFile::new(&c, Duration::ZERO).unwrap();
    let e = too_late.acquire(None).unwrap_err();
    assert_eq!(
        (e.kind(), e.holder()),
        (ErrorKind::AlreadyRunning, Some(me())),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}\n", me())
    );
    assert!(locker.release().unwrap());
}

/// pandaemonium/test/__main__.py: TestPidLockFile.test_acquire_file_locked_with_timeout
/// — with a timeout, a lock that stays held still fails `AlreadyRunning` (their timeout
/// is in minutes; ours a `Duration`, given to `new` or to `acquire`).
#[test]
fn test_acquire_file_locked_with_timeout() {
    let (_dir, _path, c) = pid_path("pdm-locked-timeout");
    let mut locker = PidLockFile::new(&c, Duration::ZERO).unwrap();
    locker.seal().unwrap();
    let mut too_late = PidLockFile::new(&c, Duration::from_millis(200)).unwrap();
    let e = too_late.acquire(None).unwrap_err();
    assert_eq!(
        (e.kind(), e.holder()),
        (ErrorKind::AlreadyRunning, Some(me()))
    );
    let e = too_late
        .acquire(Some(Duration::from_millis(100)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyRunning);
    assert!(!too_late.is_acquired());
    assert!(locker.release().unwrap());
}

/// pandaemonium/__init__.py: PidLockFile.acquire — the timeout loop: a waiting acquire
/// gets the lock once the holder releases it (the holder is another thread here; no
/// timing is asserted, the 30 s is only an upper bound).
#[test]
fn acquire_timeout_waits_for_the_holder() {
    let (_dir, path, c) = pid_path("pdm-timeout-wait");
    let mut locker = PidLockFile::new(&c, Duration::ZERO).unwrap();
    locker.seal().unwrap();
    let mut waiter = PidLockFile::new(&c, Duration::from_secs(30)).unwrap();
    assert_eq!(
        waiter.acquire(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::AlreadyRunning,
        "held when the wait starts"
    );
    std::thread::scope(|s| {
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            assert!(locker.release().unwrap());
        });
        waiter.acquire(None).expect("acquired once the holder went");
    });
    assert!(support::holds_lock(me() as i32, &path));
    assert_eq!(waiter.seal().unwrap(), me());
    assert!(waiter.release().unwrap());
}

/// pandaemonium/test/__main__.py:
/// TestPidLockFile.test_context_not_reentrant_without_context_manager — sealing a sealed
/// lock again fails (their `LockError`). Changed: no reentrant flag; always `StageOrder`,
/// and the file and lock stay as they were.
#[test]
fn test_context_not_reentrant_without_context_manager() {
    let (_dir, path, c) = pid_path("pdm-seal-twice");
    let mut locker = PidLockFile::new(&c, Duration::ZERO).unwrap();
    locker.seal().unwrap();
    let e = locker.seal().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StageOrder, "{e}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}\n", me())
    );
    assert!(locker.is_acquired());
    assert!(support::holds_lock(me() as i32, &path));
    assert!(locker.release().unwrap());
}

/// pandaemonium/test/__main__.py: TestPidLockFile.test_context_not_reentrant — entering
/// a sealed, non-reentrant lock again fails (`LockNotReentrant`). Changed: acquiring a
/// sealed object again is `StageOrder`, as is acquiring an acquired one (their "lock
/// already acquired").
#[test]
fn test_context_not_reentrant() {
    let (_dir, path, c) = pid_path("pdm-acquire-twice");
    let mut locker = PidLockFile::new(&c, Duration::ZERO).unwrap();
    locker.seal().unwrap();
    assert_eq!(
        locker.acquire(None).unwrap_err().kind(),
        ErrorKind::StageOrder
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}\n", me())
    );
    assert!(locker.release().unwrap());

    let mut acquired = PidLockFile::new(&c, Duration::ZERO).unwrap();
    acquired.acquire(None).unwrap();
    assert_eq!(
        acquired.acquire(None).unwrap_err().kind(),
        ErrorKind::StageOrder
    );
    assert!(acquired.release().unwrap());
}

/// pandaemonium/__init__.py: PidLockFile.__init__ — a relative path is refused
/// (`LockError: ... is not an absolute path`); ours `InvalidConfig`, at `new` and at
/// `Daemon::pid_file`, before anything forks or is created.
#[test]
fn relative_path_refused() {
    for rel in [c"test.pid", c"./test.pid", c"run/test.pid", c""] {
        let e = PidLockFile::new(rel, Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{rel:?}");
        assert_eq!(e.stage(), Some(Stage::PidFile));
    }
    let mut daemon = Daemon::new(target(|(): ()| 0, ()));
    let e = daemon.pid_file(c"test.pid").expect_err("refused");
    assert!(e.to_string().contains("must be absolute"), "{e}");
    assert!(daemon.pid_file_ref().is_none());
}

/// pandaemonium/__init__.py: PidLockFile.seal — writes `PID\n` then a timestamp
/// (`%Y-%m-%d.%H:%M:%S`). Changed: timestamps are not written; the file is `PID\n`.
#[test]
fn seal_writes_pid_only() {
    let (_dir, path, c) = pid_path("pdm-seal");
    let mut plf = PidLockFile::new(&c, Duration::ZERO).unwrap();
    assert_eq!(plf.seal().unwrap(), me());
    assert_eq!(plf.sealed_pid(), Some(me()));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}\n", me())
    );
    assert!(plf.release().unwrap());
}

/// pandaemonium/__init__.py: PidLockFile.read_pid — the pid in the file, or None when
/// missing, empty or not a number; their two-line `PID\nTIMESTAMP` files read too.
#[test]
fn read_pid() {
    let (_dir, path, c) = pid_path("pdm-read-pid");
    let plf = PidLockFile::new(&c, Duration::ZERO).unwrap();
    assert_eq!(plf.read_pid().unwrap(), None, "missing");
    for junk in ["", "\n", "abc\n", "0\n", "-5\n"] {
        std::fs::write(&path, junk).unwrap();
        assert_eq!(plf.read_pid().unwrap(), None, "{junk:?}");
    }
    std::fs::write(&path, "1234\n2024-01-01.00:00:00").unwrap();
    assert_eq!(plf.read_pid().unwrap(), Some(1234), "pandaemonium's format");
    std::fs::write(&path, "4321").unwrap();
    assert_eq!(
        plf.read_pid().unwrap(),
        Some(4321),
        "no newline (FreeBSD's format)"
    );
    std::fs::remove_file(&path).unwrap();
    let mut sealer = PidLockFile::new(&c, Duration::ZERO).unwrap();
    sealer.seal().unwrap();
    assert_eq!(plf.read_pid().unwrap(), Some(me()));
    assert!(sealer.release().unwrap());
}

/// pandaemonium/__init__.py: PidLockFile.is_active — "the pid file exists and is not
/// stale" (a pid answering `kill(pid, 0)`). Changed: active means a live process holds
/// the lock, so a file naming a live pid (ours) is not active unless locked.
#[test]
fn is_active_is_the_lock() {
    let (_dir, path, c) = pid_path("pdm-is-active");
    let probe = PidLockFile::new(&c, Duration::ZERO).unwrap();
    assert!(!probe.is_active().unwrap(), "missing");
    std::fs::write(&path, format!("{}\n", me())).unwrap();
    assert!(
        !probe.is_active().unwrap(),
        "a live pid, but nobody holds the lock"
    );
    let mut holder = PidLockFile::new(&c, Duration::ZERO).unwrap();
    holder.seal().unwrap();
    assert!(probe.is_active().unwrap(), "held");
    assert!(holder.is_active().unwrap(), "held by this very object");
    assert!(holder.release().unwrap());
    assert!(!probe.is_active().unwrap(), "released and removed");
}

/// pandaemonium/__init__.py: PidLockFile.is_stale / acquire — stale was "empty for a
/// minute, or a pid with no such process", and a file naming our own pid or our
/// parent's was a "third-party lock" that acquire accepted without creating anything.
/// Changed: stale is nobody holding the lock, whatever pid the file names (ours, our
/// parent's, init's, one that can't exist); acquire takes it over and empties it.
#[test]
fn stale_is_nobody_holding_the_lock() {
    let (_dir, path, c) = pid_path("pdm-stale-pids");
    // SAFETY: getppid cannot fail.
    let parent = unsafe { libc::getppid() };
    for pid in [
        me().to_string(),
        parent.to_string(),
        "1".into(),
        "4194305".into(),
    ] {
        std::fs::write(&path, format!("{pid}\n")).unwrap();
        let mut plf = PidLockFile::new(&c, Duration::ZERO).unwrap();
        assert!(!plf.is_active().unwrap(), "pid {pid}: not active");
        plf.acquire(None)
            .unwrap_or_else(|e| panic!("pid {pid}: {e}"));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"",
            "pid {pid}: taken over, emptied"
        );
        assert!(plf.release().unwrap());
    }
}

/// pandaemonium/__init__.py: PidLockFile.is_primary — ours is `is_acquired`: false
/// before acquire, true while held (sealed or not), false after release.
#[test]
fn is_acquired() {
    let (_dir, _path, c) = pid_path("pdm-is-acquired");
    let mut plf = PidLockFile::new(&c, Duration::ZERO).unwrap();
    assert!(!plf.is_acquired());
    plf.acquire(None).unwrap();
    assert!(plf.is_acquired());
    plf.seal().unwrap();
    assert!(plf.is_acquired());
    assert!(plf.release().unwrap());
    assert!(!plf.is_acquired());
    assert_eq!(plf.sealed_pid(), None);
}

/// pandaemonium/__init__.py: PidLockFile.release of a lock never taken — theirs raises
/// `LockError('attempt to release unowned lock')`. Changed: `Ok(false)`, and the file
/// (someone else's) is left alone.
#[test]
fn release_unowned() {
    let (_dir, path, c) = pid_path("pdm-release-unowned");
    std::fs::write(&path, "4242\n").unwrap();
    let mut plf = PidLockFile::new(&c, Duration::ZERO).unwrap();
    assert!(!plf.release().unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242\n");
}

/// pandaemonium/__init__.py: PidLockFile.release when "hijacked" — another pid written
/// into our sealed file: theirs logs a warning and leaves it. Changed: ownership is the
/// lock on the file, not what it says; we still hold it, so release removes it.
#[test]
fn release_after_contents_rewritten() {
    let (_dir, path, c) = pid_path("pdm-hijacked");
    let mut plf = PidLockFile::new(&c, Duration::ZERO).unwrap();
    plf.seal().unwrap();
    std::fs::write(&path, "4242\n").unwrap(); // same file, new contents
    assert!(support::holds_lock(me() as i32, &path));
    assert!(plf.release().unwrap());
    assert!(!path.exists());
}
