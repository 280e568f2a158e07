//! Stage 8: close every inherited descriptor above 2 except the ones to keep.
//!
//! Three ways, fastest first, none of them O(`RLIMIT_NOFILE`) on Linux:
//! 1. `close_range(2)` over the gaps between kept descriptors (Linux 5.9);
//! 2. on older kernels, the open descriptors listed by `getdents64(2)` on
//!    `/proc/self/fd`, read 4 KiB at a time;
//! 3. where `/proc` is not mounted either, `close` on every number below the soft
//!    `RLIMIT_NOFILE` (bounded, and the only case that costs one call per number).

use core::ffi::c_int;

use crate::{sys, Errno, Error, Stage};

/// Descriptors `inherit_files` can hold.
pub const INHERIT_CAPACITY: usize = 16;

/// Most descriptors kept through stage 8: `inherit_files` (the readiness descriptor
/// and socket activation's among them), a descriptor for each of the three standard
/// streams, the pid file, the report channel, the launcher's directory and the pipe to
/// a waiting intermediate process. Room for all of them, so [`KeepList::insert`]
/// cannot run out.
pub(crate) const KEEP_CAPACITY: usize = INHERIT_CAPACITY + 7;

/// Which way stage 8 closes descriptors (for tests of the fallbacks).
#[doc(hidden)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Method {
    /// `close_range`, else `/proc/self/fd`, else the bounded loop.
    Auto,
    /// As on a kernel before 5.9: `/proc/self/fd`, else the loop.
    NoCloseRange,
    /// As on a kernel before 5.9 without `/proc`: the bounded loop.
    Loop,
}

/// Sorted, de-duplicated descriptors above 2 that stage 8 leaves open.
#[derive(Default)]
pub(crate) struct KeepList {
    fds: heapless::Vec<c_int, KEEP_CAPACITY>,
}

impl KeepList {
    /// Adds `fd` in order; descriptors 0-2 and negative ones are ignored. Stage 8 adds at
    /// most [`KEEP_CAPACITY`] descriptors, so there is always room.
    #[inline(never)]
    pub(crate) fn insert(&mut self, fd: c_int) {
        if fd < 3 {
            return;
        }
        if let Err(at) = self.fds.binary_search(&fd) {
            let inserted = self.fds.insert(at, fd);
            debug_assert!(
                inserted.is_ok(),
                "KEEP_CAPACITY counts every kept descriptor"
            );
        }
    }

    fn contains(&self, fd: c_int) -> bool {
        self.fds.binary_search(&fd).is_ok()
    }
}

/// Stage 8. Async-signal-safe: one or more raw system calls, no allocation.
pub(crate) fn close_inherited(keep: &KeepList, method: Method) -> Result<(), Error> {
    if method == Method::Auto {
        match close_gaps(keep) {
            Ok(()) => return Ok(()),
            // ENOSYS: kernel before 5.9, or a seccomp filter (EPERM under some). EINVAL
            // would be ours (first above last, or flags): an error, not a fallback.
            Err(Errno::NOSYS) | Err(Errno::PERM) => {}
            Err(e) => return Err(Error::os(Stage::CloseFiles, e, "close_range", b"")),
        }
    }
    if method != Method::Loop && close_listed(keep).is_ok() {
        return Ok(());
    }
    close_below_limit(keep);
    Ok(())
}

/// `close_range` over `[3, k0)`, `(k0, k1)`, ... `(kn, ~0]`.
fn close_gaps(keep: &KeepList) -> Result<(), Errno> {
    let mut first: u32 = 3;
    for &fd in &keep.fds {
        let fd = fd as u32;
        if fd > first {
            sys::close_range(first, fd - 1)?;
        }
        first = fd + 1;
    }
    sys::close_range(first, u32::MAX)
}

/// Closes what `/proc/self/fd` lists; `Err` when it can't be read (not mounted).
fn close_listed(keep: &KeepList) -> Result<(), Errno> {
    let dir = sys::open(c"/proc/self/fd", sys::DIRECTORY_LIST, 0)?;
    let mut buf = [0u8; 4096];
    let result = loop {
        let len = match sys::getdents64(dir, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(len) => len,
            Err(e) => break Err(e),
        };
        for name in dirent_names(&buf[..len]) {
            let Some(fd) = crate::decimal::parse_u32(name).and_then(|n| c_int::try_from(n).ok())
            else {
                continue; // "." and ".."
            };
            if fd > 2 && fd != dir && !keep.contains(fd) {
                sys::close(fd);
            }
        }
    };
    sys::close(dir);
    result
}

/// The names in a buffer of `linux_dirent64` records
/// (`u64 ino; i64 off; u16 reclen; u8 type; char name[]`), read byte-wise so the
/// buffer needs no alignment and no `unsafe`.
pub(crate) fn dirent_names(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0usize;
    core::iter::from_fn(move || {
        let header = buf.get(at..at + 19)?;
        let reclen = usize::from(u16::from_ne_bytes([header[16], header[17]]));
        let record = buf.get(at..at + reclen).filter(|_| reclen > 19)?;
        at += reclen;
        let name = &record[19..];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Some(&name[..end])
    })
}

/// Closes every number from 3 up to the soft `RLIMIT_NOFILE`, except the kept ones.
fn close_below_limit(keep: &KeepList) {
    let limit = sys::nofile_soft_limit().min(c_int::MAX as u64) as c_int;
    for fd in 3..limit {
        if !keep.contains(fd) {
            sys::close(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_list_is_sorted_and_ignores_stdio() {
        let mut k = KeepList::default();
        for fd in [9, 4, 1, 9, 7] {
            k.insert(fd);
        }
        assert_eq!(&k.fds[..], &[4, 7, 9]);
    }

    #[test]
    fn parses_dirent_records() {
        let mut buf = [0u8; 64];
        for (i, name) in [&b"."[..], b"12"].iter().enumerate() {
            let at = i * 24;
            buf[at + 16..at + 18].copy_from_slice(&24u16.to_ne_bytes());
            buf[at + 19..at + 19 + name.len()].copy_from_slice(name);
        }
        let names: heapless::Vec<&[u8], 4> = dirent_names(&buf[..48]).collect();
        assert_eq!(&names[..], &[&b"."[..], &b"12"[..]]);
    }
}
