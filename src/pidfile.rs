//! `PidLockFile`: a pid file that is locked for the daemon's whole life (stage 6).

use core::ffi::{c_int, CStr};
use core::time::Duration;

use crate::decimal::{parse_u32, Dec};
use crate::sys::{self, FileId};
use crate::{cleanup, Errno, Error, ErrorKind, Stage};

/// Longest pid-file path accepted, in bytes (the path is copied for the SIGTERM
/// clean-up, which may run after the `PidLockFile` is gone).
pub const PID_PATH_CAPACITY: usize = 255;

/// How many times a contested pid file is re-read while its holder has locked it but not
/// yet written its pid, and how long between reads (FreeBSD's pidfile(3) does 20 × 5 ms).
const HOLDER_READS: u32 = 20;
const HOLDER_READ_PAUSE_MS: u32 = 5;
/// How many times the original process tries the lock of a pid file its dead daemon
/// left ([`PidLockFile::remove_left`]), [`HOLDER_READ_PAUSE_MS`] apart: the lock goes
/// once the daemon's last descriptor is closed, a moment after its status pipe did.
const LEFT_LOCK_TRIES: u32 = 400;
/// How often a waiting `acquire` retries the lock.
const ACQUIRE_POLL_MS: u32 = 50;

/// A pid file whose lock is held for the daemon's whole life.
///
/// - **acquire** creates the file (mode 0644, `O_NOFOLLOW|O_CLOEXEC`: a symlink is
///   refused and its target left alone) and takes two locks on it: an
///   open-file-description lock (`F_OFD_SETLK`, which also conflicts with POSIX
///   `fcntl` locks such as Python's `lockf`) and a `flock(2)` lock (FreeBSD's
///   pidfile(3), util-linux `flock`); a file held with any of the three is "already
///   running". Both survive fork, so the seed's pattern, acquire in the foreground and
///   seal in the daemon, keeps the lock. An existing file is only written to when it
///   is ours: one with other hard links is refused (`EMLINK`), so that a root daemon
///   never empties or re-modes the file it is linked to; a stale one owned by another
///   user is replaced (removed under its lock), never emptied.
/// - **seal** writes `PID\n` and keeps the lock.
/// - **release** removes the file, but only if the path still names the file we locked
///   (device and inode, as FreeBSD's pidfile(3) checks), then drops the lock.
///
/// For service managers: [`holders`](Self::holders) lists the processes that hold the
/// lock (whatever pid the file names), [`signal_holder`](Self::signal_holder) signals
/// one only if it holds it, and [`remove_if_stale`](Self::remove_if_stale) clears a file
/// nobody holds without ever making a concurrent start fail (the `pandaemonium` tool's
/// `status` and `stop`).
///
/// Liveness comes from the lock, not from the pid in the file: a daemon killed with
/// `SIGKILL` loses its lock with its last descriptor, so the next start takes the
/// stale file over silently, and a reused pid can't fool [`is_active`](Self::is_active).
/// The holder's pid in `already running (pid N)` is read from the file.
///
/// ```no_run
/// use core::time::Duration;
/// use pandaemonium::PidLockFile;
///
/// let mut pid_file = PidLockFile::new(c"/run/mydaemon.pid", Duration::ZERO)?;
/// pid_file.acquire(None)?;          // fails with "already running (pid N)"
/// pid_file.seal()?;                  // writes our pid, keeps the lock
/// // ... work ...
/// pid_file.release()?;               // removes the file if it is still ours
/// # Ok::<(), pandaemonium::Error>(())
/// ```
#[derive(Debug)]
pub struct PidLockFile {
    /// The path and its NUL, copied: the object borrows nothing, so it can be built
    /// from a temporary, stored, and handed to the daemon.
    path: [u8; PID_PATH_CAPACITY + 1],
    path_len: usize,
    timeout: Duration,
    fd: c_int,
    id: Option<FileId>,
    sealed: Option<u32>,
    /// In the original process after detaching: the file it had acquired before the
    /// fork and handed to the daemon, if any (see [`remove_left`](Self::remove_left)).
    handed: Option<FileId>,
    /// The path is outside the daemon's root (acquired before a chroot): checked by
    /// [`check_before_jail`](Self::check_before_jail), not again by [`seal`](Self::seal).
    jailed: bool,
}

