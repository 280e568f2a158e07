//! Test helper: a multi-threaded caller (threads loop malloc/free and hold a mutex).
//!
//! `pdm-threaded refuse`: start() must be refused with `Threaded`, and nothing forks
//! (prints `kind=...`, `holder=...`, `children=none|some`).
//! `pdm-threaded never-ids`: without a fork (`Detach::Never`), stage 3 to uid and gid
//! 65534 must be refused with `Threaded` (prints `kind`, `holder`, `message`, and
//! `uid=` / `gid=`: this process's real, effective, saved and fs ids afterwards).
//! `pdm-threaded optin N`: with `allow_threads`, daemonize N times; each daemon's run()
//! returns at once; prints `ok=N`. A hang trips the alarm (exit 9).

use std::ops::Not;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use pandaemonium::{target, Daemon};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn watchdog(_: i32) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(9) };
}

fn hammer() -> Vec<std::thread::JoinHandle<()>> {
    let lock = Arc::new(Mutex::new(Vec::<u8>::new()));
    (0..3)
        .map(|n| {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || {
                while !STOP.load(SeqCst) {
                    let v: Vec<u8> = vec![n as u8; 64 + n * 512];
                    let mut guard = lock.lock().unwrap();
                    guard.extend_from_slice(&v[..8]);
                    guard.truncate(1024);
                    drop(guard);
                    std::hint::black_box(v);
                }
            })
        })
        .collect()
}

/// Whether `pid` has exited (gone, or a zombie nobody reaped yet).
fn gone_or_zombie(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rfind(')').is_some_and(|i| s[i + 2..].starts_with('Z')),
        Err(_) => true,
    }
}

fn main() {
    // SAFETY: installing a plain handler for SIGALRM, then arming the alarm.
    unsafe {
        libc::signal(libc::SIGALRM, watchdog as extern "C" fn(i32) as usize);
        libc::alarm(120);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads = hammer();
    match args.first().map(String::as_str) {
        Some("refuse") => {
            let mut daemon = Daemon::new(target(|_: ()| 0, ()));
            match daemon.start() {
                Ok(_) => println!("kind=started"),
                Err(e) => {
                    println!("kind={:?}", e.kind());
                    println!("holder={}", e.holder().unwrap_or(0));
                    println!("message={e}");
                }
            }
            let mut status = 0;
            // SAFETY: waitpid writes only into status.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            println!("children={}", if r == -1 { "none" } else { "some" });
        }
        Some("never-ids") => {
            let mut daemon = Daemon::new(target(|_: ()| 0, ()));
            daemon.detach(pandaemonium::Detach::Never);
            daemon.process_ids(65534, 65534).unwrap();
            match daemon.start() {
                Ok(_) => println!("kind=started"),
                Err(e) => {
                    println!("kind={:?}", e.kind());
                    println!("holder={}", e.holder().unwrap_or(0));
                    println!("message={e}");
                }
            }
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            for line in status.lines() {
                for (key, name) in [("Uid:", "uid"), ("Gid:", "gid")] {
                    if let Some(ids) = line.strip_prefix(key) {
                        let ids: Vec<&str> = ids.split_whitespace().collect();
                        println!("{name}={}", ids.join(" "));
                    }
                }
            }
        }
        Some("optin") => {
            let n: usize = args[1].parse().unwrap();
            // SAFETY: prctl with integer arguments; daemons are reparented to us.
            // qemu-user refuses it (EINVAL): then wait for each daemon to vanish instead.
            let reaper = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0;
            let mut ok = 0;
            for _ in 0..n {
                let mut daemon = Daemon::new(target(|_: ()| 0, ()));
                // SAFETY: the daemon's run() only returns 0: no allocation, no lock; the
                // stages are async-signal-safe.
                unsafe { daemon.allow_threads() };
                match daemon.start() {
                    Ok(started) => {
                        let pid = started.pid as i32;
                        if !reaper {
                            // Not ours to reap: the daemon has finished once it is gone
                            // or a zombie.
                            while gone_or_zombie(pid).not() {
                                std::thread::sleep(std::time::Duration::from_millis(1));
                            }
                            ok += 1;
                            continue;
                        }
                        let mut status = 0;
                        // SAFETY: waitpid writes only into status.
                        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
                        if r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                            ok += 1;
                        } else {
                            println!("bad_exit={status}");
                        }
                    }
                    Err(e) => println!("error={e}"),
                }
            }
            println!("ok={ok}");
        }
        _ => {
            eprintln!("usage: pdm-threaded refuse | never-ids | optin N");
            std::process::exit(2);
        }
    }
    STOP.store(true, SeqCst);
    for t in threads {
        let _ = t.join();
    }
}
