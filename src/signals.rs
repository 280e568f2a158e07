//! Signals by name or number, the signal map, and stage 7.

use core::ffi::c_int;
use core::fmt;

use crate::sys::{self, Disposition};
use crate::{cleanup, Error, ErrorKind, Stage};

/// Entries a [`Config`](crate::Config)'s signal map holds, beyond the defaults.
pub const SIGNAL_MAP_CAPACITY: usize = 16;

/// Signal names with the platform's own numbers (MIPS, SPARC and Alpha differ from x86).
const NAMES: &[(&str, c_int)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// A signal number, checked to be one this platform has.
///
/// Parse from a name (`"SIGHUP"` and `"HUP"` alike, any case, plus `RTMIN+N` and
/// `RTMAX-N`) or a number, without std:
///
/// ```
/// use pandaemonium::Signal;
/// assert_eq!(Signal::parse("SIGTERM")?, Signal::TERM);
/// assert_eq!(Signal::parse("hup")?.number(), libc::SIGHUP);
/// assert_eq!(Signal::parse("15")?, Signal::new(15)?);
/// assert!(Signal::parse("SIGNOPE").is_err());
/// # Ok::<(), pandaemonium::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(c_int);

impl Signal {
    /// `SIGHUP`.
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// `SIGINT`.
    pub const INT: Signal = Signal(libc::SIGINT);
    /// `SIGQUIT`.
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// `SIGKILL` (cannot be caught or ignored).
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// `SIGUSR1`.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// `SIGUSR2`.
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// `SIGPIPE`.
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    /// `SIGALRM`.
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    /// `SIGTERM`.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// `SIGCHLD`.
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    /// `SIGSTOP` (cannot be caught or ignored).
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    /// `SIGTSTP`.
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    /// `SIGTTIN`.
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    /// `SIGTTOU`.
    pub const TTOU: Signal = Signal(libc::SIGTTOU);

    /// The signal numbered `n`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] outside `1..=SIGRTMAX`.
    pub fn new(n: i32) -> Result<Signal, Error> {
        if n >= 1 && n <= sys::sigrtmax() {
            Ok(Signal(n))
        } else {
            let mut e = Error::new(
                Some(Stage::Signals),
                ErrorKind::InvalidConfig,
                "no such signal: ",
            );
            e.push_detail(crate::decimal::Dec::new(i64::from(n)).as_bytes());
            Err(e)
        }
    }

    /// A signal by name or number: `"SIGHUP"`, `"HUP"`, `"hup"`, `"1"`, `"RTMIN+2"`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] naming the text, for an unknown name or number.
    pub fn parse(text: &str) -> Result<Signal, Error> {
        let unknown = || {
            let mut e = Error::new(
                Some(Stage::Signals),
                ErrorKind::InvalidConfig,
                "no such signal: ",
            );
            e.push_detail(text.as_bytes());
            e
        };
        if let Some(n) = crate::decimal::parse_u32(text.as_bytes()) {
            return Signal::new(i32::try_from(n).map_err(|_| unknown())?).map_err(|_| unknown());
        }
        let mut upper = [0u8; 16];
        if text.len() > upper.len() {
            return Err(unknown());
        }
        for (u, c) in upper.iter_mut().zip(text.bytes()) {
            *u = c.to_ascii_uppercase();
        }
        let mut name = &upper[..text.len()];
        if let Some(rest) = name.strip_prefix(b"SIG") {
            name = rest;
        }
        if let Some(n) = realtime(name) {
            return Signal::new(n).map_err(|_| unknown());
        }
        NAMES
            .iter()
            .find(|(candidate, _)| candidate.as_bytes() == name)
            .map(|&(_, n)| Signal(n))
            .ok_or_else(unknown)
    }

    /// The signal's number on this platform.
    pub const fn number(self) -> i32 {
        self.0
    }

    /// The name without `SIG`, e.g. `"TERM"`, or `None` for real-time signals.
    pub fn name(self) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|&&(_, n)| n == self.0)
            .map(|&(name, _)| name)
    }
}

/// `RTMIN`, `RTMIN+N`, `RTMAX`, `RTMAX-N`.
fn realtime(name: &[u8]) -> Option<c_int> {
    let (base, rest, sign) = if let Some(rest) = name.strip_prefix(b"RTMIN") {
        (libc::SIGRTMIN(), rest, 1)
    } else if let Some(rest) = name.strip_prefix(b"RTMAX") {
        (libc::SIGRTMAX(), rest, -1)
    } else {
        return None;
    };
    if rest.is_empty() {
        return Some(base);
    }
    let expected = if sign > 0 { b'+' } else { b'-' };
    let (&op, digits) = rest.split_first()?;
    if op != expected {
        return None;
    }
    let n = crate::decimal::parse_u32(digits)? as c_int;
    Some(base + sign * n)
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Signal {
    /// `SIGTERM`, or `signal 34` for a real-time signal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "SIG{name}"),
            None => write!(f, "signal {}", self.0),
        }
    }
}

