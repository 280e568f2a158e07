//! Test helper: one `pandaemonium::notify` call per argument, in order, with the
//! environment the test gave. Prints one line per call: `ok true` / `ok false` (sent /
//! not supervised), `err KIND DETAIL`, or for `interval` the watchdog interval in µs
//! (`none`).
//!
//! `pdm-notify ready | status TEXT | stopping | reloading | watchdog | errno N |
//! extend USEC | interval | sleep MS ...`

use std::time::Duration;

use pandaemonium::{notify, Errno, Error};

fn say(result: Result<bool, Error>) {
    match result {
        Ok(sent) => println!("ok {sent}"),
        Err(e) => println!("err {:?} {}", e.kind(), e.detail()),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    while let Some(call) = args.next() {
        let mut value = || args.next().expect("a value");
        match call.as_str() {
            "ready" => say(pandaemonium::ready().map(|()| true)),
            "status" => say(notify::status(value().as_bytes())),
            "stopping" => say(notify::stopping()),
            "reloading" => say(notify::reloading()),
            "watchdog" => say(notify::watchdog()),
            "errno" => say(notify::errno(Errno::from_raw(value().parse().unwrap()))),
            "extend" => say(notify::extend_timeout(Duration::from_micros(
                value().parse().unwrap(),
            ))),
            "interval" => match notify::watchdog_interval() {
                Some(d) => println!("{}", d.as_micros()),
                None => println!("none"),
            },
            "sleep" => std::thread::sleep(Duration::from_millis(value().parse().unwrap())),
            other => panic!("pdm-notify: unknown call {other}"),
        }
    }
}
