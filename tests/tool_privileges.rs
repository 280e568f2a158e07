//! `pandaemonium start --keep-cap`, `--no-new-privs`, `--groups` and `--chroot` (issue
//! 12), run as a shell script would, as root (as CI is): what the kernel says of
//! PROGRAM (`/proc/PID/status`, `root`, `cwd`), what PROGRAM can do (bind a port below
//! 1024 as `nobody`, write in its jail), and the usage errors before any fork.
//!
//! Every process a test starts runs in its scope (`tests/support`), which kills and
//! reaps them all on the way out; no test asserts on time (waits are bounded polls).
//! Under qemu-user (`ci/cross.sh`) they all run too: the tool is emulated, but PROGRAM
//! (`/usr/bin/python3`, `/bin/sleep`, the jail's static busybox) and `setpriv` are host
//! programs the kernel runs natively, and stage 3's `chroot`, `capset` and `prctl`
//! calls pass through the emulator (seen on all seven qemu targets of `ci/targets`).
#![cfg(feature = "tool-privileges")]

mod support;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use support::tool::{expect, pids, run, start, Out, TOOL};
use support::{alive, low_port, wait_until, TempDir};

/// The python PROGRAM binds with: the system's, which `nobody` may run (a pyenv shim
/// in root's PATH is not).
const PYTHON: &str = "/usr/bin/python3";

/// A static busybox (Debian's busybox-static), the only program of the test jails.
const BUSYBOX: &str = "/bin/busybox";

/// `nobody` and `nogroup`.
const NOBODY: &str = "65534";

/// `CAP_NET_BIND_SERVICE` alone, as `/proc/PID/status` prints a set.
const NET_BIND: &str = "0000000000000400";
const NO_CAPS: &str = "0000000000000000";

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `stop`s the daemon of `pid_file`, and waits until `pid` is gone.
fn stop(pid_file: &Path, pid: i32) {
    expect(0, ["stop", "--pid-file", s(pid_file)]);
    wait_until("PROGRAM stopped", || !alive(pid));
    assert!(!pid_file.exists(), "stop removes {}", s(pid_file));
}

/// A field of `/proc/PID/status` split into its words (`Uid`: four of them).
fn words(pid: i32, field: &str) -> Vec<String> {
    support::status(pid)[field]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `Uid` and `Gid`: `nobody`'s, all four of each.
fn assert_nobody(pid: i32, what: &str) {
    assert_eq!(words(pid, "Uid"), [NOBODY; 4], "{what}: Uid");
    assert_eq!(words(pid, "Gid"), [NOBODY; 4], "{what}: Gid");
}

/// `CapInh`, `CapPrm`, `CapEff`, `CapAmb` of `pid`.
fn caps(pid: i32) -> [String; 4] {
    let st = support::status(pid);
    ["CapInh", "CapPrm", "CapEff", "CapAmb"].map(|f| st[f].clone())
}

fn require_python() {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: these tests need the system's python3 (Debian: apt-get install \
         python3), which nobody may run"
    );
}

/// PROGRAM: python binding `127.0.0.1:port`, then writing `bound` (or the errno's
/// name: `EACCES`) into `result` (through a rename: never seen half written), then
/// sleeping.
fn binder(port: u16, result: &Path) -> Vec<String> {
    let script = format!(
        "import errno, os, socket, time\n\
         s = socket.socket()\n\
         try:\n    s.bind(('127.0.0.1', {port}))\n    r = 'bound'\n\
         except OSError as e:\n    r = errno.errorcode.get(e.errno, str(e.errno))\n\
         open('{r}.tmp', 'w').write(r)\n\
         os.rename('{r}.tmp', '{r}')\n\
         time.sleep(600)\n",
        r = s(result)
    );
    vec![PYTHON.to_string(), "-c".to_string(), script]
}

