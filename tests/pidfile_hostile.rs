//! Pid files that are not what they seem: hard links to other files, stale files of
//! another user, and files locked by other programs with `flock(2)` or POSIX `fcntl`
//! locks (FreeBSD's pidfile(3), util-linux `flock`, Python's `fcntl.lockf`).

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use support::{probe, run_fields, wait_until, Reaper, TempDir};

fn tool(args: &[&str]) -> (Option<i32>, String, String) {
    let out = support::tool::run(args);
    (out.code, out.stdout, out.stderr)
}

#[test]
fn a_hard_linked_pid_file_is_refused_and_the_other_file_untouched() {
    let dir = TempDir::new("hardlink");
    let secret = dir.join("secret");
    fs::write(&secret, b"top secret\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let pid_path = dir.join("x.pid");
    fs::hard_link(&secret, &pid_path).unwrap();
    let r = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(r.status, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("stage"), "6");
    assert_eq!(r.field("errno"), libc::EMLINK.to_string());
    assert_eq!(
        r.field("message"),
        format!(
            "stage 6 (pid file): refusing a file with other hard links: {}: Too many links (os error {})",
            pid_path.display(),
            libc::EMLINK
        )
    );
    if let Ok(pid) = r.field("daemon_pid").parse::<i32>() {
        support::wait_exit(pid);
    }
    assert_eq!(fs::read(&secret).unwrap(), b"top secret\n", "content kept");
    let meta = fs::metadata(&secret).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "mode kept");
    assert_eq!(meta.nlink(), 2, "both names still there");
}

#[test]
fn a_stale_file_of_another_user_is_replaced_not_rewritten() {
    require_root!();
    let dir = TempDir::new("otheruser");
    let pid_path = dir.join("x.pid");
    fs::write(&pid_path, b"12345\n").unwrap();
    fs::set_permissions(&pid_path, fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::chown(&pid_path, Some(65534), Some(65534)).unwrap();
    // Keep the old inode open, to look at it afterwards.
    let old = fs::File::open(&pid_path).unwrap();
    let old_ino = old.metadata().unwrap().ino();
    let mut reaper = Reaper::new();
    let r = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = reaper.add(r.pid());
    let new = fs::metadata(&pid_path).unwrap();
    assert_ne!(new.ino(), old_ino, "a new file took the name");
    assert_eq!(new.uid(), 0);
    assert_eq!(support::read_pid(&pid_path), Some(pid));
    let before = old.metadata().unwrap();
    assert_eq!(
        (before.uid(), before.mode() & 0o777, before.len()),
        (65534, 0o666, 6),
        "the other user's file was neither emptied nor re-moded"
    );
    let mut text = String::new();
    std::io::Read::read_to_string(&mut &old, &mut text).unwrap();
    assert_eq!(text, "12345\n");
}

/// A lock holder that is not ours (ended with the test's scope).
struct Holder(support::Spawned);

impl Holder {
    /// Runs `cmd`, then waits until `ready` exists (the holder has its lock).
    fn start(cmd: &mut Command, ready: &Path) -> Holder {
        let holder = Holder(support::spawn(cmd.stdin(Stdio::null())));
        wait_until("the foreign holder to take its lock", || ready.exists());
        holder
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().is_none()
    }
}

#[test]
fn a_flock_holder_counts_as_running() {
    let dir = TempDir::new("flock");
    let pid_path = dir.join("f.pid");
    let ready = dir.join("ready");
    let mut holder = Holder::start(
        support::host("flock").arg(&pid_path).args([
            "-c",
            &format!("touch '{}'; exec sleep 300", ready.display()),
        ]),
        &ready,
    );
    // The core: acquire refuses.
    let r = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(r.status, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("kind"), "AlreadyRunning", "{}", r.stdout);
    // The tool: running, shown by the lock's holders (the file names no pid), whom
    // stop signals.
    let (code, out, err) = tool(&["status", "--pid-file", pid_path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let shown: Vec<i32> = out.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert!(shown.contains(&holder.0.pid()), "{out}");
    let (code, _, err) = tool(&["stop", "--pid-file", pid_path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    // The lock goes when the holder's descriptors are closed, a moment before it
    // becomes a zombie its parent can reap: wait for that, do not sample it.
    wait_until("flock to end (stop signalled it)", || !holder.alive());
    assert!(
        !pid_path.exists(),
        "and its file removed once nobody held it"
    );
}

#[test]
fn a_posix_lockf_holder_counts_as_running_and_stop_signals_it() {
    let dir = TempDir::new("lockf");
    let pid_path = dir.join("l.pid");
    let ready = dir.join("ready");
    let script = "import fcntl, os, sys, time\n\
                  f = open(sys.argv[1], 'w')\n\
                  f.write('%d\\n' % os.getpid()); f.flush()\n\
                  fcntl.lockf(f, fcntl.LOCK_EX)\n\
                  open(sys.argv[2], 'w').close()\n\
                  time.sleep(300)\n";
    let mut holder = Holder::start(
        support::host("python3")
            .args(["-c", script])
            .arg(&pid_path)
            .arg(&ready),
        &ready,
    );
    let holder_pid = holder.0.pid();
    let r = run_fields(probe().args(["--pid-file", pid_path.to_str().unwrap()]));
    assert_eq!(r.status, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("kind"), "AlreadyRunning");
    assert_eq!(r.field("holder"), holder_pid.to_string());
    let (code, out, err) = tool(&["status", "--pid-file", pid_path.to_str().unwrap()]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), &*holder_pid.to_string()),
        "{err}"
    );
    let (code, _, err) = tool(&["stop", "--pid-file", pid_path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    wait_until("the holder to end (stop signalled it)", || !holder.alive());
}
