//! Readiness: the daemon tells whoever waits for it that it is serving.
//!
//! [`ready`] is called in `run()` once the daemon serves (its socket bound, its state
//! loaded). It tells every supervisor present, each optional:
//!
//! - the original process, when it waits ([`Config::wait_ready`](crate::Config::wait_ready)):
//!   `start()` returns there only now;
//! - systemd, through `NOTIFY_SOCKET` (`READY=1`); when the daemon detached with the
//!   launcher waiting, the launcher sends `MAINPID=<daemon>` and `READY=1` instead, in
//!   one datagram from the process systemd started (`NotifyAccess=main` accepts only
//!   that);
//! - an s6-style readiness descriptor ([`Config::ready_fd`](crate::Config::ready_fd)):
//!   one newline, then the descriptor is closed.
//!
//! What the call needs was prepared before the fork and is kept in these statics
//! (atomics only, as in `cleanup`), since `run()` cannot reach the `Daemon`.

use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering::SeqCst};
use core::time::Duration;

use crate::report::Reporter;
use crate::{sys, Error};

/// The daemon's end of the status pipe, kept open past stage 9 for a waiting launcher.
static STATUS: AtomicI32 = AtomicI32::new(sys::NO_FD);
/// The daemon's end of the pipe to the intermediate process, which waits for the
/// daemon's readiness or its end (to report how it ended).
static PIPE: AtomicI32 = AtomicI32::new(sys::NO_FD);
/// The s6-style readiness descriptor.
static FD: AtomicI32 = AtomicI32::new(sys::NO_FD);
/// The launcher sends systemd's `READY=1` (with `MAINPID`): the daemon does not.
static RELAYED: AtomicBool = AtomicBool::new(false);
/// `ready()` ran.
static DONE: AtomicBool = AtomicBool::new(false);
/// What the default `SIGTERM` handler sends systemd ([`stopping`]): set by `ready()`,
/// as a pointer, so that a daemon that never calls it links no notification code.
static STOPPING: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

fn send_stopping() {
    let _ = crate::notify::stopping();
}

/// The default `SIGTERM` handler's word to systemd: `STOPPING=1` once `ready()` has
/// run, nothing before (or without `NOTIFY_SOCKET`). Async-signal-safe.
#[allow(unsafe_code)]
pub(crate) fn stopping() {
    let f = STOPPING.load(SeqCst);
    if !f.is_null() {
        // SAFETY: the only value ever stored besides null is `send_stopping`, a
        // `fn()`, cast to a data pointer by `ready()`: casting it back is its own type.
        let f = unsafe { core::mem::transmute::<*mut (), fn()>(f) };
        f();
    }
}

/// [`Config::wait_ready`](crate::Config::wait_ready)'s timeout, and the code only a
/// waiting launcher runs, reached through these pointers: a daemon that never waits
/// links none of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Waiting {
    pub(crate) timeout: Duration,
    /// Stage 1's second fork, with the intermediate process's wait
    /// (`detach::fork_waiting`).
    pub(crate) second_fork: crate::detach::SecondFork,
    /// The original process's monitoring (`Receiver::monitor_waiting`).
    pub(crate) monitor: crate::report::MonitorWaiting,
}

/// The original process of a waiting launcher, once it knows the outcome: when it gave
/// up on the daemon or the daemon ended, the intermediate process `child` (which may
/// still wait for a pipe a child of the daemon holds) is killed, to be reaped; when the
/// daemon is ready under systemd, the launcher says so: `MAINPID=<daemon>` and
/// `READY=1` in one datagram from the process systemd started, which
/// `NotifyAccess=main` accepts. The daemon runs: a supervisor that could not be told is
/// its concern, not a failed start.
pub(crate) fn settle(child: libc::pid_t, outcome: &crate::report::Outcome) {
    // Once a readiness source said ready, the intermediate still waits for the
    // program the daemon exec'd: it goes too, and the daemon is reparented.
    if outcome.left_behind || outcome.by_source {
        let _ = sys::kill(child, libc::SIGKILL);
    }
    // The pid a readiness source named (`MAINPID=`), else the daemon; nothing is sent
    // without `NOTIFY_SOCKET`.
    if let (Ok(()), Some(pid)) = (&outcome.result, outcome.main_pid.or(outcome.pid)) {
        let _ = crate::notify::relay_ready(pid);
    }
}

