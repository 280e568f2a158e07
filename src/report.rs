//! The channel from the daemon to the original process.
//!
//! Three pipes, made before the first fork with `O_CLOEXEC`: the daemon's stdout and
//! stderr during set-up (captured as `output` and `error`), and a status pipe carrying
//! fixed-layout records. A record is far below `PIPE_BUF`, so each `write` is atomic;
//! it is encoded and decoded field by field (no `transmute`), as std's `Command::spawn`
//! does for its exec-error pipe. EOF before a final record means the daemon died.
//!
//! Record layout (`RECORD_LEN` bytes):
//!
//! | bytes | field |
//! |---|---|
//! | 0 | tag: `P` daemon pid, `S` stage begins (only with a start timeout or a wait for readiness), `F` failure, `D` stage 9 done, `R` ready (only with a wait for readiness) |
//! | 1 | stage number (0: none) |
//! | 2 | [`ErrorKind`] code |
//! | 3 | flags: 1 errno present, 2 holder present, 4 exit status present (in the errno field) |
//! | 4..8 | errno, big-endian |
//! | 8..12 | pid / holder, big-endian |
//! | 12 | detail length |
//! | 13..113 | detail bytes |
//! | 113..117 | footer `PDMN` |

use core::ffi::c_int;

use crate::error::DETAIL_CAPACITY;
use crate::{sys, Errno, Error, ErrorKind, ReadySource, Stage};

/// Bytes of the daemon's set-up stdout (and, separately, stderr) kept for the original
/// process; more is read and dropped, and the capture is marked truncated.
pub const CAPTURE_CAPACITY: usize = 4096;

const FOOTER: &[u8; 4] = b"PDMN";
const DETAIL_AT: usize = 13;
const RECORD_LEN: usize = DETAIL_AT + DETAIL_CAPACITY + 4;

const TAG_PID: u8 = b'P';
const TAG_FAILED: u8 = b'F';
const TAG_DONE: u8 = b'D';
const TAG_STAGE: u8 = b'S';
const TAG_READY: u8 = b'R';

/// [`Status::stage`] once the daemon is in `run()`, past stage 9.
const RUN: u8 = 10;

/// Which standard stream a chunk of set-up output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The daemon's stdout (`output`).
    Stdout,
    /// The daemon's stderr (`error`).
    Stderr,
}

/// What the daemon wrote to one stream during set-up, up to [`CAPTURE_CAPACITY`] bytes.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    bytes: heapless::Vec<u8, CAPTURE_CAPACITY>,
    truncated: bool,
}

impl Capture {
    /// The captured bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether more was written than [`CAPTURE_CAPACITY`] keeps.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        let room = CAPTURE_CAPACITY - self.bytes.len();
        let take = data.len().min(room);
        let _ = self.bytes.extend_from_slice(&data[..take]);
        self.truncated |= take < data.len();
    }
}

/// The daemon's end: one descriptor of the status pipe.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reporter {
    pub(crate) fd: c_int,
}

impl Reporter {
    /// Out of line: inlined, the record's set-up is copied into each sender below.
    #[inline(never)]
    fn send(&self, tag: u8, stage: u8, err: Option<&Error>, pid: u32) {
        // Nothing to do if the original process is gone.
        let _ = sys::write_all(self.fd, &record(tag, stage, err, pid));
    }

    /// Announces the daemon's pid (first thing after the second fork).
    pub(crate) fn pid(&self, pid: u32) {
        self.send(TAG_PID, 0, None, pid);
    }

    /// Announces that stage `stage` begins (sent only when the original process has a
    /// start timeout, so that it can say where the daemon was).
    pub(crate) fn stage(&self, stage: Stage) {
        self.send(TAG_STAGE, stage.number(), None, 0);
    }

    /// Reports a failed stage.
    pub(crate) fn failed(&self, err: &Error) {
        self.send(TAG_FAILED, 0, Some(err), 0);
    }

    /// Reports that stage 9 completed.
    pub(crate) fn done(&self) {
        self.send(TAG_DONE, 0, None, 0);
    }

