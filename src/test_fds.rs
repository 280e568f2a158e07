//! Descriptors at known numbers for unit tests: a block of consecutive free numbers,
//! whatever the test runner (or another test, on another thread) holds.
//!
//! The block is probed high above the runner's descriptors, then filled with copies of
//! one pipe end (`F_DUPFD`, so without `FD_CLOEXEC`); a number another test takes
//! between the probe and the copy makes the search start again past it.

use core::ffi::c_int;

use crate::sys;

/// `n` open descriptors at `first..first + n`, and `spare`, the pipe's other end (open
/// too, at a number of the system's choosing). All closed when dropped (a test may
/// close some of them first).
pub(crate) struct FdBlock {
    pub(crate) first: c_int,
    pub(crate) n: c_int,
    pub(crate) spare: c_int,
}

impl FdBlock {
    #[allow(unsafe_code)]
    pub(crate) fn new(n: c_int) -> FdBlock {
        let (r, w) = sys::pipe().unwrap();
        let mut first = 200;
        'search: loop {
            while (first..first + n).any(sys::fd_is_open) {
                first += n;
            }
            let start = first;
            for fd in start..start + n {
                // SAFETY: F_DUPFD takes an int argument and touches no memory.
                let got = unsafe { libc::fcntl(r, libc::F_DUPFD, fd) };
                assert!(got >= 0, "F_DUPFD {fd}");
                if got != fd {
                    // Taken meanwhile: undo, and search past it.
                    for made in (start..fd).chain([got]) {
                        sys::close(made);
                    }
                    first = got.max(start + n);
                    continue 'search;
                }
            }
            sys::close(r);
            return FdBlock { first, n, spare: w };
        }
    }

    /// The numbers of the block.
    pub(crate) fn fds(&self) -> core::ops::Range<c_int> {
        self.first..self.first + self.n
    }
}

impl Drop for FdBlock {
    fn drop(&mut self) {
        for fd in self.fds().chain([self.spare]) {
            sys::close(fd);
        }
    }
}
