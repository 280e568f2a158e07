//! Stage 9: stdin, stdout and stderr onto `/dev/null`, a file or a descriptor.

use core::ffi::{c_int, CStr};
use core::sync::atomic::{AtomicBool, AtomicU16, Ordering};

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

/// Bytes [`reopen_stdio`] keeps for stage 9's three paths together (their NULs
/// included).
pub const REOPEN_CAPACITY: usize = 1024;

/// Stage 9's paths, kept by [`remember`] for [`reopen_stdio`]: written once, in stage 9
/// of a daemon (one thread), before [`REMEMBERED`] says so; read only after.
struct Remembered(core::cell::UnsafeCell<[u8; REOPEN_CAPACITY]>);

// SAFETY: written only before `REMEMBERED` is set (Release), by the single thread of a
// daemon in stage 9; read only after it was seen set (Acquire), never written again.
#[allow(unsafe_code)]
unsafe impl Sync for Remembered {}

static PATHS: Remembered = Remembered(core::cell::UnsafeCell::new([0; REOPEN_CAPACITY]));
/// Where stream N's path starts in [`PATHS`] (`u16::MAX`: not a path).
static STARTS: [AtomicU16; 3] = [
    AtomicU16::new(u16::MAX),
    AtomicU16::new(u16::MAX),
    AtomicU16::new(u16::MAX),
];
static REMEMBERED: AtomicBool = AtomicBool::new(false);