    /// Reports that `run()` declared the daemon ready. Written after set-up, when the
    /// daemon's `SIGPIPE` has its own disposition again: a launcher gone by then is
    /// `EPIPE`, never the daemon's death.
    pub(crate) fn ready(&self) {
        let _ = sys::write_all_quiet(self.fd, &record(TAG_READY, 0, None, 0));
    }
}

/// One record: `tag`, `stage`, the failure `err` if any, and `pid`. Inlined into each
/// of its two callers: a daemon that never waits for readiness links one copy.
#[inline(always)]
fn record(tag: u8, stage: u8, err: Option<&Error>, pid: u32) -> [u8; RECORD_LEN] {
    let mut rec = [0u8; RECORD_LEN];
    rec[0] = tag;
    rec[1] = stage;
    let mut holder = pid;
    if let Some(e) = err {
        rec[1] = e.stage.map_or(0, Stage::number);
        rec[2] = kind_code(e.kind);
        if let Some(errno) = e.errno {
            rec[3] |= 1;
            put4(&mut rec, 4, errno.raw().to_be_bytes());
        } else if let Some(exit) = e.exit {
            rec[3] |= 4;
            put4(&mut rec, 4, exit.get().to_be_bytes());
        }
        if let Some(h) = e.holder {
            rec[3] |= 2;
            holder = h;
        }
        let detail = e.detail.as_bytes();
        rec[12] = detail.len() as u8;
        rec[DETAIL_AT..DETAIL_AT + detail.len()].copy_from_slice(detail);
    }
    put4(&mut rec, 8, holder.to_be_bytes());
    put4(&mut rec, RECORD_LEN - 4, *FOOTER);
    rec
}

/// Four bytes into `rec` at `at` (element by element: `copy_from_slice` on a
/// subrange costs a range check and a copy call each time at opt-level z).
fn put4(rec: &mut [u8; RECORD_LEN], at: usize, bytes: [u8; 4]) {
    for (i, b) in bytes.into_iter().enumerate() {
        rec[at + i] = b;
    }
}

fn kind_code(kind: ErrorKind) -> u8 {
    KINDS.iter().position(|&k| k == kind).map_or(0, |i| i as u8)
}

const KINDS: [ErrorKind; 17] = [
    ErrorKind::Os,
    ErrorKind::AlreadyRunning,
    ErrorKind::InvalidConfig,
    ErrorKind::Capacity,
    ErrorKind::Threaded,
    ErrorKind::ThreadsUnknown,
    ErrorKind::StageOrder,
    ErrorKind::DaemonDied,
    ErrorKind::PrivilegesRegained,
    ErrorKind::UnknownUser,
    ErrorKind::UnknownGroup,
    ErrorKind::Custom,
    ErrorKind::Detached,
    ErrorKind::Panicked,
    ErrorKind::Timeout,
    ErrorKind::NotReady,
    ErrorKind::CapabilityUnavailable,
];

/// The original process's ends of the three pipes.
#[derive(Debug)]
pub(crate) struct Receiver {
    pub(crate) status: c_int,
    pub(crate) stdout: c_int,
    pub(crate) stderr: c_int,
}

/// What the original process learnt.
pub(crate) struct Outcome {
    pub(crate) pid: Option<u32>,
    pub(crate) result: Result<(), Error>,
    /// The daemon ended, or was killed, without cleaning up after itself (it died, or
    /// the original gave up on it): the original removes the pid file it may have left.
    pub(crate) left_behind: bool,
    /// The pid a readiness source named with `MAINPID=`.
    pub(crate) main_pid: Option<u32>,
    /// A readiness source said ready: the intermediate process still waits for the
    /// daemon, and the original kills it.
    pub(crate) by_source: bool,
}

