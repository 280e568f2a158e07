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
use core::fmt::Write;

use pandaemonium::{target, Daemon};

#[cfg(panic = "abort")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort takes no arguments and never returns.
    unsafe { libc::abort() }
}

/// A line formatted on the stack and written with one `write(2)`.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let take = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

fn print(fd: c_int, args: core::fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; 160],
        len: 0,
    };
    let _ = line.write_fmt(args);
    // SAFETY: the buffer is valid for `len` bytes.
    unsafe { libc::write(fd, line.buf.as_ptr().cast(), line.len) };
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
    let result = daemon
        .pid_file(pid_file)
        .map(drop)
        .and_then(|()| daemon.start().map(|s| s.pid));
    match result {
        Ok(pid) => {
            print(
                1,
                format_args!(
                    "started pid {pid}, pid file {}\n",
                    pid_file.to_str().unwrap_or("?")
                ),
            );
            0
        }
        Err(e) => {
            print(2, format_args!("nostd_minimal: {e}\n"));
            1
        }
    }
}
