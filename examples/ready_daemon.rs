//! A daemon that becomes ready after a delay: the fixed interface the readiness tests
//! (and supervisors' configurations in the README) drive.
//!
//! ```text
//! ready_daemon [--wait-ready SECS] [--ready-fd N] [--fail-before-ready CODE] [--always-detach]
//!              /ABS/PIDFILE DELAY_MS
//! ```
//!
//! Default stages and the pid file; `run()` sleeps `DELAY_MS`, then declares the daemon
//! ready ([`pandaemonium::ready`], to every supervisor present) and pauses until
//! `SIGTERM`; with `--fail-before-ready CODE` it exits `CODE` after the delay instead.
//! `--wait-ready SECS` makes the launcher wait for readiness
//! ([`Config::wait_ready`](pandaemonium::Config::wait_ready)); `--ready-fd N` is an
//! s6-style readiness descriptor ([`Config::ready_fd`](pandaemonium::Config::ready_fd));
//! `--always-detach` forks even under a supervisor ([`Detach::Always`]: under systemd
//! the waiting launcher then relays `MAINPID=` and `READY=1`).
//! The launcher prints `started pid N` and exits 0, or prints the error and exits 1
//! (2 for bad usage).
//!
//! `no_std` with the `min-size` profile, as `nostd_minimal`:
//!
//! ```sh
//! cargo build --profile min-size --no-default-features --example ready_daemon
//! ```
#![no_main]
#![cfg_attr(panic = "abort", no_std)]

use core::ffi::{c_char, c_int, CStr};
use core::time::Duration;

use pandaemonium::decimal::parse_u32;
use pandaemonium::{os, ready, target, Daemon, Detach, Error, Line, MainArgs};

#[cfg(panic = "abort")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort takes no arguments and never returns.
    unsafe { libc::abort() }
}

/// What `run()` does: after `delay_ms`, exit `fail` if given, else declare readiness
/// and pause until a signal ends the daemon.
fn serve((delay_ms, fail): (u32, Option<u32>)) -> i32 {
    os::sleep_ms(delay_ms);
    if let Some(code) = fail {
        return code as i32;
    }
    let _ = ready();
    // A second call does nothing: no second newline, no second datagram (the tests
    // count them).
    let _ = ready();
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
    // SAFETY: the C runtime's arguments, alive until exit; the environment is not used.
    let args = unsafe { MainArgs::from_raw(argc, argv, core::ptr::null()) };
    let (mut wait, mut ready_fd, mut fail, mut always) = (None, None, None, false);
    let mut i = 1;
    let number = |i: usize| args.get(i).and_then(|a| parse_u32(a.to_bytes()));
    while let Some(arg) = args.get(i).map(CStr::to_bytes) {
        if arg == b"--always-detach" {
            always = true;
            i += 1;
            continue;
        }
        let slot = match arg {
            b"--wait-ready" => &mut wait,
            b"--ready-fd" => &mut ready_fd,
            b"--fail-before-ready" => &mut fail,
            _ => break,
        };
        let Some(n) = number(i + 1) else {
            return usage();
        };
        *slot = Some(n);
        i += 2;
    }
    let (Some(pid_file), Some(delay), None) = (args.get(i), number(i + 1), args.get(i + 2)) else {
        return usage();
    };
    let mut daemon = Daemon::new(target(serve, (delay, fail)));
    if let Err(e) = daemon.pid_file(pid_file) {
        return failed(&e);
    }
    if always {
        daemon.detach(Detach::Always);
    }
    // Under qemu-user (the cross tests' `--cfg qemu`) the guest's /proc/self/stat says
    // 0 threads, so stage 1 could not count them and would refuse to fork.
    #[cfg(qemu)]
    // SAFETY: this program starts no thread (no std, and libc starts none).
    unsafe {
        daemon.allow_threads();
    }
    if let Some(secs) = wait {
        daemon.wait_ready(Duration::from_secs(u64::from(secs)));
    }
    if let Some(fd) = ready_fd {
        if let Err(e) = daemon.ready_fd(fd as c_int) {
            return failed(&e);
        }
    }
    match daemon.start() {
        Ok(started) => {
            let _ = Line::new()
                .push(b"started pid ")
                .push_dec(i64::from(started.pid))
                .write_line(1);
            0
        }
        Err(e) => failed(&e),
    }
}

fn usage() -> c_int {
    let _ = Line::new()
        .push(b"usage: ready_daemon [--wait-ready SECS] [--ready-fd N] ")
        .push(b"[--fail-before-ready CODE] [--always-detach] /ABS/PIDFILE DELAY_MS")
        .write_line(2);
    2
}

/// Prints `ready_daemon: ERROR` to stderr; returns 1.
#[inline(never)]
fn failed(e: &Error) -> c_int {
    let _ = Line::new()
        .push(b"ready_daemon: ")
        .push_error(e)
        .write_line(2);
    1
}
