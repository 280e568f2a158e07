//! Stage 3's privileges, as root (CI is): capabilities kept across the switch to
//! nobody (and across an `exec`), the bounding set, `no_new_privs`, supplementary
//! groups in every mode, and chroot. What the daemon can do is asked of the kernel
//! (a bind to a port below 1024, an `open`), and what it holds is read from
//! `/proc/PID/status`, `/proc/PID/root` and `/proc/PID/cwd`.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use support::{low_port, probe, run_fields, status, wait_until, TempDir};

const NET_BIND_SERVICE: &str = "0000000000000400";
const NONE: &str = "0000000000000000";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The four capability sets and the ambient one, as `/proc/PID/status` shows them.
fn caps(st: &HashMap<String, String>) -> [&str; 4] {
    ["CapInh", "CapPrm", "CapEff", "CapAmb"].map(|k| st[k].as_str())
}

fn ids_are_nobody(st: &HashMap<String, String>) {
    for key in ["Uid", "Gid"] {
        assert_eq!(
            st[key].split_whitespace().collect::<Vec<_>>(),
            ["65534"; 4],
            "{key}: real, effective, saved, fs"
        );
    }
}

/// Runs a probe that must start (with the allocation trap armed: stage 3 allocates
/// nothing); its daemon's pid and the report it wrote.
fn started(args: &[&str], rep: &Path) -> (i32, HashMap<String, String>) {
    let mut cmd = probe();
    cmd.env("PDM_ALLOC_TRAP", "1");
    let r = run_fields(cmd.args(args).args(["--report", s(rep)]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    (r.pid(), support::report(rep))
}

/// Runs a probe whose start must fail; checks that a daemon that forked exited 1.
fn refused(args: &[&str]) -> support::Run {
    let r = run_fields(probe().args(args));
    assert_eq!(r.status, Some(3), "{}\n{}", r.stdout, r.stderr);
    if let Some(pid) = r
        .fields
        .get("daemon_pid")
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|&p| p > 0)
    {
        assert_eq!(support::wait_exit(pid), Some(1), "a failed daemon exits 1");
    }
    r
}

/// The system's python3, for a program the daemon `exec`s as nobody (not one found
/// first on PATH: a shim under /root, pyenv's, is not nobody's to run).
fn python3() -> String {
    ["/usr/bin/python3", "/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("python3 in /usr/bin, /bin or /usr/local/bin")
        .to_string()
}

/// Python that binds 127.0.0.1:PORT and writes `ok` or the errno to OUT, then sleeps.
fn bind_script(port: u16, out: &Path) -> String {
    format!(
        "import socket, time\n\
         s = socket.socket()\n\
         try:\n    s.bind(('127.0.0.1', {port})); r = 'ok'\n\
         except OSError as e:\n    r = str(e.errno)\n\
         open('{out}.tmp', 'w').write(r)\n\
         import os; os.rename('{out}.tmp', '{out}')\n\
         time.sleep(300)\n",
        out = out.display()
    )
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "binds as nobody through the emulator's capability handling"
)]
fn nobody_keeping_net_bind_service_binds_a_low_port() {
    require_root!();
    let dir = TempDir::new("caps");
    let port_held = low_port(81);
    let port = port_held.port;
    let (pid, rep) = started(
        &[
            "--user",
            "nobody",
            "--keep-cap",
            "NET_BIND_SERVICE",
            "--bind",
            &port.to_string(),
        ],
        &dir.join("rep"),
    );
    assert_eq!(
        rep["bind"], "ok",
        "the daemon, uid 65534, binds port {port}"
    );
    let st = status(pid);
    ids_are_nobody(&st);
    assert_eq!(st["Groups"], "65534");
    assert_eq!(
        caps(&st),
        [NET_BIND_SERVICE; 4],
        "exactly the one kept, in each set"
    );
    assert_eq!(rep["setuid0"], "-1", "no way back to root");
    assert_eq!(st["NoNewPrivs"], "0", "not asked for");
}

#[test]
#[cfg_attr(
    qemu,
    ignore = "binds as nobody through the emulator's capability handling"
)]
fn without_the_option_nobody_has_no_capability_and_cannot_bind() {
    require_root!();
    let dir = TempDir::new("nocaps");
    let port_held = low_port(121);
    let port = port_held.port;
    let (pid, rep) = started(
        &["--user", "nobody", "--bind", &port.to_string()],
        &dir.join("rep"),
    );
    assert_eq!(rep["bind"], libc::EACCES.to_string());
    let st = status(pid);
    ids_are_nobody(&st);
    assert_eq!(caps(&st), [NONE; 4]);
}

