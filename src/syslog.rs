//! A program's output to syslog: one datagram per line on `/dev/log`, from a fixed
//! buffer, never blocking, for supervisors (the `pandaemonium` tool's `--syslog`,
//! FreeBSD daemon(8)'s `-S`).
//!
//! Each line goes to the local syslog daemon's `AF_UNIX` datagram socket as
//! `<PRI>TAG[PID]: MESSAGE` (RFC 3164's form, without its timestamp), PRI being
//! facility × 8 + severity ([`Facility`], [`Severity`], named as in syslog.conf):
//!
//! ```
//! use pandaemonium::syslog::{Facility, Severity, Syslog};
//! use std::os::unix::net::UnixDatagram;
//!
//! # let dir = std::env::temp_dir().join(format!("pdm-syslog-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("log"); // /dev/log, for a real syslog daemon
//! let listener = UnixDatagram::bind(&path).unwrap();
//! let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
//!
//! let facility = Facility::parse(b"daemon").unwrap();
//! let mut log = Syslog::new(&c_path, facility, Severity::NOTICE, b"mytag")?;
//! log.send_line(4242, b"hello\r")?;
//! log.write(4242, b"two lines\nand a ")?; // the second one is not ended yet
//! log.write(4242, b"half\n")?;
//!
//! let mut buf = [0; 64];
//! for expected in ["<29>mytag[4242]: hello", "<29>mytag[4242]: two lines",
//!                  "<29>mytag[4242]: and a half"] {
//!     let n = listener.recv(&mut buf).unwrap();
//!     assert_eq!(&buf[..n], expected.as_bytes());
//! }
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), pandaemonium::Errno>(())
//! ```
//!
//! # The format
//!
//! No timestamp: busybox syslogd takes a message's own `Mmm dd hh:mm:ss ` only when
//! it starts with one (`timestamp_and_log` in its `syslogd.c` checks the spaces and
//! colons at bytes 3, 6, 9, 12 and 15) and stamps any other with its own local time
//! (`time` and `ctime`); OpenWrt's logd stamps every message with its own clock
//! (`log_add`). Local time in a `no_std` process would mean the C library's time-zone
//! code (files read and memory allocated after fork); the daemon has it already.
//!
//! One caveat, OpenWrt logd's: it removes the first 16 bytes after `<PRI>` of any
//! message whose 16th byte is a space, timestamp or not (it expects the C library's
//! `syslog(3)`, which always sends one). `TAG[PID]: MESSAGE` whose 16th byte is a space
//! (a 7-byte tag with a 5-digit pid, `dnsmasq[12345]: `, or a space at that place of
//! a short header's message) loses those bytes there; busybox syslogd is not affected.
//!
//! - **Lines**: `\n` ends a line; a `\r` before it is dropped; an empty line is not
//!   sent (syslog has no use for an empty message). Other bytes are sent as they are
//!   (syslog daemons escape control characters themselves).
//! - **Long lines**: a datagram is at most [`DATAGRAM_CAPACITY`] bytes, header
//!   included; a longer line is sent as several datagrams, each with the header, cut
//!   before a UTF-8 character that would not fit whole. The receiver's buffer may be
//!   smaller: OpenWrt's logd reads 1023 bytes of a datagram, busybox syslogd
//!   `CONFIG_FEATURE_SYSLOGD_READ_BUFFER_SIZE` − 1 (255 by default); each drops the
//!   rest.
//! - **TAG** is cut to [`TAG_CAPACITY`] bytes (RFC 3164's limit); PID is given with
//!   each write, so one sender serves a program that is restarted.
//!
//! # Never blocking
//!
//! Datagrams are sent with `MSG_DONTWAIT | MSG_NOSIGNAL`: a writer is never held up by
//! a slow, stopped or missing syslog daemon; what can't be sent is dropped. The socket
//! is connected on the first line. When a send fails because the daemon went away (it
//! restarted: `ECONNREFUSED`), the socket is connected again and the datagram sent
//! again; when no daemon listens (the socket missing: `ENOENT`; nobody reading it:
//! `ECONNREFUSED`), the line is dropped and the next line tries again. At most one
//! connection attempt per line: a syslog daemon that restarts or starts late gets the
//! lines that follow, one that is missing costs one failed `connect` per line, with
//! no loop. A line the daemon can't take now (its queue full: `EAGAIN`, `ENOBUFS`) is
//! dropped, the connection kept. A line is sent whole or its rest is dropped: once
//! one of its datagrams failed, the following ones are not sent.
//!
//! Everything is in the [`Syslog`] value: no allocation, no global state; each call
//! makes system calls only (`socket`, `connect`, `send`, `close`), so it may be used
//! after fork.
#![allow(unsafe_code)]

