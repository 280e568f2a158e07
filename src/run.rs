//! `Run`: what a daemon does and how its stages run; `target` for a plain function.

use crate::report::Stream;
use crate::{Error, Stages};

/// What a daemon does, and optionally how its stages run (pandaemonium's subclass style).
///
/// Implement [`run`](Run::run) for your own type; override a `stageN` to change or extend
/// that stage (call the default primitive on [`Stages`] from your override to keep its
/// work). The driver calls each stage once, in order, so pandaemonium's `check_stage`
/// bookkeeping is never the override's job. For a plain function, see [`target`].
///
/// ```no_run
/// use pandaemonium::{Daemon, Error, Run, Stages};
///
/// struct Server { port: u16 }
///
/// impl Run for Server {
///     fn run(&mut self) -> i32 {
///         let _ = self.port; // serve it ...
///         0
///     }
///     // Stage 7 as usual, then something of our own with the signals in place.
///     fn stage7(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
///         s.signals()?;
///         // custom set-up here
///         Ok(())
///     }
/// }
///
/// let mut daemon = Daemon::new(Server { port: 8080 });
/// let started = daemon.start()?;
/// println!("daemon running as pid {}", started.pid);
/// # Ok::<(), Error>(())
/// ```
pub trait Run {
    /// The daemon's activity; its return value is the daemon's exit status.
    fn run(&mut self) -> i32;

    /// Stage 1: [`Stages::detach`].
    fn stage1(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.detach()
    }
    /// Stage 2: [`Stages::prevent_core`].
    fn stage2(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.prevent_core()
    }
    /// Stage 3: [`Stages::process_ids`].
    fn stage3(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.process_ids()
    }
    /// Stage 4: [`Stages::umask`].
    fn stage4(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.umask()
    }
    /// Stage 5: [`Stages::working_directory`].
    fn stage5(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.working_directory()
    }
    /// Stage 6: [`Stages::pid_file`].
    fn stage6(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.pid_file()
    }
    /// Stage 7: [`Stages::signals`].
    fn stage7(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.signals()
    }
    /// Stage 8: [`Stages::close_files`].
    fn stage8(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.close_files()
    }
    /// Stage 9: [`Stages::redirect`].
    fn stage9(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.redirect()
    }

    /// Called in the original process for each chunk the daemon writes to stdout or
    /// stderr during set-up, as it arrives (pandaemonium's `monitor`); override it to
    /// stream set-up output live. The chunks are captured as `output` and `error`
    /// whatever this does. Runs in the original process, where allocation is fine.
    fn monitor(&mut self, stream: Stream, data: &[u8]) {
        let _ = (stream, data);
    }
}

/// A target function and its arguments (pandaemonium's `Daemon(target=f, args=...)`).
///
/// Any `FnOnce(A) -> i32` works, closures included; nothing is boxed. Build one with
/// [`target`].
pub struct Target<F, A> {
    call: Option<(F, A)>,
}

/// The daemon that calls `f(args)` (pandaemonium's `target` and `args`); `f`'s return
/// value is the exit status.
///
/// ```no_run
/// use pandaemonium::{target, Daemon};
///
/// fn serve(port: u16) -> i32 {
///     let _ = port; // ...
///     0
/// }
///
/// let mut daemon = Daemon::new(target(serve, 8080));
/// daemon.pid_file(c"/tmp/serve.pid")?;
/// daemon.start()?;
/// # Ok::<(), pandaemonium::Error>(())
/// ```
pub fn target<F: FnOnce(A) -> i32, A>(f: F, args: A) -> Target<F, A> {
    Target {
        call: Some((f, args)),
    }
}

impl<F: FnOnce(A) -> i32, A> Run for Target<F, A> {
    fn run(&mut self) -> i32 {
        match self.call.take() {
            Some((f, args)) => f(args),
            None => 1,
        }
    }
}
