//! Signals a loop can see: [`Action::Pipe`](crate::Action::Pipe) routes them into a
//! non-blocking self-pipe whose read end the daemon polls beside its sockets.
//!
//! The anchors are signal-hook's pipe and Linux's `signalfd`. A `signalfd` needs the
//! signals blocked in every thread (an unblocked thread takes them first) and its mask
//! survives `exec` into a program that does not expect it; a pipe written by a handler
//! has neither problem, works the same on every kernel and under qemu-user, and keeps
//! the order in which the signals came. So: the handler writes the signal's number
//! (one byte) and nothing else; a byte that does not fit (64 KiB of signals unread) is
//! recorded in a bit mask and read after the others, once.

use core::ffi::c_int;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering::Relaxed};

use crate::{sys, Config, Errno, Error, Signal, Stage};

/// The pipe's ends (`-1` until stage 7 made it).
static READ_END: AtomicI32 = AtomicI32::new(sys::NO_FD);
static WRITE_END: AtomicI32 = AtomicI32::new(sys::NO_FD);
/// Signals whose byte did not fit in the pipe, bit N-1 for signal N (two words: no
/// 64-bit atomics on 32-bit MIPS and PowerPC).
static OVERFLOW: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];

/// The handler of [`Action::Pipe`](crate::Action::Pipe): one byte into the pipe.
/// Async-signal-safe; `errno` is left as it was.
pub(crate) extern "C" fn on_signal(sig: c_int) {
    let saved = sys::last_errno();
    let byte = [sig as u8];
    if sys::write_some(WRITE_END.load(Relaxed), &byte) != Ok(1) {
        let n = (sig - 1) as u32;
        if let Some(word) = OVERFLOW.get((n / 32) as usize) {
            word.fetch_or(1 << (n % 32), Relaxed);
        }
    }
    sys::set_errno(saved);
}

/// Stage 7, before the map is installed: makes the pipe (non-blocking, close-on-exec)
/// and keeps both ends through stage 8. Set by [`Config::signal`] for
/// [`Action::Pipe`](crate::Action::Pipe). Async-signal-safe.
pub(crate) fn open(config: &mut Config<'_>) -> Result<(), Error> {
    if READ_END.load(Relaxed) != sys::NO_FD {
        return Ok(());
    }
    let (r, w) = sys::pipe_with(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .map_err(|e| Error::os(Stage::Signals, e, "pipe2", b"(signal pipe)"))?;
    for fd in [r, w] {
        config.inherit_file(fd)?;
    }
    WRITE_END.store(w, Relaxed);
    READ_END.store(r, Relaxed);
    Ok(())
}

/// The daemon's signal pipe: the signals mapped to [`Action::Pipe`](crate::Action::Pipe),
/// in the order they came. Poll [`as_raw_fd`](Self::as_raw_fd) for input (or use
/// [`wait`](Self::wait)), then read them with [`pending`](Self::pending).
///
/// ```no_run
/// use pandaemonium::{target, Action, Daemon, Signal, SignalPipe};
///
/// fn serve(_: ()) -> i32 {
///     let signals = SignalPipe::get().expect("stage 7 made it");
///     loop {
///         let woken = signals.wait(&[/* your sockets */], -1).unwrap_or_default();
///         for sig in signals.pending() {
///             if sig == Signal::TERM {
///                 return 0; // run() returning removes the pid file
///             }
///         }
///         let _ = woken.ready; // bit i: the i-th socket is readable
///     }
/// }
///
/// let mut daemon = Daemon::new(target(serve, ()));
/// daemon.signal(Signal::TERM, Action::Pipe)?;
/// daemon.signal(Signal::HUP, Action::Pipe)?;
/// daemon.start()?;
/// # Ok::<(), pandaemonium::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalPipe {
    fd: c_int,
}

/// What [`SignalPipe::wait`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Woken {
    /// Signals are pending ([`SignalPipe::pending`] has some).
    pub signals: bool,
    /// Bit `i` set: `fds[i]` is readable (or at its end, or in error).
    pub ready: u32,
}

impl SignalPipe {
    /// The pipe, once stage 7 made it in this process (a signal was mapped to
    /// [`Action::Pipe`](crate::Action::Pipe)); `None` before, or without one.
    pub fn get() -> Option<SignalPipe> {
        let fd = READ_END.load(Relaxed);
        (fd != sys::NO_FD).then_some(SignalPipe { fd })
    }

    /// The read end, to poll for input (non-blocking, close-on-exec).
    pub fn as_raw_fd(self) -> c_int {
        self.fd
    }

    /// The signals that came since the last call, in order, each as often as it was
    /// delivered. Never blocks. Async-signal-safe.
    pub fn pending(self) -> Pending {
        Pending {
            fd: self.fd,
            buf: [0; 32],
            at: 0,
            len: 0,
            overflow: None,
        }
    }