/// What the daemon does on a signal.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    /// The system default (`SIG_DFL`).
    Default,
    /// Ignore it (`SIG_IGN`); the default for `SIGTSTP`, `SIGTTIN` and `SIGTTOU`.
    Ignore,
    /// End the daemon cleanly, the default for `SIGTERM`: remove the pid file if it is
    /// still ours, then die of the same signal with its default action, so the wait
    /// status reads "terminated by SIGTERM" (a shell shows exit status 143, and systemd
    /// and start-stop-daemon count it as a clean stop).
    Exit,
    /// Call this function. It runs in signal context: use only async-signal-safe calls,
    /// e.g. set an atomic flag, or call [`crate::remove_pid_file`] / [`crate::exit`] for
    /// the same clean-up as [`Action::Exit`]. Installed with `SA_RESTART`.
    Handler(extern "C" fn(i32)),
}

/// The signal map: the defaults, overridden by the user's entries.
#[derive(Clone, Debug, Default)]
pub(crate) struct SignalMap {
    entries: heapless::Vec<(Signal, Action), SIGNAL_MAP_CAPACITY>,
}

impl SignalMap {
    /// Adds or replaces `sig`'s entry.
    pub(crate) fn set(&mut self, sig: Signal, action: Action) -> Result<(), Error> {
        if sig == Signal::KILL || sig == Signal::STOP {
            let mut e = Error::new(
                Some(Stage::Signals),
                ErrorKind::InvalidConfig,
                "cannot catch or ignore ",
            );
            e.push_detail(if sig == Signal::KILL {
                b"SIGKILL"
            } else {
                b"SIGSTOP"
            });
            return Err(e);
        }
        if let Some(entry) = self.entries.iter_mut().find(|(s, _)| *s == sig) {
            entry.1 = action;
            return Ok(());
        }
        self.entries.push((sig, action)).map_err(|_| {
            Error::new(
                Some(Stage::Signals),
                ErrorKind::Capacity,
                "signal map holds 16 entries",
            )
        })
    }

    /// The action `sig` gets in the daemon: the user's entry, else the default map.
    pub(crate) fn action(&self, sig: Signal) -> Action {
        if let Some(&(_, action)) = self.entries.iter().find(|(s, _)| *s == sig) {
            return action;
        }
        match sig {
            Signal::TERM => Action::Exit,
            Signal::TSTP | Signal::TTIN | Signal::TTOU => Action::Ignore,
            _ => Action::Default,
        }
    }
}

extern "C" fn exit_on_signal(sig: c_int) {
    cleanup::remove_pid_file();
    // Die of the same signal: default action, unblocked (it is blocked while we run).
    let _ = sys::sigaction(sig, Disposition::Default);
    let _ = sys::unblock_signal(sig);
    let _ = sys::kill(sys::getpid(), sig);
    sys::exit_now(128 + sig)
}

/// Stage 7: unblock every signal, reset every disposition to the default (systemd
/// daemon(7) steps 2-3), then install the signal map. Async-signal-safe.
///
/// Signals the C library reserves for itself (glibc's 32-33, musl's 32-34) can't be
/// changed through `sigaction` (`EINVAL`) and are left as inherited, as systemd's
/// `reset_all_signal_handlers` does.
pub(crate) fn install(map: &SignalMap) -> Result<(), Error> {
    sys::unblock_all_signals().map_err(|e| Error::os(Stage::Signals, e, "sigprocmask", b""))?;
    for n in 1..=sys::sigrtmax() {
        let sig = Signal(n);
        if sig == Signal::KILL || sig == Signal::STOP {
            continue;
        }
        let disposition = match map.action(sig) {
            Action::Default => Disposition::Default,
            Action::Ignore => Disposition::Ignore,
            Action::Exit => Disposition::Handler(exit_on_signal),
            Action::Handler(f) => Disposition::Handler(f),
        };
        match sys::sigaction(n, disposition) {
            // libc reserves a few real-time signals for itself (EINVAL): leave those.
            Err(e) if e.raw() == libc::EINVAL && matches!(disposition, Disposition::Default) => {}
            Err(e) => {
                let number = crate::decimal::Dec::new(i64::from(n));
                return Err(Error::os(Stage::Signals, e, "sigaction", number.as_bytes()));
            }
            Ok(()) => {}
        }
    }
    Ok(())
}
