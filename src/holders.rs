//! Who holds a pid file's lock, found in `/proc`: the processes to report and to
//! signal, rather than the pid written in the file.
//!
//! A lock belongs to an open file (OFD and `flock(2)` locks) or to a process (POSIX
//! `fcntl` locks), not to the pid a file names: a program that forks and exits leaves
//! its lock with the child, and a pid written by a dead process may be reused by a
//! stranger. The kernel lists, in `/proc/PID/fdinfo/FD`, a `lock:` line for each lock
//! held through that descriptor, of all three kinds; [`PidLockFile::holders`] looks for
//! them on the descriptors that name the pid file's device and inode.

use core::ffi::CStr;

use crate::decimal::{parse_u32, Dec};
use crate::pidfile::os_err;
use crate::sys::{self, FileId};
use crate::{Errno, Error, ErrorKind, PidLockFile, Signal};

/// How many holders [`PidLockFile::holders`] lists; more are counted as
/// [`Holders::truncated`].
pub const HOLDERS_CAPACITY: usize = 16;

/// The processes that hold a lock on a pid file, in `/proc`'s order (ascending pid).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holders {
    pids: heapless::Vec<u32, HOLDERS_CAPACITY>,
    truncated: bool,
    unseen: u32,
}

impl Holders {
    /// The holders' pids (at most [`HOLDERS_CAPACITY`]).
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// Whether no process that could be inspected holds the lock.
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }

    /// Whether `pid` is among the holders.
    pub fn contains(&self, pid: u32) -> bool {
        self.pids.contains(&pid)
    }

    /// Whether more than [`HOLDERS_CAPACITY`] processes hold it (the rest are not listed).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// How many processes could not be inspected (their descriptors belong to another
    /// user, and this process may not read them): a lock they hold is not seen.
    pub fn unseen(&self) -> u32 {
        self.unseen
    }

    fn push(&mut self, pid: u32) {
        if self.pids.push(pid).is_err() {
            self.truncated = true;
        }
    }
}

impl PidLockFile {
    /// The processes that hold a lock on the file (OFD, POSIX `fcntl` or `flock(2)`),
    /// found in `/proc`: those to report as running and to signal, whatever pid the file
    /// names. Empty when the file is missing or nobody holds it. Read-only (it takes no
    /// lock). Not async-signal-safe; call it outside a daemon's set-up.
    ///
    /// Without root, other users' processes can't be inspected: see
    /// [`Holders::unseen`], and compare with [`is_active`](Self::is_active), which asks
    /// the kernel and sees every holder but not who it is.
    ///
    /// # Errors
    ///
    /// OS errors from `lstat` of the file other than `ENOENT`, and from opening `/proc`
    /// (not mounted: fall back to [`read_pid`](Self::read_pid), and say so).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), pandaemonium::Error> {
    /// use core::time::Duration;
    /// use pandaemonium::PidLockFile;
    ///
    /// let pid_file = PidLockFile::new(c"/run/food.pid", Duration::ZERO)?;
    /// for pid in pid_file.holders()?.pids() {
    ///     // signal `pid`: it holds the lock, so it is the daemon (or its child)
    /// #   let _ = pid;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn holders(&self) -> Result<Holders, Error> {
        let path = self.path();
        let id = match sys::lstat(path) {
            Ok(st) => st.id,
            Err(Errno::NOENT) => return Ok(Holders::default()),
            Err(e) => return Err(os_err(e, "lstat", path)),
        };
        let proc =
            sys::open(c"/proc", sys::DIRECTORY_LIST, 0).map_err(|e| os_err(e, "open", c"/proc"))?;
        let mut found = Holders::default();
        let mut buf = [0u8; 2048];
        loop {
            let len = match sys::getdents64(proc, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(len) => len,
            };
            for name in crate::fds::dirent_names(&buf[..len]) {
                let Some(pid) = parse_u32(name).filter(|&p| p > 0) else {
                    continue; // not a process
                };
                match holds(pid, id) {
                    Ok(true) => found.push(pid),
                    Ok(false) => {}
                    Err(_) => found.unseen += 1,
                }
            }
        }
        sys::close(proc);
        Ok(found)
    }
}

impl PidLockFile {
    /// Whether process `pid` holds a lock on the file (through a descriptor of its own):
    /// [`holders`](Self::holders) for one process. `Ok(false)` when it is gone or the
    /// file is missing.
    ///
    /// # Errors
    ///
    /// `EACCES` (or `EPERM`) when this user may not inspect the process (another
    /// user's, or one that made itself non-dumpable, as a daemon does in stage 2), and
    /// OS errors from `lstat` of the file other than `ENOENT`.
    pub fn is_held_by(&self, pid: u32) -> Result<bool, Error> {
        let path = self.path();
        let id = match sys::lstat(path) {
            Ok(st) => st.id,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(os_err(e, "lstat", path)),
        };
        match holds(pid, id) {
            Ok(held) => Ok(held),
            Err(Errno::NOENT | Errno::SRCH) => Ok(false),
            Err(e) => {
                let mut path = [0u8; 64];
                Err(os_err(e, "open", proc_path(&mut path, pid, "fd", None)))
            }
        }
    }

