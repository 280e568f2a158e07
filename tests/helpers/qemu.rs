//! Under qemu-user (`--cfg qemu`), the guest's `/proc/self/stat` reports 0 threads, so
//! stage 1 can't count them and refuses to fork (`ThreadsUnknown`). The helpers start
//! no threads (except `pdm-threaded`, which opts in itself), so there they opt in.
//! Shared by the helpers through `#[path]`; natively these do nothing.
#![allow(dead_code)]

use pandaemonium::{Daemon, Run};

/// Opts `daemon` out of the thread check under qemu only.
pub fn allow_threads<R: Run>(daemon: &mut Daemon<'_, R>) {
    #[cfg(qemu)]
    // SAFETY: this helper is single-threaded; only qemu-user hides the count.
    unsafe {
        daemon.allow_threads();
    }
    let _ = daemon;
}

/// The same for the std `Builder`.
#[cfg(feature = "std")]
pub fn builder(builder: pandaemonium::Builder) -> pandaemonium::Builder {
    #[cfg(qemu)]
    // SAFETY: as above.
    return unsafe { builder.allow_threads() };
    #[cfg(not(qemu))]
    builder
}
