//! `PidLockFile::holders`: the processes that hold a pid file's lock, whatever pid the
//! file names, for each kind of lock (OFD, POSIX `fcntl`, `flock`), and only those.

mod support;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use pandaemonium::PidLockFile;
use support::{host, spawn, wait_until, TempDir};

fn pid_file(path: &Path) -> PidLockFile {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    PidLockFile::new(&c, Duration::ZERO).unwrap()
}

fn holders(path: &Path) -> Vec<u32> {
    pid_file(path).holders().unwrap().pids().to_vec()
}

/// A python3 process holding a POSIX `fcntl.lockf` lock on `path` (until the scope ends).
fn lockf_holder(path: &Path) -> support::Spawned {
    spawn(
        host("python3")
            .arg("-c")
            .arg(
                "import fcntl, sys, time\n\
                 f = open(sys.argv[1], 'r+')\n\
                 fcntl.lockf(f, fcntl.LOCK_EX)\n\
                 time.sleep(300)\n",
            )
            .arg(path),
    )
}

fn ppid(pid: u32) -> u32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn an_ofd_lock_of_this_process_makes_it_the_holder() {
    let dir = TempDir::new("holders-ofd");
    let path = dir.join("p.pid");
    let mut ours = pid_file(&path);
    assert_eq!(holders(&path), Vec::<u32>::new(), "missing file");
    assert!(ours.holders().unwrap().is_empty());
    ours.acquire(None).unwrap();
    // Beside us, only a child another test forked that has not exec'd yet may hold
    // our close-on-exec descriptor, for a moment.
    let me = std::process::id();
    let found = holders(&path);
    assert!(found.contains(&me), "{found:?}");
    let ours_or_gone = |p: u32| {
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
            return true; // gone
        };
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        p == me || after.split(' ').nth(1) == Some(me.to_string().as_str())
    };
    assert!(found.iter().all(|&p| ours_or_gone(p)), "{found:?}");
    ours.release().unwrap();
    support::wait_until("no holder", || holders(&path).is_empty());
}

#[test]
fn flock_holders_are_the_command_and_its_child() {
    let dir = TempDir::new("holders-flock");
    let path = dir.join("p.pid");
    fs::write(&path, "1\n").unwrap();
    let flock = spawn(host("flock").arg(&path).args(["sleep", "300"]));
    let parent = flock.pid() as u32;
    wait_until("flock and its sleep hold the lock", || {
        holders(&path).len() == 2
    });
    let found = holders(&path);
    assert!(found.contains(&parent), "{found:?} lacks flock {parent}");
    let child = *found.iter().find(|&&p| p != parent).unwrap();
    assert_eq!(ppid(child), parent, "the other holder is flock's child");
    let file = pid_file(&path);
    assert!(file.is_held_by(parent).unwrap() && file.is_held_by(child).unwrap());
    assert!(
        !file.is_held_by(std::process::id()).unwrap(),
        "we hold nothing"
    );
    assert!(!file.holders().unwrap().is_empty());
    assert!(!found.contains(&1), "the pid in the file (1) holds nothing");
}

#[test]
fn a_posix_lock_holder_is_found() {
    let dir = TempDir::new("holders-posix");
    let path = dir.join("p.pid");
    fs::write(&path, "").unwrap();
    let py = lockf_holder(&path);
    let pid = py.pid() as u32;
    wait_until("python's lockf", || holders(&path) == [pid]);
}

#[test]
fn an_open_descriptor_without_a_lock_is_not_a_holder() {
    let dir = TempDir::new("holders-open");
    let path = dir.join("p.pid");
    fs::write(&path, "").unwrap();
    let reader = spawn(
        host("sh")
            .args(["-c", "exec 3<\"$1\"; exec sleep 300", "sh"])
            .arg(&path),
    );
    let pid = reader.pid();
    wait_until("sleep has the file open", || {
        support::open_files(pid)
            .values()
            .any(|t| Path::new(t) == path)
    });
    assert_eq!(holders(&path), Vec::<u32>::new());
    // A lock taken elsewhere meanwhile: only its holders count.
    let flock = spawn(host("flock").arg(&path).args(["sleep", "300"]));
    wait_until("flock and its sleep hold the lock", || {
        holders(&path).len() == 2
    });
    assert!(holders(&path).contains(&(flock.pid() as u32)));
    assert!(!holders(&path).contains(&(pid as u32)));
}