/// What PROGRAM wrote into `path`, once it has.
fn written(path: &Path) -> String {
    wait_until(&format!("PROGRAM writes {}", s(path)), || path.exists());
    fs::read_to_string(path).unwrap()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The tool run as `setpriv SETPRIV -- TOOL ARGS` (util-linux), in the test's scope:
/// its result and the `pdm-scope` process that ran it (the parent of whatever it left).
fn via_setpriv(setpriv: &[&str], args: &[&str]) -> (Out, i32) {
    assert!(
        Path::new("/usr/bin/setpriv").exists() || Path::new("/bin/setpriv").exists(),
        "setpriv is missing (util-linux)"
    );
    let mut cmd = support::host("setpriv");
    cmd.args(setpriv).arg("--");
    if let Some(runner) = support::runner() {
        cmd.args(runner.split_whitespace());
    }
    cmd.arg(TOOL)
        .args(args)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawned = support::spawn(&mut cmd);
    let reaper = spawned.reaper();
    let out = spawned.wait_with_output();
    let out = Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (out, reaper)
}

/// [`via_setpriv`], expecting exit status `code`.
fn expect_via_setpriv(code: i32, setpriv: &[&str], args: &[&str]) -> (Out, i32) {
    let (out, reaper) = via_setpriv(setpriv, args);
    assert_eq!(
        out.code,
        Some(code),
        "setpriv {setpriv:?} -- pandaemonium {args:?}: {out:?}"
    );
    (out, reaper)
}

/// The live processes whose parent is `pid`.
fn children(pid: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&p| {
            fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|st| {
                let after = &st[st.rfind(')').unwrap() + 2..];
                after.split_whitespace().nth(1) == Some(&pid.to_string())
            }) && alive(p)
        })
        .collect()
}

/// The tool's arguments for `start --pid-file PID OPTS -- PROGRAM...`.
fn start_args<'a>(pid_file: &'a Path, opts: &[&'a str], program: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["start", "--pid-file", s(pid_file)];
    args.extend_from_slice(opts);
    args.push("--");
    args.extend_from_slice(program);
    args
}

#[test]
fn help_lists_the_privilege_options() {
    let out = expect(0, ["start", "--help"]);
    for flag in [
        "--chroot DIR",
        "--keep-cap CAP",
        "--no-new-privs",
        "--groups LIST|user|none",
    ] {
        assert!(out.stdout.contains(flag), "--help lacks {flag}");
    }
    for line in out.stdout.lines() {
        assert!(line.len() <= 80, "--help line over 80 columns: {line:?}");
    }
}

