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
//! | 2 | prevent core dumps | `RLIMIT_CORE` 0/0 | [`Config::prevent_core`] |
//! | 3 | uid, gid, supplementary groups | unchanged | [`Config::process_ids`], [`Config::ids`] |
//! | 4 | umask | `0o077` | [`Config::umask`] |
//! | 5 | working directory | `/` | [`Config::working_directory`] |
//! | 6 | pid file: acquire, seal | none | [`Config::pid_file`], [`Config::pid_lock_file`] |
//! | 7 | signals: mask cleared, dispositions reset, then the map | `SIGTERM` exits cleanly; `SIGTSTP`/`SIGTTIN`/`SIGTTOU` ignored | [`Config::signal`] |
//! | 8 | close inherited descriptors | all above 2 | [`Config::inherit_file`] |
//! | 9 | redirect stdin/stdout/stderr | `/dev/null` when detached | [`Config::stdin`], [`Config::stdout`], [`Config::stderr`] |
//!
//! Run some stages, do your own steps, then the rest: [`Daemon::stage`] (the seed's
//! `stage4()`), then [`Daemon::start`] or [`Daemon::activate`]. Override any stage in
//! your [`Run`] impl; the driver keeps the order and refuses a stage run twice or in
//! the original process ([`ErrorKind::StageOrder`], pandaemonium's `check_stage`).
//!
//! # Errors
//!
//! One type, [`Error`]: the stage, an [`ErrorKind`], the [`Errno`] and the offending
//! value, shown as `stage 5 (working directory): chdir /nonexistent: No such file or
//! directory (os error 2)`. Bad configuration is refused by the setters, before
//! anything forks. When a stage fails in the daemon, the daemon removes its pid file,
//! reports through the channel and exits: nothing is left behind.
//!
//! # Threads
//!
//! Forking a multi-threaded process leaves every lock another thread held locked
//! forever in the child. Stage 1 therefore counts threads (`/proc/self/stat`) and
//! refuses with [`ErrorKind::Threaded`]; where `/proc` is not mounted it can't count and
//! refuses with [`ErrorKind::ThreadsUnknown`]. [`Daemon::allow_threads`] (`unsafe`)
//! opts out, with the contract its `# Safety` section gives.
//!
//! # Async-signal-safety
//!
//! Between fork and `run()` the daemon allocates nothing and calls only
//! async-signal-safe functions. Every path, name and group list is prepared before
//! fork (users and groups are resolved by the [`Config`] setters). The POSIX functions
//! called in that window: `fork`, `setsid`, `_exit`, `dup2`, `fcntl`, `open`, `close`,
//! `read`, `write`, `pread`, `pwrite`, `ftruncate`, `fchmod`, `fstat`, `lstat`,
//! `unlink`, `chdir`, `umask`, `setrlimit`, `getrlimit`, `setgid`, `setuid`,
//! `sigprocmask`, `sigaction`, `kill`, `getpid`, `getppid`, `clock_gettime`,
//! `nanosleep`. Not in POSIX's list but single system calls without user-space state,
//! so assumed safe: `setgroups`, `pipe2`, and the raw `close_range` and `getdents64`
//! system calls. `sigemptyset`/`sigaddset` only write a local set.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `std` | yes | ergonomic wrappers (in progress); the core never needs it |
//!
//! With `default-features = false` the crate is `#![no_std]`, depending on `libc` and
//! `heapless` only. Linux only.
//!
//! [pandaemonium]: https://pypi.org/project/pandaemonium/
#![no_std]
#![deny(unsafe_code, missing_docs, clippy::undocumented_unsafe_blocks)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

#[cfg(not(target_os = "linux"))]
compile_error!("pandaemonium supports Linux only");

mod cleanup;
mod config;
mod daemon;
mod decimal;
mod detach;
mod errno;
mod error;
mod fds;
mod ids;
mod out;
mod pidfile;
mod process;
mod report;
mod run;
mod signals;
mod stage;
mod stages;
mod stdio;
mod sys;
#[cfg(feature = "std")]
mod with_std;

pub use cleanup::{exit, remove_pid_file};
pub use config::{Config, Detach};
pub use daemon::{Activated, Daemon, Side, Started};
pub use errno::Errno;
pub use error::{Error, ErrorKind, DETAIL_CAPACITY};
pub use fds::{Method as CloseMethod, INHERIT_CAPACITY};
pub use ids::{ProcessIds, GROUPS_CAPACITY};
pub use pidfile::{PidLockFile, PID_PATH_CAPACITY};
pub use report::{Capture, Stream, CAPTURE_CAPACITY};
pub use run::{target, Run, Target};
pub use signals::{Action, Signal, SIGNAL_MAP_CAPACITY};
pub use stage::Stage;
pub use stages::Stages;
pub use stdio::Stdio;
#[cfg(feature = "std")]
pub use with_std::{Builder, Launched, PidFileGuard, Redirect, SignalSpec, StartError, User};
