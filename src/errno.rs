//! `Errno`: an OS error number that crosses the report pipe losslessly.

use core::fmt;

/// An OS error number (`errno`).
///
/// A transparent newtype rather than an enum (as rustix does), so any value read back
/// from the report channel decodes without loss. Its `Display` gives the system's text
/// and the number, `No such file or directory (os error 2)`, like `std::io::Error`.
/// `Display` runs in the original process only, never between fork and `run()`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Errno(pub(crate) i32);

impl Errno {
    /// `EPERM`: operation not permitted.
    pub const PERM: Errno = Errno(libc::EPERM);
    /// `ENOENT`: no such file or directory.
    pub const NOENT: Errno = Errno(libc::ENOENT);
    /// `EINTR`: interrupted system call.
    pub const INTR: Errno = Errno(libc::EINTR);
    /// `EBADF`: bad file descriptor.
    pub const BADF: Errno = Errno(libc::EBADF);
    /// `EAGAIN` / `EWOULDBLOCK`: try again.
    pub const AGAIN: Errno = Errno(libc::EAGAIN);
    /// `EACCES`: permission denied.
    pub const ACCES: Errno = Errno(libc::EACCES);
    /// `EINVAL`: invalid argument.
    pub const INVAL: Errno = Errno(libc::EINVAL);
    /// `ENOSYS`: function not implemented.
    pub const NOSYS: Errno = Errno(libc::ENOSYS);
    /// `ELOOP`: too many symbolic links (what `O_NOFOLLOW` gives for a symlink).
    pub const LOOP: Errno = Errno(libc::ELOOP);
    /// `ESRCH`: no such process.
    pub const SRCH: Errno = Errno(libc::ESRCH);
    /// `ECHILD`: no child processes.
    pub const CHILD: Errno = Errno(libc::ECHILD);
    /// `EEXIST`: file exists.
    pub const EXIST: Errno = Errno(libc::EEXIST);
    /// `EMLINK`: too many links.
    pub const MLINK: Errno = Errno(libc::EMLINK);
    /// `ENAMETOOLONG`: file name too long.
    pub const NAMETOOLONG: Errno = Errno(libc::ENAMETOOLONG);

    /// Wraps a raw error number.
    pub const fn from_raw(raw: i32) -> Errno {
        Errno(raw)
    }

    /// The raw error number, as `std::io::Error::raw_os_error` gives it.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The calling thread's current `errno`.
    pub fn last() -> Errno {
        crate::sys::last_errno()
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({})", self.0)
    }
}

impl Errno {
    /// Writes what `Display` shows, `No such file or directory (os error 2)`, piece by
    /// piece into `out`, without `core::fmt` (for `no_std` programs that print with
    /// `write(2)`; [`Error::write_to`](crate::Error::write_to) has an example).
    pub fn write_to(self, out: &mut dyn FnMut(&str)) {
        let mut buf = [0u8; 128];
        out(crate::sys::strerror(self.0, &mut buf));
        out(" (os error ");
        out(crate::decimal::Dec::new(i64::from(self.0)).as_str());
        out(")");
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::error::write_fmt(f, |out| self.write_to(out))
    }
}
