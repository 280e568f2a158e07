//! systemd's notification protocol as a receiver of the test's own sees it: `READY=1`
//! once from `ready()`, `STOPPING=1` at SIGTERM, the launcher's `MAINPID=` relay after a
//! detach, the helpers' messages (values checked, `MONOTONIC_USEC` right, also in a
//! time namespace far from zero), path and abstract addresses, unset and bad
//! `NOTIFY_SOCKET`.

mod support;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use support::TempDir;

/// A datagram socket bound where `NOTIFY_SOCKET` will point, with `SO_PASSCRED`.
struct Receiver {
    fd: OwnedFd,
    /// The `NOTIFY_SOCKET` value: a path, or `@name`.
    address: String,
}

impl Receiver {
    fn path(dir: &TempDir) -> Receiver {
        let path = dir.join("notify.sock");
        Receiver::bind(path.to_str().unwrap().as_bytes(), path.to_str().unwrap())
    }

    fn abstract_name(tag: &str) -> Receiver {
        let name = format!("pdm-notify-{tag}-{}", std::process::id());
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(name.as_bytes());
        Receiver::bind(&bytes, &format!("@{name}"))
    }

    fn bind(sun_path: &[u8], address: &str) -> Receiver {
        // SAFETY: plain socket(2); the result is checked and owned below.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: all-zero is a valid sockaddr_un.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, &src) in addr.sun_path.iter_mut().zip(sun_path) {
            *dst = src as libc::c_char;
        }
        let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + sun_path.len();
        // SAFETY: addr is a valid sockaddr_un of at least len bytes.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "bind {address}: {}", std::io::Error::last_os_error());
        let on: libc::c_int = 1;
        let timeout = libc::timeval {
            tv_sec: 30,
            tv_usec: 0,
        };
        // SAFETY: the option values are valid for their sizes.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            // A guard against hanging, not a timing assertion.
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        Receiver {
            fd,
            address: address.to_string(),
        }
    }

    /// The next datagram and its sender's pid (`SCM_CREDENTIALS`).
    fn recv(&self) -> (String, i32) {
        let mut buf = [0u8; 4096];
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg points at valid buffers of the given sizes.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, 0) };
        assert!(
            n >= 0,
            "no datagram at {}: {}",
            self.address,
            std::io::Error::last_os_error()
        );
        let mut pid = 0;
        // SAFETY: the CMSG macros walk the control buffer the kernel filled.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                    let cred: libc::ucred = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    pid = cred.pid;
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        (
            String::from_utf8_lossy(&buf[..n as usize]).into_owned(),
            pid,
        )
    }
}

fn ready_daemon(receiver: &Receiver, args: &[&str]) -> std::process::Command {
    let mut cmd = support::helper(&support::helper_bin("ready_daemon"));
    cmd.args(args).env("NOTIFY_SOCKET", &receiver.address);
    cmd
}

