//! Printing from the original process without std and without `core::fmt`: raw
//! `write(2)`.

use core::ffi::c_int;

use crate::{sys, Error};

/// Writes `bytes` to `fd`, ignoring errors (nothing better to do with them).
pub(crate) fn write(fd: c_int, bytes: &[u8]) {
    let _ = sys::write_all(fd, bytes);
}

/// Writes the pieces `write_to` gives, and a newline, to `fd` in one `write(2)` (cut
/// at 512 bytes, more than an error's message holds).
pub(crate) fn line(fd: c_int, write_to: impl FnOnce(&mut dyn FnMut(&str))) {
    let mut buf = [0u8; 512];
    let mut len = 0;
    write_to(&mut |piece| {
        let take = piece.len().min(buf.len() - 1 - len);
        buf[len..len + take].copy_from_slice(&piece.as_bytes()[..take]);
        len += take;
    });
    buf[len] = b'\n';
    write(fd, &buf[..=len]);
}

/// An error's message as a line on `fd`.
pub(crate) fn error_line(fd: c_int, e: &Error) {
    line(fd, |out| e.write_to(out));
}

/// `exit(3)`: the original process ends normally (atexit hooks run).
pub(crate) fn exit(code: c_int) -> ! {
    sys::exit_normal(code)
}
