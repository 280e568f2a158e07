//! systemd socket activation (`sd_listen_fds(3)`): the descriptors a supervisor passed,
//! read once in the launcher, before anything forks.
//!
//! A socket-activating supervisor (systemd, `systemd-socket-activate`) starts the
//! program with its listening sockets at descriptors `3 … 3+n-1` and three variables:
//! `LISTEN_PID` (the pid meant to take them), `LISTEN_FDS` (`n`) and, optionally,
//! `LISTEN_FDNAMES` (`n` colon-separated names). Only the process the supervisor started
//! has `getpid() == LISTEN_PID`; a detached daemon does not. So the launcher reads them
//! with [`ListenFds::from_env`] before starting the daemon, keeps `3 … 3+n-1` through
//! stage 8 (e.g. with [`Config::inherit_file`](crate::Config::inherit_file)) and hands
//! the [`ListenFds`] to the daemon's [`Run`](crate::Run) value; [`unset_listen_env`]
//! keeps the variables from programs the daemon runs.
//!
//! ```
//! use pandaemonium::listen::ListenFds;
//! use pandaemonium::ErrorKind;
//!
//! // Meant for another process: none, and not an error.
//! let fds = ListenFds::parse(42, Some(b"7".as_slice()), Some(b"2".as_slice()), None)?;
//! assert!(fds.is_none());
//! // Not activated at all.
//! assert!(ListenFds::parse(42, None, None, None)?.is_none());
//! // Activated, but with a bad value.
//! let e = ListenFds::parse(42, Some(b"42".as_slice()), Some(b"abc".as_slice()), None)
//!     .unwrap_err();
//! assert_eq!((e.kind(), e.detail()), (ErrorKind::InvalidConfig, "LISTEN_FDS=abc"));
//! # Ok::<(), pandaemonium::Error>(())
//! ```
//!
//! In a launcher, with the descriptors really there:
//!
//! ```no_run
//! use pandaemonium::listen::{unset_listen_env, ListenFds};
//!
//! let pid = pandaemonium::os::getpid() as u32;
//! if let Some(fds) = ListenFds::from_env(pid)? {
//!     for (fd, name) in fds.iter() {
//!         println!("{name}: fd {fd}");
//!     }
//!     let _control = fds.find("ctl");
//! }
//! unset_listen_env(); // still single-threaded
//! # Ok::<(), pandaemonium::Error>(())
//! ```
//!
//! Differences from `sd_listen_fds_with_names(3)`: everything is validated before any
//! descriptor is touched, so a refused environment changes no descriptor's flags;
//! `LISTEN_PIDFDID` (systemd 258) is not checked, only `LISTEN_PID`; an empty
//! `LISTEN_FDNAMES` is one empty name (libsystemd counts it as none).

use core::ffi::c_int;

use crate::{sys, Error, ErrorKind};

/// Most descriptors taken from socket activation.
pub const LISTEN_CAPACITY: usize = 16;

/// Bytes of one descriptor name kept (systemd's `FDNAME` limit is 255).
pub const LISTEN_NAME_CAPACITY: usize = 255;

/// `SD_LISTEN_FDS_START`: the first passed descriptor.
const FIRST: c_int = 3;

/// The variables read and removed, `LISTEN_PIDFDID` among them (systemd 258 sets it).
const VARIABLES: [&core::ffi::CStr; 4] = [
    c"LISTEN_PID",
    c"LISTEN_PIDFDID",
    c"LISTEN_FDS",
    c"LISTEN_FDNAMES",
];

/// The descriptors a socket-activating supervisor passed (`LISTEN_PID`, `LISTEN_FDS`,
/// `LISTEN_FDNAMES`), read once in the launcher.
///
/// Fixed size, no allocation. The names are validated UTF-8 and kept as text (a name
/// that is not UTF-8 is refused); without `LISTEN_FDNAMES` every name is `unknown`, as
/// libsystemd has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenFds {
    first: c_int,
    names: heapless::Vec<heapless::String<LISTEN_NAME_CAPACITY, u8>, LISTEN_CAPACITY, u8>,
}

impl ListenFds {
    /// Reads `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` (`getenv(3)`) for process
    /// `pid` (pass your own: `getpid()`), then checks the descriptors as [`parse`]
    /// does, with the same results.
    ///
    /// Call it while single-threaded, before fork: `getenv` is not async-signal-safe,
    /// nor safe against another thread's `setenv`.
    ///
    /// # Errors
    ///
    /// As [`parse`].
    ///
    /// [`parse`]: ListenFds::parse
    pub fn from_env(pid: u32) -> Result<Option<ListenFds>, Error> {
        let var = |name| sys::getenv(name).map(|v| v.to_bytes());
        ListenFds::parse(
            pid,
            var(c"LISTEN_PID"),
            var(c"LISTEN_FDS"),
            var(c"LISTEN_FDNAMES"),
        )
    }

