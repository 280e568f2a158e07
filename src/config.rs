//! `Config`: what the nine stages do, with pandaemonium's defaults.

use core::ffi::{c_int, CStr};
use core::time::Duration;

use crate::fds::INHERIT_CAPACITY;
use crate::signals::SignalMap;
use crate::{sys, Action, Error, ErrorKind, PidLockFile, ProcessIds, Signal, Stage, Stdio};

/// Whether stage 1 forks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Detach {
    /// Detach unless started by init (parent pid 1), by an inetd-style super-server
    /// (stdin is a socket; fds 0-2 are then inherited), or by a supervisor that
    /// watches the process it started: systemd with `Type=notify` (`NOTIFY_SOCKET`
    /// set), or one that gave a readiness descriptor ([`Config::ready_fd`]), or by
    /// socket activation (the descriptors taken, [`Config::listen_fds`]): see
    /// [`Config::supervisor`]. A closed stdin is *not* taken
    /// for a socket (pandaemonium's `EBADF` bug). Under a supervisor that wants a
    /// forking daemon (systemd `Type=forking`), use [`Detach::Always`].
    #[default]
    Auto,
    /// Always fork, setsid, fork, even under pid 1.
    Always,
    /// Never fork: the calling process becomes the daemon (foreground mode).
    Never,
}

/// The daemon's settings. Every setter checks its value at once, so bad configuration
/// fails before anything forks; setters that look names up (users, groups) do so here,
/// in the launching process, never after fork.
///
/// | setting | default |
/// |---|---|
/// | [`detach`](Self::detach) | [`Detach::Auto`] |
/// | [`prevent_core`](Self::prevent_core) | `true` |
/// | [`process_ids`](Self::process_ids) | unchanged |
/// | [`umask`](Self::umask) | `0o077` |
/// | [`working_directory`](Self::working_directory) | `/` |
/// | [`pid_file`](Self::pid_file) | none |
/// | [`signal`](Self::signal) | `SIGTERM` [`Action::Exit`]; `SIGTSTP`, `SIGTTIN`, `SIGTTOU` ignored; all else default |
/// | [`inherit_file`](Self::inherit_file) | none |
/// | [`stdin`](Self::stdin), [`stdout`](Self::stdout), [`stderr`](Self::stderr) | `/dev/null` when detached, else unchanged |
/// | [`start_timeout`](Self::start_timeout), [`wait_ready`](Self::wait_ready) | none: `start()` returns when stage 9 ends |
/// | [`ready_fd`](Self::ready_fd) | none |
/// | [`chroot_directory`](Self::chroot_directory), [`keep_capabilities`](Self::keep_capabilities), [`limit_bounding_set`](Self::limit_bounding_set), [`no_new_privileges`](Self::no_new_privileges) | none, none, no, no |
#[derive(Debug)]
pub struct Config<'a> {
    pub(crate) detach: Detach,
    pub(crate) prevent_core: bool,
    pub(crate) ids: Option<ProcessIds>,
    pub(crate) umask: libc::mode_t,
    pub(crate) working_directory: &'a CStr,
    pub(crate) pid_file: Option<PidLockFile>,
    pub(crate) signals: SignalMap,
    pub(crate) inherit: heapless::Vec<c_int, INHERIT_CAPACITY>,
    pub(crate) stdio: [Option<Stdio<'a>>; 3],
    pub(crate) start_timeout: Option<Duration>,
    /// The waiting's timeout and the code only a waiting daemon links (through
    /// function pointers set by [`wait_ready`](Self::wait_ready), so that a daemon
    /// that never waits carries none of it).
    pub(crate) wait_ready: Option<crate::ready::Waiting>,
    /// Where the waiting original process also learns readiness
    /// ([`wait_ready_from`](Self::wait_ready_from)).
    /// With the reader of its messages, as a pointer: linked only when it is set.
    pub(crate) ready_source: Option<crate::ReadySource>,
    pub(crate) ready_fd: c_int,
    /// Socket activation's descriptors, `first..end` (empty: none).
    pub(crate) listen: (c_int, c_int),
    /// Run by stage 1 before it forks ([`prepare_fork`]), once a setter that needs it
    /// was called (a pointer, so linked only then).
    pub(crate) before_fork: Option<BeforeFork>,
    /// [`crate::listen::unset_listen_env`] once [`listen_fds`](Self::listen_fds) was
    /// called, for [`prepare_fork`] (a pointer: a daemon checking its privileges alone
    /// does not link it).
    pub(crate) unset_listen_env: Option<fn()>,
    /// Stage 3's chroot, capabilities and `no_new_privs` (with its code, through
    /// pointers: linked only when a setter asks for one of them).
    pub(crate) privileges: Option<crate::privileges::Privileges<'a>>,
    /// Stage 3's work, set by the setters of stage 3 ([`crate::ids::apply`], or
    /// [`crate::privileges::apply`] once privileges are asked for): a daemon that
    /// sets none links none of it.
    pub(crate) stage3: Option<Stage3>,
    /// Stage 7's work before the map is installed: the signal pipe, once a signal was
    /// mapped to [`Action::Pipe`].
    pub(crate) stage7: Option<Stage7>,
    /// Stage 9's work after the streams are redirected: keeping their paths
    /// ([`reopenable_stdio`](Self::reopenable_stdio)).
    pub(crate) stage9: Option<Stage9>,
}

