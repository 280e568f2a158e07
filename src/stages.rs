//! `Stages`: the nine stage primitives, as handed to stage overrides.

use crate::daemon::{Role, State};
use crate::detach::{self, Detached};
use crate::fds::{self, KeepList};
use core::ffi::c_int;

use crate::{process, signals, stdio, sys, Config, Error, ErrorKind, Stage, Stdio};

/// The stage primitives, handed to [`Run`](crate::Run)'s stage overrides.
///
/// Each method is the default work of one stage; an override calls it (or not) and
/// adds its own steps. All of them are async-signal-safe and allocate nothing: they run
/// between fork and `run()`.
pub struct Stages<'s, 'a> {
    pub(crate) config: &'s mut Config<'a>,
    pub(crate) state: &'s mut State,
}

impl<'a> Stages<'_, 'a> {
    /// The configuration, e.g. to read a setting in an override.
    pub fn config(&mut self) -> &mut Config<'a> {
        self.config
    }

    /// Whether stage 1 forked (so this is a detached daemon with a report channel).
    pub fn is_detached(&self) -> bool {
        self.state.forked
    }

    /// Stage 1: fork, `setsid`, fork, unless [`Detach`](crate::Detach) says otherwise.
    ///
    /// Before forking it refuses a multi-threaded process ([`ErrorKind::Threaded`],
    /// [`ErrorKind::ThreadsUnknown`]) and makes the report pipes. In the daemon, the
    /// set-up stdout and stderr then go to the original process, and any closed
    /// descriptor among 0-2 is opened on `/dev/null`.
    ///
    /// # Errors
    ///
    /// Those above, `pipe2`/`fork`/`setsid` failures, and, in the original process, the
    /// [`ErrorKind::Detached`] marker: let `?` carry it out of your override.
    ///
    /// Override: implement [`Run::stage1`](crate::Run::stage1); call this from the
    /// override to keep the default work.
    pub fn detach(&mut self) -> Result<(), Error> {
        if self.state.role != Role::Launcher {
            return Err(Error::new(
                Some(Stage::Detach),
                ErrorKind::StageOrder,
                "already detached",
            ));
        }
        let fork = detach::decide(self.config.detach, || self.config.supervisor());
        let wait = self
            .config
            .wait_ready
            .filter(|_| fork)
            .map(|w| w.second_fork);
        if let Some(before_fork) = self.config.before_fork {
            before_fork(self.config)?;
        }
        crate::ready::prepare(self.config.ready_fd);
        // `Stdio::Fd(1)` / `Fd(2)` mean the launcher's stdout / stderr, which a detached
        // daemon's own 1 and 2 are not until stage 9 (they carry set-up output).
        // (A match, not `contains`: comparing whole `Stdio` values, paths included,
        // links a generic slice search for this one question.)
        let stdio = &self.config.stdio;
        let wants = |fd: c_int| {
            stdio
                .iter()
                .any(|s| matches!(s, Some(Stdio::Fd(f)) if *f == fd))
        };
        let keep = [false, wants(1), wants(2)];
        match detach::detach(fork, self.state.check_threads, keep, wait)? {
            Detached::Daemon {
                reporter,
                forked,
                pipe,
                copies,
            } => {
                self.state.role = Role::Daemon;
                self.state.reporter = reporter;
                self.state.forked = forked;
                self.state.pipe = pipe;
                self.state.copies = copies;
                for target in self.config.stdio.iter_mut().flatten() {
                    if let Stdio::Fd(fd @ 1..=2) = target {
                        if copies[*fd as usize] != sys::NO_FD {
                            *fd = copies[*fd as usize];
                        }
                    }
                }
                Ok(())
            }
            Detached::Original { receiver, child } => {
                self.state.role = Role::Original;
                self.state.pending = Some((receiver, child));
                // The lock now belongs to the daemon's copy of the descriptor.
                if let Some(pid_file) = &mut self.config.pid_file {
                    pid_file.hand_over();
                }
                if self.state.cwd != sys::NO_FD {
                    sys::close(self.state.cwd);
                    self.state.cwd = sys::NO_FD;
                }
                Err(Error::bare(Some(Stage::Detach), ErrorKind::Detached))
            }
        }
    }

    /// Stage 2: core dumps off (`RLIMIT_CORE` 0/0, `PR_SET_DUMPABLE` 0) when
    /// [`prevent_core`](Config::prevent_core) is set.
    ///
    /// # Errors
    ///
    /// `setrlimit` failures.
    ///
    /// Override: implement [`Run::stage2`](crate::Run::stage2); call this from the
    /// override to keep the default work.
    pub fn prevent_core(&mut self) -> Result<(), Error> {
        process::prevent_core(self.config.prevent_core)
    }

    /// Stage 3: [`chroot_directory`](Config::chroot_directory) when set, then
    /// `setgroups`, `setgid`, `setuid` to the configured
    /// [`ProcessIds`](crate::ProcessIds) (keeping
    /// [`keep_capabilities`](Config::keep_capabilities)), then a check that `setuid(0)`
    /// fails, then [`no_new_privileges`](Config::no_new_privileges).
    ///
    /// # Errors
    ///
    /// `EPERM` and the like from the calls; [`ErrorKind::PrivilegesRegained`];
    /// [`ErrorKind::CapabilityUnavailable`].
    ///
    /// Override: implement [`Run::stage3`](crate::Run::stage3); call this from the
    /// override to keep the default work.
    pub fn process_ids(&mut self) -> Result<(), Error> {
        let Some(stage3) = self.config.stage3 else {
            return Ok(());
        };
        if !self.state.forked && self.state.check_threads {
            // After a fork only this thread exists; without one, count them.
            detach::check_threads_unforked()?;
        }
        stage3(self.config, &mut self.state.cwd)
    }

    /// Stage 4: `umask` (default `0o077`). Cannot fail.
    ///
    /// # Errors
    ///
    /// None; the `Result` keeps the stage signatures alike.
    ///
    /// Override: implement [`Run::stage4`](crate::Run::stage4); call this from the
    /// override to keep the default work.
    pub fn umask(&mut self) -> Result<(), Error> {
        process::umask(self.config.umask);
        Ok(())
    }

    /// Stage 5: `chdir` to the working directory (default `/`).
    ///
    /// # Errors
    ///
    /// `chdir` failures, naming the path.
    ///
    /// Override: implement [`Run::stage5`](crate::Run::stage5); call this from the
    /// override to keep the default work.
    pub fn working_directory(&mut self) -> Result<(), Error> {
        process::working_directory(self.config.working_directory)
    }

    /// Stage 6: acquire the pid file (unless already acquired) and seal it with the
    /// daemon's pid; the lock is held until the daemon ends.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyRunning`]; `open` failures (`EACCES`, `ELOOP` for a symlink).
    ///
    /// Override: implement [`Run::stage6`](crate::Run::stage6); call this from the
    /// override to keep the default work.
    pub fn pid_file(&mut self) -> Result<(), Error> {
        if let Some(pid_file) = &mut self.config.pid_file {
            pid_file.seal()?;
            pid_file.register_cleanup();
        }
        Ok(())
    }

    /// Stage 7: unblock all signals, reset every disposition to the default, then
    /// install the signal map. Signals the C library reserves (glibc 32-33, musl 32-34)
    /// are left as inherited: `sigaction` refuses them. In a detached daemon `SIGPIPE`
    /// stays ignored until the report channel closes after stage 9, then gets the
    /// map's disposition.
    ///
    /// # Errors
    ///
    /// `sigaction` failures for a mapped signal.
    ///
    /// Override: implement [`Run::stage7`](crate::Run::stage7); call this from the
    /// override to keep the default work.
    pub fn signals(&mut self) -> Result<(), Error> {
        let channel_open = self.state.reporter.is_some();
        if let Some(prepare) = self.config.stage7 {
            prepare(self.config)?;
        }
        signals::install(&self.config.signals, channel_open)?;
        self.state.pipe_from_map = channel_open;
        Ok(())
    }

    /// Stage 8: close every descriptor above 2 except `inherit_files`, the pid file,
    /// descriptors given as stdio targets and the report channel.
    ///
    /// A descriptor your code still owns (a `File`, a listener captured by the daemon)
    /// and did not pass to [`inherit_file`](Config::inherit_file) is closed here: later
    /// reads fail with `EBADF` or reach whatever reuses the number, and std aborts when
    /// it drops it ("IO Safety violation").
    ///
    /// # Errors
    ///
    /// Unexpected `close_range` failures.
    ///
    /// Override: implement [`Run::stage8`](crate::Run::stage8); call this from the
    /// override to keep the default work.
    pub fn close_files(&mut self) -> Result<(), Error> {
        let mut keep = KeepList::default();
        for &fd in &self.config.inherit {
            keep.insert(fd);
        }
        for target in self.config.stdio.iter().flatten() {
            if let crate::Stdio::Fd(fd) = target {
                keep.insert(*fd);
            }
        }
        if let Some(pid_file) = &self.config.pid_file {
            keep.insert(pid_file.as_raw_fd());
        }
        if let Some(reporter) = &self.state.reporter {
            keep.insert(reporter.fd);
        }
        keep.insert(self.state.cwd);
        // The pipe to a waiting intermediate process (the readiness descriptor and
        // socket activation's are in `inherit`).
        keep.insert(crate::ready::kept());
        fds::close_inherited(&keep, self.state.close_method)
    }

    /// Stage 9: stdin, stdout and stderr to their targets (`/dev/null` when detached
    /// and unset). Set-up output stops reaching the original process here.
    ///
    /// # Errors
    ///
    /// `open` failures naming the path and the stream.
    ///
    /// Override: implement [`Run::stage9`](crate::Run::stage9); call this from the
    /// override to keep the default work.
    pub fn redirect(&mut self) -> Result<(), Error> {
        let mut result = stdio::redirect(&self.config.stdio, self.state.forked, self.state.cwd);
        if let (Ok(()), Some(remember)) = (&result, self.config.stage9) {
            result = remember(&self.config.stdio);
        }
        for fd in self.state.copies.iter_mut().chain([&mut self.state.cwd]) {
            if *fd != sys::NO_FD {
                sys::close(*fd);
                *fd = sys::NO_FD;
            }
        }
        result
    }
}
