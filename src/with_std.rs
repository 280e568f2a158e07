//! The `std` layer: a [`Builder`] that feels like `std::thread::Builder` and
//! `std::process::Command`, owned paths and names, `String` output, `io::Error`.
//!
//! Everything it adds is prepared before fork: paths become C strings, users and
//! groups are resolved, signal names parsed; then the no_std core runs exactly as
//! without std, allocating nothing between fork and the closure.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use crate::{
    target, Action, Activated, Capabilities, Capability, Capture, Config, Daemon, Detach, Error,
    ErrorKind, PidLockFile, ProcessIds, Signal, Stage, Stdio,
};

/// A user looked up by a setter.
#[derive(Clone, Debug)]
enum Resolved<T> {
    Ok(T),
    /// A uid with no user entry: fine with an explicit group, else this error.
    BareUid(u32, Error),
    Err(Error),
}

/// A user, by name or by uid.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub enum User {
    /// A user name, looked up before fork.
    Name(String),
    /// A numeric uid.
    Id(u32),
}

impl From<&str> for User {
    fn from(name: &str) -> User {
        User::Name(name.to_string())
    }
}

impl From<String> for User {
    fn from(name: String) -> User {
        User::Name(name)
    }
}

impl From<u32> for User {
    fn from(uid: u32) -> User {
        User::Id(uid)
    }
}

/// Where a standard stream goes in stage 9 (owned; the core's [`Stdio`] borrows).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub enum Redirect {
    /// `/dev/null`.
    Null,
    /// A file: read for stdin; appended to (created 0666 less the umask) for the others.
    Path(PathBuf),
    /// A copy of this open descriptor.
    Fd(RawFd),
}

/// A signal by value, name (`"HUP"`, `"SIGHUP"`) or number, parsed before fork.
#[derive(Clone, Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub enum SignalSpec {
    /// A parsed signal.
    Signal(Signal),
    /// A name or number, parsed by [`Signal::parse`].
    Text(String),
}

impl From<Signal> for SignalSpec {
    fn from(sig: Signal) -> SignalSpec {
        SignalSpec::Signal(sig)
    }
}

impl From<&str> for SignalSpec {
    fn from(text: &str) -> SignalSpec {
        SignalSpec::Text(text.to_string())
    }
}

impl From<i32> for SignalSpec {
    fn from(n: i32) -> SignalSpec {
        SignalSpec::Text(n.to_string())
    }
}

/// Builds and starts a daemon from a closure, like `std::thread::Builder::spawn`.
///
/// Setters never fail: each applies its value at once, and the first value refused is
/// reported by [`start`](Builder::start) / [`activate`](Builder::activate), before
/// anything forks. A program links the code of the setters it calls, no more (a
/// builder that never names a user does not link the user database).
///
/// ```no_run
/// use pandaemonium::Builder;
///
/// let greeting = String::from("hello");          // captured, prepared before fork
/// let started = Builder::new()
///     .pid_file("/tmp/hello.pid")
///     .stdout("/tmp/hello.log")
///     .user("nobody")                             // resolved before fork
///     .start(move || {
///         println!("{greeting} from the daemon");
///         0
///     })?;
/// println!("daemon pid {}, set-up output {:?}", started.pid, started.output);
/// # Ok::<(), pandaemonium::StartError>(())
/// ```
#[derive(Debug, Default)]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub struct Builder {
    // Each setter applies its value to the core configuration at once (or keeps the
    // C string the configuration will borrow), so `start` has little left to do and a
    // program links only the code of the setters it calls.
    config: Config<'static>,
    working_directory: Option<CString>,
    chroot_directory: Option<CString>,
    stdio_paths: [Option<CString>; 3],
    // Names are looked up in the setters, so a program that never names a user or
    // group does not link the user database (NSS, stdio, nscd) at all.
    user: Option<Resolved<ProcessIds>>,
    group: Option<Result<u32, Error>>,
    groups: Option<Vec<u32>>,
    /// Set by the user and group setters: combines what they resolved.
    ids: Option<CombineIds>,
    /// The first value a setter refused, reported by `start`.
    refused: Option<Error>,
    allow_threads: bool,
}

