//! Running the `pandaemonium` tool as a shell script would: its exit status and
//! output, in the test's scope.

use std::ffi::OsStr;
use std::process::Command;

/// The tool, as `cargo test` built it.
pub const TOOL: &str = env!("CARGO_BIN_EXE_pandaemonium");

/// A command for the tool.
pub fn tool<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Command {
    let mut cmd = super::helper(TOOL);
    // A PATH every user can search: like execvp, the tool answers EACCES, not ENOENT,
    // when an unsearchable PATH entry hid the program (root's PATH, run as nobody).
    cmd.env("PATH", "/usr/local/bin:/usr/bin:/bin").args(args);
    cmd
}

/// The tool's exit status and output.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the tool to completion.
pub fn run<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Out {
    let out = super::run(&mut tool(args));
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the tool and checks its exit status, showing its output when it differs.
pub fn expect<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(code: i32, args: I) -> Out {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    let out = run(&args);
    assert_eq!(
        out.code,
        Some(code),
        "pandaemonium {args:?}\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    out
}

/// The pids in a pid file: the first line and, under `--supervise`, the second.
pub fn pids(path: &std::path::Path) -> (Option<i32>, Option<i32>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines().map(|l| l.parse().ok());
    (lines.next().flatten(), lines.next().flatten())
}

/// Runs `start --pid-file PID OPTS -- PROGRAM...`, which must exit 0 saying nothing;
/// the pid in the pid file.
pub fn start(pid: &std::path::Path, opts: &[&str], program: &[&str]) -> i32 {
    let mut args = vec!["start", "--pid-file", pid.to_str().unwrap()];
    args.extend_from_slice(opts);
    args.push("--");
    args.extend_from_slice(program);
    let out = expect(0, &args);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    pids(pid).0.expect("a pid in the pid file")
}
