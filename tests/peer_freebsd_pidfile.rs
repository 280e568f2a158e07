//! FreeBSD's own pidfile(3) tests, `lib/libutil/tests/pidfile_test.c` (freebsd-src),
//! ported to [`PidLockFile`]: `pidfile_open` is `new` + `acquire` (the `other` pid is
//! [`Error::holder`](pandaemonium::Error::holder)), `pidfile_write` is `seal`,
//! `pidfile_remove` is `release`, `pidfile_close` is dropping the object.
//!
//! | FreeBSD case | here |
//! |---|---|
//! | `pidfile_uncontested` | ported: `pidfile_uncontested` |
//! | `pidfile_self` | ported: `pidfile_self` |
//! | `pidfile_contested` | ported: `pidfile_contested` (the fork in `pdm-peer-pidfile`) |
//! | `pidfile_inherited` | ported: `pidfile_inherited` (the fork in `pdm-peer-pidfile`) |
//! | `pidfile_relative` | changed: relative paths are refused at `PidLockFile::new` |
//! | `pidfile_verify()` (pidfile.c, no test of its own) | `pidfile_verify_replaced`, `pidfile_verify_removed` |
//!
//! The cases that need a second process fork in the helper, never here; the others
//! run in this process, which forks nothing.

mod support;

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use pandaemonium::{Config, ErrorKind, PidLockFile, Stage};
use support::TempDir;

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn me() -> u32 {
    std::process::id()
}

/// FreeBSD's `common_test_pidfile_child()`: runs the helper in `mode` on `path`, calls
/// `inspect` while the child holds the lock (after the helper's own attempt), then lets
/// the helper SIGINT and reap its child. Returns the helper's `key=value` lines, plus
/// `helper=PID`.
fn common_test_pidfile_child(
    mode: &str,
    path: &Path,
    inspect: impl FnOnce(&HashMap<String, String>),
) -> HashMap<String, String> {
    let mut proc = support::spawn(
        support::helper(&support::helper_bin("pdm-peer-pidfile"))
            .arg(mode)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let helper = proc.pid();
    let mut fields = HashMap::from([("helper".to_string(), helper.to_string())]);
    let mut out = BufReader::new(proc.stdout.take().unwrap());
    let mut stderr = proc.stderr.take().unwrap();
    let mut read_fields = |until: Option<&str>, fields: &mut HashMap<String, String>| {
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                if let Some(key) = until {
                    let mut err = String::new();
                    let _ = stderr.read_to_string(&mut err);
                    panic!("helper ended before {key}=: {fields:?}\nstderr: {err}");
                }
                return;
            }
            if let Some((k, v)) = line.trim_end().split_once('=') {
                fields.insert(k.to_string(), v.to_string());
                if until == Some(k) {
                    return;
                }
            }
        }
    };
    read_fields(Some("ready"), &mut fields);
    inspect(&fields);
    // Go on: the helper sends SIGINT to its child and reaps it.
    let mut stdin = proc.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    read_fields(None, &mut fields);
    let status = proc.wait().code();
    let mut err = String::new();
    let _ = stderr.read_to_string(&mut err);
    assert_eq!(status, Some(0), "helper failed: {fields:?}\nstderr: {err}");
    fields
}

/// FreeBSD lib/libutil/tests/pidfile_test.c: pidfile_uncontested — a pid file is
/// created, the pid written to it, and removed.
#[test]
fn pidfile_uncontested() {
    let dir = TempDir::new("fbsd-uncontested");
    let path = dir.join("test_pidfile_uncontested");
    let c = cpath(&path);
    let mut pf = PidLockFile::new(&c, Duration::ZERO).unwrap();
    pf.acquire(None).expect("pidfile exists and is locked");
    assert_eq!(pf.seal().expect("failed to write PID"), me());
    // FreeBSD writes the bare number; we add a newline.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}\n", me())
    );
    assert!(support::holds_lock(me() as i32, &path), "the lock is ours");
    assert!(pf.release().unwrap(), "release removes our file");
    assert!(!path.exists());
}