#[test]
#[cfg_attr(qemu, ignore = "execs a host program")]
fn the_kept_capability_survives_exec_with_no_new_privs() {
    require_root!();
    let dir = TempDir::new("capexec");
    let port_held = low_port(161);
    let port = port_held.port;
    let out = dir.join("bound");
    let script = bind_script(port, &out);
    let python = python3();
    for nnp in [false, true] {
        let mut args = vec!["--user", "nobody", "--keep-cap", "cap_net_bind_service"];
        if nnp {
            args.push("--no-new-privs");
        }
        let rep = dir.join(format!("rep-{nnp}"));
        args.extend(["--report", s(&rep), "--exec-in-run", &python, "-c", &script]);
        let r = run_fields(probe().args(&args));
        assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
        let pid = r.pid();
        wait_until("the program's bind", || out.exists());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "ok", "nnp {nnp}");
        let st = status(pid);
        assert!(st["Name"].starts_with("python"), "exec'd: {}", st["Name"]);
        ids_are_nobody(&st);
        // After exec, ambient becomes permitted and effective.
        assert_eq!(caps(&st), [NET_BIND_SERVICE; 4], "nnp {nnp}");
        assert_eq!(st["NoNewPrivs"], if nnp { "1" } else { "0" });
        // SAFETY: kill with integer arguments; pid is the daemon this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        support::wait_exit(pid);
        std::fs::remove_file(&out).unwrap();
    }
}

#[test]
fn the_bounding_set_is_limited_to_the_kept_capabilities_when_asked() {
    require_root!();
    let dir = TempDir::new("bounding");
    let mine = status(std::process::id() as i32)["CapBnd"].clone();
    let keep = ["--user", "nobody", "--keep-cap", "NET_BIND_SERVICE"];
    let (pid, _) = started(&keep, &dir.join("rep1"));
    assert_eq!(status(pid)["CapBnd"], mine, "left alone by default");
    let (pid, _) = started(
        &[&keep[..], &["--limit-bounding"]].concat(),
        &dir.join("rep2"),
    );
    let st = status(pid);
    assert_eq!(st["CapBnd"], NET_BIND_SERVICE);
    assert_eq!(caps(&st), [NET_BIND_SERVICE; 4]);
    // Without capabilities to keep: an empty bounding set, nothing else changed.
    let (pid, _) = started(&["--user", "nobody", "--limit-bounding"], &dir.join("rep3"));
    let st = status(pid);
    assert_eq!((st["CapBnd"].as_str(), caps(&st)), (NONE, [NONE; 4]));
}

#[test]
fn keeping_setuid_keeps_the_way_back_to_root_as_asked() {
    require_root!();
    let dir = TempDir::new("capsetuid");
    let (_, rep) = started(
        &["--user", "nobody", "--keep-cap", "SETUID"],
        &dir.join("rep"),
    );
    assert_eq!(rep["setuid0"], "0", "asked for, not a regained privilege");
}

#[test]
fn a_capability_outside_the_bounding_set_is_a_named_error_and_nothing_is_left() {
    require_root!();
    let dir = TempDir::new("capbnd");
    let pid_path = dir.join("d.pid");
    // Out of the probe's bounding set whatever this machine's is (this one has no
    // CAP_SYS_RESOURCE at all).
    let mut cmd = support::host("setpriv");
    cmd.args(["--bounding-set", "-sys_resource", "--"])
        .arg(support::helper_bin("pdm-probe"))
        .args(["--user", "nobody", "--keep-cap", "SYS_RESOURCE"])
        .args(["--pid-file", s(&pid_path)]);
    let r = run_fields(&mut cmd);
    assert_eq!(r.status, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.field("kind"), "CapabilityUnavailable");
    assert_eq!(r.field("stage"), "3");
    assert_eq!(
        r.field("message"),
        "stage 3 (process ids): keep cap_sys_resource (not in the bounding set): \
         Operation not permitted (os error 1)"
    );
    let pid: i32 = r.field("daemon_pid").parse().unwrap();
    assert!(pid > 0, "reported by the daemon");
    assert_eq!(support::wait_exit(pid), Some(1));
    assert!(!pid_path.exists(), "no pid file left");
}

