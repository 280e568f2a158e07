//! A daemon that needs no root: its pid file and log go under `$XDG_RUNTIME_DIR` (or
//! `/tmp`), it logs a line every second, and on SIGTERM it logs that it is stopping,
//! removes its pid file and exits 0.
//!
//! ```sh
//! cargo run --example daemon        # prints the pid, the pid file and the log
//! kill "$(cat "${XDG_RUNTIME_DIR:-/tmp}/pandaemonium-example.pid")"
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pandaemonium::{Action, Builder};

static STOP: AtomicBool = AtomicBool::new(false);

/// SIGTERM handler: only sets a flag (async-signal-safe); the loop does the rest.
extern "C" fn on_term(_: i32) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let pid_file = dir.join("pandaemonium-example.pid");
    let log = dir.join("pandaemonium-example.log");

    let started = Builder::new()
        .pid_file(&pid_file)
        .stdout(&log)
        .stderr(&log)
        .signal("TERM", Action::Handler(on_term))
        .start(|| {
            // The daemon: stdout is the log now.
            println!("example: running as pid {}", std::process::id());
            let mut n = 0u64;
            while !STOP.load(Ordering::SeqCst) {
                n += 1;
                println!("example: tick {n}");
                let _ = std::io::stdout().flush();
                std::thread::sleep(Duration::from_secs(1));
            }
            println!("example: SIGTERM received, stopping");
            0 // the pid file is removed when this returns
        });
    match started {
        Ok(daemon) => {
            println!("started pid {}", daemon.pid);
            println!("pid file {}", pid_file.display());
            println!("log      {}", log.display());
            println!("stop it: kill $(cat {})", pid_file.display());
        }
        Err(e) => {
            eprintln!("example: {e}");
            std::process::exit(1);
        }
    }
}
