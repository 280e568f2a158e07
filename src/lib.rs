//! Unix daemons done right, in a `#![no_std]` + libc core.
//!
//! A Rust take on Python's [pandaemonium]: a daemon is a target function with its
//! arguments ([`target`]) or your own type implementing [`Run`], and
//! [`Daemon::start`] turns it into a well-behaved daemon in nine stages, with fixed-size
//! buffers and **no heap allocation after fork**. The original process waits and learns
//! the outcome: the daemon's pid and its set-up output, or the stage that failed with
//! its errno.
//!
//! ```no_run
//! use pandaemonium::{target, Daemon};
//!
//! fn serve(name: &str) -> i32 {
//!     let _ = name; // the daemon's work
//!     0
//! }
//!
//! let mut daemon = Daemon::new(target(serve, "example"));
//! daemon.pid_file(c"/tmp/example.pid")?;
//! match daemon.start() {
//!     Ok(started) => println!("started, pid {}", started.pid),
//!     // e.g. "stage 6 (pid file): /tmp/example.pid: already running (pid 4242)"
//!     Err(e) => eprintln!("{e}"),
//! }
//! # Ok::<(), pandaemonium::Error>(())
//! ```
//!
//! # The nine stages
//!
//! | # | stage | default | configure with |
//! |---|---|---|---|
//! | 1 | detach: fork, `setsid`, fork | auto: not under init (ppid 1) or inetd (stdin a socket) | [`Config::detach`] |
//! | 2 | prevent core dumps | `RLIMIT_CORE` 0/0, not dumpable | [`Config::prevent_core`] |
//! | 3 | chroot, supplementary groups, gid, uid, capabilities kept, `no_new_privs` | unchanged | [`Config::process_ids`], [`Config::ids`], [`Config::chroot_directory`], [`Config::keep_capabilities`], [`Config::no_new_privileges`] |
//! | 4 | umask | `0o077` | [`Config::umask`] |
//! | 5 | working directory | `/` | [`Config::working_directory`] |
//! | 6 | pid file: acquire, seal | none | [`Config::pid_file`], [`Config::pid_lock_file`] |
//! | 7 | signals: mask cleared, dispositions reset, then the map | `SIGTERM` exits cleanly; `SIGTSTP`/`SIGTTIN`/`SIGTTOU` ignored | [`Config::signal`] |
//! | 8 | close inherited descriptors | all above 2 | [`Config::inherit_file`] |
//! | 9 | redirect stdin/stdout/stderr (relative paths: the launcher's directory; in a jail, the working directory) | `/dev/null` when detached | [`Config::stdin`], [`Config::stdout`], [`Config::stderr`] |
//!
//! # Usage patterns
//!
//! These follow the seed's (pandaemonium's) own examples. Anything that daemonizes is
//! `no_run` here; the same code runs in the tests through helper programs.
//!
//! **A target function** with its arguments (pandaemonium's `Daemon(target=f)`):
//!
//! ```no_run
//! use pandaemonium::{target, Daemon};
//!
//! fn do_something_interesting(path: &str) -> i32 {
//!     let _ = path;
//!     0
//! }
//!
//! let mut daemon = Daemon::new(target(do_something_interesting, "/var/lib/thing"));
//! let started = daemon.start()?;
//! // What the daemon printed while it set up, like pandaemonium's `daemon.output`.
//! let _ = started.output.as_bytes();
//! # Ok::<(), pandaemonium::Error>(())
//! ```
//!
//! **Your own type** with `run`, overriding a stage (pandaemonium's subclass with a
//! `@check_stage`-decorated `stage7`; the driver does `check_stage`'s bookkeeping):
//!
//! ```no_run
//! use pandaemonium::{Daemon, Error, Run, Stages};
//!
//! struct MyDaemon { ip: [u8; 4] }
//!
//! impl Run for MyDaemon {
//!     fn run(&mut self) -> i32 {
//!         let _ = self.ip; // do stuff
//!         0
//!     }
//!     fn stage7(&mut self, s: &mut Stages<'_, '_>) -> Result<(), Error> {
//!         s.signals()?; // the default stage 7 ...
//!         // ... then some custom stuff with the signals set up
//!         Ok(())
//!     }
//! }
//!
//! Daemon::new(MyDaemon { ip: [192, 168, 11, 1] }).start()?;
//! # Ok::<(), pandaemonium::Error>(())
//! ```
//!
//! **Some stages, a custom step, then the rest** (the seed's `daemon.stage4()`):
//!
//! ```no_run
//! use pandaemonium::{target, Daemon, Side, Stage};
//!
//! let mut daemon = Daemon::new(target(|_: ()| 0, ()));
//! match daemon.stage(Stage::Umask)? {
//!     // In the daemon: stages 1-4 are done; a custom step between umask and chdir.
//!     Side::Daemon => {
//!         // e.g. create files with the daemon's umask, in the original directory
//!     }
//!     // In the original process, once the daemon finished stage 9.
//!     Side::Original(started) => {
//!         println!("daemon pid {}", started.pid);
//!         return Ok(());
//!     }
//! }
//! daemon.start()?; // stages 5-9, then run()
//! # Ok::<(), pandaemonium::Error>(())
//! ```
//!
//! **Foreground or daemon**, with a [`PidLockFile`] acquired first, so that "already
//! running" is reported before anything forks:
//!
//! ```no_run
//! use core::time::Duration;
//! use pandaemonium::{target, Daemon, PidLockFile};
//!
//! # fn run_main_program() {}
//! let foreground = false; // e.g. a --foreground flag
//! let mut pid_file = PidLockFile::new(c"/tmp/lock.pid", Duration::ZERO)?;
//! pid_file.acquire(None)?;
//! if foreground {
//!     pid_file.seal()?;
//! } else {
//!     let mut daemon = Daemon::new(target(|_: ()| 0, ()));
//!     daemon.pid_lock_file(pid_file);
//!     daemon.activate()?; // the original process prints the output and exits
//! }
//! // Here, in foreground or daemon mode, the pid file holds our pid and is locked.
//! run_main_program();
//! # Ok::<(), pandaemonium::Error>(())
//! ```
//!
//! **`report()`**: print what the daemon said while setting up, then exit:
//!
//! ```no_run
//! use pandaemonium::{target, Daemon};
//!
//! let mut daemon = Daemon::new(target(|_: ()| 0, ()));
//! let _ = daemon.start();
//! daemon.report(); // prints output (and any failure) and exits 0 or 1
//! ```
//!
//! **With `std`**, a [`Builder`] takes any closure, paths and user names:
//!
//! ```no_run
//! # #[cfg(feature = "std")]
//! # fn main() -> Result<(), pandaemonium::StartError> {
//! let data = vec![1, 2, 3]; // captured before fork
//! let launched = pandaemonium::Builder::new()
//!     .pid_file("/tmp/sum.pid")
//!     .stdout("/tmp/sum.log")
//!     .start(move || {
//!         println!("sum = {}", data.iter().sum::<i32>());
//!         0
//!     })?;
//! println!("pid {}", launched.pid);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "std"))]
//! # fn main() {}
//! ```
//!
//! # Errors
//!
//! One type, [`Error`]: the stage, an [`ErrorKind`], the [`Errno`] and the offending
//! value, shown as `stage 5 (working directory): chdir /nonexistent: No such file or
//! directory (os error 2)`. Bad configuration is refused by the setters, before
//! anything forks.
//!
//! Whenever `start()` fails, nothing is left behind:
//!
//! - a stage that fails in the daemon: the daemon removes its pid file, reports
//!   through the channel and exits before `start()` returns;
//! - a daemon that dies during set-up (killed, `abort`, a panic with `panic = "abort"`):
//!   [`ErrorKind::DaemonDied`], and the original process removes the pid file it left,
//!   under its lock and only if the file still names that daemon;
//! - a daemon that does not finish in time ([`Config::start_timeout`]):
//!   [`ErrorKind::Timeout`] naming the stage it was in; the original process kills it
//!   and removes its pid file the same way;
//! - the original process going away (killed, Ctrl-C) does not end a daemon that is
//!   setting up: until its channel closes, the daemon ignores `SIGPIPE`, so what it
//!   writes to a vanished launcher fails with `EPIPE` and is dropped; it finishes its
//!   stages and runs, with its pid file sealed and locked. `SIGPIPE` gets the signal
//!   map's disposition once the channel is closed.
//!
//! # Threads
//!
//! Forking a multi-threaded process leaves every lock another thread held locked
//! forever in the child. Stage 1 therefore counts threads (`/proc/self/task`,
//! `/proc/self/stat`) and refuses with [`ErrorKind::Threaded`]; where `/proc` is not mounted it can't count and
//! refuses with [`ErrorKind::ThreadsUnknown`]. [`Daemon::allow_threads`] (`unsafe`)
//! opts out, with the contract its `# Safety` section gives.
//!
//! # Async-signal-safety
//!
//! Between fork and `run()` the daemon allocates and frees nothing and calls only
//! async-signal-safe functions. Every path, name and group list is prepared before
//! fork (users and groups are resolved by the [`Config`] setters). In that window:
//!
//! - from POSIX's list of async-signal-safe functions (POSIX.1-2017, 2.4.3): `fork`
//!   (with musl `_Fork`, which POSIX.1-2024 lists in its place; no atfork handlers
//!   run), `_exit`, `setsid`, `dup2`, `fcntl`, `close`, `read`, `write`, `ftruncate`, `fchmod`,
//!   `fstat`, `lstat`, `unlink`, `chdir`, `umask`, `geteuid`,
//!   `getuid`, `getgid`, `sigprocmask`, `sigaction`, `sigemptyset`, `sigaddset`, `kill`,
//!   `getpid`, `getppid`, `clock_gettime`;
//! - not in that list, but on Linux (glibc and musl) each a single system call with no
//!   user-space state, so assumed safe: `pread`, `pwrite`,
//!   `nanosleep`, `prctl`, `flock`, and `syscall(3)`, through which the
//!   crate makes its `openat` (POSIX lists `openat`; the raw call skips musl's extra
//!   `fcntl` and passes `O_LARGEFILE`), `close_range`, `getdents64`, `prlimit64` (for
//!   `RLIMIT_CORE` and `RLIMIT_NOFILE`) and `setuid`, `setgid`, `setgroups` calls (the
//!   `32` ones on i386 and ARM). As raw calls those change the calling thread's
//!   credentials alone, as the kernel does (libc's wrappers signal every other thread):
//!   after fork there is no other, and without a fork stage 3 first counts them
//!   ([`ErrorKind::Threaded`]).
//! - `SIGRTMAX()` returns a constant (musl) or a value set at start-up (glibc).
//!
//! Before fork, and only there: `pipe2`, `stat`/`read` of `/proc/self` (thread count),
//! `getpwnam_r`, `getpwuid_r`, `getgrnam_r`, `getgrouplist` (the [`ProcessIds`]
//! constructors), `open` of the working directory (for relative stage-9 paths).
//!
//! # Service starters and supervisors
//!
//! A program that starts another one (the `pandaemonium` tool is built this way, on
//! the public API alone) finds it before fork with [`Program::find`], resolves
//! `--user`-style names with [`ProcessIds::from_files`] (no libc user database linked),
//! and in `run()` either becomes it ([`Program::exec`], with
//! [`PidLockFile::keep_across_exec`] so that it holds the pid file's lock) or stays as
//! its supervisor: [`Program::spawn`], [`Exit::reap_any`], [`rewrite_pid_file`] with the
//! program's pid and its own, and the signal calls of [`os`]. [`MainArgs`] wraps a C
//! `main`'s arguments for `#![no_main]` programs; [`Line`] and [`decimal`] print
//! messages and numbers without `core::fmt`.
//!
//! # Privileges
//!
//! Stage 3 switches to the user of [`Config::process_ids`] / [`Config::ids`] (names
//! resolved before fork: [`ProcessIds::user`], [`ProcessIds::from_files`]) and can keep
//! chosen [`Capabilities`] across the switch ([`Config::keep_capabilities`]: permitted,
//! effective, inheritable and ambient, so that a program it `exec`s keeps them too),
//! limit the bounding set to them ([`Config::limit_bounding_set`]), set
//! `PR_SET_NO_NEW_PRIVS` ([`Config::no_new_privileges`]), and first enter a chroot
//! ([`Config::chroot_directory`]; later stages' paths are the jail's). A router daemon
//! that binds port 53 as `nobody`:
//!
//! ```no_run
//! use pandaemonium::{target, Capabilities, Capability, Daemon, ProcessIds};
//!
//! let mut daemon = Daemon::new(target(|()| 0, ()));
//! daemon
//!     .ids(ProcessIds::user(c"nobody")?)
//!     .keep_capabilities(Capabilities::EMPTY.with(Capability::NET_BIND_SERVICE))
//!     .no_new_privileges(true);
//! daemon.start()?;
//! # Ok::<(), pandaemonium::Error>(())
//! ```
//!
//! # Readiness and supervisors
//!
//! [`ready()`], called in `run()` once the daemon serves, tells every supervisor
//! present: the original process when it waits ([`Config::wait_ready`]: `start()`
//! returns only then, or fails with how the daemon ended before, [`ErrorKind::NotReady`],
//! or after the timeout with the daemon killed), systemd's `NOTIFY_SOCKET`, and an
//! s6-style readiness descriptor ([`Config::ready_fd`]). [`notify`] sends the other
//! sd_notify(3) messages (`STATUS=`, `RELOADING=1` with `MONOTONIC_USEC`, watchdog pings,
//! `ERRNO=`, `EXTEND_TIMEOUT_USEC=`) from fixed buffers; the default `SIGTERM` handler
//! sends `STOPPING=1`. [`listen`] takes socket activation's descriptors before fork
//! ([`Config::listen_fds`] keeps them through stage 8). With [`Detach::Auto`], stage 1
//! does not fork under a supervisor that watches the process it started
//! ([`Config::supervisor`]).
//!
//! # I/O safety: stage 8 closes what is not kept
//!
//! Stage 8 closes every descriptor above 2 that is not kept ([`Config::inherit_file`],
//! stage-9 targets, the pid file, the report channel, socket activation's
//! ([`Config::listen_fds`]) and the readiness descriptor ([`Config::ready_fd`])). A `File`, socket or other owned
//! descriptor that lives on across stage 8, in the value your [`Run`] holds or in your
//! code after [`Daemon::activate`] / [`Daemon::stage`] returned in the daemon, then owns
//! a closed number: its reads fail with `EBADF`, or, once something else opened that
//! number, go to the wrong file, and std aborts on `EBADF` when it drops it ("IO Safety
//! violation"). Pass every descriptor the daemon keeps to `inherit_file` (with `std`,
//! [`Builder::inherit_file`], or [`Builder::start_with`], which keeps a listener and
//! hands it to the closure) before starting, or open it after the stages.
//!
//! # Signals in a server loop
//!
//! [`Action::Interrupt`] installs a handler without `SA_RESTART` (a blocking
//! `accept(2)` returns `EINTR`); [`Action::Pipe`] routes a signal into a non-blocking
//! self-pipe that stage 7 makes, read with [`SignalPipe`] (poll it beside the
//! daemon's sockets with [`SignalPipe::wait`]); [`reopen_stdio`] reopens stage 9's
//! files in place after log rotation ([`Config::reopenable_stdio`], or
//! [`Action::ReopenStdio`] on a signal). `examples/echo_server.rs` puts them together.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `std` | yes | [`Builder`] (any closure, `Path`s, users and groups by name), owned [`Launched`] / [`StartError`], `From<Error> for std::io::Error`, [`PidFileGuard`], [`PidLockFile::at`] |
//! | `tool` | yes | nothing in the library: the `pandaemonium` tool's optional parts, `tool-readiness` (`start --notify`, `--ready-fd`), `tool-privileges` (`--chroot`, `--keep-cap`, `--no-new-privs`), `tool-log` (`--log`, `--syslog`) |
//!
//! With `default-features = false` the crate is `#![no_std]`, depending on `libc` and
//! `heapless` only, and every item above except the `std` row is there unchanged.
//! (The tool without std: `--no-default-features --features tool`.)
//! Whatever `std` adds is prepared before fork: the daemon still allocates nothing
//! until your closure runs. Linux only. MSRV: Rust 1.87 (heapless 0.9's).
//!
//! [pandaemonium]: https://pypi.org/project/pandaemonium/
// Without std, the std items named above don't exist: point their links at the table.
#![cfg_attr(
    not(feature = "std"),
    doc = "[`Builder`]: #features\n[`Launched`]: #features\n[`StartError`]: #features\n[`PidFileGuard`]: #features\n[`PidLockFile::at`]: #features\n[`Builder::inherit_file`]: #features\n[`Builder::start_with`]: #features"
)]
#![no_std]
#![deny(unsafe_code, missing_docs, clippy::undocumented_unsafe_blocks)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "std")]
extern crate std;

