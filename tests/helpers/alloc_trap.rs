//! The test helpers' allocator: the C library's `malloc` family, replaced, so that it
//! can abort a forked daemon that allocates or frees anything before its `run()`
//! starts, when `PDM_ALLOC_TRAP` is set. Shared by the helpers through `#[path]`; call
//! [`arm`] first thing in `main` and [`in_run`] first thing in the daemon's `run()`.
//!
//! The functions below are the program's `malloc`, `calloc`, `realloc`, `free`, ...
//! (`#[no_mangle]`): Rust's default allocator (`System`) calls them, the C library's
//! own allocations call them (glibc, dynamic: by ELF interposition, the executable
//! coming first; static musl: the linker takes them instead of libc.a's), and so does
//! a `libc::malloc` in the program. One path: whatever allocates or frees, Rust or C,
//! comes through here, and in the trapped window (a process other than the launcher,
//! before [`in_run`]) every one of them, `free` included, writes the message and
//! aborts. Outside it, a lock-free bump allocator over `mmap`: `free` reuses nothing
//! (the helpers are short-lived), so blocks are never recycled and fresh memory is
//! zero. Lock-free, so a launcher thread that held it at fork cannot block the daemon
//! once allocation is allowed. With `PDM_ALLOC_TRAP` unset the check is one atomic load.
//!
//! Not seen: memory mapped directly (`mmap`, `brk`: no allocator call), and glibc's
//! `ld.so` private allocator, used only while loading, before `main`.

use std::ffi::{c_int, c_void};
use std::mem::size_of;
use std::ptr::{self, null_mut};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering::SeqCst};

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

/// Aborts, naming the entry point `what`, when called between fork and `run()`.
fn check(what: &str) {
    if !TRAP.load(SeqCst) || IN_RUN.load(SeqCst) {
        return;
    }
    // SAFETY: getpid cannot fail.
    if unsafe { libc::getpid() } != LAUNCHER.load(SeqCst) {
        fatal(&[
            "ALLOCATION BETWEEN FORK AND RUN\n",
            "alloc_trap: ",
            what,
            "()\n",
        ]);
    }
}

/// Writes `parts` to stderr with one raw `write(2)` (no allocation, no lock), then
/// aborts.
fn fatal(parts: &[&str]) -> ! {
    let mut buf = [0u8; 160];
    let mut n = 0;
    for b in parts.iter().flat_map(|p| p.bytes()) {
        if n < buf.len() {
            buf[n] = b;
            n += 1;
        }
    }
    // SAFETY: writing `n` initialised bytes of a local buffer to fd 2, then abort.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n);
        libc::abort()
    }
}

/// Alignment of every block, at least `max_align_t`'s on every target.
const ALIGN: usize = 16;
/// Bytes reserved below each block; the block's size is stored in the first word.
const HEADER: usize = 16;
/// Small blocks come from chunks of this size.
const CHUNK: usize = 1 << 20;
/// Blocks of this size or more, or aligned beyond a page, get a mapping of their own.
const LARGE: usize = CHUNK / 4;
const MIN_PAGE: usize = 4096;
/// How many mappings the registry can hold (4 GiB of chunks).
const MAX_MAPS: usize = 4096;

/// The start of each chunk: how much of it is used, from its start.
#[repr(C, align(16))]
struct Chunk {
    used: AtomicUsize,
}

/// The chunk small blocks come from now (null before the first allocation).
static CURRENT: AtomicPtr<Chunk> = AtomicPtr::new(null_mut());
/// Every mapping made, as (start, end), so that `realloc` and `malloc_usable_size`
/// know a block of ours from a pointer they were never meant to get.
static MAPS: [(AtomicUsize, AtomicUsize); MAX_MAPS] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_MAPS];
static NMAPS: AtomicUsize = AtomicUsize::new(0);

