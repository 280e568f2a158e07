//! Test helper: a socket-activated daemon. `pdm-activated REPORT [--auto]`
//!
//! Reads `LISTEN_*` before anything forks, keeps the descriptors through stage 8
//! (`Config::listen_fds`), always detaches (with `--auto`: `Detach::Auto`, which does
//! not fork under socket activation), and in `run()` writes REPORT (`pid=`,
//! `names=` and `fds=` of the activation, `open=` its own descriptors above 2, `env=`
//! the `LISTEN_` variables it still has), then accepts one connection on each socket
//! and answers it with the socket's name and a newline, then waits for SIGTERM.
//! The launcher prints `started pid N` (exit 0), or the error (exit 3).

use std::io::Write;
use std::os::fd::FromRawFd;

use pandaemonium::listen::ListenFds;

#[path = "qemu.rs"]
mod qemu;
use pandaemonium::{os, target, Daemon, Detach};

fn serve((fds, report): (Option<ListenFds>, String)) -> i32 {
    let activated: Vec<(i32, String)> = fds
        .iter()
        .flat_map(ListenFds::iter)
        .map(|(fd, name)| (fd, name.to_string()))
        .collect();
    let open: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.parse::<i32>().is_ok_and(|fd| fd > 2))
                .collect()
        })
        .unwrap_or_default();
    let env: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("LISTEN_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let names: Vec<&str> = activated.iter().map(|(_, n)| n.as_str()).collect();
    let numbers: Vec<String> = activated.iter().map(|(fd, _)| fd.to_string()).collect();
    let text = format!(
        "pid={}\nnames={}\nfds={}\nopen={}\nenv={}\n",
        std::process::id(),
        names.join(","),
        numbers.join(","),
        open.join(","),
        env.join(",")
    );
    let tmp = format!("{report}.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &report).unwrap();
    for (fd, name) in &activated {
        // SAFETY: fd is one of the listening sockets the supervisor passed, kept through
        // stage 8 and owned by nothing else in this process.
        let listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(*fd) };
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = writeln!(conn, "{name}");
        }
        std::mem::forget(listener);
    }
    loop {
        // SAFETY: pause takes no arguments.
        unsafe { libc::pause() };
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let report = args.next().expect("usage: pdm-activated REPORT [--auto]");
    let auto = args.next().as_deref() == Some("--auto");
    let fds = match ListenFds::from_env(os::getpid() as u32) {
        Ok(fds) => fds,
        Err(e) => {
            println!("error: {e}");
            std::process::exit(3);
        }
    };
    let mut daemon = Daemon::new(target(serve, (fds.clone(), report)));
    daemon.detach(if auto { Detach::Auto } else { Detach::Always });
    qemu::allow_threads(&mut daemon);
    if let Some(fds) = &fds {
        if let Err(e) = daemon.listen_fds(fds) {
            println!("error: {e}");
            std::process::exit(3);
        }
    }
    match daemon.start() {
        Ok(started) => println!("started pid {}", started.pid),
        Err(e) => {
            println!("error: {e}");
            std::process::exit(3);
        }
    }
}
