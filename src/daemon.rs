//! `Daemon`: a [`Run`] plus a [`Config`], and the driver that runs the stages in order.

use core::ops::{Deref, DerefMut};

use crate::detach;
use crate::fds::Method;
use crate::report::{Capture, Receiver, Reporter, CAPTURE_CAPACITY};
use crate::{out, sys, Config, Error, ErrorKind, Run, Stage, Stages};

/// Which process a stage call returned in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Nothing has run: the launching process.
    Launcher,
    /// The daemon (or, without detaching, the launching process become the daemon).
    Daemon,
    /// The original process, after stage 1 forked.
    Original,
}

/// The driver's bookkeeping.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) done: u8,
    pub(crate) role: Role,
    pub(crate) forked: bool,
    pub(crate) check_threads: bool,
    pub(crate) close_method: Method,
    pub(crate) reporter: Option<Reporter>,
    pub(crate) pending: Option<(Receiver, libc::pid_t)>,
    /// The launcher's `SIGPIPE` disposition, saved by stage 1 in a detached daemon.
    pub(crate) pipe: Option<sys::Saved>,
    /// Stage 7's default work ran while the channel was open: `SIGPIPE` gets the
    /// map's disposition when it closes.
    pub(crate) pipe_from_map: bool,
    /// Copies of the launcher's stdout and stderr for stage 9 (see `detach`), or -1.
    pub(crate) copies: [libc::c_int; 3],
    /// The launcher's working directory, for stage 9's relative paths, or -1.
    pub(crate) cwd: libc::c_int,
    pid: Option<u32>,
    main_pid: Option<u32>,
    outcome: Option<Result<(), Error>>,
    output: Capture,
    error: Capture,
}

/// The daemon has been set up: what the original process learns from `start()`.
#[derive(Debug)]
pub struct Started<'d> {
    /// The daemon's process id.
    pub pid: u32,
    /// The pid a readiness source ([`Config::wait_ready_from`]) named with `MAINPID=`:
    /// the process that is the service, when the program the daemon exec'd forked it.
    pub main_pid: Option<u32>,
    /// What the daemon wrote to stdout during set-up (pandaemonium's `output`).
    pub output: &'d Capture,
    /// What the daemon wrote to stderr during set-up (pandaemonium's `error`).
    pub error: &'d Capture,
}

/// Where [`Daemon::stage`] returned.
#[derive(Debug)]
pub enum Side<'d> {
    /// In the daemon: go on with custom steps, then `start()` or `activate()`.
    Daemon,
    /// In the original process, once the daemon finished stage 9.
    Original(Started<'d>),
}

/// Proof that [`Daemon::activate`] returned inside the daemon.
#[derive(Debug)]
#[non_exhaustive]
pub struct Activated {
    /// The daemon's process id.
    pub pid: u32,
}

/// A daemon: what it runs ([`Run`]) and how it is set up ([`Config`], reachable through
/// `Deref`, so `daemon.umask(0o027)` works).
///
/// ```no_run
/// use pandaemonium::{target, Daemon};
///
/// let mut daemon = Daemon::new(target(|greeting: &str| {
///     let _ = greeting;
///     0
/// }, "hello"));
/// daemon.umask(0o027).pid_file(c"/tmp/hello.pid")?;
/// match daemon.start() {
///     Ok(started) => println!("started pid {}", started.pid),
///     Err(e) => eprintln!("{e}"),
/// }
/// # Ok::<(), pandaemonium::Error>(())
/// ```
#[derive(Debug)]
pub struct Daemon<'a, R> {
    app: R,
    config: Config<'a>,
    state: State,
}

impl<'a, R> Deref for Daemon<'a, R> {
    type Target = Config<'a>;
    fn deref(&self) -> &Config<'a> {
        &self.config
    }
}

impl<'a, R> DerefMut for Daemon<'a, R> {
    fn deref_mut(&mut self) -> &mut Config<'a> {
        &mut self.config
    }
}