/// Each refused before any fork: exit 2, one line naming the reason, no pid file, and
/// PROGRAM never ran.
#[test]
fn usage_errors_of_the_privilege_options() {
    let dir = TempDir::new("priv-usage");
    let pid = dir.join("p.pid");
    let marker = dir.join("ran");
    let missing = dir.join("no-such-jail");
    let file = dir.join("a-file");
    fs::write(&file, "").unwrap();
    let touch = format!("/bin/touch {}", s(&marker));
    let program = ["/bin/sh", "-c", touch.as_str()];
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--user", "nobody", "--keep-cap", "NET_BIND_SERVCE"],
            "--keep-cap NET_BIND_SERVCE: unknown capability NET_BIND_SERVCE".into(),
        ),
        (
            vec!["--keep-cap", "net_raw,cap_bogus", "--user", "nobody"],
            "--keep-cap net_raw,cap_bogus: unknown capability cap_bogus".into(),
        ),
        (
            vec!["--user", "nobody", "--keep-cap=64"],
            "--keep-cap 64: unknown capability 64".into(),
        ),
        (
            vec!["--user", "nobody", "--keep-cap", "net_raw,"],
            "--keep-cap net_raw,: unknown capability ".into(),
        ),
        (
            vec!["--keep-cap", "NET_BIND_SERVICE"],
            "start: --keep-cap needs --user, to a user other than root".into(),
        ),
        #[cfg(feature = "tool-readiness")]
        (
            vec!["--notify", "--chroot", "/"],
            "start: --notify's socket is outside the --chroot jail: use --ready-fd".into(),
        ),
        (
            vec!["--keep-cap", "NET_BIND_SERVICE", "--user", "root"],
            "start: --keep-cap needs --user, to a user other than root".into(),
        ),
        (
            vec!["--user", "0:65534", "--keep-cap", "10"],
            "start: --keep-cap needs --user, to a user other than root".into(),
        ),
        (
            vec!["--groups", "none"],
            "start: --groups needs --user".into(),
        ),
        (
            vec!["--groups", "pdm-no-such-group", "--user", "nobody"],
            "--groups pdm-no-such-group: no such group: pdm-no-such-group".into(),
        ),
        (
            vec!["--user", "nobody", "--groups", "65534,pdm-no-such-group"],
            "--groups 65534,pdm-no-such-group: no such group: pdm-no-such-group".into(),
        ),
        (
            vec!["--no-new-privs=yes"],
            "option --no-new-privs takes no value".into(),
        ),
        (
            vec!["--chroot", s(&missing)],
            format!(
                "--chroot {}: No such file or directory (os error 2)",
                s(&missing)
            ),
        ),
        (
            vec!["--chroot", s(&file)],
            format!("--chroot {}: Not a directory (os error 20)", s(&file)),
        ),
        (
            vec!["--chroot", "relative/jail"],
            "--chroot relative/jail: not an absolute path".into(),
        ),
        (vec!["--chroot"], "option --chroot needs a value".into()),
        (vec!["--keep-cap"], "option --keep-cap needs a value".into()),
        (vec!["--groups"], "option --groups needs a value".into()),
    ];
    for (opts, reason) in cases {
        // An option without its value comes last (else the next argument would be
        // it); the others before PROGRAM.
        let mut args = vec!["start", "--pid-file", s(&pid)];
        args.extend_from_slice(&opts);
        if !opts
            .last()
            .is_some_and(|o| o.starts_with("--") && !o.contains('='))
        {
            args.push("--");
            args.extend_from_slice(&program);
        }
        let out = run(&args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert_eq!(
            out.stderr,
            format!("pandaemonium: {reason} (see pandaemonium --help)\n"),
            "{args:?}"
        );
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(
            !pid.exists() && !marker.exists(),
            "{args:?} got as far as forking"
        );
    }
}

/// With `--chroot`, PROGRAM is exec'd inside the jail as it is: a name the tool would
/// look up on the host (bare, or relative to its directory) is refused.
#[test]
fn chroot_needs_an_absolute_program() {
    let dir = TempDir::new("priv-relative");
    let pid = dir.join("p.pid");
    for program in ["sh", "bin/sh", "./sh", ""] {
        let out = run([
            "start",
            "--pid-file",
            s(&pid),
            "--chroot",
            s(dir.path()),
            "--",
            program,
            "-c",
            "exit 0",
        ]);
        assert_eq!(out.code, Some(2), "{program:?}: {out:?}");
        assert_eq!(
            out.stderr,
            format!(
                "pandaemonium: start: with --chroot, PROGRAM must be an absolute path: \
                 {program} (see pandaemonium --help)\n"
            )
        );
        assert!(!pid.exists(), "{program:?} got as far as forking");
    }
    // Also with the options after --chroot, and PROGRAM as the first operand (no --).
    let out = run([
        "start",
        "--chroot",
        s(dir.path()),
        "--user",
        "nobody",
        "sleep",
        "1",
    ]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("must be an absolute path: sleep"),
        "{out:?}"
    );
}

