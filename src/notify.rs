//! systemd's notification protocol (sd_notify(3)), sender side: readiness, status,
//! reloading, stopping and watchdog messages to `$NOTIFY_SOCKET`, in fixed buffers.
//!
//! Every sending function returns `Ok(false)` when `NOTIFY_SOCKET` is unset or empty
//! (not supervised: nothing is sent) and `Ok(true)` once the datagram was sent, which
//! means queued, not processed. sd_notify(3) advises services to ignore failures;
//! they are reported here so that the caller may choose.
//!
//! ```
//! use pandaemonium::notify::{self, Notification};
//!
//! let mut ready = Notification::new();
//! ready.field("READY", b"1")?.field("STATUS", b"serving on :8080")?;
//! assert_eq!(ready.as_bytes(), b"READY=1\nSTATUS=serving on :8080\n");
//! // A status line can't smuggle in a second assignment:
//! assert!(ready.field("STATUS", b"up\nREADY=1").is_err());
//!
//! // Under a service manager these really notify it: not run here.
//! fn started(ready: &Notification) -> Result<(), pandaemonium::Error> {
//!     if ready.send()? {
//!         // supervised: the service manager got the datagram
//!     }
//!     notify::status(b"idle")?;
//!     Ok(())
//! }
//! # let _ = started;
//! # Ok::<(), pandaemonium::Error>(())
//! ```
//!
//! The receiver side, a launcher's own socket, is [`NotifyListener`].
//!
//! What is not here: `BARRIER=1` (a datagram with a pipe's descriptor, for senders
//! systemd did not start), file descriptor store messages, and `vsock:` addresses
//! (used by a virtual machine's init towards its host, not by services).

use core::fmt;
use core::time::Duration;

pub use crate::notify_listen::{recv_message, NotifyListener, NotifyMessage};

use crate::decimal::{parse_u64, Dec};
use crate::{sys, Errno, Error, ErrorKind};

/// Largest datagram sent (systemd's receive buffer).
pub const NOTIFY_CAPACITY: usize = 4096;

/// The environment variable naming the socket.
const NOTIFY_SOCKET_VAR: &core::ffi::CStr = c"NOTIFY_SOCKET";

/// Where `sun_path` starts in a `sockaddr_un` (2 on Linux).
const PATH_OFFSET: usize = core::mem::offset_of!(libc::sockaddr_un, sun_path);

/// The size of `sun_path` (108 on Linux).
const SUN_PATH_LEN: usize = core::mem::size_of::<libc::sockaddr_un>() - PATH_OFFSET;

/// `NOTIFY_SOCKET`'s address, parsed: an absolute path, or a Linux abstract name
/// (`@name`), sent with its exact address length, `offsetof(sun_path) + 1 + name
/// length`, never the padded `sizeof(sockaddr_un)` (which would name a different
/// socket, the name followed by NULs).
///
/// ```
/// use pandaemonium::notify::NotifySocket;
///
/// let socket = NotifySocket::parse(b"@pdm-doc-example")?;
/// // No one is listening on that name: the send fails with ECONNREFUSED.
/// let e = socket.send(b"READY=1\n").unwrap_err();
/// assert_eq!(e.errno().map(|e| e.raw()), Some(libc::ECONNREFUSED));
/// assert_eq!(e.detail(), "sendto NOTIFY_SOCKET @pdm-doc-example");
/// assert!(NotifySocket::parse(b"relative/path").is_err());
/// # Ok::<(), pandaemonium::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct NotifySocket {
    addr: libc::sockaddr_un,
    len: libc::socklen_t,
}

