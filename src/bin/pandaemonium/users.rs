//! `--user USER[:GROUP]`: names resolved from `/etc/passwd` and `/etc/group`, as
//! busybox does, and stage 3 done with the ids found.
//!
//! Why not the core's `ProcessIds::user`: it resolves through libc's `getpwnam`,
//! `getgrnam` and `getgrouplist`, which on musl bring in stdio, malloc and the nscd
//! client, a third of this binary. A static musl build has no NSS modules anyway, so
//! reading the two files gives the same answers there; elsewhere, names that live only
//! in LDAP and the like need numbers (`--user 1234:1234`). The core's `ProcessIds`
//! has no constructor that looks nothing up, so stage 3 is done here too, the core's
//! way: `setgroups`, `setgid`, `setuid`, then a check that `setuid(0)` fails.
//!
//! Supplementary groups follow `initgroups(3)` (start-stop-daemon `--chuid`): the
//! primary group (GROUP, else USER's) and every group listing USER as a member. They
//! are set only when the launcher is root (changing them needs root); a uid with no
//! passwd entry gets just its group.

use core::ffi::CStr;

use pandaemonium::{Errno, Error, ErrorKind, Stage};

use crate::args;
use crate::out::digits;
use crate::sys;

/// Supplementary groups kept (the core's `GROUPS_CAPACITY`).
pub const GROUPS: usize = 32;

/// The ids stage 3 switches to, resolved before fork.
#[derive(Clone, Copy)]
pub struct Ids {
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: [libc::gid_t; GROUPS],
    /// How many of `groups` to set; `None`: leave the groups alone.
    count: Option<usize>,
}

/// Calls `f` with each line of `path` until it returns `true`. Lines longer than the
/// buffer (4 KiB) are skipped. (`dyn`: one copy of the loop, not one per caller.)
fn scan(path: &CStr, f: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), Errno> {
    let fd = sys::open_read(path, false)?;
    let mut buf = [0u8; 4096];
    let (mut len, mut overlong) = (0, false);
    let result = loop {
        let n = match sys::read(fd, &mut buf[len..]) {
            Ok(n) => n,
            Err(e) => break Err(e),
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

/// Field `i` of a `:`-separated line.
fn field(line: &[u8], i: usize) -> Option<&[u8]> {
    line.split(|&b| b == b':').nth(i)
}

/// A passwd entry: its name (in `name`, with its length), uid and gid.
struct Passwd {
    name: [u8; 256],
    len: usize,
    uid: u32,
    gid: u32,
}

/// The passwd entry whose name is `user`, or whose uid is `uid`.
fn passwd(user: &[u8], uid: Option<u32>) -> Result<Option<Passwd>, Errno> {
    let mut found = None;
    scan(c"/etc/passwd", &mut |line| {
        let (Some(name), Some(u), Some(g)) = (field(line, 0), field(line, 2), field(line, 3))
        else {
            return false;
        };
        let (Some(u), Some(g)) = (args::decimal(u), args::decimal(g)) else {
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
fn group_id(group: &[u8]) -> Result<Option<u32>, Errno> {
    if let Some(gid) = args::decimal(group) {
        return Ok(Some(gid));
    }
    let mut found = None;
    scan(c"/etc/group", &mut |line| {
        found = (field(line, 0) == Some(group))
            .then(|| field(line, 2).and_then(args::decimal))
            .flatten();
        found.is_some()
    })?;
    Ok(found)
}

/// Why `--user` was refused.
pub enum Refused {
    /// No such user.
    User,
    /// No such group.
    Group,
    /// A uid without a passwd entry, and no group.
    NoGroup,
    /// More than [`GROUPS`] groups.
    TooManyGroups,
    /// `/etc/passwd` or `/etc/group` could not be read.
    Os(Errno),
}

impl From<Errno> for Refused {
    fn from(e: Errno) -> Refused {
        Refused::Os(e)
    }
}

/// Resolves `USER[:GROUP]`.
pub fn resolve(spec: &[u8]) -> Result<Ids, Refused> {
    let (user, group) = match spec.iter().position(|&b| b == b':') {
        Some(colon) => (&spec[..colon], Some(&spec[colon + 1..])),
        None => (spec, None),
    };
    let number = args::decimal(user);
    let entry = if user.is_empty() {
        None
    } else {
        passwd(user, number)?
    };
    let uid = match (&entry, number) {
        (Some(pw), _) => pw.uid,
        (None, Some(uid)) => uid,
        (None, None) => return Err(Refused::User),
    };
    let gid = match (group, &entry) {
        (Some(g), _) => group_id(g)?.ok_or(Refused::Group)?,
        (None, Some(pw)) => pw.gid,
        (None, None) => return Err(Refused::NoGroup),
    };
    let mut ids = Ids {
        uid,
        gid,
        groups: [0; GROUPS],
        count: None,
    };
    if sys::euid() == 0 {
        ids.groups[0] = gid;
        let mut count = 1;
        if let Some(pw) = &entry {
            let name = &pw.name[..pw.len];
            let mut full = false;
            scan(c"/etc/group", &mut |line| {
                let (Some(g), Some(members)) =
                    (field(line, 2).and_then(args::decimal), field(line, 3))
                else {
                    return false;
                };
                if members.split(|&b| b == b',').any(|m| m == name)
                    && !ids.groups[..count].contains(&g)
                {
                    if count == GROUPS {
                        full = true;
                        return true;
                    }
                    ids.groups[count] = g;
                    count += 1;
                }
                false
            })?;
            if full {
                return Err(Refused::TooManyGroups);
            }
        }
        ids.count = Some(count);
    }
    Ok(ids)
}

fn id_error(op: &str, id: u32, e: Errno) -> Error {
    let mut buf = [0u8; 20];
    Error::os(Stage::ProcessIds, e, op, digits(u64::from(id), &mut buf))
}

/// Stage 3: `setgroups`, `setgid`, `setuid`, then checks that `setuid(0)` now fails.
/// Async-signal-safe.
pub fn apply(ids: &Ids) -> Result<(), Error> {
    if let Some(count) = ids.count {
        sys::setgroups(&ids.groups[..count])
            .map_err(|e| Error::os(Stage::ProcessIds, e, "setgroups", b""))?;
    }
    sys::setgid(ids.gid).map_err(|e| id_error("setgid", ids.gid, e))?;
    sys::setuid(ids.uid).map_err(|e| id_error("setuid", ids.uid, e))?;
    if ids.uid != 0 && sys::setuid(0) != Err(Errno::PERM) {
        return Err(Error::new(
            Some(Stage::ProcessIds),
            ErrorKind::PrivilegesRegained,
            "setuid(0) still succeeds after dropping privileges",
        ));
    }
    Ok(())
}