fn sigterm(pid: i32) {
    // SAFETY: kill with integer arguments; pid is a process of this test's scope.
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

/// Under `NOTIFY_SOCKET` the daemon stays in the foreground (it is the pid systemd
/// started) and tells it: `READY=1` once (ready_daemon calls `ready()` twice), then
/// `STOPPING=1` at SIGTERM, both from its own pid.
fn ready_then_stopping(receiver: Receiver) {
    let dir = TempDir::new("notify-fg");
    let pid_file = dir.join("p.pid");
    let mut daemon = support::spawn(&mut ready_daemon(
        &receiver,
        &[pid_file.to_str().unwrap(), "100"],
    ));
    let pid = daemon.pid();
    assert_eq!(receiver.recv(), ("READY=1\n".to_string(), pid));
    assert_eq!(support::read_pid(&pid_file), Some(pid), "not forked");
    sigterm(pid);
    // The next datagram is the stop: there was no second READY=1.
    assert_eq!(receiver.recv(), ("STOPPING=1\n".to_string(), pid));
    assert_eq!(daemon.wait().signal(), Some(libc::SIGTERM));
    assert!(!pid_file.exists());
}

use std::os::unix::process::ExitStatusExt;

#[test]
fn ready_and_stopping_reach_a_path_receiver() {
    let dir = TempDir::new("notify-path");
    ready_then_stopping(Receiver::path(&dir));
}

#[test]
fn ready_and_stopping_reach_an_abstract_receiver() {
    ready_then_stopping(Receiver::abstract_name("fg"));
}

#[test]
fn a_detached_daemon_is_announced_by_its_launcher_with_mainpid() {
    let receiver = Receiver::abstract_name("relay");
    let dir = TempDir::new("notify-relay");
    let pid_file = dir.join("p.pid");
    let mut cmd = ready_daemon(
        &receiver,
        &[
            "--always-detach",
            "--wait-ready",
            "20",
            pid_file.to_str().unwrap(),
            "100",
        ],
    );
    cmd.stdout(std::process::Stdio::piped());
    let launcher = support::spawn(&mut cmd);
    let launcher_pid = launcher.pid();
    let (text, sender) = receiver.recv();
    let out = launcher.wait_with_output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let daemon = support::read_pid(&pid_file).unwrap();
    assert!(
        stdout.contains(&format!("started pid {daemon}")),
        "{stdout}"
    );
    // One datagram, from the process systemd would have started, naming the daemon
    // first: NotifyAccess=main accepts it, and the daemon becomes the main pid.
    assert_eq!(text, format!("MAINPID={daemon}\nREADY=1\n"));
    assert_eq!(sender, launcher_pid);
    // Later messages come from the daemon itself.
    sigterm(daemon);
    assert_eq!(receiver.recv(), ("STOPPING=1\n".to_string(), daemon));
}

/// `pdm-notify CALLS` with `NOTIFY_SOCKET` (and `env`): its output lines.
fn calls(address: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> Vec<String> {
    let mut cmd = support::helper(&support::helper_bin("pdm-notify"));
    cmd.args(args).env_remove("NOTIFY_SOCKET");
    if let Some(a) = address {
        cmd.env("NOTIFY_SOCKET", a);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = support::run(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// CLOCK_MONOTONIC in µs, as the test sees it.
fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is valid writable memory.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

#[test]
fn the_helpers_send_what_they_say_and_refuse_injections() {
    let receiver = Receiver::abstract_name("helpers");
    let a = receiver.address.clone();
    let before = monotonic_us();
    let out = calls(
        Some(&a),
        &[],
        &[
            "status",
            "serving 3 clients",
            "status",
            "x\nREADY=1",
            "watchdog",
            "errno",
            "2",
            "extend",
            "2000",
            "reloading",
        ],
    );
    let after = monotonic_us();
    assert_eq!(out.len(), 6, "{out:?}");
    assert_eq!(out[0], "ok true");
    assert!(
        out[1].starts_with("err InvalidConfig notification value of STATUS holds a newline"),
        "a status smuggling READY=1 is refused: {out:?}"
    );
    assert!(out[2..].iter().all(|l| l == "ok true"), "{out:?}");
    let mut got: Vec<String> = (0..5).map(|_| receiver.recv().0).collect();
    assert_eq!(
        got.remove(0),
        "STATUS=serving 3 clients\n",
        "the refused one was never sent"
    );
    assert_eq!(got.remove(0), "WATCHDOG=1\n");
    assert_eq!(got.remove(0), "ERRNO=2\n");
    assert_eq!(got.remove(0), "EXTEND_TIMEOUT_USEC=2000\n");
    let reload = got.remove(0);
    let usec: u64 = reload
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|r| r.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("{reload:?}"))
        .parse()
        .unwrap();
    assert!(
        before <= usec && usec <= after,
        "{before} <= {usec} <= {after}"
    );
}

#[test]
fn unset_is_a_no_op_and_bad_addresses_are_typed_errors() {
    assert_eq!(
        calls(None, &[], &["status", "x", "stopping", "ready"]),
        ["ok false", "ok false", "ok true"]
    );
    for bad in [
        "relative/path",
        "vsock:2:1234",
        "@",
        &format!("/{}", "x".repeat(120)),
    ] {
        let out = calls(Some(bad), &[], &["status", "x"]);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].starts_with("err InvalidConfig NOTIFY_SOCKET"),
            "{bad}: {out:?}"
        );
    }
}

#[test]
fn the_watchdog_interval_is_for_the_pid_it_names() {
    assert_eq!(
        calls(None, &[("WATCHDOG_USEC", "200000")], &["interval"]),
        ["200000"]
    );
    assert_eq!(
        calls(
            None,
            &[("WATCHDOG_USEC", "200000"), ("WATCHDOG_PID", "1")],
            &["interval"]
        ),
        ["none"]
    );
    assert_eq!(
        calls(None, &[("WATCHDOG_USEC", "0")], &["interval"]),
        ["none"]
    );
    assert_eq!(calls(None, &[], &["interval"]), ["none"]);
}

#[test]
fn monotonic_usec_is_right_far_from_zero() {
    if !support::is_root() {
        eprintln!("skipped: a time namespace needs root");
        return;
    }
    let receiver = Receiver::abstract_name("timens");
    let mut cmd = support::host("unshare");
    cmd.args(["--time", "--monotonic", "100000"])
        .args(support::runner().iter().flat_map(|r| r.split_whitespace()))
        .arg(support::helper_bin("pdm-notify"))
        .arg("reloading")
        .env("NOTIFY_SOCKET", &receiver.address);
    let before = monotonic_us();
    let out = support::run(&mut cmd);
    let after = monotonic_us();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (text, _) = receiver.recv();
    let usec: u64 = text
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|r| r.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("{text:?}"))
        .parse()
        .unwrap();
    let shift = 100_000 * 1_000_000;
    assert!(
        before + shift <= usec && usec <= after + shift,
        "{} <= {usec} <= {}",
        before + shift,
        after + shift
    );
}
