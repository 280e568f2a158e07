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
//! | 0 | tag: `P` daemon pid, `F` failure, `D` stage 9 done, `R` ready (read, not yet sent: for a later `notify_ready()`) |
//! | 1 | stage number (0: none) |
//! | 2 | [`ErrorKind`] code |
//! | 3 | flags: 1 errno present, 2 holder present |
//! | 4..8 | errno, big-endian |
//! | 8..12 | pid / holder, big-endian |
//! | 12 | detail length |
//! | 13..113 | detail bytes |
//! | 113..117 | footer `PDMN` |

use core::ffi::c_int;

use crate::error::DETAIL_CAPACITY;
use crate::{sys, Errno, Error, ErrorKind, Stage};

/// Bytes of the daemon's set-up stdout (and, separately, stderr) kept for the original
/// process; more is read and dropped, and the capture is marked truncated.
pub const CAPTURE_CAPACITY: usize = 4096;

const FOOTER: &[u8; 4] = b"PDMN";
const DETAIL_AT: usize = 13;
const RECORD_LEN: usize = DETAIL_AT + DETAIL_CAPACITY + 4;

const TAG_PID: u8 = b'P';
const TAG_FAILED: u8 = b'F';
const TAG_DONE: u8 = b'D';
const TAG_READY: u8 = b'R';

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

    fn push(&mut self, data: &[u8]) {
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
    fn send(&self, tag: u8, err: Option<&Error>, pid: u32) {
        let mut rec = [0u8; RECORD_LEN];
        rec[0] = tag;
        let mut holder = pid;
        if let Some(e) = err {
            rec[1] = e.stage.map_or(0, Stage::number);
            rec[2] = kind_code(e.kind);
            if let Some(errno) = e.errno {
                rec[3] |= 1;
                rec[4..8].copy_from_slice(&errno.raw().to_be_bytes());
            }
            if let Some(h) = e.holder {
                rec[3] |= 2;
                holder = h;
            }
            let detail = e.detail.as_bytes();
            rec[12] = detail.len() as u8;
            rec[DETAIL_AT..DETAIL_AT + detail.len()].copy_from_slice(detail);
        }
        rec[8..12].copy_from_slice(&holder.to_be_bytes());
        rec[RECORD_LEN - 4..].copy_from_slice(FOOTER);
        // Nothing to do if the original process is gone.
        let _ = sys::write_all(self.fd, &rec);
    }

    /// Announces the daemon's pid (first thing after the second fork).
    pub(crate) fn pid(&self, pid: u32) {
        self.send(TAG_PID, None, pid);
    }

    /// Reports a failed stage.
    pub(crate) fn failed(&self, err: &Error) {
        self.send(TAG_FAILED, Some(err), 0);
    }

    /// Reports that stage 9 completed.
    pub(crate) fn done(&self) {
        self.send(TAG_DONE, None, 0);
    }
}

fn kind_code(kind: ErrorKind) -> u8 {
    KINDS.iter().position(|&k| k == kind).map_or(0, |i| i as u8)
}

const KINDS: [ErrorKind; 14] = [
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
];

/// A decoded record.
enum Record {
    Pid(u32),
    Failed(Error),
    Done,
    Ready,
}

fn decode(rec: &[u8; RECORD_LEN]) -> Option<Record> {
    if &rec[RECORD_LEN - 4..] != FOOTER {
        return None;
    }
    let word = |at: usize| [rec[at], rec[at + 1], rec[at + 2], rec[at + 3]];
    let pid = u32::from_be_bytes(word(8));
    match rec[0] {
        TAG_PID => Some(Record::Pid(pid)),
        TAG_DONE => Some(Record::Done),
        TAG_READY => Some(Record::Ready),
        TAG_FAILED => {
            let kind = *KINDS.get(usize::from(rec[2]))?;
            let mut e = Error::bare(Stage::from_number(rec[1]), kind);
            if rec[3] & 1 != 0 {
                e.errno = Some(Errno::from_raw(i32::from_be_bytes(word(4))));
            }
            if rec[3] & 2 != 0 {
                e.holder = Some(pid);
            }
            let len = usize::from(rec[12]).min(DETAIL_CAPACITY);
            e.push_detail(&rec[DETAIL_AT..DETAIL_AT + len]);
            Some(Record::Failed(e))
        }
        _ => None,
    }
}