    /// The same as [`from_env`](ListenFds::from_env) from the variables' values (`None`:
    /// unset): `parse(pid, LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES)`.
    ///
    /// `Ok(None)` when `LISTEN_PID` or `LISTEN_FDS` is unset, or `LISTEN_PID` names
    /// another process (not an error, as in `sd_listen_fds`). Otherwise every value is
    /// validated first, then each descriptor `3 … 3+n-1` is checked open and gets
    /// `FD_CLOEXEC` (`fcntl(2)`), so that programs the daemon runs do not inherit it.
    ///
    /// # Errors
    ///
    /// Outside any stage ([`Error::stage`] `None`), the detail naming the variable and
    /// its value (e.g. `LISTEN_FDS=abc`):
    ///
    /// - [`ErrorKind::InvalidConfig`]: `LISTEN_PID` not a pid (decimal, above 0);
    ///   `LISTEN_FDS` not a number, or 0; `LISTEN_FDNAMES` with a number of names
    ///   other than `LISTEN_FDS` (empty ones count: `x::z` is three names); a name that
    ///   is not UTF-8 (detail `LISTEN_FDNAMES[i]=name`, `i` from 0);
    /// - [`ErrorKind::Capacity`]: `LISTEN_FDS` above [`LISTEN_CAPACITY`], a name longer
    ///   than [`LISTEN_NAME_CAPACITY`];
    /// - [`ErrorKind::Os`]: a descriptor is not open ([`Errno::BADF`](crate::Errno::BADF),
    ///   detail `LISTEN_FDS=n: fd 5`); then no descriptor's flags were changed.
    pub fn parse(
        pid: u32,
        listen_pid: Option<&[u8]>,
        listen_fds: Option<&[u8]>,
        names: Option<&[u8]>,
    ) -> Result<Option<ListenFds>, Error> {
        ListenFds::parse_at(FIRST, pid, listen_pid, listen_fds, names)
    }

    /// `n` descriptors from `first`, named `unknown`, unchecked (for other modules' tests).
    #[cfg(test)]
    pub(crate) fn unchecked(first: c_int, n: usize) -> ListenFds {
        let mut fds = ListenFds {
            first,
            names: heapless::Vec::new(),
        };
        for _ in 0..n {
            let mut name = heapless::String::new();
            let _ = name.push_str("unknown");
            let _ = fds.names.push(name);
        }
        fds
    }

    /// [`parse`](ListenFds::parse) with the descriptors at `first …` (3 but in tests).
    fn parse_at(
        first: c_int,
        pid: u32,
        listen_pid: Option<&[u8]>,
        listen_fds: Option<&[u8]>,
        names: Option<&[u8]>,
    ) -> Result<Option<ListenFds>, Error> {
        let (Some(listen_pid), Some(listen_fds)) = (listen_pid, listen_fds) else {
            return Ok(None);
        };
        match crate::decimal::parse_u32(listen_pid) {
            Some(p) if p > 0 => {
                if p != pid {
                    return Ok(None);
                }
            }
            _ => return Err(invalid(ErrorKind::InvalidConfig, "LISTEN_PID", listen_pid)),
        }
        let n = match crate::decimal::parse_u32(listen_fds) {
            Some(n) if n > 0 => n as usize,
            _ => return Err(invalid(ErrorKind::InvalidConfig, "LISTEN_FDS", listen_fds)),
        };
        if n > LISTEN_CAPACITY {
            return Err(invalid(ErrorKind::Capacity, "LISTEN_FDS", listen_fds));
        }
        let mut fds = ListenFds {
            first,
            names: heapless::Vec::new(),
        };
        match names {
            None => {
                for _ in 0..n {
                    let mut name = heapless::String::new();
                    let _ = name.push_str("unknown");
                    let _ = fds.names.push(name);
                }
            }
            Some(all) => {
                if all.split(|&b| b == b':').count() != n {
                    return Err(invalid(ErrorKind::InvalidConfig, "LISTEN_FDNAMES", all));
                }
                for (i, bytes) in all.split(|&b| b == b':').enumerate() {
                    let mut name = heapless::String::new();
                    match core::str::from_utf8(bytes) {
                        Ok(text) if name.push_str(text).is_ok() => {}
                        Ok(_) => return Err(bad_name(ErrorKind::Capacity, i, bytes)),
                        Err(_) => return Err(bad_name(ErrorKind::InvalidConfig, i, bytes)),
                    }
                    // n <= LISTEN_CAPACITY names: they fit.
                    let _ = fds.names.push(name);
                }
            }
        }
        // All checked open before any is changed.
        for fd in fds.first..fds.end() {
            if !sys::fd_is_open(fd) {
                return Err(closed(listen_fds, fd, crate::Errno::BADF));
            }
        }
        for fd in fds.first..fds.end() {
            sys::set_cloexec(fd, true).map_err(|e| closed(listen_fds, fd, e))?;
        }
        Ok(Some(fds))
    }

