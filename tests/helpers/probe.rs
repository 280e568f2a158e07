//! Test helper: a daemon configured from argv, driven by the integration tests.
//!
//! The launcher prints `key=value` lines: `result=ok pid=N output=... error=...`, or
//! `result=err message=... stage=N errno=E kind=K holder=H exit=Some(Code(N))`. Exit codes: 0 started, 3 start
//! failed, 2 bad usage, 9 watchdog. The daemon's run() writes a report file when
//! `--report PATH` is given (what it sees from inside), then waits for signals.
//!
//! With `PDM_ALLOC_TRAP=1` the C allocator (which Rust's goes through) aborts the
//! daemon on any allocation or deallocation between fork and run() (`alloc_trap.rs`).

use std::ffi::{c_int, CString};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use pandaemonium::{
    Action, Capabilities, Capability, CloseMethod, Daemon, Detach, Error, PidLockFile, ProcessIds,
    Run, Side, Signal, Stage, Stages, Stdio,
};

#[path = "alloc_trap.rs"]
mod alloc_trap;
#[path = "qemu.rs"]
mod qemu;

/// What the probe daemon does, and its stage overrides.
#[derive(Default)]
struct Probe {
    report: Option<CString>,
    say: Option<CString>,
    say_err: Option<CString>,
    fail_stage: u8,
    alloc_stage: u8,
    run: RunMode,
    marker: Option<CString>,
    /// `--wait-in-stage N:DIR`: in stage N, write `DIR/in-stage` (our pid), wait for
    /// `DIR/go`, then write `resumed` to stdout and stderr (set-up output).
    wait_stage: u8,
    wait_dir: Option<String>,
    /// `--die-in-stage N`: SIGKILL ourselves in stage N.
    die_stage: u8,
    /// `--abort-in-stage N`: `abort()` in stage N (what a panic does with panic=abort).
    abort_stage: u8,
    /// `--panic-in-stage N` (10: in `run()`).
    panic_stage: u8,
    /// `--libc-malloc-in-stage N`: `libc::malloc` + `libc::free` in stage N.
    libc_malloc_stage: u8,
    /// `--free-in-stage N`: frees, in stage N, a box allocated before fork.
    free_stage: u8,
    preallocated: Option<Box<[u8; 64]>>,
    /// `--say-bytes N`: N bytes of `x` on stdout in stage 2.
    say_bytes: usize,
    /// `--print-in-run TEXT`: `print!` (buffered, no newline) in run().
    print_in_run: Option<String>,
    /// `--write-in-run TEXT`: raw `write` of TEXT to fds 1 and 2 at the start of run().
    write_in_run: Option<CString>,
    /// `--inspectable`: after recording it, make the daemon dumpable again at the start
    /// of run(), so a test running as the same (non-root) user can read its
    /// `/proc/PID/fd`, `fdinfo` and `cwd` (stage 2 makes it non-dumpable).
    inspectable: bool,
    /// `--poll-fail`: the original process's monitor gets a `poll` error.
    poll_fail: bool,
    /// `--open-in-stage N`: in stage N, open `/dev/null` and say `stage_fd=FD` on
    /// stdout (set-up output): where a file opened by a stage override lands.
    open_stage: u8,
    /// `--skip-detach`: stage 1's override does not call `detach()` (the process
    /// becomes the daemon where it is).
    skip_detach: bool,
    /// What `Run::monitor` was handed, in the original process (stdout chunks).
    monitored: Vec<u8>,
    /// What `Stages::is_detached` said in stage 2 (in the report).
    detached: bool,
    /// `--detach-in-stage N`: stage N's override calls `detach()` (refused once the
    /// process is the daemon); its answer goes to set-up stdout.
    detach_stage: u8,
    /// `--say-err-in-stage N:TEXT`: TEXT and a newline on stderr in stage N's override,
    /// before the stage's own work.
    say_err_stage: u8,
    say_err_text: Option<CString>,
    /// `--fork-holder-in-stage N:PATH`: stage N's override forks a child that keeps
    /// 0-2 and its descriptor of PATH (the pid file: the lock goes with it), closes the
    /// others (the status pipe among them) and sleeps; `N:all` keeps them all.
    fork_holder_stage: u8,
    fork_holder_path: Option<String>,
    /// `--fake-detached-in-stage N`: stage N's override fails with an error of kind
    /// `Detached` (the driver's own marker), which must still count as a failure.
    fake_detached_stage: u8,
    /// `--bind PORT`: run() binds a TCP socket to 127.0.0.1:PORT and reports
    /// `bind=ok` or `bind=ERRNO`.
    bind_port: Option<u16>,
    /// `--try-open PATH`: run() opens PATH for reading and reports `open=ok` or
    /// `open=ERRNO`.
    try_open: Option<CString>,
    /// `--exec-in-run PROGRAM ARG...` (the rest of the arguments): run() execs it after
    /// its report.
    exec_in_run: Vec<CString>,
    /// The file of `--run-signal-log`, `--run-accept`, `--run-tick`.
    run_file: Option<String>,
}

