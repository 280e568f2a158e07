//! Stages 2, 4 and 5: core dumps, umask, working directory.

use core::ffi::CStr;

use crate::{sys, Error, Stage};

/// Stage 2: `RLIMIT_CORE` 0/0 and `PR_SET_DUMPABLE` 0 when `prevent` (the default).
/// Async-signal-safe.
///
/// Both limits go to zero, so the daemon can't raise them again without
/// `CAP_SYS_RESOURCE`; the kernel ignores `RLIMIT_CORE` when `core_pattern` pipes cores
/// to a program (systemd-coredump, apport), which the dumpable flag covers. Only the
/// daemon changes: the launching process keeps its own (pandaemonium lowers the
/// launcher's limit in the constructor).
pub(crate) fn prevent_core(prevent: bool) -> Result<(), Error> {
    if prevent {
        sys::no_core_dumps()
            .map_err(|e| Error::os(Stage::PreventCore, e, "setrlimit", b"RLIMIT_CORE 0"))?;
        sys::not_dumpable()
            .map_err(|e| Error::os(Stage::PreventCore, e, "prctl", b"PR_SET_DUMPABLE 0"))?;
    }
    Ok(())
}

/// Stage 4: `umask(mask)`; cannot fail. Async-signal-safe.
pub(crate) fn umask(mask: libc::mode_t) {
    sys::umask(mask & 0o777);
}

/// Stage 5: `chdir(dir)`. Async-signal-safe.
pub(crate) fn working_directory(dir: &CStr) -> Result<(), Error> {
    sys::chdir(dir).map_err(|e| Error::os(Stage::WorkingDirectory, e, "chdir", dir.to_bytes()))
}
