//! Shared test support: run helper programs (never fork in the harness), reap every
//! daemon a test starts, read what `/proc` says about a process.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The runner `ci/` sets for a foreign target (e.g. `qemu-ppc -L /usr/powerpc-linux-gnu`):
/// it goes before our own (target) binaries, never before host programs.
pub fn runner() -> Option<String> {
    std::env::var("PANDAEMONIUM_TEST_RUNNER")
        .ok()
        .filter(|r| !r.trim().is_empty())
}

/// The path of a helper program (`pdm-probe`, `pdm-std`, ...): an example of this
/// crate, which `cargo test` builds into `examples/` beside the test binaries' `deps/`.
pub fn helper_bin(name: &str) -> String {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/.../deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{}: not built. `cargo test` builds the helper examples; with a test filter such as \
         `--test NAME`, run `cargo build --examples` (same target and features) first",
        path.display()
    );
    path.into_os_string()
        .into_string()
        .expect("a UTF-8 target directory")
}

/// A command for a helper binary of the target, through the runner when there is one.
pub fn helper(path: &str) -> Command {
    become_subreaper();
    match runner() {
        Some(runner) => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap());
            cmd.args(words).arg(path);
            cmd
        }
        None => Command::new(path),
    }
}

/// A host program (`/bin/sh`, `unshare`): never through the runner.
pub fn host(program: &str) -> Command {
    become_subreaper();
    Command::new(program)
}

/// A target binary's path as a shell command word, with the runner before it.
pub fn sh_target(path: &str) -> String {
    match runner() {
        Some(runner) => format!("{runner} {path}"),
        None => path.to_string(),
    }
}

/// The probe helper (`tests/helpers/probe.rs`).
pub fn probe() -> Command {
    helper(&helper_bin("pdm-probe"))
}

/// Makes the test process the reaper of the daemons its helpers leave behind, so a
/// test can wait for one to exit and learn its status (PID 1 here reaps slowly).
pub fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        // qemu-user refuses the call (EINVAL); ci/ then starts the harness through a
        // wrapper that already made it a subreaper, and says so.
        let preset = std::env::var_os("PANDAEMONIUM_TEST_SUBREAPER").is_some();
        assert!(
            r == 0 || preset,
            "PR_SET_CHILD_SUBREAPER: {}",
            std::io::Error::last_os_error()
        );
    });
}

/// Runs `cmd` to completion with stdin from /dev/null, capturing output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("spawn helper")
}

/// A helper's result, with its stdout parsed as `key=value` lines.
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub fields: HashMap<String, String>,
}

