//! A global allocator for test helpers that aborts on any allocation in a forked
//! daemon before its `run()` starts, when `PDM_ALLOC_TRAP` is set. Shared by the
//! helpers through `#[path]`; call [`arm`] first thing in `main` and [`in_run`] first
//! thing in the daemon's `run()`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::SeqCst};

static LAUNCHER: AtomicI32 = AtomicI32::new(0);
static TRAP: AtomicBool = AtomicBool::new(false);
static IN_RUN: AtomicBool = AtomicBool::new(false);

/// Records the launcher's pid and whether `PDM_ALLOC_TRAP` asks for the trap.
pub fn arm() {
    // SAFETY: getpid cannot fail.
    LAUNCHER.store(unsafe { libc::getpid() }, SeqCst);
    TRAP.store(std::env::var_os("PDM_ALLOC_TRAP").is_some(), SeqCst);
}

/// The daemon's `run()` has started: allocation is allowed from here on.
pub fn in_run() {
    IN_RUN.store(true, SeqCst);
}

struct Trap;

// SAFETY: delegates to System; the check only reads atomics and calls getpid/write/abort.
unsafe impl GlobalAlloc for Trap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        check();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, size) }
    }
}

fn check() {
    if !TRAP.load(SeqCst) || IN_RUN.load(SeqCst) {
        return;
    }
    // SAFETY: getpid cannot fail.
    if unsafe { libc::getpid() } != LAUNCHER.load(SeqCst) {
        let msg = b"ALLOCATION BETWEEN FORK AND RUN\n";
        // SAFETY: writing a static buffer to stderr, then abort.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::abort();
        }
    }
}

#[global_allocator]
static GLOBAL: Trap = Trap;
