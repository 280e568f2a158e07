//! The nine stages of daemonization, in order.

use core::fmt;

/// One of the nine stages that [`Daemon::start`](crate::Daemon::start) performs, in order.
///
/// The numbering follows pandaemonium (and *The Linux Programming Interface*, §37.2):
/// `Stage::Umask.number() == 4`, so the seed's `daemon.stage4()` reads
/// `daemon.stage(Stage::Umask)` here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Stage {
    /// 1: fork, `setsid`, fork; skipped for init and inetd-style launches ([`Detach`](crate::Detach)).
    Detach = 1,
    /// 2: `RLIMIT_CORE` 0/0 ([`Config::prevent_core`](crate::Config::prevent_core)).
    PreventCore = 2,
    /// 3: `setgroups`, `setgid`, `setuid` ([`Config::process_ids`](crate::Config::process_ids)).
    ProcessIds = 3,
    /// 4: `umask` (default `0o077`).
    Umask = 4,
    /// 5: `chdir` (default `/`).
    WorkingDirectory = 5,
    /// 6: acquire and seal the pid file ([`PidLockFile`](crate::PidLockFile)).
    PidFile = 6,
    /// 7: reset the signal mask and dispositions, then install the signal map.
    Signals = 7,
    /// 8: close inherited file descriptors (except `inherit_files`).
    CloseFiles = 8,
    /// 9: redirect stdin, stdout and stderr (default `/dev/null`).
    Redirect = 9,
}

impl Stage {
    /// All nine stages, in the order they run.
    pub const ALL: [Stage; 9] = [
        Stage::Detach,
        Stage::PreventCore,
        Stage::ProcessIds,
        Stage::Umask,
        Stage::WorkingDirectory,
        Stage::PidFile,
        Stage::Signals,
        Stage::CloseFiles,
        Stage::Redirect,
    ];

    /// The stage's number, 1 to 9.
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The stage with this number, or `None` outside 1..=9.
    ///
    /// ```
    /// use pandaemonium::Stage;
    /// assert_eq!(Stage::from_number(5), Some(Stage::WorkingDirectory));
    /// assert_eq!(Stage::from_number(0), None);
    /// ```
    pub const fn from_number(n: u8) -> Option<Stage> {
        if n >= 1 && n <= 9 {
            Some(Stage::ALL[n as usize - 1])
        } else {
            None
        }
    }

    /// The stage's name as it appears in error messages, e.g. `"working directory"`.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Detach => "detach",
            Stage::PreventCore => "prevent core dumps",
            Stage::ProcessIds => "process ids",
            Stage::Umask => "umask",
            Stage::WorkingDirectory => "working directory",
            Stage::PidFile => "pid file",
            Stage::Signals => "signal handlers",
            Stage::CloseFiles => "close files",
            Stage::Redirect => "redirect stdio",
        }
    }
}

impl Stage {
    /// Writes what `Display` shows, `stage 5 (working directory)`, piece by piece into
    /// `out`, without `core::fmt`.
    pub fn write_to(self, out: &mut dyn FnMut(&str)) {
        out("stage ");
        out(crate::decimal::Dec::new(i64::from(self.number())).as_str());
        out(" (");
        out(self.name());
        out(")");
    }
}

impl fmt::Display for Stage {
    /// `stage 5 (working directory)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::error::write_fmt(f, |out| self.write_to(out))
    }
}
