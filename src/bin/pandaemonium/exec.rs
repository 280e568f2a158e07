//! PROGRAM: found before fork, exec'd after stage 9.
//!
//! `execvp` searches `PATH` itself, but it is not async-signal-safe on every libc (it
//! may allocate), so the search happens in the launcher, before anything forks, the way
//! the core resolves users and groups there. The daemon then only calls `execve`.

use core::ffi::CStr;

use pandaemonium::Errno;

use crate::sys::{self, Envp, ExecArgv};

/// Longest resolved path kept (Linux's `PATH_MAX`).
pub const PATH_CAPACITY: usize = 4096;

/// `PATH` when the environment has none (glibc's and musl's `execvp` default, plus
/// the sbin directories a root service needs).
const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the daemon runs.
#[derive(Clone, Copy)]
pub struct Program<'p> {
    /// PROGRAM as typed (in messages, and as the program's `argv[0]`).
    pub name: &'static CStr,
    /// The file exec'd.
    pub path: &'p CStr,
    /// PROGRAM and its arguments.
    pub argv: ExecArgv,
    /// The launcher's environment, passed on unchanged.
    pub envp: Envp,
}

impl Program<'_> {
    /// `execve`s the program; returns only when that failed, with the reason.
    /// Async-signal-safe.
    pub fn exec(&self) -> Errno {
        sys::execve(self.path, self.argv, self.envp)
    }
}

/// Appends `parts` to `buf` as one NUL-terminated string; its length without the NUL.
fn join(buf: &mut [u8], parts: &[&[u8]]) -> Option<usize> {
    let mut len = 0;
    for part in parts {
        let end = len + part.len();
        if end >= buf.len() || part.contains(&0) {
            return None;
        }
        buf[len..end].copy_from_slice(part);
        len = end;
    }
    buf[len] = 0;
    Some(len)
}

/// Where PROGRAM is, found the way `execvp` would, before fork:
///
/// - an absolute path is used as it is;
/// - a relative path with a `/` is taken from the current directory (the daemon
///   changes directory in stage 5, so it is made absolute here);
/// - a bare name is searched in `PATH` for a regular file we may execute.
///
/// # Errors
///
/// `ENOENT` when nothing is found; `EACCES` when only non-executable files are;
/// `ENAMETOOLONG` beyond [`PATH_CAPACITY`]; `getcwd` failures.
pub fn resolve<'b>(
    name: &'static CStr,
    buf: &'b mut [u8; PATH_CAPACITY],
) -> Result<&'b CStr, Errno> {
    let bytes = name.to_bytes();
    if bytes.first() == Some(&b'/') {
        return Ok(name);
    }
    if bytes.is_empty() {
        return Err(Errno::NOENT);
    }
    let mut cwd_buf = [0u8; PATH_CAPACITY];
    let cwd = sys::getcwd(&mut cwd_buf)?.to_bytes();
    let len = if bytes.contains(&b'/') {
        join(buf, &[cwd, b"/", bytes]).ok_or(Errno::NAMETOOLONG)?
    } else {
        search(bytes, cwd, buf)?
    };
    CStr::from_bytes_with_nul(&buf[..=len]).map_err(|_| Errno::NOENT)
}

/// Searches `PATH` for `name`; the length of the path found in `buf`.
fn search(name: &[u8], cwd: &[u8], buf: &mut [u8]) -> Result<usize, Errno> {
    let path = sys::getenv(c"PATH").map_or(DEFAULT_PATH, CStr::to_bytes);
    let mut denied = false;
    for dir in path.split(|&b| b == b':') {
        // An empty entry is the current directory; a relative one is relative to it.
        let len = match dir {
            b"" => join(buf, &[cwd, b"/", name]),
            [b'/', ..] => join(buf, &[dir, b"/", name]),
            _ => join(buf, &[cwd, b"/", dir, b"/", name]),
        };
        let Some(len) = len else { continue };
        let Ok(candidate) = CStr::from_bytes_with_nul(&buf[..=len]) else {
            continue;
        };
        match sys::executable(candidate) {
            Ok(()) => return Ok(len),
            Err(Errno::ACCES) => denied = true,
            Err(_) => {}
        }
    }
    Err(if denied { Errno::ACCES } else { Errno::NOENT })
}
