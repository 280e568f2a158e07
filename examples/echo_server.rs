//! A TCP echo server daemon, the way a real one is written with pandaemonium:
//!
//! - it binds **before** fork (a port in use is an error here, in the terminal; a
//!   daemon that drops to `nobody` could still bind a port below 1024), and hands the
//!   listener to the daemon with `start_with`, which keeps it through stage 8;
//! - its loop polls the listener and the signal pipe (`Action::Pipe`): `SIGHUP`
//!   reopens its log in place (after `mv echo.log echo.log.1`, as logrotate does),
//!   `SIGTERM` ends it cleanly (`serve` returns: the pid file goes, exit status 0).
//!
//! ```sh
//! cargo run --example echo_server -- 127.0.0.1:7007 /tmp/echo.pid /tmp/echo.log
//! echo hello | nc -q1 127.0.0.1 7007       # hello
//! mv /tmp/echo.log /tmp/echo.log.1 && kill -HUP "$(cat /tmp/echo.pid)"
//! kill "$(cat /tmp/echo.pid)"
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::Duration;

use pandaemonium::{reopen_stdio, Action, Builder, Signal, SignalPipe};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7007".into());
    let pid_file = args.next().unwrap_or_else(|| "/tmp/echo_server.pid".into());
    let log = args.next().unwrap_or_else(|| "/tmp/echo_server.log".into());
    let listener = match TcpListener::bind(&addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("echo_server: {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Builder::new()
        .pid_file(&pid_file)
        .stdout(&log)
        .stderr(&log)
        .reopenable_stdio(true)
        .signal(Signal::HUP, Action::Pipe)
        .signal(Signal::TERM, Action::Pipe)
        .start_with(listener, serve);
    match started {
        Ok(daemon) => {
            println!("echo_server: pid {}, on {addr}, log {log}", daemon.pid);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The daemon: serves until `SIGTERM`.
fn serve(listener: TcpListener) -> i32 {
    let Some(signals) = SignalPipe::get() else {
        eprintln!("no signal pipe");
        return 1;
    };
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("listener: {e}");
        return 1;
    }
    println!("serving");
    loop {
        let woken = match signals.wait(&[listener.as_raw_fd()], -1) {
            Ok(woken) => woken,
            Err(e) => {
                eprintln!("poll: {e}");
                return 1;
            }
        };
        for sig in signals.pending() {
            match sig {
                Signal::HUP => match reopen_stdio() {
                    Ok(()) => println!("reopened the log"),
                    Err(e) => eprintln!("{e}"),
                },
                Signal::TERM => {
                    println!("stopping");
                    return 0;
                }
                _ => {}
            }
        }
        if woken.ready & 1 != 0 {
            while let Ok((client, peer)) = listener.accept() {
                echo(client, peer);
            }
        }
    }
}

/// Echoes one line back to one client (a client that says nothing for 5 s is dropped).
fn echo(client: TcpStream, peer: SocketAddr) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    let mut reader = BufReader::new(&client);
    match reader.read_line(&mut line) {
        Ok(n) if n > 0 => match (&client).write_all(line.as_bytes()) {
            Ok(()) => println!("echoed {n} bytes to {peer}"),
            Err(e) => eprintln!("{peer}: {e}"),
        },
        Ok(_) => {}
        Err(e) => eprintln!("{peer}: {e}"),
    }
}