/// Stage 7's extra work ([`crate::signal_pipe::open`]).
pub(crate) type Stage7 = fn(&mut Config<'_>) -> Result<(), Error>;

/// Stage 9's extra work ([`crate::stdio::remember`]).
pub(crate) type Stage9 = fn(&[Option<Stdio<'_>>; 3]) -> Result<(), Error>;

/// Stage 1's work before it forks ([`prepare_fork`]).
pub(crate) type BeforeFork = fn(&Config<'_>) -> Result<(), Error>;

/// Stage 3's work: the configuration, and the descriptor on the launcher's directory
/// (closed by a chroot).
pub(crate) type Stage3 = fn(&mut Config<'_>, &mut c_int) -> Result<(), Error>;

impl Default for Config<'_> {
    fn default() -> Self {
        Config {
            detach: Detach::Auto,
            prevent_core: true,
            ids: None,
            umask: 0o077,
            working_directory: c"/",
            pid_file: None,
            signals: SignalMap::default(),
            inherit: heapless::Vec::new(),
            stdio: [None; 3],
            start_timeout: None,
            wait_ready: None,
            ready_source: None,
            ready_fd: sys::NO_FD,
            listen: (0, 0),
            before_fork: None,
            unset_listen_env: None,
            privileges: None,
            stage3: None,
            stage7: None,
            stage9: None,
        }
    }
}

#[cold]
#[inline(never)]
fn invalid(stage: Stage, what: &str, value: &[u8]) -> Error {
    let mut e = Error::new(Some(stage), ErrorKind::InvalidConfig, what);
    e.push_detail(value);
    e
}

impl<'a> Config<'a> {
    /// Stage 1: whether to fork ([`Detach::Auto`] by default).
    pub fn detach(&mut self, detach: Detach) -> &mut Self {
        self.detach = detach;
        self
    }

    /// Stage 2: whether to turn core dumps off (default `true`): `RLIMIT_CORE` 0/0, and
    /// `PR_SET_DUMPABLE` 0, which covers a `core_pattern` that pipes cores to a program
    /// (the kernel ignores `RLIMIT_CORE` then). A non-dumpable process can't be
    /// `ptrace`d by its own user, and its `/proc/PID/fd`, `fdinfo`, `cwd` and `environ`
    /// are root's; an `execve` of an ordinary program makes it dumpable again (the
    /// limit stays). `false` to debug a daemon as its own user.
    pub fn prevent_core(&mut self, prevent: bool) -> &mut Self {
        self.prevent_core = prevent;
        self
    }

    /// Stage 3: the uid and gid to switch to, with their supplementary groups resolved
    /// now ([`ProcessIds::new`]: `initgroups` semantics when the launcher is root).
    ///
    /// # Errors
    ///
    /// As [`ProcessIds::new`].
    pub fn process_ids(&mut self, uid: libc::uid_t, gid: libc::gid_t) -> Result<&mut Self, Error> {
        Ok(self.ids(ProcessIds::new(uid, gid)?))
    }

    /// Stage 3: the user (and groups) to switch to, resolved by the caller
    /// ([`ProcessIds::user`], [`ProcessIds::with_group`], [`ProcessIds::with_groups`]).
    pub fn ids(&mut self, ids: ProcessIds) -> &mut Self {
        self.ids = Some(ids);
        if self.privileges.is_none() {
            self.stage3 = Some(crate::ids::apply);
        }
        self
    }

    fn privileges(&mut self) -> &mut crate::privileges::Privileges<'a> {
        self.before_fork = Some(prepare_fork);
        self.stage3 = Some(crate::privileges::apply);
        self.privileges.get_or_insert_with(Default::default)
    }

    /// Stage 3, first: `chroot(2)` into `dir` (absolute), then `chdir("/")` inside it,
    /// while still root (python-daemon's `chroot_directory`). Users and groups are
    /// resolved before, outside the jail (the setters of stage 3 look them up at once).
    ///
    /// Every path used after stage 3 is the jail's: stage 5's
    /// [`working_directory`](Self::working_directory), a [`pid_file`](Self::pid_file)
    /// given by path (sealed in stage 6; a pid file acquired before `start()` and given
    /// with [`pid_lock_file`](Self::pid_lock_file) stays where it was, outside), and
    /// stage 9's paths (a relative one is relative to the working directory in the
    /// jail, not to the launcher's; a jail without `dev/null` fails stage 9 unless all
    /// three streams have other targets). A program `run()` `exec`s is looked up in the
    /// jail too.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for an empty or relative path; the `stat` error
    /// (`ENOENT`) for a missing one, `ENOTDIR` for one that is not a directory.
    pub fn chroot_directory(&mut self, dir: &'a CStr) -> Result<&mut Self, Error> {
        check_chroot_directory(dir)?;
        self.jail(dir);
        Ok(self)
    }

    /// [`chroot_directory`](Self::chroot_directory) once checked.
    pub(crate) fn jail(&mut self, dir: &'a CStr) {
        self.privileges().chroot = Some(dir);
    }

    /// Stage 3: keep `caps` across the switch to the user of
    /// [`process_ids`](Self::process_ids) or [`ids`](Self::ids), in the permitted,
    /// effective, inheritable and ambient sets, so that the daemon, and a program it
    /// `exec`s (one without set-user-ID bits or file capabilities), can still do what
    /// they allow: [`Capability::NET_BIND_SERVICE`](crate::Capability::NET_BIND_SERVICE)
    /// to bind port 53 as `nobody`. Every other capability is gone.
    ///
    /// `start()` refuses ([`ErrorKind::InvalidConfig`], before fork) capabilities
    /// without a switch to a uid other than 0. A capability this process may not have
    /// (not in its bounding or permitted set) fails stage 3 with
    /// [`ErrorKind::CapabilityUnavailable`] naming it, never a silently weaker daemon.
    /// Keeping `CAP_SETUID` keeps the way back to root: stage 3's check that
    /// `setuid(0)` fails is skipped then.
    ///
    /// ```no_run
    /// use pandaemonium::{Capabilities, Capability, Config};
    ///
    /// let mut config = Config::default();
    /// config
    ///     .process_ids(65534, 65534)?
    ///     .keep_capabilities(Capabilities::EMPTY.with(Capability::NET_BIND_SERVICE));
    /// # Ok::<(), pandaemonium::Error>(())
    /// ```
    pub fn keep_capabilities(&mut self, caps: crate::Capabilities) -> &mut Self {
        self.privileges().keep = caps;
        self
    }

    /// Stage 3: drop every capability not kept ([`keep_capabilities`](Self::keep_capabilities))
    /// from the bounding set too, before the user switch (systemd's
    /// `CapabilityBoundingSet=`), so that no program the daemon runs, set-user-ID root
    /// or with file capabilities, gets any other. Needs `CAP_SETPCAP`.
    pub fn limit_bounding_set(&mut self, limit: bool) -> &mut Self {
        self.privileges().limit_bounding = limit;
        self
    }

    /// Stage 3, last: `PR_SET_NO_NEW_PRIVS` (systemd's `NoNewPrivileges=`): no program
    /// the daemon `exec`s gains privileges from set-user-ID bits or file capabilities.
    /// Capabilities kept in the ambient set stay.
    pub fn no_new_privileges(&mut self, on: bool) -> &mut Self {
        self.privileges().no_new_privs = on;
        self
    }

    /// Stage 4: the file mode creation mask (default `0o077`: the daemon's files are its
    /// own; pandaemonium's choice over the classic, world-writable 0).
    pub fn umask(&mut self, mask: libc::mode_t) -> &mut Self {
        self.umask = mask & 0o777;
        self
    }

    /// Stage 5: the working directory (default `/`, so the daemon holds no mount busy).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for an empty path.
    pub fn working_directory(&mut self, dir: &'a CStr) -> Result<&mut Self, Error> {
        check_working_directory(dir)?;
        self.working_directory = dir;
        Ok(self)
    }

    /// Stage 6: a pid file at `path` (absolute), acquired and sealed by the daemon.
    ///
    /// # Errors
    ///
    /// As [`PidLockFile::new`]: empty, relative or too long.
    pub fn pid_file(&mut self, path: &CStr) -> Result<&mut Self, Error> {
        self.pid_file = Some(PidLockFile::new(path, Duration::ZERO)?);
        Ok(self)
    }

    /// Stage 6: use this pid file, acquired or not (the seed's foreground-or-daemon
    /// pattern acquires it first, then hands it over).
    ///
    /// Acquiring first is also the way to put the pid file of a daemon that drops
    /// privileges (stage 3 runs before stage 6) in a directory only root can write: the
    /// daemon seals it through the descriptor opened as root and holds the lock; at exit
    /// it can't remove the file, which stays unlocked, and the next start takes it over.
    pub fn pid_lock_file(&mut self, pid_file: PidLockFile) -> &mut Self {
        self.pid_file = Some(pid_file);
        self
    }

    /// Stage 7: what the daemon does on `sig`, over the default map (`SIGTERM` ends it
    /// cleanly, `SIGTSTP`/`SIGTTIN`/`SIGTTOU` are ignored). Signals by name or number
    /// come through [`Signal::parse`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for `SIGKILL` or `SIGSTOP`; [`ErrorKind::Capacity`]
    /// beyond [`SIGNAL_MAP_CAPACITY`](crate::SIGNAL_MAP_CAPACITY) entries.
    pub fn signal(&mut self, sig: Signal, action: Action) -> Result<&mut Self, Error> {
        // The two actions that stand for a handler of the crate's own become it here,
        // so that only a daemon that asks for one links it.
        let action = match action {
            Action::Pipe => {
                self.stage7 = Some(crate::signal_pipe::open);
                Action::Interrupt(crate::signal_pipe::on_signal)
            }
            Action::ReopenStdio => {
                self.reopenable_stdio(true);
                Action::Handler(crate::stdio::reopen_on_signal)
            }
            other => other,
        };
        self.signals.set(sig, action)?;
        Ok(self)
    }

    /// Stage 9 keeps a copy of its paths (absolute ones: checked before fork), so that
    /// [`reopen_stdio`](crate::reopen_stdio) can reopen them later, from `run()` or a
    /// signal handler: log rotation (`mv log log.1`, then `SIGHUP`). Set by
    /// [`Action::ReopenStdio`] too. The three paths share
    /// [`REOPEN_CAPACITY`](crate::REOPEN_CAPACITY) bytes.
    pub fn reopenable_stdio(&mut self, on: bool) -> &mut Self {
        self.stage9 = on.then_some(crate::stdio::remember as Stage9);
        self.before_fork = Some(prepare_fork);
        self
    }

    /// Stage 8: keep `fd` open in the daemon.
    ///
    /// # Errors
    ///
    /// `EBADF` when `fd` is not open now; [`ErrorKind::Capacity`] beyond
    /// [`INHERIT_CAPACITY`](crate::INHERIT_CAPACITY).
    pub fn inherit_file(&mut self, fd: c_int) -> Result<&mut Self, Error> {
        if fd < 0 || !sys::fd_is_open(fd) {
            let value = crate::decimal::Dec::new(i64::from(fd));
            return Err(Error::os(
                Stage::CloseFiles,
                crate::Errno::BADF,
                "inherit_files: not an open descriptor:",
                value.as_bytes(),
            ));
        }
        if !self.inherit.contains(&fd) {
            self.inherit.push(fd).map_err(|_| {
                Error::new(
                    Some(Stage::CloseFiles),
                    ErrorKind::Capacity,
                    "inherit_files holds 16 descriptors",
                )
            })?;
        }
        Ok(self)
    }

    /// Stage 9: where stdin goes.
    ///
    /// # Errors
    ///
    /// As [`stdout`](Self::stdout).
    pub fn stdin(&mut self, to: Stdio<'a>) -> Result<&mut Self, Error> {
        self.set_stdio(0, to)
    }

    /// Stage 9: where stdout goes.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for an empty path; `EBADF` for a descriptor that is
    /// not open.
    pub fn stdout(&mut self, to: Stdio<'a>) -> Result<&mut Self, Error> {
        self.set_stdio(1, to)
    }

    /// Stage 9: where stderr goes.
    ///
    /// # Errors
    ///
    /// As [`stdout`](Self::stdout).
    pub fn stderr(&mut self, to: Stdio<'a>) -> Result<&mut Self, Error> {
        self.set_stdio(2, to)
    }

    pub(crate) fn set_stdio(&mut self, n: usize, to: Stdio<'a>) -> Result<&mut Self, Error> {
        check_stdio(to)?;
        self.stdio[n] = Some(to);
        Ok(self)
    }

    /// Makes `start()` in the original process return only once the daemon is ready:
    /// once `run()` called [`ready`](crate::ready()), not when stage 9 ends. If `run()`
    /// returns or the daemon dies first, `start()` fails with
    /// [`ErrorKind::NotReady`] and how it ended ([`Error::exit`]); if `timeout` passes
    /// first, the daemon is killed (`SIGKILL`), what it left is removed, and `start()`
    /// fails with [`ErrorKind::Timeout`]. `timeout` bounds the whole start, stages
    /// included (it replaces [`start_timeout`](Self::start_timeout)'s).
    ///
    /// While it waits, the process between the two forks of stage 1 stays, as the
    /// daemon's parent, to learn how the daemon ended; it exits when the daemon is
    /// ready. Until then the daemon's end of the report channel stays open: a panic in
    /// `run()` is reported too. Without a fork (stage 1 did not detach) there is no one
    /// waiting and this does nothing. A `run()` that `exec`s before it is ready keeps
    /// `start()` waiting until the program ends or the timeout passes.
    pub fn wait_ready(&mut self, timeout: Duration) -> &mut Self {
        self.wait_ready = Some(crate::ready::Waiting {
            timeout,
            second_fork: crate::detach::fork_waiting,
            monitor: crate::report::Receiver::monitor_waiting,
        });
        self
    }

    /// As [`wait_ready`](Self::wait_ready), and the original process also learns
    /// readiness from `source`, polled once the daemon's pid is known: for a daemon
    /// whose `run()` `exec`s a program that tells readiness its own way (systemd's
    /// protocol on a [`NotifyListener`](crate::notify::NotifyListener) named in its
    /// `NOTIFY_SOCKET`, or a newline on a pipe). Once `source` says ready, the process
    /// between the two forks (still the daemon's parent, waiting for the program to
    /// end) is killed and reaped, and `start()` returns `Ok`; the daemon, reparented,
    /// runs on. The program ending first is [`ErrorKind::NotReady`] with its exit
    /// status, as with [`wait_ready`](Self::wait_ready). The descriptor stays the
    /// caller's (stage 8 closes the daemon's copy).
    ///
    /// ```no_run
    /// use core::time::Duration;
    /// use pandaemonium::{notify::NotifyListener, Config, ReadySource};
    ///
    /// let listener = NotifyListener::bind_private(None)?;
    /// let mut config = Config::default();
    /// config.wait_ready_from(ReadySource::Notify(listener.as_raw_fd()), Duration::from_secs(60));
    /// // run() execs a program with NOTIFY_SOCKET=listener.address() in its environment
    /// # Ok::<(), pandaemonium::Error>(())
    /// ```
    pub fn wait_ready_from(&mut self, source: crate::ReadySource, timeout: Duration) -> &mut Self {
        self.ready_source = Some(source);
        self.wait_ready(timeout)
    }

    /// An s6-style readiness descriptor (s6's `notification-fd`, OpenRC's
    /// `--notify fd:N`): kept open through stage 8, and written one newline and closed
    /// by [`ready`](crate::ready()). With it, [`Detach::Auto`] does not fork (the
    /// supervisor watches the process it started).
    ///
    /// It is kept as [`inherit_file`](Self::inherit_file) keeps a descriptor, and
    /// counts as one of its [`INHERIT_CAPACITY`](crate::INHERIT_CAPACITY).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for 0 to 2 (stage 9 replaces them); `EBADF` for a
    /// descriptor that is not open; [`ErrorKind::Capacity`] when `inherit_files` is full.
    pub fn ready_fd(&mut self, fd: c_int) -> Result<&mut Self, Error> {
        let value = crate::decimal::Dec::new(i64::from(fd));
        if fd < 3 {
            return Err(invalid(
                Stage::CloseFiles,
                "ready_fd: not 0, 1 or 2 (stage 9 replaces them):",
                value.as_bytes(),
            ));
        }
        if !sys::fd_is_open(fd) {
            return Err(Error::os(
                Stage::CloseFiles,
                crate::Errno::BADF,
                "ready_fd: not an open descriptor:",
                value.as_bytes(),
            ));
        }
        self.inherit_file(fd)?;
        self.ready_fd = fd;
        Ok(self)
    }

    /// Keeps socket activation's descriptors ([`ListenFds`](crate::listen::ListenFds),
    /// read with [`ListenFds::from_env`](crate::listen::ListenFds::from_env) in this
    /// process, before `start()`) open through stage 8, and has stage 1 remove
    /// `LISTEN_PID`, `LISTEN_PIDFDID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from the
    /// environment before it forks ([`unset_listen_env`](crate::listen::unset_listen_env)),
    /// so that programs the daemon runs neither inherit the variables nor, since they
    /// are close-on-exec, the descriptors. Hand the `ListenFds` (or the descriptors
    /// you need) to your [`Run`](crate::Run) value: it is plain data, valid in the
    /// daemon as it was here.
    ///
    /// ```no_run
    /// use pandaemonium::listen::ListenFds;
    /// use pandaemonium::{os, target, Daemon};
    ///
    /// let fds = ListenFds::from_env(os::getpid() as u32)?;
    /// let mut daemon = Daemon::new(target(|fds: Option<ListenFds>| {
    ///     for (fd, name) in fds.iter().flat_map(ListenFds::iter) {
    ///         let _ = (fd, name); // accept() on fd
    ///     }
    ///     0
    /// }, fds.clone()));
    /// if let Some(fds) = &fds {
    ///     daemon.listen_fds(fds)?;
    /// }
    /// daemon.start()?;
    /// # Ok::<(), pandaemonium::Error>(())
    /// ```
    ///
    /// They are kept as [`inherit_file`](Self::inherit_file) keeps descriptors, and
    /// count toward its [`INHERIT_CAPACITY`](crate::INHERIT_CAPACITY).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] when one of the descriptors is the pid file's or
    /// the readiness descriptor (the supervisor's was closed, and ours took its number);
    /// [`ErrorKind::Capacity`] when they do not fit beside `inherit_files` (nothing is
    /// changed then).
    pub fn listen_fds(&mut self, fds: &crate::listen::ListenFds) -> Result<&mut Self, Error> {
        let range = fds.first()..fds.end();
        let pid_fd = self
            .pid_file
            .as_ref()
            .map_or(sys::NO_FD, PidLockFile::as_raw_fd);
        for (fd, what) in [
            (pid_fd, "the pid file"),
            (self.ready_fd, "the readiness descriptor"),
        ] {
            if range.contains(&fd) {
                let mut e = invalid(
                    Stage::CloseFiles,
                    "listen_fds: a socket's fd is ",
                    what.as_bytes(),
                );
                e.push_detail(b": ");
                e.push_detail(crate::decimal::Dec::new(i64::from(fd)).as_bytes());
                return Err(e);
            }
        }
        let fresh = range
            .clone()
            .filter(|fd| !self.inherit.contains(fd))
            .count();
        if self.inherit.len() + fresh > INHERIT_CAPACITY {
            return Err(Error::new(
                Some(Stage::CloseFiles),
                ErrorKind::Capacity,
                "listen_fds: with inherit_files, more than 16 descriptors",
            ));
        }
        for fd in range.clone() {
            self.inherit_file(fd)?;
        }
        self.listen = (range.start, range.end);
        self.before_fork = Some(prepare_fork);
        self.unset_listen_env = Some(crate::listen::unset_listen_env);
        Ok(self)
    }

    /// Who started this process, as far as it can tell ([`Supervisor`](crate::Supervisor));
    /// stage 1 with [`Detach::Auto`] forks only for
    /// [`Supervisor::None`](crate::Supervisor::None).
    pub fn supervisor(&self) -> crate::Supervisor {
        crate::ready::detect(self.ready_fd != sys::NO_FD, self.listen.0 < self.listen.1)
    }

    /// How long `start()` waits for the daemon to finish its stages (default: for
    /// ever). When the time passes, the original process kills the daemon
    /// (`SIGKILL`), removes the pid file it left, and `start()` fails with
    /// [`ErrorKind::Timeout`] naming the stage the daemon was in.
    ///
    /// With a timeout set the daemon reports each stage as it begins (one small write
    /// per stage); without one it does not.
    pub fn start_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.start_timeout = Some(timeout);
        self
    }

    /// The user and groups stage 3 switches to, if set ([`ids`](Self::ids)).
    pub fn ids_ref(&self) -> Option<&ProcessIds> {
        self.ids.as_ref()
    }

    /// The pid file, if one is set.
    pub fn pid_file_ref(&self) -> Option<&PidLockFile> {
        self.pid_file.as_ref()
    }

    /// The pid file, mutably (e.g. to release it by hand).
    pub fn pid_file_mut(&mut self) -> Option<&mut PidLockFile> {
        self.pid_file.as_mut()
    }
}

/// Stage 1's work before it forks, for the settings that need some: the checks of the
/// privileges ([`crate::privileges::check`]), and the removal of `LISTEN_*` once
/// [`listen_fds`](Config::listen_fds) was called.
fn prepare_fork(config: &Config<'_>) -> Result<(), Error> {
    if config.privileges.is_some() {
        crate::privileges::check(config)?;
    }
    if let Some(unset) = config.unset_listen_env {
        unset();
    }
    if config.stage9.is_some() {
        crate::stdio::check_reopenable(&config.stdio)?;
    }
    Ok(())
}

/// Stage 3's check of a jail: an absolute path to a directory.
pub(crate) fn check_chroot_directory(dir: &CStr) -> Result<(), Error> {
    if dir.to_bytes().first() != Some(&b'/') {
        return Err(invalid(
            Stage::ProcessIds,
            "chroot_directory must be an absolute path:",
            dir.to_bytes(),
        ));
    }
    let os = |e| Error::os(Stage::ProcessIds, e, "chroot_directory", dir.to_bytes());
    let st = sys::stat(dir).map_err(os)?;
    if st.mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(os(crate::Errno::from_raw(libc::ENOTDIR)));
    }
    Ok(())
}

/// Stage 5's check: the directory must not be empty.
pub(crate) fn check_working_directory(dir: &CStr) -> Result<(), Error> {
    if dir.is_empty() {
        return Err(invalid(
            Stage::WorkingDirectory,
            "working directory must not be empty",
            b"",
        ));
    }
    Ok(())
}

/// Stage 9's check: no empty path, no descriptor that is not open.
pub(crate) fn check_stdio(to: Stdio<'_>) -> Result<(), Error> {
    match to {
        Stdio::Path(p) if p.is_empty() => {
            return Err(invalid(
                Stage::Redirect,
                "empty path for a standard stream",
                b"",
            ))
        }
        Stdio::Fd(fd) if fd < 0 || !sys::fd_is_open(fd) => {
            let value = crate::decimal::Dec::new(i64::from(fd));
            return Err(Error::os(
                Stage::Redirect,
                crate::Errno::BADF,
                "not an open descriptor:",
                value.as_bytes(),
            ));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::listen::ListenFds;
    use crate::test_fds::FdBlock;

    #[test]
    fn a_readiness_descriptor_is_open_and_not_stdio() {
        let mut config = Config::default();
        for fd in [-1, 0, 1, 2] {
            let e = config.ready_fd(fd).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{fd}");
        }
        // Beyond any descriptor limit: never open.
        let e = config.ready_fd(i32::MAX).unwrap_err();
        assert_eq!(e.errno(), Some(crate::Errno::BADF), "{e:?}");
        assert_eq!(config.ready_fd, sys::NO_FD, "refused: unchanged");
        let (r, w) = sys::pipe().unwrap();
        sys::close(w);
        config.ready_fd(r).unwrap();
        assert_eq!(config.ready_fd, r);
        assert_eq!(config.supervisor(), crate::Supervisor::ReadinessFd);
        sys::close(r);
    }

    #[test]
    fn socket_activation_is_the_supervisor_once_the_descriptors_are_taken() {
        use crate::Supervisor;
        // systemd's NOTIFY_SOCKET comes first (documented order); the rest of the
        // machine's state (init as parent, a socket on stdin) comes after.
        let notify = std::env::var_os("NOTIFY_SOCKET").is_some_and(|v| !v.is_empty());
        let mut config = Config::default();
        assert_ne!(
            config.supervisor(),
            Supervisor::SocketActivation,
            "none taken"
        );
        let block = FdBlock::new(2);
        config
            .listen_fds(&ListenFds::unchecked(block.first, 2))
            .unwrap();
        let want = if notify {
            Supervisor::Systemd
        } else {
            Supervisor::SocketActivation
        };
        assert_eq!(config.supervisor(), want);
    }

    #[test]
    fn socket_activation_refuses_a_range_holding_our_own_descriptors() {
        let block = FdBlock::new(5);
        let first = block.first;
        let mut config = Config::default();
        let ready = first + 2;
        config.ready_fd(ready).unwrap();
        // A range of one that is exactly the readiness descriptor, and one around it.
        for (start, n) in [(ready, 1), (ready - 1, 3)] {
            let e = config
                .listen_fds(&ListenFds::unchecked(start, n))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            assert!(e.detail().contains("the readiness descriptor"), "{e:?}");
        }
        assert_eq!(config.listen, (0, 0), "refused: unchanged");
        assert_eq!(&config.inherit[..], &[ready], "refused: nothing kept");
        // Just past it, and just before it: ours are not in the range.
        config
            .listen_fds(&ListenFds::unchecked(ready + 1, 2))
            .unwrap();
        assert_eq!(config.listen, (ready + 1, ready + 3));
        config
            .listen_fds(&ListenFds::unchecked(ready - 2, 2))
            .unwrap();
        assert_eq!(config.listen, (ready - 2, ready));
        let mut kept: heapless::Vec<c_int, 8> = config.inherit.iter().copied().collect();
        kept.sort_unstable();
        assert_eq!(
            &kept[..],
            &[first, first + 1, first + 2, first + 3, first + 4]
        );
    }

    #[test]
    fn socket_activation_and_inherit_files_share_one_capacity() {
        let block = FdBlock::new(INHERIT_CAPACITY as c_int);
        let first = block.first;
        let mut config = Config::default();
        config.inherit_file(block.spare).unwrap();
        let all = ListenFds::unchecked(first, INHERIT_CAPACITY);
        let e = config.listen_fds(&all).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Capacity);
        assert_eq!(
            (config.listen, config.inherit.len()),
            ((0, 0), 1),
            "unchanged"
        );
        // Exactly full fits, and descriptors already kept count once.
        let most = ListenFds::unchecked(first, INHERIT_CAPACITY - 1);
        config.inherit_file(first).unwrap();
        config.listen_fds(&most).unwrap();
        assert_eq!(config.inherit.len(), INHERIT_CAPACITY);
    }

    #[test]
    fn socket_activation_refuses_a_range_holding_the_pid_file() {
        let dir = crate::test_dir::TestDir::new("listen-pid");
        let path = dir.path("p.pid");
        let mut config = Config::default();
        config.pid_file(&path).unwrap();
        let pid_file = config.pid_file_mut().unwrap();
        pid_file.acquire(None).unwrap();
        let fd = pid_file.as_raw_fd();
        let e = config.listen_fds(&ListenFds::unchecked(fd, 1)).unwrap_err();
        assert!(e.detail().contains("the pid file"), "{e:?}");
    }
}
