//! Printing from the original process without std: raw `write(2)` and `core::fmt`.

use core::ffi::c_int;
use core::fmt::{self, Write};

use crate::sys;

struct Fd(c_int);

impl Write for Fd {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        sys::write_all(self.0, s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// Writes `bytes` to `fd`, ignoring errors (nothing better to do with them).
pub(crate) fn write(fd: c_int, bytes: &[u8]) {
    let _ = sys::write_all(fd, bytes);
}

/// Writes `value` and a newline to `fd`.
pub(crate) fn line(fd: c_int, value: &dyn fmt::Display) {
    let _ = writeln!(Fd(fd), "{value}");
}

/// `exit(3)`: the original process ends normally (atexit hooks run).
pub(crate) fn exit(code: c_int) -> ! {
    sys::exit_normal(code)
}