#[test]
fn a_capability_outside_the_permitted_set_is_a_named_error() {
    require_root!();
    // In the bounding set, but not permitted: setpriv drops it from the launcher's
    // inheritable set only, so use the probe's own way, through a capset in the
    // launcher (--drop-permitted).
    let r = refused(&[
        "--drop-permitted",
        "NET_RAW",
        "--user",
        "nobody",
        "--keep-cap",
        "NET_RAW",
    ]);
    assert_eq!(r.field("kind"), "CapabilityUnavailable");
    assert_eq!(
        r.field("message"),
        "stage 3 (process ids): keep cap_net_raw (not in the permitted set): \
         Operation not permitted (os error 1)"
    );
}

#[test]
fn capabilities_without_a_user_switch_are_refused_before_fork() {
    for args in [
        &["--keep-cap", "NET_BIND_SERVICE"][..],
        &["--ids", "0:0", "--keep-cap", "NET_BIND_SERVICE"],
    ] {
        let r = refused(args);
        assert_eq!(r.field("kind"), "InvalidConfig", "{args:?}");
        assert_eq!(r.field("stage"), "3");
        assert!(r.field("message").contains("user switch"), "{}", r.stdout);
        assert_eq!(r.field("daemon_pid"), "0", "no fork: {args:?}");
    }
    // A stage-1 override that skips detach() (and its check before fork): stage 3
    // refuses all the same, in the process that became the daemon.
    let r = refused(&["--skip-detach", "--keep-cap", "NET_BIND_SERVICE"]);
    assert_eq!((r.field("kind"), r.field("stage")), ("InvalidConfig", "3"));
}

#[test]
fn roots_supplementary_groups_never_survive_a_switch_in_any_mode() {
    require_root!();
    let dir = TempDir::new("groups");
    let root = ["--setgroups", "0,4,27"];
    for (mode, want) in [
        (&["--user", "nobody"][..], "65534"),
        (&["--ids", "65534:65534"], "65534"),
        (&["--parts", "65534:65534"], "65534"),
        (&["--user", "nobody", "--groups", "none"], ""),
        (&["--user", "nobody", "--groups", "100,65534"], "100 65534"),
    ] {
        let rep = dir.join(format!("rep-{}", mode.join("-")));
        let (pid, _) = started(&[&root[..], mode].concat(), &rep);
        let st = status(pid);
        ids_are_nobody(&st);
        assert_eq!(st["Groups"], want, "{mode:?}");
    }
    // The launcher's own groups really were 0, 4 and 27 (the probe's own report).
    let rep = dir.join("rep-root");
    let (pid, _) = started(&root, &rep);
    assert_eq!(
        status(pid)["Groups"],
        "0 4 27",
        "no switch: left as they were"
    );
}

