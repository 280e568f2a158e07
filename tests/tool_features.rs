//! A tool built without some of its optional parts (the `tool-readiness`,
//! `tool-privileges` and `tool-log` features; `cargo build --no-default-features`
//! leaves out all three): their options are usage errors that name the feature,
//! refused before anything is made (no pid file, no process), and `--help` does not
//! list them. With every feature on (`cargo test`) this file has no tests: the
//! options' own files test them (`tool_ready.rs`, `tool_privileges.rs`, `tool_log.rs`).
#![allow(dead_code, unused_imports)]

mod support;

use std::path::Path;

use support::tool::expect;
use support::TempDir;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Each of `options` (an option and its value, if it takes one) is refused with
/// `--NAME: not in this build (cargo feature FEATURE)`, exit status 2, and leaves no
/// pid file; `--help` names none of them.
fn refused(feature: &str, options: &[&[&str]]) {
    let dir = TempDir::new("tool-features");
    let pid_file = dir.join("p.pid");
    let marker = dir.join("ran");
    let script = format!("touch '{}'", s(&marker));
    for option in options {
        let mut args = vec!["start", "--pid-file", s(&pid_file), "--supervise"];
        args.extend_from_slice(option);
        args.extend(["--", "/bin/sh", "-c", &script]);
        let out = expect(2, &args);
        let name = option[0].split('=').next().unwrap();
        assert_eq!(
            out.stderr,
            format!(
                "pandaemonium: {name}: not in this build (cargo feature {feature}) \
                 (see pandaemonium --help)\n"
            )
        );
        assert_eq!(out.stdout, "");
        assert!(!pid_file.exists(), "{option:?} left a pid file");
        assert!(!marker.exists(), "{option:?} ran PROGRAM");
    }
    let help = expect(0, ["--help"]).stdout;
    assert!(help.starts_with("usage: pandaemonium start "), "{help}");
    for option in options {
        let name = option[0].split('=').next().unwrap();
        assert!(!help.contains(name), "--help lists {name}:\n{help}");
    }
}

#[cfg(not(feature = "tool-readiness"))]
#[test]
fn without_tool_readiness_notify_and_ready_fd_are_refused() {
    refused(
        "tool-readiness",
        &[&["--notify"], &["--notify=5"], &["--ready-fd", "3"]],
    );
}

#[cfg(not(feature = "tool-privileges"))]
#[test]
fn without_tool_privileges_chroot_keep_cap_and_no_new_privs_are_refused() {
    refused(
        "tool-privileges",
        &[
            &["--chroot", "/"],
            &["--keep-cap", "NET_BIND_SERVICE"],
            &["--no-new-privs"],
        ],
    );
}

#[cfg(not(feature = "tool-log"))]
#[test]
fn without_tool_log_log_and_syslog_are_refused() {
    refused(
        "tool-log",
        &[
            &["--log", "/tmp/x.log"],
            &["--syslog"],
            &["--syslog=tag"],
            &["--syslog-facility", "local0"],
            &["--syslog-priority", "err"],
            &["--syslog-socket", "/dev/log"],
        ],
    );
}
