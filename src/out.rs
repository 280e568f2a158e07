//! Printing from the original process without std and without `core::fmt`: raw
//! `write(2)`.

use core::ffi::c_int;

use crate::{sys, Error, Line};

/// Writes `bytes` to `fd`, ignoring errors (nothing better to do with them).
pub(crate) fn write(fd: c_int, bytes: &[u8]) {
    let _ = sys::write_all(fd, bytes);
}

/// Writes the pieces `write_to` gives, and a newline, to `fd` in one `write(2)` (a
/// [`Line`]: cut at 512 bytes, more than an error's message holds).
pub(crate) fn line(fd: c_int, write_to: impl FnOnce(&mut dyn FnMut(&str))) {
    let mut line = Line::new();
    write_to(&mut |piece| {
        line.push(piece.as_bytes());
    });
    let _ = line.write_line(fd);
}

/// An error's message as a line on `fd`.
pub(crate) fn error_line(fd: c_int, e: &Error) {
    let _ = Line::new().push_error(e).write_line(fd);
}

/// `exit(3)`: the original process ends normally (atexit hooks run).
pub(crate) fn exit(code: c_int) -> ! {
    sys::exit_normal(code)
}
