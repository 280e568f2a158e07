//! Test helper for `tests/peer_pandaemonium.rs`: the daemons of pandaemonium's own suite
//! (`pandaemonium/test/__main__.py`, class `TestDaemon`) and of its `Daemon` methods.
//!
//! Usage: `pdm-peer-pandaemonium MODE [ARGS]`, MODE one of
//!
//! - `target`: `Daemon(target=leave_message, stdout=w)`; reads the pipe to EOF.
//! - `run`: `MyDaemon(stdout=w)`, a `Run` impl; reads the pipe to EOF.
//! - `failure`: `DeadDaemon`, whose stage 5 divides by zero (a panic).
//! - `failure-error`: `DeadDaemon`, whose stage 5 returns an error.
//! - `pid-lock PIDFILE`: `Daemon(target=..., stdout=w, pid_file=PIDFILE)`.
//! - `capture`: set-up output on stdout and stderr, then a clean start.
//! - `check-stage`: a stage run twice, in the daemon and in the original process.
//! - `panic-stage7 PIDFILE MARKER`: stage 7 panics after the pid file was sealed.
//! - `activate REPORT PIDFILE [WORKDIR]`: `activate()`; the daemon writes REPORT and
//!   waits for SIGTERM. The original process exits as `activate()` makes it.
//!
//! The launcher prints `key=value` lines: `result=ok` with `pid=`, or `result=err` with
//! `kind=`, `stage=`, `errno=`, `holder=`, `message=` (and, for `failure*`,
//! `reported_pid=` from `Daemon::daemon_pid`); captured set-up `output=` and `error=`
//! (escaped); `message=`/`second=` per mode. Set-up stage 2 of the `DeadDaemon`
//! and `Chatty` daemons prints `daemon_pid=N`, so the test can reap a daemon that failed.
//!
//! Exit codes: 0 started (or the expected failure was printed), 2 bad usage, 3 start
//! failed unexpectedly, 4 pipe, 5 reading the pipe, 6 writing the report (daemon);
//! killed by SIGALRM (the `alarm(60)` watchdog) if it hangs.

#[path = "qemu.rs"]
mod qemu;

use std::ffi::{CStr, CString};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::time::Duration;

use pandaemonium::{target, Daemon, Error, PidLockFile, Run, Side, Stage, Stages, Stdio};

/// A line formatted on the stack: the stage overrides run between fork and `run()`,
/// where this helper allocates nothing.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 160],
            len: 0,
        }
    }
    fn send(&self, fd: libc::c_int) {
        // SAFETY: writing the initialised part of our own buffer.
        unsafe { libc::write(fd, self.buf.as_ptr().cast(), self.len) };
    }
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn getpid() -> u32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() as u32 }
}

/// Stage 2 hook: tells the original process (through the set-up stdout) who we are.
fn announce() {
    let mut line = Line::new();
    let _ = writeln!(line, "daemon_pid={}", getpid());
    line.send(1);
}

/// `leave_message` of `test_target`: prints, returns (pandaemonium's target returns None).
fn leave_message(_: ()) -> i32 {
    println!("Okay, I made it!  G'bye!");
    0
}

/// `MyDaemon` of `test_run`: `run` overridden; `raise SystemExit` is status 0.
struct MyDaemon;

impl Run for MyDaemon {
    fn run(&mut self) -> i32 {
        println!("Running like the wind!");
        0
    }
}

/// `DeadDaemon` of `test_failure`: stage 5 fails (`1 / 0`); `run` must never happen.
struct DeadDaemon {
    panic: bool,
}

impl Run for DeadDaemon {
    fn run(&mut self) -> i32 {
        println!("wow! it happenned!");
        0
    }
    fn stage2(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        announce();
        s.prevent_core()
    }
    fn stage5(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        if self.panic {
            // Python's `1 / 0`: Rust's integer division by zero panics.
            let zero = std::hint::black_box(0);
            let _ = std::hint::black_box(1 / zero);
        }
        let _ = s;
        Err(Error::custom(
            Stage::WorkingDirectory,
            None,
            "ZeroDivisionError: division by zero",
        ))
    }
}

/// A daemon that talks during set-up, for `capture`, `check-stage` and `activate`.
struct Chatty;

impl Run for Chatty {
    fn run(&mut self) -> i32 {
        0
    }
    fn stage2(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        announce();
        let mut line = Line::new();
        let _ = writeln!(line, "set-up warning from {}", getpid());
        line.send(2);
        s.prevent_core()
    }
}

fn usage() -> ! {
    eprintln!("usage: pdm-peer-pandaemonium MODE [ARGS] (see the source)");
    std::process::exit(2)
}

fn escaped(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_default().to_string()
}

/// Prints a failed start with the daemon's captured set-up output.
fn print_err(e: &Error, output: &[u8], error: &[u8]) {
    println!("result=err");
    println!("kind={:?}", e.kind());
    println!("stage={}", e.stage().map_or(0, Stage::number));
    println!("errno={}", e.errno().map_or(0, |n| n.raw()));
    println!("holder={}", e.holder().map_or(0, i64::from));
    println!("detail={}", e.detail());
    println!("message={e}");
    println!("output={}", escaped(output));
    println!("error={}", escaped(error));
}

