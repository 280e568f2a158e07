//! `pandaemonium start [OPTIONS] -- PROGRAM [ARG...]`: the launcher's side.
//!
//! Everything is checked and prepared before the first fork: the options (usage
//! errors exit 2 there), users and groups (resolved by the core's setters), PROGRAM's
//! path ([`exec::resolve`]) and its argument vector (a tail of our own `argv`). Then
//! the core's nine stages run, and [`Launch`] execs PROGRAM or supervises it. The
//! original process exits 0 only once PROGRAM runs ([`report`]).

use core::ffi::CStr;

use pandaemonium::{Action, Config, Daemon, Detach, ErrorKind, ProcessIds, Signal, Stdio};

use crate::args::{self, Cursor, Item, Parsed};
use crate::exec::{self, Program, PATH_CAPACITY};
use crate::launch::Launch;
use crate::out::{self, Detail, Show};
use crate::report::{self, Received, Record};
use crate::sys;

/// Default delay before a restart, in milliseconds (FreeBSD daemon(8) `-R`: 1 s).
const RESTART_DELAY_MS: u64 = 1000;

/// What `start` was asked to do.
struct Start {
    config: Config<'static>,
    pid_path: Option<&'static CStr>,
    program: usize,
    supervise: bool,
    restart: Option<u64>,
}

/// `start`: returns the exit status.
pub fn main(cur: &mut Cursor) -> i32 {
    let opts = match parse(cur) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    let args = cur.args;
    let Some(name) = args.get(opts.program) else {
        return out::usage(format_args!("start: PROGRAM missing"));
    };
    let mut path_buf = [0u8; PATH_CAPACITY];
    let path = match exec::resolve(name, &mut path_buf) {
        Ok(path) => path,
        Err(e) => {
            out::error(format_args!("exec {}: {e}", Show(name)));
            return 1;
        }
    };
    let program = Program {
        name,
        path,
        argv: args.exec_argv(opts.program),
        envp: args.envp(),
    };
    launch(opts, program)
}

/// Runs the stages; in the original process, waits for PROGRAM's start.
fn launch(opts: Start, program: Program<'_>) -> i32 {
    let mut config = opts.config;
    let (read_end, write_end) = match sys::pipe() {
        Ok(ends) => ends,
        Err(e) => {
            out::error(format_args!("pipe: {e}"));
            return 1;
        }
    };
    if let Err(e) = config.inherit_file(write_end) {
        out::error(format_args!("{e}"));
        return 1;
    }
    // PROGRAM gets default dispositions: ignored signals stay ignored across exec,
    // so the core's default of ignoring the terminal stop signals is undone.
    for sig in [Signal::TSTP, Signal::TTIN, Signal::TTOU] {
        if let Err(e) = config.signal(sig, Action::Default) {
            out::error(format_args!("{e}"));
            return 1;
        }
    }
    let supervise = opts.supervise.then_some(opts.restart);
    let app = Launch::new(program, write_end, supervise, opts.pid_path);
    let mut daemon = Daemon::with_config(app, config);
    // The thread check reads /proc/self/stat, which early boot may lack; this program
    // never starts a thread (no std, and libc starts none), so it is not needed.
    #[allow(unsafe_code)]
    // SAFETY: the process is single-threaded: nothing in this binary spawns a thread.
    unsafe {
        daemon.allow_threads();
    }
    if let Err(e) = daemon.start() {
        out::error(format_args!("{e}"));
        return 1;
    }
    // The original process: the daemon finished stage 9; did PROGRAM start?
    sys::close(write_end);
    let received = report::receive(read_end);
    sys::close(read_end);
    match received {
        Received::Record(Record::Started) => 0,
        Received::Eof if supervise.is_none() => 0,
        Received::Eof => {
            out::error(format_args!("the supervisor ended before PROGRAM started"));
            1
        }
        Received::Record(Record::ExecFailed(e)) => {
            out::error(format_args!("exec {}: {e}", Show(program.name)));
            1
        }
        Received::Record(Record::PidFileFailed(e)) => {
            out::error(format_args!("writing PROGRAM's pid into the pid file: {e}"));
            1
        }
    }
}

