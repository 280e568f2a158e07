//! The benchmark's daemon (`ci/bench.sh`, `bench/run.sh`): the peers' interface,
//! our default nine stages.
//!
//! ```sh
//! bench_daemon /ABS/PIDFILE [WORKDIR]
//! ```
//!
//! Daemonizes with the defaults (umask 077, core dumps off, inherited descriptors
//! closed, stdio on `/dev/null`, every signal reset, `SIGTERM` removes the pid file and
//! ends the daemon), the pid file sealed and locked, the working directory `WORKDIR`
//! (default `/`). The original process exits 0 once the daemon has finished stage 9,
//! and 1 with the error on stderr when a stage failed (2 for bad usage). The daemon then
//! sleeps in `pause()` until `SIGTERM`.
//!
//! Two builds of the same program:
//!
//! - default features (`std`): the std layer, `Builder` with the paths from
//!   `std::env::args_os`, errors through `eprintln!`;
//! - `--no-default-features`: `#![no_std]` + `#![no_main]`, the core (`Daemon`,
//!   `target`) and libc only: a C `main(argc, argv)`, argv used in place as `&CStr`,
//!   output through `write(2)`.
//!   A `no_std` binary needs `panic = "abort"` (there is no stable unwinding runtime
//!   without std), so this is what the `min-size` profile builds:
//!
//!   ```sh
//!   cargo build --profile min-size --no-default-features \
//!       --target x86_64-unknown-linux-musl --example bench_daemon
//!   ```
//!
//!   Under a `panic = "unwind"` profile (plain `cargo build`/`cargo test`) the same
//!   libc-only code is built with `#![no_main]` but std linked in (it provides the
//!   panic runtime), so that `cargo build --no-default-features --example bench_daemon`
//!   works in the dev profile too. Only the `panic = "abort"` build is `no_std`; the
//!   benchmark measures that one.
#![cfg_attr(not(feature = "std"), no_main)]
#![cfg_attr(all(not(feature = "std"), panic = "abort"), no_std)]

#[cfg(not(feature = "std"))]
use core::ffi::CStr;

#[cfg(not(feature = "std"))]
use pandaemonium::{target, Daemon};

/// The daemon's work: nothing, until a signal ends it. The default map's `SIGTERM`
/// handler removes the pid file and ends the process; `pause()` just sleeps.
fn idle() -> i32 {
    loop {
        // SAFETY: pause takes no arguments and only returns after a handled signal.
        unsafe { libc::pause() };
    }
}

const USAGE: &str = "usage: bench_daemon /ABS/PIDFILE [WORKDIR]\n";

// ---------------------------------------------------------------- std build

/// The std layer: `Builder` takes the paths as they come from `args_os`.
#[cfg(feature = "std")]
fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(pid_file), work_dir, None) = (args.next(), args.next(), args.next()) else {
        eprint!("{USAGE}");
        std::process::exit(2);
    };
    let mut builder = pandaemonium::Builder::new().pid_file(pid_file);
    if let Some(dir) = work_dir {
        builder = builder.working_directory(dir);
    }
    if let Err(e) = builder.start(idle) {
        eprintln!("bench_daemon: {e}");
        std::process::exit(1);
    }
}

/// The core: sets the daemon up and starts it. `Ok` in the original process once the
/// daemon finished stage 9 (the daemon itself never returns from here).
#[cfg(not(feature = "std"))]
fn start(pid_file: &CStr, work_dir: Option<&CStr>) -> Result<(), pandaemonium::Error> {
    let mut daemon = Daemon::new(target(|()| idle(), ()));
    daemon.pid_file(pid_file)?;
    if let Some(dir) = work_dir {
        daemon.working_directory(dir)?;
    }
    daemon.start().map(drop)
}

// ------------------------------------------------------------ no_std build

#[cfg(all(not(feature = "std"), panic = "abort"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort takes no arguments and never returns.
    unsafe { libc::abort() }
}

/// `write(2)` the whole of `bytes` to `fd`, retrying on `EINTR`; errors are dropped.
#[cfg(not(feature = "std"))]
fn write_all(fd: libc::c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: bytes is a valid buffer of bytes.len() bytes.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n == 0 || errno() != libc::EINTR {
            return;
        }
    }
}

#[cfg(not(feature = "std"))]
fn errno() -> libc::c_int {
    // SAFETY: __errno_location returns this thread's errno slot (musl and glibc).
    unsafe { *libc::__errno_location() }
}

/// `core::fmt::Write` onto a fixed buffer, written out with one `write(2)`.
#[cfg(not(feature = "std"))]
struct Line {
    buf: [u8; 256],
    len: usize,
}

#[cfg(not(feature = "std"))]
impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let take = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// The C entry point: `argv` holds `argc` NUL-terminated strings, which live as long
/// as the process, so they are used in place as `&CStr`.
///
/// # Safety
///
/// Called by the C runtime only, with the process's `argc` and `argv`.
#[cfg(not(feature = "std"))]
#[no_mangle]
pub unsafe extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    use core::fmt::Write;

    if !(2..=3).contains(&argc) {
        write_all(2, USAGE.as_bytes());
        return 2;
    }
    // SAFETY: the C runtime passes argc valid, NUL-terminated argument strings.
    let arg = |i: usize| unsafe { CStr::from_ptr(*argv.add(i)) };
    let work_dir = if argc == 3 { Some(arg(2)) } else { None };
    match start(arg(1), work_dir) {
        Ok(()) => 0,
        Err(e) => {
            let mut line = Line {
                buf: [0; 256],
                len: 0,
            };
            let _ = writeln!(line, "bench_daemon: {e}");
            if line.len == line.buf.len() {
                line.buf[line.len - 1] = b'\n';
            }
            write_all(2, &line.buf[..line.len]);
            1
        }
    }
}
