//! Signals by name or number, the signal map, and stage 7.

use core::ffi::c_int;
use core::fmt;

use crate::sys::{self, Disposition};
use crate::{cleanup, Error, ErrorKind, Stage};

/// Entries a [`Config`](crate::Config)'s signal map holds, beyond the defaults.
pub const SIGNAL_MAP_CAPACITY: usize = 16;

/// Signal names with the platform's own numbers (MIPS, SPARC and Alpha differ from x86),
/// as `[number, name...]`, the name NUL-padded: 7 bytes an entry, where `(&str, c_int)`
/// pairs take 24 (this table is the largest constant of a small static binary).
static NAMES: [[u8; 7]; 32] = [
    entry(libc::SIGHUP, b"HUP"),
    entry(libc::SIGINT, b"INT"),
    entry(libc::SIGQUIT, b"QUIT"),
    entry(libc::SIGILL, b"ILL"),
    entry(libc::SIGTRAP, b"TRAP"),
    entry(libc::SIGABRT, b"ABRT"),
    entry(libc::SIGIOT, b"IOT"),
    entry(libc::SIGBUS, b"BUS"),
    entry(libc::SIGFPE, b"FPE"),
    entry(libc::SIGKILL, b"KILL"),
    entry(libc::SIGUSR1, b"USR1"),
    entry(libc::SIGSEGV, b"SEGV"),
    entry(libc::SIGUSR2, b"USR2"),
    entry(libc::SIGPIPE, b"PIPE"),
    entry(libc::SIGALRM, b"ALRM"),
    entry(libc::SIGTERM, b"TERM"),
    entry(libc::SIGCHLD, b"CHLD"),
    entry(libc::SIGCONT, b"CONT"),
    entry(libc::SIGSTOP, b"STOP"),
    entry(libc::SIGTSTP, b"TSTP"),
    entry(libc::SIGTTIN, b"TTIN"),
    entry(libc::SIGTTOU, b"TTOU"),
    entry(libc::SIGURG, b"URG"),
    entry(libc::SIGXCPU, b"XCPU"),
    entry(libc::SIGXFSZ, b"XFSZ"),
    entry(libc::SIGVTALRM, b"VTALRM"),
    entry(libc::SIGPROF, b"PROF"),
    entry(libc::SIGWINCH, b"WINCH"),
    entry(libc::SIGIO, b"IO"),
    entry(libc::SIGPOLL, b"POLL"),
    entry(libc::SIGPWR, b"PWR"),
    entry(libc::SIGSYS, b"SYS"),
];

/// A [`NAMES`] entry. Only ASCII capitals and digits (checked at compile time), so a
/// name is valid UTF-8; every signal number with a name is below 128.
const fn entry(number: c_int, name: &[u8]) -> [u8; 7] {
    assert!(number > 0 && number < 128 && !name.is_empty() && name.len() < 7);
    let mut e = [0u8; 7];
    e[0] = number as u8;
    let mut i = 0;
    while i < name.len() {
        assert!(name[i].is_ascii_uppercase() || name[i].is_ascii_digit());
        e[1 + i] = name[i];
        i += 1;
    }
    e
}

