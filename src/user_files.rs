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

/// The first four `:`-separated fields of a line (empty where missing).
fn fields(line: &[u8]) -> [&[u8]; 4] {
    let mut out: [&[u8]; 4] = [b""; 4];
    let mut rest = line;
    for slot in &mut out {
        let end = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
        *slot = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or(b"");
    }
    out
}

/// Whether the comma-separated `members` list `name`.
fn lists(members: &[u8], name: &[u8]) -> bool {
    let mut rest = members;
    loop {
        let end = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        if &rest[..end] == name {
            return true;
        }
        match rest.get(end + 1..) {
            Some(next) => rest = next,
            None => return false,
        }
    }
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
    fn ids(&self, user: &[u8], group: Option<&[u8]>, root: bool) -> Result<ProcessIds, Error> {
        let number = parse_u32(user);
        // The passwd entry named `user` (or numbered so): its name, uid and gid.
        let mut name = [0u8; 256];
        let mut entry: Option<(usize, u32, u32)> = None;
        if !user.is_empty() {
            scan(self.passwd, &mut |line| {
                let [n, _, u, g] = fields(line);
                let (Some(u), Some(g)) = (parse_u32(u), parse_u32(g)) else {
                    return false;
                };
                if (n != user && number != Some(u)) || n.len() > name.len() {
                    return false;
                }
                name[..n.len()].copy_from_slice(n);
                entry = Some((n.len(), u, g));
                true
            })?;
        }
        let uid = match (entry, number) {
            (Some((_, uid, _)), _) => uid,
            (None, Some(uid)) => uid,
            (None, None) => return Err(refused(ErrorKind::UnknownUser, "no such user: ", user)),
        };
        let name = &name[..entry.map_or(0, |(len, _, _)| len)];
        // One pass over /etc/group: the gid of a group given by name, and the groups
        // that list the user (when they are to be set).
        let mut gid = match (group, entry) {
            (Some(g), _) => parse_u32(g),
            (None, Some((_, _, gid))) => Some(gid),
            (None, None) => {
                return Err(refused(
                    ErrorKind::UnknownGroup,
                    "no passwd entry, so no group, for uid ",
                    Dec::new(i64::from(uid)).as_bytes(),
                ))
            }
        };
        let members = root && entry.is_some();
        // list[0]: the primary group, set below; then room for one member more than
        // the capacity (one may be the primary group again): a list that fills up has
        // more groups than the capacity, whatever else the file holds.
        let mut list = [0u32; GROUPS_CAPACITY + 2];
        let mut count = 1;
        if gid.is_none() || members {
            scan(self.group, &mut |line| {
                let [n, _, g, m] = fields(line);
                let Some(g) = parse_u32(g) else {
                    return false;
                };
                if gid.is_none() && Some(n) == group {
                    gid = Some(g);
                }
                if members && lists(m, name) && !list[1..count].contains(&g) {
                    if let Some(slot) = list.get_mut(count) {
                        *slot = g;
                        count += 1;
                    }
                }
                false
            })?;
        }
        let Some(gid) = gid else {
            return Err(refused(
                ErrorKind::UnknownGroup,
                "no such group: ",
                group.unwrap_or_default(),
            ));
        };
        if !root {
            return Ok(ProcessIds::groups_alone(uid, gid));
        }
        // The primary group first, once.
        list[0] = gid;
        let mut n = 1;
        for i in 1..count {
            if list[i] != gid {
                list[n] = list[i];
                n += 1;
            }
        }
        if n > GROUPS_CAPACITY {
            return Err(refused(
                ErrorKind::Capacity,
                "user is in more than 32 groups: ",
                name,
            ));
        }
        ProcessIds::from_parts(uid, gid, Some(&list[..n]))
    }

    /// The gids of a comma-separated list of group names or decimal gids.
    fn group_list(
        &self,
        list: &[u8],
    ) -> Result<heapless::Vec<libc::gid_t, GROUPS_CAPACITY>, Error> {
        let mut gids = heapless::Vec::new();
        if list.is_empty() {
            return Ok(gids);
        }
        for item in list.split(|&b| b == b',') {
            let gid = match parse_u32(item) {
                Some(gid) => Some(gid),
                None if item.is_empty() => None,
                None => {
                    let mut found = None;
                    scan(self.group, &mut |line| {
                        let [n, _, g, _] = fields(line);
                        found = parse_u32(g).filter(|_| n == item);
                        found.is_some()
                    })?;
                    found
                }
            };
            let gid =
                gid.ok_or_else(|| refused(ErrorKind::UnknownGroup, "no such group: ", item))?;
            if !gids.contains(&gid) {
                gids.push(gid).map_err(|_| {
                    refused(
                        ErrorKind::Capacity,
                        "more than 32 supplementary groups",
                        b"",
                    )
                })?;
            }
        }
        Ok(gids)
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

    /// The same ids with exactly these supplementary groups: `list` is comma-separated
    /// group names (looked up in `/etc/group` only, as [`from_files`](Self::from_files)
    /// does) or decimal gids; an empty list drops them all (runit's `chpst -u
    /// user:group:group`, s6's `s6-applyuidgid -G`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownGroup`] naming a group that is not in the file (or an empty
    /// item); [`ErrorKind::Capacity`] beyond [`GROUPS_CAPACITY`]; the OS error reading
    /// the file.
    pub fn with_groups_from_files(self, list: &[u8]) -> Result<ProcessIds, Error> {
        let gids = ETC.group_list(list)?;
        self.with_groups(&gids)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::test_dir::TestDir;
    use std::ffi::CString;

    /// The two files in a directory of their own (tests run in parallel), removed
    /// when the first value is dropped.
    fn files(passwd: &str, group: &str) -> (TestDir, CString, CString) {
        let dir = TestDir::new("users");
        let (p, g) = (dir.path("passwd"), dir.path("group"));
        std::fs::write(p.to_str().unwrap(), passwd).unwrap();
        std::fs::write(g.to_str().unwrap(), group).unwrap();
        (dir, p, g)
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nsvc:x:1001:1001::/:/bin/false\nlast:x:1002:50::/:/bin/false";
    const GROUP: &str =
        "root:x:0:\nsvc:x:1001:\nwheel:x:10:admin,svc\nnet:x:20:svc\nother:x:30:svcx\n";

    fn ids(user: &str, group: Option<&str>, root: bool) -> Result<ProcessIds, Error> {
        let (_dir, p, g) = files(PASSWD, GROUP);
        Files {
            passwd: &p,
            group: &g,
        }
        .ids(user.as_bytes(), group.map(str::as_bytes), root)
    }

    #[test]
    fn a_group_list_by_names_and_numbers() {
        let (_dir, p, g) = files(PASSWD, GROUP);
        let f = Files {
            passwd: &p,
            group: &g,
        };
        assert_eq!(
            &f.group_list(b"wheel,20,net,svc,7").unwrap()[..],
            &[10, 20, 1001, 7]
        );
        assert!(f.group_list(b"").unwrap().is_empty(), "none");
        for bad in [&b"wheel,nosuch"[..], b"wheel,", b",", b"svcx"] {
            let e = f.group_list(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::UnknownGroup, "{bad:?}");
        }
        assert!(f
            .group_list(b"wheel,nosuch")
            .unwrap_err()
            .detail()
            .ends_with("nosuch"));
        let many: std::string::String = (0..33).map(|n| std::format!("{n},")).collect();
        let e = f
            .group_list(many.trim_end_matches(',').as_bytes())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Capacity);
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
        // Under /proc/self nothing can create the directory (a file /nonexistent, left
        // by some other run, made this ENOTDIR once).
        let e = Files {
            passwd: c"/proc/self/nonexistent-pdm/passwd",
            group: c"/proc/self/nonexistent-pdm/group",
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
        let (_dir, p, g) = files(&long, &many);
        let f = Files {
            passwd: &p,
            group: &g,
        };
        let e = f.ids(b"svc", None, true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Capacity);
        assert_eq!(f.ids(b"svc", None, false).unwrap().uid(), 1001);
    }

    #[test]
    fn a_large_file_is_read_across_its_buffers() {
        // 300 lines of about 40 bytes: the entry sought is far past the first 4 KiB.
        let mut passwd: std::string::String = (0..300)
            .map(|u| {
                std::format!(
                    "user{u:04}:x:{}:{}::/home/u:/bin/false\n",
                    2000 + u,
                    2000 + u
                )
            })
            .collect();
        passwd.push_str("last:x:77:78::/:/bin/false");
        let (_dir, p, g) = files(&passwd, GROUP);
        let f = Files {
            passwd: &p,
            group: &g,
        };
        let ids = f.ids(b"user0299", None, false).unwrap();
        assert_eq!((ids.uid(), ids.gid()), (2299, 2299));
        assert_eq!(f.ids(b"last", None, false).unwrap().gid(), 78);
    }

    #[test]
    fn names_of_up_to_256_bytes_and_no_overlong_tail() {
        let name256 = "n".repeat(256);
        let name257 = "m".repeat(257);
        // The last line is overlong (two whole buffers) and has no newline: its tail,
        // which starts a buffer and looks like an entry, is not one.
        let passwd = std::format!(
            "{name256}:x:256:256::/:/bin/false\n{name257}:x:257:257::/:/bin/false\n{}evil:x:0:0::/:/bin/sh",
            "x".repeat(8192)
        );
        let (_dir, p, g) = files(&passwd, GROUP);
        let f = Files {
            passwd: &p,
            group: &g,
        };
        assert_eq!(f.ids(name256.as_bytes(), None, false).unwrap().uid(), 256);
        for refused in [name257.as_bytes(), b"evil"] {
            let e = f.ids(refused, None, false).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::UnknownUser);
        }
    }

    #[test]
    fn exactly_the_capacity_fits_the_primary_group_counted_once() {
        let passwd = "svc:x:1001:100::/:/bin/false\n";
        // 32 groups listing svc, one of them its primary group 100: 32 in all.
        let mut group: std::string::String = (0..31)
            .map(|g| std::format!("g{g}:x:{}:svc\n", 200 + g))
            .collect();
        group.push_str("users:x:100:svc\n");
        let (_dir, p, g) = files(passwd, &group);
        let f = Files {
            passwd: &p,
            group: &g,
        };
        let ids = f.ids(b"svc", None, true).unwrap();
        let list = ids.groups().unwrap();
        assert_eq!(list.len(), 32);
        assert_eq!(list[0], 100);
        // One more, and it no longer fits.
        group.push_str("a:x:300:svc\n");
        let (_dir, p, g) = files(passwd, &group);
        let f = Files {
            passwd: &p,
            group: &g,
        };
        assert_eq!(
            f.ids(b"svc", None, true).unwrap_err().kind(),
            ErrorKind::Capacity
        );
    }
}