#[cold]
#[inline(never)]
fn err(kind: ErrorKind, path: &CStr) -> Error {
    let mut e = Error::bare(Some(Stage::PidFile), kind);
    e.push_detail(path.to_bytes());
    e
}

/// Why [`PidLockFile::lock_opened`] failed; `acquire` turns it into the [`Error`].
enum LockFailed {
    /// Another holder has the lock (its pid, once it has written it).
    Held(Option<u32>),
    /// The call that failed.
    Os(Errno, &'static str),
}

#[cold]
#[inline(never)]
pub(crate) fn os_err(errno: Errno, op: &str, path: &CStr) -> Error {
    Error::os(Stage::PidFile, errno, op, path.to_bytes())
}

impl PidLockFile {
    /// A pid file at `path`; `timeout` is how long [`acquire`](Self::acquire) waits for a
    /// live holder to go (zero: fail at once, as pandaemonium's default).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] when `path` is empty or relative, and
    /// [`ErrorKind::Capacity`] when it is longer than [`PID_PATH_CAPACITY`].
    pub fn new(path: &CStr, timeout: Duration) -> Result<PidLockFile, Error> {
        let bytes = path.to_bytes();
        if bytes.first() != Some(&b'/') {
            let mut e = Error::new(
                Some(Stage::PidFile),
                ErrorKind::InvalidConfig,
                "pid file path must be absolute: ",
            );
            e.push_detail(if bytes.is_empty() { b"(empty)" } else { bytes });
            return Err(e);
        }
        if bytes.len() > PID_PATH_CAPACITY {
            let mut e = Error::new(
                Some(Stage::PidFile),
                ErrorKind::Capacity,
                "pid file path longer than 255 bytes: ",
            );
            e.push_detail(bytes);
            return Err(e);
        }
        let mut copy = [0u8; PID_PATH_CAPACITY + 1];
        copy[..bytes.len()].copy_from_slice(bytes);
        Ok(PidLockFile {
            path: copy,
            path_len: bytes.len(),
            timeout,
            fd: sys::NO_FD,
            id: None,
            sealed: None,
            handed: None,
            jailed: false,
        })
    }

    /// The path.
    pub fn path(&self) -> &CStr {
        // The copy holds no NUL before `path_len` (it came from a `CStr`) and one after.
        // (`until_nul`, not `with_nul`: the same slice, and core's search for it is
        // linked already, where `with_nul` inlines its own into each of ~20 callers.)
        crate::sys::until_nul(&self.path[..=self.path_len]).unwrap_or(c"/")
    }

    /// Whether this object holds the lock (acquired, sealed or not).
    pub fn is_acquired(&self) -> bool {
        self.fd != sys::NO_FD
    }

    /// The pid this object wrote with [`seal`](Self::seal), if it did.
    pub fn sealed_pid(&self) -> Option<u32> {
        self.sealed
    }

    /// The locked descriptor (close-on-exec), or -1 when not acquired. Stage 8 keeps
    /// it open; a program that execs and wants to hold the lock across `exec` clears
    /// its `FD_CLOEXEC`.
    pub fn as_raw_fd(&self) -> c_int {
        self.fd
    }

