//! The daemon's side of `start`: three stage overrides, then exec or supervise.
//!
//! - stage 1 remembers whether the core detached (only then does the original
//!   process read the report pipe);
//! - stage 6, exec'ing directly: keeps the pid file's lock across `execve`
//!   (`PidLockFile::keep_across_exec`), so PROGRAM holds its own pid file's lock for its
//!   whole life (the descriptor is open in PROGRAM, and in any child that inherits it:
//!   the lock goes with the last of them); supervising, remembers the locked descriptor
//!   for PROGRAM to inherit;
//! - stage 7, supervising: blocks the signals the supervisor takes with
//!   `sigtimedwait` (and, when it logs, polls with a `signalfd`), at once, so none is
//!   lost or acted on by default before `run()`, and ignores the other catchable ones
//!   ([`supervise::ignore_strays`]).
//!
//! Stage 3 is the core's: `--user`'s ids are resolved before fork
//! (`ProcessIds::from_files`) and set in the configuration.

use core::ffi::c_int;

use pandaemonium::{os, Error, Program, Run, Stage, Stages};

use crate::out::Msg;
use crate::report::{self, Record};
use crate::{output, supervise};

/// The daemon: exec PROGRAM, or supervise it (`Some(restart delay)`).
pub struct Launch<'p> {
    program: Program<'p>,
    report: c_int,
    supervise: Option<Option<u64>>,
    /// PROGRAM's output, when supervised (`--log`, `--syslog`).
    output: output::Output,
    detached: bool,
    /// The pid file's locked descriptor after stage 6, when there is one.
    lock: Option<c_int>,
}

impl<'p> Launch<'p> {
    /// `report` is the write end of the report pipe; `supervise` the restart delay
    /// when supervising (`Some(None)`: supervise without restarting), `output` where
    /// PROGRAM's output then goes.
    pub fn new(
        program: Program<'p>,
        report: c_int,
        supervise: Option<Option<u64>>,
        output: output::Output,
    ) -> Self {
        Launch {
            program,
            report,
            supervise,
            output,
            detached: false,
            lock: None,
        }
    }

    /// The report pipe, when someone reads it (the core detached).
    fn report(&self) -> Option<c_int> {
        self.detached.then_some(self.report)
    }
}

impl Run for Launch<'_> {
    fn stage1(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.detach()?;
        self.detached = s.is_detached();
        Ok(())
    }

    fn stage6(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.pid_file()?;
        let Some(pid_file) = s.config().pid_file_ref() else {
            return Ok(());
        };
        self.lock = Some(pid_file.as_raw_fd());
        if self.supervise.is_none() {
            pid_file.keep_across_exec()?;
        }
        Ok(())
    }

    fn stage7(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.signals()?;
        if self.supervise.is_some() {
            os::block_signals(&supervise::WAITED)
                .map_err(|e| Error::os(Stage::Signals, e, "sigprocmask", b""))?;
            supervise::ignore_strays();
        }
        Ok(())
    }

    fn run(&mut self) -> i32 {
        match self.supervise {
            Some(restart) => supervise::run(
                &self.program,
                self.report(),
                self.lock,
                restart,
                self.output,
            ),
            None => {
                let e = self.program.exec();
                // Still here: remove the pid file first, so that it is gone by the time
                // the original process reports the failure and exits; let go of its lock
                // too, so that the original process (root, outside any jail) removes
                // it when this process could not (as `nobody`, or in a jail).
                pandaemonium::remove_pid_file();
                if let Some(fd) = self.lock {
                    os::close(fd);
                }
                Msg::exec_failed(self.program.name(), e).to(2);
                if let Some(fd) = self.report() {
                    report::send(fd, Record::ExecFailed(e));
                }
                1
            }
        }
    }
}