impl Run {
    pub fn field(&self, key: &str) -> &str {
        self.fields.get(key).map(String::as_str).unwrap_or_else(|| {
            panic!(
                "no {key}= in helper output:\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
    pub fn pid(&self) -> i32 {
        self.field("pid").parse().unwrap()
    }
}

pub fn run_fields(cmd: &mut Command) -> Run {
    let out = run(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let fields = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Run {
        status: out.status.code(),
        stdout,
        stderr,
        fields,
    }
}

/// Runs the probe as `/bin/sh -c "exec PROBE --out FILE ARGS REDIRECTIONS"`, for
/// launches whose descriptors the shell closes or opens (`<&- >&- 2>&-`, `9<file`). The
/// launcher's `key=value` results go to FILE, since its stdout may be closed.
pub fn probe_via_sh(dir: &TempDir, args: &str, redirections: &str) -> Run {
    let out = dir.join("probe-result");
    let cmd = format!(
        "exec {} --out {} {args} {redirections}",
        sh_target(&helper_bin("pdm-probe")),
        out.display()
    );
    let status = host("/bin/sh")
        .args(["-c", &cmd])
        .status()
        .expect("spawn /bin/sh");
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    let fields = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Run {
        status: status.code(),
        stdout,
        stderr: String::new(),
        fields,
    }
}

/// Kills (SIGKILL) and reaps a daemon when dropped, even when the test fails.
pub struct Reaper(pub Vec<i32>);

impl Reaper {
    pub fn new() -> Reaper {
        Reaper(Vec::new())
    }
    pub fn add(&mut self, pid: i32) -> i32 {
        self.0.push(pid);
        pid
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if pid > 1 {
                // SAFETY: kill with integer arguments.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                wait_exit(pid);
            }
        }
    }
}

/// Waits for `pid` (reparented to us, the subreaper) to exit; its exit status, or
/// 128+signal. `None` if it is not our child (then waits for it to vanish).
pub fn wait_exit(pid: i32) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only into status.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            });
        }
        if r == -1 {
            // Not our child: wait for it to vanish (or become a zombie).
            if !alive(pid) || Instant::now() > deadline {
                return None;
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let after = &s[s.rfind(')').unwrap() + 2..];
            !after.starts_with('Z') && !after.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Polls `cond` until it holds; panics with `what` after a generous bound (a guard
/// against hanging, never a timing assertion).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `/proc/PID/status` as a map (`Umask`, `SigBlk`, `SigIgn`, `Uid`, `Gid`, `Groups`...).
pub fn status(pid: i32) -> HashMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// Fields 4.. of `/proc/PID/stat`: (ppid, pgrp, session, tty_nr).
pub fn stat_ids(pid: i32) -> (i32, i32, i32, i32) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split_whitespace().collect();
    (
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
        f[4].parse().unwrap(),
    )
}

/// The open descriptors of `pid`, sorted.
pub fn fds(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort();
    v
}

/// What descriptor `fd` of `pid` points to.
pub fn fd_target(pid: i32, fd: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// `/proc/PID/cwd`.
pub fn cwd(pid: i32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap()
}

/// The "Max core file size" soft and hard limits from `/proc/PID/limits`.
pub fn core_limits(pid: i32) -> (String, String) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = s
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let f: Vec<&str> = line["Max core file size".len()..]
        .split_whitespace()
        .collect();
    (f[0].to_string(), f[1].to_string())
}

/// Whether some open file description holds a lock on `path`: asks the kernel with
/// `F_OFD_GETLK` on a descriptor of our own, the question the library's locks answer to.
/// (`/proc/locks` is no oracle: it is read in pages while other processes add and drop
/// locks, and a line can slip between two reads.)
pub fn is_locked(path: &Path) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    // SAFETY: all-zero bytes are a valid struct flock.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    // SAFETY: file's descriptor is open and fl is a valid, writable struct flock.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    assert_eq!(
        rc,
        0,
        "F_OFD_GETLK {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    fl.l_type != libc::F_UNLCK as _
}

/// Whether process `pid` holds a lock on `path` through a descriptor of its own: the
/// `lock:` lines of `/proc/PID/fdinfo/N` (`/proc/locks` shows an OFD lock's owner as -1).
pub fn holds_lock(pid: i32, path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        std::fs::read_link(e.path()).is_ok_and(|t| t == path)
            && std::fs::read_to_string(format!(
                "/proc/{pid}/fdinfo/{}",
                e.file_name().to_string_lossy()
            ))
            .is_ok_and(|info| info.lines().any(|l| l.starts_with("lock:")))
    })
}

/// A daemon's `key=value` report file (the probe's `--report`), once it exists.
pub fn report(path: &Path) -> HashMap<String, String> {
    wait_until("the daemon's report", || path.exists());
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A fresh directory under /tmp, world-writable (a daemon that dropped to nobody can
/// write its reports there); removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("pdm-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        TempDir(dir)
    }
    pub fn join(&self, name: impl AsRef<OsStr>) -> PathBuf {
        self.0.join(name.as_ref())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads a pid file's number.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .trim_end_matches('\n')
        .parse()
        .ok()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Skips (returns from) a test that needs root, saying so.
#[macro_export]
macro_rules! require_root {
    () => {
        if !support::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// Whether this run is under qemu-user (`--cfg qemu`).
pub const QEMU: bool = cfg!(qemu);
