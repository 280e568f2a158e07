//! Signal names and this platform's numbers, shared by `pdm-scope` (which records a
//! child's death by signal by name) and `tests/support` (which reads the record back
//! in its own numbers). Under qemu-user the two differ: `pdm-scope` is a host build,
//! the tests run as the target, and on MIPS, for one, SIGUSR1 is 16, not 10.
//! Included by `#[path]`; a signal not listed goes by number.
#![allow(dead_code)]

/// The signals every Linux architecture has, by name.
pub const SIGNALS: &[(libc::c_int, &str)] = &[
    (libc::SIGHUP, "HUP"),
    (libc::SIGINT, "INT"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGILL, "ILL"),
    (libc::SIGTRAP, "TRAP"),
    (libc::SIGABRT, "ABRT"),
    (libc::SIGBUS, "BUS"),
    (libc::SIGFPE, "FPE"),
    (libc::SIGKILL, "KILL"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGSEGV, "SEGV"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGPIPE, "PIPE"),
    (libc::SIGALRM, "ALRM"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGCHLD, "CHLD"),
    (libc::SIGCONT, "CONT"),
    (libc::SIGSTOP, "STOP"),
    (libc::SIGTSTP, "TSTP"),
    (libc::SIGTTIN, "TTIN"),
    (libc::SIGTTOU, "TTOU"),
    (libc::SIGURG, "URG"),
    (libc::SIGXCPU, "XCPU"),
    (libc::SIGXFSZ, "XFSZ"),
    (libc::SIGVTALRM, "VTALRM"),
    (libc::SIGPROF, "PROF"),
    (libc::SIGWINCH, "WINCH"),
    (libc::SIGIO, "IO"),
    (libc::SIGPWR, "PWR"),
    (libc::SIGSYS, "SYS"),
];

/// `sig`'s name, or `#N`.
pub fn name(sig: libc::c_int) -> String {
    SIGNALS
        .iter()
        .find(|&&(n, _)| n == sig)
        .map_or_else(|| format!("#{sig}"), |&(_, name)| name.to_string())
}

/// The number of a signal [`name`] gave.
pub fn number(name: &str) -> Option<libc::c_int> {
    match name.strip_prefix('#') {
        Some(n) => n.parse().ok(),
        None => SIGNALS.iter().find(|&&(_, s)| s == name).map(|&(n, _)| n),
    }
}
