//! Stage 1: fork, `setsid`, fork, and the checks made before forking.

use core::ffi::c_int;

use crate::report::{self, Receiver, Reporter};
use crate::{stdio, sys, Detach, Error, ErrorKind, Stage};

/// How stage 1 went, in the process that returns from it.
pub(crate) enum Detached {
    /// This is the daemon; `reporter` is its status channel when it forked.
    Daemon {
        reporter: Option<Reporter>,
        forked: bool,
        /// `SIGPIPE`'s disposition before the fork (the daemon ignores it while it
        /// writes to the original process).
        pipe: Option<sys::Saved>,
        /// Copies, above 2, of the launcher's stdout and stderr (index 1 and 2) that
        /// stage 9 was asked for (`Stdio::Fd(1)`, `Stdio::Fd(2)`), made before the
        /// report pipes took their numbers; -1 where none was asked for.
        copies: [c_int; 3],
    },
    /// This is the original process: it monitors the daemon through `receiver`, and
    /// reaps `child`, the intermediate process.
    Original {
        receiver: Receiver,
        child: libc::pid_t,
    },
}

/// Whether stage 1 forks. [`Detach::Auto`] does not when the parent is init (ppid 1),
/// nor when stdin is a socket (inetd style; fds 0-2 are then kept, as stage 9 keeps
/// the stdio of a daemon that did not fork), nor under a supervisor that watches the
/// process it started (`NOTIFY_SOCKET` set, a readiness descriptor, `ready_fd`, or
/// socket activation's descriptors taken, `listen_fds`).
/// A closed stdin is not a socket.
/// `supervisor` is asked only for [`Detach::Auto`] ([`Config::supervisor`](crate::Config::supervisor)).
pub(crate) fn decide(detach: Detach, supervisor: impl FnOnce() -> crate::Supervisor) -> bool {
    match detach {
        Detach::Always => true,
        Detach::Never => false,
        Detach::Auto => supervisor() == crate::Supervisor::None,
    }
}

/// Whether systemd's `NOTIFY_SOCKET` is set (and not empty).
pub(crate) fn notify_socket_set() -> bool {
    sys::getenv(c"NOTIFY_SOCKET").is_some_and(|v| !v.is_empty())
}

/// The number of threads in this process, or `None` when it can't be read (no `/proc`,
/// or an emulator that reports 0).
///
/// One `stat` of `/proc/self/task` answers the common case: its link count is 2 plus the
/// number of threads. Only when that says "more than one" (or fails) is
/// `/proc/self/stat` read to confirm, since qemu-user's own threads show in the link
/// count while its emulated `/proc/self/stat` says 0 (unknown).
pub(crate) fn thread_count() -> Option<u32> {
    match sys::stat(c"/proc/self/task") {
        Ok(st) if st.nlink == 3 => Some(1),
        _ => thread_count_from_stat(),
    }
}

/// Field 20 of `/proc/self/stat`.
fn thread_count_from_stat() -> Option<u32> {
    let mut buf = [0u8; 1024];
    let stat = sys::read_small_file(c"/proc/self/stat", &mut buf).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and ')', so start after the last ')'.
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let field = after
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(17)?;
    crate::decimal::parse_u32(field).filter(|&n| n > 0)
}

/// Refuses to fork a multi-threaded process (or one whose threads can't be counted).
pub(crate) fn check_threads() -> Result<(), Error> {
    single_threaded(
        Stage::Detach,
        "refusing to fork a multi-threaded process",
        "cannot count threads (/proc/self/stat unreadable); refusing to fork",
    )
}

/// Stage 3 without a fork: its calls change the calling thread's ids and capabilities
/// alone (`sys::setuid`), so the process must have no other thread.
pub(crate) fn check_threads_unforked() -> Result<(), Error> {
    single_threaded(
        Stage::ProcessIds,
        "refusing to change the ids of a multi-threaded process (only the calling thread would change)",
        "cannot count threads (/proc/self/stat unreadable); refusing to change the ids",
    )
}