impl<'a, R: Run> Daemon<'a, R> {
    /// A daemon running `app` with the default [`Config`].
    pub fn new(app: R) -> Daemon<'a, R> {
        Daemon::with_config(app, Config::default())
    }

    /// A daemon running `app` with `config`.
    pub fn with_config(app: R, config: Config<'a>) -> Daemon<'a, R> {
        Daemon {
            app,
            config,
            state: State {
                done: 0,
                role: Role::Launcher,
                forked: false,
                check_threads: true,
                close_method: Method::Auto,
                reporter: None,
                pending: None,
                pipe: None,
                pipe_from_map: false,
                copies: [sys::NO_FD; 3],
                cwd: sys::NO_FD,
                pid: None,
                main_pid: None,
                outcome: None,
                output: Capture::default(),
                error: Capture::default(),
            },
        }
    }
}

/// Keeps a panic in user code from unwinding out of the daemon into the launcher's
/// code (which would run the launcher's destructors, and the rest of `main`, in the
/// daemon). Dropped only by unwinding: the normal path `forget`s it. Works without
/// std: no `thread::panicking()` is needed.
struct UnwindGuard {
    /// The stage whose user code runs, or `None` for `run()`.
    stage: Option<Stage>,
}

impl Drop for UnwindGuard {
    #[cold]
    #[inline(never)]
    fn drop(&mut self) {
        let fd = crate::cleanup::report_fd();
        if fd == sys::NO_FD && self.stage.is_some() {
            // No fork yet (or none at all): the panic is the launcher's own to unwind.
            return;
        }
        let e = Error::new(self.stage, ErrorKind::Panicked, "panicked in the daemon");
        if fd != sys::NO_FD {
            Reporter { fd }.failed(&e);
        }
        crate::cleanup::exit(101)
    }
}