    /// Number of descriptors (`first() … end()`).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none (never, for a value `from_env` or `parse` returned).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The first descriptor: always 3 (`SD_LISTEN_FDS_START`).
    pub fn first(&self) -> c_int {
        self.first
    }

    /// The end of the range, exclusive: `first() + len()`.
    pub fn end(&self) -> c_int {
        // At most LISTEN_CAPACITY: no overflow.
        self.first + self.names.len() as c_int
    }

    /// The `(descriptor, name)` pairs, in the supervisor's order.
    pub fn iter(&self) -> impl Iterator<Item = (c_int, &str)> {
        (self.first..).zip(self.names.iter().map(|name| name.as_str()))
    }

    /// The descriptor named `name` (the first, when several are).
    pub fn find(&self, name: &str) -> Option<c_int> {
        self.iter().find(|&(_, n)| n == name).map(|(fd, _)| fd)
    }
}

/// Removes `LISTEN_PID`, `LISTEN_PIDFDID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from the
/// environment (`unsetenv(3)`), so that programs the daemon runs do not inherit them.
///
/// Call it only while single-threaded (in the launcher before starting threads, or in
/// the daemon after fork): `unsetenv` is not thread-safe, and changes memory that a
/// `getenv` in another thread may be reading. Not async-signal-safe either.
pub fn unset_listen_env() {
    for name in VARIABLES {
        // Fails only for a name with '=' or an empty one: none of these.
        let _ = sys::unsetenv(name);
    }
}

/// An error outside any stage: `variable=value`.
#[cold]
fn invalid(kind: ErrorKind, variable: &str, value: &[u8]) -> Error {
    let mut e = Error::new(None, kind, variable);
    e.push_detail(b"=");
    e.push_detail(value);
    e
}

/// A refused name: `LISTEN_FDNAMES[i]=name`.
#[cold]
fn bad_name(kind: ErrorKind, i: usize, name: &[u8]) -> Error {
    let mut e = Error::new(None, kind, "LISTEN_FDNAMES[");
    e.push_detail(crate::decimal::Dec::new(i as i64).as_bytes());
    e.push_detail(b"]=");
    e.push_detail(name);
    e
}

