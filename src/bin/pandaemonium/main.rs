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
//! overrides), [`report`] (did PROGRAM start?), [`supervise`], [`output`] (`--log` and
//! `--syslog` through the supervisor), [`stop`], [`status`], [`pidfile`] (the file's
//! two lines), [`out`] (messages).
//!
//! Optional parts, cargo features all on by default (`tool`): `tool-readiness`
//! (`--notify`, `--ready-fd`), `tool-privileges` (`--chroot`, `--keep-cap`,
//! `--no-new-privs`), `tool-log` (`--log`, `--syslog`; without it `output` is
//! `no_output.rs`, which makes nothing). A build without one refuses its options
//! ([`args::not_built`]) and leaves them out of [`help`]. Everything below them is the library's public API: `Program` (PROGRAM
//! found before fork, exec'd, spawned), `ProcessIds::from_files` (`--user`,
//! `--groups`), `Capability` (`--keep-cap`), `PidLockFile` and its holders, `syslog`
//! (`--syslog`), `os`.
#![cfg_attr(all(not(feature = "std"), panic = "abort"), no_std)]
#![no_main]
#![deny(unsafe_code, clippy::undocumented_unsafe_blocks)]

mod args;
mod launch;
mod out;
#[cfg(feature = "tool-log")]
mod output;
#[cfg(not(feature = "tool-log"))]
#[path = "no_output.rs"]
mod output;
mod pidfile;
mod report;
mod start;
mod status;
mod stop;
mod supervise;

use core::ffi::{c_char, c_int};

use crate::args::Cursor;
use crate::out::Msg;

/// `--help`, in pieces: the options of this build only (see [`help`]).
const HELP_START: &str = "\
usage: pandaemonium start [--pid-file PATH] [--chdir DIR] [--umask OCTAL]
         [--user USER[:GROUP] [--groups LIST|user|none]] [--stdin PATH]
         [--stdout PATH] [--stderr PATH] [--keep-fd N]... [--allow-core]
         [--foreground] [--detach auto|always|never]
         [--supervise [--restart[=DELAY]]]
";
#[cfg(feature = "tool-privileges")]
const HELP_PRIVILEGES: &str = "         [--keep-cap CAP]... [--chroot DIR] [--no-new-privs]\n";
#[cfg(feature = "tool-log")]
const HELP_LOG: &str = concat!(
    "         [--log FILE] [--syslog[=TAG]] [--syslog-facility FAC]\n",
    "         [--syslog-priority PRI] [--syslog-socket PATH] (with --supervise)\n",
);
#[cfg(feature = "tool-readiness")]
const HELP_READINESS: &str = "         [--notify[=SECS] | --ready-fd N[:SECS]]\n";
const HELP_COMMANDS: &str = concat!(
    "         [--] PROGRAM [ARG...]\n",
    "       pandaemonium stop --pid-file PATH [--signal SIG] [--timeout SECS]\n",
    "       pandaemonium status --pid-file PATH\n",
    "       pandaemonium --help | --version\n",
    "start: 0 PROGRAM runs, 1 it did not start. stop (TERM, then KILL after 10 s):\n",
    "0 stopped or not running, 1 not stopped. status: 0 running (prints the pids),\n",
    "1 dead but the pid file exists, 3 not running, 4 unknown. Usage errors: 2.\n",
    "--groups: the user's (default), none, or a list (names, gids).\n",
);
#[cfg(feature = "tool-privileges")]
const HELP_PRIVILEGES_TEXT: &str = "\
--keep-cap NET_BIND_SERVICE[,CAP...]: kept as USER (needs --user), and by what
PROGRAM execs. --chroot: PROGRAM (absolute), --chdir and the redirections are
in DIR; the pid file not.
";
#[cfg(feature = "tool-log")]
const HELP_LOG_TEXT: &str = "\
--log FILE (absolute, opened as USER in the jail, 0640 before the umask): the
supervisor appends PROGRAM's stdout and stderr to it, reopens it on SIGHUP
(then not passed on). --syslog: each line to /dev/log as TAG[PID] (TAG:
PROGRAM's name), facility daemon, priority notice; dropped while no syslog
daemon listens. The --syslog-* options imply --syslog.
";
#[cfg(feature = "tool-readiness")]
const HELP_READINESS_TEXT: &str = "\
--notify: PROGRAM gets a private NOTIFY_SOCKET; start waits for READY=1
(MAINPID= goes into the pid file). --ready-fd: PROGRAM gets a pipe at fd N and
writes a newline when ready. Both wait up to SECS (60), exit 1 if PROGRAM ends
first or the time passes (then it is killed); not with --foreground.
";

/// Prints `--help` on stdout: the options this build has (the `tool-*` features).
pub fn help() {
    let pieces = [
        HELP_START,
        #[cfg(feature = "tool-privileges")]
        HELP_PRIVILEGES,
        #[cfg(feature = "tool-log")]
        HELP_LOG,
        #[cfg(feature = "tool-readiness")]
        HELP_READINESS,
        HELP_COMMANDS,
        #[cfg(feature = "tool-privileges")]
        HELP_PRIVILEGES_TEXT,
        #[cfg(feature = "tool-log")]
        HELP_LOG_TEXT,
        #[cfg(feature = "tool-readiness")]
        HELP_READINESS_TEXT,
    ];
    for piece in pieces {
        out::text(1, piece);
    }
}

/// The C entry point (the same with and without std).
#[allow(unsafe_code)] // `no_mangle`
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    // SAFETY: the C runtime passes argc NUL-terminated strings in argv followed by a
    // null pointer, and a null-terminated envp, all living as long as the process.
    let args = unsafe { pandaemonium::MainArgs::from_raw(argc, argv, envp) };
    let mut cur = Cursor { args, next: 2 };
    let Some(command) = args.get(1) else {
        return Msg::error()
            .s("missing command: start, stop or status")
            .usage();
    };
    match command.to_bytes() {
        b"start" => start::main(&mut cur),
        b"stop" => stop::main(&mut cur),
        b"status" => status::main(&mut cur),
        b"--help" | b"-h" | b"help" => {
            help();
            0
        }
        b"--version" | b"-V" => {
            out::text(1, concat!("pandaemonium ", env!("CARGO_PKG_VERSION"), "\n"));
            0
        }
        _ => Msg::error()
            .s("unknown command ")
            .v(command.to_bytes())
            .usage(),
    }
}

#[cfg(all(not(feature = "std"), panic = "abort"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    out::text(2, "pandaemonium: internal error\n");
    pandaemonium::os::exit_now(70)
}

// The `libc` crate links libc for musl only when built as part of std. (With LTO, as
// the `min-size` profile has: without it the linker would meet `-lc` before the
// rlibs that need it.)
#[cfg(all(not(feature = "std"), panic = "abort"))]
#[link(name = "c")]
extern "C" {}