impl<'a, R: Run> Daemon<'a, R> {
    /// The configuration (also reachable through `Deref`).
    pub fn config(&mut self) -> &mut Config<'a> {
        &mut self.config
    }

    /// What runs in the daemon.
    pub fn app(&mut self) -> &mut R {
        &mut self.app
    }

    /// The number of the last stage completed in this process (0 to 9).
    pub fn stages_done(&self) -> u8 {
        self.state.done.min(9)
    }

    /// In the original process: the daemon's pid, once it reported it (also after a
    /// failure, when the daemon has already exited).
    pub fn daemon_pid(&self) -> Option<u32> {
        self.state.pid
    }

    /// What the daemon wrote to stdout during set-up (in the original process, once
    /// `start()`, `stage()` or `activate()` returned there).
    pub fn output(&self) -> &Capture {
        &self.state.output
    }

    /// What the daemon wrote to stderr during set-up.
    pub fn error(&self) -> &Capture {
        &self.state.error
    }

    /// Lets stage 1 fork although the process has other threads, or although their
    /// number can't be read (no `/proc`); and stage 3 change the ids without a fork.
    ///
    /// By default stage 1 counts the caller's threads (`/proc/self/task`, then
    /// `/proc/self/stat`) and refuses to fork unless there is exactly one:
    /// [`ErrorKind::Threaded`], or
    /// [`ErrorKind::ThreadsUnknown`] when `/proc` is not mounted. Stage 3 changes the
    /// ids, groups and capabilities of the calling thread alone (one system call each,
    /// as the kernel does): after a fork that is the whole daemon, and a daemon that
    /// did not fork ([`Detach::Never`](crate::Detach::Never), or `Auto` under a
    /// supervisor) with ids or privileges to set is counted the same way first.
    ///
    /// # Safety
    ///
    /// After fork only the forking thread exists in the daemon. Every lock another
    /// thread held at that moment (the allocator's, stdio's, a `Mutex` of yours) stays
    /// locked forever there. The caller must guarantee that, until it execs or exits,
    /// the daemon's stage overrides, custom steps and `run()` call only
    /// async-signal-safe functions and take no lock another thread may have held: no
    /// allocation, no `println!`, no `std::sync` lock shared with those threads. The
    /// nine stages themselves keep to that rule. Where `/proc` is missing, the caller
    /// must know the process is single-threaded (e.g. early boot, no threads spawned).
    /// Without a fork, any other thread keeps its ids and capabilities (root's, say):
    /// the caller must know there is none, or that it runs nothing that matters.
    #[allow(unsafe_code)]
    pub unsafe fn allow_threads(&mut self) -> &mut Self {
        self.state.check_threads = false;
        self
    }

    /// Whether this is a daemon that stage 1 forked (not the original process, not a
    /// process that became the daemon without forking).
    #[cfg(feature = "std")]
    pub(crate) fn in_detached_daemon(&self) -> bool {
        self.state.forked && self.state.role == Role::Daemon
    }

    /// Chooses stage 8's method, to test the fallbacks of older kernels.
    #[doc(hidden)]
    pub fn close_method(&mut self, method: Method) -> &mut Self {
        self.state.close_method = method;
        self
    }

    fn advance(&mut self, upto: Stage) -> Result<(), Error> {
        advance(&mut self.config, &mut self.state, &mut self.app, upto)
    }

    /// Runs the remaining stages up to `upto` (the seed's `daemon.stage4()` is
    /// `daemon.stage(Stage::Umask)`), so custom steps can go between stages; `start()`
    /// or `activate()` then runs the rest.
    ///
    /// If stage 1 forks, this returns twice: [`Side::Daemon`] in the daemon, and
    /// [`Side::Original`] in the original process once the daemon has finished stage 9
    /// (or `Err` with the daemon's failure).
    ///
    /// Descriptors that your code owns and keeps in the daemon must be passed to
    /// [`inherit_file`](Config::inherit_file) if stage 8 is yet to run: see the crate's
    /// [I/O safety](crate#io-safety-stage-8-closes-what-is-not-kept) section.
    ///
    /// # Errors
    ///
    /// The failed stage's error; [`ErrorKind::StageOrder`] for a stage already done, or
    /// any call in the original process after detaching (pandaemonium's `check_stage`).
    pub fn stage(&mut self, upto: Stage) -> Result<Side<'_>, Error> {
        match self.advance(upto) {
            Ok(()) => Ok(Side::Daemon),
            Err(e) if e.is_detached_marker() => self.state.original_result().map(Side::Original),
            Err(e) => Err(e),
        }
    }

    /// Runs the remaining stages, then `run()` in the daemon, which then removes its pid
    /// file and exits with `run()`'s status (with the `std` feature, after flushing
    /// std's stdout, which `print!` may have left buffered).
    ///
    /// Returns in the original process only, once the daemon has finished stage 9:
    /// `Ok` with its pid and set-up output, or `Err` with the stage that failed, its
    /// errno and message (the daemon's stderr is in [`error`](Self::error)). A failed
    /// daemon has removed its pid file and exited before this returns. Without
    /// detaching, this process becomes the daemon and `start()` returns only `Err`.
    ///
    /// # Errors
    ///
    /// The failed stage's error, or [`ErrorKind::StageOrder`] for a second `start()`.
    pub fn start(&mut self) -> Result<Started<'_>, Error> {
        if self.state.done < 9 || self.state.role == Role::Original {
            match self.advance(Stage::Redirect) {
                Ok(()) => {}
                Err(e) if e.is_detached_marker() => return self.state.original_result(),
                Err(e) => return Err(e),
            }
        } else if self.state.done >= 10 {
            return Err(Error::new(
                None,
                ErrorKind::StageOrder,
                "the daemon was already started",
            ));
        }
        self.state.done = 10;
        let guard = UnwindGuard { stage: None };
        let status = self.app.run();
        core::mem::forget(guard);
        // With other threads at fork, std's stdout lock may be held for ever: run()
        // promised not to touch it then (`allow_threads`), so neither do we.
        #[cfg(feature = "std")]
        if self.state.check_threads {
            crate::with_std::flush_stdout();
        }
        if let Some(pid_file) = &mut self.config.pid_file {
            let _ = pid_file.release();
        }
        sys::exit_now(status)
    }

    /// Runs the remaining stages and returns inside the daemon (the seed's
    /// foreground-or-daemon pattern). The original process prints the daemon's set-up
    /// output and error and exits: 0 when the daemon finished stage 9, 1 otherwise.
    ///
    /// Stage 8 has closed every descriptor not kept: a `File` or socket opened before
    /// this call and used after it must have been passed to
    /// [`inherit_file`](Config::inherit_file) (the crate's
    /// [I/O safety](crate#io-safety-stage-8-closes-what-is-not-kept) section).
    ///
    /// # Errors
    ///
    /// Failures before detaching, or in a daemon that did not detach; a second call.
    pub fn activate(&mut self) -> Result<Activated, Error> {
        if self.state.done < 9 || self.state.role == Role::Original {
            match self.advance(Stage::Redirect) {
                Ok(()) => {}
                Err(e) if e.is_detached_marker() => self.state.report(),
                Err(e) => return Err(e),
            }
        } else if self.state.done >= 10 {
            return Err(Error::new(
                None,
                ErrorKind::StageOrder,
                "the daemon was already activated",
            ));
        }
        self.state.done = 10;
        Ok(Activated {
            pid: sys::getpid() as u32,
        })
    }

    /// In the original process: prints the daemon's set-up output to stdout, its error
    /// output and any failure to stderr, and exits (0 when the daemon started, 1 when
    /// it failed).
    pub fn report(&self) -> ! {
        self.state.report()
    }
}

