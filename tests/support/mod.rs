//! Shared test support: run helper programs (never fork in the harness) in a scope
//! that ends everything they leave behind, read what `/proc` says about a process.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{
    Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio,
};
use std::rc::Rc;
use std::time::{Duration, Instant};

pub mod tool;

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

/// A target binary's path as a shell command word, with the runner before it.
pub fn sh_target(path: &str) -> String {
    match runner() {
        Some(runner) => format!("{runner} {path}"),
        None => path.to_string(),
    }
}

/// The probe's extra arguments ([`probe`] and [`probe_via_sh`] add them): as a user
/// other than root, `--inspectable` (stage 2 makes the daemon non-dumpable, which hands
/// its `/proc/PID/{fd,fdinfo,cwd,environ}` to root; the probe makes itself dumpable
/// again at the start of run(), after recording `dumpable=` in its report).
pub fn probe_flags() -> &'static str {
    if is_root() {
        ""
    } else {
        "--inspectable"
    }
}

/// What `pdm-scope` must be given first (see `tests/helpers/scope.rs`).
const SCOPE_PROTOCOL: &str = "pdm-scope-2";

#[path = "../helpers/signal_names.rs"]
mod signal_names;

/// A test's scope: every helper program a test starts runs under a `pdm-scope`
/// process of its own (`tests/helpers/scope.rs`), a child subreaper, so the daemons a
/// helper leaves behind, reported or not, are reparented to it and reaped there, never
/// to the test. When the scope ends, each `pdm-scope` SIGKILLs and reaps all of its
/// remaining descendants, and the test waits for that.
///
/// The scope is the test's thread's (libtest runs each test on a thread of its own): it
/// begins with the first helper, and ends when the thread does (whether the test
/// passed, failed or panicked) or at [`end_scope`]. Should the whole test binary die
/// (SIGKILL, a runner's timeout), each `pdm-scope` gets SIGTERM from the kernel as its
/// parent thread goes (`PR_SET_PDEATHSIG`), and ends its descendants all the same.
///
/// Hence the rules: start helpers from the test's own thread, through [`probe`],
/// [`helper`] or [`host`], and run them with [`run`], [`run_fields`],
/// [`probe_via_sh`] or [`spawn`], never with `Command::output`/`status`/`spawn` (a
/// `pdm-scope` process lives as long as anything it holds). A daemon's parent is the
/// `pdm-scope` process that ran its launcher ([`Run::reaper`], [`Spawned::reaper`]),
/// not the test; [`wait_exit`] gives its exit status.
///
/// Under qemu-user an emulated `pdm-scope` can't become a subreaper: `ci/` names a host
/// build in `PANDAEMONIUM_TEST_SCOPE`, and target programs go after the runner.
struct Scope {
    dir: TempDir,
    /// The `pdm-scope` processes, our children, reaped only when the scope ends (so
    /// signalling one never reaches a reused pid).
    reapers: RefCell<Vec<Child>>,
    ended: Cell<bool>,
}

thread_local! {
    static SCOPE: RefCell<Option<Rc<Scope>>> = const { RefCell::new(None) };
}

/// This thread's scope, begun if need be.
fn scope() -> Rc<Scope> {
    SCOPE.with(|s| {
        Rc::clone(s.borrow_mut().get_or_insert_with(|| {
            Rc::new(Scope {
                dir: TempDir::new("scope"),
                reapers: RefCell::new(Vec::new()),
                ended: Cell::new(false),
            })
        }))
    })
}

/// Ends this test's scope now, as the end of the test would: every process its helpers
/// started, and all their descendants, are SIGKILLed and reaped when this returns
/// (their exit statuses are no longer known). The next helper begins a new scope.
pub fn end_scope() {
    if let Some(scope) = SCOPE.with(|s| s.borrow_mut().take()) {
        scope.end();
    }
}