impl Receiver {
    /// Reads until the daemon reports stage 9 done or a failure and then closes the
    /// status pipe (after stage 9, or by exiting after a failure), passing every chunk
    /// of set-up output to `on_output` and into the captures. Closes the three
    /// descriptors. With `waiting`, stage 9's end is not final: it reads on until the
    /// daemon reports that it is ready, or fails, or ends (which the intermediate
    /// process, waiting for it, reports).
    ///
    /// By `deadline` (monotonic ms), or when `poll` fails, it gives up: the daemon is
    /// killed (`SIGKILL`) and the error says which stage it was in (the stage records
    /// come only with a deadline) or what failed.
    ///
    /// With a readiness `source`, that is polled too once the daemon's pid is known
    /// ([`Source`]); its word of readiness ends the wait like the daemon's own.
    pub(crate) fn monitor<W: Watch>(
        self,
        output: &mut Capture,
        error: &mut Capture,
        on_output: &mut dyn FnMut(Stream, &[u8]),
        mut deadline: Option<(u64, u64)>,
        waiting: bool,
        mut source: W,
    ) -> Outcome {
        let mut status = Status::new(self.status, waiting);
        let mut outputs = [
            (self.stdout, Stream::Stdout, output),
            (self.stderr, Stream::Stderr, error),
        ];
        let mut chunk = [0u8; 1024];
        let given_up = loop {
            let mut polled = [libc::pollfd {
                fd: status.fd,
                events: libc::POLLIN,
                revents: 0,
            }; 4];
            polled[1].fd = outputs[0].0;
            polled[2].fd = outputs[1].0;
            polled[3].fd = sys::NO_FD;
            if polled[..3].iter().all(|p| p.fd == sys::NO_FD) {
                break None;
            }
            let listening = status.fd != sys::NO_FD && !status.final_seen;
            if let (Some(_), true) = (status.outcome.pid, listening) {
                polled[3].fd = source.fd();
            }
            // Once the outcome is known (the status pipe closed), only drain what is
            // already buffered.
            let timeout = match deadline {
                _ if status.fd == sys::NO_FD => 0,
                None => -1,
                Some((at, _)) => at
                    .saturating_sub(sys::monotonic_ms())
                    .min(c_int::MAX as u64) as c_int,
            };
            match sys::poll_in(&mut polled, timeout) {
                Ok(0) if status.fd != sys::NO_FD => {
                    let (_, ms) = deadline.unwrap_or((0, 0));
                    break Some(status.timed_out(ms));
                }
                Ok(0) => break None,
                Ok(_) => {}
                Err(e) => break Some(Error::os(Stage::Detach, e, "poll", b"(the report channel)")),
            }
            if polled[0].revents != 0 && status.fd != sys::NO_FD {
                status.read();
            }
            if let (Some(pid), true) = (status.outcome.pid, polled[3].revents != 0) {
                if source.take(pid, &mut deadline) && status.fd != sys::NO_FD && !status.final_seen
                {
                    // Ready: the intermediate's word no longer matters.
                    sys::close(status.fd);
                    status.fd = sys::NO_FD;
                    status.final_seen = true;
                    status.outcome.by_source = true;
                }
            }
            for (p, (fd, stream, capture)) in polled[1..].iter().zip(&mut outputs) {
                if p.revents != 0 && *fd != sys::NO_FD {
                    pump(fd, *stream, capture, &mut chunk, on_output);
                }
            }
        };
        for (fd, _, _) in &outputs {
            if *fd != sys::NO_FD {
                sys::close(*fd);
            }
        }
        if let Some(e) = given_up {
            status.give_up(e);
        }
        if status.fd != sys::NO_FD {
            sys::close(status.fd);
        }
        source.finish(&mut status.outcome);
        status.outcome
    }

    /// [`monitor`](Self::monitor) of a waiting launcher, with its readiness `source`
    /// if any, reached through the pointer [`Config::wait_ready`](crate::Config::wait_ready)
    /// sets: a daemon that never waits links none of its code. Then settles the
    /// intermediate process `child` and tells systemd ([`settle`](crate::ready::settle)).
    pub(crate) fn monitor_waiting(
        self,
        output: &mut Capture,
        error: &mut Capture,
        on_output: &mut dyn FnMut(Stream, &[u8]),
        deadline: Option<(u64, u64)>,
        (source, child): (Option<ReadySource>, libc::pid_t),
    ) -> Outcome {
        // One copy of the loop for both: the source, if any, is an `Option`.
        let source = source.map(Source::new);
        let outcome = self.monitor(output, error, on_output, deadline, true, source);
        crate::ready::settle(child, &outcome);
        outcome
    }
}

/// [`Receiver::monitor_waiting`], as [`Config`](crate::Config) keeps it.
pub(crate) type MonitorWaiting = fn(
    Receiver,
    &mut Capture,
    &mut Capture,
    &mut dyn FnMut(Stream, &[u8]),
    Option<(u64, u64)>,
    (Option<ReadySource>, libc::pid_t),
) -> Outcome;

