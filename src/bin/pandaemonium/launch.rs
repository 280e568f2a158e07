//! The daemon's side of `start`: three stage overrides, then exec or supervise.
//!
//! - stage 1 remembers whether the core detached (only then does the original
//!   process read the report pipe);
//! - stage 3 switches to `--user`'s ids ([`users`]; the core's `ProcessIds` would
//!   link libc's user database);
//! - stage 6, exec'ing directly: clears `FD_CLOEXEC` on the pid file's locked
//!   descriptor, so the open-file-description lock stays held across `execve` and
//!   PROGRAM holds its own pid file's lock for its whole life (the descriptor is open in
//!   PROGRAM, and in any child that inherits it: the lock goes with the last of them);
//! - stage 7, supervising: blocks the signals the supervisor takes with
//!   `sigtimedwait`, at once, so none is lost or acted on by default before `run()`,
//!   and ignores the other catchable ones ([`supervise::ignore_strays`]).

use core::ffi::{c_int, CStr};

use pandaemonium::{Error, Run, Stage, Stages};

use crate::exec::Program;
use crate::out::Msg;
use crate::report::{self, Record};
use crate::users::{self, Ids};
use crate::{supervise, sys};

/// The daemon: exec PROGRAM, or supervise it (`Some(restart delay)`).
pub struct Launch<'p> {
    program: Program<'p>,
    report: c_int,
    supervise: Option<Option<u64>>,
    detached: bool,
    /// The pid file's path (from our `argv`), and its locked descriptor after stage 6.
    pid_path: Option<&'static CStr>,
    pid_file: Option<(c_int, &'static CStr)>,
    ids: Option<Ids>,
}

impl<'p> Launch<'p> {
    /// `report` is the write end of the report pipe; `supervise` the restart delay
    /// when supervising (`Some(None)`: supervise without restarting); `pid_path` the
    /// configured pid file; `ids` what `--user` asked for.
    pub fn new(
        program: Program<'p>,
        report: c_int,
        supervise: Option<Option<u64>>,
        pid_path: Option<&'static CStr>,
        ids: Option<Ids>,
    ) -> Self {
        Launch {
            program,
            report,
            supervise,
            detached: false,
            pid_path,
            pid_file: None,
            ids,
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

    // The core's `Config::ids` is never set, so its stage 3 would do nothing.
    fn stage3(&mut self, _: &mut Stages<'_, '_>) -> Result<(), Error> {
        match &self.ids {
            Some(ids) => users::apply(ids),
            None => Ok(()),
        }
    }

    fn stage6(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.pid_file()?;
        let (Some(pid_file), Some(path)) = (s.config().pid_file_ref(), self.pid_path) else {
            return Ok(());
        };
        let fd = pid_file.as_raw_fd();
        self.pid_file = Some((fd, path));
        if self.supervise.is_none() {
            sys::set_cloexec(fd, false)
                .map_err(|e| Error::os(Stage::PidFile, e, "fcntl F_SETFD", path.to_bytes()))?;
        }
        Ok(())
    }

    fn stage7(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
        s.signals()?;
        if self.supervise.is_some() {
            sys::block(&supervise::WAITED)
                .map_err(|e| Error::os(Stage::Signals, e, "sigprocmask", b""))?;
            supervise::ignore_strays();
        }
        Ok(())
    }

    fn run(&mut self) -> i32 {
        match self.supervise {
            Some(restart) => supervise::run(&self.program, self.report(), self.pid_file, restart),
            None => {
                let e = self.program.exec();
                // Still here: remove the pid file first, so that it is gone by the time
                // the original process reports the failure and exits.
                pandaemonium::remove_pid_file();
                Msg::error()
                    .s("exec ")
                    .c(self.program.name)
                    .s(": ")
                    .errno(e)
                    .to(2);
                if let Some(fd) = self.report() {
                    report::send(fd, Record::ExecFailed(e));
                }
                1
            }
        }
    }
}