/// The daemon is running: what the original process learns from [`Builder::start`]
/// (the owned counterpart of the core's [`Started`](crate::Started)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
#[non_exhaustive]
pub struct Launched {
    /// The daemon's process id.
    pub pid: u32,
    /// What the daemon wrote to stdout during set-up (the first
    /// [`CAPTURE_CAPACITY`](crate::CAPTURE_CAPACITY) bytes).
    pub output: String,
    /// What the daemon wrote to stderr during set-up (the first
    /// [`CAPTURE_CAPACITY`](crate::CAPTURE_CAPACITY) bytes).
    pub error: String,
    /// The daemon wrote more to stdout than `output` holds.
    pub output_truncated: bool,
    /// The daemon wrote more to stderr than `error` holds.
    pub error_truncated: bool,
}

impl Launched {
    fn from_started(s: &crate::Started<'_>) -> Launched {
        Launched {
            pid: s.pid,
            output: lossy(s.output.as_bytes()),
            error: lossy(s.error.as_bytes()),
            output_truncated: s.output.is_truncated(),
            error_truncated: s.error.is_truncated(),
        }
    }
}

/// Starting failed: the core [`Error`] (stage, errno, value) and what the daemon wrote
/// during set-up. Its `Display` is the error, then the daemon's stderr if any.
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
#[derive(Clone, Debug)]
pub struct StartError(std::boxed::Box<Failure>);

#[derive(Clone, Debug)]
struct Failure {
    error: Error,
    output: String,
    stderr: String,
    output_truncated: bool,
    stderr_truncated: bool,
}

impl StartError {
    #[cold]
    #[inline(never)]
    fn new(error: Error, output: &Capture, stderr: &Capture) -> StartError {
        StartError(std::boxed::Box::new(Failure {
            error,
            output: lossy(output.as_bytes()),
            stderr: lossy(stderr.as_bytes()),
            output_truncated: output.is_truncated(),
            stderr_truncated: stderr.is_truncated(),
        }))
    }

    /// The failure: stage, kind, errno and value.
    pub fn error(&self) -> &Error {
        &self.0.error
    }

    /// What the daemon wrote to stdout during set-up.
    pub fn output(&self) -> &str {
        &self.0.output
    }

    /// What the daemon wrote to stderr during set-up (e.g. a panic message).
    pub fn stderr(&self) -> &str {
        &self.0.stderr
    }

    /// The daemon wrote more to stdout than [`output`](Self::output) holds
    /// ([`CAPTURE_CAPACITY`](crate::CAPTURE_CAPACITY) bytes).
    pub fn output_truncated(&self) -> bool {
        self.0.output_truncated
    }

    /// The daemon wrote more to stderr than [`stderr`](Self::stderr) holds.
    pub fn stderr_truncated(&self) -> bool {
        self.0.stderr_truncated
    }
}

impl From<Error> for StartError {
    #[cold]
    #[inline(never)]
    fn from(error: Error) -> StartError {
        StartError::new(error, &Capture::default(), &Capture::default())
    }
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0.error)?;
        let stderr = self.0.stderr.trim_end_matches(['\n', '\r', ' ', '\t']);
        if !stderr.is_empty() {
            write!(f, "\n{stderr}")?;
        }
        if self.0.stderr_truncated {
            write!(f, "\n(cut at {} bytes)", crate::CAPTURE_CAPACITY)?;
        }
        Ok(())
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0.error)
    }
}

impl From<StartError> for io::Error {
    fn from(e: StartError) -> io::Error {
        e.0.error.into()
    }
}

