//! Without the `tool-log` feature: `--log` and `--syslog` are not built (`start`
//! refuses them as such), PROGRAM writes where its descriptors point, and none of
//! `output.rs` (the pipe, the log file, the syslog sender) is linked. The same names
//! as `output.rs`, with nothing in them: a [`Logger`] can't be made.

use core::ffi::{c_int, CStr};

use pandaemonium::{Errno, Program};

use crate::report::Record;

/// No output to carry.
#[derive(Clone, Copy, Default)]
pub struct Output {}

impl Output {
    /// Never a logger.
    pub fn logger(self, _: &CStr) -> Result<Option<Logger>, Record> {
        Ok(None)
    }
}

/// Never made: every method is unreachable.
pub enum Logger {}

impl Logger {
    pub fn wait(&mut self, _: Option<u64>) {
        match *self {}
    }

    pub fn drain(&mut self) {
        match *self {}
    }

    pub fn reopen(&mut self) -> bool {
        match *self {}
    }

    pub fn spawn(
        &mut self,
        _: &Program<'_>,
        _: Option<c_int>,
        _: Option<c_int>,
    ) -> Result<u32, Errno> {
        match *self {}
    }
}