impl Scope {
    /// A `pdm-scope` command that will run `words` (program and first arguments).
    fn command<S: AsRef<OsStr>>(&self, words: impl IntoIterator<Item = S>) -> Command {
        let mut cmd = match std::env::var_os("PANDAEMONIUM_TEST_SCOPE").filter(|s| !s.is_empty()) {
            Some(host_build) => Command::new(host_build),
            None => {
                assert!(
                    runner().is_none(),
                    "PANDAEMONIUM_TEST_RUNNER is set but PANDAEMONIUM_TEST_SCOPE is not: under \
                     qemu-user the scope must be a host build of tests/helpers/scope.rs (an \
                     emulated prctl(PR_SET_CHILD_SUBREAPER) fails); ci/setup-cross.sh installs \
                     one and ci/targets/*.env name it"
                );
                Command::new(helper_bin("pdm-scope"))
            }
        };
        cmd.arg(SCOPE_PROTOCOL)
            .arg(self.dir.path())
            .arg(std::process::id().to_string())
            .args(words);
        cmd
    }

    fn spawn(self: Rc<Scope>, cmd: &mut Command) -> Spawned {
        let mut child = cmd.spawn().expect("spawn pdm-scope");
        let reaper = child.id() as i32;
        let (stdin, stdout, mut stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let start = self.dir.join(format!("start-{reaper}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        let text = loop {
            if let Ok(text) = std::fs::read_to_string(&start) {
                break text;
            }
            if let Ok(Some(status)) = child.try_wait() {
                if let Ok(text) = std::fs::read_to_string(&start) {
                    break text;
                }
                let mut err = String::new();
                if let Some(e) = stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("pdm-scope ended ({status}) before starting {cmd:?}: {err}");
            }
            assert!(Instant::now() < deadline, "pdm-scope never started {cmd:?}");
            std::thread::sleep(Duration::from_millis(1));
        };
        self.reapers.borrow_mut().push(child);
        let pid = match text.trim_end().split_once('=') {
            Some(("pid", pid)) => pid.parse().unwrap(),
            _ => panic!("pdm-scope could not start {cmd:?}: {text}"),
        };
        Spawned {
            scope: self,
            pid,
            reaper,
            stdin,
            stdout,
            stderr,
        }
    }

    /// The raw wait status, in this platform's numbers, of `pid` if `pdm-scope` reaped
    /// it (it records `exit N`, `signal NAME` or `signal NAME core`).
    fn recorded(&self, pid: i32) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.join(format!("exit-{pid}"))).ok()?;
        let words: Vec<&str> = text.split_whitespace().collect();
        match words[..] {
            ["exit", code] => Some((code.parse::<i32>().ok()? & 0xff) << 8),
            ["signal", name] => signal_names::number(name),
            ["signal", name, "core"] => Some(signal_names::number(name)? | 0x80),
            _ => panic!("pdm-scope's record of {pid}: {text:?}"),
        }
    }

    /// SIGTERM to every `pdm-scope` process (each kills and reaps what it holds, then
    /// exits), and reaps them. Never panics: it runs while tests unwind.
    fn end(&self) {
        if self.ended.replace(true) {
            return;
        }
        let mut reapers = self.reapers.borrow_mut();
        for child in reapers.iter_mut() {
            if let Ok(None) = child.try_wait() {
                // SAFETY: kill with integer arguments; `child` is our unreaped child.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
        }
        for child in reapers.iter_mut() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while let Ok(None) = child.try_wait() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        self.end();
    }
}

/// A command for a helper binary of the target, through the runner when there is
/// one, in this test's scope.
pub fn helper(path: &str) -> Command {
    let mut words: Vec<String> = runner()
        .map(|r| r.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    words.push(path.to_string());
    scope().command(words)
}

/// A host program (`/bin/sh`, `unshare`), never through the runner, in this test's
/// scope.
pub fn host(program: &str) -> Command {
    scope().command([program])
}

/// The probe helper (`tests/helpers/probe.rs`), `--inspectable` when not root.
pub fn probe() -> Command {
    let mut cmd = helper(&helper_bin("pdm-probe"));
    cmd.args(probe_flags().split_whitespace());
    cmd
}

/// Starts `cmd` (made by [`helper`], [`host`] or [`probe`]); returns once `pdm-scope`
/// has started the program, and panics if it could not.
pub fn spawn(cmd: &mut Command) -> Spawned {
    scope().spawn(cmd)
}

/// Runs `cmd` to completion with stdin from /dev/null, capturing its output: the
/// program's exit status and output, as `Command::output` would give them.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn(cmd).wait_with_output()
}

/// [`run`], with the helper's stdout parsed as `key=value` lines.
pub fn run_fields(cmd: &mut Command) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawned = spawn(cmd);
    let reaper = spawned.reaper;
    let out = spawned.wait_with_output();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Run {
        status: out.status.code(),
        fields: fields(&stdout),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        reaper,
    }
}

