//! `--supervise` (FreeBSD daemon(8) `-p`/`-r`): the daemon stays as a small parent.
//!
//! The supervisor holds the pid file's lock and writes `PROGRAM_PID\nSUPERVISOR_PID\n`
//! into it; PROGRAM inherits the locked descriptor and holds the lock too. The two live
//! and die together: PROGRAM gets SIGTERM when the supervisor dies (even of SIGKILL),
//! and while either lives the lock is held, so `status` shows it and `stop` stops it.
//!
//! The supervisor blocks TERM, INT, HUP, QUIT, USR1, USR2, WINCH and CHLD (stage 7)
//! and takes them one at a time with `sigtimedwait`: no handler, no flag, nothing
//! async. Every other catchable signal but the faults is ignored, so no stray one
//! (ALRM, PIPE, a real-time signal) ends it. TERM, INT and QUIT are passed on and mean
//! "stop": PROGRAM is not restarted and the supervisor ends with it; HUP, USR1, USR2
//! and WINCH are passed on only.
//!
//! When PROGRAM ends on its own, `--restart` restarts it if it died abnormally, in
//! systemd's `Restart=on-failure` sense: anything but exit status 0 and death by HUP,
//! INT, TERM or PIPE. The delay starts at DELAY and doubles with each restart, up to
//! [`MAX_DELAY_MS`] (or DELAY, if longer); a run of [`STABLE_MS`] resets it. Between
//! restarts the pid file names the supervisor twice, so `stop` never signals a pid that
//! may have been reused. Otherwise the supervisor returns PROGRAM's status (128 + the
//! signal when killed) and the core removes the pid file.
//!
//! # PROGRAM's output (`--log`, `--syslog`)
//!
//! With `--log FILE` or `--syslog`, PROGRAM's stdout and stderr are the write end of a
//! pipe (`Program::spawn_with_output`; the supervisor keeps that end, so a restarted
//! PROGRAM gets the same pipe and the read end never sees EOF), and the supervisor
//! reads the other end. It waits for the pipe and its signals at once: a `signalfd`
//! over the same blocked set, polled beside the pipe, tells that a signal is pending,
//! which `sigtimedwait` then takes without waiting, as before. (`sigtimedwait` alone
//! can't wait for a descriptor; a poll timeout would mean waking up to look.
//! `signalfd` is Linux's, as is the rest of the crate; its known weaknesses, a mask
//! lost on `exec` or another thread's unblocked mask, don't apply to a
//! single-threaded supervisor that never execs, and PROGRAM, spawned with every
//! signal unblocked, does not inherit it: close-on-exec.) Without them the
//! supervisor waits in `sigtimedwait` alone, as it always did.
//!
//! What it reads, in pieces of up to 4 KiB, it writes at once to FILE and hands to
//! the syslog sender (the library's `syslog` module: one datagram per line, never
//! blocking, dropped when no daemon listens). Nothing ever waits for a reader, so
//! PROGRAM is never held up by a missing or stopped syslog daemon; it can be by a
//! FILE whose disk is slow, as by any file it would write itself. When PROGRAM ends,
//! what it left in the pipe is read (up to 64 KiB, in case a child of its writes on)
//! and its last, unended line is sent before it is restarted or the supervisor ends.
//!
//! FILE is opened by the supervisor, after stage 3: as `--user`, inside the
//! `--chroot` jail, with the mode 0640 before the umask (stage 4: 0600 with the
//! default 077; `--umask 027` gives a log group read access), `O_APPEND`, created if
//! missing. It must be an absolute path (a usage error otherwise: stage 9's relative
//! paths are the launcher's directory, this one would have been `--chdir`'s). When it
//! can't be opened, PROGRAM is not started: `start` fails with the path and the errno
//! ([`Record::LogFailed`]), leaving no pid file and no process. SIGHUP reopens it
//! (logrotate's `mv log log.1; kill -HUP SUPERVISOR`, FreeBSD daemon(8)'s `-H`) and is
//! **not** passed on to PROGRAM: one that does not handle HUP would die of it. A
//! reopen that fails keeps the old file, and says so in it and on stderr. With
//! `--syslog` alone, HUP is passed on as without logging.

use core::ffi::{c_int, CStr};

use pandaemonium::syslog::{Facility, Severity, Syslog};
use pandaemonium::{os, Errno, Exit, Program};

use crate::out::Msg;
use crate::report::{self, Record};

/// The signals passed on to PROGRAM: those a program expects to be told.
pub const FORWARDED: [c_int; 7] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// The signals the supervisor blocks and waits for: [`FORWARDED`] and CHLD.
pub const WAITED: [c_int; 8] = {
    let mut waited = [libc::SIGCHLD; 8];
    let mut i = 0;
    while i < FORWARDED.len() {
        waited[i] = FORWARDED[i];
        i += 1;
    }
    waited
};