/// Stage 1, in the launcher: the readiness descriptor.
pub(crate) fn prepare(fd: c_int) {
    FD.store(fd, SeqCst);
}

/// Stage 1 of a waiting launcher, before the second fork: whether the launcher will
/// relay readiness to systemd (then the daemon sends no `READY=1` of its own).
pub(crate) fn set_relayed(relayed: bool) {
    RELAYED.store(relayed, SeqCst);
}

/// Stage 1, in the daemon: the pipe to the waiting intermediate process.
pub(crate) fn set_pipe(fd: c_int) {
    PIPE.store(fd, SeqCst);
}

/// After stage 9 with a waiting launcher: the status pipe stays open for [`ready`].
pub(crate) fn hold_status(fd: c_int) {
    STATUS.store(fd, SeqCst);
}

/// The descriptor stage 8 must keep for [`ready`] besides `inherit`'s: the pipe to
/// a waiting intermediate process (`sys::NO_FD` when none).
pub(crate) fn kept() -> c_int {
    PIPE.load(SeqCst)
}

/// Declares the daemon ready: call it in `run()` once the daemon serves.
///
/// Tells every supervisor present, none of them needed:
///
/// - the original process, when it waits ([`Config::wait_ready`](crate::Config::wait_ready)):
///   `start()` returns there only now;
/// - systemd, through `NOTIFY_SOCKET` (`READY=1`); when the daemon detached with the
///   launcher waiting, the launcher sends `MAINPID=<daemon>` and `READY=1` instead, in
///   one datagram from the process systemd started (`NotifyAccess=main` accepts only
///   that);
/// - an s6-style readiness descriptor ([`Config::ready_fd`](crate::Config::ready_fd)):
///   one newline, then the descriptor is closed.
///
/// A second call does nothing. Async-signal-safe, allocation-free;
/// a supervisor that went away is never a `SIGPIPE` death.
///
/// ```no_run
/// use pandaemonium::{ready, target, Daemon};
///
/// let mut daemon = Daemon::new(target(|_: ()| {
///     // ... bind the socket, load the state ...
///     let _ = ready();
///     // ... serve ...
///     0
/// }, ()));
/// daemon.wait_ready(core::time::Duration::from_secs(10));
/// match daemon.start() {
///     Ok(started) => println!("pid {} is serving", started.pid),
///     Err(e) => eprintln!("{e}"),
/// }
/// ```
///
/// # Errors
///
/// The first supervisor that could not be told (the others are still told): a bad
/// `NOTIFY_SOCKET` or a failed send to it ([`notify`](crate::notify)), a write to the
/// readiness descriptor that failed.
pub fn ready() -> Result<(), Error> {
    if DONE.swap(true, SeqCst) {
        return Ok(());
    }
    STOPPING.store(send_stopping as fn() as *mut (), SeqCst);
    let status = STATUS.swap(sys::NO_FD, SeqCst);
    if status != sys::NO_FD {
        Reporter { fd: status }.ready();
        crate::cleanup::set_report_fd(sys::NO_FD);
        sys::close(status);
    }
    let pipe = PIPE.swap(sys::NO_FD, SeqCst);
    if pipe != sys::NO_FD {
        let _ = sys::write_all_quiet(pipe, b"R");
        sys::close(pipe);
    }
    let mut result = Ok(());
    if !RELAYED.load(SeqCst) {
        if let Err(e) = crate::notify::NotifySocket::from_env()
            .and_then(|socket| socket.map_or(Ok(()), |s| s.send(b"READY=1\n")))
        {
            result = Err(e);
        }
    }
    let fd = FD.swap(sys::NO_FD, SeqCst);
    if fd != sys::NO_FD {
        if let (Err(e), true) = (sys::write_all_quiet(fd, b"\n"), result.is_ok()) {
            let mut err = Error::bare(None, crate::ErrorKind::Os);
            err.errno = Some(e);
            err.push_detail(b"run: write to the readiness descriptor ");
            err.push_detail(crate::decimal::Dec::new(i64::from(fd)).as_bytes());
            result = Err(err);
        }
        sys::close(fd);
    }
    result
}