    /// Creates the file and takes its lock without writing a pid; an old file nobody
    /// holds is stale and is taken over (emptied). `timeout` overrides the one given to
    /// [`new`](Self::new). Async-signal-safe.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyRunning`] (with the holder's pid, read from the file) while
    /// another open file holds the lock after `timeout`; [`ErrorKind::StageOrder`] when
    /// already acquired; `ELOOP` for a symlink; `EMLINK` for a file with other hard
    /// links; an OS error from `unlink` for another user's stale file we may not
    /// replace; other OS errors from `open`.
    pub fn acquire(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        if self.fd != sys::NO_FD {
            return Err(err(ErrorKind::StageOrder, self.path()));
        }
        let wait_ms = timeout
            .unwrap_or(self.timeout)
            .as_millis()
            .min(u64::MAX as u128) as u64;
        // No clock read unless there is a wait (it maps the vDSO page into the daemon).
        let deadline = if wait_ms == 0 {
            0
        } else {
            sys::monotonic_ms().saturating_add(wait_ms)
        };
        loop {
            let Some((fd, created)) = self.open_or_create()? else {
                continue; // removed between our two opens
            };
            match self.lock_opened(fd, created) {
                Ok(true) => return Ok(()),
                Ok(false) => continue, // the file was replaced or removed: start again
                Err(LockFailed::Held(_)) if wait_ms > 0 && sys::monotonic_ms() < deadline => {
                    sys::sleep_ms(ACQUIRE_POLL_MS);
                }
                Err(LockFailed::Held(holder)) => {
                    return Err(err(ErrorKind::AlreadyRunning, self.path()).with_holder(holder))
                }
                Err(LockFailed::Os(e, op)) => return Err(os_err(e, op, self.path())),
            }
        }
    }

    /// Creates the file (`O_EXCL`: then it is ours), or opens the one already there.
    /// `None` when it vanished between the two opens.
    fn open_or_create(&self) -> Result<Option<(c_int, bool)>, Error> {
        let path = self.path();
        match sys::open(path, sys::PID_FILE_NEW, 0o644) {
            Ok(fd) => Ok(Some((fd, true))),
            Err(Errno::EXIST) => match sys::open(path, sys::PID_FILE, 0) {
                Ok(fd) => Ok(Some((fd, false))),
                Err(Errno::NOENT) => Ok(None),
                Err(e) => Err(os_err(e, "open", path)),
            },
            Err(e) => Err(os_err(e, "open", path)),
        }
    }

    /// Locks the freshly opened `fd` (`created` by us just now, or found there);
    /// `Ok(false)` when the path no longer names it, or when it was someone else's
    /// stale file, now removed, so that the caller creates our own.
    ///
    /// A file found there is only ever written to when it is ours (our euid owns it)
    /// and has no other name: a pid file hard-linked to a file elsewhere is refused, so
    /// that a root daemon never truncates, re-modes or overwrites that other file; a
    /// stale file owned by another user is replaced (unlinked under its lock), never
    /// emptied.
    fn lock_opened(&mut self, fd: c_int, created: bool) -> Result<bool, LockFailed> {
        let refuse = |e, op| {
            sys::close(fd);
            Err(LockFailed::Os(e, op))
        };
        let st = match sys::fstat(fd) {
            Ok(st) => st,
            Err(e) => return refuse(e, "fstat"),
        };
        if st.mode & libc::S_IFMT != libc::S_IFREG {
            return refuse(Errno::INVAL, "not a regular file:");
        }
        if st.nlink > 1 {
            return refuse(Errno::MLINK, "refusing a file with other hard links:");
        }
        match sys::lock::try_exclusive(fd) {
            Ok(()) => {}
            Err(Errno::AGAIN) => {
                let holder = holder_pid(fd);
                sys::close(fd);
                return Err(LockFailed::Held(holder));
            }
            Err(e) => return refuse(e, "lock"),
        }
        // A previous holder may have unlinked the file between our open and our lock.
        if !names(self.path(), st.id) {
            sys::close(fd);
            return Ok(false);
        }
        if !created {
            if st.uid != sys::ids().1 {
                // Stale, and someone else's: replace it rather than write into it.
                let removed = sys::unlink(self.path());
                sys::close(fd);
                return match removed {
                    Ok(()) => Ok(false),
                    Err(e) => Err(LockFailed::Os(
                        e,
                        "cannot replace a stale file of another user:",
                    )),
                };
            }
            if let Err(e) = sys::ftruncate(fd, 0) {
                return refuse(e, "truncate");
            }
        }
        // 0644 whatever the umask (pid files are world-readable); the file is ours.
        let _ = sys::fchmod(fd, 0o644);
        self.fd = fd;
        self.id = Some(st.id);
        Ok(true)
    }