use core::ffi::{c_int, CStr};

use crate::decimal::Dec;
use crate::{sys, Errno};

/// The local syslog daemon's socket.
pub const DEFAULT_PATH: &CStr = c"/dev/log";

/// The longest TAG sent (RFC 3164: 32 characters); a longer one is cut.
pub const TAG_CAPACITY: usize = 32;

/// The longest datagram sent, header included: 1023 bytes, what OpenWrt's logd
/// receives whole (its 1024-byte buffer ends with the NUL it adds). With a 32-byte tag
/// and a 10-digit pid, 972 bytes of message.
pub const DATAGRAM_CAPACITY: usize = 1023;

/// The size of `sun_path` (108 on Linux): the longest socket path, with its NUL.
const SUN_PATH_LEN: usize = core::mem::size_of::<libc::sockaddr_un>() - PATH_OFFSET;
const PATH_OFFSET: usize = core::mem::offset_of!(libc::sockaddr_un, sun_path);

/// The syslog.conf names, each ended by a space: facilities 0 to 11 (local0 to local7,
/// 16 to 23, are parsed apart), then the severities 0 to 7.
const FACILITIES: &str = "kern user mail daemon auth syslog lpr news uucp cron authpriv ftp ";
const SEVERITIES: &str = "emerg alert crit err warning notice info debug ";

/// The position of `name` among `names`.
fn lookup(names: &str, name: &[u8]) -> Option<u8> {
    names
        .split_terminator(' ')
        .position(|n| n.as_bytes() == name)
        .map(|i| i as u8)
}

/// A syslog facility, by its code (`daemon` is 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facility(u8);

impl Facility {
    /// `kern` (0).
    pub const KERN: Facility = Facility(0);
    /// `user` (1).
    pub const USER: Facility = Facility(1);
    /// `mail` (2).
    pub const MAIL: Facility = Facility(2);
    /// `daemon` (3).
    pub const DAEMON: Facility = Facility(3);
    /// `auth` (4).
    pub const AUTH: Facility = Facility(4);
    /// `syslog` (5).
    pub const SYSLOG: Facility = Facility(5);
    /// `lpr` (6).
    pub const LPR: Facility = Facility(6);
    /// `news` (7).
    pub const NEWS: Facility = Facility(7);
    /// `uucp` (8).
    pub const UUCP: Facility = Facility(8);
    /// `cron` (9).
    pub const CRON: Facility = Facility(9);
    /// `authpriv` (10).
    pub const AUTHPRIV: Facility = Facility(10);
    /// `ftp` (11).
    pub const FTP: Facility = Facility(11);
    /// `local0` (16); `local1` to `local7` are 17 to 23 ([`local`](Self::local)).
    pub const LOCAL0: Facility = Facility(16);

    /// `localN` (N 0 to 7).
    pub const fn local(n: u8) -> Option<Facility> {
        if n < 8 {
            Some(Facility(16 + n))
        } else {
            None
        }
    }