impl From<Error> for io::Error {
    /// Keeps the message and the error itself (`get_ref()` downcasts to [`Error`], whose
    /// [`errno`](Error::errno) is there); the kind comes from the errno when there is one.
    fn from(e: Error) -> io::Error {
        let kind = match (e.errno(), e.kind()) {
            (Some(errno), _) => io::Error::from_raw_os_error(errno.raw()).kind(),
            (None, ErrorKind::AlreadyRunning) => io::ErrorKind::AlreadyExists,
            (None, ErrorKind::InvalidConfig | ErrorKind::Capacity) => io::ErrorKind::InvalidInput,
            (None, ErrorKind::UnknownUser | ErrorKind::UnknownGroup) => io::ErrorKind::NotFound,
            (None, ErrorKind::Threaded | ErrorKind::ThreadsUnknown) => io::ErrorKind::Unsupported,
            (None, _) => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// After `run()` returns in a daemon: what `print!` left in std's stdout buffer is
/// written before the daemon `_exit`s (which flushes nothing).
pub(crate) fn flush_stdout() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

impl Error {
    /// The OS error number, as `std::io::Error::raw_os_error` gives it.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.errno().map(crate::Errno::raw)
    }
}

fn c_path(path: &Path, stage: Stage) -> Result<CString, Error> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        let mut e = Error::new(
            Some(stage),
            ErrorKind::InvalidConfig,
            "path holds a NUL byte: ",
        );
        e.push_detail(path.as_os_str().as_bytes());
        e
    })
}

fn c_name(name: &str, stage: Stage) -> Result<CString, Error> {
    CString::new(name).map_err(|_| {
        let mut e = Error::new(
            Some(stage),
            ErrorKind::InvalidConfig,
            "name holds a NUL byte: ",
        );
        e.push_detail(name.as_bytes());
        e
    })
}

/// [`Builder::apply_ids`], as the user and group setters leave it for `start`: a
/// program that sets no user or group does not link the code that combines them.
type CombineIds = fn(&mut Builder) -> Result<(), Error>;

/// How the core's [`target`] calls the user's closure, behind `dyn` so that the driver
/// and the configuration code are not compiled again for every closure type.
type Call<'f> = fn(&'f mut dyn FnMut() -> i32) -> i32;