/// What the waiting original process watches beside the status pipe: nothing (`()`,
/// the default path), or a readiness source if any (`Option<Source>`, waiting).
pub(crate) trait Watch {
    /// The descriptor to poll once the daemon's pid is known (`sys::NO_FD`: none).
    fn fd(&self) -> c_int;
    /// Reads what is there: whether it says the daemon `daemon` is ready.
    fn take(&mut self, daemon: u32, deadline: &mut Option<(u64, u64)>) -> bool;
    /// Hands what it learnt to the outcome.
    fn finish(self, outcome: &mut Outcome);
}

impl Watch for () {
    fn fd(&self) -> c_int {
        sys::NO_FD
    }
    fn take(&mut self, _: u32, _: &mut Option<(u64, u64)>) -> bool {
        false
    }
    fn finish(self, _: &mut Outcome) {}
}

impl Watch for Option<Source> {
    fn fd(&self) -> c_int {
        self.as_ref().map_or(sys::NO_FD, |s| s.fd)
    }
    fn take(&mut self, daemon: u32, deadline: &mut Option<(u64, u64)>) -> bool {
        self.as_mut()
            .is_some_and(|s| Source::take(s, daemon, deadline))
    }
    fn finish(self, outcome: &mut Outcome) {
        let Some(source) = self else {
            return;
        };
        outcome.main_pid = source.main_pid;
        if let (Err(e), Some(errno)) = (&mut outcome.result, source.errno) {
            if e.errno.is_none() {
                e.errno = Some(errno);
            }
        }
    }
}

/// A readiness source as the original process reads it.
pub(crate) struct Source {
    fd: c_int,
    notify: bool,
    /// The pid an accepted sender named with `MAINPID=`.
    main_pid: Option<u32>,
    /// The last `ERRNO=` from an accepted sender.
    errno: Option<Errno>,
}

impl Source {
    fn new(source: ReadySource) -> Source {
        Source {
            fd: source.fd(),
            notify: matches!(source, ReadySource::Notify(_)),
            main_pid: None,
            errno: None,
        }
    }

    /// Reads what is there; whether it says the daemon (`daemon`) is ready. An
    /// `EXTEND_TIMEOUT_USEC` moves `deadline`.
    fn take(&mut self, daemon: u32, deadline: &mut Option<(u64, u64)>) -> bool {
        if !self.notify {
            let mut buf = [0u8; 64];
            return match sys::read(self.fd, &mut buf) {
                Ok(n) if n > 0 => buf[..n].contains(&b'\n'),
                // EOF (or an error): the program closed it; its end is reported anyway.
                _ => {
                    self.fd = sys::NO_FD;
                    false
                }
            };
        }
        let mut ready = false;
        // Every queued datagram, until EAGAIN.
        while let Ok(m) = crate::notify::recv_message(self.fd) {
            let Some(pid) = m.pid() else { continue };
            let accepted = pid == daemon
                || Some(pid) == self.main_pid
                || crate::notify_listen::descends_from(pid, daemon);
            if m.truncated() || !accepted {
                continue;
            }
            if let Some(n) = m.get("MAINPID").and_then(crate::decimal::parse_u32) {
                self.main_pid = Some(n).filter(|&n| n > 0);
            }
            if let Some(n) = m.get("ERRNO").and_then(crate::decimal::parse_u32) {
                self.errno = i32::try_from(n).ok().map(Errno::from_raw);
            }
            if let (Some(us), Some((at, _))) = (
                m.get("EXTEND_TIMEOUT_USEC")
                    .and_then(crate::decimal::parse_u64),
                deadline.as_mut(),
            ) {
                // Microseconds (start-stop-daemon reads them as milliseconds).
                let by = sys::monotonic_ms().saturating_add(us.div_ceil(1000));
                *at = (*at).max(by);
            }
            ready |= m.get("READY") == Some(b"1");
        }
        ready
    }
}