/// Runs the probe as `/bin/sh -c "exec PROBE --out FILE ARGS REDIRECTIONS"`, for
/// launches whose descriptors the shell closes or opens (`<&- >&- 2>&-`, `9<file`). The
/// launcher's `key=value` results go to FILE, since its stdout may be closed.
pub fn probe_via_sh(dir: &TempDir, args: &str, redirections: &str) -> Run {
    let out = dir.join("probe-result");
    let cmd = format!(
        "exec {} --out {} {} {args} {redirections}",
        sh_target(&helper_bin("pdm-probe")),
        out.display(),
        probe_flags(),
    );
    let r = run_fields(host("/bin/sh").args(["-c", &cmd]));
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    Run {
        fields: fields(&stdout),
        stdout,
        ..r
    }
}

/// Waits for `pid`, a process of this test's scope, to exit; its exit status, or
/// 128+signal. `None` if it vanished without being reaped in the scope (its own parent
/// reaped it), or after a generous bound.
pub fn wait_exit(pid: i32) -> Option<i32> {
    let scope = scope();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(raw) = scope.recorded(pid) {
            return Some(code(raw));
        }
        // A record is written before its zombie is reaped: gone and still no record
        // means someone else reaped it.
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return scope.recorded(pid).map(code);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kept for older tests: the scope now kills and reaps everything a test's helpers
/// leave behind, reported or not, so there is nothing to register (and killing a pid
/// on drop could hit a reused one, since the scope reaps as soon as a daemon exits).
pub struct Reaper;

impl Reaper {
    pub fn new() -> Reaper {
        Reaper
    }
    /// Returns `pid`: every process of the scope is ended with it anyway.
    pub fn add(&mut self, pid: i32) -> i32 {
        pid
    }
}

/// A program started by [`spawn`]: its pid is the program's own (the process its
/// `pdm-scope` started), its status the program's.
pub struct Spawned {
    scope: Rc<Scope>,
    pid: i32,
    reaper: i32,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

impl Spawned {
    /// The program's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The `pdm-scope` process that started the program: the parent of the program
    /// and of every daemon it leaves behind.
    pub fn reaper(&self) -> i32 {
        self.reaper
    }

    /// The program's exit status, if it has exited (and was reaped).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.scope.recorded(self.pid).map(ExitStatus::from_raw)
    }

    /// Waits for the program to exit (closing its stdin first, as `Child::wait` does).
    pub fn wait(&mut self) -> ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            assert!(!self.scope.ended.get(), "pid {}: its scope ended", self.pid);
            assert!(Instant::now() < deadline, "pid {} never exited", self.pid);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILLs the program (through its `pdm-scope`, which knows whether it was
    /// reaped); nothing once the scope has ended.
    pub fn kill(&mut self) {
        if !self.scope.ended.get() {
            // SAFETY: kill with integer arguments; a scope reaps its pdm-scope
            // processes only when it ends, so this pid is still theirs.
            unsafe { libc::kill(self.reaper, libc::SIGUSR1) };
        }
    }

    /// Reads stdout and stderr (when piped) to the end, then waits for the program.
    pub fn wait_with_output(mut self) -> Output {
        drop(self.stdin.take());
        let err = self.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = e.read_to_end(&mut buf);
                buf
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut out) = self.stdout.take() {
            let _ = out.read_to_end(&mut stdout);
        }
        let stderr = err.map(|t| t.join().unwrap()).unwrap_or_default();
        Output {
            status: self.wait(),
            stdout,
            stderr,
        }
    }
}

/// `key=value` lines.
fn fields(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An exit status as the shell shows it: the code, or 128+signal.
fn code(raw: i32) -> i32 {
    if libc::WIFEXITED(raw) {
        libc::WEXITSTATUS(raw)
    } else {
        128 + libc::WTERMSIG(raw)
    }
}

/// A helper's result, with its stdout parsed as `key=value` lines.
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub fields: HashMap<String, String>,
    /// The `pdm-scope` process that ran the helper: the parent of the daemons it left.
    pub reaper: i32,
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

/// `/proc/PID/comm`, trimmed (empty when the process is gone).
pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The parent of `pid` (`/proc/PID/stat`).
pub fn ppid(pid: i32) -> i32 {
    stat_ids(pid).0
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
    open_files(pid).into_keys().collect()
}

/// The open descriptors of `pid`, each with what it points to (`/proc/PID/fd/N`).
pub fn open_files(pid: i32) -> BTreeMap<i32, String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            Some((fd, std::fs::read_link(e.path()).ok()?.display().to_string()))
        })
        .collect()
}