// The driver proper: not generic, so it is compiled once in this crate rather than
// once per daemon type in the user's. It reaches the daemon through `&mut dyn Driven`,
// whose one `stage` method per daemon type has the default stages inlined.

/// What the driver needs of a [`Run`]: one entry point per daemon type.
trait Driven {
    fn stage(&mut self, stage: Stage, s: &mut Stages<'_, '_>) -> Result<(), Error>;
    fn monitor(&mut self, stream: crate::report::Stream, data: &[u8]);
}

impl<R: Run> Driven for R {
    fn stage(&mut self, stage: Stage, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        match stage {
            Stage::Detach => self.stage1(s),
            Stage::PreventCore => self.stage2(s),
            Stage::ProcessIds => self.stage3(s),
            Stage::Umask => self.stage4(s),
            Stage::WorkingDirectory => self.stage5(s),
            Stage::PidFile => self.stage6(s),
            Stage::Signals => self.stage7(s),
            Stage::CloseFiles => self.stage8(s),
            Stage::Redirect => self.stage9(s),
        }
    }

    fn monitor(&mut self, stream: crate::report::Stream, data: &[u8]) {
        Run::monitor(self, stream, data);
    }
}

fn run_stage(
    config: &mut Config<'_>,
    state: &mut State,
    app: &mut dyn Driven,
    stage: Stage,
) -> Result<(), Error> {
    let s = &mut Stages { config, state };
    let guard = UnwindGuard { stage: Some(stage) };
    let result = app.stage(stage, s);
    core::mem::forget(guard);
    result
}

/// Runs the stages after the last one done, up to `upto`. In the original process
/// it returns the [`ErrorKind::Detached`] marker once the daemon has been monitored.
fn advance(
    config: &mut Config<'_>,
    state: &mut State,
    app: &mut dyn Driven,
    upto: Stage,
) -> Result<(), Error> {
    let order = |what: &str| Error::new(Some(upto), ErrorKind::StageOrder, what);
    if state.role == Role::Original {
        return Err(order(
            "no stage runs in the original process after detaching",
        ));
    }
    if state.done >= 10 {
        return Err(order("the daemon was already started"));
    }
    if state.done >= upto.number() {
        return Err(order("stage already done"));
    }
    if state.done == 0 {
        state.cwd = crate::stdio::launcher_directory(&config.stdio)?;
    }
    for n in state.done + 1..=upto.number() {
        let stage = Stage::from_number(n).unwrap_or(Stage::Redirect);
        let timed = config.start_timeout.is_some() || config.wait_ready.is_some();
        if let (Some(reporter), true) = (&state.reporter, timed) {
            reporter.stage(stage);
        }
        match run_stage(config, state, app, stage) {
            Ok(()) => {
                if state.role == Role::Launcher {
                    // A stage-1 override that did not detach: this process is the daemon.
                    state.role = Role::Daemon;
                }
                state.done = n;
            }
            Err(e) if e.is_detached_marker() && state.role == Role::Original => {
                state.monitor(app, config);
                return Err(e);
            }
            Err(e) => return Err(fail(config, state, e)),
        }
    }
    if state.done == 9 {
        state.close_channel(config);
    }
    Ok(())
}

/// A stage failed in this process: remove our pid file; in a detached daemon, report
/// to the original process and exit; otherwise hand the error back.
fn fail(config: &mut Config<'_>, state: &mut State, e: Error) -> Error {
    if let Some(pid_file) = &mut config.pid_file {
        if pid_file.sealed_pid().is_some() || state.forked {
            let _ = pid_file.release();
        }
    }
    if let Some(reporter) = state.reporter {
        reporter.failed(&e);
        sys::exit_now(1);
    }
    if state.cwd != sys::NO_FD {
        sys::close(state.cwd);
        state.cwd = sys::NO_FD;
    }
    e
}