#[test]
fn the_child_of_a_program_that_exited_holds_the_lock() {
    let dir = TempDir::new("holders-orphan");
    let path = dir.join("p.pid");
    fs::write(&path, "").unwrap();
    // flock runs sh, which starts sleep and exits; flock then exits too. sleep keeps
    // the inherited descriptor, and with it the lock.
    let out = support::run(host("flock").arg(&path).args([
        "sh",
        "-c",
        "sleep 300 >/dev/null 2>&1 & echo $!",
    ]));
    assert!(out.status.success(), "{out:?}");
    let sleep: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    wait_until("only sleep holds the lock", || holders(&path) == [sleep]);
}

#[test]
fn remove_if_stale_keeps_a_file_held_by_flock_or_posix_locks() {
    let dir = TempDir::new("holders-stale");
    let (by_flock, by_lockf) = (dir.join("f.pid"), dir.join("l.pid"));
    assert!(!pid_file(&by_flock).remove_if_stale().unwrap(), "missing");
    fs::write(&by_flock, "999999\n").unwrap();
    fs::write(&by_lockf, "999999\n").unwrap();
    let flock = spawn(host("flock").arg(&by_flock).args(["sleep", "300"]));
    let py = lockf_holder(&by_lockf);
    wait_until("flock's lock", || {
        holders(&by_flock).contains(&(flock.pid() as u32))
    });
    wait_until("python's lockf", || holders(&by_lockf) == [py.pid() as u32]);
    for path in [&by_flock, &by_lockf] {
        assert!(!pid_file(path).remove_if_stale().unwrap(), "{path:?}");
        assert!(path.exists(), "{path:?}");
    }
}

#[test]
fn remove_if_stale_removes_a_stale_file_and_leaves_a_held_one() {
    let dir = TempDir::new("holders-stale2");
    let path = dir.join("p.pid");
    fs::write(&path, "999999\n").unwrap();
    assert!(pid_file(&path).remove_if_stale().unwrap());
    assert!(!path.exists());
    let mut ours = pid_file(&path);
    ours.acquire(None).unwrap();
    assert!(
        !pid_file(&path).remove_if_stale().unwrap(),
        "held by our OFD lock"
    );
    assert!(
        !ours.remove_if_stale().unwrap(),
        "not for the holder itself"
    );
    assert!(path.exists());
    ours.release().unwrap();
}

/// More holders than `HOLDERS_CAPACITY`: the list is full and says it was cut.
#[test]
fn more_holders_than_the_capacity_are_said_to_be_cut() {
    let dir = TempDir::new("holders-many");
    let path = dir.join("p.pid");
    fs::write(&path, "").unwrap();
    let n = pandaemonium::HOLDERS_CAPACITY + 2;
    // One flock, shared by the python process and its forked children.
    let _py = spawn(
        host("python3")
            .arg("-c")
            .arg(
                "import fcntl, os, sys, time\n\
                 f = open(sys.argv[1], 'r+')\n\
                 fcntl.flock(f, fcntl.LOCK_EX)\n\
                 for _ in range(int(sys.argv[2])):\n\
                 \x20   if os.fork() == 0:\n\
                 \x20       time.sleep(300)\n\
                 \x20       os._exit(0)\n\
                 time.sleep(300)\n",
            )
            .arg(&path)
            .arg((n - 1).to_string()),
    );
    wait_until("the capacity's worth of holders", || {
        pid_file(&path).holders().unwrap().truncated()
    });
    let h = pid_file(&path).holders().unwrap();
    assert_eq!(h.pids().len(), pandaemonium::HOLDERS_CAPACITY);
    // Fewer than the capacity: not cut.
    let dir2 = TempDir::new("holders-few");
    let path2 = dir2.join("p.pid");
    fs::write(&path2, "").unwrap();
    let _flock = spawn(host("flock").arg(&path2).args(["sleep", "300"]));
    wait_until("flock and its sleep", || holders(&path2).len() == 2);
    assert!(!pid_file(&path2).holders().unwrap().truncated());
}

/// Processes whose descriptors this user may not list are counted, not guessed at:
/// as a user other than root, root's processes (PID 1 among them) are unseen.
#[test]
fn processes_this_user_cannot_inspect_are_counted() {
    let dir = TempDir::new("holders-unseen");
    let path = dir.join("p.pid");
    fs::write(&path, "").unwrap();
    let h = pid_file(&path).holders().unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(h.unseen() > 0, "PID 1's descriptors are root's");
    } else {
        // Root sees every process: none unseen but those that exited meanwhile.
        assert!(h.unseen() < 64, "{}", h.unseen());
    }
    assert!(h.is_empty());
}
