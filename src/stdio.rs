//! Stage 9: stdin, stdout and stderr onto `/dev/null`, a file or a descriptor.

use core::ffi::{c_int, CStr};

use crate::{sys, Error, Stage};

/// Where a standard stream goes in stage 9.
///
/// Unset streams go to `/dev/null` when the daemon detached, and are left as they are
/// when it did not (started by init or inetd: stdio is the supervisor's or the socket).
///
/// A relative [`Path`](Stdio::Path) is the launcher's: it is opened in the directory the
/// process was in when the stages began (stage 5 has changed directory by stage 9), as
/// FreeBSD's daemon(8) opens its output in the caller's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdio<'a> {
    /// `/dev/null`.
    Null,
    /// This file: read-only for stdin; for stdout and stderr opened for appending and
    /// created if missing (mode 0666 less the daemon's umask, so 0600 by default).
    Path(&'a CStr),
    /// A copy of this open descriptor (it is kept through stage 8). `Fd(1)` and `Fd(2)`
    /// are the launcher's stdout and stderr, also in a detached daemon, whose own 1 and
    /// 2 carry its set-up output to the original process until stage 9 (stage 1 copies
    /// the launcher's before the report pipes take those numbers).
    Fd(c_int),
}

pub(crate) const NAMES: [&str; 3] = ["stdin", "stdout", "stderr"];

/// Before stage 1, in the launcher: when a stage-9 path is relative, the launcher's
/// working directory, opened (`O_PATH`) so that stage 9 opens that path there, as
/// FreeBSD's daemon(8) does, and not in stage 5's directory. -1 when no path is
/// relative. Async-signal-safe.
pub(crate) fn launcher_directory(streams: &[Option<Stdio<'_>>; 3]) -> Result<c_int, Error> {
    let relative = streams
        .iter()
        .any(|s| matches!(s, Some(Stdio::Path(p)) if p.to_bytes().first() != Some(&b'/')));
    if !relative {
        return Ok(sys::NO_FD);
    }
    sys::open(c".", sys::DIRECTORY_PATH, 0)
        .map_err(|e| Error::os(Stage::Redirect, e, "open", b". (for relative stdio paths)"))
}

/// Stage 9. Opens every target first (a relative path in `dir`, the launcher's working
/// directory, or the current one when `dir` is -1), so a bad path fails before any
/// stream has changed, then `dup2`s them onto 0, 1 and 2 (skipping a target that
/// already is the stream). Async-signal-safe.
pub(crate) fn redirect(
    streams: &[Option<Stdio<'_>>; 3],
    detached: bool,
    dir: c_int,
) -> Result<(), Error> {
    let mut sources: [c_int; 3] = [sys::NO_FD; 3];
    let mut opened: [c_int; 3] = [sys::NO_FD; 3];
    let mut null: c_int = sys::NO_FD;
    let mut result = Ok(());
    for (n, stream) in streams.iter().enumerate() {
        let target = match stream {
            Some(s) => s,
            None if detached => &Stdio::Null,
            None => continue,
        };
        match open_target(n, target, dir, &mut null, &mut opened[n]) {
            Ok(fd) => sources[n] = fd,
            Err(e) => {
                let path = match *target {
                    Stdio::Path(p) => p.to_bytes(),
                    _ => b"/dev/null",
                };
                let mut err = Error::os(Stage::Redirect, e, "open", path);
                err.push_detail(b" for ");
                err.push_detail(NAMES[n].as_bytes());
                result = Err(err);
                break;
            }
        }
    }
    if result.is_ok() {
        for (n, &fd) in sources.iter().enumerate() {
            if fd != sys::NO_FD && fd != n as c_int {
                if let Err(e) = sys::dup2(fd, n as c_int) {
                    result = Err(Error::os(Stage::Redirect, e, "dup2", NAMES[n].as_bytes()));
                    break;
                }
            }
        }
    }
    for fd in opened.into_iter().chain([null]) {
        if fd != sys::NO_FD {
            sys::close(fd);
        }
    }
    result
}

/// The descriptor stream `n` is to get: `target`'s, `/dev/null` (opened once, kept in
/// `null`) or the file, opened (kept in `opened`).
#[inline(never)]
fn open_target(
    n: usize,
    target: &Stdio<'_>,
    dir: c_int,
    null: &mut c_int,
    opened: &mut c_int,
) -> Result<c_int, crate::Errno> {
    match *target {
        Stdio::Fd(fd) => Ok(fd),
        Stdio::Null if *null != sys::NO_FD => Ok(*null),
        Stdio::Null => sys::open(c"/dev/null", libc::O_RDWR, 0).inspect(|&fd| *null = fd),
        Stdio::Path(path) => {
            let flags = if n == 0 { sys::INPUT } else { sys::OUTPUT };
            let dir = if dir != sys::NO_FD {
                dir
            } else {
                libc::AT_FDCWD
            };
            sys::openat(dir, path, flags, 0o666).inspect(|&fd| *opened = fd)
        }
    }
}

/// Opens `/dev/null` onto any of `fds` (among 0-2) that is closed, so nothing the
/// daemon opens later lands on a standard stream. Async-signal-safe.
pub(crate) fn fill_closed_stdio(fds: core::ops::Range<c_int>) -> Result<(), Error> {
    if fds.clone().all(sys::fd_is_open) {
        return Ok(());
    }
    let null = sys::open(c"/dev/null", libc::O_RDWR, 0)
        .map_err(|e| Error::os(Stage::Detach, e, "open", b"/dev/null"))?;
    let mut result = Ok(());
    for fd in fds {
        if !sys::fd_is_open(fd) {
            if let Err(e) = sys::dup2(null, fd) {
                result = Err(Error::os(Stage::Detach, e, "dup2", b"/dev/null"));
            }
        }
    }
    sys::close(null);
    result
}
