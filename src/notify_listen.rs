//! systemd's notification protocol, receiver side: a launcher's private
//! `NOTIFY_SOCKET`, as `start-stop-daemon --notify-await` makes one.
//!
//! [`NotifyListener::bind_private`] makes a fresh directory (mode 0700) and binds a
//! datagram socket in it with `SO_PASSCRED`, so that every datagram carries its
//! sender's pid. [`NotifyListener::recv`] reads one into a [`NotifyMessage`], closing
//! every descriptor that came with it (`systemd-notify` sends its `BARRIER=1` with
//! one and waits for it to close). Hand the socket to
//! [`Config::wait_ready_from`](crate::Config::wait_ready_from) and the waiting
//! `start()` learns readiness from it.
//!
//! ```
//! use pandaemonium::notify::{NotifyListener, NotifySocket};
//!
//! let listener = NotifyListener::bind_private(None)?;
//! let to = NotifySocket::parse(listener.address().to_bytes())?;
//! to.send(b"STATUS=loading\nREADY=1\n")?;
//! let message = listener.recv()?;
//! assert_eq!(message.get("READY"), Some(&b"1"[..]));
//! assert_eq!(message.pid(), Some(std::process::id()));
//! listener.remove(); // the socket and its directory
//! # Ok::<(), pandaemonium::Error>(())
//! ```

use core::ffi::{c_int, CStr};

use crate::notify::NOTIFY_CAPACITY;
use crate::{sys, Errno, Error, ErrorKind};

/// The size of `sun_path` (108 on Linux): the longest socket path, with its NUL.
const SUN_PATH_LEN: usize = core::mem::size_of::<libc::sockaddr_un>() - PATH_OFFSET;
const PATH_OFFSET: usize = core::mem::offset_of!(libc::sockaddr_un, sun_path);

/// A private notification socket: `DIR/pdm-notify.XXXXXX/notify`.
#[derive(Debug)]
pub struct NotifyListener {
    fd: c_int,
    /// The socket's path and its NUL; the directory is the first `dir_len` bytes.
    path: [u8; SUN_PATH_LEN],
    dir_len: usize,
    len: usize,
}

fn os_error(errno: Errno, op: &str, path: &[u8]) -> Error {
    let mut e = Error::bare(None, ErrorKind::Os);
    e.errno = Some(errno);
    e.push_detail(op.as_bytes());
    e.push_detail(b" ");
    e.push_detail(path);
    e
}

/// Where the private socket's directory goes: `/run` when this process may write
/// there, else an absolute `$TMPDIR`, else `/tmp`; without a trailing slash.
fn base_dir(run_writable: bool, tmpdir: Option<&[u8]>) -> &[u8] {
    let base: &[u8] = match tmpdir {
        _ if run_writable => b"/run",
        Some(dir) if dir.starts_with(b"/") => dir,
        _ => b"/tmp",
    };
    base.strip_suffix(b"/").unwrap_or(base)
}

impl NotifyListener {
    /// Makes a fresh directory `pdm-notify.XXXXXX` (`mkdtemp(3)`, mode 0700) under
    /// `/run` when this process may write there, else under `$TMPDIR` or `/tmp`, and
    /// binds a `SOCK_DGRAM | SOCK_CLOEXEC` socket `notify` in it, with `SO_PASSCRED`.
    /// With `owner` (uid, gid), the directory and the socket are given to that user,
    /// for a program that will run as them. Not async-signal-safe: call it before
    /// `start()`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Capacity`] when the path would not fit `sun_path` (a long
    /// `$TMPDIR`); `mkdtemp`, `lchown`, `socket`, `bind` and `setsockopt` failures
    /// (whatever was made is removed).
    pub fn bind_private(
        owner: Option<(libc::uid_t, libc::gid_t)>,
    ) -> Result<NotifyListener, Error> {
        let tmpdir = sys::getenv(c"TMPDIR").map(CStr::to_bytes);
        NotifyListener::bind_in(base_dir(sys::writable(c"/run"), tmpdir), owner)
    }

