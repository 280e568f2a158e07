//! Stage 3 beyond the ids: chroot, capabilities kept across the user switch, the
//! bounding set, `no_new_privs`.
//!
//! The order is the one measured to work (and the only one that does):
//! `chroot` → `chdir("/")` → `setgroups` → `setgid` → (bounding set) →
//! `PR_SET_KEEPCAPS` 1 → `setuid` → one `capset` of all three sets →
//! `PR_CAP_AMBIENT_RAISE` each → `PR_SET_KEEPCAPS` 0 → `PR_SET_NO_NEW_PRIVS`.
//! Setting the capabilities before `setuid` drops `CAP_SETUID` and makes `setuid` fail;
//! raising ambient ones before it is undone by the kernel; ambient needs the
//! inheritable bit first.
//!
//! Linked only when a [`Config`] setter asks for one of these (the stage calls
//! [`apply`] through a pointer the setters store), so a daemon that never does
//! carries none of it.

use core::ffi::{c_int, CStr};

use crate::{sys, Capabilities, Capability, Config, Errno, Error, ErrorKind, ProcessIds, Stage};

/// What stage 3 does besides the ids.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Privileges<'a> {
    pub(crate) chroot: Option<&'a CStr>,
    pub(crate) keep: Capabilities,
    pub(crate) limit_bounding: bool,
    pub(crate) no_new_privs: bool,
}

impl Default for Privileges<'_> {
    fn default() -> Self {
        Privileges {
            chroot: None,
            keep: Capabilities::EMPTY,
            limit_bounding: false,
            no_new_privs: false,
        }
    }
}

#[cold]
#[inline(never)]
fn os(e: Errno, op: &str, value: &[u8]) -> Error {
    Error::os(Stage::ProcessIds, e, op, value)
}

/// Before fork (and in stage 3): capabilities need a switch to a uid other than 0 (without one, the
/// daemon is root and keeps every capability anyway, or it is not and can't keep any).
pub(crate) fn check(config: &Config<'_>) -> Result<(), Error> {
    let Some(p) = &config.privileges else {
        return Ok(());
    };
    if !p.keep.is_empty() && config.ids.as_ref().is_none_or(|ids| ids.uid() == 0) {
        return Err(Error::new(
            Some(Stage::ProcessIds),
            ErrorKind::InvalidConfig,
            "keep_capabilities needs a user switch to a uid other than 0 (process_ids)",
        ));
    }
    Ok(())
}

/// Whether `cap` is in this thread's bounding set (`None`: the kernel does not know
/// it, so neither is any higher number).
fn in_bounding_set(cap: Capability) -> Option<bool> {
    sys::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap.number()))
        .ok()
        .map(|r| r == 1)
}

/// Each capability to keep must be in the bounding set and the permitted set now:
/// else a named error, not a daemon silently weaker than asked.
fn check_available(keep: Capabilities) -> Result<(), Error> {
    let permitted = sys::capget().map_err(|e| os(e, "capget", b""))?[1];
    for cap in keep.iter() {
        let why = if in_bounding_set(cap) != Some(true) {
            " (not in the bounding set)"
        } else if permitted & 1 << cap.number() == 0 {
            " (not in the permitted set)"
        } else {
            continue;
        };
        let mut e = os(Errno::PERM, "keep", cap.name().as_bytes());
        e.kind = ErrorKind::CapabilityUnavailable;
        e.push_detail(why.as_bytes());
        return Err(e);
    }
    Ok(())
}

/// Drops every capability but `keep` from the bounding set (needs `CAP_SETPCAP`).
fn limit_bounding(keep: Capabilities) -> Result<(), Error> {
    for n in 0..64 {
        let cap = Capability::from_number(n).unwrap_or(Capability::CHOWN);
        match in_bounding_set(cap) {
            None => break,
            Some(false) => {}
            Some(true) if keep.contains(cap) => {}
            Some(true) => {
                sys::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(n))
                    .map_err(|e| os(e, "PR_CAPBSET_DROP", cap.name().as_bytes()))?;
            }
        }
    }
    Ok(())
}

/// Keeps `keep` across `setuid` (between `set_groups_and_gid` and `check_dropped`).
fn switch_keeping(ids: &ProcessIds, keep: Capabilities) -> Result<(), Error> {
    sys::prctl(libc::PR_SET_KEEPCAPS, 1).map_err(|e| os(e, "PR_SET_KEEPCAPS", b"1"))?;
    crate::ids::set_uid(ids)?;
    let bits = keep.bits();
    sys::capset(bits, bits, bits).map_err(|e| os(e, "capset", b""))?;
    for cap in keep.iter() {
        sys::ambient_raise(cap.number())
            .map_err(|e| os(e, "PR_CAP_AMBIENT_RAISE", cap.name().as_bytes()))?;
    }
    sys::prctl(libc::PR_SET_KEEPCAPS, 0).map_err(|e| os(e, "PR_SET_KEEPCAPS", b"0"))?;
    Ok(())
}

/// Stage 3 with the configuration's privileges; `launcher_dir` is the descriptor on
/// the launcher's directory that stage 9 resolves relative paths against, closed when
/// entering a jail (relative paths are then the jail's, and a descriptor outside it
/// would be a way out). Async-signal-safe.
pub(crate) fn apply(config: &mut Config<'_>, launcher_dir: &mut c_int) -> Result<(), Error> {
    // Again here: a stage-1 override that skipped `detach()` skipped the check too.
    check(config)?;
    let ids = config.ids.as_ref();
    let Some(p) = &config.privileges else {
        return Ok(());
    };
    if let Some(dir) = p.chroot {
        // A pid file acquired before start() stays outside the jail: its path is
        // checked now, while it still resolves.
        if let Some(pid_file) = &mut config.pid_file {
            pid_file.check_before_jail()?;
        }
        if *launcher_dir != sys::NO_FD {
            sys::close(*launcher_dir);
            *launcher_dir = sys::NO_FD;
        }
        sys::chroot(dir).map_err(|e| os(e, "chroot", dir.to_bytes()))?;
        // Without it the working directory stays outside the jail, and a relative path
        // still reaches the host's files.
        sys::chdir(c"/").map_err(|e| os(e, "chdir / in", dir.to_bytes()))?;
    }
    if let Some(ids) = ids {
        crate::ids::set_groups_and_gid(ids)?;
        if !p.keep.is_empty() {
            check_available(p.keep)?;
        }
    }
    if p.limit_bounding {
        limit_bounding(p.keep)?;
    }
    if let Some(ids) = ids {
        if p.keep.is_empty() {
            crate::ids::set_uid(ids)?;
        } else {
            switch_keeping(ids, p.keep)?;
        }
        // Keeping CAP_SETUID is keeping the way back to root: asked for, not regained.
        if !p.keep.contains(Capability::SETUID) {
            crate::ids::check_dropped(ids)?;
        }
    }
    if p.no_new_privs {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(|e| os(e, "PR_SET_NO_NEW_PRIVS", b""))?;
    }
    Ok(())
}
