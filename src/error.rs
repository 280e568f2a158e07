//! The one error type: which stage, what kind, the OS error and the offending value.

use core::fmt;

use crate::{Errno, Stage};

/// Bytes of [`Error::detail`] kept; a longer detail is cut and ends in `...`.
pub const DETAIL_CAPACITY: usize = 100;

/// What went wrong, beyond the stage and the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A system call failed; [`Error::errno`] says why and the detail names the call and value.
    Os,
    /// The pid file is locked by a live process; [`Error::holder`] is its pid when the
    /// file names one.
    AlreadyRunning,
    /// A configuration value was refused before anything was changed.
    InvalidConfig,
    /// A fixed capacity (see the crate's `*_CAPACITY` constants) would be exceeded.
    Capacity,
    /// The caller has more than one thread, so stage 1 refuses to fork, or (without a
    /// fork) stage 3 refuses to change the ids, which would change for the calling
    /// thread alone; see [`Daemon::allow_threads`](crate::Daemon::allow_threads).
    Threaded,
    /// The number of threads could not be read (`/proc` not mounted), so stage 1's
    /// fork, or stage 3 without a fork, is refused; see
    /// [`Daemon::allow_threads`](crate::Daemon::allow_threads).
    ThreadsUnknown,
    /// A stage was run twice, out of order, or in the original process after detaching
    /// (pandaemonium's `check_stage`), or the daemon was started twice.
    StageOrder,
    /// The daemon ended during set-up without reporting a result (it crashed or
    /// exited); [`Error::holder`] is its pid when known.
    DaemonDied,
    /// After dropping privileges, `setuid(0)` still succeeded.
    PrivilegesRegained,
    /// A capability to keep ([`Config::keep_capabilities`](crate::Config::keep_capabilities))
    /// is not in this process's bounding or permitted set; the detail names it.
    CapabilityUnavailable,
    /// A user name or uid has no entry in the user database.
    UnknownUser,
    /// A group name has no entry in the group database.
    UnknownGroup,
    /// A failure reported by the user's own stage code ([`Error::custom`]).
    Custom,
    /// User code panicked in the daemon during set-up; the daemon removed its pid file
    /// and exited (the panic message, if any, is in the captured `error`).
    Panicked,
    /// The daemon did not finish its stages within
    /// [`Config::start_timeout`](crate::Config::start_timeout): the original process
    /// killed it and removed what it left; [`Error::stage`] is the stage it was in and
    /// [`Error::holder`] its pid.
    Timeout,
    /// The daemon ended before it declared itself ready ([`ready`](crate::ready())),
    /// with the launcher waiting for that ([`Config::wait_ready`](crate::Config::wait_ready)):
    /// [`Error::exit`] says how it ended (`run()`'s status, or the signal that killed
    /// it), [`Error::holder`] is its pid. [`Error::stage`] is `None`: the daemon was in
    /// `run()`.
    NotReady,
    /// Not a failure: returned by [`Stages::detach`](crate::Stages::detach) in the
    /// original process so that `?` carries it out of a stage override, as
    /// pandaemonium's `Parent` exception does. `start()`, `stage()` and `activate()`
    /// consume it; user code never sees it from them.
    Detached,
}

/// A failed stage or a refused configuration.
///
/// Fixed size, no allocation: the stage, the kind, the OS error and a short detail
/// naming the call and the value. It crosses the report pipe as a fixed record, so the
/// original process gets exactly what the daemon saw.
///
/// ```
/// use pandaemonium::{Errno, Error, Stage};
/// let e = Error::os(Stage::WorkingDirectory, Errno::NOENT, "chdir", b"/nonexistent");
/// assert!(format!("{e}").starts_with(
///     "stage 5 (working directory): chdir /nonexistent: "));
/// assert!(format!("{e}").ends_with("(os error 2)"));
/// ```
#[derive(PartialEq, Eq)]
pub struct Error {
    pub(crate) stage: Option<Stage>,
    pub(crate) kind: ErrorKind,
    pub(crate) errno: Option<Errno>,
    pub(crate) holder: Option<u32>,
    /// For [`ErrorKind::NotReady`]: the raw wait status plus one (a status is 16 bits:
    /// it always fits, and the niche keeps `Error` small).
    pub(crate) exit: Option<core::num::NonZeroU32>,
    // A one-byte length keeps `Error` under 128 bytes (clippy's `result_large_err`).
    pub(crate) detail: heapless::String<DETAIL_CAPACITY, u8>,
}