#[inline(never)]
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Builder {
    /// A builder with pandaemonium's defaults (see [`Config`]).
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Keeps the first refused value for `start` to report.
    #[inline(never)]
    fn note(&mut self, result: Result<(), Error>) {
        if let (Err(e), None) = (result, &self.refused) {
            self.refused = Some(e);
        }
    }

    /// Stage 1: whether to fork (default [`Detach::Auto`]).
    pub fn detach(mut self, detach: Detach) -> Builder {
        self.config.detach(detach);
        self
    }

    /// Stage 2: whether to turn core dumps off (default `true`).
    pub fn prevent_core(mut self, prevent: bool) -> Builder {
        self.config.prevent_core(prevent);
        self
    }

    /// Stage 3: the user to run as, by name or uid; its primary group and its
    /// supplementary groups come from the user database, looked up here, before fork
    /// (an unknown name is reported by `start`). A uid with no user entry needs a
    /// [`group`](Self::group).
    pub fn user(self, user: impl Into<User>) -> Builder {
        self.set_user(user.into())
    }

    fn set_user(mut self, user: User) -> Builder {
        let text = match user {
            User::Name(name) => name,
            User::Id(id) => id.to_string(),
        };
        self.user = Some(
            match c_name(&text, Stage::ProcessIds).and_then(|c| ProcessIds::user(&c)) {
                Ok(ids) => Resolved::Ok(ids),
                Err(e) => match text.parse::<u32>() {
                    Ok(uid) if e.kind() == ErrorKind::UnknownUser => Resolved::BareUid(uid, e),
                    _ => Resolved::Err(e),
                },
            },
        );
        self.ids = Some(Builder::apply_ids);
        self
    }

    /// Stage 3: the primary group, by name or gid, instead of the user's (looked up
    /// here, before fork).
    pub fn group(self, group: impl Into<User>) -> Builder {
        self.set_group(group.into())
    }

    fn set_group(mut self, group: User) -> Builder {
        self.group = Some(match group {
            User::Id(gid) => Ok(gid),
            User::Name(name) => c_name(&name, Stage::ProcessIds)
                .and_then(|c| ProcessIds::from_parts(0, 0, None)?.with_group(&c))
                .map(|ids| ids.gid()),
        });
        self.ids = Some(Builder::apply_ids);
        self
    }

    /// Stage 3: the supplementary groups, instead of the user's.
    pub fn groups(mut self, groups: &[u32]) -> Builder {
        self.groups = Some(groups.to_vec());
        self.ids = Some(Builder::apply_ids);
        self
    }

    /// Stage 3, first: chroot into this absolute directory (see
    /// [`Config::chroot_directory`]: the paths of stages 5, 6 and 9 are the jail's).
    pub fn chroot_directory(self, dir: impl AsRef<Path>) -> Builder {
        self.set_chroot_directory(dir.as_ref())
    }

    fn set_chroot_directory(mut self, dir: &Path) -> Builder {
        let result = c_path(dir, Stage::ProcessIds).and_then(|c| {
            crate::config::check_chroot_directory(&c)?;
            self.chroot_directory = Some(c);
            Ok(())
        });
        self.note(result);
        self
    }

    /// Stage 3: keep this capability across the user switch, by name
    /// (`NET_BIND_SERVICE`, `cap_net_bind_service`; see [`Capability::parse`] and
    /// [`Config::keep_capabilities`]); repeat for more.
    ///
    /// ```no_run
    /// use pandaemonium::Builder;
    ///
    /// Builder::new()
    ///     .user("nobody")
    ///     .keep_capability("NET_BIND_SERVICE")
    ///     .start(|| {
    ///         let _listener = std::net::TcpListener::bind("0.0.0.0:53");
    ///         0
    ///     })?;
    /// # Ok::<(), pandaemonium::StartError>(())
    /// ```
    pub fn keep_capability(mut self, name: &str) -> Builder {
        let result = match Capability::parse(name.as_bytes()) {
            Some(cap) => {
                let caps = self
                    .config
                    .privileges
                    .map_or(Capabilities::EMPTY, |p| p.keep);
                self.config.keep_capabilities(caps.with(cap));
                Ok(())
            }
            None => {
                let mut e = Error::new(
                    Some(Stage::ProcessIds),
                    ErrorKind::InvalidConfig,
                    "unknown capability: ",
                );
                e.push_detail(name.as_bytes());
                Err(e)
            }
        };
        self.note(result);
        self
    }

    /// Stage 3: keep exactly these capabilities ([`Config::keep_capabilities`]).
    pub fn keep_capabilities(mut self, caps: Capabilities) -> Builder {
        self.config.keep_capabilities(caps);
        self
    }

    /// Stage 3: limit the bounding set to the kept capabilities
    /// ([`Config::limit_bounding_set`]).
    pub fn limit_bounding_set(mut self, limit: bool) -> Builder {
        self.config.limit_bounding_set(limit);
        self
    }

    /// Stage 3, last: `PR_SET_NO_NEW_PRIVS` ([`Config::no_new_privileges`]).
    pub fn no_new_privileges(mut self, on: bool) -> Builder {
        self.config.no_new_privileges(on);
        self
    }

    /// Stage 4: the umask (default `0o077`).
    pub fn umask(mut self, mask: u32) -> Builder {
        self.config.umask(mask);
        self
    }

    /// Stage 5: the working directory (default `/`).
    pub fn working_directory(self, dir: impl AsRef<Path>) -> Builder {
        self.set_working_directory(dir.as_ref())
    }

    fn set_working_directory(mut self, dir: &Path) -> Builder {
        let result = c_path(dir, Stage::WorkingDirectory).and_then(|c| {
            crate::config::check_working_directory(&c)?;
            self.working_directory = Some(c);
            Ok(())
        });
        self.note(result);
        self
    }

    /// Stage 6: a pid file at this absolute path, acquired and sealed by the daemon.
    pub fn pid_file(self, path: impl AsRef<Path>) -> Builder {
        self.set_pid_file(path.as_ref())
    }

    fn set_pid_file(mut self, path: &Path) -> Builder {
        let result = c_path(path, Stage::PidFile).and_then(|c| {
            self.config.pid_file(&c)?;
            Ok(())
        });
        self.note(result);
        self
    }

    /// Stage 6: this pid file, e.g. one already acquired in the foreground.
    pub fn pid_lock_file(mut self, pid_file: PidLockFile) -> Builder {
        self.config.pid_lock_file(pid_file);
        self
    }

    /// Stage 7: what `sig` (a [`Signal`], a name like `"HUP"` or a number) does.
    pub fn signal(self, sig: impl Into<SignalSpec>, action: Action) -> Builder {
        self.set_signal(sig.into(), action)
    }

    fn set_signal(mut self, sig: SignalSpec, action: Action) -> Builder {
        let result = match sig {
            SignalSpec::Signal(s) => Ok(s),
            SignalSpec::Text(t) => Signal::parse(&t),
        }
        .and_then(|sig| {
            self.config.signal(sig, action)?;
            Ok(())
        });
        self.note(result);
        self
    }

    /// How long `start` waits for the daemon to finish its stages; then the daemon is
    /// killed, what it left is removed, and `start` fails naming the stage it was in
    /// (see [`Config::start_timeout`]).
    pub fn start_timeout(mut self, timeout: core::time::Duration) -> Builder {
        self.config.start_timeout(timeout);
        self
    }

    /// Stage 8: keep this descriptor open in the daemon. Anything the closure captures
    /// that owns a descriptor (a listener, a `File`) must be passed here: stage 8 closes
    /// every other descriptor above 2.
    pub fn inherit_file(self, fd: &impl AsRawFd) -> Builder {
        self.set_inherit_file(fd.as_raw_fd())
    }

    fn set_inherit_file(mut self, fd: RawFd) -> Builder {
        let result = self.config.inherit_file(fd).map(drop);
        self.note(result);
        self
    }

    /// Stage 9: stdin from this file. A relative path is the launcher's working
    /// directory's, as for [`stdout`](Self::stdout).
    pub fn stdin(self, path: impl AsRef<Path>) -> Builder {
        self.set_stdio_path(0, path.as_ref())
    }

    /// Stage 9: stdout appended to this file. A relative path is resolved against the
    /// launcher's working directory (where `start` is called), not the daemon's.
    pub fn stdout(self, path: impl AsRef<Path>) -> Builder {
        self.set_stdio_path(1, path.as_ref())
    }

    /// Stage 9: stderr appended to this file.
    pub fn stderr(self, path: impl AsRef<Path>) -> Builder {
        self.set_stdio_path(2, path.as_ref())
    }

    fn set_stdio_path(mut self, n: usize, path: &Path) -> Builder {
        let result = c_path(path, Stage::Redirect).and_then(|c| {
            crate::config::check_stdio(Stdio::Path(&c))?;
            self.config.stdio[n] = None;
            self.stdio_paths[n] = Some(c);
            Ok(())
        });
        self.note(result);
        self
    }

    /// Stage 9: where stream `n` (0, 1 or 2) goes, as a [`Redirect`].
    pub fn redirect(mut self, n: usize, to: Redirect) -> Builder {
        if n > 2 {
            let mut e = Error::new(
                Some(Stage::Redirect),
                ErrorKind::InvalidConfig,
                "standard stream number must be 0, 1 or 2: ",
            );
            e.push_detail(n.to_string().as_bytes());
            self.note(Err(e));
            return self;
        }
        let result = match to {
            Redirect::Path(p) => return self.set_stdio_path(n, &p),
            Redirect::Null => self.config.set_stdio(n, Stdio::Null),
            Redirect::Fd(fd) => self.config.set_stdio(n, Stdio::Fd(fd)),
        }
        .map(drop);
        self.stdio_paths[n] = None;
        self.note(result);
        self
    }

    /// Lets stage 1 fork a multi-threaded process; see [`Daemon::allow_threads`].
    ///
    /// # Safety
    ///
    /// As [`Daemon::allow_threads`]: until it execs or exits, the daemon's closure must
    /// only call async-signal-safe functions and take no lock another thread may hold
    /// (no allocation, no `println!`).
    #[allow(unsafe_code)]
    pub unsafe fn allow_threads(mut self) -> Builder {
        self.allow_threads = true;
        self
    }

    /// Combines what the user and group setters resolved into the configuration; no
    /// lookups here.
    fn apply_ids(&mut self) -> Result<(), Error> {
        if let Some(ids) = self.ids()? {
            self.config.ids(ids);
        }
        Ok(())
    }

    fn ids(&self) -> Result<Option<ProcessIds>, Error> {
        let gid = self.group.clone().transpose()?;
        let base = match (&self.user, gid) {
            (Some(Resolved::Ok(ids)), _) => ids.clone(),
            (Some(Resolved::BareUid(uid, _)), Some(gid)) => {
                ProcessIds::from_parts(*uid, gid, None)?
            }
            (Some(Resolved::BareUid(_, e)) | Some(Resolved::Err(e)), _) => return Err(e.clone()),
            (None, _) if self.group.is_some() || self.groups.is_some() => {
                let (uid, _, gid) = crate::sys::ids();
                ProcessIds::from_parts(uid, gid, None)?
            }
            (None, _) => return Ok(None),
        };
        let mut ids = match gid {
            Some(gid) => base.with_gid(gid)?,
            None => base,
        };
        if let Some(groups) = &self.groups {
            ids = ids.with_groups(groups)?;
        }
        Ok(Some(ids))
    }

    /// Runs `f` as a daemon: the nine stages, then `f()` in the daemon, whose return
    /// value is its exit status (the pid file is removed first).
    ///
    /// Returns in the original process once the daemon finished stage 9. With
    /// [`Detach::Never`] (or under init/inetd) this process becomes the daemon and
    /// `start` returns only on failure.
    ///
    /// # Errors
    ///
    /// A [`StartError`]: a value a setter refused (before any fork) or the stage that
    /// failed.
    pub fn start<F: FnOnce() -> i32>(self, f: F) -> Result<Launched, StartError> {
        self.start_boxed(f)
    }

    /// As [`start`](Self::start), for a server that binds before fork: `kept` (a
    /// `TcpListener`, a `UnixDatagram`, any owned descriptor) is kept open through
    /// stage 8 and handed to `f` in the daemon. Binding first makes a port that is in
    /// use an error in the terminal, before anything forks, and lets a daemon that
    /// drops to `nobody` serve a port below 1024. (A descriptor the closure captures
    /// without being kept is closed by stage 8: its first `accept` fails with `EBADF`,
    /// and std aborts when it drops it.) The original process drops its copy.
    ///
    /// ```no_run
    /// use std::io::Write;
    /// use std::net::TcpListener;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:7000")?;
    /// pandaemonium::Builder::new().start_with(listener, |listener: TcpListener| {
    ///     for mut client in listener.incoming().flatten() {
    ///         let _ = client.write_all(b"hello\n");
    ///     }
    ///     0
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn start_with<T: AsFd, F: FnOnce(T) -> i32>(
        self,
        kept: T,
        f: F,
    ) -> Result<Launched, StartError> {
        let fd = kept.as_fd().as_raw_fd();
        self.set_inherit_file(fd).start_boxed(move || f(kept))
    }

    /// Stage 9 keeps its paths so that [`reopen_stdio`](crate::reopen_stdio) can
    /// reopen them ([`Config::reopenable_stdio`]): log rotation.
    pub fn reopenable_stdio(mut self, on: bool) -> Builder {
        self.config.reopenable_stdio(on);
        self
    }

    fn start_boxed<F: FnOnce() -> i32>(self, f: F) -> Result<Launched, StartError> {
        let mut f = Some(f);
        self.launch(&mut move || f.take().map_or(1, |f| f()))
    }

    /// `start` past the closure's type: compiled once, not once per closure.
    fn launch(self, f: &mut dyn FnMut() -> i32) -> Result<Launched, StartError> {
        self.with_daemon(f, |daemon| match daemon.start() {
            Ok(s) => Ok(Launched::from_started(&s)),
            Err(error) => Err(StartError::new(error, daemon.output(), daemon.error())),
        })
    }

    /// Runs the nine stages and returns inside the daemon (the seed's foreground-or-
    /// daemon pattern); the original process prints the daemon's set-up output and
    /// exits 0, or 1 on failure. Nothing is allocated or freed in the daemon on the way
    /// (the builder's C strings are kept for the daemon's life).
    ///
    /// Stage 8 has closed every descriptor not kept: a `File` or socket opened before
    /// this call and used after it must have been passed to
    /// [`inherit_file`](Self::inherit_file).
    ///
    /// # Errors
    ///
    /// A value a setter refused; failures before detaching, or in a daemon that did not
    /// detach.
    pub fn activate(self) -> Result<Activated, StartError> {
        self.with_daemon(&mut || 0, |daemon| {
            daemon.activate().map_err(StartError::from)
        })
    }

    /// Completes the configuration with what borrows from the builder, builds the core
    /// daemon, hands it to `go`.
    fn with_daemon<'f, T>(
        mut self,
        f: &'f mut dyn FnMut() -> i32,
        go: impl FnOnce(
            &mut Daemon<'_, crate::Target<Call<'f>, &'f mut dyn FnMut() -> i32>>,
        ) -> Result<T, StartError>,
    ) -> Result<T, StartError> {
        if let Some(e) = self.refused {
            return Err(e.into());
        }
        if let Some(apply) = self.ids {
            apply(&mut self)?;
        }
        let Builder {
            mut config,
            working_directory,
            chroot_directory,
            stdio_paths,
            allow_threads,
            user,
            group,
            groups,
            ids: _,
            refused: _,
        } = self;
        // Whatever holds heap memory and is not needed any more goes now, before fork.
        drop((user, group, groups));
        // Checked by the setters: nothing can fail from here on.
        if let Some(dir) = &working_directory {
            config.working_directory = dir;
        }
        if let Some(dir) = &chroot_directory {
            config.jail(dir);
        }
        for (slot, path) in config.stdio.iter_mut().zip(&stdio_paths) {
            if let Some(path) = path {
                *slot = Some(Stdio::Path(path));
            }
        }
        let call: Call<'f> = |f| f();
        let mut daemon = Daemon::with_config(target(call, f), config);
        if allow_threads {
            #[allow(unsafe_code)]
            // SAFETY: the caller of the unsafe `Builder::allow_threads` took on its contract.
            unsafe {
                daemon.allow_threads();
            }
        }
        let result = go(&mut daemon);
        if daemon.in_detached_daemon() {
            // `activate` returned inside the daemon: nothing is freed there (another
            // thread of the launcher may have held the allocator's lock at fork): the C
            // strings stay for the daemon's life. (The `Daemon` holds no heap memory.)
            core::mem::forget((working_directory, chroot_directory, stdio_paths));
        }
        result
    }
}