fn parse(cur: &mut Cursor) -> Parsed<Start> {
    let mut opts = Start {
        config: Config::default(),
        pid_path: None,
        program: 0,
        supervise: false,
        restart: None,
    };
    let config = &mut opts.config;
    loop {
        let (name, inline) = match cur.item()? {
            None => return Err(out::usage(format_args!("start: PROGRAM missing"))),
            Some(Item::End) => {
                opts.program = cur.next;
                break;
            }
            Some(Item::Operand(at)) => {
                opts.program = at;
                break;
            }
            Some(Item::Opt { name, inline }) => (name, inline),
        };
        match name {
            b"help" => {
                out::text(1, crate::HELP);
                return Err(0);
            }
            b"pid-file" => {
                let v = cur.value(name, inline)?;
                config
                    .pid_file(v)
                    .map_err(|e| args::bad_value("pid-file", v, e.detail()))?;
                opts.pid_path = Some(v);
            }
            b"chdir" => {
                let v = cur.value(name, inline)?;
                config
                    .working_directory(v)
                    .map_err(|e| args::bad_value("chdir", v, e.detail()))?;
            }
            b"umask" => {
                let v = cur.value(name, inline)?;
                let mask = args::octal(v.to_bytes())
                    .ok_or_else(|| args::bad_value("umask", v, "not an octal mask (0 to 777)"))?;
                config.umask(mask);
            }
            b"user" => {
                let v = cur.value(name, inline)?;
                config.ids(user(v)?);
            }
            b"stdin" | b"stdout" | b"stderr" => {
                let v = cur.value(name, inline)?;
                let set = match name {
                    b"stdin" => Config::stdin,
                    b"stdout" => Config::stdout,
                    _ => Config::stderr,
                };
                set(config, Stdio::Path(v)).map_err(|e| {
                    out::usage(format_args!("--{}: {}", args::ShowBytes(name), Detail(&e)))
                })?;
            }
            b"keep-fd" => {
                let v = cur.value(name, inline)?;
                let fd = args::fd(v.to_bytes())
                    .ok_or_else(|| args::bad_value("keep-fd", v, "not a descriptor number"))?;
                config.inherit_file(fd).map_err(|e| match e.kind() {
                    ErrorKind::Capacity => args::bad_value("keep-fd", v, e.detail()),
                    _ => args::bad_value("keep-fd", v, "not an open descriptor"),
                })?;
            }
            b"allow-core" => {
                args::no_value(name, inline)?;
                config.prevent_core(false);
            }
            b"detach" => {
                let v = cur.value(name, inline)?;
                config.detach(match v.to_bytes() {
                    b"auto" => Detach::Auto,
                    b"always" => Detach::Always,
                    b"never" => Detach::Never,
                    _ => {
                        return Err(args::bad_value(
                            "detach",
                            v,
                            "expected auto, always or never",
                        ))
                    }
                });
            }
            b"foreground" => {
                args::no_value(name, inline)?;
                config.detach(Detach::Never);
            }
            b"supervise" => {
                args::no_value(name, inline)?;
                opts.supervise = true;
            }
            b"restart" => {
                opts.restart = Some(match inline {
                    None => RESTART_DELAY_MS,
                    Some(v) => args::seconds(v.to_bytes())
                        .filter(|&ms| ms > 0)
                        .ok_or_else(|| {
                            args::bad_value("restart", v, "not a delay in seconds (0.001 to 86400)")
                        })?,
                });
            }
            _ => return Err(args::unknown(name)),
        }
    }
    if opts.restart.is_some() && !opts.supervise {
        return Err(out::usage(format_args!(
            "start: --restart needs --supervise"
        )));
    }
    Ok(opts)
}

/// `USER[:GROUP]`, names or numbers, resolved now (before fork). A uid without a user
/// entry needs a group: there is no primary group to take.
fn user(spec: &'static CStr) -> Parsed<ProcessIds> {
    let bytes = spec.to_bytes();
    let (user, group) = match bytes.iter().position(|&b| b == b':') {
        Some(colon) => (&bytes[..colon], Some(&bytes[colon + 1..])),
        None => (bytes, None),
    };
    let bad =
        |why: &dyn core::fmt::Display| out::usage(format_args!("--user {}: {why}", Show(spec)));
    let mut user_buf = [0u8; 256];
    let mut group_buf = [0u8; 256];
    let user_name = cstr_in(user, &mut user_buf).ok_or_else(|| bad(&"bad user name"))?;
    let group_name = match group {
        Some(g) => Some(cstr_in(g, &mut group_buf).ok_or_else(|| bad(&"bad group name"))?),
        None => None,
    };
    let ids = match (ProcessIds::user(user_name), args::decimal(user), group_name) {
        (Ok(ids), _, _) => ids,
        (Err(e), Some(uid), Some(g)) if e.kind() == ErrorKind::UnknownUser => {
            let gid = ProcessIds::new(uid, 0)
                .and_then(|ids| ids.with_group(g))
                .map_err(|e| bad(&Detail(&e)))?
                .gid();
            ProcessIds::new(uid, gid).map_err(|e| bad(&Detail(&e)))?
        }
        (Err(e), _, _) => return Err(bad(&Detail(&e))),
    };
    match group_name {
        Some(g) => ids.with_group(g).map_err(|e| bad(&Detail(&e))),
        None => Ok(ids),
    }
}

/// `bytes` as a `CStr` in `buf`: `None` when empty, too long or holding a NUL.
fn cstr_in<'b>(bytes: &[u8], buf: &'b mut [u8]) -> Option<&'b CStr> {
    if bytes.is_empty() || bytes.len() >= buf.len() || bytes.contains(&0) {
        return None;
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()] = 0;
    CStr::from_bytes_with_nul(&buf[..=bytes.len()]).ok()
}
