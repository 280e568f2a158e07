//! PROGRAM's output through the supervisor: `--log FILE`, `--syslog` (the
//! `tool-log` feature; without it, neither option is built and [`Logger`] is never made).
//!
//! With `--log FILE` or `--syslog`, PROGRAM's stdout and stderr are the write end of a
//! pipe (`Program::spawn_with_output`; the supervisor keeps that end, so a restarted
//! PROGRAM gets the same pipe and the read end never sees EOF), and the supervisor
//! reads the other end. It waits for the pipe and its signals at once: a `signalfd`
//! over the same blocked set, polled beside the pipe, tells that a signal is pending,
//! which `sigtimedwait` then takes without waiting, as before. (`sigtimedwait` alone
//! can't wait for a descriptor; a poll timeout would mean waking up to look.
//! `signalfd` is Linux's, as is the rest of the crate; its known weaknesses, a mask
//! lost on `exec` or another thread's unblocked mask, don't apply to a
//! single-threaded supervisor that never execs, and PROGRAM, spawned with every
//! signal unblocked, does not inherit it: close-on-exec.) Without them the
//! supervisor waits in `sigtimedwait` alone, as it always did.
//!
//! What it reads, in pieces of up to 4 KiB, it writes at once to FILE and hands to
//! the syslog sender (the library's `syslog` module: one datagram per line, never
//! blocking, dropped when no daemon listens). Nothing ever waits for a reader, so
//! PROGRAM is never held up by a missing or stopped syslog daemon; it can be by a
//! FILE whose disk is slow, as by any file it would write itself. When PROGRAM ends,
//! what it left in the pipe is read (up to 64 KiB, in case a child of its writes on)
//! and its last, unended line is sent before it is restarted or the supervisor ends.
//!
//! FILE is opened by the supervisor, after stage 3: as `--user`, inside the
//! `--chroot` jail, with the mode 0640 before the umask (stage 4: 0600 with the
//! default 077; `--umask 027` gives a log group read access), `O_APPEND`, created if
//! missing. It must be an absolute path (a usage error otherwise: stage 9's relative
//! paths are the launcher's directory, this one would have been `--chdir`'s). When it
//! can't be opened, PROGRAM is not started: `start` fails with the path and the errno
//! ([`Record::LogFailed`]), leaving no pid file and no process. SIGHUP reopens it
//! (logrotate's `mv log log.1; kill -HUP SUPERVISOR`, FreeBSD daemon(8)'s `-H`) and is
//! **not** passed on to PROGRAM: one that does not handle HUP would die of it. A
//! reopen that fails keeps the old file, and says so in it and on stderr. With
//! `--syslog` alone, HUP is passed on as without logging.

use core::ffi::{c_int, CStr};

use pandaemonium::syslog::{Facility, Severity, Syslog};
use pandaemonium::{os, Errno, Program};

use crate::out::Msg;
use crate::report::Record;
use crate::supervise::WAITED;

/// Where PROGRAM's output goes when the supervisor carries it: `--log`, `--syslog`.
/// Plain data: the sender is made in the supervisor.
#[derive(Clone, Copy, Default)]
pub struct Output {
    /// `--log FILE`, an absolute path.
    pub file: Option<&'static CStr>,
    /// `--syslog`.
    pub syslog: Option<SyslogTo>,
}

impl Output {
    /// The logger PROGRAM's output goes through, if it does; what to report when it
    /// can't be opened (its message printed).
    pub fn logger(self, name: &CStr) -> Result<Option<Logger>, Record> {
        if self.file.is_none() && self.syslog.is_none() {
            return Ok(None);
        }
        Logger::open(self, name).map(Some)
    }
}

/// `--syslog`'s socket, facility, priority and tag.
#[derive(Clone, Copy)]
pub struct SyslogTo {
    pub socket: &'static CStr,
    pub facility: Facility,
    pub severity: Severity,
    pub tag: &'static [u8],
}

impl SyslogTo {
    /// The sender (which opens nothing until a line comes); `start` makes one first to
    /// check the socket's path.
    pub fn sender(&self) -> Result<Syslog, Errno> {
        Syslog::new(self.socket, self.facility, self.severity, self.tag)
    }
}

/// The mode of a `--log` file the supervisor creates, before the umask.
const LOG_MODE: libc::mode_t = 0o640;

/// `poll(2)`'s timeout that waits for as long as it takes.
const NO_LIMIT: c_int = -1;

/// How much of PROGRAM's output is read at once.
const READ_SIZE: usize = 4096;

/// How many reads of [`READ_SIZE`] drain the pipe once PROGRAM ended (a child of its
/// may still write: the supervisor goes on).
const DRAIN_READS: usize = 16;