/// The status pipe as the original process reads it: fixed-size records.
struct Status {
    fd: c_int,
    rec: [u8; RECORD_LEN],
    have: usize,
    /// A final record (done, ready or failed) arrived.
    final_seen: bool,
    /// The stage the daemon announced last (0: none announced; [`RUN`]: in `run()`).
    stage: u8,
    /// The original process waits for readiness: stage 9's end is not final.
    waiting: bool,
    outcome: Outcome,
}

impl Status {
    fn new(fd: c_int, waiting: bool) -> Status {
        Status {
            fd,
            rec: [0u8; RECORD_LEN],
            have: 0,
            final_seen: false,
            stage: 0,
            waiting,
            outcome: Outcome {
                pid: None,
                result: Ok(()),
                left_behind: false,
                main_pid: None,
                by_source: false,
            },
        }
    }

    /// One read: part of a record, a whole one, or EOF (the status pipe closes right
    /// after stage 9, or when the daemon exits after a failure). Reading goes on until
    /// EOF, so `start()` returns only once that has happened.
    #[inline(never)]
    fn read(&mut self) {
        match sys::read(self.fd, &mut self.rec[self.have..]) {
            Ok(0) | Err(_) => {
                sys::close(self.fd);
                self.fd = sys::NO_FD;
                if !self.final_seen {
                    let mut e = Error::new(
                        Stage::from_number(self.stage),
                        ErrorKind::DaemonDied,
                        // In set-up (the stage says which) or, waiting, in run() (no
                        // stage; only if the intermediate process was killed too).
                        "the daemon ended without a result",
                    );
                    e.holder = self.outcome.pid;
                    self.outcome.result = Err(e);
                    self.outcome.left_behind = true;
                }
            }
            Ok(n) => {
                self.have += n;
                if self.have == RECORD_LEN {
                    self.have = 0;
                    self.take_record();
                }
            }
        }
    }

    /// Decodes the whole record in `rec` into what the original process learnt; a
    /// record without the footer, or of an unknown tag or kind, is ignored. Decoded in
    /// place: an [`Error`] is built where it is kept, not moved there.
    fn take_record(&mut self) {
        let rec = &self.rec;
        if &rec[RECORD_LEN - 4..] != FOOTER {
            return;
        }
        let word = |at: usize| [rec[at], rec[at + 1], rec[at + 2], rec[at + 3]];
        let pid = u32::from_be_bytes(word(8));
        match rec[0] {
            TAG_PID => self.outcome.pid = Some(pid),
            // Waiting for readiness, stage 9's end only means `run()` began.
            TAG_DONE if self.waiting => self.stage = RUN,
            TAG_DONE | TAG_READY => self.final_seen = true,
            TAG_STAGE => self.stage = rec[1],
            // The first word stands: a daemon that reported its failure and exited is
            // then also reported by the process that waited for it.
            TAG_FAILED if self.final_seen => {}
            TAG_FAILED => {
                let Some(&kind) = KINDS.get(usize::from(rec[2])) else {
                    return;
                };
                self.final_seen = true;
                self.outcome.result = Err(Error::bare(Stage::from_number(rec[1]), kind));
                let Err(e) = &mut self.outcome.result else {
                    return;
                };
                if rec[3] & 1 != 0 {
                    e.errno = Some(Errno::from_raw(i32::from_be_bytes(word(4))));
                }
                if rec[3] & 2 != 0 {
                    e.holder = Some(pid);
                }
                if rec[3] & 4 != 0 {
                    e.exit = core::num::NonZeroU32::new(u32::from_be_bytes(word(4)));
                }
                let len = usize::from(rec[12]).min(DETAIL_CAPACITY);
                e.push_detail(&rec[DETAIL_AT..DETAIL_AT + len]);
            }
            _ => {}
        }
    }

    /// The deadline passed with the daemon still setting up.
    #[cold]
    fn timed_out(&self, ms: u64) -> Error {
        let mut e = if self.stage == RUN {
            Error::new(None, ErrorKind::Timeout, "run: not ready within ")
        } else {
            Error::new(
                Some(Stage::from_number(self.stage).unwrap_or(Stage::Detach)),
                ErrorKind::Timeout,
                "no result within ",
            )
        };
        e.push_detail(crate::decimal::Dec::new(ms as i64).as_bytes());
        e.push_detail(b" ms; the daemon was killed");
        e
    }