    /// [`bind_private`](Self::bind_private) under the directory `base` (no trailing
    /// slash).
    fn bind_in(
        base: &[u8],
        owner: Option<(libc::uid_t, libc::gid_t)>,
    ) -> Result<NotifyListener, Error> {
        let mut l = NotifyListener {
            fd: sys::NO_FD,
            path: [0; SUN_PATH_LEN],
            dir_len: 0,
            len: 0,
        };
        let dir = b"/pdm-notify.XXXXXX";
        let name = b"/notify";
        if base.len() + dir.len() + name.len() >= SUN_PATH_LEN {
            let mut e = Error::new(None, ErrorKind::Capacity, "notify socket path too long: ");
            e.push_detail(base);
            return Err(e);
        }
        l.dir_len = base.len() + dir.len();
        l.path[..base.len()].copy_from_slice(base);
        l.path[base.len()..l.dir_len].copy_from_slice(dir);
        sys::mkdtemp(&mut l.path[..=l.dir_len])
            .map_err(|e| os_error(e, "mkdtemp", &l.path[..l.dir_len]))?;
        l.len = l.dir_len + name.len();
        l.path[l.dir_len..l.len].copy_from_slice(name);
        // From here on, Drop removes what was made.
        l.fd = sys::unix_datagram_socket().map_err(|e| os_error(e, "socket", b"AF_UNIX"))?;
        let mut addr = libc::sockaddr_un {
            sun_family: libc::AF_UNIX as libc::sa_family_t,
            sun_path: [0; SUN_PATH_LEN],
        };
        for (slot, &b) in addr.sun_path.iter_mut().zip(&l.path[..l.len]) {
            *slot = b as libc::c_char;
        }
        // A path socket: the whole structure, the path NUL-terminated inside it.
        let len = core::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        sys::bind_unix(l.fd, &addr, len)
            .map_err(|e| os_error(e, "bind", l.address().to_bytes()))?;
        sys::pass_credentials(l.fd)
            .map_err(|e| os_error(e, "setsockopt SO_PASSCRED", l.address().to_bytes()))?;
        if let Some((uid, gid)) = owner {
            let dir = l.dir_path();
            let dir = crate::sys::until_nul(&dir).unwrap_or(c"");
            for path in [l.address(), dir] {
                sys::lchown(path, uid, gid).map_err(|e| os_error(e, "lchown", path.to_bytes()))?;
            }
        }
        Ok(l)
    }

    /// The socket's path, for `NOTIFY_SOCKET`.
    pub fn address(&self) -> &CStr {
        crate::sys::until_nul(&self.path[..=self.len]).unwrap_or(c"")
    }

    /// The directory holding the socket, NUL-terminated.
    fn dir_path(&self) -> [u8; SUN_PATH_LEN] {
        let mut dir = [0u8; SUN_PATH_LEN];
        dir[..self.dir_len].copy_from_slice(&self.path[..self.dir_len]);
        dir
    }

    /// The socket's descriptor (close-on-exec), to poll or to hand to
    /// [`ReadySource::Notify`](crate::ReadySource::Notify).
    pub fn as_raw_fd(&self) -> c_int {
        self.fd
    }

    /// Receives one datagram, without blocking ([`recv_message`]).
    ///
    /// # Errors
    ///
    /// `EAGAIN` when none is queued; other `recvmsg` failures.
    pub fn recv(&self) -> Result<NotifyMessage, Error> {
        recv_message(self.fd).map_err(|e| os_error(e, "recvmsg", self.address().to_bytes()))
    }

    /// Closes the socket, removes it and its directory (also done on drop).
    pub fn remove(self) {}

    fn remove_all(&mut self) {
        if self.fd != sys::NO_FD {
            sys::close(self.fd);
            self.fd = sys::NO_FD;
        }
        if self.len > 0 {
            let _ = sys::unlink(self.address());
        }
        if self.dir_len > 0 {
            let dir = self.dir_path();
            if let Some(dir) = crate::sys::until_nul(&dir) {
                let _ = sys::rmdir(dir);
            }
        }
        self.len = 0;
        self.dir_len = 0;
    }
}

impl Drop for NotifyListener {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// One notification datagram: up to [`NOTIFY_CAPACITY`] bytes, its sender's pid,
/// whether it was cut, how many descriptors came with it (closed on arrival).
pub struct NotifyMessage {
    buf: [u8; NOTIFY_CAPACITY],
    len: usize,
    truncated: bool,
    pid: Option<u32>,
    fds: usize,
}

impl core::fmt::Debug for NotifyMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NotifyMessage")
            .field("len", &self.len)
            .field("truncated", &self.truncated)
            .field("pid", &self.pid)
            .field("fds", &self.fds)
            .finish()
    }
}