    /// Writes this process's pid and a newline, keeping the lock; acquires first if
    /// needed. Call it in the daemon (stage 6 does). Async-signal-safe.
    ///
    /// # Errors
    ///
    /// [`acquire`](Self::acquire)'s errors; [`ErrorKind::StageOrder`] when already
    /// sealed; `ESTALE` when the path no longer names the locked file.
    pub fn seal(&mut self) -> Result<u32, Error> {
        if self.sealed.is_some() {
            return Err(err(ErrorKind::StageOrder, self.path()));
        }
        // Acquired just now (in this call): acquire has checked the path and emptied
        // the file; seal in the daemon after an acquire in the foreground checks again.
        let fresh = self.fd == sys::NO_FD;
        if fresh {
            self.acquire(None)?;
        }
        let id = self
            .id
            .ok_or_else(|| err(ErrorKind::StageOrder, self.path()))?;
        if !fresh && !self.jailed && !names(self.path(), id) {
            return Err(os_err(
                Errno(libc::ESTALE),
                "replaced by another file:",
                self.path(),
            ));
        }
        let pid = sys::getpid() as u32;
        let text = Dec::new(i64::from(pid));
        let mut line = [0u8; 21];
        let n = text.as_bytes().len();
        line[..n].copy_from_slice(text.as_bytes());
        line[n] = b'\n';
        if !fresh {
            sys::ftruncate(self.fd, 0).map_err(|e| os_err(e, "truncate", self.path()))?;
        }
        sys::pwrite_all(self.fd, &line[..=n], 0).map_err(|e| os_err(e, "write", self.path()))?;
        self.sealed = Some(pid);
        Ok(pid)
    }

    /// Stage 3, before it enters a chroot: an acquired file's path must still name it
    /// (what [`seal`](Self::seal) checks otherwise, and can't once the path is outside
    /// the root). Async-signal-safe.
    pub(crate) fn check_before_jail(&mut self) -> Result<(), Error> {
        if let Some(id) = self.id {
            if !names(self.path(), id) {
                return Err(os_err(
                    Errno(libc::ESTALE),
                    "replaced by another file:",
                    self.path(),
                ));
            }
            self.jailed = true;
        }
        Ok(())
    }

    /// Removes the file if the path still names the file we locked, then drops the
    /// lock. Returns whether the file was removed; `Ok(false)` when we held nothing or
    /// someone replaced the file (theirs is left alone). Async-signal-safe.
    ///
    /// # Errors
    ///
    /// OS errors from `unlink` (the lock is dropped all the same).
    pub fn release(&mut self) -> Result<bool, Error> {
        if self.fd == sys::NO_FD {
            return Ok(false);
        }
        let ours = self.id.is_some_and(|id| names(self.path(), id));
        let result = if ours {
            cleanup::forget(self.fd);
            sys::unlink(self.path())
                .map(|()| true)
                .map_err(|e| os_err(e, "unlink", self.path()))
        } else {
            Ok(false)
        };
        self.close();
        result
    }

    /// The original process after detaching: its copy of the descriptor (and of the
    /// lock) now belongs to the daemon. Closes it, remembering which file it was.
    pub(crate) fn hand_over(&mut self) {
        let id = self.id;
        self.close();
        self.handed = id;
    }