    /// A facility by its syslog.conf name: `kern`, `user`, `mail`, `daemon`, `auth`,
    /// `syslog`, `lpr`, `news`, `uucp`, `cron`, `authpriv`, `ftp`, `local0` to
    /// `local7`, in lower case. `None` for anything else.
    pub fn parse(name: &[u8]) -> Option<Facility> {
        match name {
            [b'l', b'o', b'c', b'a', b'l', d] => Facility::local(d.wrapping_sub(b'0')),
            _ => lookup(FACILITIES, name).map(Facility),
        }
    }

    /// Its code (0 to 23).
    pub const fn code(self) -> u8 {
        self.0
    }
}

/// A syslog severity (priority level), by its code (`notice` is 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Severity(u8);

impl Severity {
    /// `emerg` (0).
    pub const EMERG: Severity = Severity(0);
    /// `alert` (1).
    pub const ALERT: Severity = Severity(1);
    /// `crit` (2).
    pub const CRIT: Severity = Severity(2);
    /// `err` (3).
    pub const ERR: Severity = Severity(3);
    /// `warning` (4).
    pub const WARNING: Severity = Severity(4);
    /// `notice` (5).
    pub const NOTICE: Severity = Severity(5);
    /// `info` (6).
    pub const INFO: Severity = Severity(6);
    /// `debug` (7).
    pub const DEBUG: Severity = Severity(7);

    /// A severity by its syslog.conf name: `emerg`, `alert`, `crit`, `err`, `warning`,
    /// `notice`, `info`, `debug`, in lower case. `None` for anything else.
    pub fn parse(name: &[u8]) -> Option<Severity> {
        lookup(SEVERITIES, name).map(Severity)
    }

    /// Its code (0 to 7).
    pub const fn code(self) -> u8 {
        self.0
    }
}

/// Whether a failed `send` means the daemon is busy (its queue full), not gone.
fn busy(e: Errno) -> bool {
    e == Errno::AGAIN || e == Errno::from_raw(libc::ENOBUFS)
}

/// Where a full message is cut: before its last character when that one is an
/// incomplete UTF-8 sequence, else at its end.
fn cut(msg: &[u8]) -> usize {
    let n = msg.len();
    for back in 1..=n.min(3) {
        let b = msg[n - back];
        if b & 0xc0 != 0x80 {
            // ASCII or a lead byte: how long its sequence is.
            let len = match b {
                0xf0.. => 4,
                0xe0.. => 3,
                0xc0.. => 2,
                _ => 1,
            };
            return if len > back { n - back } else { n };
        }
    }
    n
}

/// Lines to a syslog daemon's datagram socket, with a fixed buffer (see the
/// [module](self) docs).
pub struct Syslog {
    /// The socket, or `NO_FD` until it is made.
    fd: c_int,
    /// Whether `fd` is connected to the daemon.
    connected: bool,
    addr: libc::sockaddr_un,
    pri: u8,
    tag: [u8; TAG_CAPACITY],
    tag_len: usize,
    /// The pid in the header.
    pid: u32,
    /// The datagram being built: the header (`head` bytes), then the message.
    buf: [u8; DATAGRAM_CAPACITY],
    head: usize,
    len: usize,
    /// This line has had its connection attempt.
    tried: bool,
    /// One of this line's datagrams failed: its rest is dropped.
    dropping: bool,
}

impl core::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Syslog")
            .field("fd", &self.fd)
            .field("connected", &self.connected)
            .field("pri", &self.pri)
            .finish_non_exhaustive()
    }
}