/// A descriptor that is not open: `LISTEN_FDS=n: fd 5` and the errno.
#[cold]
fn closed(listen_fds: &[u8], fd: c_int, errno: crate::Errno) -> Error {
    let mut e = invalid(ErrorKind::Os, "LISTEN_FDS", listen_fds);
    e.errno = Some(errno);
    e.push_detail(b": fd ");
    e.push_detail(crate::decimal::Dec::new(i64::from(fd)).as_bytes());
    e
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::sync::Mutex;

    use super::*;
    use crate::test_fds::FdBlock;
    use crate::Errno;

    /// The tests that probe for a free range of descriptors take turns.
    static HIGH_FDS: Mutex<()> = Mutex::new(());

    /// This test's turn (a failed test's poisoning does not fail the others).
    fn turn() -> std::sync::MutexGuard<'static, ()> {
        HIGH_FDS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[allow(unsafe_code)]
    fn cloexec(fd: c_int) -> bool {
        // SAFETY: F_GETFD takes no argument and touches no memory.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert!(flags >= 0, "fd {fd} is open");
        flags & libc::FD_CLOEXEC != 0
    }

    const PID: u32 = 4242;

    /// `parse` with `LISTEN_PID` = [`PID`], at `first`.
    fn at(first: c_int, fds: &str, names: Option<&[u8]>) -> Result<Option<ListenFds>, Error> {
        ListenFds::parse_at(first, PID, Some(b"4242"), Some(fds.as_bytes()), names)
    }

    /// `parse` with `LISTEN_PID` = [`PID`] at 3, for values refused before any
    /// descriptor is looked at.
    fn refused(fds: &str, names: Option<&[u8]>) -> Error {
        at(FIRST, fds, names).unwrap_err()
    }

    fn is(e: &Error, kind: ErrorKind, detail: &str) {
        assert_eq!((e.kind(), e.detail()), (kind, detail), "{e:?}");
        assert_eq!(e.stage(), None);
    }

    #[test]
    fn unset_or_for_another_process_is_none() {
        let p = |listen_pid: Option<&'static str>, fds: Option<&'static str>| {
            let b = |v: Option<&'static str>| v.map(str::as_bytes);
            ListenFds::parse(PID, b(listen_pid), b(fds), Some(b"a"))
        };
        assert_eq!(p(None, None), Ok(None));
        assert_eq!(p(None, Some("1")), Ok(None));
        assert_eq!(p(Some("4242"), None), Ok(None));
        // Another pid: none, whatever the rest says (as sd_listen_fds).
        assert_eq!(p(Some("4243"), Some("1")), Ok(None));
        assert_eq!(p(Some("1"), Some("abc")), Ok(None));
    }

    #[test]
    fn a_bad_listen_pid_is_refused() {
        for bad in ["abc", "", "0", "-1", " 4242", "4242 ", "99999999999"] {
            let e = ListenFds::parse(PID, Some(bad.as_bytes()), Some(b"1"), None).unwrap_err();
            is(
                &e,
                ErrorKind::InvalidConfig,
                &std::format!("LISTEN_PID={bad}"),
            );
            assert_eq!(e.errno(), None);
        }
    }

    #[test]
    fn a_bad_listen_fds_is_refused() {
        for bad in ["abc", "", "0", "-1", "+1", "1x"] {
            let e = refused(bad, None);
            is(
                &e,
                ErrorKind::InvalidConfig,
                &std::format!("LISTEN_FDS={bad}"),
            );
            assert_eq!(e.errno(), None);
        }
        is(&refused("17", None), ErrorKind::Capacity, "LISTEN_FDS=17");
        is(
            &refused("4294967295", None),
            ErrorKind::Capacity,
            "LISTEN_FDS=4294967295",
        );
    }

    #[test]
    fn names_must_match_the_count() {
        let e = refused("2", Some(b"ctl"));
        is(&e, ErrorKind::InvalidConfig, "LISTEN_FDNAMES=ctl");
        is(
            &refused("2", Some(b"a:b:c")),
            ErrorKind::InvalidConfig,
            "LISTEN_FDNAMES=a:b:c",
        );
        is(
            &refused("2", Some(b"")),
            ErrorKind::InvalidConfig,
            "LISTEN_FDNAMES=",
        );
        is(
            &refused("1", Some(b"x:")),
            ErrorKind::InvalidConfig,
            "LISTEN_FDNAMES=x:",
        );
        is(
            &refused("2", Some(b"x::z")),
            ErrorKind::InvalidConfig,
            "LISTEN_FDNAMES=x::z",
        );
    }

    #[test]
    fn a_bad_name_is_refused() {
        let long = [b'n'; LISTEN_NAME_CAPACITY + 1];
        let mut names = std::vec::Vec::from(&b"ok:"[..]);
        names.extend_from_slice(&long);
        let e = refused("2", Some(&names));
        assert_eq!(e.kind(), ErrorKind::Capacity);
        assert!(e.detail().starts_with("LISTEN_FDNAMES[1]=nnnn"), "{e:?}");
        assert_eq!(e.stage(), None);
        let e = refused("3", Some(b"a:b:\xff\xfe"));
        is(&e, ErrorKind::InvalidConfig, "LISTEN_FDNAMES[2]=??");
    }

    #[test]
    fn open_descriptors_get_close_on_exec() {
        let _turn = turn();
        let range = FdBlock::new(3);
        for fd in range.fds() {
            assert!(!cloexec(fd), "fd {fd} starts without FD_CLOEXEC");
        }
        let fds = at(range.first, "3", Some(b"ctl:data:ctl"))
            .unwrap()
            .unwrap();
        for fd in range.first..range.first + 3 {
            assert!(cloexec(fd), "fd {fd}");
        }
        let f = range.first;
        assert_eq!((fds.first(), fds.end(), fds.len()), (f, f + 3, 3));
        assert!(!fds.is_empty());
        // Never from parse; the answer all the same.
        let none = ListenFds {
            first: FIRST,
            names: heapless::Vec::new(),
        };
        assert!(none.is_empty());
        assert_eq!(
            (none.len(), none.end(), none.find("unknown")),
            (0, FIRST, None)
        );
        let pairs: std::vec::Vec<_> = fds.iter().collect();
        assert_eq!(pairs, [(f, "ctl"), (f + 1, "data"), (f + 2, "ctl")]);
        assert_eq!(fds.find("ctl"), Some(f), "the first match");
        assert_eq!(fds.find("data"), Some(f + 1));
        assert_eq!(fds.find("dat"), None);
    }

    #[test]
    fn absent_names_are_unknown_and_empty_ones_count() {
        let _turn = turn();
        let range = FdBlock::new(3);
        let fds = at(range.first, "3", None).unwrap().unwrap();
        let names: std::vec::Vec<_> = fds.iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["unknown"; 3]);
        let fds = at(range.first, "3", Some(b"x::z")).unwrap().unwrap();
        let names: std::vec::Vec<_> = fds.iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["x", "", "z"]);
        assert_eq!(fds.find(""), Some(range.first + 1));
        let fds = at(range.first, "1", Some(b"")).unwrap().unwrap();
        assert_eq!(
            fds.iter().collect::<std::vec::Vec<_>>(),
            [(range.first, "")]
        );
    }

    #[test]
    fn the_largest_counts_and_names_fit() {
        let _turn = turn();
        let range = FdBlock::new(LISTEN_CAPACITY as c_int);
        let long = [b'n'; LISTEN_NAME_CAPACITY];
        let mut names = std::vec::Vec::new();
        for i in 0..LISTEN_CAPACITY {
            if i > 0 {
                names.push(b':');
            }
            names.extend_from_slice(&long);
        }
        let fds = at(range.first, "16", Some(&names)).unwrap().unwrap();
        assert_eq!(fds.len(), LISTEN_CAPACITY);
        assert_eq!(fds.end(), range.first + 16);
        assert!(fds.iter().all(|(_, n)| n.as_bytes() == long));
        assert!(cloexec(range.first + 15));
    }

    #[test]
    fn a_closed_descriptor_is_refused_and_nothing_changes() {
        let _turn = turn();
        let range = FdBlock::new(4);
        let closed = range.first + 2;
        sys::close(closed);
        let e = at(range.first, "4", None).unwrap_err();
        let detail = std::format!("LISTEN_FDS=4: fd {closed}");
        is(&e, ErrorKind::Os, &detail);
        assert_eq!(e.errno(), Some(Errno::BADF));
        for fd in [range.first, range.first + 1, range.first + 3] {
            assert!(!cloexec(fd), "fd {fd} untouched");
        }
        // The last one closed.
        let e = at(range.first, "3", None).unwrap_err();
        is(&e, ErrorKind::Os, &detail.replace("=4", "=3"));
        assert_eq!(e.errno(), Some(Errno::BADF));
    }

    /// The variable that makes [`from_env_child`] do its work.
    const CHILD: &str = "PDM_LISTEN_TEST_CHILD";

    /// `from_env` and `unset_listen_env` in a process of their own, started by
    /// [`from_env_reads_and_unset_removes`] with the variables set and fd 3 open (the
    /// unit tests run in threads, so this one must not change its own environment).
    #[test]
    fn from_env_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let pid = sys::getpid() as u32;
        let fds = ListenFds::from_env(pid).unwrap().expect("activated");
        assert_eq!(fds.iter().collect::<std::vec::Vec<_>>(), [(3, "ctl")]);
        assert!(cloexec(3));
        assert_eq!(ListenFds::from_env(pid + 1), Ok(None));
        unset_listen_env();
        for name in VARIABLES {
            assert_eq!(sys::getenv(name), None, "{name:?}");
        }
        assert!(sys::getenv(c"PATH").is_some(), "the rest stays");
        assert_eq!(ListenFds::from_env(pid), Ok(None));
        std::println!("from_env child done");
    }

    #[test]
    fn from_env_reads_and_unset_removes() {
        let exe = std::env::current_exe().unwrap();
        // The shell's pid is the test binary's after `exec`.
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("LISTEN_PID=$$ exec \"$0\" \"$@\" 3</dev/null")
            .arg(exe)
            .args(["--exact", "listen::tests::from_env_child", "--nocapture"])
            .env(CHILD, "1")
            .env("LISTEN_FDS", "1")
            .env("LISTEN_FDNAMES", "ctl")
            .env("LISTEN_PIDFDID", "1")
            .output()
            .unwrap();
        let stdout = std::string::String::from_utf8_lossy(&out.stdout);
        let stderr = std::string::String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("from_env child done"), "{stdout}");
    }
}
