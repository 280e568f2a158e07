//! Stage 3: supplementary groups, gid and uid, from ids resolved before fork.

use core::ffi::CStr;

use crate::decimal::Dec;
use crate::{sys, Errno, Error, ErrorKind, Stage};

/// Supplementary groups a [`ProcessIds`] holds (Linux allows 65536; a daemon's user
/// rarely has more than a handful).
pub const GROUPS_CAPACITY: usize = 32;

/// The user and groups stage 3 switches to, resolved in the launching process.
///
/// Everything that needs the user database (NSS, `/etc/passwd`, allocation inside libc)
/// happens here, before fork; stage 3 only makes the three system calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessIds {
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Option<heapless::Vec<libc::gid_t, GROUPS_CAPACITY>>,
}

#[cold]
#[inline(never)]
fn stage_err(kind: ErrorKind, what: &str, value: &[u8]) -> Error {
    let mut e = Error::new(Some(Stage::ProcessIds), kind, what);
    e.push_detail(value);
    e
}

impl ProcessIds {
    /// `uid` and `gid`, with `initgroups` semantics: when the launcher is root, the
    /// supplementary groups become `uid`'s groups from the group database plus `gid`
    /// (just `gid` when `uid` has no user entry), so root's own groups never leak into
    /// the daemon. Without root, the groups are left alone (changing them needs root).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Capacity`] when the user is in more than [`GROUPS_CAPACITY`] groups;
    /// OS errors from the user database.
    pub fn new(uid: libc::uid_t, gid: libc::gid_t) -> Result<ProcessIds, Error> {
        let mut ids = ProcessIds {
            uid,
            gid,
            groups: None,
        };
        if sys::ids().1 == 0 {
            let pw = sys::getpw(None, uid).map_err(|e| {
                Error::os(
                    Stage::ProcessIds,
                    e,
                    "getpwuid",
                    Dec::new(i64::from(uid)).as_bytes(),
                )
            })?;
            ids.groups = Some(match pw {
                Some(pw) => user_groups(&pw.name, gid)?,
                None => heapless::Vec::from_slice(&[gid]).unwrap_or_default(),
            });
        }
        Ok(ids)
    }

    /// The user named `name` (or a decimal uid), its primary group and its groups, as
    /// [`ProcessIds::new`] does.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownUser`] naming the user when there is no such user.
    pub fn user(name: &CStr) -> Result<ProcessIds, Error> {
        let bytes = name.to_bytes();
        let pw = match crate::decimal::parse_u32(bytes) {
            Some(uid) => sys::getpw(None, uid),
            None => sys::getpw(Some(name), 0),
        }
        .map_err(|e| Error::os(Stage::ProcessIds, e, "getpwnam", bytes))?
        .ok_or_else(|| stage_err(ErrorKind::UnknownUser, "no such user: ", bytes))?;
        ProcessIds::new(pw.uid, pw.gid)
    }

    /// These ids, with no lookup, for callers that resolved names themselves (and keep
    /// the user database's code out of their binary). `groups` `None`: when the caller
    /// is root and `uid` is not 0, just `gid`, so that root's own supplementary groups
    /// never survive the user switch; otherwise they are left alone (changing them
    /// needs root). `Some(&[])` drops them all.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Capacity`] beyond [`GROUPS_CAPACITY`].
    pub fn from_parts(
        uid: libc::uid_t,
        gid: libc::gid_t,
        groups: Option<&[libc::gid_t]>,
    ) -> Result<ProcessIds, Error> {
        let ids = ProcessIds {
            uid,
            gid,
            groups: None,
        };
        match groups {
            Some(list) => ids.with_groups(list),
            None if uid != 0 && sys::ids().1 == 0 => ids.with_groups(&[gid]),
            None => Ok(ids),
        }
    }

    /// `uid` and `gid`, the supplementary groups left as they are (for a caller that
    /// is not root, which can't change them).
    pub(crate) fn groups_alone(uid: libc::uid_t, gid: libc::gid_t) -> ProcessIds {
        ProcessIds {
            uid,
            gid,
            groups: None,
        }
    }

    /// Replaces the primary group with `gid` (no lookup); the supplementary list gets it
    /// too when one is set.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Capacity`] when the list is full.
    pub fn with_gid(mut self, gid: libc::gid_t) -> Result<ProcessIds, Error> {
        self.gid = gid;
        if let Some(groups) = &mut self.groups {
            if !groups.contains(&gid) {
                groups
                    .push(gid)
                    .map_err(|_| stage_err(ErrorKind::Capacity, "too many groups", b""))?;
            }
        }
        Ok(self)
    }

    /// Replaces the primary group with the group named `name` (or a decimal gid); the
    /// supplementary list gets it too when one is set.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownGroup`] naming the group when there is no such group.
    pub fn with_group(self, name: &CStr) -> Result<ProcessIds, Error> {
        let bytes = name.to_bytes();
        let gid = match crate::decimal::parse_u32(bytes) {
            Some(gid) => gid,
            None => sys::getgrnam(name)
                .map_err(|e| Error::os(Stage::ProcessIds, e, "getgrnam", bytes))?
                .ok_or_else(|| stage_err(ErrorKind::UnknownGroup, "no such group: ", bytes))?,
        };
        self.with_gid(gid)
    }