/// `pandaemonium: --log FILE: REASON`, to go on or end.
#[cold]
#[inline(never)]
pub fn log_failed(path: &CStr, e: Errno) -> Msg {
    let mut m = Msg::error();
    m.s("--log ").v(path.to_bytes()).s(": ").errno(e);
    m
}

/// How the `--log` file is opened: appended to, created if missing, never the
/// controlling terminal (stage 9's flags for its outputs).
const LOG_FLAGS: c_int = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_NOCTTY;

/// Opens (creates) the `--log` file for appending.
fn open_log(path: &CStr) -> Result<c_int, Errno> {
    os::open(path, LOG_FLAGS, LOG_MODE)
}

/// PROGRAM's output on its way: the pipe it writes to, the signals' descriptor polled
/// beside it, the log file, the syslog sender.
pub struct Logger {
    /// `--log FILE` and its open descriptor.
    file: Option<(&'static CStr, c_int)>,
    syslog: Option<Syslog>,
    read_end: c_int,
    /// PROGRAM's stdout and stderr.
    write_end: c_int,
    /// A `signalfd` over [`WAITED`].
    signals: c_int,
    /// The last PROGRAM's pid, for syslog's header.
    pid: u32,
}

impl Logger {
    /// Opens the log file, the pipe and the signals' descriptor; what to report when one
    /// fails (its message printed).
    fn open(output: Output, name: &CStr) -> Result<Logger, Record> {
        let mut file = None;
        if let Some(path) = output.file {
            let fd = open_log(path).map_err(|e| {
                log_failed(path, e).to(2);
                Record::LogFailed(e)
            })?;
            file = Some((path, fd));
        }
        // (The socket's path was checked by `start`.)
        let syslog = output.syslog.map(|to| to.sender()).transpose();
        let opened = syslog.and_then(|syslog| {
            let (r, w) = os::pipe()?;
            Ok((syslog, r, w, os::signalfd(&WAITED)?))
        });
        let (syslog, read_end, write_end, signals) = opened.map_err(|e| {
            Msg::exec_failed(name, e).to(2);
            Record::ExecFailed(e)
        })?;
        Ok(Logger {
            file,
            syslog,
            read_end,
            write_end,
            signals,
            pid: 0,
        })
    }

    /// Waits up to `timeout_ms` (`None`: no limit) for a signal or PROGRAM's output,
    /// and takes the output that came.
    pub fn wait(&mut self, timeout_ms: Option<u64>) {
        let ms = timeout_ms.map_or(NO_LIMIT, |ms| ms.min(c_int::MAX as u64) as c_int);
        let mut fds = [self.signals, self.read_end].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        if os::poll(&mut fds, ms).is_ok() && fds[1].revents != 0 {
            self.take();
        }
    }

    /// Reads once from the pipe (which has data) and passes it on; how much came.
    fn take(&mut self) -> usize {
        let mut buf = [0u8; READ_SIZE];
        let n = os::read(self.read_end, &mut buf).unwrap_or(0);
        let bytes = &buf[..n];
        if let Some((_, fd)) = self.file {
            // A full disk loses output: nothing better to do, and the pipe must drain.
            let _ = os::write_all(fd, bytes);
        }
        if let Some(syslog) = &mut self.syslog {
            // Lines nobody listens for are dropped (see the syslog module).
            let _ = syslog.write(self.pid, bytes);
        }
        n
    }

    /// PROGRAM ended: takes what it left in the pipe, and sends its last line.
    pub fn drain(&mut self) {
        for _ in 0..DRAIN_READS {
            let mut fds = [libc::pollfd {
                fd: self.read_end,
                events: libc::POLLIN,
                revents: 0,
            }];
            if os::poll(&mut fds, 0) != Ok(1) {
                break;
            }
            self.take();
        }
        if let Some(syslog) = &mut self.syslog {
            let _ = syslog.flush();
        }
    }

    /// SIGHUP: reopens the log file (renamed by logrotate, say), or keeps the old one;
    /// false without `--log` (HUP is then PROGRAM's).
    pub fn reopen(&mut self) -> bool {
        let Some((path, old)) = &mut self.file else {
            return false;
        };
        match open_log(path) {
            Ok(fd) => {
                os::close(*old);
                *old = fd;
            }
            Err(e) => {
                for fd in [*old, 2] {
                    log_failed(path, e)
                        .s(" (on SIGHUP; still writing to the old file)")
                        .to(fd);
                }
            }
        }
        true
    }

    /// Spawns PROGRAM ([`Program::spawn_with_output`]) with its stdout and stderr on
    /// the pipe, and names it in syslog's header.
    pub fn spawn(
        &mut self,
        program: &Program<'_>,
        lock: Option<c_int>,
        death: Option<c_int>,
    ) -> Result<u32, Errno> {
        let pid = program.spawn_with_output(lock, death, self.write_end)?;
        self.pid = pid;
        Ok(pid)
    }
}