impl Syslog {
    /// A sender to the datagram socket at `path` ([`DEFAULT_PATH`] for the system's
    /// daemon), with `facility` and `severity` for every line and `tag` (cut to
    /// [`TAG_CAPACITY`] bytes) before the pid. Nothing is opened yet: the first line
    /// connects, so the daemon may start later. Async-signal-safe.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an empty path; `ENAMETOOLONG` for a path of more than 107 bytes
    /// (`sun_path`).
    pub fn new(
        path: &CStr,
        facility: Facility,
        severity: Severity,
        tag: &[u8],
    ) -> Result<Syslog, Errno> {
        let path = path.to_bytes();
        if path.is_empty() {
            return Err(Errno::INVAL);
        }
        if path.len() >= SUN_PATH_LEN {
            return Err(Errno::NAMETOOLONG);
        }
        let mut addr = libc::sockaddr_un {
            sun_family: libc::AF_UNIX as libc::sa_family_t,
            sun_path: [0; SUN_PATH_LEN],
        };
        for (slot, &b) in addr.sun_path.iter_mut().zip(path) {
            *slot = b as libc::c_char;
        }
        let tag_len = tag.len().min(TAG_CAPACITY);
        let mut log = Syslog {
            fd: sys::NO_FD,
            connected: false,
            addr,
            pri: facility.0 * 8 + severity.0,
            tag: [0; TAG_CAPACITY],
            tag_len,
            pid: 0,
            buf: [0; DATAGRAM_CAPACITY],
            head: 0,
            len: 0,
            tried: false,
            dropping: false,
        };
        log.tag[..tag_len].copy_from_slice(&tag[..tag_len]);
        log.header(0);
        Ok(log)
    }