impl Clone for Error {
    /// The detail is copied as one slice (heapless' own `Clone` pushes byte by byte).
    fn clone(&self) -> Error {
        // Every field named: a new one can't be forgotten here.
        let Error {
            stage,
            kind,
            errno,
            holder,
            exit,
            detail,
        } = self;
        let mut e = Error::bare(*stage, *kind);
        e.errno = *errno;
        e.holder = *holder;
        e.exit = *exit;
        // The same capacity: it always fits.
        let _ = e.detail.push_str(detail);
        e
    }
}

// Small enough to return by value everywhere (clippy's `result_large_err` threshold).
const _: () = assert!(core::mem::size_of::<Error>() < 128);

impl Error {
    /// An error of `kind` in `stage` (if any) with a detail message.
    #[cold]
    #[inline(never)]
    pub fn new(stage: Option<Stage>, kind: ErrorKind, detail: &str) -> Error {
        let mut e = Error::bare(stage, kind);
        e.push_detail(detail.as_bytes());
        e
    }

    /// A failed system call: `op` is the call's name, `value` the argument that failed
    /// (a path, a number), shown as `op value`.
    #[cold]
    #[inline(never)]
    pub fn os(stage: Stage, errno: Errno, op: &str, value: &[u8]) -> Error {
        let mut e = Error::bare(Some(stage), ErrorKind::Os);
        e.errno = Some(errno);
        e.push_detail(op.as_bytes());
        if !value.is_empty() {
            e.push_detail(b" ");
            e.push_detail(value);
        }
        e
    }

    /// A failure in the user's own code during `stage`, for stage overrides and custom
    /// steps; `errno` may be given when an OS call is the cause.
    pub fn custom(stage: Stage, errno: Option<Errno>, message: &str) -> Error {
        let mut e = Error::new(Some(stage), ErrorKind::Custom, message);
        e.errno = errno;
        e
    }

    pub(crate) const fn bare(stage: Option<Stage>, kind: ErrorKind) -> Error {
        Error {
            stage,
            kind,
            errno: None,
            holder: None,
            exit: None,
            detail: heapless::String::new(),
        }
    }

    /// Records how the daemon ended (a raw wait status).
    pub(crate) fn set_exit(&mut self, status: i32) {
        self.exit = core::num::NonZeroU32::new((status as u32 & 0xffff) + 1);
    }

    pub(crate) fn with_holder(mut self, pid: Option<u32>) -> Error {
        self.holder = pid;
        self
    }