/// Before fork, for [`Config::reopenable_stdio`](crate::Config::reopenable_stdio): the
/// paths must be absolute (the daemon reopens them from its own working directory)
/// and fit in [`REOPEN_CAPACITY`].
pub(crate) fn check_reopenable(streams: &[Option<Stdio<'_>>; 3]) -> Result<(), Error> {
    let mut total = 0;
    for (n, s) in streams.iter().enumerate() {
        if let Some(Stdio::Path(p)) = s {
            if p.to_bytes().first() != Some(&b'/') {
                let mut e = Error::new(
                    Some(Stage::Redirect),
                    crate::ErrorKind::InvalidConfig,
                    "reopenable stdio needs absolute paths: ",
                );
                e.push_detail(NAMES[n].as_bytes());
                e.push_detail(b" ");
                e.push_detail(p.to_bytes());
                return Err(e);
            }
            total += p.to_bytes_with_nul().len();
        }
    }
    if total > REOPEN_CAPACITY {
        return Err(Error::new(
            Some(Stage::Redirect),
            crate::ErrorKind::Capacity,
            "reopenable stdio paths take more than 1024 bytes",
        ));
    }
    Ok(())
}

/// Stage 9, once the streams are redirected: keeps their paths for [`reopen_stdio`].
/// Async-signal-safe.
pub(crate) fn remember(streams: &[Option<Stdio<'_>>; 3]) -> Result<(), Error> {
    check_reopenable(streams)?;
    if REMEMBERED.load(Ordering::Acquire) {
        return Ok(());
    }
    let mut at = 0;
    for (n, s) in streams.iter().enumerate() {
        if let Some(Stdio::Path(p)) = s {
            let bytes = p.to_bytes_with_nul();
            // SAFETY: nothing reads PATHS before REMEMBERED is set, and this daemon
            // has one thread; `check_reopenable` bounded the total length.
            #[allow(unsafe_code)]
            let paths = unsafe { &mut *PATHS.0.get() };
            paths[at..at + bytes.len()].copy_from_slice(bytes);
            STARTS[n].store(at as u16, Ordering::Relaxed);
            at += bytes.len();
        }
    }
    REMEMBERED.store(true, Ordering::Release);
    Ok(())
}

/// Stream `n`'s kept path, if it has one.
fn remembered(n: usize) -> Option<&'static CStr> {
    let start = usize::from(STARTS[n].load(Ordering::Relaxed));
    // SAFETY: called only once REMEMBERED was seen set: PATHS is never written again.
    #[allow(unsafe_code)]
    let paths: &'static [u8; REOPEN_CAPACITY] = unsafe { &*PATHS.0.get() };
    paths.get(start..).and_then(sys::until_nul)
}

/// Reopens stage 9's files onto stdin, stdout and stderr, in place (`O_APPEND` for the
/// two outputs, created if missing): after log rotation moved them (`mv log log.1`),
/// the daemon writes to a new `log`. Streams that went to `/dev/null` or a descriptor
/// are left alone. Every file is opened before any stream changes, so a failure
/// changes nothing. Needs [`Config::reopenable_stdio`](crate::Config::reopenable_stdio)
/// (or [`Action::ReopenStdio`](crate::Action::ReopenStdio)); does nothing before stage
/// 9 or without it. Async-signal-safe: call it from `run()` (e.g. on a `SIGHUP` read
/// from a [`SignalPipe`](crate::SignalPipe)) or from a handler.
///
/// # Errors
///
/// The `open` or `dup2` failure, naming the path and the stream.
pub fn reopen_stdio() -> Result<(), Error> {
    if !REMEMBERED.load(Ordering::Acquire) {
        return Ok(());
    }
    let mut streams: [Option<Stdio<'static>>; 3] = [None; 3];
    for (n, s) in streams.iter_mut().enumerate() {
        *s = remembered(n).map(Stdio::Path);
    }
    redirect(&streams, false, sys::NO_FD)
}

/// The handler of [`Action::ReopenStdio`](crate::Action::ReopenStdio). Async-signal-safe;
/// `errno` is left as it was.
pub(crate) extern "C" fn reopen_on_signal(_: c_int) {
    let saved = sys::last_errno();
    let _ = reopen_stdio();
    sys::set_errno(saved);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A NUL-terminated path of `len` bytes (NUL excluded), `/` then `x`s.
    fn path(buf: &mut [u8; 2048], len: usize) -> &CStr {
        buf[0] = b'/';
        buf[1..len].fill(b'x');
        buf[len] = 0;
        CStr::from_bytes_with_nul(&buf[..=len]).unwrap()
    }

    #[test]
    fn reopenable_paths_fit_in_the_capacity_nuls_included() {
        let (mut a, mut b) = ([0u8; 2048], [0u8; 2048]);
        // Two paths that take exactly REOPEN_CAPACITY bytes with their NULs, then one
        // more byte.
        let first = path(&mut a, 500);
        let exact = path(&mut b, REOPEN_CAPACITY - 501 - 1);
        let streams = [None, Some(Stdio::Path(first)), Some(Stdio::Path(exact))];
        assert!(check_reopenable(&streams).is_ok());
        let mut c = [0u8; 2048];
        let over = path(&mut c, REOPEN_CAPACITY - 501);
        let streams = [None, Some(Stdio::Path(first)), Some(Stdio::Path(over))];
        let e = check_reopenable(&streams).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Capacity);
        // One path alone, as long as the capacity allows, or one byte longer.
        let mut d = [0u8; 2048];
        let alone = [
            Some(Stdio::Path(path(&mut d, REOPEN_CAPACITY - 1))),
            None,
            None,
        ];
        assert!(check_reopenable(&alone).is_ok());
        let alone = [Some(Stdio::Path(path(&mut d, REOPEN_CAPACITY))), None, None];
        assert!(check_reopenable(&alone).is_err());
        let relative = [None, Some(Stdio::Path(c"log")), Some(Stdio::Null)];
        let e = check_reopenable(&relative).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidConfig);
    }

    // The only test that fills the kept paths (they are the process's own, kept once).
    #[test]
    fn each_stream_keeps_its_own_path() {
        assert_eq!(remembered(1), None, "nothing before stage 9");
        let streams = [
            Some(Stdio::Path(c"/in")),
            Some(Stdio::Null),
            Some(Stdio::Path(c"/var/log/err.log")),
        ];
        remember(&streams).unwrap();
        assert_eq!(remembered(0), Some(c"/in"));
        assert_eq!(remembered(1), None, "not a path");
        assert_eq!(remembered(2), Some(c"/var/log/err.log"));
        // Kept once: a second call changes nothing.
        remember(&[None, Some(Stdio::Path(c"/other")), None]).unwrap();
        assert_eq!(remembered(1), None);
    }
}