    /// Sets the supplementary groups explicitly (an empty slice drops them all).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Capacity`] beyond [`GROUPS_CAPACITY`].
    pub fn with_groups(mut self, groups: &[libc::gid_t]) -> Result<ProcessIds, Error> {
        let list = heapless::Vec::from_slice(groups).map_err(|_| {
            stage_err(
                ErrorKind::Capacity,
                "more than 32 supplementary groups",
                b"",
            )
        })?;
        self.groups = Some(list);
        Ok(self)
    }

    /// The uid.
    pub fn uid(&self) -> libc::uid_t {
        self.uid
    }

    /// The primary gid.
    pub fn gid(&self) -> libc::gid_t {
        self.gid
    }

    /// The supplementary groups stage 3 sets, or `None` to leave them alone.
    pub fn groups(&self) -> Option<&[libc::gid_t]> {
        self.groups.as_deref()
    }
}

/// `getgrouplist(name, gid)` into a fixed list.
fn user_groups(
    name: &[u8],
    gid: libc::gid_t,
) -> Result<heapless::Vec<libc::gid_t, GROUPS_CAPACITY>, Error> {
    let mut cbuf = [0u8; 65];
    let Some(cname) = sys::cstr_in(name, &mut cbuf) else {
        return Ok(heapless::Vec::from_slice(&[gid]).unwrap_or_default());
    };
    let mut list = [0 as libc::gid_t; GROUPS_CAPACITY];
    let n = sys::getgrouplist(cname, gid, &mut list).map_err(|_| {
        stage_err(
            ErrorKind::Capacity,
            "user is in more than 32 groups: ",
            name,
        )
    })?;
    Ok(heapless::Vec::from_slice(&list[..n]).unwrap_or_default())
}

/// Stage 3 without the privileges' settings: `setgroups`, `setgid`, `setuid` to the
/// configured ids, then checks that `setuid(0)` now fails. Async-signal-safe.
pub(crate) fn apply(config: &mut crate::Config<'_>, _: &mut core::ffi::c_int) -> Result<(), Error> {
    let Some(ids) = &config.ids else {
        return Ok(());
    };
    set_groups_and_gid(ids)?;
    set_uid(ids)?;
    check_dropped(ids)
}

/// Stage 3's first half: the supplementary groups (when set), then the gid.
pub(crate) fn set_groups_and_gid(ids: &ProcessIds) -> Result<(), Error> {
    if let Some(groups) = &ids.groups {
        sys::setgroups(groups).map_err(|e| Error::os(Stage::ProcessIds, e, "setgroups", b""))?;
    }
    sys::setgid(ids.gid).map_err(|e| {
        Error::os(
            Stage::ProcessIds,
            e,
            "setgid",
            Dec::new(i64::from(ids.gid)).as_bytes(),
        )
    })
}

/// Stage 3's second half: the uid.
pub(crate) fn set_uid(ids: &ProcessIds) -> Result<(), Error> {
    sys::setuid(ids.uid).map_err(|e| {
        Error::os(
            Stage::ProcessIds,
            e,
            "setuid",
            Dec::new(i64::from(ids.uid)).as_bytes(),
        )
    })
}

/// After the switch to a uid other than 0, `setuid(0)` must fail.
pub(crate) fn check_dropped(ids: &ProcessIds) -> Result<(), Error> {
    if ids.uid != 0 && sys::setuid(0) != Err(Errno::PERM) {
        return Err(stage_err(
            ErrorKind::PrivilegesRegained,
            "setuid(0) succeeded after dropping to uid ",
            Dec::new(i64::from(ids.uid)).as_bytes(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_are_what_was_given() {
        let ids = ProcessIds::from_parts(1000, 100, Some(&[100, 27])).unwrap();
        assert_eq!((ids.uid(), ids.gid()), (1000, 100));
        assert_eq!(ids.groups(), Some(&[100, 27][..]));
        // Without a list, root's own groups never survive a switch away from root.
        let root = sys::ids().1 == 0;
        let alone = ProcessIds::from_parts(5, 6, None).unwrap();
        assert_eq!(alone.groups(), root.then_some(&[6][..]));
        assert_eq!(ProcessIds::from_parts(0, 6, None).unwrap().groups(), None);
    }

    #[test]
    fn with_gid_adds_the_group_once() {
        let ids = ProcessIds::from_parts(1000, 100, Some(&[100, 27])).unwrap();
        let other = ids.clone().with_gid(44).unwrap();
        assert_eq!(
            (other.gid(), other.groups()),
            (44, Some(&[100, 27, 44][..]))
        );
        let same = ids.with_gid(27).unwrap();
        assert_eq!((same.gid(), same.groups()), (27, Some(&[100, 27][..])));
        // Not root: no list, and none made (as root the list is [2], then [2, 3]).
        let none = ProcessIds::from_parts(1, 2, None)
            .unwrap()
            .with_gid(3)
            .unwrap();
        let want = (sys::ids().1 == 0).then_some(&[2, 3][..]);
        assert_eq!((none.gid(), none.groups()), (3, want));
    }

    #[test]
    fn more_than_the_capacity_is_refused() {
        let many: heapless::Vec<libc::gid_t, 40> = (0..=GROUPS_CAPACITY as libc::gid_t).collect();
        let e = ProcessIds::from_parts(1, 1, Some(&many)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Capacity);
        let full: heapless::Vec<libc::gid_t, 40> = (0..GROUPS_CAPACITY as libc::gid_t).collect();
        let e = ProcessIds::from_parts(1, 1, Some(&full))
            .unwrap()
            .with_gid(9999)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Capacity);
    }
}