/// A fresh, zeroed, registered mapping of at least `len` bytes, or null.
fn map(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address the kernel picks.
    let p = unsafe {
        libc::mmap(
            null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return null_mut();
    }
    let i = NMAPS.fetch_add(1, SeqCst);
    if i >= MAX_MAPS {
        fatal(&["alloc_trap: out of mapping slots\n"]);
    }
    MAPS[i].0.store(p as usize, SeqCst);
    MAPS[i].1.store(p as usize + len, SeqCst);
    p.cast()
}

/// The size of the block at `p`, if this allocator made it.
fn block_size(p: *mut c_void) -> Option<usize> {
    let a = p as usize;
    let n = NMAPS.load(SeqCst).min(MAX_MAPS);
    MAPS[..n]
        .iter()
        .any(|(s, e)| (s.load(SeqCst)..e.load(SeqCst)).contains(&a))
        // SAFETY: a block of ours: its size is stored HEADER bytes below it.
        .then(|| unsafe { p.cast::<u8>().sub(HEADER).cast::<usize>().read() })
}

/// Stores `size` in the header of the block at `data`, and returns it.
///
/// # Safety
///
/// `data` is HEADER bytes or more into a mapping of ours, 16-aligned, and its header
/// is no other block's memory.
unsafe fn seal(data: usize, size: usize) -> *mut c_void {
    let data = data as *mut u8;
    // SAFETY: as the caller promises.
    unsafe { data.sub(HEADER).cast::<usize>().write(size) };
    data.cast()
}

const fn align_up(a: usize, align: usize) -> Option<usize> {
    match a.checked_add(align - 1) {
        Some(b) => Some(b & !(align - 1)),
        None => None,
    }
}

/// A new block of `size` bytes aligned to `align` (a power of two, at least ALIGN),
/// zeroed; null if there is no memory for it.
fn reserve(size: usize, align: usize) -> *mut c_void {
    if size > isize::MAX as usize / 2 || align > 1 << 28 {
        return null_mut();
    }
    if size >= LARGE || align > MIN_PAGE {
        let len = size + align + HEADER;
        let base = map(len);
        if base.is_null() {
            return null_mut();
        }
        let data = align_up(base as usize + HEADER, align).unwrap();
        // SAFETY: data + size is within the mapping of `len` bytes (at most align +
        // HEADER of it go below data), the header inside it, above its start.
        return unsafe { seal(data, size) };
    }
    loop {
        let chunk = CURRENT.load(SeqCst);
        if !chunk.is_null() {
            let base = chunk as usize;
            // SAFETY: CURRENT only ever holds initialised chunks, never unmapped.
            let used = unsafe { &(*chunk).used };
            let mut u = used.load(SeqCst);
            while let Some(data) = align_up(base + u + HEADER, align) {
                let end = data + size;
                if end > base + CHUNK {
                    break;
                }
                let next = align_up(end, ALIGN).unwrap() - base;
                match used.compare_exchange_weak(u, next, SeqCst, SeqCst) {
                    // SAFETY: [u, next) of this chunk is ours alone now: the header
                    // below data and the block, inside the chunk.
                    Ok(_) => return unsafe { seal(data, size) },
                    Err(now) => u = now,
                }
            }
        }
        // None yet, or full: a new one. Another thread may replace it at once; the
        // blocks it gave out stay valid, only its rest is lost.
        let fresh = map(CHUNK).cast::<Chunk>();
        if fresh.is_null() {
            return null_mut();
        }
        // SAFETY: a new mapping, CHUNK bytes, page-aligned: room for the Chunk.
        unsafe {
            fresh.write(Chunk {
                used: AtomicUsize::new(size_of::<Chunk>()),
            })
        };
        CURRENT.store(fresh, SeqCst);
    }
}

fn set_errno(e: c_int) {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() = e };
}

fn or_enomem(p: *mut c_void) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p
}

fn page_size() -> usize {
    // SAFETY: sysconf with a valid name.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).map_or(MIN_PAGE, |p| p.max(MIN_PAGE))
}

/// `realloc` itself, once checked.
///
/// # Safety
///
/// `p` is null or a live block of ours.
unsafe fn resize(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        return or_enomem(reserve(size, ALIGN));
    }
    let Some(old) = block_size(p) else {
        fatal(&["alloc_trap: realloc of a pointer it did not allocate\n"]);
    };
    if size <= old {
        // Shrinking in place: the header keeps the old size (what was given).
        return p;
    }
    let new = reserve(size, ALIGN);
    if new.is_null() {
        return or_enomem(new);
    }
    // SAFETY: `old` bytes are readable at p, `size` > old writable at new, distinct.
    unsafe { ptr::copy_nonoverlapping(p.cast::<u8>(), new.cast::<u8>(), old) };
    new
}