/// An entry's number and name.
fn unpack(e: &'static [u8; 7]) -> (c_int, &'static str) {
    let len = e[1..].iter().position(|&b| b == 0).unwrap_or(6);
    // SAFETY: `entry` admits only ASCII capitals and digits: valid UTF-8.
    #[allow(unsafe_code)]
    let name = unsafe { core::str::from_utf8_unchecked(&e[1..1 + len]) };
    (c_int::from(e[0]), name)
}

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
    /// [`ErrorKind::InvalidConfig`] outside `1..=SIGRTMAX`, and for the real-time signals
    /// the C library reserves for itself (glibc's 32 and 33, musl's 32 to 34: those below
    /// `SIGRTMIN`), which `sigaction` refuses, so that such a signal fails here, before
    /// fork, rather than in stage 7.
    pub fn new(n: i32) -> Result<Signal, Error> {
        if n >= 1 && n <= sys::sigrtmax() && !is_reserved(n) {
            Ok(Signal(n))
        } else {
            let mut e = Error::new(
                Some(Stage::Signals),
                ErrorKind::InvalidConfig,
                if n >= 1 && n <= sys::sigrtmax() {
                    "signal reserved by the C library: "
                } else {
                    "no such signal: "
                },
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
        Signal::parse_bytes(text.as_bytes())
    }

    /// [`parse`](Self::parse) for bytes, such as an argument from `argv`
    /// ([`MainArgs`](crate::MainArgs)), which need not be UTF-8.
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse).
    pub fn parse_bytes(text: &[u8]) -> Result<Signal, Error> {
        let unknown = || {
            let mut e = Error::new(
                Some(Stage::Signals),
                ErrorKind::InvalidConfig,
                "no such signal: ",
            );
            e.push_detail(text);
            e
        };
        if let Some(n) = crate::decimal::parse_u32(text) {
            // A reserved number keeps its own message; anything else is unknown.
            return match i32::try_from(n) {
                Ok(n) if n >= 1 && n <= sys::sigrtmax() => Signal::new(n),
                _ => Err(unknown()),
            };
        }
        let mut upper = [0u8; 16];
        if text.len() > upper.len() {
            return Err(unknown());
        }
        for (u, &c) in upper.iter_mut().zip(text) {
            *u = c.to_ascii_uppercase();
        }
        let mut name = &upper[..text.len()];
        if let Some(rest) = name.strip_prefix(b"SIG") {
            name = rest;
        }
        if let Some(n) = realtime(name) {
            return Ok(Signal(n));
        }
        NAMES
            .iter()
            .map(unpack)
            .find(|(_, candidate)| candidate.as_bytes() == name)
            .map(|(n, _)| Signal(n))
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
            .map(unpack)
            .find(|&(n, _)| n == self.0)
            .map(|(_, name)| name)
    }
}

/// `RTMIN`, `RTMIN+N`, `RTMAX`, `RTMAX-N`, with `N` no more than `RTMAX - RTMIN`:
/// always a signal between `SIGRTMIN` and `SIGRTMAX` (never one the C library reserves).
fn realtime(name: &[u8]) -> Option<c_int> {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let (rest, from_max) = if let Some(rest) = name.strip_prefix(b"RTMIN") {
        (rest, false)
    } else if let Some(rest) = name.strip_prefix(b"RTMAX") {
        (rest, true)
    } else {
        return None;
    };
    let n = match rest.split_first() {
        None => 0,
        Some((&b'+', digits)) if !from_max => crate::decimal::parse_u32(digits)?,
        Some((&b'-', digits)) if from_max => crate::decimal::parse_u32(digits)?,
        Some(_) => return None,
    };
    let n = c_int::try_from(n).ok().filter(|&n| n <= max - min)?;
    Some(if from_max { max - n } else { min + n })
}

/// Whether the C library keeps signal `n` for itself (`32 <= n < SIGRTMIN`).
fn is_reserved(n: c_int) -> bool {
    n >= 32 && n < libc::SIGRTMIN()
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
    /// the same clean-up as [`Action::Exit`]. Installed with `SA_RESTART`: a blocking
    /// call it interrupts (`accept`, `read`) resumes, so a loop blocked there does not
    /// see the flag until something else wakes it; see [`Action::Interrupt`].
    Handler(extern "C" fn(i32)),
    /// As [`Action::Handler`], installed without `SA_RESTART`: a blocking system call
    /// the signal interrupts (`accept(2)`, `read(2)`, `poll(2)`) fails with `EINTR`, so
    /// the loop around it sees at once what the handler did. The handler runs with
    /// every signal blocked (one handler at a time). std's `accept`, `read` and
    /// `write` retry on `EINTR` themselves: with std, poll a [`Action::Pipe`] instead.
    Interrupt(extern "C" fn(i32)),
    /// Route the signal into the daemon's signal pipe, read with
    /// [`SignalPipe`](crate::SignalPipe) (poll its descriptor beside your sockets): a
    /// handler, installed without `SA_RESTART`, writes the signal's number into a
    /// non-blocking pipe that stage 7 creates (and stage 8 keeps). Signals arrive in the
    /// order they were delivered (several pending at once: lowest number first, as the
    /// kernel takes them; the handler runs with every signal blocked, so none overtakes
    /// another); the kernel merges a standard signal sent again before it was delivered
    /// (a real-time one is queued, each copy comes).
    Pipe,
    /// Reopen stage 9's files in place ([`reopen_stdio`](crate::reopen_stdio)), as
    /// log rotation wants on `SIGHUP` after `mv log log.1`; implies
    /// [`Config::reopenable_stdio`](crate::Config::reopenable_stdio). Installed with
    /// `SA_RESTART`.
    ReopenStdio,
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
    // systemd's `Type=notify` learns that the stop is ours, once the daemon said it
    // was ready (nothing before, or without `NOTIFY_SOCKET`).
    crate::ready::stopping();
    cleanup::remove_pid_file();
    // Die of the same signal: default action, unblocked (it is blocked while we run).
    let _ = sys::sigaction(sig, Disposition::Default);
    let _ = sys::unblock_signal(sig);
    let _ = sys::kill(sys::getpid(), sig);
    sys::exit_now(128 + sig)
}