impl NotifySocket {
    /// Parses a `NOTIFY_SOCKET` value: `/path` or `@name`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`], with a detail naming `NOTIFY_SOCKET` and the value,
    /// for: an empty value, `@` or `/` alone, a relative path, a path that does not fit
    /// `sun_path` with its NUL (108 bytes or more), an abstract name longer than 107
    /// bytes, a value holding a NUL byte (no environment variable can), and `vsock:...`
    /// addresses (the detail says vsock is not supported).
    pub fn parse(value: &[u8]) -> Result<NotifySocket, Error> {
        let refuse = |why: &str| {
            let mut e = Error::new(None, ErrorKind::InvalidConfig, "NOTIFY_SOCKET ");
            e.push_detail(why.as_bytes());
            if !value.is_empty() {
                e.push_detail(b": ");
                e.push_detail(value);
            }
            Err(e)
        };
        if value.starts_with(b"vsock") {
            return refuse("vsock is not supported");
        }
        if value.contains(&0) {
            return refuse("holds a NUL byte");
        }
        let (path, len) = match value {
            [] => return refuse("is empty"),
            [b'@'] | [b'/'] => return refuse("names no socket"),
            // The name: sun_path[0] is NUL and the name follows, with no NUL after it.
            [b'@', name @ ..] if name.len() < SUN_PATH_LEN => (name, PATH_OFFSET + 1 + name.len()),
            [b'@', ..] => return refuse("abstract name longer than 107 bytes"),
            // The path and its NUL.
            [b'/', ..] if value.len() < SUN_PATH_LEN => (value, PATH_OFFSET + value.len() + 1),
            [b'/', ..] => return refuse("path longer than 107 bytes"),
            _ => return refuse("is neither an absolute path nor @name"),
        };
        let mut addr = libc::sockaddr_un {
            sun_family: libc::AF_UNIX as libc::sa_family_t,
            sun_path: [0; SUN_PATH_LEN],
        };
        // An abstract name starts at sun_path[1]; a path at sun_path[0]. The rest stays
        // zero: a path's NUL, and nothing after a name (it is not sent).
        let start = usize::from(value[0] == b'@');
        for (slot, &b) in addr.sun_path[start..].iter_mut().zip(path) {
            *slot = b as libc::c_char;
        }
        Ok(NotifySocket {
            addr,
            len: len as libc::socklen_t,
        })
    }

    /// `$NOTIFY_SOCKET`, read with `getenv` (no allocation): `Ok(None)` when it is unset
    /// or empty. Async-signal-safe (see [`NotifySocket::send`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] when the value is not an address
    /// ([`NotifySocket::parse`]).
    pub fn from_env() -> Result<Option<NotifySocket>, Error> {
        from_value(sys::getenv(NOTIFY_SOCKET_VAR).map(|v| v.to_bytes()))
    }

    /// Sends `message` as one datagram: `socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC)`,
    /// `sendto(..., MSG_NOSIGNAL)`, `close`. Async-signal-safe.
    ///
    /// So are the functions here that read `$NOTIFY_SOCKET`: `getenv` is not in POSIX's
    /// list, but glibc's and musl's take no lock and allocate nothing, and the crate
    /// never changes the environment. (A [`Notification`], which [`status`] builds too,
    /// is 4 KiB of stack: mind a small alternate signal stack.)
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`] with the errno and the detail `sendto NOTIFY_SOCKET <value>`
    /// (or `socket ...`), no stage: e.g. `ECONNREFUSED` when no one is bound to the
    /// address, `ENOENT` for a missing path, `EIO` for a short send (as libsystemd).
    /// [`ErrorKind::Capacity`], nothing sent, for a message longer than
    /// [`NOTIFY_CAPACITY`]: systemd would drop it unread.
    pub fn send(&self, message: &[u8]) -> Result<(), Error> {
        if message.len() > NOTIFY_CAPACITY {
            return Err(Error::new(
                None,
                ErrorKind::Capacity,
                "notification longer than 4096 bytes",
            ));
        }
        let fd = sys::unix_datagram_socket().map_err(|e| self.error(e, "socket"))?;
        let sent = sys::sendto_unix(fd, message, &self.addr, self.len);
        sys::close(fd);
        whole(sent, message.len()).map_err(|e| self.error(e, "sendto"))
    }

    /// The address as `NOTIFY_SOCKET` gave it, into `buf`: `@name` or the path.
    fn value<'b>(&self, buf: &'b mut [u8; SUN_PATH_LEN]) -> &'b [u8] {
        let path = &self.addr.sun_path;
        let used = (self.len as usize - PATH_OFFSET).min(SUN_PATH_LEN);
        for (out, &c) in buf.iter_mut().zip(&path[..used]) {
            *out = c as u8;
        }
        if path[0] == 0 {
            // Abstract: the name, after an '@' where its leading NUL is.
            buf[0] = b'@';
            &buf[..used]
        } else {
            // A path: without its NUL.
            &buf[..used - 1]
        }
    }

    #[cold]
    #[inline(never)]
    fn error(&self, errno: Errno, op: &str) -> Error {
        let mut e = Error::bare(None, ErrorKind::Os);
        e.errno = Some(errno);
        e.push_detail(op.as_bytes());
        e.push_detail(b" NOTIFY_SOCKET ");
        e.push_detail(self.value(&mut [0; SUN_PATH_LEN]));
        e
    }
}

impl fmt::Debug for NotifySocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0; SUN_PATH_LEN];
        write!(
            f,
            "NotifySocket(\"{}\")",
            self.value(&mut buf).escape_ascii()
        )
    }
}

/// A send's outcome for a datagram of `len` bytes: a short one (which Linux never
/// makes of a datagram) is `EIO`, as libsystemd has it.
fn whole(sent: Result<usize, Errno>, len: usize) -> Result<(), Errno> {
    match sent {
        Ok(n) if n == len => Ok(()),
        Ok(_) => Err(Errno::from_raw(libc::EIO)),
        Err(e) => Err(e),
    }
}

/// `NOTIFY_SOCKET`'s value (`None`: unset) as an address; `None` when unset or empty.
fn from_value(value: Option<&[u8]>) -> Result<Option<NotifySocket>, Error> {
    match value {
        None | Some([]) => Ok(None),
        Some(value) => NotifySocket::parse(value).map(Some),
    }
}

/// A notification: newline-separated KEY=VALUE assignments in a fixed buffer.
///
/// ```
/// use pandaemonium::notify::Notification;
///
/// let mut n = Notification::new();
/// n.field("READY", b"1")?.number("MAINPID", 4242)?;
/// assert_eq!(n.as_bytes(), b"READY=1\nMAINPID=4242\n");
/// # Ok::<(), pandaemonium::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Notification {
    buf: heapless::Vec<u8, NOTIFY_CAPACITY, u16>,
}

