//! Users and groups from `/etc/passwd` and `/etc/group` alone, as busybox reads them.
//!
//! [`ProcessIds::user`] asks libc (`getpwnam`, `getgrouplist`), which on musl brings
//! stdio, malloc and the nscd client into a static binary: a third of a small one. A
//! static musl binary has no NSS modules anyway, so reading the two files gives the
//! same answers there; names that live only in LDAP and the like need numbers.

use core::ffi::CStr;

use crate::decimal::{parse_u32, Dec};
use crate::ids::GROUPS_CAPACITY;
use crate::{sys, Errno, Error, ErrorKind, ProcessIds, Stage};

/// Calls `f` with each line of `path` until it returns `true`. Lines longer than the
/// buffer (4 KiB) are skipped. (`dyn`: one copy of the loop, not one per caller.)
fn scan(path: &CStr, f: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), Error> {
    let fd = sys::open(path, sys::INPUT, 0).map_err(|e| read_err(e, path))?;
    let mut buf = [0u8; 4096];
    let (mut len, mut overlong) = (0, false);
    let result = loop {
        let n = match sys::read(fd, &mut buf[len..]) {
            Ok(n) => n,
            Err(e) => break Err(read_err(e, path)),
        };
        len += n;
        let mut start = 0;
        let mut found = false;
        while let Some(nl) = buf[start..len].iter().position(|&b| b == b'\n') {
            found = !overlong && f(&buf[start..start + nl]);
            overlong = false;
            start += nl + 1;
            if found {
                break;
            }
        }
        if found {
            break Ok(());
        }
        if n == 0 {
            if start < len && !overlong {
                f(&buf[start..len]);
            }
            break Ok(());
        }
        buf.copy_within(start..len, 0);
        len -= start;
        if len == buf.len() {
            (len, overlong) = (0, true);
        }
    };
    sys::close(fd);
    result
}

#[cold]
#[inline(never)]
fn read_err(e: Errno, path: &CStr) -> Error {
    Error::os(Stage::ProcessIds, e, "read", path.to_bytes())
}

#[cold]
#[inline(never)]
fn refused(kind: ErrorKind, what: &str, value: &[u8]) -> Error {
    let mut e = Error::new(Some(Stage::ProcessIds), kind, what);
    e.push_detail(value);
    e
}

/// Field `i` of a `:`-separated line.
fn field(line: &[u8], i: usize) -> Option<&[u8]> {
    line.split(|&b| b == b':').nth(i)
}

/// A passwd entry: its name (in `name`, `len` bytes), uid and gid.
struct Passwd {
    name: [u8; 256],
    len: usize,
    uid: u32,
    gid: u32,
}

/// The files read (tests point them elsewhere).
struct Files<'a> {
    passwd: &'a CStr,
    group: &'a CStr,
}

const ETC: Files<'static> = Files {
    passwd: c"/etc/passwd",
    group: c"/etc/group",
};

impl Files<'_> {
    /// The passwd entry whose name is `user`, or whose uid is `uid`.
    fn passwd(&self, user: &[u8], uid: Option<u32>) -> Result<Option<Passwd>, Error> {
        let mut found = None;
        scan(self.passwd, &mut |line| {
            let (Some(name), Some(u), Some(g)) = (field(line, 0), field(line, 2), field(line, 3))
            else {
                return false;
            };
            let (Some(u), Some(g)) = (parse_u32(u), parse_u32(g)) else {
                return false;
            };
            if name != user && uid != Some(u) || name.len() > 255 {
                return false;
            }
            let mut entry = Passwd {
                name: [0; 256],
                len: name.len(),
                uid: u,
                gid: g,
            };
            entry.name[..name.len()].copy_from_slice(name);
            found = Some(entry);
            true
        })?;
        Ok(found)
    }

    /// The gid of the group named `group` (or numbered so).
    fn group_id(&self, group: &[u8]) -> Result<Option<u32>, Error> {
        if let Some(gid) = parse_u32(group) {
            return Ok(Some(gid));
        }
        let mut found = None;
        scan(self.group, &mut |line| {
            found = (field(line, 0) == Some(group))
                .then(|| field(line, 2).and_then(parse_u32))
                .flatten();
            found.is_some()
        })?;
        Ok(found)
    }

    /// `gid` and every group that lists `name` as a member.
    fn groups_of(
        &self,
        name: &[u8],
        gid: u32,
    ) -> Result<heapless::Vec<u32, GROUPS_CAPACITY>, Error> {
        let mut groups = heapless::Vec::<u32, GROUPS_CAPACITY>::new();
        let _ = groups.push(gid);
        let mut full = false;
        scan(self.group, &mut |line| {
            let (Some(g), Some(members)) = (field(line, 2).and_then(parse_u32), field(line, 3))
            else {
                return false;
            };
            if members.split(|&b| b == b',').any(|m| m == name) && !groups.contains(&g) {
                full = groups.push(g).is_err();
            }
            full
        })?;
        if full {
            return Err(refused(
                ErrorKind::Capacity,
                "user is in more than 32 groups: ",
                name,
            ));
        }
        Ok(groups)
    }

    fn ids(&self, user: &[u8], group: Option<&[u8]>, root: bool) -> Result<ProcessIds, Error> {
        let number = parse_u32(user);
        let entry = if user.is_empty() {
            None
        } else {
            self.passwd(user, number)?
        };
        let uid = match (&entry, number) {
            (Some(pw), _) => pw.uid,
            (None, Some(uid)) => uid,
            (None, None) => return Err(refused(ErrorKind::UnknownUser, "no such user: ", user)),
        };
        let gid = match (group, &entry) {
            (Some(g), _) => self
                .group_id(g)?
                .ok_or_else(|| refused(ErrorKind::UnknownGroup, "no such group: ", g))?,
            (None, Some(pw)) => pw.gid,
            (None, None) => {
                return Err(refused(
                    ErrorKind::UnknownGroup,
                    "no passwd entry, so no group, for uid ",
                    Dec::new(i64::from(uid)).as_bytes(),
                ))
            }
        };
        let groups = match (&entry, root) {
            (_, false) => None,
            (Some(pw), true) => Some(self.groups_of(&pw.name[..pw.len], gid)?),
            (None, true) => Some(heapless::Vec::from_slice(&[gid]).unwrap_or_default()),
        };
        ProcessIds::from_parts(uid, gid, groups.as_deref())
    }
}

