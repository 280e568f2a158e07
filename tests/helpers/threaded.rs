//! Test helper: a multi-threaded caller (threads loop malloc/free and hold a mutex).
//!
//! `pdm-threaded refuse`: start() must be refused with `Threaded`, and nothing forks
//! (prints `kind=...`, `holder=...`, `children=none|some`).
//! `pdm-threaded never-ids`: without a fork (`Detach::Never`), stage 3 to uid and gid
//! 65534 must be refused with `Threaded` (prints `kind`, `holder`, `message`, and
//! `uid=` / `gid=`: this process's real, effective, saved and fs ids afterwards).
//! `pdm-threaded never-ids-optin REPORT`: the same with `allow_threads`: stage 3 runs,
//! and the daemon's `run()` (this process, this thread) writes to REPORT
//! `uid=` / `gid=` of this thread and `other_uid=` of one hammering thread.
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

/// Starts `daemon` and prints `kind=started`, or the error's `kind=`, `holder=` and
/// `message=`.
fn print_outcome<R: pandaemonium::Run>(daemon: &mut Daemon<'_, R>) {
    match daemon.start() {
        Ok(_) => println!("kind=started"),
        Err(e) => {
            println!("kind={:?}", e.kind());
            println!("holder={}", e.holder().unwrap_or(0));
            println!("message={e}");
        }
    }
}

/// The thread ids of this process (`/proc/self/task`).
fn thread_ids() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The four ids of the `key` line (`Uid:`, `Gid:`) of a status file, space-separated.
fn ids_of(path: &str, key: &str) -> String {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|ids| ids.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
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
            print_outcome(&mut daemon);
            let mut status = 0;
            // SAFETY: waitpid writes only into status.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            println!("children={}", if r == -1 { "none" } else { "some" });
        }
        Some("never-ids") => {
            let mut daemon = Daemon::new(target(|_: ()| 0, ()));
            daemon.detach(pandaemonium::Detach::Never);
            daemon.process_ids(65534, 65534).unwrap();
            print_outcome(&mut daemon);
            for (key, name) in [("Uid:", "uid"), ("Gid:", "gid")] {
                println!("{name}={}", ids_of("/proc/self/status", key));
            }
        }
        Some("never-ids-optin") => {
            let report = std::fs::File::create(&args[1]).unwrap();
            let fd = std::os::fd::AsRawFd::as_raw_fd(&report);
            let tids = thread_ids();
            let run = move |fd: i32| {
                let mut out = String::new();
                for (key, name) in [("Uid:", "uid"), ("Gid:", "gid")] {
                    out += &format!("{name}={}\n", ids_of("/proc/thread-self/status", key));
                }
                let me = std::fs::read_link("/proc/thread-self")
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
                if let Some(tid) = tids.iter().find(|t| Some(t.as_str()) != me.as_deref()) {
                    let path = format!("/proc/self/task/{tid}/status");
                    out += &format!("other_uid={}\n", ids_of(&path, "Uid:"));
                }
                out += "done=1\n";
                // SAFETY: fd is the report file, kept open through stage 8.
                unsafe { libc::write(fd, out.as_ptr().cast(), out.len()) };
                0
            };
            let mut daemon = Daemon::new(target(run, fd));
            daemon.detach(pandaemonium::Detach::Never);
            daemon.process_ids(65534, 65534).unwrap();
            daemon.inherit_file(fd).unwrap();
            // SAFETY: no fork happens (Detach::Never): the other threads' locks are
            // theirs to release as usual.
            unsafe { daemon.allow_threads() };
            if let Err(e) = daemon.start() {
                println!("error={e}");
            }
            drop(report);
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
            eprintln!("usage: pdm-threaded refuse | never-ids | never-ids-optin REPORT | optin N");
            std::process::exit(2);
        }
    }
    STOP.store(true, SeqCst);
    for t in threads {
        let _ = t.join();
    }
}