    /// The original process gives up on the daemon (`why`): learns its pid if it has
    /// not yet (the record is in the pipe: the intermediate process wrote it before
    /// the original reaped it) and kills it (`SIGKILL`). What it may have left is
    /// removed next, under the pid file's lock, which goes with the daemon's last
    /// descriptor ([`PidLockFile::remove_left`](crate::PidLockFile)).
    #[cold]
    #[inline(never)]
    fn give_up(&mut self, mut why: Error) {
        while self.fd != sys::NO_FD && self.outcome.pid.is_none() && !self.final_seen {
            self.read();
        }
        if self.final_seen {
            return; // it reported in the meantime: its own word stands
        }
        if let Some(pid) = self.outcome.pid {
            let _ = sys::kill(pid as libc::pid_t, libc::SIGKILL);
        }
        why.holder = self.outcome.pid;
        self.outcome.result = Err(why);
        self.outcome.left_behind = true;
    }
}

/// One read of the daemon's stdout or stderr during set-up: into `capture` and to
/// `on_output`; at EOF the descriptor is closed and set to -1.
#[inline(never)]
fn pump(
    fd: &mut c_int,
    stream: Stream,
    capture: &mut Capture,
    chunk: &mut [u8; 1024],
    on_output: &mut dyn FnMut(Stream, &[u8]),
) {
    match sys::read(*fd, chunk) {
        Ok(0) | Err(_) => {
            sys::close(*fd);
            *fd = sys::NO_FD;
        }
        Ok(n) => {
            capture.push(&chunk[..n]);
            on_output(stream, &chunk[..n]);
        }
    }
}

/// Makes the three pipes, all descriptors 3 or above (a launcher with stdio closed
/// would otherwise get 0-2 back). Returns the daemon's ends and the original's ends.
pub(crate) fn channel() -> Result<([c_int; 3], Receiver), Error> {
    let mut fds = [sys::NO_FD; 6];
    if let Err((errno, op, value)) = open_pipes(&mut fds) {
        for fd in fds {
            if fd != sys::NO_FD {
                sys::close(fd);
            }
        }
        return Err(Error::os(Stage::Detach, errno, op, value));
    }
    Ok((
        [fds[1], fds[3], fds[5]],
        Receiver {
            status: fds[0],
            stdout: fds[2],
            stderr: fds[4],
        },
    ))
}

