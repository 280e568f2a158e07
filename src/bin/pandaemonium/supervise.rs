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
//! PROGRAM's output, with `--log` and `--syslog`, goes through the supervisor:
//! [`output`](crate::output).

use core::ffi::c_int;

use pandaemonium::{os, Errno, Exit, Program};

use crate::out::Msg;
use crate::output::{Logger, Output};
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
        self.logger = output.logger(self.program.name())?;
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
        match &mut self.logger {
            None => self.program.spawn(self.lock, death),
            Some(logger) => logger.spawn(self.program, self.lock, death),
        }
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
