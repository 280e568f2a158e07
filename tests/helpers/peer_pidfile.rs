//! Test helper for `tests/peer_freebsd_pidfile.rs`: FreeBSD's
//! `common_test_pidfile_child()` (lib/libutil/tests/pidfile_test.c), the part that forks.
//!
//! Usage: `pdm-peer-pidfile contested|inherited PATH`
//!
//! - `contested`: the child acquires and seals PATH; the parent's attempt must fail.
//! - `inherited`: the parent acquires PATH (no pid written), forks, closes its copy;
//!   the child seals the inherited lock; the parent's attempt must fail.
//!
//! Then the parent prints `key=value` lines (`child=`, `attempt=`, `holder=`) and
//! `ready=1`, and waits for one line on stdin (the test looks at the lock meanwhile; EOF
//! also goes on), sends the child SIGINT as FreeBSD does, reaps it and prints
//! `child_exit=N` (or `child_signal=N`).
//!
//! Exit codes, parent: 0 done, 2 bad usage, 10 the parent's own acquire failed
//! (`inherited`), 11 pipe, 12 fork, 13 reading the child's "ready" byte, 14 kill,
//! 15 waitpid. Child: 0 SIGINT received, 21 acquire (`contested`), 22 seal,
//! 23 sigprocmask, 24 sigaction, 25 writing "ready". Both die of SIGALRM (the
//! `alarm(60)` watchdog) if they hang.

use std::ffi::CString;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use pandaemonium::PidLockFile;

static SIGINT_SEEN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    SIGINT_SEEN.store(true, SeqCst);
}

fn usage() -> ! {
    eprintln!("usage: pdm-peer-pidfile contested|inherited PATH");
    std::process::exit(2)
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; nothing of ours needs running after it.
    unsafe { libc::_exit(code) }
}

/// The child: seal the pid file (acquiring it first unless inherited), tell the parent,
/// wait for SIGINT, exit 0. Only async-signal-safe calls: it is a fork of this program.
fn child(mut pf: PidLockFile, write_end: libc::c_int, inherited: bool) -> ! {
    // SAFETY: alarm takes an integer; a fork does not inherit the parent's alarm.
    unsafe { libc::alarm(60) };
    if !inherited && pf.acquire(None).is_err() {
        exit_now(21);
    }
    if pf.seal().is_err() {
        exit_now(22);
    }
    // Block SIGINT until sigsuspend, so one sent before we wait is not lost (FreeBSD uses
    // a kqueue EVFILT_SIGNAL for the same purpose).
    // SAFETY: a zeroed sigset_t is a valid argument for sigemptyset, which initialises it.
    let mut block: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `block` is a valid, initialised sigset_t owned by this frame.
    let blocked = unsafe {
        libc::sigemptyset(&mut block);
        libc::sigaddset(&mut block, libc::SIGINT);
        libc::sigprocmask(libc::SIG_BLOCK, &block, std::ptr::null_mut())
    };
    if blocked != 0 {
        exit_now(23);
    }
    // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic.
    let installed = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut())
    };
    if installed != 0 {
        exit_now(24);
    }
    // SAFETY: writing one byte from a static buffer to our pipe end.
    if unsafe { libc::write(write_end, b"*".as_ptr().cast(), 1) } != 1 {
        exit_now(25);
    }
    // SAFETY: zeroed then emptied: a valid empty mask for sigsuspend.
    let mut none: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `none` is a valid sigset_t owned by this frame.
    unsafe { libc::sigemptyset(&mut none) };
    while !SIGINT_SEEN.load(SeqCst) {
        // SAFETY: sigsuspend with a valid mask; returns after a handler ran.
        unsafe { libc::sigsuspend(&none) };
    }
    // Like FreeBSD's child: exit without touching the pid file (the lock goes with us).
    exit_now(0)
}

fn main() {
    // SAFETY: alarm takes an integer: a watchdog so a hung helper dies instead of hanging.
    unsafe { libc::alarm(60) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (inherited, path) = match args.as_slice() {
        [mode, path] if mode == "contested" => (false, path),
        [mode, path] if mode == "inherited" => (true, path),
        _ => usage(),
    };
    let path = CString::new(path.as_str()).unwrap_or_else(|_| usage());
    let mut out = std::io::stdout();

    let mut pf = PidLockFile::new(&path, Duration::ZERO).unwrap_or_else(|e| {
        eprintln!("PidLockFile::new: {e}");
        std::process::exit(10)
    });
    if inherited {
        if let Err(e) = pf.acquire(None) {
            eprintln!("parent acquire: {e}");
            std::process::exit(10);
        }
    }

    let mut fds = [-1; 2];
    // SAFETY: pipe writes two descriptors into `fds`.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        std::process::exit(11);
    }
    let _ = out.flush();
    // SAFETY: this program is single-threaded; the child only calls async-signal-safe
    // functions (PidLockFile's acquire and seal are) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        std::process::exit(12);
    }
    if pid == 0 {
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        child(pf, fds[1], inherited);
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    // FreeBSD: `if (pf) pidfile_close(pf);` — the parent closes its copy of the
    // inherited lock (dropping closes the descriptor, the file stays).
    drop(pf);
    let _ = writeln!(out, "child={pid}");
    let _ = out.flush();

    let mut ch = 0u8;
    // SAFETY: reading one byte into `ch`.
    let n = unsafe { libc::read(fds[0], (&mut ch as *mut u8).cast(), 1) };
    if n != 1 {
        // SAFETY: kill with integer arguments, our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        std::process::exit(13);
    }

    // "We shouldn't be able to lock the same pidfile as our child"
    let mut again = PidLockFile::new(&path, Duration::ZERO).unwrap_or_else(|_| usage());
    match again.acquire(None) {
        Ok(()) => {
            let _ = writeln!(out, "attempt=ok");
            let _ = again.release();
        }
        Err(e) => {
            let _ = writeln!(out, "attempt={:?}", e.kind());
            let _ = writeln!(out, "holder={}", e.holder().map_or(0, i64::from));
            let _ = writeln!(out, "message={e}");
        }
    }
    let _ = writeln!(out, "ready=1");
    let _ = out.flush();

    // The test inspects the lock now; one line (or EOF) lets us go on.
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);

    // "check our child's fate"
    // SAFETY: kill with integer arguments, our own child.
    if unsafe { libc::kill(pid, libc::SIGINT) } != 0 {
        std::process::exit(14);
    }
    let mut status = 0;
    // SAFETY: waitpid writes only into `status`.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        std::process::exit(15);
    }
    if libc::WIFEXITED(status) {
        let _ = writeln!(out, "child_exit={}", libc::WEXITSTATUS(status));
    } else {
        let _ = writeln!(out, "child_signal={}", libc::WTERMSIG(status));
    }
    let _ = out.flush();
}