/// `nobody` keeping `CAP_NET_BIND_SERVICE` binds a port below 1024, with exactly that
/// capability in every set but the bounding one; without `--keep-cap` the same bind
/// fails with `EACCES` and no capability is left.
#[test]
fn keep_cap_net_bind_service_as_nobody_binds_a_low_port() {
    require_root!();
    require_python();
    let dir = TempDir::new("priv-bind");
    let pid_file = dir.join("p.pid");
    let port_held = low_port(81);
    let port = port_held.port;
    let result = dir.join("kept");
    // --keep-cap before --user: the order does not matter.
    let pid = start(
        &pid_file,
        &["--keep-cap", "NET_BIND_SERVICE", "--user", "nobody"],
        &strs(&binder(port, &result)),
    );
    assert_eq!(written(&result), "bound", "nobody keeping NET_BIND_SERVICE");
    assert_eq!(support::comm(pid), "python3", "the pid file names PROGRAM");
    assert_eq!(caps(pid), [NET_BIND; 4], "CapInh, CapPrm, CapEff, CapAmb");
    assert_nobody(pid, "--keep-cap");
    assert_eq!(words(pid, "Groups"), [NOBODY], "nobody's groups");
    stop(&pid_file, pid);

    let result = dir.join("dropped");
    let pid = start(
        &pid_file,
        &["--user", "nobody"],
        &strs(&binder(port, &result)),
    );
    assert_eq!(written(&result), "EACCES", "nobody without --keep-cap");
    let [_, prm, eff, amb] = caps(pid);
    assert_eq!([prm, eff, amb], [NO_CAPS; 3], "CapPrm, CapEff, CapAmb");
    assert_nobody(pid, "no --keep-cap");
    stop(&pid_file, pid);
}

/// `--keep-cap` takes names in every spelling and numbers, repeated or as one list.
#[test]
fn keep_cap_lists_and_repeats_add_up() {
    require_root!();
    let dir = TempDir::new("priv-list");
    let pid_file = dir.join("p.pid");
    for opts in [
        &[
            "--user",
            "nobody",
            "--keep-cap",
            "cap_net_bind_service,NET_RAW",
        ][..],
        &[
            "--keep-cap",
            "10",
            "--user",
            "nobody",
            "--keep-cap",
            "Cap_Net_Raw",
        ],
        &[
            "--keep-cap=net_raw,net_raw",
            "--keep-cap=CAP_NET_BIND_SERVICE",
            "--user=nobody",
        ],
    ] {
        let pid = start(&pid_file, opts, &["/bin/sleep", "1000"]);
        assert_eq!(caps(pid), ["0000000000002400"; 4], "{opts:?}");
        assert_nobody(pid, &format!("{opts:?}"));
        stop(&pid_file, pid);
    }
}

/// A capability not in the bounding set (dropped from it for the tool by `setpriv`,
/// as this machine's container does for `CAP_SYS_RESOURCE`) is a named error: exit 1,
/// no pid file, no process left.
#[test]
fn keep_cap_outside_the_bounding_set_fails_naming_it_and_leaves_nothing() {
    require_root!();
    let dir = TempDir::new("priv-bounding");
    let pid_file = dir.join("p.pid");
    let (out, reaper) = expect_via_setpriv(
        1,
        &["--bounding-set", "-sys_resource"],
        &start_args(
            &pid_file,
            &["--keep-cap", "SYS_RESOURCE", "--user", "nobody"],
            &["/bin/sleep", "1000"],
        ),
    );
    assert_eq!(
        out.stderr,
        "pandaemonium: stage 3 (process ids): keep cap_sys_resource (not in the bounding \
         set): Operation not permitted (os error 1)\n"
    );
    assert_eq!(out.stdout, "");
    assert!(!pid_file.exists(), "the failed start left {}", s(&pid_file));
    assert!(!support::is_locked(&pid_file));
    wait_until("nothing left of the failed start", || {
        children(reaper).is_empty()
    });
}