    /// Waits until a signal is pending or one of `fds` is readable, for at most
    /// `timeout_ms` (negative: no limit); restarted when a signal interrupts it (its
    /// byte is then in the pipe). `Woken::default()` after the timeout.
    ///
    /// # Errors
    ///
    /// `EINVAL` for more than 31 descriptors; `poll` errors.
    pub fn wait(self, fds: &[c_int], timeout_ms: c_int) -> Result<Woken, Errno> {
        let mut polled = [libc::pollfd {
            fd: sys::NO_FD,
            events: libc::POLLIN,
            revents: 0,
        }; 32];
        let Some(others) = polled.get_mut(1..=fds.len()) else {
            return Err(Errno::INVAL);
        };
        for (p, &fd) in others.iter_mut().zip(fds) {
            p.fd = fd;
        }
        polled[0].fd = self.fd;
        let polled = &mut polled[..=fds.len()];
        sys::poll_in(polled, timeout_ms)?;
        let mut woken = Woken {
            signals: polled[0].revents != 0,
            ready: 0,
        };
        for (i, p) in polled[1..].iter().enumerate() {
            if p.revents != 0 {
                woken.ready |= 1 << i;
            }
        }
        Ok(woken)
    }
}

/// The pending signals ([`SignalPipe::pending`]): read from the pipe 32 at a time,
/// then those that did not fit in it.
#[derive(Debug)]
pub struct Pending {
    fd: c_int,
    buf: [u8; 32],
    at: usize,
    len: usize,
    /// The overflowed signals, taken once the pipe is empty.
    overflow: Option<[u32; 2]>,
}

impl Iterator for Pending {
    type Item = Signal;

    fn next(&mut self) -> Option<Signal> {
        loop {
            if self.at < self.len {
                let n = self.buf[self.at];
                self.at += 1;
                match Signal::new(c_int::from(n)) {
                    Ok(sig) => return Some(sig),
                    Err(_) => continue,
                }
            }
            if self.overflow.is_none() {
                match sys::read(self.fd, &mut self.buf) {
                    Ok(n) if n > 0 => {
                        (self.at, self.len) = (0, n);
                        continue;
                    }
                    _ => self.overflow = Some(OVERFLOW.each_ref().map(|w| w.swap(0, Relaxed))),
                }
            }
            let words = self.overflow.as_mut()?;
            let (i, word) = words.iter_mut().enumerate().find(|(_, w)| **w != 0)?;
            let bit = word.trailing_zeros();
            *word &= !(1 << bit);
            if let Ok(sig) = Signal::new((i as u32 * 32 + bit + 1) as c_int) {
                return Some(sig);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::vec::Vec;

    // One test: the pipe and its counters are the process's own.
    #[test]
    fn signals_come_in_order_and_those_that_did_not_fit_after_them() {
        assert_eq!(SignalPipe::get(), None, "none before stage 7");
        let mut config = Config::default();
        open(&mut config).unwrap();
        let pipe = SignalPipe::get().unwrap();
        let w = WRITE_END.load(Relaxed);
        assert_eq!(
            &config.inherit[..],
            &[pipe.as_raw_fd(), w],
            "kept through stage 8"
        );
        open(&mut config).unwrap();
        assert_eq!(config.inherit.len(), 2, "made once");

        assert_eq!(pipe.wait(&[], 0), Ok(Woken::default()), "nothing yet");
        let sent = [Signal::HUP, Signal::USR1, Signal::TERM, Signal::HUP];
        for sig in sent {
            on_signal(sig.number());
        }
        let (r, other) = sys::pipe().unwrap();
        sys::write_all(other, b"x").unwrap();
        let woken = pipe.wait(&[w, r, w], -1).unwrap();
        assert_eq!(
            woken,
            Woken {
                signals: true,
                ready: 0b010
            }
        );
        assert_eq!(pipe.pending().collect::<Vec<_>>(), sent);
        assert_eq!(pipe.pending().count(), 0, "read once");
        assert_eq!(pipe.wait(&[w; 32], 0), Err(Errno::INVAL), "at most 31");

        // A full pipe: what does not fit is counted, once per signal, and comes after
        // what is in the pipe (zero bytes here, which name no signal).
        while sys::write_some(w, &[0; 4096]).is_ok() {}
        sys::set_errno(Errno::NOENT);
        let rt = Signal::new(libc::SIGRTMIN() + 1).unwrap();
        for sig in [Signal::USR2, rt, Signal::USR2, Signal::PIPE] {
            on_signal(sig.number());
        }
        assert_eq!(sys::last_errno(), Errno::NOENT, "errno left as it was");
        let got: Vec<Signal> = pipe.pending().collect();
        // By number, each once (USR2 is 12 and PIPE 13 on x86 and ARM, 17 and 13 on MIPS).
        let mut standard = [Signal::USR2, Signal::PIPE];
        standard.sort_by_key(|s| s.number());
        assert_eq!(got, [standard[0], standard[1], rt], "by number, each once");
        assert_eq!(pipe.pending().count(), 0);
        on_signal(Signal::INT.number());
        assert_eq!(
            pipe.pending().collect::<Vec<_>>(),
            [Signal::INT],
            "room again"
        );
        for fd in [r, other] {
            sys::close(fd);
        }
        // A pipe at its end (never, while the daemon keeps the write end: here the
        // test closes it) reads as empty, not as a loop.
        sys::close(w);
        assert_eq!(pipe.pending().count(), 0);
    }
}
