//! A daemon that needs no root: it writes its pid file and log under
//! `$XDG_RUNTIME_DIR` (or `/tmp`), logs a line every second, and on SIGTERM logs
//! that it is stopping, removes its pid file and exits 0.
//!
//! ```sh
//! cargo run --example daemon        # prints the pid, pid file and log paths
//! kill "$(cat /tmp/pandaemonium-example.pid)"
//! ```

use std::ffi::CString;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use pandaemonium::{target, Action, Daemon, Signal, Stdio};

static STOP: AtomicBool = AtomicBool::new(false);

/// SIGTERM handler: only sets a flag (async-signal-safe); `run` does the rest.
extern "C" fn on_term(_: i32) {
    STOP.store(true, Ordering::SeqCst);
}

/// The daemon's work: a line a second until SIGTERM.
fn run(name: &str) -> i32 {
    let mut n = 0u64;
    println!("{name}: running as pid {}", std::process::id());
    while !STOP.load(Ordering::SeqCst) {
        n += 1;
        println!("{name}: tick {n}");
        let _ = std::io::stdout().flush();
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    println!("{name}: SIGTERM received, stopping");
    0 // the pid file is removed when run() returns
}

fn main() {
    let dir = std::env::var("XDG_RUNTIME_DIR")
        .ok()
        .filter(|d| std::path::Path::new(d).is_dir())
        .unwrap_or_else(|| "/tmp".to_string());
    let pid_path = CString::new(format!("{dir}/pandaemonium-example.pid")).unwrap();
    let log_path = CString::new(format!("{dir}/pandaemonium-example.log")).unwrap();

    let mut daemon = Daemon::new(target(run, "example"));
    let configured = daemon
        .pid_file(&pid_path)
        .and_then(|d| d.stdout(Stdio::Path(&log_path)))
        .and_then(|d| d.stderr(Stdio::Path(&log_path)))
        .and_then(|d| d.signal(Signal::TERM, Action::Handler(on_term)));
    if let Err(e) = configured {
        eprintln!("daemon: {e}");
        std::process::exit(2);
    }
    match daemon.start() {
        Ok(started) => {
            println!("started pid {}", started.pid);
            println!("pid file {}", pid_path.to_str().unwrap());
            println!("log      {}", log_path.to_str().unwrap());
            println!("stop it: kill $(cat {})", pid_path.to_str().unwrap());
        }
        Err(e) => {
            eprintln!("daemon: {e}");
            std::process::exit(1);
        }
    }
}