impl Notification {
    /// An empty notification.
    pub const fn new() -> Notification {
        Notification {
            buf: heapless::Vec::new(),
        }
    }

    /// Appends `KEY=value\n`.
    ///
    /// The value is bytes, checked only for the separators: systemd splits on both
    /// `\n` and `\r` and drops a datagram holding NUL, so none of them can be in a
    /// value, and a `STATUS` text can never smuggle in `\nREADY=1`.
    ///
    /// ```
    /// use pandaemonium::{notify::Notification, ErrorKind};
    ///
    /// let mut n = Notification::new();
    /// n.field("STATUS", b"loading")?;
    /// assert_eq!(n.field("status", b"x").unwrap_err().kind(), ErrorKind::InvalidConfig);
    /// assert_eq!(n.as_bytes(), b"STATUS=loading\n");
    /// # Ok::<(), pandaemonium::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Nothing is appended when refused: [`ErrorKind::InvalidConfig`] for a key that is
    /// empty or not `[A-Z0-9_]+`, or a value holding `\n`, `\r` or NUL;
    /// [`ErrorKind::Capacity`] when the datagram would grow past [`NOTIFY_CAPACITY`].
    pub fn field(&mut self, key: &str, value: &[u8]) -> Result<&mut Notification, Error> {
        let key = key.as_bytes();
        let key_ok = |c: &u8| matches!(c, b'A'..=b'Z' | b'0'..=b'9' | b'_');
        if key.is_empty() || !key.iter().all(key_ok) {
            let mut e = Error::new(
                None,
                ErrorKind::InvalidConfig,
                "notification key not [A-Z0-9_]+: ",
            );
            e.push_detail(key);
            return Err(e);
        }
        if value.iter().any(|c| matches!(c, b'\n' | b'\r' | 0)) {
            let mut e = Error::new(None, ErrorKind::InvalidConfig, "notification value of ");
            e.push_detail(key);
            e.push_detail(b" holds a newline, carriage return or NUL");
            return Err(e);
        }
        if self.buf.len() + key.len() + value.len() + 2 > NOTIFY_CAPACITY {
            let mut e = Error::new(
                None,
                ErrorKind::Capacity,
                "notification longer than 4096 bytes at ",
            );
            e.push_detail(key);
            return Err(e);
        }
        // All three fit: checked above.
        let _ = self.buf.extend_from_slice(key);
        let _ = self.buf.push(b'=');
        let _ = self.buf.extend_from_slice(value);
        let _ = self.buf.push(b'\n');
        Ok(self)
    }

    /// Appends `KEY=<n in decimal>\n`, as [`Notification::field`] does (no `core::fmt`).
    ///
    /// # Errors
    ///
    /// As [`Notification::field`]: a bad key, or no room.
    pub fn number(&mut self, key: &str, n: u64) -> Result<&mut Notification, Error> {
        self.field(key, Dec::unsigned(n).as_bytes())
    }

    /// The datagram: every assignment, each ending with `\n`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Sends the notification to `$NOTIFY_SOCKET`: `Ok(false)` when that is unset or
    /// empty (not supervised: nothing is sent), `Ok(true)` when sent.
    ///
    /// # Errors
    ///
    /// An invalid `NOTIFY_SOCKET` ([`NotifySocket::parse`]) or a failed send
    /// ([`NotifySocket::send`]).
    pub fn send(&self) -> Result<bool, Error> {
        send_env(self.as_bytes())
    }
}

