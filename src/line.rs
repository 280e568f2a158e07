//! A line of text built without allocation or `core::fmt`, written with one `write(2)`.

use core::ffi::c_int;

use crate::decimal::Dec;
use crate::{sys, Errno, Error};

/// Bytes a [`Line`] holds, its newline included.
pub const LINE_CAPACITY: usize = 512;

/// A message line assembled on the stack and written whole, with a single `write(2)`,
/// so that lines from several processes never interleave. What does not fit is cut
/// (one byte always stays free for the newline).
///
/// For `no_std` programs that print without `core::fmt`, whose machinery would be a
/// good part of a small static binary:
///
/// ```
/// use pandaemonium::{Errno, Line};
///
/// let mut line = Line::new();
/// line.push(b"started pid ").push_dec(4242);
/// assert_eq!(line.as_bytes(), b"started pid 4242");
/// let mut err = Line::new();
/// err.push(b"open: ").push_errno(Errno::NOENT);
/// assert_eq!(err.as_bytes(), b"open: No such file or directory (os error 2)");
/// ```
#[derive(Clone)]
pub struct Line {
    buf: [u8; LINE_CAPACITY],
    len: usize,
}

impl Default for Line {
    fn default() -> Line {
        Line::new()
    }
}

impl core::fmt::Debug for Line {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Line").field("len", &self.len).finish()
    }
}

impl Line {
    /// An empty line.
    #[inline(never)]
    pub const fn new() -> Line {
        Line {
            buf: [0; LINE_CAPACITY],
            len: 0,
        }
    }

    /// Appends `bytes`, as many as fit.
    #[inline(never)]
    pub fn push(&mut self, bytes: &[u8]) -> &mut Self {
        let take = bytes.len().min(LINE_CAPACITY - 1 - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        self
    }

    /// Appends `n` in decimal.
    pub fn push_dec(&mut self, n: i64) -> &mut Self {
        self.push(Dec::new(n).as_bytes())
    }

    /// Appends `No such file or directory (os error 2)`, as `Errno`'s `Display` shows it.
    pub fn push_errno(&mut self, e: Errno) -> &mut Self {
        e.write_to(&mut |piece| {
            self.push(piece.as_bytes());
        });
        self
    }

    /// Appends an error's message, as its `Display` shows it
    /// ([`Error::write_to`]).
    pub fn push_error(&mut self, e: &Error) -> &mut Self {
        e.write_to(&mut |piece| {
            self.push(piece.as_bytes());
        });
        self
    }

    /// The text so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Ends the line with a newline and writes it to `fd`, in one `write(2)` (retried
    /// only when interrupted or short). Async-signal-safe.
    ///
    /// # Errors
    ///
    /// `write`'s (`EPIPE`, `EBADF`...).
    #[inline(never)]
    pub fn write_line(&mut self, fd: c_int) -> Result<(), Errno> {
        self.buf[self.len] = b'\n';
        sys::write_all(fd, &self.buf[..=self.len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_does_not_fit_is_cut_and_the_newline_always_fits() {
        let mut line = Line::new();
        line.push(&[b'a'; 600]);
        assert_eq!(line.as_bytes().len(), LINE_CAPACITY - 1);
        line.push(b"more").push_dec(7);
        assert_eq!(line.as_bytes().len(), LINE_CAPACITY - 1);
        let (r, w) = sys::pipe().unwrap();
        line.write_line(w).unwrap();
        let mut buf = [0u8; 1024];
        let n = sys::read(r, &mut buf).unwrap();
        assert_eq!(n, LINE_CAPACITY);
        assert_eq!(buf[n - 1], b'\n');
        sys::close(r);
        sys::close(w);
    }

    #[test]
    fn debug_shows_the_length() {
        extern crate std;
        let mut line = Line::new();
        line.push(b"abc");
        assert_eq!(std::format!("{line:?}"), "Line { len: 3 }");
    }

    #[test]
    fn numbers_and_errors_read_as_display_shows_them() {
        let mut line = Line::new();
        line.push_dec(-12).push(b" ").push_dec(i64::MAX);
        assert_eq!(line.as_bytes(), b"-12 9223372036854775807");
        let e = Error::os(crate::Stage::PidFile, Errno::ACCES, "open", b"/run/x.pid");
        let mut line = Line::new();
        line.push_error(&e);
        assert_eq!(
            line.as_bytes(),
            b"stage 6 (pid file): open /run/x.pid: Permission denied (os error 13)"
        );
    }
}
