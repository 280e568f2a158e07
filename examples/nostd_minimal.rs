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

use pandaemonium::{target, Daemon, Error, Line};

#[cfg(panic = "abort")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort takes no arguments and never returns.
    unsafe { libc::abort() }
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
            // No `core::fmt` (`format_args!` and `Display` would link its machinery, a
            // sixth of this binary): a `Line` of plain bytes, written with one write(2).
            let _ = Line::new()
                .push(b"started pid ")
                .push_dec(i64::from(started.pid))
                .push(b", pid file ")
                .push(pid_file.to_bytes())
                .write_line(1);
            0
        }
        Err(e) => failed(&e),
    }
}

/// Prints `e` to stderr, `nostd_minimal: stage 6 (pid file): open /x.pid: Permission
/// denied (os error 13)` (the text `{e}` would give), and returns the exit status, 1.
#[inline(never)]
fn failed(e: &Error) -> c_int {
    let _ = Line::new()
        .push(b"nostd_minimal: ")
        .push_error(e)
        .write_line(2);
    1
}