impl Default for Notification {
    fn default() -> Notification {
        Notification::new()
    }
}

impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Notification(\"{}\")", self.as_bytes().escape_ascii())
    }
}

/// Sends `message` to `socket`: `Ok(false)` when there is none.
fn send_to(socket: Option<NotifySocket>, message: &[u8]) -> Result<bool, Error> {
    match socket {
        None => Ok(false),
        Some(socket) => socket.send(message).map(|()| true),
    }
}

/// Sends `message` to `$NOTIFY_SOCKET`: `Ok(false)` when it is unset. Async-signal-safe.
fn send_env(message: &[u8]) -> Result<bool, Error> {
    send_to(NotifySocket::from_env()?, message)
}

/// Room for the longest one-number message, `RELOADING=1\nMONOTONIC_USEC=` and 20 digits.
type Short = heapless::Vec<u8, 64, u8>;

/// `prefix`, `n` in decimal and `\n`, in a small stack buffer (async-signal-safe).
fn with_number(prefix: &[u8], n: u64) -> Short {
    let mut message = Short::new();
    // At most 27 + 20 + 1 bytes: they fit.
    let _ = message.extend_from_slice(prefix);
    let _ = message.extend_from_slice(Dec::unsigned(n).as_bytes());
    let _ = message.push(b'\n');
    message
}

/// `MAINPID=pid` and `READY=1` in one datagram: what a waiting launcher relays under
/// systemd for the daemon it detached (`ready::settle`).
pub(crate) fn relay_ready(pid: u32) -> Result<bool, Error> {
    let mut message = with_number(b"MAINPID=", u64::from(pid));
    // 8 + 10 + 1 + 8 bytes at most: they fit.
    let _ = message.extend_from_slice(b"READY=1\n");
    send_env(&message)
}

/// `STATUS=text`: the one line `systemctl status` shows.
///
/// # Errors
///
/// `text` holding a newline, carriage return or NUL, or too long
/// ([`Notification::field`]); then as [`Notification::send`].
pub fn status(text: &[u8]) -> Result<bool, Error> {
    Notification::new().field("STATUS", text)?.send()
}

/// `STOPPING=1`: the service is shutting down. Async-signal-safe, for a `SIGTERM`
/// handler: no allocation, only `getenv`, `socket`, `sendto` and `close`.
///
/// # Errors
///
/// As [`Notification::send`].
pub fn stopping() -> Result<bool, Error> {
    send_env(b"STOPPING=1\n")
}

/// `RELOADING=1` with `MONOTONIC_USEC=` ([`monotonic_usec`], the time the reload
/// started), which a `Type=notify-reload` service needs: without it systemd waits for
/// a reload it never sees. Send `READY=1` when the reload is done. Async-signal-safe.
///
/// # Errors
///
/// As [`Notification::send`].
pub fn reloading() -> Result<bool, Error> {
    send_env(&reloading_message(monotonic_usec()))
}

fn reloading_message(usec: u64) -> Short {
    with_number(b"RELOADING=1\nMONOTONIC_USEC=", usec)
}

/// `WATCHDOG=1`: the keep-alive ping, every half of [`watchdog_interval`].
/// Async-signal-safe.
///
/// # Errors
///
/// As [`Notification::send`].
pub fn watchdog() -> Result<bool, Error> {
    send_env(b"WATCHDOG=1\n")
}

/// `ERRNO=<n>`: why the service failed, as an errno. Async-signal-safe.
///
/// # Errors
///
/// [`ErrorKind::InvalidConfig`] for a negative number (systemd ignores it); else as
/// [`Notification::send`].
pub fn errno(e: Errno) -> Result<bool, Error> {
    send_env(&errno_message(e)?)
}

fn errno_message(e: Errno) -> Result<Short, Error> {
    match u64::try_from(e.raw()) {
        Ok(n) => Ok(with_number(b"ERRNO=", n)),
        Err(_) => Err(Error::new(
            None,
            ErrorKind::InvalidConfig,
            "ERRNO is negative",
        )),
    }
}

/// `EXTEND_TIMEOUT_USEC=<µs>`: asks for `by` more time to start, reload or stop,
/// counted from now (whole microseconds; past `u64::MAX` µs, `u64::MAX`).
/// Async-signal-safe.
///
/// # Errors
///
/// As [`Notification::send`].
pub fn extend_timeout(by: Duration) -> Result<bool, Error> {
    send_env(&extend_timeout_message(by))
}

fn extend_timeout_message(by: Duration) -> Short {
    let usec = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
    with_number(b"EXTEND_TIMEOUT_USEC=", usec)
}