/// `Ok` when this process has one thread; else `Threaded` (with the count, and
/// `threaded` as the detail) or `ThreadsUnknown` (with `unknown`), in `stage`.
fn single_threaded(
    stage: Stage,
    threaded: &'static str,
    unknown: &'static str,
) -> Result<(), Error> {
    match thread_count() {
        Some(1) => Ok(()),
        Some(n) => Err(Error::new(Some(stage), ErrorKind::Threaded, threaded).with_holder(Some(n))),
        None => Err(Error::new(Some(stage), ErrorKind::ThreadsUnknown, unknown)),
    }
}

/// Stage 1 proper: pipes, fork, `setsid`, fork. `check` is false when the caller opted
/// out of the thread check (`Daemon::allow_threads`); `keep[n]` (n 1 or 2) asks for a
/// copy of the launcher's descriptor `n` (see [`Detached::Daemon`]). With `wait`
/// (the original process waits for readiness), the intermediate process stays until
/// the daemon is ready, to report how it ended if it never is ([`await_ready`]).
#[allow(unsafe_code)]
pub(crate) fn detach(
    fork: bool,
    check: bool,
    keep: [bool; 3],
    wait: Option<SecondFork>,
) -> Result<Detached, Error> {
    if !fork {
        stdio::fill_closed_stdio(0..3)?;
        return Ok(Detached::Daemon {
            reporter: None,
            forked: false,
            pipe: None,
            copies: [sys::NO_FD; 3],
        });
    }
    if check {
        check_threads()?;
    }
    let (ends, receiver) = report::channel()?;
    let [status_w, out_w, err_w] = ends;
    // SAFETY: the process is single-threaded (checked above) or the caller promised,
    // through the unsafe `allow_threads`, that the child needs no other thread's locks;
    // the child below calls only async-signal-safe functions.
    let child = match unsafe { sys::fork() } {
        Ok(child) => child,
        Err(e) => {
            for fd in [
                status_w,
                out_w,
                err_w,
                receiver.status,
                receiver.stdout,
                receiver.stderr,
            ] {
                sys::close(fd);
            }
            return Err(Error::os(Stage::Detach, e, "fork", b""));
        }
    };
    if child > 0 {
        for fd in [status_w, out_w, err_w] {
            sys::close(fd);
        }
        return Ok(Detached::Original { receiver, child });
    }
    // First child: from here on only async-signal-safe calls, and `_exit`, never `exit`.
    // Until the report channel closes, a write to an original process that went away
    // (killed, or Ctrl-C) must fail with EPIPE, not kill the daemon.
    let pipe = sys::ignore_saving(libc::SIGPIPE).ok();
    for fd in [receiver.status, receiver.stdout, receiver.stderr] {
        sys::close(fd);
    }
    let reporter = Reporter { fd: status_w };
    let mut copies = [sys::NO_FD; 3];
    for n in 1..3 {
        if keep[n] {
            match sys::dup_at_least(n as c_int, 3) {
                Ok(fd) => copies[n] = fd,
                Err(e) => fail(
                    reporter,
                    &Error::os(
                        Stage::Detach,
                        e,
                        "fcntl F_DUPFD_CLOEXEC",
                        stdio::NAMES[n].as_bytes(),
                    ),
                ),
            }
        }
    }
    // Set-up output goes to the original process from now until stage 9.
    for (from, to) in [(out_w, 1 as c_int), (err_w, 2)] {
        if let Err(e) = sys::dup2(from, to) {
            fail(
                reporter,
                &Error::os(Stage::Detach, e, "dup2", b"report pipe"),
            );
        }
        sys::close(from);
    }
    // 1 and 2 are the report pipes now: only stdin can be closed.
    if let Err(e) = stdio::fill_closed_stdio(0..1) {
        fail(reporter, &e);
    }
    if let Err(e) = sys::setsid() {
        fail(reporter, &Error::os(Stage::Detach, e, "setsid", b""));
    }
    match wait {
        Some(second_fork) => second_fork(reporter),
        // SAFETY: as for the first fork; this child is single-threaded by construction.
        None => match unsafe { sys::fork() } {
            Ok(0) => {}
            // The intermediate process announces the daemon's pid (off the daemon's
            // path) and ends at once; the original reaps it.
            Ok(daemon) => {
                reporter.pid(daemon as u32);
                sys::exit_now(0)
            }
            Err(e) => fail(reporter, &Error::os(Stage::Detach, e, "fork", b"(second)")),
        },
    }
    crate::cleanup::set_report_fd(status_w);
    Ok(Detached::Daemon {
        reporter: Some(reporter),
        forked: true,
        pipe,
        copies,
    })
}

