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

use core::ffi::{c_int, CStr};

use pandaemonium::Errno;

use crate::exec::Program;
use crate::out::Msg;
use crate::report::{self, Received, Record};
use crate::{pidfile, sys};

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

/// The signals the supervisor blocks and waits for.
pub const WAITED: [c_int; 8] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCHLD,
];

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
    for sig in 1..=sys::sigrtmax() {
        if !WAITED.contains(&sig) && !FAULTS.contains(&sig) {
            sys::ignore(sig);
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
    pid_file: Option<(c_int, &'static CStr)>,
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
    pid_file: Option<(c_int, &'static CStr)>,
    restart: Option<u64>,
) -> i32 {
    let mut sv = Supervisor {
        program,
        pid_file,
        me: sys::getpid(),
        running: None,
        started_at: sys::monotonic_ms(),
        restart,
        delay: restart.unwrap_or(0),
        restart_at: None,
        stopping: false,
    };
    let failed = match spawn(program, sv.lock(), sv.me) {
        Err(e) => {
            Msg::error()
                .s("exec ")
                .c(program.name)
                .s(": ")
                .errno(e)
                .to(2);
            Some(Record::ExecFailed(e))
        }
        Ok(pid) => {
            sv.running = Some(pid);
            match sv.write_pids(pid) {
                Ok(()) => None,
                Err(e) => {
                    Msg::error().s("pid file: ").errno(e).to(2);
                    let _ = sys::kill(pid, libc::SIGKILL);
                    let _ = sys::wait_for(pid);
                    Some(Record::PidFileFailed(e))
                }
            }
        }
    };
    if let Some(record) = failed {
        pandaemonium::remove_pid_file();
        if let Some(fd) = report {
            report::send(fd, record);
        }
        return 1;
    }
    if let Some(fd) = report {
        report::send(fd, Record::Started);
        sys::close(fd);
    }
    sv.supervise()
}

impl Supervisor<'_, '_> {
    /// The pid file's locked descriptor, which PROGRAM inherits.
    fn lock(&self) -> Option<c_int> {
        self.pid_file.map(|(fd, _)| fd)
    }

    fn write_pids(&self, program: u32) -> Result<(), Errno> {
        match self.pid_file {
            Some((fd, path)) => pidfile::write_pids(fd, path, program, self.me),
            None => Ok(()),
        }
    }

    fn supervise(&mut self) -> i32 {
        loop {
            let timeout = self
                .restart_at
                .map(|at| at.saturating_sub(sys::monotonic_ms()));
            match sys::wait_signal(&WAITED, timeout) {
                Some(libc::SIGCHLD) => {
                    if let Some(code) = self.reap() {
                        return code;
                    }
                }
                Some(sig) => {
                    if STOPPING.contains(&sig) {
                        self.stopping = true;
                    }
                    match self.running {
                        Some(pid) => {
                            let _ = sys::kill(pid, sig);
                        }
                        None if self.stopping => return 0,
                        None => {}
                    }
                }
                None => {
                    if self.restart_at.is_some_and(|at| sys::monotonic_ms() >= at) {
                        self.restart_at = None;
                        self.respawn();
                    }
                }
            }
        }
    }

    /// Reaps children; `Some(status)` when the supervisor should end.
    fn reap(&mut self) -> Option<i32> {
        while let Ok(Some((pid, status))) = sys::wait_any() {
            if Some(pid) != self.running {
                continue;
            }
            self.running = None;
            let death = sys::death(status);
            let code = match death {
                sys::Death::Exited(code) => code,
                sys::Death::Signaled(sig) => 128 + sig,
            };
            if self.stopping || clean(death) {
                return Some(code);
            }
            let mut m = Msg::error();
            m.c(self.program.name).s(" (pid ").n(u64::from(pid)).s(") ");
            match death {
                sys::Death::Exited(code) => m.s("exited with status ").i(i64::from(code)),
                sys::Death::Signaled(sig) => m.s("killed by ").signal(sig),
            };
            if self.restart.is_none() {
                m.to(2);
                return Some(code);
            }
            if sys::monotonic_ms().saturating_sub(self.started_at) >= STABLE_MS {
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
        self.restart_at = Some(sys::monotonic_ms().saturating_add(self.delay));
        let cap = MAX_DELAY_MS.max(self.restart.unwrap_or(0));
        self.delay = self.delay.saturating_mul(2).min(cap);
    }

    fn respawn(&mut self) {
        match spawn(self.program, self.lock(), self.me) {
            Ok(pid) => {
                self.running = Some(pid);
                self.started_at = sys::monotonic_ms();
                if let Err(e) = self.write_pids(pid) {
                    Msg::error().s("pid file: ").errno(e).to(2);
                }
            }
            Err(e) => {
                Msg::error()
                    .s("exec ")
                    .c(self.program.name)
                    .s(": ")
                    .errno(e)
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
fn clean(death: sys::Death) -> bool {
    matches!(
        death,
        sys::Death::Exited(0)
            | sys::Death::Signaled(libc::SIGHUP | libc::SIGINT | libc::SIGTERM | libc::SIGPIPE)
    )
}

/// Forks and execs PROGRAM; its pid once `execve` succeeded (a CLOEXEC pipe tells, as
/// for the original process), or why it failed.
///
/// PROGRAM inherits the pid file's locked descriptor (`lock`), so it holds the lock too:
/// were the supervisor to die unnoticed, `status` would still show PROGRAM, `stop`
/// would still stop it and no second `start` would run beside it. And it gets SIGTERM
/// when the supervisor dies (`PR_SET_PDEATHSIG`, then `getppid` checked against
/// `supervisor`: a supervisor that died before the `prctl` sends nothing).
fn spawn(program: &Program<'_>, lock: Option<c_int>, supervisor: u32) -> Result<u32, Errno> {
    let (read_end, write_end) = sys::pipe()?;
    #[allow(unsafe_code)]
    // SAFETY: the tool is single-threaded, and the child below calls only
    // async-signal-safe functions (close, sigaction, sigprocmask, execve, write, _exit).
    let forked = unsafe { sys::fork() };
    match forked {
        Err(e) => {
            sys::close(read_end);
            sys::close(write_end);
            Err(e)
        }
        Ok(0) => {
            sys::close(read_end);
            // Default dispositions first (the core's SIGTERM handler would remove the
            // supervisor's pid file; ignored ones would survive exec), then the signals
            // the supervisor blocks.
            for sig in 1..=sys::sigrtmax() {
                sys::default_disposition(sig);
            }
            if sys::parent_death_signal(libc::SIGTERM).is_err() || sys::getppid() != supervisor {
                sys::exit_now(1);
            }
            if let Some(fd) = lock {
                if sys::set_cloexec(fd, false).is_err() {
                    sys::exit_now(1);
                }
            }
            let _ = sys::unblock_all();
            let e = program.exec();
            report::send(write_end, Record::ExecFailed(e));
            sys::exit_now(127)
        }
        Ok(pid) => {
            sys::close(write_end);
            let received = report::receive(read_end);
            sys::close(read_end);
            match received {
                Received::Record(Record::ExecFailed(e)) => {
                    let _ = sys::wait_for(pid as u32);
                    Err(e)
                }
                _ => Ok(pid as u32),
            }
        }
    }
}