/// The disposition `sig` gets from `map`.
fn disposition(map: &SignalMap, sig: Signal) -> Disposition {
    match map.action(sig) {
        Action::Default => Disposition::Default,
        Action::Ignore => Disposition::Ignore,
        Action::Exit => Disposition::Handler(exit_on_signal),
        Action::Handler(f) => Disposition::Handler(f),
        Action::Interrupt(f) => Disposition::Interrupting(f),
        // `Config::signal` stores these two as the handlers they stand for (so that a
        // daemon that uses neither links neither): never in a map.
        Action::Pipe | Action::ReopenStdio => Disposition::Default,
    }
}

/// Stage 7: unblock every signal, reset every disposition to the default (systemd
/// daemon(7) steps 2-3), then install the signal map. Async-signal-safe.
///
/// With `channel_open` (a detached daemon still writing to the original process),
/// `SIGPIPE` stays ignored, so that a launcher that went away makes those writes fail
/// with `EPIPE` instead of killing the daemon; [`apply_pipe`] installs its disposition
/// from the map once the channel is closed.
///
/// Signals the C library reserves for itself (glibc's 32-33, musl's 32-34) can't be
/// changed through `sigaction` (`EINVAL`) and are left as inherited, as systemd's
/// `reset_all_signal_handlers` does.
pub(crate) fn install(map: &SignalMap, channel_open: bool) -> Result<(), Error> {
    sys::unblock_all_signals().map_err(|e| Error::os(Stage::Signals, e, "sigprocmask", b""))?;
    for n in 1..=sys::sigrtmax() {
        let sig = Signal(n);
        if sig == Signal::KILL || sig == Signal::STOP {
            continue;
        }
        let disposition = match sig {
            Signal::PIPE if channel_open => Disposition::Ignore,
            _ => disposition(map, sig),
        };
        match sys::sigaction(n, disposition) {
            // libc reserves a few real-time signals for itself (EINVAL): leave those.
            Err(e) if e.raw() == libc::EINVAL && is_reserved(n) => {}
            Err(e) => {
                let number = crate::decimal::Dec::new(i64::from(n));
                return Err(Error::os(Stage::Signals, e, "sigaction", number.as_bytes()));
            }
            Ok(()) => {}
        }
    }
    Ok(())
}