/// A pipe for the daemon's stdout: (read end as a File, write end).
fn pipe() -> (std::fs::File, libc::c_int) {
    let mut fds = [-1; 2];
    // SAFETY: pipe writes two descriptors into `fds`.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        std::process::exit(4);
    }
    // SAFETY: fds[0] is a fresh descriptor we own from here on.
    (unsafe { std::fs::File::from_raw_fd(fds[0]) }, fds[1])
}

/// test_target / test_run / test_pid_lock: start with stdout on a pipe, then read what
/// the daemon's `run` printed, to EOF (the daemon's exit).
fn start_and_read<R: Run>(daemon: &mut Daemon<'_, R>, read: std::fs::File, write: libc::c_int) {
    let _ = std::io::stdout().flush();
    let pid = match daemon.start() {
        Ok(started) => started.pid,
        Err(e) => {
            print_err(&e, daemon.output().as_bytes(), daemon.error().as_bytes());
            std::process::exit(3)
        }
    };
    println!("result=ok");
    println!("pid={pid}");
    // pandaemonium: `start()` twice is a DaemonError.
    match daemon.start() {
        Ok(_) => println!("second=ok"),
        Err(e) => println!("second={:?}", e.kind()),
    }
    let _ = std::io::stdout().flush();
    // SAFETY: closing our copy of the write end, so EOF comes when the daemon exits.
    unsafe { libc::close(write) };
    let mut text = Vec::new();
    let mut read = read;
    if read.read_to_end(&mut text).is_err() {
        std::process::exit(5);
    }
    println!("message={}", escaped(&text));
}

/// A daemon whose stage 7 panics, after stage 6 sealed its pid file.
struct PanicsInStage7;

impl Run for PanicsInStage7 {
    fn run(&mut self) -> i32 {
        0
    }
    fn stage2(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        announce();
        s.prevent_core()
    }
    fn stage7(&mut self, _: &mut Stages<'_, '_>) -> Result<(), Error> {
        panic!("stage 7 panics");
    }
}

/// A value of the launcher's `main`: dropped in any other process, it leaves `marker`.
struct LauncherGuard {
    launcher: u32,
    marker: String,
}

impl Drop for LauncherGuard {
    fn drop(&mut self) {
        if getpid() != self.launcher {
            let _ = std::fs::write(&self.marker, format!("dropped in {}\n", getpid()));
        }
    }
}

/// `panic-stage7 PIDFILE MARKER`: whether a panic in a stage unwinds through the
/// launcher's frames in the daemon (dropping `LauncherGuard` there) and leaves the
/// sealed pid file behind.
fn panic_stage7(pid_file: &CStr, marker: &str) {
    let _guard = LauncherGuard {
        launcher: getpid(),
        marker: marker.to_string(),
    };
    let mut daemon = Daemon::new(PanicsInStage7);
    qemu::allow_threads(&mut daemon);
    if let Err(e) = daemon.pid_file(pid_file) {
        print_err(&e, b"", b"");
        std::process::exit(3)
    }
    let _ = std::io::stdout().flush();
    let result = daemon.start().map(|s| s.pid);
    match result {
        Ok(pid) => {
            println!("result=ok");
            println!("pid={pid}");
        }
        Err(e) => print_err(&e, daemon.output().as_bytes(), daemon.error().as_bytes()),
    }
}

fn failure(panic: bool) {
    let mut daemon = Daemon::new(DeadDaemon { panic });
    qemu::allow_threads(&mut daemon);
    let _ = std::io::stdout().flush();
    let result = daemon.start().map(|s| s.pid);
    match result {
        Ok(pid) => {
            println!("result=ok");
            println!("pid={pid}");
        }
        Err(e) => {
            print_err(&e, daemon.output().as_bytes(), daemon.error().as_bytes());
            // The failed daemon's pid as the library learnt it.
            println!("reported_pid={}", daemon.daemon_pid().map_or(0, i64::from));
        }
    }
}

fn check_stage() {
    let mut daemon = Daemon::new(Chatty);
    qemu::allow_threads(&mut daemon);
    let _ = std::io::stdout().flush();
    match daemon.stage(Stage::Umask) {
        Ok(Side::Daemon) => {
            // In the daemon, set-up stdout still reaches the original process.
            for again in [Stage::PreventCore, Stage::Umask] {
                let mut line = Line::new();
                match daemon.stage(again) {
                    Ok(_) => {
                        let _ = writeln!(line, "again_{}=ok", again.number());
                    }
                    Err(e) => {
                        let _ = writeln!(line, "again_{}={:?}", again.number(), e.kind());
                    }
                }
                line.send(1);
            }
            if let Err(e) = daemon.start() {
                let mut line = Line::new();
                let _ = writeln!(line, "daemon_start={:?}", e.kind());
                line.send(1);
            }
        }
        Ok(Side::Original(started)) => {
            println!("result=ok");
            println!("pid={}", started.pid);
            println!("output={}", escaped(started.output.as_bytes()));
            // No stage runs in the original process after detaching.
            match daemon.start() {
                Ok(_) => println!("original_start=ok"),
                Err(e) => println!("original_start={:?}", e.kind()),
            }
            match daemon.stage(Stage::Redirect) {
                Ok(_) => println!("original_stage=ok"),
                Err(e) => println!("original_stage={:?}", e.kind()),
            }
        }
        Err(e) => {
            print_err(&e, daemon.output().as_bytes(), daemon.error().as_bytes());
            std::process::exit(3)
        }
    }
}