/// Started with the supplementary groups 0, 4 and 27 (`setpriv --groups`), the tool
/// gives `nobody` its own groups (the default, and `user`), none, or exactly a list:
/// root's never survive, and the gid is always `nogroup`'s.
#[test]
fn root_groups_never_survive_the_user_switch() {
    require_root!();
    let dir = TempDir::new("priv-groups");
    let pid_file = dir.join("p.pid");
    let root_groups = ["--groups", "0,4,27"];
    // The name of group 100 (Debian's `users`) when /etc/group has one: a list of a
    // name and a number.
    let group_file = fs::read_to_string("/etc/group").unwrap();
    let users = group_file
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "100")
        .map_or("100".to_string(), |f| f[0].to_string());
    let list = format!("{users},65534");
    let program = ["/bin/sleep", "1000"];

    // Without --user, the daemon is root with the groups it was given: they were there.
    let (out, _) = expect_via_setpriv(0, &root_groups, &start_args(&pid_file, &[], &program));
    assert_eq!(out.stderr, "");
    let pid = pids(&pid_file).0.unwrap();
    assert_eq!(
        words(pid, "Groups"),
        ["0", "4", "27"],
        "the launcher's groups"
    );
    stop(&pid_file, pid);

    for (opts, groups) in [
        (&["--user", "nobody"][..], &[NOBODY][..]),
        (&["--user", "nobody", "--groups", "user"], &[NOBODY]),
        // --groups before --user.
        (&["--groups", "none", "--user", "nobody"], &[]),
        (&["--groups", "", "--user", "nobody"], &[]),
        (&["--groups", &list, "--user", "nobody"], &["100", NOBODY]),
        (&["--user", "nobody:nogroup", "--groups=100"], &["100"]),
    ] {
        let (out, _) = expect_via_setpriv(0, &root_groups, &start_args(&pid_file, opts, &program));
        assert_eq!(out.stderr, "", "{opts:?}");
        let pid = pids(&pid_file).0.unwrap();
        let seen = words(pid, "Groups");
        assert_eq!(seen, groups, "{opts:?}: Groups");
        for root in ["0", "4", "27"] {
            assert!(!seen.iter().any(|g| g == root), "{opts:?}: {seen:?}");
        }
        assert_nobody(pid, &format!("{opts:?}"));
        stop(&pid_file, pid);
    }
}

/// `--no-new-privs` with a kept capability: `NoNewPrivs: 1`, and the ambient
/// capability still effective after the exec (PROGRAM binds).
#[test]
fn no_new_privs_keeps_the_ambient_capability() {
    require_root!();
    require_python();
    let dir = TempDir::new("priv-nnp");
    let pid_file = dir.join("p.pid");
    let port_held = low_port(181);
    let port = port_held.port;
    let result = dir.join("bind");
    let pid = start(
        &pid_file,
        &[
            "--no-new-privs",
            "--user",
            "nobody",
            "--keep-cap",
            "NET_BIND_SERVICE",
        ],
        &strs(&binder(port, &result)),
    );
    assert_eq!(written(&result), "bound");
    let st = support::status(pid);
    assert_eq!(st["NoNewPrivs"], "1");
    assert_eq!(
        (st["CapAmb"].as_str(), st["CapEff"].as_str()),
        (NET_BIND, NET_BIND)
    );
    assert_nobody(pid, "--no-new-privs");
    stop(&pid_file, pid);

    // Root, no --user: the flag alone.
    let pid = start(&pid_file, &["--no-new-privs"], &["/bin/sleep", "1000"]);
    assert_eq!(support::status(pid)["NoNewPrivs"], "1");
    stop(&pid_file, pid);
}

/// A path that names PROGRAM in the jails only: busybox's `sh` by its name.
const JAIL_ONLY: &str = "/pdm-jail-only/sh";

