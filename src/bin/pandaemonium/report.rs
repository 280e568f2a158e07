//! The tool's own channel from the daemon to the original process: did PROGRAM start?
//!
//! A `pipe2(O_CLOEXEC)` made before fork; the daemon keeps the write end through stage 8
//! (`Config::inherit_file`). One 5-byte record (far below `PIPE_BUF`, so one atomic
//! write): a tag and an errno, big-endian.
//!
//! - exec'ing PROGRAM directly: a successful `execve` closes the write end, so **EOF
//!   means PROGRAM runs**; a failed one sends [`Record::ExecFailed`].
//! - supervising: the supervisor sends [`Record::Started`] once PROGRAM has exec'd and
//!   its pid is in the pid file; there EOF without a record means the supervisor died.
//!   `--log FILE` is opened before PROGRAM starts: [`Record::LogFailed`] when it can't.

use core::ffi::c_int;

use pandaemonium::{os, Errno};

/// What the daemon reports.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// PROGRAM runs and its pid is in the pid file.
    Started,
    /// `execve` failed (or, before it, `fork` in the supervisor).
    ExecFailed(Errno),
    /// The supervisor could not write PROGRAM's pid into the pid file.
    PidFileFailed(Errno),
    /// The supervisor could not open `--log FILE` (PROGRAM was not started).
    #[cfg(feature = "tool-log")]
    LogFailed(Errno),
}

/// What the original process read.
pub enum Received {
    /// A record.
    Record(Record),
    /// The write end closed without a record.
    Eof,
}

const STARTED: u8 = b'S';
const EXEC: u8 = b'E';
const PID_FILE: u8 = b'P';
#[cfg(feature = "tool-log")]
const LOG: u8 = b'L';

/// Sends `record` on `fd`. Async-signal-safe.
pub fn send(fd: c_int, record: Record) {
    let (tag, errno) = match record {
        Record::Started => (STARTED, 0),
        Record::ExecFailed(e) => (EXEC, e.raw()),
        Record::PidFileFailed(e) => (PID_FILE, e.raw()),
        #[cfg(feature = "tool-log")]
        Record::LogFailed(e) => (LOG, e.raw()),
    };
    let mut rec = [tag, 0, 0, 0, 0];
    rec[1..].copy_from_slice(&errno.to_be_bytes());
    // Nothing to do if the reader is gone.
    let _ = os::write_all(fd, &rec);
}

/// Reads one record, or EOF. A short or unknown record counts as EOF.
pub fn receive(fd: c_int) -> Received {
    let mut rec = [0u8; 5];
    if os::read_full(fd, &mut rec) < rec.len() {
        return Received::Eof;
    }
    let errno = Errno::from_raw(i32::from_be_bytes([rec[1], rec[2], rec[3], rec[4]]));
    match rec[0] {
        STARTED => Received::Record(Record::Started),
        EXEC => Received::Record(Record::ExecFailed(errno)),
        PID_FILE => Received::Record(Record::PidFileFailed(errno)),
        #[cfg(feature = "tool-log")]
        LOG => Received::Record(Record::LogFailed(errno)),
        _ => Received::Eof,
    }
}