fn activate(report: &CStr, pid_file: &CStr, workdir: Option<&CStr>) -> ! {
    let mut daemon = Daemon::new(Chatty);
    qemu::allow_threads(&mut daemon);
    let configured = daemon
        .pid_file(pid_file)
        .and_then(|d| match workdir {
            Some(dir) => d.working_directory(dir),
            None => Ok(d),
        })
        .map(drop);
    if let Err(e) = configured {
        print_err(&e, b"", b"");
        std::process::exit(3)
    }
    let _ = std::io::stdout().flush();
    // In the original process this never returns: it prints the daemon's set-up output
    // and error and exits 0 (started) or 1 (failed).
    let activated = match daemon.activate() {
        Ok(a) => a,
        Err(e) => {
            print_err(&e, b"", b"");
            std::process::exit(3)
        }
    };
    // The daemon, after stage 9: stdio is /dev/null, allocation is fine again.
    // SAFETY: alarm takes an integer: the daemon's own watchdog (the test kills it first).
    unsafe { libc::alarm(60) };
    let again = match daemon.activate() {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("{:?}", e.kind()),
    };
    let text = format!(
        "pid={}\nactivated_pid={}\nactivate_twice={again}\n",
        getpid(),
        activated.pid
    );
    let path = report.to_str().unwrap_or_else(|_| usage());
    let tmp = format!("{path}.tmp");
    if std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .is_err()
    {
        pandaemonium::exit(6);
    }
    loop {
        // SAFETY: pause only waits for a signal; SIGTERM (the default map) ends us.
        unsafe { libc::pause() };
    }
}

fn main() {
    // SAFETY: alarm takes an integer: a watchdog so a hung helper dies instead of hanging.
    unsafe { libc::alarm(60) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cstr = |s: &String| CString::new(s.as_str()).unwrap_or_else(|_| usage());
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["target"] => {
            let (read, write) = pipe();
            let mut daemon = Daemon::new(target(leave_message, ()));
            qemu::allow_threads(&mut daemon);
            daemon.stdout(Stdio::Fd(write)).unwrap_or_else(|_| usage());
            start_and_read(&mut daemon, read, write);
        }
        ["run"] => {
            let (read, write) = pipe();
            let mut daemon = Daemon::new(MyDaemon);
            qemu::allow_threads(&mut daemon);
            daemon.stdout(Stdio::Fd(write)).unwrap_or_else(|_| usage());
            start_and_read(&mut daemon, read, write);
        }
        ["failure"] => failure(true),
        ["failure-error"] => failure(false),
        ["panic-stage7", _, _] => panic_stage7(&cstr(&args[1]), &args[2]),
        ["pid-lock", _] => {
            let path = cstr(&args[1]);
            let (read, write) = pipe();
            let leave_message = |path: &CStr| {
                println!("pid file must have worked!!");
                // What the pid file says from inside the daemon.
                let pf = PidLockFile::new(path, Duration::ZERO).unwrap();
                println!("pid_file_pid={:?}", pf.read_pid().ok().flatten());
                println!("pid_file_active={:?}", pf.is_active().ok());
                println!("my_pid={}", getpid());
                0
            };
            let mut daemon = Daemon::new(target(leave_message, path.as_c_str()));
            qemu::allow_threads(&mut daemon);
            daemon.stdout(Stdio::Fd(write)).unwrap_or_else(|_| usage());
            if let Err(e) = daemon.pid_file(&path) {
                print_err(&e, b"", b"");
                std::process::exit(3)
            }
            start_and_read(&mut daemon, read, write);
        }
        ["capture"] => {
            let mut daemon = Daemon::new(Chatty);
            qemu::allow_threads(&mut daemon);
            let _ = std::io::stdout().flush();
            match daemon.start() {
                Ok(started) => {
                    println!("result=ok");
                    println!("pid={}", started.pid);
                    println!("output={}", escaped(started.output.as_bytes()));
                    println!("error={}", escaped(started.error.as_bytes()));
                }
                Err(e) => {
                    print_err(&e, daemon.output().as_bytes(), daemon.error().as_bytes());
                    std::process::exit(3)
                }
            }
        }
        ["check-stage"] => check_stage(),
        ["activate", _, _] => activate(&cstr(&args[1]), &cstr(&args[2]), None),
        ["activate", _, _, _] => activate(&cstr(&args[1]), &cstr(&args[2]), Some(&cstr(&args[3]))),
        _ => usage(),
    }
}