    /// The original process, once the daemon died during set-up (or was killed after
    /// a timeout): removes the pid file the daemon left, if it is still that one. The
    /// file must name `daemon` (sealed) or be empty and the very file handed over
    /// before the fork (acquired, not sealed); it is removed under its lock, taken with
    /// short retries while the dying daemon's descriptors close, and only if the path
    /// still names it. Anything else is left alone: another start may own it by now.
    /// Not async-signal-safe: waits a little (original process only).
    pub(crate) fn remove_left(&mut self, daemon: Option<u32>) -> bool {
        let Ok(fd) = sys::open(self.path(), sys::PID_FILE, 0) else {
            return false;
        };
        let ours = |fd| match (sys::fstat(fd), read_pid_fd(fd)) {
            (Ok(st), Ok(Some(pid))) => Some(pid) == daemon && st.nlink == 1,
            (Ok(st), Ok(None)) => Some(st.id) == self.handed && st.nlink == 1,
            _ => false,
        };
        let mut removed = false;
        if ours(fd) {
            let mut tries = LEFT_LOCK_TRIES;
            while tries > 0 {
                if sys::lock::try_exclusive(fd).is_ok() {
                    // Under the lock: still the same file, still the daemon's?
                    removed = ours(fd)
                        && sys::fstat(fd).is_ok_and(|st| names(self.path(), st.id))
                        && sys::unlink(self.path()).is_ok();
                    break;
                }
                sys::sleep_ms(HOLDER_READ_PAUSE_MS);
                tries -= 1;
            }
        }
        sys::close(fd);
        self.handed = None;
        removed
    }

    /// Drops the lock held through this object's descriptor without touching the file:
    /// for the original process after detaching, whose copy of the lock now belongs to
    /// the daemon.
    pub(crate) fn close(&mut self) {
        if self.fd != sys::NO_FD {
            sys::close(self.fd);
        }
        self.fd = sys::NO_FD;
        self.id = None;
        self.sealed = None;
    }

    /// The pid written in the file, or `None` when it is missing, empty or not a pid.
    ///
    /// # Errors
    ///
    /// OS errors other than `ENOENT` from `open` and `read` (e.g. `ELOOP`, `EACCES`).
    pub fn read_pid(&self) -> Result<Option<u32>, Error> {
        self.read_pids().map(|[first, _]| first)
    }

    /// The pids on the file's first two lines (each `None` when missing or not a pid):
    /// the daemon's, or, when a supervisor stays the daemon and rewrote the file with
    /// [`rewrite_pid_file`](crate::rewrite_pid_file), its program's and its own.
    ///
    /// # Errors
    ///
    /// As [`read_pid`](Self::read_pid).
    pub fn read_pids(&self) -> Result<[Option<u32>; 2], Error> {
        let fd = match sys::open(self.path(), sys::PID_FILE_PEEK, 0) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok([None, None]),
            Err(e) => return Err(os_err(e, "open", self.path())),
        };
        let pids = pid_lines(fd);
        sys::close(fd);
        pids.map_err(|e| os_err(e, "read", self.path()))
    }