// A no_std program on musl must link the C library itself: the libc crate asks for it
// only as a dependency of std. Harmless where something else links it too.
#[cfg(all(target_env = "musl", not(feature = "std")))]
#[link(name = "c")]
extern "C" {}

#[cfg(not(target_os = "linux"))]
compile_error!("pandaemonium supports Linux only");

mod caps;
mod cleanup;
mod config;
mod daemon;
pub mod decimal;
mod detach;
mod errno;
mod error;
mod fds;
mod holders;
mod ids;
mod line;
pub mod listen;
pub mod notify;
mod notify_listen;
pub mod os;
mod out;
mod pidfile;
mod privileges;
mod process;
mod program;
mod ready;
mod report;
mod run;
mod signal_pipe;
mod signals;
mod stage;
mod stages;
mod stdio;
mod sys;
pub mod syslog;
#[cfg(test)]
mod test_dir;
#[cfg(test)]
mod test_fds;
mod user_files;
#[cfg(feature = "std")]
mod with_std;

pub use caps::{Capabilities, Capability};
pub use cleanup::{exit, remove_pid_file, rewrite_pid_file, PID_LINES_CAPACITY};
pub use config::{Config, Detach};
pub use daemon::{Activated, Daemon, Side, Started};
pub use errno::Errno;
pub use error::{Error, ErrorKind, DETAIL_CAPACITY};
pub use fds::{Method as CloseMethod, INHERIT_CAPACITY};
pub use holders::{Holders, HOLDERS_CAPACITY};
pub use ids::{ProcessIds, GROUPS_CAPACITY};
pub use line::{Line, LINE_CAPACITY};
pub use pidfile::{PidLockFile, PID_PATH_CAPACITY};
pub use program::{Argv, Envp, Exit, MainArgs, Program, PATH_CAPACITY};
pub use ready::{ready, ReadySource, Supervisor};
pub use report::{Capture, Stream, CAPTURE_CAPACITY};
pub use run::{target, Run, Target};
pub use signal_pipe::{Pending, SignalPipe, Woken};
pub use signals::{Action, Signal, SIGNAL_MAP_CAPACITY};
pub use stage::Stage;
pub use stages::Stages;
pub use stdio::{reopen_stdio, Stdio, REOPEN_CAPACITY};
#[cfg(feature = "std")]
pub use with_std::{Builder, Launched, PidFileGuard, Redirect, SignalSpec, StartError, User};

/// The README's code compiles (`cargo test --doc`).
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