/// A jail in `dir`: `bin/busybox` (a static one), the same as [`JAIL_ONLY`], `tmp`
/// (1777) and, when asked, `dev/null`.
fn jail(dir: &TempDir, dev_null: bool) -> PathBuf {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: the chroot tests need a static busybox to put in their jail; \
         install busybox-static (Debian: apt-get install busybox-static)"
    );
    let jail = dir.join("jail");
    for sub in ["bin", "tmp", "dev"] {
        fs::create_dir_all(jail.join(sub)).unwrap();
    }
    fs::set_permissions(jail.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(BUSYBOX, jail.join("bin/busybox")).unwrap();
    fs::set_permissions(jail.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    let only = jail.join(&JAIL_ONLY[1..]);
    fs::create_dir(only.parent().unwrap()).unwrap();
    fs::hard_link(jail.join("bin/busybox"), only).unwrap();
    if dev_null {
        let path = std::ffi::CString::new(jail.join("dev/null").as_os_str().as_bytes()).unwrap();
        // SAFETY: mknod with a NUL-terminated path and integer arguments.
        let r = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
        assert_eq!(r, 0, "mknod dev/null: {}", std::io::Error::last_os_error());
        fs::set_permissions(jail.join("dev/null"), fs::Permissions::from_mode(0o666)).unwrap();
    }
    fs::canonicalize(jail).unwrap()
}

/// `--chroot`: PROGRAM, a path that exists only in the jail, runs there (nothing is
/// looked up on the host before the fork); its root is the jail and its directory is
/// in it (`/`, or `--chdir`), what it writes lands in the jail, the host's files are
/// out of reach, and the pid file, outside the jail, names PROGRAM (acquired before
/// the fork) and is removed by `stop`.
#[test]
fn chroot_runs_program_in_the_jail_with_the_pid_file_outside() {
    require_root!();
    let dir = TempDir::new("priv-jail");
    let jail = jail(&dir, true);
    let pid_file = dir.join("p.pid");
    // The last file through a rename: complete once it exists.
    let script = "echo hi > /tmp/out; \
                  if /bin/busybox cat ../../etc/passwd; then echo escaped; else echo jailed; fi \
                  > /tmp/escape.new; \
                  /bin/busybox mv /tmp/escape.new /tmp/escape; \
                  exec /bin/busybox sleep 300";
    // PROGRAM's path names nothing on the host: the tool takes it as it is, and the
    // daemon finds it in the jail.
    assert!(!Path::new(JAIL_ONLY).exists());
    let pid = start(
        &pid_file,
        &["--chroot", s(&jail), "--user", "nobody"],
        &[JAIL_ONLY, "-c", script],
    );
    assert_eq!(written(&jail.join("tmp/escape")), "jailed\n");
    assert_eq!(fs::read_to_string(jail.join("tmp/out")).unwrap(), "hi\n");
    assert_eq!(fs::read_link(format!("/proc/{pid}/root")).unwrap(), jail);
    assert_eq!(support::cwd(pid), jail);
    assert_nobody(pid, "--chroot");
    assert!(
        support::holds_lock(pid, &pid_file),
        "PROGRAM holds the lock of the pid file outside its jail"
    );
    wait_until("PROGRAM execs sleep", || {
        fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.ends_with(b"sleep\x00300\x00"))
    });
    assert_eq!(pids(&pid_file).0, Some(pid));
    expect(0, ["status", "--pid-file", s(&pid_file)]);
    stop(&pid_file, pid);

    // --chdir and a relative redirection are the jail's, not the launcher's.
    let log = format!("pdm-jail-{}.log", std::process::id());
    let pid = start(
        &pid_file,
        &[
            "--user",
            "nobody",
            "--chdir",
            "/tmp",
            "--stdout",
            &log,
            "--chroot",
            s(&jail),
        ],
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "echo in-jail; > done; exec /bin/busybox sleep 300",
        ],
    );
    written(&jail.join("tmp/done"));
    assert_eq!(
        fs::read_to_string(jail.join("tmp").join(&log)).unwrap(),
        "in-jail\n"
    );
    assert_eq!(support::cwd(pid), jail.join("tmp"));
    assert_eq!(fs::read_link(format!("/proc/{pid}/root")).unwrap(), jail);
    assert!(!Path::new(&log).exists(), "{log} written outside the jail");
    stop(&pid_file, pid);
}

