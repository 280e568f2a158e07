//! A fresh directory for one unit test, never one left by another run.
//!
//! `/tmp` outlives test runs and pids repeat: a name made of the pid alone can meet a
//! directory another user's run left behind, which this one can neither remove nor
//! write. So the directory is created, never reused: on `EEXIST` the next name is
//! tried.

extern crate std;

use std::path::PathBuf;

/// A directory of our own under the system's temporary directory, removed on drop.
pub(crate) struct TestDir(pub(crate) PathBuf);

impl TestDir {
    pub(crate) fn new(tag: &str) -> TestDir {
        use core::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::SeqCst);
            let dir = std::env::temp_dir()
                .join(std::format!("pdm-unit-{tag}-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return TestDir(dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("creating {}: {e}", dir.display()),
            }
        }
    }

    /// `name` inside the directory, as a C string.
    pub(crate) fn path(&self, name: &str) -> std::ffi::CString {
        std::ffi::CString::new(self.0.join(name).to_str().unwrap()).unwrap()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