    /// Whether something is at the path (a symbolic link counts; nothing is opened).
    ///
    /// # Errors
    ///
    /// `lstat` failures other than `ENOENT` (e.g. `EACCES` on the directory).
    pub fn exists(&self) -> Result<bool, Error> {
        match sys::lstat(self.path()) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(os_err(e, "lstat", self.path())),
        }
    }

    /// Keeps the lock across `execve`: clears `FD_CLOEXEC` on the locked descriptor,
    /// so that a daemon that becomes another program in `run()` still holds its pid
    /// file's lock (the program, and any child that inherits the descriptor, hold it
    /// until the last of them ends). Call it in the daemon, after stage 6.
    /// Async-signal-safe.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::StageOrder`] when the file is not acquired; `fcntl` failures.
    pub fn keep_across_exec(&self) -> Result<(), Error> {
        if self.fd == sys::NO_FD {
            return Err(err(ErrorKind::StageOrder, self.path()));
        }
        sys::set_cloexec(self.fd, false).map_err(|e| os_err(e, "fcntl F_SETFD", self.path()))
    }

    /// Whether a live process holds a lock on the file (this object included): an
    /// open-file-description, POSIX `fcntl` or `flock(2)` lock. Asks the kernel without
    /// taking the lock (a shared `flock` is tried for an instant only when no `fcntl`
    /// lock is held; a concurrent `acquire` retries its own `flock` past it), so it
    /// never makes a concurrent start fail.
    ///
    /// # Errors
    ///
    /// OS errors other than `ENOENT` from `open`.
    pub fn is_active(&self) -> Result<bool, Error> {
        if self.fd != sys::NO_FD {
            return Ok(true);
        }
        let fd = match sys::open(self.path(), sys::PID_FILE_PEEK, 0) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(os_err(e, "open", self.path())),
        };
        let held = sys::lock::is_held(fd);
        sys::close(fd);
        held.map_err(|e| os_err(e, "lock query", self.path()))
    }

    /// Removes the file if nobody holds a lock on it (a stale file: its daemon died
    /// without removing it, or could not); returns whether it did. Never makes a
    /// concurrent start fail: it holds only a shared `flock`, for an instant, which a
    /// starting [`acquire`](Self::acquire) waits out, and a start that locked the file
    /// just before the removal sees it gone and creates a new one. Not for a file this
    /// object holds (`Ok(false)`).
    ///
    /// # Errors
    ///
    /// OS errors other than `ENOENT` from `open`, the lock query and `unlink` (the
    /// file's directory not writable by this user: `EACCES`).
    pub fn remove_if_stale(&self) -> Result<bool, Error> {
        if self.fd != sys::NO_FD {
            return Ok(false);
        }
        let path = self.path();
        let fd = match sys::open(path, sys::PID_FILE_PEEK, 0) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(os_err(e, "open", path)),
        };
        // The shared flock first, held until the unlink is done: a start that takes
        // its locks after our query can finish them only after the removal, and then
        // finds the path no longer names its file.
        let removed = match sys::lock::try_shared(fd) {
            Err(Errno::AGAIN) => Ok(false),
            Err(e) => Err(os_err(e, "lock query", path)),
            Ok(()) => match sys::lock::record_locked(fd) {
                Ok(true) => Ok(false),
                Err(e) => Err(os_err(e, "lock query", path)),
                Ok(false) => match sys::fstat(fd) {
                    Ok(st) if names(path, st.id) => match sys::unlink(path) {
                        Ok(()) => Ok(true),
                        Err(Errno::NOENT) => Ok(false),
                        Err(e) => Err(os_err(e, "unlink", path)),
                    },
                    _ => Ok(false), // replaced meanwhile: not the file we looked at
                },
            },
        };
        sys::close(fd);
        removed
    }

    /// Puts `pid` on the first line of a pid file another process holds: for a
    /// launcher that learnt, after its daemon sealed the file, which process is the
    /// service (a `MAINPID=` notification). Only a file that is locked and names
    /// `holder` on its first or second line is rewritten (the second line, a
    /// supervisor's own pid, is kept); `Ok(false)` otherwise. The file is overwritten,
    /// then cut, so a reader never sees it empty. Not for a file this object holds
    /// (`Ok(false)`): a daemon rewrites its own with
    /// [`rewrite_pid_file`](crate::rewrite_pid_file).
    ///
    /// # Errors
    ///
    /// OS errors other than `ENOENT` from `open`, the lock query, `pwrite` and
    /// `ftruncate`.
    pub fn rewrite_first_pid(&self, holder: u32, pid: u32) -> Result<bool, Error> {
        if self.fd != sys::NO_FD {
            return Ok(false);
        }
        let path = self.path();
        let fd = match sys::open(path, sys::PID_FILE, 0) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(os_err(e, "open", path)),
        };
        let result = (|| {
            let held = sys::lock::is_held(fd).map_err(|e| os_err(e, "lock query", path))?;
            let lines = pid_lines(fd).map_err(|e| os_err(e, "read", path))?;
            let ours = sys::fstat(fd).is_ok_and(|st| names(path, st.id));
            if !held || !ours || !lines.contains(&Some(holder)) {
                return Ok(false);
            }
            let mut text = [0u8; 22];
            let mut len = 0;
            for n in [Some(pid), lines[1]].into_iter().flatten() {
                let dec = Dec::new(i64::from(n));
                text[len..len + dec.as_bytes().len()].copy_from_slice(dec.as_bytes());
                len += dec.as_bytes().len();
                text[len] = b'\n';
                len += 1;
            }
            sys::pwrite_all(fd, &text[..len], 0).map_err(|e| os_err(e, "write", path))?;
            sys::ftruncate(fd, len as i64).map_err(|e| os_err(e, "truncate", path))?;
            Ok(true)
        })();
        sys::close(fd);
        result
    }

    /// Makes the SIGTERM clean-up and [`crate::exit`] able to remove this file.
    pub(crate) fn register_cleanup(&self) {
        if let Some(id) = self.id {
            cleanup::register(self.path(), self.fd, id);
        }
    }
}