/// `SIGPIPE`'s disposition from the map, once the report channel is closed (see
/// [`install`]). Async-signal-safe. Nothing to do when the map ignores it.
pub(crate) fn apply_pipe(map: &SignalMap) {
    match disposition(map, Signal::PIPE) {
        Disposition::Ignore => {}
        d => {
            let _ = sys::sigaction(libc::SIGPIPE, d);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::format;
    use std::string::ToString;

    fn refused(text: &str) -> Error {
        Signal::parse(text).expect_err(text)
    }

    #[test]
    fn realtime_offsets_stay_between_rtmin_and_rtmax() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert_eq!(Signal::parse("RTMIN").unwrap().number(), min);
        assert_eq!(Signal::parse("SIGRTMIN+1").unwrap().number(), min + 1);
        assert_eq!(Signal::parse("rtmax-1").unwrap().number(), max - 1);
        let span = (max - min).to_string();
        assert_eq!(
            Signal::parse(&format!("RTMIN+{span}")).unwrap().number(),
            max
        );
        assert_eq!(
            Signal::parse(&format!("RTMAX-{span}")).unwrap().number(),
            min
        );
        let beyond = (max - min + 1).to_string();
        for text in [
            format!("RTMIN+{beyond}"),
            format!("RTMAX-{beyond}"),
            "RTMAX-2147483648".to_string(), // overflowed (a panic in debug builds)
            "RTMIN+4294967295".to_string(), // wrapped to SIGRTMIN-1
            "RTMIN-1".to_string(),
            "RTMAX+1".to_string(),
            "RTMIN+".to_string(),
        ] {
            let e = refused(&text);
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{text}");
            assert_eq!(e.detail(), format!("no such signal: {text}"));
        }
    }

    #[test]
    fn signals_the_c_library_reserves_are_refused_before_fork() {
        for n in 32..libc::SIGRTMIN() {
            let e = Signal::new(n).expect_err("reserved");
            assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            assert_eq!(e.detail(), format!("signal reserved by the C library: {n}"));
            let e = refused(&n.to_string());
            assert_eq!(e.detail(), format!("signal reserved by the C library: {n}"));
        }
        assert!(Signal::new(libc::SIGRTMIN()).is_ok());
        assert!(Signal::new(31).is_ok());
        assert!(Signal::new(0).is_err());
        assert!(Signal::new(libc::SIGRTMAX() + 1).is_err());
        assert_eq!(refused("0").detail(), "no such signal: 0");
        assert_eq!(refused("4294967295").detail(), "no such signal: 4294967295");
    }

    #[test]
    fn names_parse_case_blind_with_or_without_sig() {
        assert_eq!(Signal::parse("sigterm").unwrap(), Signal::TERM);
        assert_eq!(Signal::parse("Hup").unwrap(), Signal::HUP);
        assert!(Signal::parse("SIGVERYLONGNAMEXX").is_err());
        // Sixteen bytes, the longest text looked at.
        let sixteen = "SIGRTMIN+0000001";
        assert_eq!(sixteen.len(), 16);
        assert_eq!(
            Signal::parse(sixteen).unwrap().number(),
            libc::SIGRTMIN() + 1
        );
    }

    #[test]
    fn a_refused_number_is_named_as_written() {
        assert_eq!(refused("00").detail(), "no such signal: 00");
        // Above SIGRTMAX on every target (MIPS has 127 signals).
        assert_eq!(refused("0200").detail(), "no such signal: 0200");
        assert_eq!(Signal::parse("0015").unwrap(), Signal::TERM);
    }

    #[test]
    fn every_name_in_the_table_parses_to_its_number_and_back() {
        let table = [
            ("HUP", libc::SIGHUP),
            ("INT", libc::SIGINT),
            ("KILL", libc::SIGKILL),
            ("VTALRM", libc::SIGVTALRM),
            ("WINCH", libc::SIGWINCH),
            ("SYS", libc::SIGSYS),
        ];
        for (name, n) in table {
            assert_eq!(Signal::parse(name).unwrap().number(), n, "{name}");
        }
        for e in &NAMES {
            let (n, name) = unpack(e);
            assert_eq!(Signal::parse(name).unwrap().number(), n, "{name}");
            assert_eq!(Signal::parse_bytes(name.as_bytes()).unwrap().number(), n);
            // Aliases (IOT, POLL) share a number: the first name is the one shown.
            let shown = Signal::new(n).unwrap().name().unwrap();
            assert_eq!(Signal::parse(shown).unwrap().number(), n, "{name}");
        }
        assert_eq!(Signal::new(libc::SIGTERM).unwrap().name(), Some("TERM"));
        assert_eq!(
            Signal::parse_bytes(b"\xff").unwrap_err().kind(),
            ErrorKind::InvalidConfig
        );
    }

    #[test]
    fn signals_show_by_name_or_number() {
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(std::format!("{:?}", Signal::HUP), "SIGHUP");
        let rt = Signal::parse("RTMIN").unwrap();
        assert_eq!(rt.to_string(), std::format!("signal {}", libc::SIGRTMIN()));
        assert_eq!(rt.name(), None);
    }
}