/// The original process's ends of the three pipes.
pub(crate) struct Receiver {
    pub(crate) status: c_int,
    pub(crate) stdout: c_int,
    pub(crate) stderr: c_int,
}

/// What the original process learnt.
pub(crate) struct Outcome {
    pub(crate) pid: Option<u32>,
    pub(crate) result: Result<(), Error>,
}

impl Receiver {
    /// Reads until the daemon reports stage 9 done or a failure and then closes the
    /// status pipe (after stage 9, or by exiting after a failure), passing every chunk of set-up output to `on_output` and
    /// into the captures. Closes the three descriptors.
    pub(crate) fn monitor(
        self,
        output: &mut Capture,
        error: &mut Capture,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Outcome {
        let mut status = Status {
            fd: self.status,
            rec: [0u8; RECORD_LEN],
            have: 0,
            final_seen: false,
            outcome: Outcome {
                pid: None,
                result: Ok(()),
            },
        };
        let mut outputs = [
            (self.stdout, Stream::Stdout, output),
            (self.stderr, Stream::Stderr, error),
        ];
        let mut chunk = [0u8; 1024];
        loop {
            let mut polled = [libc::pollfd {
                fd: status.fd,
                events: libc::POLLIN,
                revents: 0,
            }; 3];
            polled[1].fd = outputs[0].0;
            polled[2].fd = outputs[1].0;
            if polled.iter().all(|p| p.fd < 0) {
                break;
            }
            // Once the outcome is known (the status pipe closed), only drain what is
            // already buffered.
            let timeout = if status.fd < 0 { 0 } else { -1 };
            match sys::poll_in(&mut polled, timeout) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if polled[0].revents != 0 && status.fd >= 0 {
                status.read();
            }
            for (p, (fd, stream, capture)) in polled[1..].iter().zip(&mut outputs) {
                if p.revents != 0 && *fd >= 0 {
                    pump(fd, *stream, capture, &mut chunk, on_output);
                }
            }
        }
        for fd in [status.fd, outputs[0].0, outputs[1].0] {
            if fd >= 0 {
                sys::close(fd);
            }
        }
        status.outcome
    }
}

/// The status pipe as the original process reads it: fixed-size records.
struct Status {
    fd: c_int,
    rec: [u8; RECORD_LEN],
    have: usize,
    /// A final record (done, ready or failed) arrived.
    final_seen: bool,
    outcome: Outcome,
}

impl Status {
    /// One read: part of a record, a whole one, or EOF (the status pipe closes right
    /// after stage 9, or when the daemon exits after a failure). Reading goes on until
    /// EOF, so `start()` returns only once that has happened.
    #[inline(never)]
    fn read(&mut self) {
        match sys::read(self.fd, &mut self.rec[self.have..]) {
            Ok(0) | Err(_) => {
                sys::close(self.fd);
                self.fd = -1;
                if !self.final_seen {
                    let mut e =
                        Error::new(None, ErrorKind::DaemonDied, "daemon exited during set-up");
                    e.holder = self.outcome.pid;
                    self.outcome.result = Err(e);
                }
            }
            Ok(n) => {
                self.have += n;
                if self.have == RECORD_LEN {
                    self.have = 0;
                    match decode(&self.rec) {
                        Some(Record::Pid(pid)) => self.outcome.pid = Some(pid),
                        Some(Record::Done) | Some(Record::Ready) => self.final_seen = true,
                        Some(Record::Failed(e)) => {
                            self.final_seen = true;
                            self.outcome.result = Err(e);
                        }
                        None => {}
                    }
                }
            }
        }
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
            *fd = -1;
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
    let mut fds = [-1 as c_int; 6];
    if let Err((errno, op, value)) = open_pipes(&mut fds) {
        for fd in fds {
            if fd >= 0 {
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
            *fd = -1;
            (e, "fcntl", &b"F_DUPFD_CLOEXEC"[..])
        })?;
    }
    Ok(())
}