impl Drop for PidLockFile {
    /// Before [`seal`](PidLockFile::seal): closes the descriptor, which drops the lock
    /// if no other process shares it. After `seal`: keeps the descriptor open, so the
    /// lock is held for the rest of the process's life (a daemon may drop its `Daemon`
    /// after [`activate`](crate::Daemon::activate)); the clean-up on `SIGTERM` and
    /// [`crate::exit`] still remove the file. Only [`release`](PidLockFile::release)
    /// removes it otherwise.
    fn drop(&mut self) {
        if self.sealed.is_none() {
            self.close();
        }
    }
}

/// Whether `path` (not following symlinks) is the file `id`. Async-signal-safe.
pub(crate) fn names(path: &CStr, id: FileId) -> bool {
    matches!(sys::lstat(path), Ok(st) if st.id == id)
}

/// Reads the pid a contested file holds, re-reading briefly while its holder has locked
/// it but not written yet.
fn holder_pid(fd: c_int) -> Option<u32> {
    // Counted down through `black_box`: with a known count an optimising build unrolls
    // this loop, two calls per read, twenty times over.
    let mut reads = core::hint::black_box(HOLDER_READS);
    while reads > 0 {
        if let Ok(Some(pid)) = read_pid_fd(fd) {
            return Some(pid);
        }
        sys::sleep_ms(HOLDER_READ_PAUSE_MS);
        reads -= 1;
    }
    None
}

/// Parses `PID\n` (or `PID`) at the start of `fd`'s file.
fn read_pid_fd(fd: c_int) -> Result<Option<u32>, Errno> {
    pid_lines(fd).map(|[first, _]| first)
}

/// The pids on the first two lines of the file `fd`.
fn pid_lines(fd: c_int) -> Result<[Option<u32>; 2], Errno> {
    let mut buf = [0u8; 32];
    let n = sys::pread(fd, &mut buf, 0)?;
    let mut lines = buf[..n].split(|&b| b == b'\n');
    let mut next = || lines.next().and_then(parse_u32).filter(|&pid| pid > 0);
    Ok([next(), next()])
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    use crate::test_dir::TestDir as Dir;

    #[test]
    #[allow(unsafe_code)]
    fn read_pid_refuses_a_symlink_and_never_blocks_on_a_fifo() {
        let dir = Dir::new("readpid");
        std::fs::write(dir.0.join("real"), "42\n").unwrap();
        std::os::unix::fs::symlink(dir.0.join("real"), dir.0.join("link")).unwrap();
        let link = PidLockFile::new(&dir.path("link"), Duration::ZERO).unwrap();
        assert_eq!(link.read_pid().unwrap_err().errno(), Some(Errno::LOOP));
        let real = PidLockFile::new(&dir.path("real"), Duration::ZERO).unwrap();
        assert_eq!(real.read_pid().unwrap(), Some(42));
        // A FIFO with no writer: O_NONBLOCK opens it at once, and pread refuses it.
        let fifo = dir.path("fifo");
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let fifo = PidLockFile::new(&fifo, Duration::ZERO).unwrap();
        let e = fifo.read_pid().unwrap_err();
        assert_eq!(e.errno(), Some(Errno::from_raw(libc::ESPIPE)));
        let _ = fifo.is_active(); // returns, whatever it answers
    }
}