/// FreeBSD lib/libutil/tests/pidfile_test.c: pidfile_self — the same pid file opened
/// twice by one process: the second open fails and names the first's pid, ours.
#[test]
fn pidfile_self() {
    let dir = TempDir::new("fbsd-self");
    let path = dir.join("test_pidfile_self");
    let c = cpath(&path);
    let mut pf1 = PidLockFile::new(&c, Duration::ZERO).unwrap();
    pf1.acquire(None).expect("pidfile exists and is locked");
    pf1.seal().unwrap();

    // "second open should fail"
    let mut pf2 = PidLockFile::new(&c, Duration::ZERO).unwrap();
    let e = pf2
        .acquire(None)
        .expect_err("managed to opened pidfile twice");
    assert_eq!(e.kind(), ErrorKind::AlreadyRunning, "{e}");
    assert_eq!(e.holder(), Some(me()), "pidfile contained wrong PID");
    assert!(
        e.to_string()
            .contains(&format!("already running (pid {})", me())),
        "{e}"
    );
    assert!(!pf2.is_acquired());

    // The failed attempt changed nothing: the first still holds it, its pid intact.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}\n", me())
    );
    assert!(pf1.is_acquired());
    assert!(support::holds_lock(me() as i32, &path));
    assert!(pf1.release().unwrap());
    assert!(!path.exists());
}

/// FreeBSD lib/libutil/tests/pidfile_test.c: pidfile_contested — a child process
/// holds the pid file; the parent's attempt fails and names the child's pid.
#[test]
fn pidfile_contested() {
    let dir = TempDir::new("fbsd-contested");
    let path = dir.join("test_pidfile_contested");
    let f = common_test_pidfile_child("contested", &path, |f| {
        let child: i32 = f["child"].parse().unwrap();
        let helper: i32 = f["helper"].parse().unwrap();
        assert_eq!(
            f["attempt"], "AlreadyRunning",
            "managed to lock contested pidfile: {f:?}"
        );
        assert_eq!(
            f["holder"],
            child.to_string(),
            "pidfile contained wrong PID: {f:?}"
        );
        // Seen from a third process: the child's pid in the file, the lock the child's.
        assert_eq!(support::read_pid(&path), Some(child));
        assert!(
            support::holds_lock(child, &path),
            "the child holds the lock"
        );
        assert!(!support::holds_lock(helper, &path), "the parent does not");
        assert!(support::is_locked(&path), "the kernel reports it locked");
        let c = cpath(&path);
        let mut third = PidLockFile::new(&c, Duration::ZERO).unwrap();
        assert!(third.is_active().unwrap());
        assert_eq!(third.read_pid().unwrap(), Some(child as u32));
        let e = third.acquire(None).unwrap_err();
        assert_eq!(
            (e.kind(), e.holder()),
            (ErrorKind::AlreadyRunning, Some(child as u32))
        );
    });
    assert_eq!(
        f.get("child_exit").map(String::as_str),
        Some("0"),
        "child's fate: {f:?}"
    );
    // The lock went with the child; the file it left (FreeBSD unlinks it) is stale.
    let c = cpath(&path);
    assert!(!PidLockFile::new(&c, Duration::ZERO)
        .unwrap()
        .is_active()
        .unwrap());
    assert!(!support::is_locked(&path));
}

/// FreeBSD lib/libutil/tests/pidfile_test.c: pidfile_inherited — the parent opens the
/// pid file, forks and closes its copy; the lock, inherited by the child (which writes
/// its pid), is still held while the child lives, and the parent's attempt fails naming
/// the child.
#[test]
fn pidfile_inherited() {
    let dir = TempDir::new("fbsd-inherited");
    let path = dir.join("test_pidfile_inherited");
    let f = common_test_pidfile_child("inherited", &path, |f| {
        let child: i32 = f["child"].parse().unwrap();
        let helper: i32 = f["helper"].parse().unwrap();
        assert_eq!(
            f["attempt"], "AlreadyRunning",
            "managed to lock contested pidfile: {f:?}"
        );
        assert_eq!(
            f["holder"],
            child.to_string(),
            "pidfile contained wrong PID: {f:?}"
        );
        assert_eq!(
            support::read_pid(&path),
            Some(child),
            "the child sealed the inherited lock"
        );
        assert!(
            support::holds_lock(child, &path),
            "the inherited lock is held by the child"
        );
        assert!(
            !support::holds_lock(helper, &path),
            "the parent closed its copy"
        );
        let c = cpath(&path);
        assert!(PidLockFile::new(&c, Duration::ZERO)
            .unwrap()
            .is_active()
            .unwrap());
    });
    assert_eq!(
        f.get("child_exit").map(String::as_str),
        Some("0"),
        "child's fate: {f:?}"
    );
    let c = cpath(&path);
    assert!(
        !PidLockFile::new(&c, Duration::ZERO)
            .unwrap()
            .is_active()
            .unwrap(),
        "the last copy of the lock went with the child"
    );
}