impl NotifyMessage {
    /// The datagram's bytes (the first [`NOTIFY_CAPACITY`] when it was longer).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Whether the datagram was longer than [`NOTIFY_CAPACITY`] (`MSG_TRUNC`): the
    /// rest was lost, and systemd ignores such a datagram.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The sender's pid, from `SCM_CREDENTIALS` (what the kernel vouches for: a
    /// process may claim another's pid only with `CAP_SYS_ADMIN`).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// How many descriptors came with the datagram (`SCM_RIGHTS`), all closed.
    pub fn fds_closed(&self) -> usize {
        self.fds
    }

    /// The value of the last `KEY=value` line whose key is `key` (lines end with
    /// `\n`; the last may lack it).
    ///
    /// ```
    /// # use pandaemonium::notify::NotifyMessage;
    /// let m = NotifyMessage::from_bytes(b"STATUS=a\nREADY=1\nSTATUS=b");
    /// assert_eq!(m.get("STATUS"), Some(&b"b"[..]));
    /// assert_eq!(m.get("READY"), Some(&b"1"[..]));
    /// assert_eq!(m.get("READ"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        let key = key.as_bytes();
        self.as_bytes()
            .split(|&b| b == b'\n')
            .rev()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(b"="))
    }

    /// A message of `bytes` (cut at [`NOTIFY_CAPACITY`]), with no sender: for tests.
    pub fn from_bytes(bytes: &[u8]) -> NotifyMessage {
        let mut m = NotifyMessage::empty();
        m.len = bytes.len().min(NOTIFY_CAPACITY);
        m.truncated = bytes.len() > NOTIFY_CAPACITY;
        m.buf[..m.len].copy_from_slice(&bytes[..m.len]);
        m
    }

    fn empty() -> NotifyMessage {
        NotifyMessage {
            buf: [0; NOTIFY_CAPACITY],
            len: 0,
            truncated: false,
            pid: None,
            fds: 0,
        }
    }
}

/// Receives one datagram from the notification socket `fd` without blocking:
/// `recvmsg` into a [`NOTIFY_CAPACITY`]-byte buffer, `MSG_TRUNC` noted, the
/// `SCM_CREDENTIALS` pid kept and every `SCM_RIGHTS` descriptor closed at once.
///
/// # Errors
///
/// `EAGAIN` when none is queued; other `recvmsg` failures.
pub fn recv_message(fd: c_int) -> Result<NotifyMessage, Errno> {
    let mut m = NotifyMessage::empty();
    let got = sys::recv_datagram(fd, &mut m.buf)?;
    m.len = got.len;
    m.truncated = got.truncated;
    m.pid = got.pid;
    m.fds = got.fds;
    Ok(m)
}

/// Whether `pid` is a descendant of `ancestor` (its child, grandchild... up to 16
/// generations), going up `/proc/PID/stat`'s parents. A client such as
/// `systemd-notify`, run by a shell that is PROGRAM's child under `--supervise`, sends
/// its own pid when it is not root (root may claim its parent's).
pub(crate) fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut at = pid;
    for _ in 0..16 {
        match parent_of(at) {
            Some(p) if p == ancestor => return true,
            Some(p) if p > 1 => at = p,
            _ => return false,
        }
    }
    false
}