/// Where a waiting launcher learns readiness besides the daemon's own [`ready`]:
/// for a daemon that `exec`s another program in `run()`, which cannot call it
/// ([`Config::wait_ready_from`](crate::Config::wait_ready_from)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadySource {
    /// A notification socket (a [`NotifyListener`](crate::notify::NotifyListener)'s
    /// descriptor) whose path the program got in `NOTIFY_SOCKET`: `READY=1` means
    /// ready. Only datagrams count whose `SCM_CREDENTIALS` pid is the daemon (the
    /// program, after `exec`), a descendant of it, or the pid that one of those named with
    /// `MAINPID=` (which [`Started::main_pid`](crate::Started::main_pid) then gives).
    /// `EXTEND_TIMEOUT_USEC=N` moves the deadline to at least N microseconds from
    /// now; `ERRNO=N` is remembered and given with the error if the daemon then ends
    /// before it is ready. Truncated datagrams are ignored.
    Notify(c_int),
    /// The read end of a pipe whose write end the program has (s6's
    /// `notification-fd`): a newline means ready; EOF alone does not (the program may
    /// close it and go on, or end, which is reported as its end).
    Pipe(c_int),
}

impl ReadySource {
    pub(crate) fn fd(self) -> c_int {
        match self {
            ReadySource::Notify(fd) | ReadySource::Pipe(fd) => fd,
        }
    }
}

/// Who started this process, as far as it can tell: what [`Detach::Auto`] goes by
/// (it forks only for [`Supervisor::None`]). One answer, the first that applies in
/// this order: a readiness descriptor was configured, `NOTIFY_SOCKET` is set,
/// socket activation's descriptors were taken
/// ([`Config::listen_fds`](crate::Config::listen_fds)), the parent is init, stdin is a
/// socket.
///
/// ```
/// use pandaemonium::{Config, Supervisor};
///
/// let config = Config::default();
/// match config.supervisor() {
///     Supervisor::None => println!("started from a shell or a script: detach"),
///     other => println!("supervised ({other:?}): stay in the foreground"),
/// }
/// ```
///
/// [`Detach::Auto`]: crate::Detach::Auto
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Supervisor {
    /// An s6-style supervisor (s6's `notification-fd`, OpenRC's `--notify fd:N`):
    /// [`Config::ready_fd`](crate::Config::ready_fd) was given.
    ReadinessFd,
    /// systemd with `Type=notify` (or start-stop-daemon `--notify-await`, OpenRC's
    /// `--notify socket:ready`): `NOTIFY_SOCKET` is set.
    Systemd,
    /// Socket activation (systemd, `systemd-socket-activate`): the daemon took the
    /// descriptors ([`Config::listen_fds`](crate::Config::listen_fds)).
    SocketActivation,
    /// The parent is init (pid 1): a `sysvinit` `respawn` entry, procd, a container.
    Init,
    /// An inetd-style super-server: stdin is a socket.
    Inetd,
    /// None that shows: a shell, a script, a supervisor that wants a forking daemon.
    None,
}

/// [`Config::supervisor`](crate::Config::supervisor).
pub(crate) fn detect(ready_fd: bool, listen: bool) -> Supervisor {
    if ready_fd {
        Supervisor::ReadinessFd
    } else if crate::detach::notify_socket_set() {
        Supervisor::Systemd
    } else if listen {
        Supervisor::SocketActivation
    } else if sys::getppid() == 1 {
        Supervisor::Init
    } else if sys::is_socket(0) {
        Supervisor::Inetd
    } else {
        Supervisor::None
    }
}