impl AsRawFd for crate::SignalPipe {
    fn as_raw_fd(&self) -> RawFd {
        crate::SignalPipe::as_raw_fd(*self)
    }
}

impl AsFd for crate::SignalPipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the pipe's read end is never closed once stage 7 made it: it stays
        // open for the rest of the daemon's life.
        #[allow(unsafe_code)]
        unsafe {
            BorrowedFd::borrow_raw(crate::SignalPipe::as_raw_fd(*self))
        }
    }
}

/// A pid file that is released (removed, if still ours) when dropped.
///
/// ```no_run
/// use pandaemonium::PidLockFile;
/// use std::time::Duration;
///
/// let mut guard = PidLockFile::at("/tmp/tool.pid", Duration::ZERO)?.into_guard();
/// guard.acquire(None)?;
/// guard.seal()?;
/// // ... the pid file is removed when `guard` goes out of scope
/// # Ok::<(), pandaemonium::Error>(())
/// ```
#[derive(Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub struct PidFileGuard(PidLockFile);

impl PidLockFile {
    /// A pid file at an absolute `path` (std: any `AsRef<Path>`).
    ///
    /// # Errors
    ///
    /// As [`PidLockFile::new`], and [`ErrorKind::InvalidConfig`] for a NUL byte.
    pub fn at(path: impl AsRef<Path>, timeout: core::time::Duration) -> Result<PidLockFile, Error> {
        PidLockFile::new(&c_path(path.as_ref(), Stage::PidFile)?, timeout)
    }

