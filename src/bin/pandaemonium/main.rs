//! `pandaemonium`: start, stop and status for any program, in a tiny static binary.
//!
//! Built on the crate's `no_std` core alone: no std, no allocation. The entry point
//! is the C `main` (`#![no_main]`) in every configuration; without the `std` feature
//! and with `panic = "abort"` (the release and `min-size` profiles) the binary is
//! `#![no_std]` with its own panic handler and links libc itself. A `panic = "unwind"`
//! build (plain `cargo build --no-default-features`) links std only because stable
//! Rust can't build an unwinding `no_std` binary; the code uses nothing from it.
//!
//! Modules: [`args`] (parsing), [`start`] (launcher), [`launch`] (the daemon's stage
//! overrides), [`exec`] (PROGRAM's path, found before fork), [`report`] (did PROGRAM
//! start?), [`supervise`], [`stop`], [`status`], [`pidfile`] (the file's contents),
//! [`out`] (messages), [`sys`] (libc).
#![cfg_attr(all(not(feature = "std"), panic = "abort"), no_std)]
#![no_main]
#![deny(unsafe_code, clippy::undocumented_unsafe_blocks)]

mod args;
mod exec;
mod launch;
mod out;
mod pidfile;
mod report;
mod start;
mod status;
mod stop;
mod supervise;
mod sys;

use core::ffi::{c_char, c_int};

use crate::args::Cursor;
use crate::out::Show;

/// `--help`.
pub const HELP: &str = "\
usage: pandaemonium start [OPTIONS] [--] PROGRAM [ARG...]
       pandaemonium stop --pid-file PATH [--signal NAME|NUM] [--timeout SECS]
       pandaemonium status --pid-file PATH
       pandaemonium --help | --version

start: run PROGRAM as a daemon; exit 0 once it runs, 1 if it could not start.
  --pid-file PATH        absolute; locked while PROGRAM lives; start is refused
                         while a live process holds it
  --chdir DIR            working directory (default /)
  --umask OCTAL          file mode creation mask (default 077)
  --user USER[:GROUP]    run as USER (name or number) with USER's groups
  --stdin PATH           stdin from PATH (default /dev/null)
  --stdout PATH          stdout appended to PATH, created if missing (default /dev/null)
  --stderr PATH          stderr likewise
  --keep-fd N            leave descriptor N open (repeatable)
  --allow-core           keep the core-dump limit (default: no core dumps)
  --detach auto|always|never
                         auto (default): not under init or inetd
  --foreground           same as --detach never
  --supervise            stay as a small parent: hold the pid file, forward
                         TERM INT HUP USR1 USR2, remove the pid file at the end
  --restart[=DELAY]      with --supervise: restart PROGRAM when it dies abnormally,
                         after DELAY seconds (default 1), doubling up to 60
stop: signal the pid file's holder (default TERM), wait --timeout seconds
  (default 10) for it to go, then SIGKILL. Exit 0 stopped or not running, 1 not.
status: exit 0 running (prints the pid), 1 dead but pid file exists,
  3 not running, 4 unknown.
Usage errors exit 2.
";

/// The C entry point (the same with and without std).
#[allow(unsafe_code)] // `no_mangle`
#[no_mangle]
pub extern "C" fn main(
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the C runtime passes argc NUL-terminated strings in argv followed by a
    // null pointer, and a null-terminated envp, all living as long as the process.
    let args = unsafe { sys::Args::from_raw(argc, argv, envp) };
    let mut cur = Cursor { args, next: 2 };
    let Some(command) = args.get(1) else {
        return out::usage(format_args!("missing command: start, stop or status"));
    };
    match command.to_bytes() {
        b"start" => start::main(&mut cur),
        b"stop" => stop::main(&mut cur),
        b"status" => status::main(&mut cur),
        b"--help" | b"-h" | b"help" => {
            out::text(1, HELP);
            0
        }
        b"--version" | b"-V" => {
            out::line(
                1,
                format_args!("pandaemonium {}", env!("CARGO_PKG_VERSION")),
            );
            0
        }
        _ => out::usage(format_args!("unknown command {}", Show(command))),
    }
}

#[cfg(all(not(feature = "std"), panic = "abort"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    out::text(2, "pandaemonium: internal error\n");
    sys::exit_now(70)
}

// The `libc` crate links libc for musl only when built as part of std.
#[cfg(all(not(feature = "std"), panic = "abort"))]
#[link(name = "c")]
extern "C" {}