    /// Connects to the daemon now (the first line otherwise does), making the socket
    /// if need be: to learn early whether one listens. Async-signal-safe.
    ///
    /// # Errors
    ///
    /// `socket` failures (`EMFILE`); `connect` failures: `ENOENT` when the socket
    /// does not exist, `ECONNREFUSED` when nothing listens on it, `EACCES`.
    pub fn connect(&mut self) -> Result<(), Errno> {
        if self.fd == sys::NO_FD {
            self.fd = sys::unix_datagram_socket()?;
        }
        self.connected = false;
        let len = core::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        // SAFETY: addr is a valid sockaddr_un of len bytes; its path is NUL-terminated
        // inside it (`new` leaves at least one NUL).
        let ret = unsafe {
            libc::connect(
                self.fd,
                (&self.addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if ret == -1 {
            return Err(Errno::last());
        }
        self.connected = true;
        Ok(())
    }

    /// Whether the socket is connected (a line was sent, or [`connect`](Self::connect)
    /// succeeded, and no send failed since).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Takes `bytes` of the output of the process `pid`: each line they end is sent
    /// (with the text before them that earlier calls left pending), the text after
    /// the last `\n` waits for the rest of its line ([`flush`](Self::flush) sends it).
    /// A new `pid` ends the pending line of the previous one first, under its pid.
    /// Never blocks. Async-signal-safe.
    ///
    /// # Errors
    ///
    /// The first failure of the datagrams sent in this call (each failed line is
    /// dropped, the others are still sent): `ENOENT`, `ECONNREFUSED` (no daemon; the
    /// next line connects again), `EAGAIN`, `ENOBUFS` (the daemon's queue is full).
    pub fn write(&mut self, pid: u32, bytes: &[u8]) -> Result<(), Errno> {
        let mut result = Ok(());
        if pid != self.pid {
            result = self.flush();
            self.header(pid);
        }
        for &b in bytes {
            if b == b'\n' {
                result = result.and(self.flush());
                continue;
            }
            if self.len == DATAGRAM_CAPACITY {
                // A long line: what fits goes now, the line goes on.
                let at = self.head + cut(&self.buf[self.head..]);
                result = result.and(self.send(at));
                self.buf.copy_within(at..self.len, self.head);
                self.len = self.head + (self.len - at);
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        result
    }

    /// Ends the pending line (text that [`write`](Self::write) got after its last
    /// `\n`) and sends it, if it is not empty. Async-signal-safe.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn flush(&mut self) -> Result<(), Errno> {
        if self.buf[self.head..self.len].last() == Some(&b'\r') {
            self.len -= 1;
        }
        let result = if self.len > self.head {
            self.send(self.len)
        } else {
            Ok(())
        };
        self.len = self.head;
        self.tried = false;
        self.dropping = false;
        result
    }

    /// Sends `line` as a line of its own (after the pending one, if any, is ended):
    /// [`flush`](Self::flush), [`write`](Self::write), [`flush`](Self::flush). A `\n`
    /// in it ends a line too. Async-signal-safe.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn send_line(&mut self, pid: u32, line: &[u8]) -> Result<(), Errno> {
        let pending = self.flush();
        let sent = self.write(pid, line);
        pending.and(sent).and(self.flush())
    }

    /// Writes the header for `pid` at the start of the buffer (no message pending).
    fn header(&mut self, pid: u32) {
        let pri = Dec::new(i64::from(self.pri));
        let pid_text = Dec::new(i64::from(pid));
        let tag = &self.tag[..self.tag_len];
        let mut at = 0;
        let parts: [&[u8]; 7] = [
            b"<",
            pri.as_bytes(),
            b">",
            tag,
            b"[",
            pid_text.as_bytes(),
            b"]: ",
        ];
        for part in parts {
            self.buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        self.pid = pid;
        self.head = at;
        self.len = at;
    }

    /// Sends the first `len` bytes of the buffer as one datagram, unless this line
    /// already failed.
    fn send(&mut self, len: usize) -> Result<(), Errno> {
        if self.dropping {
            return Ok(());
        }
        let result = self.deliver(len);
        self.dropping = result.is_err();
        result
    }

    /// [`send`](Self::send)'s datagram, connecting first when not connected and once
    /// more when the daemon went away, at most once per line.
    fn deliver(&mut self, len: usize) -> Result<(), Errno> {
        loop {
            if !self.connected {
                self.tried = true;
                self.connect()?;
            }
            match send_datagram(self.fd, &self.buf[..len]) {
                Err(e) if !busy(e) => {
                    // The daemon went away (restarted, its socket removed).
                    self.connected = false;
                    if self.tried {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        if self.fd != sys::NO_FD {
            sys::close(self.fd);
        }
    }
}

/// Never block, never raise `SIGPIPE`.
const SEND_FLAGS: c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;

/// `send(2)` of one datagram with `MSG_DONTWAIT | MSG_NOSIGNAL`, retried on `EINTR`.
/// Async-signal-safe.
fn send_datagram(fd: c_int, buf: &[u8]) -> Result<(), Errno> {
    loop {
        // SAFETY: buf is valid readable memory of buf.len() bytes.
        let ret = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), SEND_FLAGS) };
        if ret >= 0 {
            return Ok(());
        }
        let e = Errno::last();
        if e != Errno::INTR {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::os::unix::net::UnixDatagram;
    use std::string::String;
    use std::vec::Vec;

    use super::*;
    use crate::test_dir::TestDir;

    /// A listener at `DIR/log` and a sender to it (daemon.notice, `tag`).
    fn pair(tag: &[u8]) -> (TestDir, UnixDatagram, Syslog) {
        let dir = TestDir::new("syslog");
        let listener = UnixDatagram::bind(dir.0.join("log")).unwrap();
        listener.set_nonblocking(true).unwrap();
        let log = Syslog::new(&dir.path("log"), Facility::DAEMON, Severity::NOTICE, tag).unwrap();
        (dir, listener, log)
    }

    /// Every datagram queued, as text.
    fn received(listener: &UnixDatagram) -> Vec<String> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = listener.recv(&mut buf) {
            got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        got
    }

    #[test]
    fn names_are_syslog_confs() {
        let facilities = [
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
            "authpriv", "ftp",
        ];
        for (code, name) in facilities.iter().enumerate() {
            let f = Facility::parse(name.as_bytes()).unwrap();
            assert_eq!(f.code() as usize, code, "{name}");
        }
        for n in 0..8u8 {
            let name = std::format!("local{n}");
            assert_eq!(Facility::parse(name.as_bytes()), Facility::local(n));
            assert_eq!(Facility::local(n).unwrap().code(), 16 + n);
        }
        assert_eq!(Facility::local(0), Some(Facility::LOCAL0));
        assert_eq!(Facility::local(8), None);
        for bad in [
            &b"local8"[..],
            b"local",
            b"local/",
            b"local10",
            b"Daemon",
            b"daemo",
            b"daemonx",
            b"",
            b" ",
            b"kern user",
        ] {
            assert_eq!(Facility::parse(bad), None, "{bad:?}");
        }
        let severities = [
            "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
        ];
        for (code, name) in severities.iter().enumerate() {
            let s = Severity::parse(name.as_bytes()).unwrap();
            assert_eq!(s.code() as usize, code, "{name}");
        }
        assert_eq!(Severity::parse(b"notice"), Some(Severity::NOTICE));
        for bad in [&b"error"[..], b"warn", b"Notice", b"", b"7"] {
            assert_eq!(Severity::parse(bad), None, "{bad:?}");
        }
        let consts = [
            Facility::KERN,
            Facility::USER,
            Facility::MAIL,
            Facility::DAEMON,
            Facility::AUTH,
            Facility::SYSLOG,
            Facility::LPR,
            Facility::NEWS,
            Facility::UUCP,
            Facility::CRON,
            Facility::AUTHPRIV,
            Facility::FTP,
        ];
        for (code, f) in consts.iter().enumerate() {
            assert_eq!(f.code() as usize, code);
        }
        let consts = [
            Severity::EMERG,
            Severity::ALERT,
            Severity::CRIT,
            Severity::ERR,
            Severity::WARNING,
            Severity::NOTICE,
            Severity::INFO,
            Severity::DEBUG,
        ];
        for (code, s) in consts.iter().enumerate() {
            assert_eq!(s.code() as usize, code);
        }
    }

    #[test]
    fn a_line_is_one_datagram_with_the_header() {
        let (_dir, listener, mut log) = pair(b"mytag");
        assert!(
            !log.is_connected(),
            "nothing is opened before the first line"
        );
        log.send_line(4242, b"hello").unwrap();
        assert!(log.is_connected());
        assert_eq!(received(&listener), ["<29>mytag[4242]: hello"]);
        let dir = TestDir::new("syslog-pri");
        let listener = UnixDatagram::bind(dir.0.join("log")).unwrap();
        listener.set_nonblocking(true).unwrap();
        let local3 = Facility::parse(b"local3").unwrap();
        let mut log = Syslog::new(&dir.path("log"), local3, Severity::ERR, b"t").unwrap();
        log.send_line(1, b"x").unwrap();
        log.send_line(u32::MAX, b"y").unwrap();
        assert_eq!(
            received(&listener),
            ["<155>t[1]: x", "<155>t[4294967295]: y"],
            "local3.err is 19 * 8 + 3"
        );
        let mut log = Syslog::new(&dir.path("log"), Facility::KERN, Severity::EMERG, b"").unwrap();
        log.send_line(7, b"z").unwrap();
        assert_eq!(received(&listener), ["<0>[7]: z"]);
    }

    #[test]
    fn lines_are_split_on_newlines_across_writes() {
        let (_dir, listener, mut log) = pair(b"t");
        log.write(5, b"one\ntwo\r\n\n\r\nthr").unwrap();
        assert_eq!(received(&listener), ["<29>t[5]: one", "<29>t[5]: two"]);
        log.write(5, b"ee\r").unwrap();
        assert_eq!(received(&listener), Vec::<String>::new(), "pending");
        log.write(5, b"\n").unwrap();
        // A '\r' inside a line stays; only the one before '\n' goes.
        log.write(5, b"a\rb\n\r").unwrap();
        log.flush().unwrap();
        log.flush().unwrap();
        log.write(5, b"end").unwrap();
        log.flush().unwrap();
        assert_eq!(
            received(&listener),
            ["<29>t[5]: three", "<29>t[5]: a\rb", "<29>t[5]: end"]
        );
        // send_line ends what was pending first.
        log.write(5, b"pending").unwrap();
        log.send_line(5, b"line").unwrap();
        assert_eq!(received(&listener), ["<29>t[5]: pending", "<29>t[5]: line"]);
    }

    #[test]
    fn a_new_pid_ends_the_previous_ones_line() {
        let (_dir, listener, mut log) = pair(b"t");
        log.write(10, b"half").unwrap();
        log.write(11, b"new\n").unwrap();
        log.write(7, b"").unwrap();
        log.write(7, b"seven\n").unwrap();
        assert_eq!(
            received(&listener),
            ["<29>t[10]: half", "<29>t[11]: new", "<29>t[7]: seven"]
        );
    }

    #[test]
    fn a_long_line_is_several_datagrams_each_with_the_header() {
        let (_dir, listener, mut log) = pair(b"mytag");
        let header = "<29>mytag[123]: ";
        let room = DATAGRAM_CAPACITY - header.len();
        let line: String = (0..10_000)
            .map(|i| (b'a' + (i % 26) as u8) as char)
            .collect();
        log.send_line(123, line.as_bytes()).unwrap();
        let got = received(&listener);
        assert_eq!(got.len(), 10_000usize.div_ceil(room));
        let mut whole = String::new();
        for d in &got {
            assert!(d.len() <= DATAGRAM_CAPACITY, "{}", d.len());
            whole.push_str(d.strip_prefix(header).unwrap());
        }
        assert_eq!(got[0].len(), DATAGRAM_CAPACITY, "full datagrams");
        assert_eq!(whole, line);
        // Exactly the room: one datagram; one more byte: two.
        let fits = "x".repeat(room);
        log.send_line(123, fits.as_bytes()).unwrap();
        assert_eq!(received(&listener), [std::format!("{header}{fits}")]);
        log.write(123, fits.as_bytes()).unwrap();
        log.write(123, b"\r\n").unwrap();
        assert_eq!(received(&listener), [std::format!("{header}{fits}")]);
        log.send_line(123, std::format!("{fits}y").as_bytes())
            .unwrap();
        assert_eq!(
            received(&listener),
            [std::format!("{header}{fits}"), std::format!("{header}y")]
        );
    }

    #[test]
    fn a_long_line_is_cut_between_utf8_characters() {
        for (width, ch) in [(2, 'é'), (3, '€'), (4, '🦀')] {
            for shift in 0..4 {
                let (_dir, listener, mut log) = pair(b"t");
                let line: String =
                    "a".repeat(shift) + &std::iter::repeat_n(ch, 2000).collect::<String>();
                log.send_line(1, line.as_bytes()).unwrap();
                let mut whole = String::new();
                let got = received(&listener);
                assert!(got.len() > 1);
                for (i, d) in got.iter().enumerate() {
                    // (received() already checked each is valid UTF-8.)
                    let msg = d.strip_prefix("<29>t[1]: ").unwrap();
                    if i + 1 < got.len() {
                        assert!(d.len() > DATAGRAM_CAPACITY - width, "{width} {shift}");
                    }
                    whole.push_str(msg);
                }
                assert_eq!(whole, line, "{width} {shift}");
            }
        }
        // Bytes that are no UTF-8 are cut anywhere.
        assert_eq!(cut(&[0x80; 10]), 10);
        assert_eq!(cut(&[b'a', 0xc3]), 1);
        assert_eq!(cut(&[b'a', 0xc3, 0xa9]), 3);
        assert_eq!(cut(&[b'a', 0xe2, 0x82]), 1);
        assert_eq!(cut(&[b'a', 0xe2, 0x82, 0xac]), 4);
        assert_eq!(cut(&[b'a', 0xf0, 0x9f, 0xa6]), 1);
        assert_eq!(cut(&[b'a', 0xf0, 0x9f, 0xa6, 0x80]), 5);
        assert_eq!(cut(b"abc"), 3);
        assert_eq!(cut(&[0xc3]), 0);
    }

    #[test]
    fn the_tag_is_cut_and_paths_are_checked() {
        let (dir, listener, _) = pair(b"t");
        let long = [b'x'; 40];
        let mut log = Syslog::new(&dir.path("log"), Facility::USER, Severity::INFO, &long).unwrap();
        log.send_line(1, b"m").unwrap();
        let tag = "x".repeat(TAG_CAPACITY);
        assert_eq!(received(&listener), [std::format!("<14>{tag}[1]: m")]);
        let new = |path: &CStr| Syslog::new(path, Facility::USER, Severity::INFO, b"t").err();
        assert_eq!(new(c""), Some(Errno::INVAL));
        let mut path = [b'/'; SUN_PATH_LEN + 1];
        path[SUN_PATH_LEN] = 0;
        let at_most = CStr::from_bytes_with_nul(&path[1..]).unwrap();
        assert_eq!(new(at_most), None, "107 bytes fit");
        let too_long = CStr::from_bytes_with_nul(&path).unwrap();
        assert_eq!(new(too_long), Some(Errno::NAMETOOLONG));
        assert_eq!(new(DEFAULT_PATH), None);
        assert!(std::format!("{log:?}").starts_with("Syslog { fd: "));
    }

    #[test]
    fn lines_are_dropped_while_nothing_listens_then_sent_again() {
        let dir = TestDir::new("syslog-gone");
        let path = dir.0.join("log");
        let mut log =
            Syslog::new(&dir.path("log"), Facility::DAEMON, Severity::NOTICE, b"t").unwrap();
        assert_eq!(log.connect(), Err(Errno::NOENT));
        assert_eq!(log.send_line(1, b"lost"), Err(Errno::NOENT));
        assert!(!log.is_connected());
        // A long line whose first datagram failed: the rest of it is dropped, even once
        // the daemon is back (one connection attempt per line).
        let long = "z".repeat(3 * DATAGRAM_CAPACITY);
        assert_eq!(log.write(1, long.as_bytes()), Err(Errno::NOENT));
        let listener = UnixDatagram::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        assert_eq!(log.write(1, long.as_bytes()), Ok(()));
        assert_eq!(log.write(1, b"\n"), Ok(()));
        assert!(!log.is_connected());
        assert_eq!(received(&listener), Vec::<String>::new());
        // The next line connects.
        log.send_line(1, b"back").unwrap();
        assert!(log.is_connected());
        assert_eq!(received(&listener), ["<29>t[1]: back"]);
        // The daemon restarts: its old socket is gone, a new one is at the same path.
        // The next line reconnects and is not lost.
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        let listener = UnixDatagram::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        log.send_line(1, b"after a restart").unwrap();
        assert_eq!(received(&listener), ["<29>t[1]: after a restart"]);
        // A socket nobody reads any more: ECONNREFUSED, then a missing one: ENOENT.
        drop(listener);
        assert_eq!(
            log.send_line(1, b"refused"),
            Err(Errno::from_raw(libc::ECONNREFUSED))
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(log.send_line(1, b"missing"), Err(Errno::NOENT));
        let fd = log.fd;
        let socket = sys::fstat(fd).unwrap().id;
        drop(log);
        // The number may be another thread's by now, but never this socket.
        if let Ok(now) = sys::fstat(fd) {
            assert!(now.id != socket, "fd {fd} still the socket");
        }
    }

    #[test]
    fn a_full_queue_drops_the_line_and_keeps_the_connection() {
        let (_dir, listener, mut log) = pair(b"t");
        let mut sent = 0;
        let e = loop {
            match log.send_line(1, b"fill") {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 100_000, "the queue never filled");
        };
        assert!(busy(e), "{e:?}");
        assert!(log.is_connected(), "the daemon is busy, not gone");
        // A long line meeting the full queue: nothing of it goes, even once there is
        // room again.
        let long = "z".repeat(2 * DATAGRAM_CAPACITY);
        assert!(log.write(1, long.as_bytes()).is_err());
        assert_eq!(received(&listener).len(), sent);
        assert_eq!(log.write(1, b"tail\n"), Ok(()));
        assert_eq!(received(&listener), Vec::<String>::new());
        log.send_line(1, b"room again").unwrap();
        assert_eq!(received(&listener), ["<29>t[1]: room again"]);
    }
}