    /// A guard that releases this pid file when dropped.
    pub fn into_guard(self) -> PidFileGuard {
        PidFileGuard(self)
    }
}

impl core::ops::Deref for PidFileGuard {
    type Target = PidLockFile;
    fn deref(&self) -> &PidLockFile {
        &self.0
    }
}

impl core::ops::DerefMut for PidFileGuard {
    fn deref_mut(&mut self) -> &mut PidLockFile {
        &mut self.0
    }
}

impl Drop for PidFileGuard {
    /// Removes the file if it is still ours, and drops the lock.
    fn drop(&mut self) {
        let _ = self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A refused value is reported by start() before anything forks, so these run in
    // the test harness itself.
    fn refused(builder: Builder) -> Error {
        builder
            .start(|| 0)
            .expect_err("a refused value fails start()")
            .error()
            .clone()
    }

    #[test]
    fn the_first_refused_value_is_reported_by_start() {
        let e = refused(
            Builder::new()
                .pid_file("relative.pid")
                .redirect(3, Redirect::Null),
        );
        assert_eq!(
            (e.stage(), e.kind()),
            (Some(Stage::PidFile), ErrorKind::InvalidConfig)
        );
        assert!(e.detail().contains("relative.pid"), "{e}");
    }

    #[test]
    fn a_stream_number_out_of_range_is_refused() {
        let e = refused(Builder::new().redirect(3, Redirect::Null));
        assert_eq!(
            (e.stage(), e.kind()),
            (Some(Stage::Redirect), ErrorKind::InvalidConfig)
        );
        assert!(e.detail().ends_with(": 3"), "{e}");
    }

    #[test]
    fn truncation_reaches_launched_and_start_error() {
        let mut output = Capture::default();
        output.push(&[b'x'; crate::CAPTURE_CAPACITY + 1]);
        let error = Capture::default();
        let started = crate::Started {
            pid: 7,
            main_pid: None,
            output: &output,
            error: &error,
        };
        let launched = Launched::from_started(&started);
        assert!(launched.output_truncated && !launched.error_truncated);
        let e = StartError::new(Error::new(None, ErrorKind::Custom, "x"), &error, &output);
        assert!(!e.output_truncated() && e.stderr_truncated());
        assert!(e.to_string().ends_with("(cut at 4096 bytes)"), "{e}");
    }

    #[test]
    fn an_empty_working_directory_is_refused() {
        let e = refused(Builder::new().working_directory(""));
        assert_eq!(
            (e.stage(), e.kind()),
            (Some(Stage::WorkingDirectory), ErrorKind::InvalidConfig)
        );
    }
}
