//! The core alone: `#![no_std]`, `#![no_main]`, libc only, no allocator.
//!
//! Daemonizes with the defaults and a pid file (argv[1], default
//! `/tmp/pandaemonium-nostd.pid`), prints the daemon's pid, and the daemon sleeps until
//! `SIGTERM` (which removes the pid file). This is the binary `ci/size.sh` measures:
//!
//! ```sh
//! cargo build --profile min-size --no-default-features \
//!     --target x86_64-unknown-linux-musl --example nostd_minimal
//! ```
//!
//! A `no_std` binary needs `panic = "abort"` (no stable unwinding runtime without std),
//! which the `min-size` profile sets. Under a `panic = "unwind"` profile (plain
//! `cargo build`/`cargo test`) the same code builds with std linked in for the panic
//! runtime, so every `cargo` command works; only the `panic = "abort"` build is
//! `no_std`.
#![no_main]
#![cfg_attr(panic = "abort", no_std)]

use core::ffi::{c_char, c_int, CStr};

use pandaemonium::{target, Daemon, Error};

#[cfg(panic = "abort")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort takes no arguments and never returns.
    unsafe { libc::abort() }
}

/// A line assembled on the stack and written with one `write(2)`; what does not fit
/// is cut (an error's message is well under 256 bytes).
///
/// No `core::fmt`: `format_args!` and `Display` would link the formatting machinery
/// (about 6 KB, a sixth of this binary). Plain bytes, a few lines of decimal, and
/// [`Error::write_to`](pandaemonium::Error::write_to) for the error's message do the
/// same job.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 256],
            len: 0,
        }
    }

    /// Appends `bytes`, as many as fit. Out of line: one copy of it serves every call.
    #[inline(never)]
    fn push(&mut self, bytes: &[u8]) {
        let room = &mut self.buf[self.len..];
        let take = bytes.len().min(room.len());
        room[..take].copy_from_slice(&bytes[..take]);
        self.len += take;
    }

    /// Appends `n` in decimal.
    fn push_decimal(&mut self, mut n: u32) {
        let mut digits = [0u8; 10]; // u32::MAX has 10 digits
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[start..]);
    }

    /// Writes the line to `fd` (errors ignored: nowhere left to report them).
    fn write(&self, fd: c_int) {
        // SAFETY: the buffer is valid for `len` bytes.
        unsafe { libc::write(fd, self.buf.as_ptr().cast(), self.len) };
    }
}

/// The daemon's work: sleep until a signal ends it.
fn idle(_: ()) -> i32 {
    loop {
        // SAFETY: pause takes no arguments.
        unsafe { libc::pause() };
    }
}

/// The C entry point.
///
/// # Safety
///
/// Called by the C runtime with `argc` valid, NUL-terminated strings in `argv`.
#[no_mangle]
pub unsafe extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let pid_file = if argc > 1 {
        // SAFETY: the C runtime passes argc valid argument strings, alive until exit.
        unsafe { CStr::from_ptr(*argv.add(1)) }
    } else {
        c"/tmp/pandaemonium-nostd.pid"
    };
    let mut daemon = Daemon::new(target(idle, ()));
    // The errors are printed where they are, by reference: an `Error` is ~120 bytes,
    // and every `map`/`and_then` that moves one costs code in a binary this small.
    if let Err(e) = daemon.pid_file(pid_file) {
        return failed(&e);
    }
    match daemon.start() {
        Ok(started) => {
            let mut line = Line::new();
            line.push(b"started pid ");
            line.push_decimal(started.pid);
            line.push(b", pid file ");
            line.push(pid_file.to_bytes());
            line.push(b"\n");
            line.write(1);
            0
        }
        Err(e) => failed(&e),
    }
}

/// Prints `e` to stderr, `nostd_minimal: stage 6 (pid file): open /x.pid: Permission
/// denied (os error 13)` (the text `{e}` would give), and returns the exit status, 1.
#[inline(never)]
fn failed(e: &Error) -> c_int {
    let mut line = Line::new();
    line.push(b"nostd_minimal: ");
    e.write_to(&mut |piece| line.push(piece.as_bytes()));
    line.push(b"\n");
    line.write(2);
    1
}