/// The watchdog period systemd expects pings within (`WatchdogSec=`): ping
/// ([`watchdog`]) every half of it.
///
/// `WATCHDOG_USEC` when it is a number above 0 and `WATCHDOG_PID` is unset or this
/// process's pid; `None` otherwise. As libsystemd's `sd_watchdog_enabled`, a
/// `WATCHDOG_PID` that is set but not a number is not for us either.
/// Async-signal-safe (see [`NotifySocket::send`]).
///
/// ```
/// use pandaemonium::notify;
///
/// if let Some(period) = notify::watchdog_interval() {
///     let ping_every = period / 2;
///     let _ = ping_every; // a timer that calls notify::watchdog()
/// }
/// ```
pub fn watchdog_interval() -> Option<Duration> {
    let var = |name| sys::getenv(name).map(|v: &core::ffi::CStr| v.to_bytes());
    watchdog_from(
        var(c"WATCHDOG_USEC"),
        var(c"WATCHDOG_PID"),
        sys::getpid() as u64,
    )
}

/// The watchdog period that `WATCHDOG_USEC` and `WATCHDOG_PID` give process `me`.
fn watchdog_from(usec: Option<&[u8]>, pid: Option<&[u8]>, me: u64) -> Option<Duration> {
    let usec = parse_u64(usec?).filter(|&n| n > 0)?;
    match pid {
        Some(pid) if parse_u64(pid) != Some(me) => None,
        _ => Some(Duration::from_micros(usec)),
    }
}