impl ProcessIds {
    /// The user `user` (a name or a decimal uid) and, when given, the group `group` (a
    /// name or a decimal gid; else the user's own), looked up in `/etc/passwd` and
    /// `/etc/group` only: no NSS, no `getpwnam`, nothing of libc's user database linked
    /// (see [`ProcessIds::user`] for the database's way).
    ///
    /// The supplementary groups follow `initgroups(3)` (start-stop-daemon `--chuid`):
    /// when the caller is root, the primary group and every group that lists the user
    /// as a member (just the primary group for a uid without a passwd entry), so root's
    /// own groups never survive; otherwise they are left alone (changing them needs
    /// root). A uid without a passwd entry needs `group`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownUser`] and [`ErrorKind::UnknownGroup`] naming what was not
    /// found (or the uid that has no entry and no group); [`ErrorKind::Capacity`]
    /// beyond [`GROUPS_CAPACITY`] groups; the OS error reading either file.
    pub fn from_files(user: &[u8], group: Option<&[u8]>) -> Result<ProcessIds, Error> {
        ETC.ids(user, group, sys::ids().1 == 0)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::ffi::CString;

    /// The two files in a directory of their own (tests run in parallel).
    fn files(passwd: &str, group: &str) -> (CString, CString) {
        static NEXT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(std::format!("pdm-users-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (p, g) = (dir.join("passwd"), dir.join("group"));
        std::fs::write(&p, passwd).unwrap();
        std::fs::write(&g, group).unwrap();
        let c = |p: std::path::PathBuf| CString::new(p.to_str().unwrap()).unwrap();
        (c(p), c(g))
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nsvc:x:1001:1001::/:/bin/false\nlast:x:1002:50::/:/bin/false";
    const GROUP: &str =
        "root:x:0:\nsvc:x:1001:\nwheel:x:10:admin,svc\nnet:x:20:svc\nother:x:30:svcx\n";

    fn ids(user: &str, group: Option<&str>, root: bool) -> Result<ProcessIds, Error> {
        let (p, g) = files(PASSWD, GROUP);
        Files {
            passwd: &p,
            group: &g,
        }
        .ids(user.as_bytes(), group.map(str::as_bytes), root)
    }

    #[test]
    fn a_user_gets_its_group_and_the_groups_listing_it() {
        let svc = ids("svc", None, true).unwrap();
        assert_eq!((svc.uid(), svc.gid()), (1001, 1001));
        assert_eq!(svc.groups(), Some(&[1001, 10, 20][..]));
        // Not root: the groups are left alone.
        assert_eq!(ids("svc", None, false).unwrap().groups(), None);
        // The last line has no newline.
        assert_eq!(ids("last", None, true).unwrap().gid(), 50);
        assert_eq!(ids("1002", None, true).unwrap().uid(), 1002);
    }

    #[test]
    fn a_group_is_a_name_or_a_number() {
        let svc = ids("svc", Some("net"), true).unwrap();
        assert_eq!((svc.gid(), svc.groups()), (20, Some(&[20, 10][..])));
        assert_eq!(ids("svc", Some("77"), false).unwrap().gid(), 77);
        // A uid without an entry: only with a group, and only that group.
        let bare = ids("4242", Some("4242"), true).unwrap();
        assert_eq!(
            (bare.uid(), bare.gid(), bare.groups()),
            (4242, 4242, Some(&[4242][..]))
        );
    }

    #[test]
    fn what_is_not_found_is_named() {
        let e = ids("nobody-here", None, true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownUser);
        assert_eq!(e.detail(), "no such user: nobody-here");
        let e = ids("svc", Some("nogroup-here"), true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownGroup);
        assert_eq!(e.detail(), "no such group: nogroup-here");
        let e = ids("4242", None, true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownGroup);
        assert_eq!(e.detail(), "no passwd entry, so no group, for uid 4242");
        let e = Files {
            passwd: c"/nonexistent/passwd",
            group: c"/nonexistent/group",
        }
        .ids(b"svc", None, true)
        .unwrap_err();
        assert_eq!(e.errno(), Some(Errno::NOENT));
        assert_eq!(e.stage(), Some(Stage::ProcessIds));
    }

    #[test]
    fn overlong_lines_are_skipped_and_too_many_groups_refused() {
        let long = std::format!(
            "{}:x:1:1::/:/bin/sh\nsvc:x:1001:1001::/:/bin/false\n",
            "a".repeat(5000)
        );
        let many: std::string::String = (0..40)
            .map(|g| std::format!("g{g}:x:{}:svc\n", 100 + g))
            .collect();
        let (p, g) = files(&long, &many);
        let f = Files {
            passwd: &p,
            group: &g,
        };
        let e = f.ids(b"svc", None, true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Capacity);
        assert_eq!(f.ids(b"svc", None, false).unwrap().uid(), 1001);
    }
}