    /// Sends `sig` to `pid` only if it holds the file's lock: `Ok(false)`, and no
    /// signal, when it does not (any more), or is gone. The check and the signal go
    /// through a pidfd where the kernel has them (Linux 5.3), so a pid that dies and is
    /// reused between the two is never signalled; elsewhere, `kill(2)` right after the
    /// check. Not async-signal-safe.
    ///
    /// # Errors
    ///
    /// OS errors from `lstat` of the file other than `ENOENT`, and from the signal
    /// (`EPERM`: another user's process).
    pub fn signal_holder(&self, pid: u32, sig: Signal) -> Result<bool, Error> {
        let path = self.path();
        let id = match sys::lstat(path) {
            Ok(st) => st.id,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(os_err(e, "lstat", path)),
        };
        let Ok(target) = libc::pid_t::try_from(pid) else {
            return Ok(false);
        };
        let pidfd = match sys::pidfd_open(target) {
            Err(Errno::SRCH) => return Ok(false),
            other => other,
        };
        let sent = if holds(pid, id) != Ok(true) {
            Ok(false)
        } else {
            let sent = match pidfd {
                Ok(fd) => sys::pidfd_send_signal(fd, sig.number()),
                Err(_) => sys::kill(target, sig.number()),
            };
            match sent {
                Ok(()) => Ok(true),
                Err(Errno::SRCH) => Ok(false),
                Err(e) => {
                    let mut err = Error::bare(None, ErrorKind::Os);
                    err.errno = Some(e);
                    err.push_detail(b"kill ");
                    err.push_detail(sig.name().unwrap_or("signal").as_bytes());
                    err.push_detail(b" ");
                    err.push_detail(Dec::new(i64::from(pid)).as_bytes());
                    Err(err)
                }
            }
        };
        if let Ok(fd) = pidfd {
            sys::close(fd);
        }
        sent
    }
}

/// `/proc/PID/<dir>` or `/proc/PID/<dir>/FD` in `buf`.
fn proc_path<'b>(buf: &'b mut [u8; 64], pid: u32, dir: &str, fd: Option<u32>) -> &'b CStr {
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(b"/proc/");
    put(Dec::new(i64::from(pid)).as_bytes());
    put(b"/");
    put(dir.as_bytes());
    if let Some(fd) = fd {
        put(b"/");
        put(Dec::new(i64::from(fd)).as_bytes());
    }
    buf[at] = 0;
    // One NUL, at `at`: the pieces are digits and the names above.
    crate::sys::until_nul(&buf[..=at]).unwrap_or(c"/")
}

/// Whether process `pid` holds a lock on the file `id` through one of its
/// descriptors: one that names the file (`stat` of `/proc/PID/fd/FD`) and whose
/// `fdinfo` has a `lock:` line. Err when its descriptors can't be listed (another
/// user's, or it exited: then it holds nothing, counted alike).
fn holds(pid: u32, id: FileId) -> Result<bool, Errno> {
    let mut path = [0u8; 64];
    let dir = sys::open(
        proc_path(&mut path, pid, "fd", None),
        sys::DIRECTORY_LIST,
        0,
    )?;
    let mut buf = [0u8; 1024];
    let mut result = Ok(false);
    'list: loop {
        let len = match sys::getdents64(dir, &mut buf) {
            Ok(0) => break,
            Ok(len) => len,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        for name in crate::fds::dirent_names(&buf[..len]) {
            let Some(fd) = parse_u32(name) else {
                continue; // "." and ".."
            };
            if names_file(pid, fd, id) && has_lock_line(pid, fd) && names_file(pid, fd, id) {
                result = Ok(true);
                break 'list;
            }
        }
    }
    sys::close(dir);
    result
}

/// Whether `/proc/PID/fd/FD` names the file `id` (read again after its `fdinfo`: the
/// number may have been closed and reused in between).
fn names_file(pid: u32, fd: u32, id: FileId) -> bool {
    let mut path = [0u8; 64];
    matches!(sys::stat(proc_path(&mut path, pid, "fd", Some(fd))), Ok(st) if st.id == id)
}

/// Whether `/proc/PID/fdinfo/FD` lists a lock (`lock:\t1: FLOCK  ADVISORY  WRITE ...`).
fn has_lock_line(pid: u32, fd: u32) -> bool {
    let mut path = [0u8; 64];
    let mut buf = [0u8; 1024];
    let Ok(info) = sys::read_small_file(proc_path(&mut path, pid, "fdinfo", Some(fd)), &mut buf)
    else {
        return false;
    };
    info.split(|&b| b == b'\n')
        .any(|line| line.starts_with(b"lock:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_paths() {
        let mut buf = [0u8; 64];
        assert_eq!(
            proc_path(&mut buf, 4294967295, "fdinfo", Some(4294967295)),
            c"/proc/4294967295/fdinfo/4294967295"
        );
        assert_eq!(proc_path(&mut buf, 1, "fd", None), c"/proc/1/fd");
    }

    #[test]
    fn a_missing_file_has_no_holders() {
        let p = PidLockFile::new(
            c"/nonexistent-pandaemonium/x.pid",
            core::time::Duration::ZERO,
        )
        .unwrap();
        assert_eq!(p.holders().unwrap(), Holders::default());
    }
}