/// What descriptor `fd` of `pid` points to.
pub fn fd_target(pid: i32, fd: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Asserts what a daemon has open after stages 8 and 9: 0-2 point to `stdio`, and above
/// 2 exactly one descriptor for each of `files` (the pid file, a file kept by number...),
/// whatever its number, and nothing else.
///
/// A running program opens files of its own for a moment (`sleep` its locale files
/// after exec, the probe its report): what must hold is what stays open, so this waits
/// (boundedly) for the set to be the expected one, and fails with the last one read.
pub fn assert_open_files(pid: i32, stdio: [&str; 3], files: &[&str]) {
    let mut want: Vec<&str> = stdio.to_vec();
    let mut above_want = files.to_vec();
    above_want.sort_unstable();
    want.extend(above_want);
    let seen = |open: &BTreeMap<i32, String>| -> Vec<String> {
        let mut above: Vec<String> = open.range(3..).map(|(_, t)| t.clone()).collect();
        above.sort_unstable();
        (0..3)
            .map(|fd| open.get(&fd).cloned().unwrap_or_default())
            .chain(above)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open = open_files(pid);
        let now = seen(&open);
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "descriptors of {pid}: {open:?}\nexpected 0-2 on {stdio:?} and above 2 {files:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether this process may read `/proc/PID/fd` (a non-dumpable process's belongs to
/// root: as another user, only `stat`, `status`, `cmdline` and `limits` are readable).
pub fn inspectable(pid: i32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok()
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
/// write its reports there); removed on drop. Always created, never reused: `/tmp`
/// outlives runs and pids repeat, and a directory another user's run left under the
/// same name could be neither removed nor made writable.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        loop {
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let dir = std::env::temp_dir().join(format!("pdm-{tag}-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777))
                        .unwrap();
                    return TempDir(dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("creating {}: {e}", dir.display()),
            }
        }
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

/// A loopback TCP port below 1024 that nothing held when asked for, kept for one test:
/// found by binding and releasing it as root, from `first` on (each test starts from a
/// port of its own). Test processes running at once (two targets' suites in
/// `ci/cross.sh`) take the same numbers: the value holds an exclusive `flock` on a file
/// of the temporary directory until it is dropped, so no other test process picks a
/// port while the holder's daemon is yet to bind it. Keep it for the test's whole body.
pub struct LowPort {
    pub port: u16,
    _lock: std::fs::File,
}

pub fn low_port(first: u16) -> LowPort {
    use std::os::unix::io::AsRawFd;
    let path = std::env::temp_dir().join("pdm-low-ports.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: flock on the descriptor of `lock`, open for the call's duration.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(
        rc,
        0,
        "flock {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    let port = (first..1024)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free TCP port below 1024 on 127.0.0.1");
    LowPort { port, _lock: lock }
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
