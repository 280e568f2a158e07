//! Test helper for the std layer (`Builder`, `PidFileGuard`, `io::Error`).
//!
//! Modes print `key=value` lines; with `PDM_ALLOC_TRAP=1` the C allocator aborts the
//! daemon on any allocation or deallocation between fork and the closure.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use pandaemonium::{Action, Builder, PidLockFile, Signal};

#[path = "alloc_trap.rs"]
mod alloc_trap;
#[path = "qemu.rs"]
mod qemu;

static STOP: AtomicBool = AtomicBool::new(false);
extern "C" fn on_term(_: i32) {
    STOP.store(true, SeqCst);
}

/// Writes `text` to `path` through a temporary file and a rename, so a reader that
/// waits for `path` to exist reads it whole.
fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn main() {
    alloc_trap::arm();
    // SAFETY: alarm takes an int; a watchdog so a hung helper fails instead of hanging.
    unsafe { libc::alarm(60) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |n: usize| args.get(n).cloned().unwrap_or_default();
    match arg(0).as_str() {
        "closure" => {
            // Captured data, built before fork, reaches the daemon.
            let dir = std::path::PathBuf::from(arg(1));
            let words: Vec<String> = vec!["alpha".into(), "beta".into(), "gamma".into()];
            let out = dir.join("closure.txt");
            let mut builder = qemu::builder(Builder::new())
                .pid_file(dir.join("closure.pid"))
                .stdout(dir.join("log.txt"))
                .umask(0o022)
                .signal("TERM", Action::Handler(on_term))
                .signal(Signal::HUP, Action::Ignore);
            if arg(2) == "as-user" {
                builder = builder.user(arg(3).as_str());
            }
            if arg(4) == "keep-cap" {
                builder = builder.keep_capability(&arg(5)).no_new_privileges(true);
            }
            let result = builder.start(move || {
                alloc_trap::in_run();
                // SAFETY: getuid cannot fail.
                let uid = unsafe { libc::getuid() };
                write_atomically(&out, &format!("{}\nuid={uid}\n", words.join(",")));
                println!("logged from the daemon");
                while !STOP.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                0
            });
            match result {
                Ok(l) => println!("result=ok\npid={}\noutput={:?}", l.pid, l.output),
                Err(e) => {
                    println!("result=err\nmessage={}", e.error());
                    std::process::exit(3);
                }
            }
        }
        "activate" => {
            // Builder::activate returns inside the daemon: from there on (the daemon's
            // `run`), allocation is allowed; the library itself must not allocate or
            // free anything on the way. The trap's message, if any, lands in err.log.
            let dir = std::path::PathBuf::from(arg(1));
            let activated = qemu::builder(Builder::new())
                .pid_file(dir.join("activate.pid"))
                .stderr(dir.join("err.log"))
                .activate();
            match activated {
                Ok(a) => {
                    alloc_trap::in_run();
                    write_atomically(&dir.join("activated.txt"), &format!("{}\n", a.pid));
                    pandaemonium::exit(0)
                }
                Err(e) => {
                    println!("result=err\nmessage={}", e.error());
                    std::process::exit(3);
                }
            }
        }
        "print" => {
            // std's stdout is buffered: what the closure printed without a newline must
            // reach the file when it returns.
            let dir = std::path::PathBuf::from(arg(1));
            let result = qemu::builder(Builder::new())
                .stdout(dir.join("print.log"))
                .start(|| {
                    print!("printed without a newline");
                    0
                });
            match result {
                Ok(l) => println!("result=ok\npid={}", l.pid),
                Err(e) => {
                    println!("result=err\nmessage={}", e.error());
                    std::process::exit(3);
                }
            }
        }
        "unknown-user" | "unknown-cap" => {
            let builder = qemu::builder(Builder::new());
            let builder = match arg(0).as_str() {
                "unknown-user" => builder.user("no-such-user-pdm"),
                _ => builder.user("nobody").keep_capability("NET_BIND"),
            };
            let r = builder.start(|| 0);
            let e = r.expect_err("must fail");
            println!("message={}", e.error());
            println!("kind={:?}", e.error().kind());
            let mut status = 0;
            // SAFETY: waitpid writes only into status.
            let w = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            println!("children={}", if w == -1 { "none" } else { "some" });
        }
        "io" => {
            let e = qemu::builder(Builder::new())
                .working_directory("/nonexistent-pdm")
                .start(|| 0)
                .expect_err("must fail");
            let io: std::io::Error = e.into();
            println!("kind={:?}", io.kind());
            println!("message={io}");
            let inner = io
                .get_ref()
                .and_then(|e| e.downcast_ref::<pandaemonium::Error>())
                .unwrap();
            println!("errno={}", inner.raw_os_error().unwrap_or(0));
        }
        "guard" => {
            let path = arg(1);
            {
                let mut guard = PidLockFile::at(&path, Duration::ZERO).unwrap().into_guard();
                guard.acquire(None).unwrap();
                guard.seal().unwrap();
                println!(
                    "active={}",
                    PidLockFile::at(&path, Duration::ZERO)
                        .unwrap()
                        .is_active()
                        .unwrap()
                );
                println!("contents={:?}", std::fs::read_to_string(&path).unwrap());
            }
            println!("exists_after_drop={}", std::path::Path::new(&path).exists());
        }
        _ => {
            eprintln!("usage: pdm-std closure DIR [as-user NAME] | activate DIR | print DIR | unknown-user | io | guard PATH");
            std::process::exit(2);
        }
    }
}