impl State {
    /// The daemon, after stage 9: the last record, then `SIGPIPE` gets its final
    /// disposition (ignored until here, so that a launcher that went away can't kill
    /// the daemon through the channel), then the channel closes.
    fn close_channel(&mut self, config: &Config<'_>) {
        let Some(reporter) = self.reporter.take() else {
            return;
        };
        reporter.done();
        // The last write to the channel is done (stage 9 replaced 1 and 2). SIGPIPE's
        // own disposition goes in before the close, so that the original process,
        // which returns on EOF, never sees the daemon with SIGPIPE still ignored.
        if self.pipe_from_map {
            crate::signals::apply_pipe(&config.signals);
        } else if let Some(saved) = &self.pipe {
            let _ = sys::restore(libc::SIGPIPE, saved);
        }
        if config.wait_ready.is_some() {
            // The launcher waits for `ready()`, which closes the channel.
            crate::ready::hold_status(reporter.fd);
            return;
        }
        crate::cleanup::set_report_fd(sys::NO_FD);
        sys::close(reporter.fd);
    }

    /// The original process: collect output and the outcome, reap the intermediate;
    /// when the daemon failed, died (or was given up on and killed) without cleaning
    /// up, remove the pid file it left.
    fn monitor(&mut self, app: &mut dyn Driven, config: &mut Config<'_>) {
        let Some((receiver, child)) = self.pending.take() else {
            return;
        };
        let waiting = config.wait_ready;
        let deadline = waiting
            .map(|w| w.timeout)
            .or(config.start_timeout)
            .map(|t| {
                let ms = t.as_millis().min(u128::from(u32::MAX)) as u64;
                (sys::monotonic_ms().saturating_add(ms), ms)
            });
        let on_output = &mut |stream, data: &[u8]| app.monitor(stream, data);
        let (output, error) = (&mut self.output, &mut self.error);
        let outcome = match waiting {
            // Settled there too: the intermediate killed when it must go, systemd told.
            Some(w) => (w.monitor)(
                receiver,
                output,
                error,
                on_output,
                deadline,
                (config.ready_source, child),
            ),
            None => receiver.monitor(output, error, on_output, deadline, false, ()),
        };
        // The intermediate process ends right after its fork or, waiting for readiness,
        // once the daemon is ready or has ended (a poll interrupted by its SIGCHLD is
        // resumed): reaped now, unseen by the monitoring.
        detach::reap(child);
        // A daemon that failed removes its pid file itself, unless it could not (it
        // switched to a user who may not unlink in the pid file's directory, from a
        // file acquired here before the fork): then it is left to us too.
        if outcome.left_behind || outcome.result.is_err() {
            if let Some(pid_file) = &mut config.pid_file {
                pid_file.remove_left(outcome.pid);
            }
        }
        self.pid = outcome.pid;
        self.main_pid = outcome.main_pid;
        self.outcome = Some(outcome.result);
    }

    fn original_result(&self) -> Result<Started<'_>, Error> {
        match &self.outcome {
            Some(Err(e)) => Err(e.clone()),
            _ => Ok(Started {
                pid: self.pid.unwrap_or(0),
                main_pid: self.main_pid,
                output: &self.output,
                error: &self.error,
            }),
        }
    }

    /// [`Daemon::report`].
    fn report(&self) -> ! {
        out::write(1, self.output.as_bytes());
        out::write(2, self.error.as_bytes());
        for (capture, what) in [(&self.output, "stdout"), (&self.error, "stderr")] {
            if capture.is_truncated() {
                out::line(2, |out| {
                    out("(the daemon's set-up ");
                    out(what);
                    out(" was cut at ");
                    out(crate::decimal::Dec::new(CAPTURE_CAPACITY as i64).as_str());
                    out(" bytes)");
                });
            }
        }
        match &self.outcome {
            Some(Err(e)) => {
                out::error_line(2, e);
                out::exit(1)
            }
            _ => out::exit(0),
        }
    }
}
