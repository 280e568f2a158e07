//! Messages without std: each line is formatted into a stack buffer with `core::fmt`
//! and written with a single `write(2)`, so concurrent writers never interleave.

use core::ffi::{c_int, CStr};
use core::fmt::{self, Write};

use crate::sys;

/// A line being built; text beyond the capacity is dropped.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // One byte stays free for the newline.
        let room = self.buf.len() - 1 - self.len;
        let take = s.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Writes `args` and a newline to `fd` in one `write(2)`, ignoring errors.
pub fn line(fd: c_int, args: fmt::Arguments<'_>) {
    let mut l = Line {
        buf: [0; 512],
        len: 0,
    };
    let _ = l.write_fmt(args);
    l.buf[l.len] = b'\n';
    let _ = sys::write_all(fd, &l.buf[..=l.len]);
}

/// `pandaemonium: …` on stderr.
pub fn error(args: fmt::Arguments<'_>) {
    line(2, format_args!("pandaemonium: {args}"));
}

/// A usage error: one line on stderr; the exit status 2.
pub fn usage(args: fmt::Arguments<'_>) -> i32 {
    line(
        2,
        format_args!("pandaemonium: {args} (see pandaemonium --help)"),
    );
    2
}

/// Writes `text` to `fd` as it is.
pub fn text(fd: c_int, text: &str) {
    let _ = sys::write_all(fd, text.as_bytes());
}

/// Shows a C string, bytes that are not UTF-8 as U+FFFD.
pub struct Show<'a>(pub &'a CStr);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.to_bytes().utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_char(char::REPLACEMENT_CHARACTER)?;
            }
        }
        Ok(())
    }
}

/// Shows a core error without its stage prefix: `open /x.pid: Permission denied (os
/// error 13)`, for the commands that run no stage (stop, status) and for usage errors.
pub struct Detail<'a>(pub &'a pandaemonium::Error);

impl fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.detail())?;
        if let Some(errno) = self.0.errno() {
            write!(f, ": {errno}")?;
        }
        Ok(())
    }
}

/// Shows milliseconds as seconds: `1`, `0.25`.
pub struct Secs(pub u64);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, ms) = (self.0 / 1000, self.0 % 1000);
        if ms == 0 {
            write!(f, "{s}")
        } else {
            let mut frac = [b'0'; 3];
            let digits = [ms / 100, ms / 10 % 10, ms % 10];
            let mut n = 3;
            while n > 1 && digits[n - 1] == 0 {
                n -= 1;
            }
            for (d, v) in frac.iter_mut().zip(digits) {
                *d = b'0' + v as u8;
            }
            let frac = core::str::from_utf8(&frac[..n]).unwrap_or("0");
            write!(f, "{s}.{frac}")
        }
    }
}