/// FreeBSD lib/libutil/tests/pidfile_test.c: pidfile_relative — FreeBSD accepts a pid
/// file path relative to the working directory. Changed: our rule is absolute paths
/// only, so a relative path is refused at `PidLockFile::new` (and by
/// `Config::pid_file`) with `InvalidConfig`, before anything is created.
#[test]
fn pidfile_relative() {
    let rel = c"pidfile_relative.pdm-peer/pidfile";
    let e = PidLockFile::new(rel, Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert_eq!(e.stage(), Some(Stage::PidFile));
    let shown = e.to_string();
    assert!(shown.contains("must be absolute"), "{shown}");
    assert!(
        shown.contains("pidfile_relative.pdm-peer/pidfile"),
        "names the path: {shown}"
    );
    for other in [c"./pidfile", c"pidfile", c""] {
        let e = PidLockFile::new(other, Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{other:?}");
    }
    let mut config = Config::default();
    let e = config
        .pid_file(rel)
        .expect_err("Config::pid_file refuses it too");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(config.pid_file_ref().is_none());
    assert!(
        !Path::new("pidfile_relative.pdm-peer").exists(),
        "nothing created"
    );
}

/// FreeBSD lib/libutil/pidfile.c: pidfile_verify — `pidfile_write` and
/// `pidfile_remove` first check the file is still the one opened. Here the pid file is
/// replaced by someone else's between acquire and seal: seal refuses (`ESTALE`) rather
/// than write into their file, and release leaves their file alone. (FreeBSD checks the
/// remembered descriptor, so its `pidfile_remove` would unlink the replacement; we check
/// that the path still names the locked file.)
#[test]
fn pidfile_verify_replaced() {
    let dir = TempDir::new("fbsd-verify-replaced");
    let path = dir.join("test_pidfile_verify");
    let c = cpath(&path);
    let mut pf = PidLockFile::new(&c, Duration::ZERO).unwrap();
    pf.acquire(None).unwrap();

    let theirs = dir.join("theirs");
    std::fs::write(&theirs, "4242\n").unwrap();
    std::fs::rename(&theirs, &path).unwrap();

    let e = pf.seal().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Os, "{e}");
    assert_eq!(e.errno().map(|n| n.raw()), Some(libc::ESTALE), "{e}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "4242\n",
        "their file untouched"
    );

    assert!(!pf.release().unwrap(), "release does not remove their file");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242\n");
    assert!(!pf.is_acquired());
}

/// FreeBSD lib/libutil/pidfile.c: pidfile_verify — the sealed pid file is removed by
/// someone else (and then replaced): release removes nothing and creates nothing.
#[test]
fn pidfile_verify_removed() {
    let dir = TempDir::new("fbsd-verify-removed");
    let path = dir.join("test_pidfile_verify");
    let c = cpath(&path);
    let mut pf = PidLockFile::new(&c, Duration::ZERO).unwrap();
    pf.seal().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(!pf.release().unwrap(), "nothing of ours to remove");
    assert!(!path.exists(), "release created nothing");

    // Sealed, then replaced: their file survives our release.
    let mut pf = PidLockFile::new(&c, Duration::ZERO).unwrap();
    pf.seal().unwrap();
    let theirs = dir.join("theirs");
    std::fs::write(&theirs, "4343\n").unwrap();
    std::fs::rename(&theirs, &path).unwrap();
    assert!(!pf.release().unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "4343\n");
}