/// A jail without `dev/null`: stage 9 fails inside it, the launcher says so (exit 1)
/// and nothing is left; a PROGRAM missing from the jail is an exec failure (exit 1),
/// and the pid file outside the jail, which the jailed daemon can't reach, is removed
/// by the launcher.
#[test]
fn chroot_failures_are_reported_and_leave_nothing() {
    require_root!();
    let dir = TempDir::new("priv-jail-fail");
    let jail = jail(&dir, false);
    let pid_file = dir.join("p.pid");
    let (out, reaper) = expect_via_setpriv(
        1,
        &[],
        &start_args(
            &pid_file,
            &["--chroot", s(&jail), "--user", "nobody"],
            &["/bin/busybox", "sleep", "300"],
        ),
    );
    assert_eq!(
        out.stderr,
        "pandaemonium: stage 9 (redirect stdio): open /dev/null for stdin: No such file or \
         directory (os error 2)\n"
    );
    assert!(!pid_file.exists(), "the failed start left {}", s(&pid_file));
    wait_until("nothing left of the failed start", || {
        children(reaper).is_empty()
    });

    // Every stream elsewhere: no /dev/null needed.
    let log = jail.join("tmp/log");
    fs::write(&log, "").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    let pid = start(
        &pid_file,
        &[
            "--chroot",
            s(&jail),
            "--user",
            "nobody",
            "--stdin",
            "/bin/busybox",
            "--stdout",
            "/tmp/log",
            "--stderr",
            "/tmp/log",
        ],
        &["/bin/busybox", "sleep", "300"],
    );
    assert_eq!(fs::read_link(format!("/proc/{pid}/root")).unwrap(), jail);
    stop(&pid_file, pid);

    for opts in [
        &[
            "--chroot",
            s(&jail),
            "--user",
            "nobody",
            "--stdout",
            "/tmp/log",
        ][..],
        &["--chroot", s(&jail), "--stdout", "/tmp/log"],
        &[
            "--chroot",
            s(&jail),
            "--user",
            "nobody",
            "--stdout",
            "/tmp/log",
            "--supervise",
        ],
    ] {
        // stdin's /dev/null is missing too: stage 9 again, whatever else.
        let out = run(start_args(
            &pid_file,
            opts,
            &["/bin/busybox", "sleep", "300"],
        ));
        assert_eq!(out.code, Some(1), "{opts:?}: {out:?}");
        assert!(
            out.stderr.contains("stage 9 (redirect stdio)"),
            "{opts:?}: {out:?}"
        );
        assert!(!pid_file.exists(), "{opts:?}: left {}", s(&pid_file));
    }

    let std3 = [
        "--stdin",
        "/bin/busybox",
        "--stdout",
        "/tmp/log",
        "--stderr",
        "/tmp/log",
    ];
    for extra in [&[][..], &["--supervise"]] {
        let mut opts = vec!["--chroot", s(&jail), "--user", "nobody"];
        opts.extend_from_slice(&std3);
        opts.extend_from_slice(extra);
        let (out, reaper) = expect_via_setpriv(
            1,
            &[],
            &start_args(&pid_file, &opts, &["/bin/pdm-not-in-the-jail"]),
        );
        assert_eq!(
            out.stderr,
            "pandaemonium: exec /bin/pdm-not-in-the-jail: No such file or directory (os error \
             2)\n",
            "{extra:?}"
        );
        assert!(
            !pid_file.exists(),
            "{extra:?}: the failed exec left {}",
            s(&pid_file)
        );
        wait_until("nothing left of the failed exec", || {
            children(reaper).is_empty()
        });
    }
}

/// The same for an exec failure as `nobody` without a jail: a pid file in a directory
/// only root may write, which the daemon can't remove, is removed by the launcher.
#[test]
fn exec_failure_as_nobody_leaves_no_pid_file_in_a_root_only_directory() {
    require_root!();
    let dir = TempDir::new("priv-exec-fail");
    let run_dir = dir.join("run");
    fs::create_dir(&run_dir).unwrap();
    fs::set_permissions(&run_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let pid_file = run_dir.join("p.pid");
    for extra in [&[][..], &["--supervise"]] {
        let mut args = vec!["start", "--pid-file", s(&pid_file), "--user", "nobody"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "/nonexistent/program"]);
        let out = run(&args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(
            out.stderr
                .ends_with("exec /nonexistent/program: No such file or directory (os error 2)\n"),
            "{out:?}"
        );
        assert!(!pid_file.exists(), "{extra:?}: left {}", s(&pid_file));
    }
    // And no harm to a start that works.
    let pid = start(&pid_file, &["--user", "nobody"], &["/bin/sleep", "1000"]);
    stop(&pid_file, pid);
}