/// The parent of `pid`, from `/proc/PID/stat`'s fourth field, or `None` when it can't
/// be read (no such process, no `/proc`).
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    let mut path = [0u8; 32];
    let digits = crate::decimal::Dec::new(i64::from(pid));
    let parts: [&[u8]; 3] = [b"/proc/", digits.as_bytes(), b"/stat"];
    let mut len = 0;
    for part in parts {
        path[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    let path = crate::sys::until_nul(&path[..=len])?;
    let mut buf = [0u8; 512];
    let stat = sys::read_small_file(path, &mut buf).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and ')'.
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let field = after
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(1)?;
    crate::decimal::parse_u32(field)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn a_descendant_is_found_up_the_parents_and_an_ancestor_is_not_one() {
        let me = sys::getpid() as u32;
        let parent = sys::getppid() as u32;
        assert!(descends_from(me, parent), "a child");
        assert!(!descends_from(parent, me), "the parent is no descendant");
        assert!(!descends_from(me, me), "nor is a process its own");
        if let Some(grandparent) = parent_of(parent).filter(|&g| g > 1) {
            assert!(descends_from(me, grandparent), "a grandchild");
        }
        assert!(!descends_from(u32::MAX, parent), "no such process");
    }
    use crate::notify::NotifySocket;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn the_directory_is_run_else_an_absolute_tmpdir_else_tmp() {
        assert_eq!(base_dir(true, Some(b"/var/tmp")), b"/run");
        assert_eq!(base_dir(false, Some(b"/var/tmp/")), b"/var/tmp");
        assert_eq!(base_dir(false, Some(b"/var/tmp")), b"/var/tmp");
        assert_eq!(base_dir(false, Some(b"relative")), b"/tmp", "not absolute");
        assert_eq!(base_dir(false, Some(b"")), b"/tmp");
        assert_eq!(base_dir(false, None), b"/tmp");
    }

    #[test]
    fn a_path_that_fits_sun_path_binds_and_a_longer_one_is_refused() {
        let dir = crate::test_dir::TestDir::new("notify-long");
        let made = dir.0.to_str().unwrap().as_bytes().to_vec();
        let suffix = b"/pdm-notify.XXXXXX/notify".len();
        // The longest base that fits: the socket's path is then SUN_PATH_LEN - 1 bytes,
        // its NUL the last of sun_path.
        let Some(room) = (SUN_PATH_LEN - 1 - suffix).checked_sub(made.len() + 1) else {
            std::eprintln!("skipped: the temporary directory's path is too long");
            return;
        };
        let mut base = made.clone();
        base.push(b'/');
        base.resize(base.len() + room, b'd');
        std::fs::create_dir(std::str::from_utf8(&base).unwrap()).unwrap();
        let l = NotifyListener::bind_in(&base, None).unwrap();
        let path = l.address().to_bytes().to_vec();
        assert_eq!(path.len(), SUN_PATH_LEN - 1);
        assert!(std::path::Path::new(std::str::from_utf8(&path).unwrap()).exists());
        // One byte more does not fit: refused before anything is made.
        let mut longer = base.clone();
        longer.push(b'e');
        let e = NotifyListener::bind_in(&longer, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Capacity, "{e:?}");
        assert!(e.detail().starts_with("notify socket path too long: "));
        l.remove();
    }

    #[test]
    fn remove_closes_the_socket() {
        let l = NotifyListener::bind_private(None).unwrap();
        let fd = l.as_raw_fd();
        let before = sys::fstat(fd).unwrap();
        l.remove();
        // The number may be another thread's by now, but never this socket.
        if let Ok(now) = sys::fstat(fd) {
            assert!(now.id != before.id, "fd {fd} still the socket");
        }
    }

    #[test]
    fn a_private_socket_in_a_0700_directory_removed_after() {
        let l = NotifyListener::bind_private(None).unwrap();
        let path = std::path::PathBuf::from(l.address().to_str().unwrap());
        assert!(path.ends_with("notify"), "{path:?}");
        let dir = path.parent().unwrap().to_path_buf();
        assert!(dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("pdm-notify."));
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
        l.remove();
        assert!(!path.exists() && !dir.exists(), "{dir:?} left");
    }

    #[test]
    fn a_message_of_bytes_is_cut_at_the_capacity_and_says_so() {
        let full = [b'x'; NOTIFY_CAPACITY];
        let m = NotifyMessage::from_bytes(&full);
        assert_eq!(
            (m.as_bytes().len(), m.truncated()),
            (NOTIFY_CAPACITY, false)
        );
        let mut over = std::vec::Vec::from(&full[..]);
        over.push(b'y');
        let m = NotifyMessage::from_bytes(&over);
        assert_eq!((m.as_bytes().len(), m.truncated()), (NOTIFY_CAPACITY, true));
        assert_eq!(
            std::format!("{:?}", NotifyMessage::from_bytes(b"READY=1")),
            "NotifyMessage { len: 7, truncated: false, pid: None, fds: 0 }"
        );
    }

    /// Sends `text` to `path` with `fds` attached (`SCM_RIGHTS`).
    #[allow(unsafe_code)]
    fn send_with_fds(path: &CStr, text: &[u8], fds: &[c_int]) {
        let s = sys::unix_datagram_socket().unwrap();
        let mut addr = libc::sockaddr_un {
            sun_family: libc::AF_UNIX as libc::sa_family_t,
            sun_path: [0; SUN_PATH_LEN],
        };
        for (slot, &b) in addr.sun_path.iter_mut().zip(path.to_bytes()) {
            *slot = b as libc::c_char;
        }
        let mut iov = libc::iovec {
            iov_base: text.as_ptr() as *mut _,
            iov_len: text.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: a zeroed msghdr is valid; every pointer set below outlives sendmsg,
        // and the control buffer (64 bytes, 8-aligned) holds one SCM_RIGHTS header with
        // up to 4 descriptors.
        unsafe {
            let mut msg: libc::msghdr = core::mem::zeroed();
            msg.msg_name = (&mut addr as *mut libc::sockaddr_un).cast();
            msg.msg_namelen = core::mem::size_of::<libc::sockaddr_un>() as _;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            let bytes = core::mem::size_of_val(fds) as u32;
            if !fds.is_empty() {
                msg.msg_control = control.as_mut_ptr().cast();
                msg.msg_controllen = libc::CMSG_SPACE(bytes) as _;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(bytes) as _;
                let data = libc::CMSG_DATA(cmsg).cast();
                core::ptr::copy_nonoverlapping(fds.as_ptr(), data, fds.len());
            }
            assert_eq!(libc::sendmsg(s, &msg, 0), text.len() as isize, "sendmsg");
        }
        sys::close(s);
    }

    #[test]
    fn descriptors_that_come_with_a_message_are_counted_and_closed() {
        let l = NotifyListener::bind_private(None).unwrap();
        let (r, w) = sys::pipe().unwrap();
        send_with_fds(l.address(), b"FDSTORE=1", &[r, w]);
        let m = l.recv().unwrap();
        assert_eq!(m.get("FDSTORE"), Some(&b"1"[..]));
        assert_eq!(m.pid(), Some(sys::getpid() as u32));
        assert_eq!(m.fds_closed(), 2);
        // The received copies are closed: with ours gone too, the pipe has no reader.
        sys::close(r);
        assert_eq!(
            sys::write_all_quiet(w, b"x"),
            Err(crate::Errno::from_raw(libc::EPIPE))
        );
        sys::close(w);
        send_with_fds(l.address(), b"A=1", &[]);
        let m = l.recv().unwrap();
        assert_eq!(m.fds_closed(), 0);
    }

    #[test]
    fn the_owner_gets_the_directory_and_the_socket() {
        // SAFETY: geteuid cannot fail.
        #[allow(unsafe_code)]
        if unsafe { libc::geteuid() } != 0 {
            std::eprintln!("skipped: needs root to chown");
            return;
        }
        let l = NotifyListener::bind_private(Some((65534, 65534))).unwrap();
        let path = std::path::PathBuf::from(l.address().to_str().unwrap());
        for p in [&path, &path.parent().unwrap().to_path_buf()] {
            let meta = std::fs::symlink_metadata(p).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{p:?}");
        }
        drop(l);
        assert!(!path.parent().unwrap().exists());
    }

    #[test]
    fn recv_gives_the_senders_pid_and_cuts_at_the_capacity() {
        let l = NotifyListener::bind_private(None).unwrap();
        let to = NotifySocket::parse(l.address().to_bytes()).unwrap();
        assert_eq!(l.recv().unwrap_err().errno(), Some(Errno::AGAIN));
        let mut full = [b'x'; NOTIFY_CAPACITY];
        full[..7].copy_from_slice(b"STATUS=");
        full[NOTIFY_CAPACITY - 8..].copy_from_slice(b"\nREADY=1");
        to.send(&full).unwrap();
        let m = l.recv().unwrap();
        assert_eq!(m.pid(), Some(std::process::id()));
        assert!(!m.truncated());
        assert_eq!(m.as_bytes().len(), NOTIFY_CAPACITY);
        assert_eq!(m.get("READY"), Some(&b"1"[..]));
        let sock = sys::unix_datagram_socket().unwrap();
        let mut addr = libc::sockaddr_un {
            sun_family: libc::AF_UNIX as libc::sa_family_t,
            sun_path: [0; SUN_PATH_LEN],
        };
        for (slot, &b) in addr.sun_path.iter_mut().zip(l.address().to_bytes()) {
            *slot = b as libc::c_char;
        }
        let len = core::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let long = [b'y'; NOTIFY_CAPACITY + 1];
        sys::sendto_unix(sock, &long, &addr, len).unwrap();
        sys::close(sock);
        let m = l.recv().unwrap();
        assert!(m.truncated());
        assert_eq!(m.as_bytes().len(), NOTIFY_CAPACITY);
    }

    #[test]
    fn parent_of_reads_proc() {
        assert_eq!(parent_of(std::process::id()), Some(sys::getppid() as u32));
        assert_eq!(parent_of(u32::MAX), None);
    }

    #[test]
    fn get_takes_the_last_line_of_a_key() {
        let m = NotifyMessage::from_bytes(b"READY=0\nXREADY=1\nREADY=1\nREADYX=2\n");
        assert_eq!(m.get("READY"), Some(&b"1"[..]));
        assert_eq!(m.get("X"), None);
        assert!(NotifyMessage::from_bytes(&[0; NOTIFY_CAPACITY + 1]).truncated());
    }
}