/// The original process's end of stage 1: reap the intermediate child. Its own status
/// matters only when the daemon never reported (it failed before forking again).
pub(crate) fn reap(child: libc::pid_t) -> Option<c_int> {
    sys::waitpid(child)
        .ok()
        .map(|status| crate::Exit::from_raw(status).status())
}

/// The second fork of a waiting launcher ([`fork_waiting`], through
/// [`Waiting`](crate::ready::Waiting)): returns in the daemon only.
pub(crate) type SecondFork = fn(Reporter);

/// Stage 1's second fork when the original process waits for readiness: the daemon's
/// readiness, or its end, reaches the intermediate process through a pipe, and the
/// intermediate stays until one of them ([`await_ready`]). Returns in the daemon only.
/// Async-signal-safe.
#[allow(unsafe_code)]
pub(crate) fn fork_waiting(reporter: Reporter) {
    // Under systemd the original process will say the daemon is ready (`settle`).
    crate::ready::set_relayed(notify_socket_set());
    let ready =
        match sys::pipe().and_then(|(r, w)| Ok((sys::above_stdio(r)?, sys::above_stdio(w)?))) {
            Ok(pair) => pair,
            Err(e) => fail(
                reporter,
                &Error::os(Stage::Detach, e, "pipe2", b"(readiness)"),
            ),
        };
    // SAFETY: as for the first fork; this child is single-threaded by construction.
    match unsafe { sys::fork() } {
        Ok(0) => {
            sys::close(ready.0);
            crate::ready::set_pipe(ready.1);
        }
        Ok(daemon) => {
            reporter.pid(daemon as u32);
            sys::close(ready.1);
            await_ready(reporter, ready.0, daemon)
        }
        Err(e) => fail(reporter, &Error::os(Stage::Detach, e, "fork", b"(second)")),
    }
}

/// The intermediate process of a waiting launcher: exits 0 when the daemon says it is
/// ready (one byte on `ready`); when the pipe ends without it, the daemon has ended
/// (its end closes with it): reaps it and reports how it ended. Async-signal-safe.
fn await_ready(reporter: Reporter, ready: c_int, daemon: libc::pid_t) -> ! {
    let mut byte = [0u8; 1];
    if sys::read(ready, &mut byte) == Ok(1) {
        sys::exit_now(0)
    }
    let e = match sys::waitpid(daemon) {
        Ok(status) => not_ready(daemon, status),
        Err(e) => Error::os(Stage::Detach, e, "waitpid", b"(the daemon)"),
    };
    fail(reporter, &e)
}

/// The daemon (`pid`) ended with wait status `status` before it was ready.
#[cold]
fn not_ready(pid: libc::pid_t, status: c_int) -> Error {
    let mut e = Error::bare(None, ErrorKind::NotReady);
    let number = |n: i32| crate::decimal::Dec::new(i64::from(n));
    match crate::Exit::from_raw(status) {
        crate::Exit::Code(code) => {
            e.push_detail(b"run: exited with status ");
            e.push_detail(number(code).as_bytes());
        }
        crate::Exit::Signal(sig) => {
            e.push_detail(b"run: killed by signal ");
            e.push_detail(number(sig).as_bytes());
            if let Some(name) = crate::Signal::new(sig).ok().and_then(crate::Signal::name) {
                e.push_detail(b" (SIG");
                e.push_detail(name.as_bytes());
                e.push_detail(b")");
            }
        }
    }
    e.push_detail(b" before it was ready");
    e.set_exit(status);
    e.with_holder(Some(pid as u32))
}

/// A child of stage 1 could not go on: report to the original process and exit.
#[cold]
#[inline(never)]
fn fail(reporter: Reporter, e: &Error) -> ! {
    reporter.failed(e);
    sys::exit_now(1)
}