/// A jail for the daemon: `dev/null`, a world-writable `tmp`, a `work` directory.
fn jail(dir: &TempDir, with_null: bool) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let jail = dir.join("jail");
    for sub in ["dev", "tmp", "work"] {
        std::fs::create_dir_all(jail.join(sub)).unwrap();
    }
    // Modes set, not left to the umask.
    for (sub, mode) in [
        ("", 0o755),
        ("dev", 0o755),
        ("tmp", 0o1777),
        ("work", 0o1777),
    ] {
        std::fs::set_permissions(jail.join(sub), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    if with_null {
        let null = std::ffi::CString::new(s(&jail.join("dev/null"))).unwrap();
        // SAFETY: a valid path; makes the character device 1:3 (/dev/null).
        let r = unsafe { libc::mknod(null.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
        assert_eq!(r, 0, "mknod: {}", std::io::Error::last_os_error());
        std::fs::set_permissions(
            jail.join("dev/null"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
    }
    jail
}

#[test]
#[cfg_attr(qemu, ignore = "chroot under the emulator")]
fn chroot_jails_the_daemon_and_its_paths() {
    require_root!();
    assert!(
        Path::new("/etc/hostname").exists() || Path::new("/etc/passwd").exists(),
        "a host file to escape to"
    );
    let dir = TempDir::new("chroot");
    let jail = jail(&dir, true);
    let host_pid = dir.join("host.pid");
    // Run from a directory of its own: a relative stdout path must not land there.
    let cwd = dir.join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let mut cmd = probe();
    cmd.env("PDM_ALLOC_TRAP", "1");
    cmd.current_dir(&cwd).args([
        "--chroot",
        s(&jail),
        "--user",
        "nobody",
        "--workdir",
        "/work",
        "--acquire-first",
        s(&host_pid),
        "--stdout",
        "out.log",
        "--write-in-run",
        "in the jail\n",
        "--try-open",
        "../etc/passwd",
        "--report",
        "/tmp/rep",
    ]);
    let r = run_fields(&mut cmd);
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = r.pid();
    // The report, written by the daemon at /tmp/rep, is in the jail.
    let rep = support::report(&jail.join("tmp/rep"));
    assert_eq!(
        rep["open"],
        libc::ENOENT.to_string(),
        "../etc/passwd is the jail's"
    );
    assert_eq!(rep["cwd"], "/work");
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(root, jail.canonicalize().unwrap());
    assert_eq!(support::cwd(pid), jail.join("work").canonicalize().unwrap());
    ids_are_nobody(&status(pid));
    // A relative stdio path is the jail's working directory's, not the launcher's.
    wait_until("the daemon's stdout", || {
        std::fs::read_to_string(jail.join("work/out.log")).is_ok_and(|t| t == "in the jail\n")
    });
    assert!(!cwd.join("out.log").exists());
    // The pid file acquired before start() stays outside, holding the daemon's pid.
    assert_eq!(support::read_pid(&host_pid), Some(pid));
}

#[test]
#[cfg_attr(qemu, ignore = "chroot under the emulator")]
fn a_pid_file_given_by_path_is_the_jails() {
    require_root!();
    let dir = TempDir::new("chrootpid");
    let jail = jail(&dir, true);
    // A name of this run's own: nothing else has it on the host's /.
    let name = format!("pdm-jailed-{}.pid", std::process::id());
    let inside = format!("/{name}");
    let r = run_fields(probe().args(["--chroot", s(&jail), "--pid-file", &inside]));
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pid = r.pid();
    assert_eq!(support::read_pid(&jail.join(&name)), Some(pid));
    let host = Path::new(&inside);
    let leaked = host.exists();
    let _ = std::fs::remove_file(host);
    assert!(!leaked, "{inside} was written outside the jail");
}

#[test]
#[cfg_attr(qemu, ignore = "chroot under the emulator")]
fn a_jail_without_dev_null_fails_stage_9_and_leaves_nothing() {
    require_root!();
    let dir = TempDir::new("chrootnull");
    let jail = jail(&dir, false);
    let r = refused(&["--chroot", s(&jail), "--pid-file", "/d.pid"]);
    assert_eq!(r.field("stage"), "9");
    assert_eq!(r.field("errno"), libc::ENOENT.to_string());
    assert!(r.field("message").contains("/dev/null"), "{}", r.stdout);
    assert!(
        !jail.join("d.pid").exists(),
        "the daemon's pid file is gone"
    );
}

#[test]
fn a_bad_chroot_directory_is_refused_before_fork() {
    let r = refused(&["--chroot", "/nonexistent-pdm-jail"]);
    assert_eq!(
        r.field("message"),
        "stage 3 (process ids): chroot_directory /nonexistent-pdm-jail: \
         No such file or directory (os error 2)"
    );
    assert!(!r.stdout.contains("launcher="), "refused while configuring");
    let r = refused(&["--chroot", "relative/jail"]);
    assert_eq!(r.field("kind"), "InvalidConfig");
    let r = refused(&["--chroot", "/etc/passwd"]);
    assert_eq!(r.field("errno"), libc::ENOTDIR.to_string());
}