/// The three pipes of [`channel`], every end above the standard streams. The error is
/// the errno and the call: the caller builds the one [`Error`].
fn open_pipes(fds: &mut [c_int; 6]) -> Result<(), (Errno, &'static str, &'static [u8])> {
    for pair in fds.chunks_exact_mut(2) {
        (pair[0], pair[1]) = sys::pipe().map_err(|e| (e, "pipe2", &b""[..]))?;
    }
    for fd in fds.iter_mut() {
        // On failure above_stdio has closed the descriptor: forget it.
        *fd = sys::above_stdio(*fd).map_err(|e| {
            *fd = sys::NO_FD;
            (e, "fcntl", &b"F_DUPFD_CLOEXEC"[..])
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_is_truncated_only_past_its_capacity() {
        let mut c = Capture::default();
        c.push(&[b'x'; CAPTURE_CAPACITY - 1]);
        c.push(b"y");
        assert_eq!(c.as_bytes().len(), CAPTURE_CAPACITY);
        assert!(!c.is_truncated(), "exactly full is not truncated");
        c.push(b"");
        assert!(!c.is_truncated());
        c.push(b"z");
        assert!(c.is_truncated());
        assert_eq!(c.as_bytes().len(), CAPTURE_CAPACITY);
        assert_eq!(c.as_bytes()[CAPTURE_CAPACITY - 1], b'y');
    }

    /// Sends `records` through a pipe; what the original process reads back.
    fn round_trip(send: impl FnOnce(&Reporter)) -> Status {
        let (r, w) = sys::pipe().unwrap();
        send(&Reporter { fd: w });
        sys::close(w);
        let mut status = Status::new(r, false);
        while status.fd != sys::NO_FD {
            status.read();
        }
        status
    }

    #[test]
    fn a_pipe_source_is_ready_at_a_newline_and_never_at_eof() {
        let (r, w) = sys::pipe().unwrap();
        let mut src = Source::new(ReadySource::Pipe(r));
        let mut deadline = None;
        sys::write_all(w, b"x").unwrap();
        assert!(!Source::take(&mut src, 1, &mut deadline));
        sys::write_all(w, b"\n").unwrap();
        assert!(Source::take(&mut src, 1, &mut deadline));
        sys::close(w);
        assert!(
            !Source::take(&mut src, 1, &mut deadline),
            "EOF is not ready"
        );
        assert_eq!(src.fd, sys::NO_FD, "no longer polled");
        sys::close(r);
    }

    #[test]
    fn a_notify_source_counts_only_the_daemon_and_its_main_pid() {
        let l = crate::notify::NotifyListener::bind_private(None).unwrap();
        let to = crate::notify::NotifySocket::parse(l.address().to_bytes()).unwrap();
        let me = sys::getpid() as u32;
        let mut src = Source::new(ReadySource::Notify(l.as_raw_fd()));
        let mut deadline = Some((1000, 1000));
        // A daemon that is neither us nor an ancestor of ours (no such pid: above any
        // pid_max): our datagrams are a stranger's, ignored, fields too.
        let other = 0x3fff_fff0;
        to.send(b"MAINPID=77\nEXTEND_TIMEOUT_USEC=999000000\nREADY=1")
            .unwrap();
        assert!(!Source::take(&mut src, other, &mut deadline));
        assert_eq!((src.main_pid, deadline), (None, Some((1000, 1000))));
        // From the daemon: microseconds, the main pid, the errno.
        to.send(b"MAINPID=77\nERRNO=2\nEXTEND_TIMEOUT_USEC=2000")
            .unwrap();
        let before = sys::monotonic_ms();
        assert!(!src.take(me, &mut deadline));
        let after = sys::monotonic_ms();
        let (at, _) = deadline.unwrap();
        // 2 ms from a moment between the two readings (an order, not a timing).
        assert!(
            before + 2 <= at && at <= after + 2,
            "{before} + 2 <= {at} <= {after} + 2: 2 ms, not 2 s"
        );
        assert_eq!((src.main_pid, src.errno), (Some(77), Some(Errno::NOENT)));
        // The main pid's word counts: here the sender is the main pid.
        let mut src = Source::new(ReadySource::Notify(l.as_raw_fd()));
        src.main_pid = Some(me);
        to.send(b"READY=1").unwrap();
        assert!(src.take(other, &mut None));
        // An ancestor's descendant counts: we descend from our parent.
        let mut src = Source::new(ReadySource::Notify(l.as_raw_fd()));
        to.send(b"READY=1").unwrap();
        assert!(src.take(sys::getppid() as u32, &mut None));
    }

    #[test]
    fn every_byte_of_every_field_crosses() {
        // Values whose four bytes all differ, the longest detail, and no holder.
        let mut e = Error::os(Stage::CloseFiles, Errno::from_raw(0x0102_0304), "op", b"");
        e.detail.clear();
        e.push_detail(&[b'd'; DETAIL_CAPACITY]);
        assert_eq!(e.detail().len(), DETAIL_CAPACITY);
        let status = round_trip(|rep| {
            rep.pid(0x0a0b_0c0d);
            rep.failed(&e);
        });
        assert_eq!(status.outcome.pid, Some(0x0a0b_0c0d));
        assert_eq!(status.outcome.result, Err(e), "no holder stays no holder");
        let mut held = Error::new(Some(Stage::PidFile), ErrorKind::AlreadyRunning, "x");
        held.holder = Some(0x1122_3344);
        let status = round_trip(|rep| rep.failed(&held));
        assert_eq!(status.outcome.result, Err(held));
    }

    #[test]
    fn records_round_trip() {
        let mut e = Error::os(Stage::Redirect, Errno::NOENT, "open", b"/x");
        e.holder = Some(77);
        let status = round_trip(|rep| {
            rep.pid(4242);
            rep.stage(Stage::CloseFiles);
            rep.failed(&e);
        });
        assert_eq!(status.outcome.pid, Some(4242));
        assert_eq!(status.stage, 8);
        assert_eq!(status.outcome.result, Err(e));
        assert!(
            !status.outcome.left_behind,
            "it reported: nothing left behind"
        );
    }
}