/// C's `malloc`, for the whole program.
#[no_mangle]
extern "C" fn malloc(size: usize) -> *mut c_void {
    check("malloc");
    or_enomem(reserve(size, ALIGN))
}

/// C's `calloc`: fresh blocks are zero already (mmap memory, never reused).
#[no_mangle]
extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    check("calloc");
    match n.checked_mul(size) {
        Some(total) => or_enomem(reserve(total, ALIGN)),
        None => or_enomem(null_mut()),
    }
}

/// C's `realloc`: grows into a new block (the old one is not reused).
///
/// # Safety
///
/// `p` is null or a live block from this allocator.
#[no_mangle]
unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    check("realloc");
    // SAFETY: as the caller promises.
    unsafe { resize(p, size) }
}

/// C's `reallocarray`.
///
/// # Safety
///
/// As `realloc`.
#[no_mangle]
unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    check("reallocarray");
    match n.checked_mul(size) {
        // SAFETY: as the caller promises.
        Some(total) => unsafe { resize(p, total) },
        None => or_enomem(null_mut()),
    }
}

/// C's `free`: the memory is not reused. `free(NULL)` counts too: a call into the
/// allocator.
#[no_mangle]
extern "C" fn free(_p: *mut c_void) {
    check("free");
}

/// C's `posix_memalign`.
///
/// # Safety
///
/// `out` is valid for a pointer write.
#[no_mangle]
unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    check("posix_memalign");
    // A power of two and a multiple of the pointer size.
    if !align.is_power_of_two() || align < size_of::<*mut c_void>() {
        return libc::EINVAL;
    }
    let p = reserve(size, align.max(ALIGN));
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: as the caller promises.
    unsafe { out.write(p) };
    0
}

fn aligned(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return null_mut();
    }
    or_enomem(reserve(size, align.max(ALIGN)))
}

/// C's `aligned_alloc`.
#[no_mangle]
extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    check("aligned_alloc");
    aligned(align, size)
}

/// The obsolete `memalign`.
#[no_mangle]
extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    check("memalign");
    aligned(align, size)
}

/// The obsolete `valloc`: page-aligned.
#[no_mangle]
extern "C" fn valloc(size: usize) -> *mut c_void {
    check("valloc");
    or_enomem(reserve(size, page_size()))
}

/// The obsolete `pvalloc`: page-aligned, the size rounded up to whole pages.
#[no_mangle]
extern "C" fn pvalloc(size: usize) -> *mut c_void {
    check("pvalloc");
    let page = page_size();
    match align_up(size.max(1), page) {
        Some(total) => or_enomem(reserve(total, page)),
        None => or_enomem(null_mut()),
    }
}

/// `malloc_usable_size`: the size asked for (0 for null or a pointer not ours).
#[no_mangle]
extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    check("malloc_usable_size");
    if p.is_null() {
        return 0;
    }
    block_size(p).unwrap_or(0)
}

/// Static musl's internal allocator entry points: `__libc_malloc`, `__libc_calloc`,
/// `__libc_free` (and `__libc_realloc`) are what libc.a itself calls for memory it
/// frees itself (locales, time zones, `atexit` beyond 32 handlers, `posix_spawn` file
/// actions, `pthread_atfork`, aio, `dlerror`...), bypassing the public names. Defined
/// here too, they come through the trap as well, and no musl allocator is linked in.
#[cfg(target_env = "musl")]
mod musl_internal {
    use std::ffi::c_void;

    #[no_mangle]
    extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
        super::check("__libc_malloc");
        super::or_enomem(super::reserve(size, super::ALIGN))
    }

    #[no_mangle]
    extern "C" fn __libc_calloc(n: usize, size: usize) -> *mut c_void {
        super::check("__libc_calloc");
        match n.checked_mul(size) {
            Some(total) => super::or_enomem(super::reserve(total, super::ALIGN)),
            None => super::or_enomem(std::ptr::null_mut()),
        }
    }

    /// # Safety
    ///
    /// As `realloc`.
    #[no_mangle]
    unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
        super::check("__libc_realloc");
        // SAFETY: as the caller promises.
        unsafe { super::resize(p, size) }
    }

    #[no_mangle]
    extern "C" fn __libc_free(_p: *mut c_void) {
        super::check("__libc_free");
    }
}
