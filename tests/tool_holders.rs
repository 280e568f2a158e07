//! The tool's `status` and `stop` go by the pid file's lock holders, not by the pid in
//! the file: a program that forks and exits leaves the lock to its child, which is
//! shown and stopped; a pid in the file that holds nothing, even a live stranger's, is
//! never signalled.

mod support;

use std::fs;
use std::path::Path;

use support::tool::expect;
use support::{alive, holds_lock, host, wait_until, TempDir};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn pid_in(path: &Path) -> i32 {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_program_that_forks_and_exits_leaves_its_child_shown_and_stopped() {
    let dir = TempDir::new("tool-forker");
    let pid_file = dir.join("p.pid");
    expect(
        0,
        [
            "start",
            "--pid-file",
            s(&pid_file),
            "--",
            "/bin/sh",
            "-c",
            "sleep 300 >/dev/null 2>&1 & exit 0",
        ],
    );
    let named = pid_in(&pid_file);
    wait_until("the shell exits", || !alive(named));
    let status = expect(0, ["status", "--pid-file", s(&pid_file)]);
    let child: i32 = status.stdout.trim().parse().expect("one holder's pid");
    assert_ne!(child, named);
    assert!(holds_lock(child, &pid_file), "{child} holds the lock");
    assert_eq!(
        status.stderr,
        format!(
            "pandaemonium: status: {} names pid {named}, which does not hold its lock\n",
            s(&pid_file)
        )
    );
    let stop = expect(0, ["stop", "--pid-file", s(&pid_file)]);
    assert!(
        stop.stderr.contains(&format!(
            "names pid {named}, which does not hold its lock: not signalled"
        )),
        "{}",
        stop.stderr
    );
    wait_until("the child stopped", || !alive(child));
    assert!(!pid_file.exists(), "the stale file is removed");
    expect(3, ["status", "--pid-file", s(&pid_file)]);
}

#[test]
fn a_stranger_named_by_the_file_is_never_signalled() {
    let dir = TempDir::new("tool-stranger");
    let pid_file = dir.join("p.pid");
    // The lock's holders: flock and its sleep. The file names a live stranger.
    let stranger = support::spawn(host("sleep").arg("300"));
    fs::write(&pid_file, format!("{}\n", stranger.pid())).unwrap();
    let flock = support::spawn(host("flock").arg(&pid_file).args(["sleep", "300"]));
    wait_until("flock holds the lock", || {
        holds_lock(flock.pid(), &pid_file)
    });
    let status = expect(0, ["status", "--pid-file", s(&pid_file)]);
    let shown: Vec<i32> = status
        .stdout
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(shown.contains(&flock.pid()), "{shown:?}");
    assert!(!shown.contains(&stranger.pid()), "{shown:?}");
    expect(0, ["stop", "--pid-file", s(&pid_file)]);
    wait_until("flock stopped", || !alive(flock.pid()));
    assert!(alive(stranger.pid()), "the stranger was signalled");
}

/// The pid the file names dies and an unrelated process gets the same number (made
/// to happen in a PID namespace of our own, through `ns_last_pid`), while the child
/// the program left holds the lock: `stop` signals that child, never the new owner of
/// the number.
#[test]
#[cfg_attr(
    qemu,
    ignore = "qemu-user forks its own helper threads' processes in the namespace, so the next pid is not ours to choose"
)]
fn a_reused_pid_in_the_file_is_never_signalled() {
    if !support::is_root() {
        eprintln!("skipped: a PID namespace and ns_last_pid need root");
        return;
    }
    let dir = TempDir::new("tool-reuse");
    let pid_file = dir.join("p.pid");
    let script = r#"
import os, subprocess, sys, time
runner, tool, pid_file = sys.argv[1].split(), sys.argv[2], sys.argv[3]

def reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass

def gone(pid):
    reap()
    return not os.path.exists(f"/proc/{pid}")

subprocess.run(runner + [tool, "start", "--pid-file", pid_file, "--",
                "/bin/sh", "-c", "sleep 300 >/dev/null 2>&1 & exit 0"], check=True)
named = int(open(pid_file).read().split()[0])
while not gone(named):
    time.sleep(0.005)
def sleepers():
    found = []
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and open(f"/proc/{p}/comm").read().strip() == "sleep":
                found.append(p)
        except OSError:
            pass
    return found

holder = sleepers()
while not holder:  # the shell's child may not have exec'd sleep yet
    time.sleep(0.005)
    holder = sleepers()
with open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(str(named - 1))
stranger = subprocess.Popen(["sleep", "300"])
print(f"named={named}\nstranger={stranger.pid}\nholder={','.join(holder)}", flush=True)
stop = subprocess.run(runner + [tool, "stop", "--pid-file", pid_file], capture_output=True, text=True)
print(f"stop={stop.returncode}", flush=True)
print("stop_stderr=" + stop.stderr.replace("\n", "|"), flush=True)
for p in holder:
    while not gone(int(p)):
        time.sleep(0.005)
print(f"stranger_alive={stranger.poll() is None}", flush=True)
stranger.kill()
stranger.wait()
"#;
    let out = support::run(
        host("unshare")
            .args(["--pid", "--fork", "--mount-proc", "python3", "-c", script])
            .arg(support::runner().unwrap_or_default())
            .arg(support::tool::TOOL)
            .arg(&pid_file),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in {text}"))
            .to_string()
    };
    assert_eq!(field("stranger"), field("named"), "the number was reused");
    assert_ne!(field("holder"), "", "{text}");
    assert_eq!(field("stop"), "0", "{text}");
    assert_eq!(field("stranger_alive"), "True", "{text}");
}