/// The signals that mean "stop": PROGRAM is not restarted after them.
const STOPPING: [c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT];

/// Signals the supervisor neither waits for nor ignores: the faults, which only its own
/// bug raises (ignoring them would loop on the faulting instruction).
const FAULTS: [c_int; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// Stage 7, supervising: ignores every catchable signal it does not wait for (ALRM,
/// PIPE, the terminal and real-time signals...), so that no stray signal ends the
/// supervisor and leaves PROGRAM unsupervised. PROGRAM gets every default back.
pub fn ignore_strays() {
    for sig in 1..=os::sigrtmax() {
        if !WAITED.contains(&sig) && !FAULTS.contains(&sig) {
            os::set_ignored(sig, true);
        }
    }
}

/// The longest back-off between restarts (unless DELAY itself is longer).
pub const MAX_DELAY_MS: u64 = 60_000;
/// A run this long resets the back-off to DELAY.
pub const STABLE_MS: u64 = 60_000;

/// Where PROGRAM's output goes when the supervisor carries it: `--log`, `--syslog`.
/// Plain data: the sender is made in the supervisor.
#[derive(Clone, Copy, Default)]
pub struct Output {
    /// `--log FILE`, an absolute path.
    pub file: Option<&'static CStr>,
    /// `--syslog`.
    pub syslog: Option<SyslogTo>,
}

/// `--syslog`'s socket, facility, priority and tag.
#[derive(Clone, Copy)]
pub struct SyslogTo {
    pub socket: &'static CStr,
    pub facility: Facility,
    pub severity: Severity,
    pub tag: &'static [u8],
}

impl SyslogTo {
    /// The sender (which opens nothing until a line comes); `start` makes one first to
    /// check the socket's path.
    pub fn sender(&self) -> Result<Syslog, Errno> {
        Syslog::new(self.socket, self.facility, self.severity, self.tag)
    }
}

/// The mode of a `--log` file the supervisor creates, before the umask.
const LOG_MODE: libc::mode_t = 0o640;

/// `poll(2)`'s timeout that waits for as long as it takes.
const NO_LIMIT: c_int = -1;

/// How much of PROGRAM's output is read at once.
const READ_SIZE: usize = 4096;

/// How many reads of [`READ_SIZE`] drain the pipe once PROGRAM ended (a child of its
/// may still write: the supervisor goes on).
const DRAIN_READS: usize = 16;

/// `pandaemonium: --log FILE: REASON`, to go on or end.
#[cold]
#[inline(never)]
pub fn log_failed(path: &CStr, e: Errno) -> Msg {
    let mut m = Msg::error();
    m.s("--log ").v(path.to_bytes()).s(": ").errno(e);
    m
}

/// How the `--log` file is opened: appended to, created if missing, never the
/// controlling terminal (stage 9's flags for its outputs).
const LOG_FLAGS: c_int = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_NOCTTY;

/// Opens (creates) the `--log` file for appending.
fn open_log(path: &CStr) -> Result<c_int, Errno> {
    os::open(path, LOG_FLAGS, LOG_MODE)
}

/// PROGRAM's output on its way: the pipe it writes to, the signals' descriptor polled
/// beside it, the log file, the syslog sender.
struct Logger {
    /// `--log FILE` and its open descriptor.
    file: Option<(&'static CStr, c_int)>,
    syslog: Option<Syslog>,
    read_end: c_int,
    /// PROGRAM's stdout and stderr.
    write_end: c_int,
    /// A `signalfd` over [`WAITED`].
    signals: c_int,
    /// The last PROGRAM's pid, for syslog's header.
    pid: u32,
}

impl Logger {
    /// Opens the log file, the pipe and the signals' descriptor; what to report when one
    /// fails (its message printed).
    fn open(output: Output, name: &CStr) -> Result<Logger, Record> {
        let mut file = None;
        if let Some(path) = output.file {
            let fd = open_log(path).map_err(|e| {
                log_failed(path, e).to(2);
                Record::LogFailed(e)
            })?;
            file = Some((path, fd));
        }
        // (The socket's path was checked by `start`.)
        let syslog = output.syslog.map(|to| to.sender()).transpose();
        let opened = syslog.and_then(|syslog| {
            let (r, w) = os::pipe()?;
            Ok((syslog, r, w, os::signalfd(&WAITED)?))
        });
        let (syslog, read_end, write_end, signals) = opened.map_err(|e| {
            Msg::exec_failed(name, e).to(2);
            Record::ExecFailed(e)
        })?;
        Ok(Logger {
            file,
            syslog,
            read_end,
            write_end,
            signals,
            pid: 0,
        })
    }

    /// Waits up to `timeout_ms` (`None`: no limit) for a signal or PROGRAM's output,
    /// and takes the output that came.
    fn wait(&mut self, timeout_ms: Option<u64>) {
        let ms = timeout_ms.map_or(NO_LIMIT, |ms| ms.min(c_int::MAX as u64) as c_int);
        let mut fds = [self.signals, self.read_end].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        if os::poll(&mut fds, ms).is_ok() && fds[1].revents != 0 {
            self.take();
        }
    }

    /// Reads once from the pipe (which has data) and passes it on; how much came.
    fn take(&mut self) -> usize {
        let mut buf = [0u8; READ_SIZE];
        let n = os::read(self.read_end, &mut buf).unwrap_or(0);
        let bytes = &buf[..n];
        if let Some((_, fd)) = self.file {
            // A full disk loses output: nothing better to do, and the pipe must drain.
            let _ = os::write_all(fd, bytes);
        }
        if let Some(syslog) = &mut self.syslog {
            // Lines nobody listens for are dropped (see the syslog module).
            let _ = syslog.write(self.pid, bytes);
        }
        n
    }

    /// PROGRAM ended: takes what it left in the pipe, and sends its last line.
    fn drain(&mut self) {
        for _ in 0..DRAIN_READS {
            let mut fds = [libc::pollfd {
                fd: self.read_end,
                events: libc::POLLIN,
                revents: 0,
            }];
            if os::poll(&mut fds, 0) != Ok(1) {
                break;
            }
            self.take();
        }
        if let Some(syslog) = &mut self.syslog {
            let _ = syslog.flush();
        }
    }

    /// SIGHUP: reopens the log file (renamed by logrotate, say), or keeps the old one;
    /// false without `--log` (HUP is then PROGRAM's).
    fn reopen(&mut self) -> bool {
        let Some((path, old)) = &mut self.file else {
            return false;
        };
        match open_log(path) {
            Ok(fd) => {
                os::close(*old);
                *old = fd;
            }
            Err(e) => {
                for fd in [*old, 2] {
                    log_failed(path, e)
                        .s(" (on SIGHUP; still writing to the old file)")
                        .to(fd);
                }
            }
        }
        true
    }
}

/// The supervisor's state.
struct Supervisor<'a, 'p> {
    program: &'a Program<'p>,
    /// PROGRAM's output, when it goes through the supervisor.
    logger: Option<Logger>,
    /// The pid file's locked descriptor, which PROGRAM inherits.
    lock: Option<c_int>,
    me: u32,
    /// PROGRAM's pid while it runs.
    running: Option<u32>,
    /// When PROGRAM last started (monotonic ms).
    started_at: u64,
    /// `--restart`'s DELAY.
    restart: Option<u64>,
    /// The delay before the next restart.
    delay: u64,
    /// When the pending restart is due.
    restart_at: Option<u64>,
    /// TERM or INT came: no more restarts.
    stopping: bool,
}

/// Supervises PROGRAM; returns the supervisor's exit status. `report` is the pipe to
/// the original process, when it waits.
pub fn run(
    program: &Program<'_>,
    report: Option<c_int>,
    lock: Option<c_int>,
    restart: Option<u64>,
    output: Output,
) -> i32 {
    let mut sv = Supervisor {
        program,
        logger: None,
        lock,
        me: os::getpid() as u32,
        running: None,
        started_at: os::monotonic_ms(),
        restart,
        delay: restart.unwrap_or(0),
        restart_at: None,
        stopping: false,
    };
    if let Err(record) = sv.start(output) {
        // Removed, or unlocked for the original process to remove (see launch.rs).
        pandaemonium::remove_pid_file();
        if let Some(fd) = lock {
            os::close(fd);
        }
        if let Some(fd) = report {
            report::send(fd, record);
        }
        return 1;
    }
    if let Some(fd) = report {
        report::send(fd, Record::Started);
        os::close(fd);
    }
    sv.supervise()
}

impl Supervisor<'_, '_> {
    /// Opens PROGRAM's output and starts PROGRAM, its pid in the pid file; what to
    /// report when that failed (its message printed, PROGRAM not running).
    fn start(&mut self, output: Output) -> Result<(), Record> {
        if output.file.is_some() || output.syslog.is_some() {
            self.logger = Some(Logger::open(output, self.program.name())?);
        }
        let pid = self.spawn().map_err(|e| {
            Msg::exec_failed(self.program.name(), e).to(2);
            Record::ExecFailed(e)
        })?;
        self.running = Some(pid);
        self.write_pids(pid).map_err(|e| {
            Msg::error().s("pid file: ").errno(e).to(2);
            let _ = os::kill(pid, libc::SIGKILL);
            let _ = Exit::wait(pid);
            Record::PidFileFailed(e)
        })
    }

    /// Forks and execs PROGRAM ([`Program::spawn`]): its pid once `execve` succeeded.
    ///
    /// PROGRAM inherits the pid file's locked descriptor, so it holds the lock too:
    /// were the supervisor to die unnoticed, `status` would still show PROGRAM, `stop`
    /// would still stop it and no second `start` would run beside it. And it gets
    /// SIGTERM when the supervisor dies, even of SIGKILL (`PR_SET_PDEATHSIG`). With
    /// logging, its stdout and stderr are the pipe.
    fn spawn(&mut self) -> Result<u32, Errno> {
        let death = Some(libc::SIGTERM);
        let Some(logger) = &mut self.logger else {
            return self.program.spawn(self.lock, death);
        };
        let pid = self
            .program
            .spawn_with_output(self.lock, death, logger.write_end)?;
        logger.pid = pid;
        Ok(pid)
    }

    /// PROGRAM's pid and ours into the pid file.
    fn write_pids(&self, program: u32) -> Result<(), Errno> {
        match self.lock {
            Some(_) => pandaemonium::rewrite_pid_file(&[program, self.me]),
            None => Ok(()),
        }
    }

    fn supervise(&mut self) -> i32 {
        loop {
            let timeout = self
                .restart_at
                .map(|at| at.saturating_sub(os::monotonic_ms()));
            let sig = match &mut self.logger {
                None => os::wait_signal(&WAITED, timeout),
                Some(logger) => {
                    logger.wait(timeout);
                    os::wait_signal(&WAITED, Some(0))
                }
            };
            match sig {
                Some(libc::SIGCHLD) => {
                    if let Some(code) = self.reap() {
                        return code;
                    }
                }
                Some(sig) => {
                    // `--log`: HUP reopens the file, and is not passed on.
                    if sig == libc::SIGHUP && self.logger.as_mut().is_some_and(Logger::reopen) {
                        continue;
                    }
                    if STOPPING.contains(&sig) {
                        self.stopping = true;
                    }
                    match self.running {
                        Some(pid) => {
                            let _ = os::kill(pid, sig);
                        }
                        None if self.stopping => return 0,
                        None => {}
                    }
                }
                None => {
                    if self.restart_at.is_some_and(|at| os::monotonic_ms() >= at) {
                        self.restart_at = None;
                        self.respawn();
                    }
                }
            }
        }
    }

    /// Reaps children; `Some(status)` when the supervisor should end.
    fn reap(&mut self) -> Option<i32> {
        while let Ok(Some((pid, exit))) = Exit::reap_any() {
            if Some(pid) != self.running {
                continue;
            }
            self.running = None;
            if let Some(logger) = &mut self.logger {
                logger.drain();
            }
            let code = exit.status();
            if self.stopping || clean(exit) {
                return Some(code);
            }
            let mut m = Msg::error();
            m.c(self.program.name())
                .s(" (pid ")
                .n(u64::from(pid))
                .s(") ");
            match exit {
                Exit::Code(code) => m.s("exited with status ").i(i64::from(code)),
                Exit::Signal(sig) => m.s("killed by ").signal(sig),
            };
            if self.restart.is_none() {
                m.to(2);
                return Some(code);
            }
            if os::monotonic_ms().saturating_sub(self.started_at) >= STABLE_MS {
                self.delay = self.restart.unwrap_or(0);
            }
            m.s("; restarting in ").secs(self.delay).s(" s").to(2);
            self.schedule();
        }
        None
    }

    /// Plans the next restart after the current delay, and backs the delay off.
    fn schedule(&mut self) {
        // While no program runs, the pid file names the supervisor.
        let _ = self.write_pids(self.me);
        self.restart_at = Some(os::monotonic_ms().saturating_add(self.delay));
        let cap = MAX_DELAY_MS.max(self.restart.unwrap_or(0));
        self.delay = self.delay.saturating_mul(2).min(cap);
    }

    fn respawn(&mut self) {
        match self.spawn() {
            Ok(pid) => {
                self.running = Some(pid);
                self.started_at = os::monotonic_ms();
                if let Err(e) = self.write_pids(pid) {
                    Msg::error().s("pid file: ").errno(e).to(2);
                }
            }
            Err(e) => {
                Msg::exec_failed(self.program.name(), e)
                    .s("; retrying in ")
                    .secs(self.delay)
                    .s(" s")
                    .to(2);
                self.schedule();
            }
        }
    }
}

/// A clean end, not restarted: exit status 0, or death by HUP, INT, TERM or PIPE.
fn clean(exit: Exit) -> bool {
    matches!(
        exit,
        Exit::Code(0) | Exit::Signal(libc::SIGHUP | libc::SIGINT | libc::SIGTERM | libc::SIGPIPE)
    )
}