#[derive(Clone, Copy, Default)]
enum RunMode {
    #[default]
    Wait,
    Exit(i32),
    /// `--run-signal-log FILE`: reads the signal pipe, appends each signal's number to
    /// FILE as a line; returns 0 after SIGTERM.
    SignalLog,
    /// `--run-accept FILE`: a blocking `accept()` on 127.0.0.1; when a signal
    /// interrupts it, writes `accept=ERRNO flag=BOOL` to FILE and returns 0.
    Accept,
    /// `--run-tick FILE`: whenever FILE exists, writes `tick` to stdout and removes it.
    Tick,
}

static USR1_SEEN: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: c_int) {
    INTERRUPTED.store(true, SeqCst);
}

/// Appends `line` and a newline to `path`.
fn append(path: &str, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}
extern "C" fn on_usr1(_: c_int) {
    USR1_SEEN.store(true, SeqCst);
}

fn raw_write(fd: c_int, bytes: &[u8]) {
    // SAFETY: writing a valid buffer.
    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

impl Probe {
    fn hook(&mut self, n: u8) -> Result<(), Error> {
        if self.fork_holder_stage == n {
            let keep = std::path::PathBuf::from(self.fork_holder_path.as_deref().unwrap());
            // SAFETY: the daemon is single-threaded; the child reads /proc, closes,
            // sleeps and exits.
            if unsafe { libc::fork() } == 0 {
                // Keeps 0-2 too (set-up output still goes to the original then); with
                // PATH `all`, keeps every descriptor (the status pipe among them).
                let upto = if keep.as_os_str() == "all" { 3 } else { 1024 };
                for fd in 3..upto {
                    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"));
                    if target.is_ok_and(|t| t != keep) {
                        // SAFETY: closing a descriptor of this child's own.
                        unsafe { libc::close(fd) };
                    }
                }
                // SAFETY: sleep and _exit take integers.
                unsafe {
                    libc::sleep(60);
                    libc::_exit(0)
                }
            }
        }
        if n == 2 {
            if let Some(s) = &self.say {
                raw_write(1, s.as_bytes());
            }
            if let Some(s) = &self.say_err {
                raw_write(2, s.as_bytes());
            }
        }
        if self.wait_stage == n {
            let dir = self.wait_dir.as_deref().unwrap();
            // SAFETY: getpid cannot fail.
            let pid = unsafe { libc::getpid() };
            write_atomically(&format!("{dir}/in-stage"), &format!("{pid}\n"));
            let go = format!("{dir}/go");
            while !std::path::Path::new(&go).exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            raw_write(1, b"resumed\n");
            raw_write(2, b"resumed\n");
        }
        if self.die_stage == n {
            // SAFETY: kill with integer arguments.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        if self.abort_stage == n {
            std::process::abort();
        }
        if self.panic_stage == n {
            panic!("probe: panicking in stage {n} on purpose");
        }
        if self.libc_malloc_stage == n {
            // SAFETY: a fresh allocation, freed at once.
            unsafe {
                let p = libc::malloc(64);
                std::hint::black_box(p);
                libc::free(p);
            }
        }
        if self.free_stage == n {
            drop(self.preallocated.take());
        }
        if self.open_stage == n {
            // SAFETY: open with a valid path; the descriptor is closed below.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
            raw_write(1, format!("stage_fd={fd}\n").as_bytes());
            // SAFETY: closing the descriptor opened above.
            unsafe { libc::close(fd) };
        }
        if n == 2 && self.say_bytes > 0 {
            raw_write(1, &vec![b'x'; self.say_bytes]);
        }
        if self.alloc_stage == n {
            // Deliberately allocate between fork and run(): the trap must catch this.
            let v: Vec<u8> = Vec::with_capacity(64);
            std::hint::black_box(v);
        }
        if self.say_err_stage == n {
            if let Some(t) = &self.say_err_text {
                raw_write(2, t.as_bytes());
            }
        }
        if self.fake_detached_stage == n {
            return Err(Error::new(
                Stage::from_number(n),
                pandaemonium::ErrorKind::Detached,
                "an override's own Detached error",
            ));
        }
        if self.fail_stage == n {
            raw_write(2, b"probe: failing on purpose\n");
            return Err(Error::custom(
                Stage::from_number(n).unwrap(),
                None,
                "probe failure",
            ));
        }
        Ok(())
    }
}

impl Run for Probe {
    fn run(&mut self) -> i32 {
        alloc_trap::in_run();
        // SAFETY: prctl with integer arguments only.
        let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        if self.inspectable {
            // SAFETY: as above.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        }
        if let Some(text) = &self.write_in_run {
            raw_write(1, text.as_bytes());
            raw_write(2, text.as_bytes());
        }
        if let Some(text) = &self.print_in_run {
            print!("{text}");
        }
        if self.panic_stage == 10 {
            panic!("probe: panicking in run() on purpose");
        }
        if let Some(path) = &self.report {
            let mut text = String::new();
            // SAFETY: setuid/umask/getpid take ints.
            let (setuid0, pid) = unsafe { (libc::setuid(0), libc::getpid()) };
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            text += &format!(
                "pid={pid}\nsetuid0={setuid0}\nsetuid0_errno={}\n",
                if setuid0 == 0 { 0 } else { errno }
            );
            for name in ["TSTP", "TTIN", "TTOU", "TERM", "HUP", "PIPE", "RTMAX"] {
                let sig = Signal::parse(name).unwrap();
                // SAFETY: all-zero bytes are a valid struct sigaction.
                let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
                // SAFETY: querying the current disposition into `old`.
                unsafe { libc::sigaction(sig.number(), std::ptr::null(), &mut old) };
                let what = match old.sa_sigaction {
                    libc::SIG_IGN => "ign",
                    libc::SIG_DFL => "dfl",
                    _ => "handler",
                };
                text += &format!("sig_{name}={}:{what}\n", sig.number());
            }
            // SAFETY: all-zero bytes are a valid (empty) sigset_t.
            let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
            // SAFETY: reading the current mask into `set`.
            unsafe { libc::sigprocmask(libc::SIG_SETMASK, std::ptr::null(), &mut set) };
            let blocked: Vec<i32> = (1..65)
                // SAFETY: `set` was filled by sigprocmask above.
                .filter(|&s| unsafe { libc::sigismember(&set, s) } == 1)
                .collect();
            text += &format!("blocked={blocked:?}\n");
            // SAFETY: umask read-and-restore.
            let mask = unsafe {
                let m = libc::umask(0);
                libc::umask(m);
                m
            };
            text += &format!("umask={mask:o}\n");
            text += &format!("dumpable={dumpable}\n");
            text += &format!("detached={}\n", self.detached);
            // A file opened now must not land on 0-2.
            // SAFETY: open with a valid path; the descriptor is closed below.
            let probe_fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
            text += &format!("probe_fd={probe_fd}\n");
            // SAFETY: closing the descriptor opened just above.
            unsafe { libc::close(probe_fd) };
            // SAFETY: getppid cannot fail.
            let ppid = unsafe { libc::getppid() };
            text += &format!("ppid={ppid}\n");
            // Every number below the hard limit (a descriptor can sit above the soft one).
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit into a local.
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
            #[allow(clippy::unnecessary_cast)] // rlim_t is 32-bit on 32-bit glibc
            let top = (lim.rlim_max as u64).min(1 << 20) as c_int;
            let fds: Vec<String> = (0..top)
                // SAFETY: F_GETFD on any number only reads the descriptor table.
                .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1)
                .map(|fd| fd.to_string())
                .collect();
            text += &format!("fds={}\n", fds.join(","));
            if let Some(port) = self.bind_port {
                let r = std::net::TcpListener::bind(("127.0.0.1", port));
                let what = r.map_or_else(
                    |e| e.raw_os_error().unwrap_or(-1).to_string(),
                    |_| "ok".into(),
                );
                text += &format!("bind={what}\n");
            }
            if let Some(path) = &self.try_open {
                // SAFETY: open with a valid NUL-terminated path; closed at once.
                let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                if fd >= 0 {
                    // SAFETY: the descriptor opened above.
                    unsafe { libc::close(fd) };
                    text += "open=ok\n";
                } else {
                    text += &format!("open={errno}\n");
                }
            }
            let cwd = std::env::current_dir()
                .map_or_else(|e| format!("error {e}"), |d| d.display().to_string());
            text += &format!("cwd={cwd}\n");
            write_atomically(std::str::from_utf8(path.as_bytes()).unwrap(), &text);
        }
        if let Some(m) = &self.marker {
            // Visible to the test: the daemon reached run() after the custom step.
            let _ = std::fs::write(std::str::from_utf8(m.as_bytes()).unwrap(), b"run\n");
        }
        if !self.exec_in_run.is_empty() {
            let mut argv: Vec<*const libc::c_char> =
                self.exec_in_run.iter().map(|a| a.as_ptr()).collect();
            argv.push(std::ptr::null());
            // SAFETY: a null-terminated vector of NUL-terminated strings that outlive
            // the call (execv only returns on failure).
            unsafe { libc::execv(argv[0], argv.as_ptr()) };
            eprintln!("probe: execv: {}", std::io::Error::last_os_error());
            return 127;
        }
        match self.run {
            RunMode::Exit(code) => code,
            RunMode::SignalLog => {
                let file = self.run_file.clone().unwrap();
                let pipe = pandaemonium::SignalPipe::get().expect("a signal pipe");
                loop {
                    pipe.wait(&[], -1).unwrap();
                    for sig in pipe.pending() {
                        append(&file, &sig.number().to_string());
                        if sig == Signal::TERM {
                            return 0;
                        }
                    }
                }
            }
            RunMode::Accept => {
                let file = self.run_file.clone().unwrap();
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                write_atomically(&format!("{file}.listening"), "listening\n");
                // accept(2) itself: std's `accept` retries on EINTR.
                use std::os::fd::AsRawFd;
                // SAFETY: accept on our own listening socket, no address wanted.
                let r = unsafe {
                    libc::accept(
                        listener.as_raw_fd(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    )
                };
                assert_eq!(r, -1, "nobody connects");
                let e = std::io::Error::last_os_error();
                let text = format!(
                    "accept={}\nflag={}\n",
                    e.raw_os_error().unwrap_or(0),
                    INTERRUPTED.load(SeqCst)
                );
                write_atomically(&file, &text);
                0
            }
            RunMode::Tick => {
                let file = self.run_file.clone().unwrap();
                loop {
                    if std::fs::remove_file(&file).is_ok() {
                        raw_write(1, b"tick\n");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
            RunMode::Wait => loop {
                if USR1_SEEN.swap(false, SeqCst) {
                    // A user handler offered the same clean-up as SIGTERM.
                    pandaemonium::exit(42);
                }
                // Polling, not pause(): a signal that arrives before pause() would be lost.
                std::thread::sleep(std::time::Duration::from_millis(5));
            },
        }
    }

    fn monitor(&mut self, stream: pandaemonium::Stream, data: &[u8]) {
        if stream == pandaemonium::Stream::Stdout {
            self.monitored.extend_from_slice(data);
        }
    }

    fn stage1(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        self.hook(1)?;
        if self.skip_detach {
            return Ok(());
        }
        let detached = s.detach();
        if self.poll_fail && detached.as_ref().is_err_and(Error::is_detached_marker) {
            // The original process, about to monitor: poll(2) on its three descriptors
            // fails with EINVAL once RLIMIT_NOFILE is below three.
            // SAFETY: getrlimit/setrlimit on our own limits, through a valid local.
            unsafe {
                let mut lim: libc::rlimit = std::mem::zeroed();
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
                lim.rlim_cur = 2;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
        detached
    }
    fn stage2(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        self.hook(2)?;
        self.detached = s.is_detached();
        if self.detach_stage == 2 {
            let again = s.detach().map_err(|e| e.kind());
            raw_write(1, format!("detach_again={again:?}\n").as_bytes());
        }
        s.prevent_core()
    }
    fn stage3(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        self.hook(3)?;
        s.process_ids()
    }
    fn stage4(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        self.hook(4)?;
        s.umask()
    }
    fn stage5(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        self.hook(5)?;
        s.working_directory()
    }
    fn stage6(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        self.hook(6)?;
        s.pid_file()
    }
    fn stage7(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        self.hook(7)?;
        s.signals()
    }
    fn stage8(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        self.hook(8)?;
        s.close_files()
    }
    fn stage9(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        self.hook(9)?;
        s.redirect()
    }
}

/// Writes `text` to `path` through a temporary file and a rename, so a reader that
/// waits for `path` to exist reads it whole.
fn write_atomically(path: &str, text: &str) {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn cstr(s: &str) -> &'static std::ffi::CStr {
    Box::leak(CString::new(s).unwrap().into_boxed_c_str())
}

fn stdio(v: &str) -> Stdio<'static> {
    match v {
        "null" => Stdio::Null,
        _ if v.starts_with("fd:") => Stdio::Fd(v[3..].parse().unwrap()),
        _ => Stdio::Path(cstr(v)),
    }
}

fn fail_usage(msg: &str) -> ! {
    eprintln!("probe: {msg}");
    std::process::exit(2)
}

/// This process's open descriptors below 64, as `0,1,2,...` (F_GETFD opens nothing).
fn own_fds() -> String {
    let fds: Vec<String> = (0..64)
        // SAFETY: F_GETFD on any number only reads the descriptor table.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1)
        .map(|fd| fd.to_string())
        .collect();
    fds.join(",")
}

fn print_err(e: &Error, daemon: Option<(&[u8], &[u8])>) -> ! {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "result=err");
    let _ = writeln!(out, "launcher_fds_after={}", own_fds());
    let _ = writeln!(out, "message={e}");
    let _ = writeln!(out, "kind={:?}", e.kind());
    let _ = writeln!(out, "stage={}", e.stage().map_or(0, Stage::number));
    let _ = writeln!(out, "errno={}", e.errno().map_or(0, |e| e.raw()));
    let _ = writeln!(out, "holder={}", e.holder().map_or(0, |h| h as i64));
    let _ = writeln!(out, "exit={:?}", e.exit());
    if let Some((o, err)) = daemon {
        let _ = writeln!(
            out,
            "output={}",
            String::from_utf8_lossy(o).escape_default()
        );
        let _ = writeln!(
            out,
            "error={}",
            String::from_utf8_lossy(err).escape_default()
        );
    }
    let _ = out.flush();
    std::process::exit(3)
}

/// This process's umask and core-dump limits, as `umask:soft:hard`.
fn own_state() -> String {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: umask read-and-restore and getrlimit into a local.
    let mask = unsafe {
        libc::getrlimit(libc::RLIMIT_CORE, &mut lim);
        let m = libc::umask(0);
        libc::umask(m);
        m
    };
    format!("{mask:o}:{}:{}", lim.rlim_cur, lim.rlim_max)
}

fn main() {
    alloc_trap::arm();
    // SAFETY: alarm takes an int; a watchdog so a hung helper fails instead of hanging.
    unsafe { libc::alarm(60) };

    let args: Vec<String> = std::env::args().skip(1).collect();
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let mut probe = Probe::default();
    let mut daemon = Daemon::new(Probe::default());
    qemu::allow_threads(&mut daemon);
    let mut mode = "start".to_string();
    let mut stage_first: u8 = 0;
    let mut custom_file: Option<String> = None;
    let mut catch_panic = false;
    let mut keep = Capabilities::EMPTY;
    let mut i = 0;
    let next = |i: &mut usize| -> String {
        *i += 1;
        args.get(*i)
            .cloned()
            .unwrap_or_else(|| fail_usage("missing value"))
    };
    let check = |r: Result<(), Error>| {
        if let Err(e) = r {
            print_err(&e, None)
        }
    };
    while i < args.len() {
        let a = args[i].clone();
        match a.as_str() {
            "--pid-file" => check(daemon.pid_file(cstr(&next(&mut i))).map(drop)),
            "--acquire-first" => {
                let path = next(&mut i);
                let mut pf = PidLockFile::new(cstr(&path), std::time::Duration::ZERO)
                    .unwrap_or_else(|e| print_err(&e, None));
                check(pf.acquire(None));
                daemon.pid_lock_file(pf);
            }
            "--workdir" => check(daemon.working_directory(cstr(&next(&mut i))).map(drop)),
            "--umask" => {
                daemon.umask(u32::from_str_radix(&next(&mut i), 8).unwrap());
            }
            "--user" => {
                let ids =
                    ProcessIds::user(cstr(&next(&mut i))).unwrap_or_else(|e| print_err(&e, None));
                daemon.ids(ids);
            }
            "--ids" => {
                let v = next(&mut i);
                let (u, g) = v.split_once(':').unwrap();
                check(
                    daemon
                        .process_ids(u.parse().unwrap(), g.parse().unwrap())
                        .map(drop),
                );
            }
            "--detach" => {
                daemon.detach(match next(&mut i).as_str() {
                    "auto" => Detach::Auto,
                    "always" => Detach::Always,
                    "never" => Detach::Never,
                    _ => fail_usage("detach"),
                });
            }
            "--allow-core" => {
                daemon.prevent_core(false);
            }
            "--keep-fd" => check(daemon.inherit_file(next(&mut i).parse().unwrap()).map(drop)),
            "--open-fd" => {
                // Open /dev/null at this descriptor in the launcher (inherited junk).
                let fd: c_int = next(&mut i).parse().unwrap();
                // SAFETY: open + dup2 + close on descriptors we own.
                unsafe {
                    let n = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                    assert!(libc::dup2(n, fd) == fd, "dup2 to {fd}");
                    libc::close(n);
                }
            }
            "--raise-nofile" => {
                let mut lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                // SAFETY: get and set our own limit.
                unsafe {
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
                    lim.rlim_cur = lim.rlim_max;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
                }
                println!("nofile={}", lim.rlim_cur);
            }
            "--stdin" => check(daemon.stdin(stdio(&next(&mut i))).map(drop)),
            "--stdout" => check(daemon.stdout(stdio(&next(&mut i))).map(drop)),
            "--stderr" => check(daemon.stderr(stdio(&next(&mut i))).map(drop)),
            "--signal" => {
                let v = next(&mut i);
                let (name, act) = v.split_once('=').unwrap();
                let sig = Signal::parse(name).unwrap_or_else(|e| print_err(&e, None));
                let action = match act {
                    "ign" => Action::Ignore,
                    "dfl" => Action::Default,
                    "exit" => Action::Exit,
                    "usr1flag" => Action::Handler(on_usr1),
                    "interrupt" => Action::Interrupt(on_interrupt),
                    "pipe" => Action::Pipe,
                    "reopen" => Action::ReopenStdio,
                    _ => fail_usage("action"),
                };
                check(daemon.signal(sig, action).map(drop));
            }
            "--block-usr1-ignore-hup" => {
                // The launcher's own signal state, which the daemon must not inherit.
                // SAFETY: signal-state calls on this process.
                unsafe {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGUSR1);
                    libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                    libc::signal(libc::SIGHUP, libc::SIG_IGN);
                }
            }
            "--close-method" => {
                daemon.close_method(match next(&mut i).as_str() {
                    "auto" => CloseMethod::Auto,
                    "no-close-range" => CloseMethod::NoCloseRange,
                    "loop" => CloseMethod::Loop,
                    _ => fail_usage("close method"),
                });
            }
            "--report" => probe.report = Some(CString::new(next(&mut i)).unwrap()),
            "--marker" => probe.marker = Some(CString::new(next(&mut i)).unwrap()),
            "--say" => probe.say = Some(CString::new(next(&mut i) + "\n").unwrap()),
            "--say-err" => probe.say_err = Some(CString::new(next(&mut i) + "\n").unwrap()),
            "--fail-stage" => probe.fail_stage = next(&mut i).parse().unwrap(),
            "--wait-in-stage" => {
                let v = next(&mut i);
                let (n, dir) = v.split_once(':').unwrap();
                probe.wait_stage = n.parse().unwrap();
                probe.wait_dir = Some(dir.to_string());
            }
            "--die-in-stage" => probe.die_stage = next(&mut i).parse().unwrap(),
            "--abort-in-stage" => probe.abort_stage = next(&mut i).parse().unwrap(),
            "--panic-in-stage" => probe.panic_stage = next(&mut i).parse().unwrap(),
            "--libc-malloc-in-stage" => probe.libc_malloc_stage = next(&mut i).parse().unwrap(),
            "--free-in-stage" => {
                probe.free_stage = next(&mut i).parse().unwrap();
                probe.preallocated = Some(Box::new([0u8; 64]));
            }
            "--say-bytes" => probe.say_bytes = next(&mut i).parse().unwrap(),
            "--print-in-run" => probe.print_in_run = Some(next(&mut i)),
            "--write-in-run" => probe.write_in_run = Some(CString::new(next(&mut i)).unwrap()),
            // The same with a newline (a whole line: it can't split a line the launcher
            // writes to the same file).
            "--write-line-in-run" => {
                probe.write_in_run = Some(CString::new(next(&mut i) + "\n").unwrap())
            }
            "--inspectable" => probe.inspectable = true,
            "--poll-fail" => probe.poll_fail = true,
            "--skip-detach" => probe.skip_detach = true,
            "--detach-in-stage" => probe.detach_stage = next(&mut i).parse().unwrap(),
            "--fork-holder-in-stage" => {
                let v = next(&mut i);
                let (n, path) = v.split_once(':').unwrap();
                probe.fork_holder_stage = n.parse().unwrap();
                probe.fork_holder_path = Some(path.to_string());
            }
            "--say-err-in-stage" => {
                let v = next(&mut i);
                let (n, text) = v.split_once(':').unwrap();
                probe.say_err_stage = n.parse().unwrap();
                probe.say_err_text = Some(CString::new(format!("{text}\n")).unwrap());
            }
            "--fake-detached-in-stage" => probe.fake_detached_stage = next(&mut i).parse().unwrap(),
            "--own-group" => {
                // Lead a process group of our own, as a shell job does: a SIGINT to
                // the group (Ctrl-C) then reaches the launcher alone.
                // SAFETY: setpgid on ourselves.
                unsafe { libc::setpgid(0, 0) };
            }
            "--catch-panic" => catch_panic = true,
            "--open-in-stage" => probe.open_stage = next(&mut i).parse().unwrap(),
            "--close-fd" => {
                // std's runtime reopens closed 0-2 on /dev/null before main: close one
                // here to launch as a shell's `<&-` would a C program.
                // SAFETY: closing a descriptor of our own.
                unsafe { libc::close(next(&mut i).parse().unwrap()) };
            }
            "--ignore-signal" => {
                // The launcher ignores this signal: stage 7 must reset it.
                let sig = Signal::parse(&next(&mut i)).unwrap_or_else(|e| print_err(&e, None));
                // SAFETY: setting a disposition of our own process.
                unsafe { libc::signal(sig.number(), libc::SIG_IGN) };
            }
            "--no-setuid-fixup" => {
                // SECBIT_NO_SETUID_FIXUP (1 << 2): setuid() keeps the capabilities, so
                // a daemon that dropped to another uid could setuid(0) again.
                // SAFETY: prctl with integer arguments only.
                let r = unsafe { libc::prctl(libc::PR_SET_SECUREBITS, 1 << 2, 0, 0, 0) };
                assert_eq!(
                    r,
                    0,
                    "PR_SET_SECUREBITS: {}",
                    std::io::Error::last_os_error()
                );
            }
            "--nofile-free" => {
                // The soft limit set so that exactly N descriptor numbers are free below
                // it: stage 1's pipes then run out of descriptors.
                let free: usize = next(&mut i).parse().unwrap();
                let (mut seen, mut limit) = (0, 0);
                while seen < free {
                    // SAFETY: F_GETFD only reads the descriptor table.
                    if unsafe { libc::fcntl(limit, libc::F_GETFD) } == -1 {
                        seen += 1;
                    }
                    limit += 1;
                }
                // SAFETY: getrlimit/setrlimit on our own limits, through a local.
                unsafe {
                    let mut lim: libc::rlimit = std::mem::zeroed();
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
                    lim.rlim_cur = limit as libc::rlim_t;
                    assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0, "setrlimit");
                }
            }
            "--nofile-soft" => {
                let soft: libc::rlim_t = next(&mut i).parse().unwrap();
                // SAFETY: getrlimit/setrlimit on our own limits, through a local.
                unsafe {
                    let mut lim: libc::rlimit = std::mem::zeroed();
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
                    lim.rlim_cur = soft;
                    assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0, "setrlimit");
                }
            }
            "--start-timeout" => {
                let ms: u64 = next(&mut i).parse().unwrap();
                daemon.start_timeout(std::time::Duration::from_millis(ms));
            }
            "--alloc-in-stage" => probe.alloc_stage = next(&mut i).parse().unwrap(),
            "--tag" => {
                next(&mut i);
            }
            "--out" => {
                // Launcher results go to this file (for launches with stdout closed).
                let path = CString::new(next(&mut i)).unwrap();
                // SAFETY: open with a valid path, dup2 onto 1, close the original.
                unsafe {
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                        0o644,
                    );
                    assert!(fd >= 0, "--out open");
                    if fd != 1 {
                        libc::dup2(fd, 1);
                        libc::close(fd);
                    }
                }
            }
            "--pid-timeout" => {
                let v = next(&mut i);
                let (ms, path) = v.split_once(':').unwrap();
                let timeout = std::time::Duration::from_millis(ms.parse().unwrap());
                let pf =
                    PidLockFile::new(cstr(path), timeout).unwrap_or_else(|e| print_err(&e, None));
                daemon.pid_lock_file(pf);
            }
            "--no-proc" => {
                // As on an early-boot system: /proc not mounted (in a private mount namespace).
                // SAFETY: unshare/mount/umount2 with valid arguments; affects only this process.
                unsafe {
                    assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare");
                    libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    );
                    assert_eq!(
                        libc::umount2(c"/proc".as_ptr(), libc::MNT_DETACH),
                        0,
                        "umount /proc"
                    );
                }
            }
            "--exit" => probe.run = RunMode::Exit(next(&mut i).parse().unwrap()),
            "--run-signal-log" | "--run-accept" | "--run-tick" => {
                probe.run = match a.as_str() {
                    "--run-signal-log" => RunMode::SignalLog,
                    "--run-accept" => RunMode::Accept,
                    _ => RunMode::Tick,
                };
                probe.run_file = Some(next(&mut i));
            }
            "--reopenable" => {
                daemon.reopenable_stdio(true);
            }
            "--wait-ready" => {
                let secs = next(&mut i).parse().unwrap();
                daemon
                    .config()
                    .wait_ready(std::time::Duration::from_secs(secs));
            }
            "--mode" => mode = next(&mut i),
            "--stage-first" => stage_first = next(&mut i).parse().unwrap(),
            "--custom-file" => custom_file = Some(next(&mut i)),
            "--chroot" => check(daemon.chroot_directory(cstr(&next(&mut i))).map(drop)),
            "--keep-cap" => {
                let name = next(&mut i);
                let cap =
                    Capability::parse(name.as_bytes()).unwrap_or_else(|| fail_usage("capability"));
                keep = keep.with(cap);
                daemon.keep_capabilities(keep);
            }
            "--limit-bounding" => {
                daemon.limit_bounding_set(true);
            }
            "--no-new-privs" => {
                daemon.no_new_privileges(true);
            }
            "--setgroups" => {
                // The launcher's own supplementary groups (as root): what a switch must drop.
                let v = next(&mut i);
                let list: Vec<libc::gid_t> = v
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .map(|g| g.parse().unwrap())
                    .collect();
                // SAFETY: a pointer and length from the same Vec.
                let r = unsafe { libc::setgroups(list.len(), list.as_ptr()) };
                assert_eq!(r, 0, "setgroups: {}", std::io::Error::last_os_error());
            }
            "--groups" => {
                // After --user or --ids: exactly these supplementary groups ("none": none).
                let v = next(&mut i);
                let list: Vec<libc::gid_t> = match v.as_str() {
                    "none" => Vec::new(),
                    _ => v.split(',').map(|g| g.parse().unwrap()).collect(),
                };
                let ids = daemon
                    .ids_ref()
                    .cloned()
                    .unwrap_or_else(|| fail_usage("--groups needs --user or --ids"));
                daemon.ids(
                    ids.with_groups(&list)
                        .unwrap_or_else(|e| print_err(&e, None)),
                );
            }
            "--parts" => {
                // ProcessIds::from_parts without a list (as a caller that resolved names).
                let v = next(&mut i);
                let (u, g) = v.split_once(':').unwrap();
                let ids = ProcessIds::from_parts(u.parse().unwrap(), g.parse().unwrap(), None)
                    .unwrap_or_else(|e| print_err(&e, None));
                daemon.ids(ids);
            }
            "--drop-permitted" => {
                // The launcher gives up one capability from its effective, permitted and
                // inheritable sets (the bounding set keeps it).
                let cap = Capability::parse(next(&mut i).as_bytes())
                    .unwrap_or_else(|| fail_usage("capability"));
                let mut head = [0x2008_0522u32, 0];
                let mut data = [0u32; 6];
                // SAFETY: version 3's header and two data structs (six u32s).
                unsafe {
                    assert_eq!(
                        libc::syscall(libc::SYS_capget, head.as_mut_ptr(), data.as_mut_ptr()),
                        0
                    );
                    let (word, bit) = (usize::from(cap.number() / 32), cap.number() % 32);
                    for set in 0..3 {
                        data[word * 3 + set] &= !(1 << bit);
                    }
                    assert_eq!(
                        libc::syscall(libc::SYS_capset, head.as_mut_ptr(), data.as_ptr()),
                        0,
                        "capset"
                    );
                }
            }
            "--bind" => probe.bind_port = Some(next(&mut i).parse().unwrap()),
            "--try-open" => probe.try_open = Some(CString::new(next(&mut i)).unwrap()),
            "--exec-in-run" => {
                probe.exec_in_run = args[i + 1..]
                    .iter()
                    .map(|a| CString::new(a.as_str()).unwrap())
                    .collect();
                i = args.len();
                continue;
            }
            "--allow-threads" => {
                // SAFETY: this helper has no other threads; used where /proc can't count.
                unsafe { daemon.allow_threads() };
            }
            _ => fail_usage(&format!("unknown argument {a}")),
        }
        i += 1;
    }
    *daemon.app() = probe;
    println!("launcher={me}");
    println!("launcher_before={}", own_state());
    println!("launcher_fds_before={}", own_fds());
    let _ = std::io::stdout().flush();

    if stage_first > 0 {
        match daemon.stage(Stage::from_number(stage_first).unwrap()) {
            Ok(Side::Original(started)) => {
                println!(
                    "result=ok\npid={}\noutput={}",
                    started.pid,
                    String::from_utf8_lossy(started.output.as_bytes()).escape_default()
                );
                // No stage runs in the original process after detaching (check_stage).
                if let Err(e) = daemon.stage(Stage::Redirect) {
                    println!("after_detach={:?}", e.kind());
                }
                if let Err(e) = daemon.start() {
                    println!("start_after_detach={:?}", e.kind());
                }
                return;
            }
            Ok(Side::Daemon) => {
                raw_write(
                    1,
                    format!("stages_done={}\n", daemon.stages_done()).as_bytes(),
                );
                // The custom step: a file made with the daemon's umask, in the
                // directory current at this point (stage 5 has or has not run).
                if let Some(name) = &custom_file {
                    // SAFETY: open/close with a valid path.
                    unsafe {
                        let c = CString::new(name.as_str()).unwrap();
                        let fd = libc::open(c.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o666);
                        libc::close(fd);
                    }
                }
                // A stage already done must be refused.
                if let Err(e) = daemon.stage(Stage::Detach) {
                    raw_write(1, format!("again={:?}\n", e.kind()).as_bytes());
                }
            }
            Err(e) => print_err(
                &e,
                Some((daemon.output().as_bytes(), daemon.error().as_bytes())),
            ),
        }
    }
    if catch_panic {
        // A panic in the launcher's own stage code (before any fork) must unwind out
        // of start() like any other panic, to be caught here.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = daemon.start();
        }));
        println!("caught_panic={}", caught.is_err());
        return;
    }
    match mode.as_str() {
        "start" => match daemon.start() {
            Ok(started) => {
                println!("result=ok");
                println!("launcher_after={}", own_state());
                println!("pid={}", started.pid);
                println!(
                    "output={}",
                    String::from_utf8_lossy(started.output.as_bytes()).escape_default()
                );
                println!(
                    "error={}",
                    String::from_utf8_lossy(started.error.as_bytes()).escape_default()
                );
                println!("output_truncated={}", started.output.is_truncated());
                println!("error_truncated={}", started.error.is_truncated());
                println!("launcher_fds_after={}", own_fds());
                println!(
                    "monitored={}",
                    String::from_utf8_lossy(&daemon.app().monitored).escape_default()
                );
                // A second start is refused.
                if let Err(e) = daemon.start() {
                    println!("second={:?}", e.kind());
                }
            }
            Err(e) => {
                println!("daemon_pid={}", daemon.daemon_pid().map_or(0, |p| p as i64));
                println!("output_truncated={}", daemon.output().is_truncated());
                println!("error_truncated={}", daemon.error().is_truncated());
                let (o, er) = (
                    daemon.output().as_bytes().to_vec(),
                    daemon.error().as_bytes().to_vec(),
                );
                print_err(&e, Some((&o, &er)))
            }
        },
        "report" => {
            // The seed's `report()`: prints the set-up output and any failure, exits.
            let _ = std::io::stdout().flush();
            let _ = daemon.start();
            daemon.report()
        }
        "activate" => match daemon.activate() {
            Ok(_) => {
                alloc_trap::in_run();
                let code = daemon.app().run();
                pandaemonium::exit(code)
            }
            Err(e) => print_err(&e, None),
        },
        "activate-then-start" => match daemon.activate() {
            Ok(_) => {
                // Once activated, start() and activate() are refused (check_stage).
                alloc_trap::in_run();
                let again = format!(
                    "start={:?}\nactivate={:?}\n",
                    daemon.start().map(drop).map_err(|e| e.kind()),
                    daemon.activate().map(drop).map_err(|e| e.kind())
                );
                if let Some(m) = &daemon.app().marker {
                    write_atomically(std::str::from_utf8(m.as_bytes()).unwrap(), &again);
                }
                pandaemonium::exit(0)
            }
            Err(e) => print_err(&e, None),
        },
        "activate-release" => match daemon.activate() {
            Ok(_) => {
                // The daemon removes its pid file itself, then runs on: a later SIGTERM
                // must not touch whatever is at that path by then.
                let released = daemon.pid_file_mut().map(|p| p.release());
                raw_write(1, format!("released={released:?}\n").as_bytes());
                alloc_trap::in_run();
                let code = daemon.app().run();
                pandaemonium::exit(code)
            }
            Err(e) => print_err(&e, None),
        },
        "activate-drop" => match daemon.activate() {
            Ok(_) => {
                // The daemon drops its Daemon (and PidLockFile): the lock must stay held.
                let mut app = std::mem::take(daemon.app());
                drop(daemon);
                alloc_trap::in_run();
                let code = app.run();
                pandaemonium::exit(code)
            }
            Err(e) => print_err(&e, None),
        },
        _ => fail_usage("mode"),
    }
}