    /// Appends bytes to the detail (invalid UTF-8 shown as `?`), cutting at the capacity.
    #[cold]
    #[inline(never)]
    pub(crate) fn push_detail(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let c = if b.is_ascii() && !b.is_ascii_control() {
                b as char
            } else {
                '?'
            };
            if self.detail.len() + 1 > DETAIL_CAPACITY - 3 {
                // Room stays for the "..." marker.
                let _ = self.detail.push_str("...");
                return;
            }
            let _ = self.detail.push(c);
        }
    }

    /// The stage that failed, or `None` for errors outside any stage.
    pub fn stage(&self) -> Option<Stage> {
        self.stage
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The OS error, when a system call failed.
    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }

    /// For [`ErrorKind::AlreadyRunning`]: the pid in the locked pid file.
    /// For [`ErrorKind::DaemonDied`]: the daemon's pid. For [`ErrorKind::Threaded`]:
    /// the number of threads.
    pub fn holder(&self) -> Option<u32> {
        self.holder
    }

    /// For [`ErrorKind::NotReady`]: how the daemon ended before it was ready.
    pub fn exit(&self) -> Option<crate::Exit> {
        self.exit
            .map(|n| crate::Exit::from_raw((n.get() - 1) as i32))
    }

    /// The call and value that failed, e.g. `chdir /nonexistent`.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Whether this is the [`ErrorKind::Detached`] marker.
    pub fn is_detached_marker(&self) -> bool {
        self.kind == ErrorKind::Detached
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("stage", &self.stage)
            .field("kind", &self.kind)
            .field("errno", &self.errno)
            .field("holder", &self.holder)
            .field("exit", &self.exit)
            .field("detail", &self.detail.as_str())
            .finish()
    }
}

impl Error {
    /// Writes the message `Display` shows piece by piece into `out`, without
    /// `core::fmt`: for `no_std` programs that print with `write(2)` and would rather
    /// not link the formatting machinery (the `pandaemonium` tool does).
    ///
    /// ```
    /// use pandaemonium::{Errno, Error, Stage};
    /// let e = Error::os(Stage::PidFile, Errno::ACCES, "open", b"/run/x.pid");
    /// let mut line = heapless::String::<256>::new();
    /// e.write_to(&mut |piece| {
    ///     let _ = line.push_str(piece);
    /// });
    /// assert_eq!(line.as_str(), format!("{e}"));
    /// assert!(line.starts_with("stage 6 (pid file): open /run/x.pid: "));
    /// ```
    // Out of line: one copy, called through `out`, serves `Display` and every caller.
    #[inline(never)]
    pub fn write_to(&self, out: &mut dyn FnMut(&str)) {
        if let Some(stage) = self.stage {
            stage.write_to(out);
            out(": ");
        }
        out(&self.detail);
        // A number between two texts, or nothing: one copy of the rendering for all.
        let around = match (self.kind, self.holder) {
            (ErrorKind::AlreadyRunning, Some(pid)) => Some((": already running (pid ", pid, ")")),
            (ErrorKind::AlreadyRunning, None) => {
                out(": already running");
                None
            }
            (ErrorKind::DaemonDied | ErrorKind::Timeout | ErrorKind::NotReady, Some(pid)) => {
                Some((" (pid ", pid, ")"))
            }
            (ErrorKind::Threaded, Some(n)) => Some((" (", n, " threads)")),
            _ => None,
        };
        if let Some((before, n, after)) = around {
            out(before);
            out(crate::decimal::Dec::new(i64::from(n)).as_str());
            out(after);
        }
        if let Some(errno) = self.errno {
            out(": ");
            errno.write_to(out);
        }
    }
}

/// `Display` through a `write_to`: the pieces go to `f`, the first error stops them.
pub(crate) fn write_fmt(
    f: &mut fmt::Formatter<'_>,
    write_to: impl FnOnce(&mut dyn FnMut(&str)),
) -> fmt::Result {
    let mut result = Ok(());
    write_to(&mut |piece| {
        if result.is_ok() {
            result = f.write_str(piece);
        }
    });
    result
}

impl fmt::Display for Error {
    /// `stage 5 (working directory): chdir /nonexistent: No such file or directory (os error 2)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fmt(f, |out| self.write_to(out))
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_is_equal_to_its_original() {
        let mut e = Error::os(Stage::PidFile, Errno::ACCES, "open", &[b'p'; 200]);
        e.holder = Some(42);
        assert_eq!(e.detail().len(), DETAIL_CAPACITY, "the longest detail");
        assert!(e.clone() == e);
        let bare = Error::bare(None, ErrorKind::Detached);
        assert!(bare.clone() == bare);
    }
}