/// `CLOCK_MONOTONIC` in microseconds, what `MONOTONIC_USEC=` carries. Async-signal-safe.
///
/// A `u64` on every target, computed in `u64`: where the libc crate's `time_t` is 32
/// bits (i686 musl), seconds times a million in `time_t` overflows after 35 minutes of
/// uptime (the sd-notify crate's bug there).
pub fn monotonic_usec() -> u64 {
    sys::monotonic_us()
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::test_dir::TestDir;
    use std::os::unix::net::UnixDatagram;

    /// `sizeof(sa_family_t)` on Linux: where `sun_path` starts.
    const OFFSET: usize = core::mem::offset_of!(libc::sockaddr_un, sun_path);

    fn refused(value: &[u8]) -> Error {
        match NotifySocket::parse(value) {
            Ok(s) => panic!("{:?} accepted as {s:?}", value.escape_ascii()),
            Err(e) => e,
        }
    }

    /// The bytes of `sun_path` that are sent.
    fn sent_path(s: &NotifySocket) -> std::vec::Vec<u8> {
        s.addr.sun_path[..s.len as usize - OFFSET]
            .iter()
            .map(|&c| c as u8)
            .collect()
    }

    #[test]
    fn a_path_is_sent_with_its_nul() {
        let s = NotifySocket::parse(b"/run/systemd/notify").unwrap();
        assert_eq!(s.addr.sun_family, libc::AF_UNIX as libc::sa_family_t);
        assert_eq!(s.len as usize, OFFSET + 19 + 1);
        assert_eq!(sent_path(&s), b"/run/systemd/notify\0");
        assert_eq!(
            std::format!("{s:?}"),
            "NotifySocket(\"/run/systemd/notify\")"
        );
        // The longest that fits: 107 bytes and the NUL fill sun_path.
        let mut long = [b'p'; 107];
        long[0] = b'/';
        let s = NotifySocket::parse(&long).unwrap();
        assert_eq!(s.len as usize, OFFSET + 108);
        assert_eq!(s.len as usize, core::mem::size_of::<libc::sockaddr_un>());
        assert_eq!(sent_path(&s)[..107], long);
        assert_eq!(sent_path(&s)[107], 0);
    }

    #[test]
    fn an_abstract_name_is_sent_with_its_exact_length() {
        let s = NotifySocket::parse(b"@pdm").unwrap();
        assert_eq!(s.addr.sun_family, libc::AF_UNIX as libc::sa_family_t);
        assert_eq!(OFFSET, 2);
        assert_eq!(s.len as usize, OFFSET + 1 + 3);
        assert_eq!(sent_path(&s), b"\0pdm");
        assert_eq!(std::format!("{s:?}"), "NotifySocket(\"@pdm\")");
        // The longest: a NUL and 107 bytes fill sun_path.
        let mut long = [b'n'; 108];
        long[0] = b'@';
        let s = NotifySocket::parse(&long).unwrap();
        assert_eq!(s.len as usize, OFFSET + 108);
        assert_eq!(sent_path(&s)[0], 0);
        assert_eq!(sent_path(&s)[1..], long[1..]);
    }

    #[test]
    fn bad_addresses_are_refused() {
        let mut long_path = [b'p'; 108];
        long_path[0] = b'/';
        let mut long_name = [b'n'; 109];
        long_name[0] = b'@';
        for (value, why) in [
            (&b""[..], "NOTIFY_SOCKET is empty"),
            (b"@", "NOTIFY_SOCKET names no socket: @"),
            (b"/", "NOTIFY_SOCKET names no socket: /"),
            (
                b"run/notify",
                "NOTIFY_SOCKET is neither an absolute path nor @name: run/notify",
            ),
            (
                b"./notify",
                "NOTIFY_SOCKET is neither an absolute path nor @name: ./notify",
            ),
            (
                b"vsock:2:1234",
                "NOTIFY_SOCKET vsock is not supported: vsock:2:1234",
            ),
            (
                b"vsock-dgram:2:1234",
                "NOTIFY_SOCKET vsock is not supported: vsock-dgram:2:1234",
            ),
            (b"/run/a\0b", "NOTIFY_SOCKET holds a NUL byte: /run/a?b"),
            (b"@a\0b", "NOTIFY_SOCKET holds a NUL byte: @a?b"),
        ] {
            let e = refused(value);
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{why}");
            assert_eq!(e.stage(), None);
            assert_eq!(e.errno(), None);
            assert_eq!(e.detail(), why);
        }
        let e = refused(&long_path);
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(
            e.detail()
                .starts_with("NOTIFY_SOCKET path longer than 107 bytes: /ppp"),
            "{}",
            e.detail()
        );
        let e = refused(&long_name);
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(
            e.detail()
                .starts_with("NOTIFY_SOCKET abstract name longer than 107 bytes: @nnn"),
            "{}",
            e.detail()
        );
    }

    #[test]
    fn an_unset_or_empty_variable_is_no_socket() {
        assert!(from_value(None).unwrap().is_none());
        assert!(from_value(Some(b"")).unwrap().is_none());
        let s = from_value(Some(b"@x")).unwrap().unwrap();
        assert_eq!(sent_path(&s), b"\0x");
        assert_eq!(
            from_value(Some(b"x")).unwrap_err().kind(),
            ErrorKind::InvalidConfig
        );
    }

    /// What `receiver` got, one datagram (waiting at most a second).
    fn received(receiver: &UnixDatagram) -> std::vec::Vec<u8> {
        receiver
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = [0u8; NOTIFY_CAPACITY + 1];
        let n = receiver.recv(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn a_datagram_reaches_a_path() {
        let dir = TestDir::new("notify");
        let path = dir.path("n.sock");
        let receiver = UnixDatagram::bind(path.to_str().unwrap()).unwrap();
        let socket = NotifySocket::parse(path.to_bytes()).unwrap();
        socket.send(b"READY=1\n").unwrap();
        assert_eq!(received(&receiver), b"READY=1\n");
        // Through the helpers' path, and the largest datagram whole.
        let mut n = Notification::new();
        n.field("STATUS", &[b's'; NOTIFY_CAPACITY - 8]).unwrap();
        assert_eq!(send_to(Some(socket), n.as_bytes()), Ok(true));
        assert_eq!(received(&receiver), n.as_bytes());
        assert_eq!(send_to(None, b"READY=1\n"), Ok(false));
        // Nothing else came.
        receiver.set_nonblocking(true).unwrap();
        assert!(receiver.recv(&mut [0; 16]).is_err());
    }

    #[test]
    fn a_datagram_reaches_an_abstract_name() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::SocketAddr;

        static NEXT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
        let name = std::format!("pdm-notify-{}-{n}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        let value = std::format!("@{name}");
        let socket = NotifySocket::parse(value.as_bytes()).unwrap();
        socket.send(b"STOPPING=1\n").unwrap();
        assert_eq!(received(&receiver), b"STOPPING=1\n");
    }

    #[test]
    fn a_failed_send_names_the_socket() {
        let dir = TestDir::new("notify");
        let path = dir.path("missing.sock");
        let e = NotifySocket::parse(path.to_bytes())
            .unwrap()
            .send(b"READY=1\n")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Os);
        assert_eq!(e.stage(), None);
        assert_eq!(e.errno(), Some(Errno::NOENT));
        let want = std::format!("sendto NOTIFY_SOCKET {}", path.to_str().unwrap());
        assert_eq!(e.detail(), want);

        let name = std::format!("@pdm-notify-nobody-{}", std::process::id());
        let e = NotifySocket::parse(name.as_bytes())
            .unwrap()
            .send(b"READY=1\n")
            .unwrap_err();
        assert_eq!(e.errno(), Some(Errno::from_raw(libc::ECONNREFUSED)));
        assert_eq!(e.detail(), std::format!("sendto NOTIFY_SOCKET {name}"));
        assert_eq!(
            send_to(NotifySocket::parse(name.as_bytes()).ok(), b"READY=1\n"),
            Err(e)
        );
    }

    #[test]
    fn a_short_send_is_an_error() {
        assert_eq!(whole(Ok(8), 8), Ok(()));
        assert_eq!(whole(Ok(0), 0), Ok(()));
        assert_eq!(whole(Ok(7), 8), Err(Errno::from_raw(libc::EIO)));
        assert_eq!(whole(Err(Errno::AGAIN), 8), Err(Errno::AGAIN));
    }

    #[test]
    fn a_datagram_past_the_capacity_is_not_sent() {
        let dir = TestDir::new("notify");
        let path = dir.path("n.sock");
        let receiver = UnixDatagram::bind(path.to_str().unwrap()).unwrap();
        let socket = NotifySocket::parse(path.to_bytes()).unwrap();
        let e = socket.send(&[b'x'; NOTIFY_CAPACITY + 1]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Capacity);
        assert_eq!(e.stage(), None);
        socket.send(&[b'x'; NOTIFY_CAPACITY]).unwrap();
        assert_eq!(received(&receiver), [b'x'; NOTIFY_CAPACITY]);
    }

    #[test]
    fn fields_are_appended_as_assignments() {
        let mut n = Notification::default();
        assert_eq!(n.as_bytes(), b"");
        n.field("READY", b"1")
            .unwrap()
            .field("STATUS", b"")
            .unwrap()
            .field("X_OWN_2", "tr\u{e8}s bien".as_bytes())
            .unwrap();
        assert_eq!(
            n.as_bytes(),
            "READY=1\nSTATUS=\nX_OWN_2=tr\u{e8}s bien\n".as_bytes()
        );
        assert_eq!(
            std::format!("{n:?}"),
            "Notification(\"READY=1\\nSTATUS=\\nX_OWN_2=tr\\xc3\\xa8s bien\\n\")"
        );
        assert_eq!(n.clone(), n);
    }

    #[test]
    fn bad_fields_are_refused_and_nothing_is_appended() {
        let mut n = Notification::new();
        n.field("READY", b"1").unwrap();
        for key in ["", "status", "Ready", "A-B", "A=B", "A B", "A\nB", "\u{c9}"] {
            let e = n.field(key, b"1").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{key:?}");
            assert_eq!(e.stage(), None);
            assert!(e.detail().starts_with("notification key not [A-Z0-9_]+: "));
        }
        for value in [
            &b"up\nREADY=1"[..],
            b"up\rREADY=1",
            b"up\0",
            b"\n",
            b"\r",
            b"\0",
        ] {
            let e = n.field("STATUS", value).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            assert_eq!(
                e.detail(),
                "notification value of STATUS holds a newline, carriage return or NUL"
            );
        }
        assert_eq!(n.as_bytes(), b"READY=1\n");
        // Every key byte class at its edges.
        n.field("AZ09_", b"").unwrap();
        assert_eq!(n.as_bytes(), b"READY=1\nAZ09_=\n");
        for key in ["@", "[", "/", ":", "^", "`"] {
            assert!(n.field(key, b"").is_err(), "{key}");
        }
    }

    #[test]
    fn the_capacity_is_exactly_4096_bytes() {
        let mut n = Notification::new();
        // "STATUS=" + value + "\n" = 4096 bytes.
        let value = [b'v'; NOTIFY_CAPACITY - 8];
        n.field("STATUS", &value).unwrap();
        assert_eq!(n.as_bytes().len(), NOTIFY_CAPACITY);
        let e = n.field("A", b"").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Capacity);
        assert_eq!(e.stage(), None);
        assert_eq!(n.as_bytes().len(), NOTIFY_CAPACITY);

        // One byte more than fits, and nothing appended.
        let mut n = Notification::new();
        n.field("READY", b"1").unwrap();
        let e = n.field("STATUS", &[b'v'; NOTIFY_CAPACITY - 8 - 8 + 1]);
        assert_eq!(e.unwrap_err().kind(), ErrorKind::Capacity);
        assert_eq!(n.as_bytes(), b"READY=1\n");
        n.field("STATUS", &[b'v'; NOTIFY_CAPACITY - 8 - 8]).unwrap();
        assert_eq!(n.as_bytes().len(), NOTIFY_CAPACITY);
        assert_eq!(
            status(&[b'v'; NOTIFY_CAPACITY]).unwrap_err().kind(),
            ErrorKind::Capacity
        );
    }

    #[test]
    fn numbers_are_decimal() {
        let mut n = Notification::new();
        n.number("A", 0).unwrap().number("B", u64::MAX).unwrap();
        n.number("C", 1_000_000).unwrap();
        assert_eq!(n.as_bytes(), b"A=0\nB=18446744073709551615\nC=1000000\n");
        assert_eq!(
            n.number("c", 1).unwrap_err().kind(),
            ErrorKind::InvalidConfig
        );
    }

    #[test]
    fn the_helpers_messages() {
        assert_eq!(
            &reloading_message(u64::MAX)[..],
            b"RELOADING=1\nMONOTONIC_USEC=18446744073709551615\n"
        );
        assert_eq!(
            &reloading_message(0)[..],
            b"RELOADING=1\nMONOTONIC_USEC=0\n"
        );
        assert_eq!(&errno_message(Errno::ACCES).unwrap()[..], b"ERRNO=13\n");
        assert_eq!(
            &errno_message(Errno::from_raw(0)).unwrap()[..],
            b"ERRNO=0\n"
        );
        let e = errno_message(Errno::from_raw(-1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert_eq!(e.stage(), None);
        assert_eq!(
            &extend_timeout_message(Duration::from_millis(1500))[..],
            b"EXTEND_TIMEOUT_USEC=1500000\n"
        );
        assert_eq!(
            &extend_timeout_message(Duration::from_nanos(1999))[..],
            b"EXTEND_TIMEOUT_USEC=1\n"
        );
        assert_eq!(
            &extend_timeout_message(Duration::MAX)[..],
            b"EXTEND_TIMEOUT_USEC=18446744073709551615\n"
        );
    }

    /// Not supervised (the usual test environment), every helper is a no-op. Under a
    /// service manager they would really notify it, so they are not called then.
    #[test]
    fn unsupervised_the_helpers_send_nothing() {
        if NotifySocket::from_env().unwrap().is_some() {
            return;
        }
        assert_eq!(stopping(), Ok(false));
        assert_eq!(reloading(), Ok(false));
        assert_eq!(watchdog(), Ok(false));
        assert_eq!(status(b"up"), Ok(false));
        assert_eq!(errno(Errno::ACCES), Ok(false));
        assert_eq!(extend_timeout(Duration::from_secs(1)), Ok(false));
        assert_eq!(Notification::new().send(), Ok(false));
        // Refusals come before the environment is read.
        assert!(status(b"a\nREADY=1").is_err());
        assert!(errno(Errno::from_raw(-1)).is_err());
    }

    #[test]
    fn the_watchdog_is_for_the_named_pid_only() {
        let period = Some(Duration::from_micros(200_000));
        assert_eq!(watchdog_from(Some(b"200000"), None, 42), period);
        assert_eq!(watchdog_from(Some(b"200000"), Some(b"42"), 42), period);
        assert_eq!(watchdog_from(Some(b"200000"), Some(b"43"), 42), None);
        assert_eq!(watchdog_from(Some(b"200000"), Some(b""), 42), None);
        assert_eq!(watchdog_from(Some(b"200000"), Some(b"x"), 42), None);
        assert_eq!(watchdog_from(Some(b"0"), None, 42), None);
        assert_eq!(
            watchdog_from(Some(b"1"), None, 42),
            Some(Duration::from_micros(1))
        );
        assert_eq!(watchdog_from(Some(b""), None, 42), None);
        assert_eq!(watchdog_from(Some(b"-1"), None, 42), None);
        assert_eq!(watchdog_from(None, Some(b"42"), 42), None);
        assert_eq!(
            watchdog_from(Some(b"18446744073709551615"), None, 1),
            Some(Duration::from_micros(u64::MAX))
        );
        // The environment's own: systemd would have to set both for this process.
        if std::env::var_os("WATCHDOG_USEC").is_none() {
            assert_eq!(watchdog_interval(), None);
        }
    }

    #[test]
    fn the_monotonic_clock_in_microseconds() {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is valid writable memory.
        #[allow(unsafe_code)]
        unsafe {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts)
        };
        let before = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
        let now = monotonic_usec();
        // SAFETY: as above.
        #[allow(unsafe_code)]
        unsafe {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts)
        };
        let after = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
        assert!(before <= now && now <= after, "{before} {now} {after}");
        assert!(after - before < 1_000_000);
        // Microseconds, not milliseconds or nanoseconds.
        let ms = crate::os::monotonic_ms();
        assert!(now / 1000 <= ms && ms <= now / 1000 + 1000, "{now} {ms}");
    }
}
