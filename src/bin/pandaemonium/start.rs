//! `pandaemonium start [OPTIONS] -- PROGRAM [ARG...]`: the launcher's side.
//!
//! Everything is checked and prepared before the first fork: the options (usage
//! errors exit 2 there), the user and groups (`ProcessIds::from_files`; `--groups`:
//! the user's, none, or `with_groups_from_files`), PROGRAM's path (`Program::find`)
//! and its argument vector (a tail of our own `argv`). Then the core's nine stages
//! run, and [`Launch`] execs PROGRAM or supervises it. The original process exits 0
//! only once PROGRAM runs ([`report`]).
//!
//! The privileges are the core's stage 3 (`Config::keep_capabilities`,
//! `chroot_directory`, `no_new_privileges`), set after the option loop, so the order
//! of the options does not matter. `--groups` needs `--user`, and `--keep-cap` a
//! `--user` other than root (root keeps them all). `--chroot DIR` must exist, and
//! PROGRAM must then be an absolute path: it is exec'd inside the jail as it is
//! (`Program::find` takes an absolute name without looking at the host's files);
//! `--chdir` and the redirections are the jail's too, but the pid file is acquired
//! here, before the fork, outside the jail.

use core::ffi::CStr;
#[cfg(feature = "tool-readiness")]
use core::{
    ffi::{c_char, c_int},
    time::Duration,
};

#[cfg(feature = "tool-readiness")]
use pandaemonium::notify::NotifyListener;
#[cfg(feature = "tool-log")]
use pandaemonium::syslog::{self, Facility, Severity};
#[cfg(feature = "tool-readiness")]
use pandaemonium::ReadySource;
use pandaemonium::{
    os, Action, Config, Daemon, Detach, ErrorKind, ProcessIds, Program, Signal, Stdio,
    PATH_CAPACITY,
};
#[cfg(feature = "tool-privileges")]
use pandaemonium::{Capabilities, Capability};

use crate::args::{self, Cursor, Item, Parsed};
use crate::launch::Launch;
use crate::out::Msg;
use crate::output::Output;
#[cfg(feature = "tool-log")]
use crate::output::{self, SyslogTo};
use crate::report::{self, Received, Record};

/// Default delay before a restart, in milliseconds (FreeBSD daemon(8) `-R`: 1 s).
const RESTART_DELAY_MS: u64 = 1000;

/// Default wait for readiness, in milliseconds (systemd's and start-stop-daemon's).
#[cfg(feature = "tool-readiness")]
const READY_TIMEOUT_MS: u64 = 60_000;

/// Most environment variables PROGRAM gets with `--notify` (the tool's own, plus
/// `NOTIFY_SOCKET`).
#[cfg(feature = "tool-readiness")]
const ENV_CAPACITY: usize = 1024;

/// How PROGRAM tells it is ready, and how long to wait (ms).
#[cfg(feature = "tool-readiness")]
#[derive(Clone, Copy)]
enum Ready {
    /// `--notify[=SECS]`: systemd's protocol on a private `NOTIFY_SOCKET`.
    Notify(u64),
    /// `--ready-fd N[:SECS]`: a newline on descriptor N.
    Fd(c_int, u64),
}

args::options! {
    /// `start`'s options.
    enum Opt in OPTIONS {
        Help = "help" Inline,
        PidFile = "pid-file" Value,
        Chdir = "chdir" Value,
        Umask = "umask" Value,
        User = "user" Value,
        Groups = "groups" Value,
        KeepCap = "keep-cap" Value,
        NoNewPrivs = "no-new-privs" Flag,
        Chroot = "chroot" Value,
        Stdin = "stdin" Value,
        Stdout = "stdout" Value,
        Stderr = "stderr" Value,
        KeepFd = "keep-fd" Value,
        AllowCore = "allow-core" Flag,
        Detach = "detach" Value,
        Foreground = "foreground" Flag,
        Notify = "notify" Inline,
        ReadyFd = "ready-fd" Value,
        Supervise = "supervise" Flag,
        Restart = "restart" Inline,
        Log = "log" Value,
        Syslog = "syslog" Inline,
        SyslogFacility = "syslog-facility" Value,
        SyslogPriority = "syslog-priority" Value,
        SyslogSocket = "syslog-socket" Value,
    }
}

/// What `start` was asked to do.
struct Start {
    config: Config<'static>,
    program: usize,
    supervise: bool,
    restart: Option<u64>,
    #[cfg(feature = "tool-readiness")]
    ready: Option<Ready>,
    foreground: bool,
    /// `--log`, `--syslog`.
    output: Output,
}

/// `start`: returns the exit status.
pub fn main(cur: &mut Cursor) -> i32 {
    let opts = match parse(cur) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    let args = cur.args;
    let (Some(name), Some(argv)) = (args.get(opts.program), args.tail(opts.program)) else {
        return Msg::error().s("start: PROGRAM missing").usage();
    };
    let mut path_buf = [0u8; PATH_CAPACITY];
    let program = match Program::find(name, argv, args.envp(), &mut path_buf) {
        Ok(program) => program,
        Err(e) => {
            Msg::exec_failed(name, e).to(2);
            return 1;
        }
    };
    launch_notified(opts, program)
}

/// With `--notify`: a private socket, named in PROGRAM's environment; then [`launch`].
#[cfg(feature = "tool-readiness")]
fn launch_notified(opts: Start, program: Program<'_>) -> i32 {
    let mut slots: [*const c_char; ENV_CAPACITY] = [core::ptr::null(); ENV_CAPACITY];
    let mut entry = [0u8; 128];
    // (Shortened to the environment's lifetime.)
    let mut program = program;
    let mut listener = None;
    if let Some(Ready::Notify(_)) = opts.ready {
        let owner = opts.config.ids_ref().map(|ids| (ids.uid(), ids.gid()));
        let l = match NotifyListener::bind_private(owner) {
            Ok(l) => l,
            Err(e) => {
                Msg::error().error_of(&e).to(2);
                return 1;
            }
        };
        let var = b"NOTIFY_SOCKET=";
        let path = l.address().to_bytes_with_nul();
        entry[..var.len()].copy_from_slice(var);
        entry[var.len()..var.len() + path.len()].copy_from_slice(path);
        let entry = CStr::from_bytes_until_nul(&entry).unwrap_or(c"");
        program = match program.with_env(entry, &mut slots) {
            Ok(p) => p,
            Err(e) => {
                Msg::error().s("NOTIFY_SOCKET: ").errno(e).to(2);
                return 1;
            }
        };
        listener = Some(l);
    }
    let code = launch(opts, program, listener.as_ref());
    drop(listener); // the socket and its directory go
    code
}

/// Without the `tool-readiness` feature: [`launch`].
#[cfg(not(feature = "tool-readiness"))]
fn launch_notified(opts: Start, program: Program<'_>) -> i32 {
    launch(opts, program)
}

/// Runs the stages; in the original process, waits for PROGRAM's start (and, with
/// `--notify` or `--ready-fd`, for its readiness).
fn launch(
    opts: Start,
    program: Program<'_>,
    #[cfg(feature = "tool-readiness")] listener: Option<&NotifyListener>,
) -> i32 {
    let mut config = opts.config;
    #[cfg(feature = "tool-readiness")]
    if let Err(code) = arm_ready(&mut config, opts.ready, listener) {
        return code;
    }
    let (read_end, write_end) = match os::pipe() {
        Ok(ends) => ends,
        Err(e) => {
            Msg::error().s("pipe: ").errno(e).to(2);
            return 1;
        }
    };
    // PROGRAM gets default dispositions: ignored signals stay ignored across exec,
    // so the core's default of ignoring the terminal stop signals is undone.
    let mut prepared = config.inherit_file(write_end).map(drop);
    for sig in [Signal::TSTP, Signal::TTIN, Signal::TTOU] {
        prepared = prepared.and_then(|()| config.signal(sig, Action::Default).map(drop));
    }
    if opts.supervise {
        // The supervisor writes to the original process once PROGRAM runs, and that
        // process may be gone by then (killed, Ctrl-C): never die of SIGPIPE.
        prepared = prepared.and_then(|()| config.signal(Signal::PIPE, Action::Ignore).map(drop));
    }
    if let Err(e) = prepared {
        Msg::error().error_of(&e).to(2);
        return 1;
    }
    // The pid file is acquired and locked here, by the caller (still root with
    // `--user`, as start-stop-daemon --chuid writes its pid file): the daemon inherits
    // the lock and seals the file in stage 6, after the user switch, so `/run/NAME.pid`
    // works for a daemon that could not create it.
    if let Some(pid_file) = config.pid_file_mut() {
        if let Err(e) = pid_file.acquire(None) {
            Msg::error().error_of(&e).to(2);
            return 1;
        }
    }
    let supervise = opts.supervise.then_some(opts.restart);
    #[cfg(feature = "tool-log")]
    let log_file = opts.output.file;
    let app = Launch::new(program, write_end, supervise, opts.output);
    let mut daemon = Daemon::with_config(app, config);
    // The thread check reads /proc/self/stat, which early boot may lack; this program
    // never starts a thread (no std, and libc starts none), so it is not needed.
    #[allow(unsafe_code)]
    // SAFETY: the process is single-threaded: nothing in this binary spawns a thread.
    unsafe {
        daemon.allow_threads();
    }
    let started = daemon.start().map(|s| (s.pid, s.main_pid));
    // The original process: the daemon finished stage 9 (or is ready); did PROGRAM
    // start?
    os::close(write_end);
    let received = report::receive(read_end);
    os::close(read_end);
    let (pid, main_pid) = match started {
        Ok(pids) => pids,
        Err(e) => {
            match received {
                // PROGRAM was never exec'd: say why, not how the daemon then ended.
                Received::Record(Record::ExecFailed(errno)) => {
                    Msg::exec_failed(program.name(), errno).to(2)
                }
                _ => Msg::error().error_of(&e).to(2),
            }
            return 1;
        }
    };
    // `MAINPID=`: the service is that process; the pid file says so.
    if let (Some(main), Some(pid_file)) = (main_pid, daemon.config().pid_file_ref()) {
        if let Err(e) = pid_file.rewrite_first_pid(pid, main) {
            Msg::error().error_of(&e).to(2);
        }
    }
    match received {
        Received::Record(Record::Started) => return 0,
        Received::Eof if supervise.is_none() => return 0,
        _ => {}
    }
    // The daemon let go of the lock before reporting (launch.rs, supervise.rs): a pid
    // file it could not remove (as its user, or outside its jail) goes now.
    if let Some(pid_file) = daemon.config().pid_file_ref() {
        let _ = pid_file.remove_if_stale();
    }
    let why = match received {
        Received::Record(Record::ExecFailed(e)) => {
            Msg::exec_failed(program.name(), e).to(2);
            return 1;
        }
        #[cfg(feature = "tool-log")]
        Received::Record(Record::LogFailed(e)) => {
            output::log_failed(log_file.unwrap_or(c""), e).to(2);
            return 1;
        }
        Received::Record(Record::PidFileFailed(e)) => {
            Msg::error()
                .s("writing PROGRAM's pid into the pid file: ")
                .errno(e)
                .to(2);
            return 1;
        }
        // (Started returned above.)
        Received::Record(Record::Started) | Received::Eof => {
            "the supervisor ended before PROGRAM started"
        }
    };
    Msg::error().s(why).to(2);
    1
}

/// `--notify`, `--ready-fd`: the core waits for PROGRAM's readiness (`wait_ready_from`),
/// from the listener or a pipe whose write end is put at N; `Err` carries the exit
/// status, the message printed.
#[cfg(feature = "tool-readiness")]
fn arm_ready(
    config: &mut Config<'static>,
    ready: Option<Ready>,
    listener: Option<&NotifyListener>,
) -> Result<(), i32> {
    match (ready, listener) {
        (Some(Ready::Notify(ms)), Some(l)) => {
            config.wait_ready_from(
                ReadySource::Notify(l.as_raw_fd()),
                Duration::from_millis(ms),
            );
        }
        (Some(Ready::Fd(n, ms)), _) => {
            // The pipe's write end is put at N here, before any fork, so none of the
            // core's descriptors can take that number; PROGRAM inherits it (kept
            // through stage 8, FD_CLOEXEC cleared).
            let placed = os::pipe().and_then(|(mut r, w)| {
                if r == n {
                    let moved = os::dup_at_least(r, n + 1)?;
                    os::close(r);
                    r = moved;
                }
                if w != n {
                    os::dup2(w, n)?;
                    os::close(w);
                }
                os::set_cloexec(n, false).map(|()| r)
            });
            let r = match placed {
                Ok(r) => r,
                Err(e) => {
                    Msg::error().s("--ready-fd: ").errno(e).to(2);
                    return Err(1);
                }
            };
            if let Err(e) = config.inherit_file(n) {
                Msg::error().error_of(&e).to(2);
                return Err(1);
            }
            config.wait_ready_from(ReadySource::Pipe(r), Duration::from_millis(ms));
        }
        _ => {}
    }
    if ready.is_some() {
        // Waiting needs the fork (whatever a NOTIFY_SOCKET of our own would make of
        // `auto`); `--foreground` was refused.
        config.detach(Detach::Always);
    }
    Ok(())
}

fn parse(cur: &mut Cursor) -> Parsed<Start> {
    let mut opts = Start {
        config: Config::default(),
        program: 0,
        supervise: false,
        restart: None,
        #[cfg(feature = "tool-readiness")]
        ready: None,
        foreground: false,
        output: Output::default(),
    };
    let config = &mut opts.config;
    // Applied after the loop, whatever the order of the options.
    let mut ids: Option<ProcessIds> = None;
    let mut groups: Option<&CStr> = None;
    #[cfg(feature = "tool-privileges")]
    let mut keep = Capabilities::EMPTY;
    #[cfg(feature = "tool-privileges")]
    let mut chroot = false;
    // `--syslog[=TAG]`, or one of the options that imply it (as FreeBSD daemon(8)'s).
    #[cfg(feature = "tool-log")]
    let mut syslog = false;
    #[cfg(feature = "tool-log")]
    let mut tag: &[u8] = b"";
    #[cfg(feature = "tool-log")]
    let mut facility = Facility::DAEMON;
    #[cfg(feature = "tool-log")]
    let mut severity = Severity::NOTICE;
    #[cfg(feature = "tool-log")]
    let mut socket = syslog::DEFAULT_PATH;
    loop {
        let (name, inline) = match cur.item()? {
            None => return Err(Msg::error().s("start: PROGRAM missing").usage()),
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
        let (opt, v) = cur.option(&OPTIONS, name, inline)?;
        match opt {
            Opt::Help => {
                crate::help();
                return Err(0);
            }
            Opt::PidFile => {
                config.pid_file(v).map_err(|e| args::bad_pid_file(v, &e))?;
            }
            Opt::Chdir => {
                config
                    .working_directory(v)
                    .map_err(|_| args::bad_value("chdir", v, "empty"))?;
            }
            Opt::Umask => {
                let mask = args::octal(v.to_bytes())
                    .ok_or_else(|| args::bad_value("umask", v, "not an octal mask (0 to 777)"))?;
                config.umask(mask);
            }
            Opt::User => {
                let spec = v.to_bytes();
                let (user, group) = match spec.iter().position(|&b| b == b':') {
                    Some(colon) => (&spec[..colon], Some(&spec[colon + 1..])),
                    None => (spec, None),
                };
                ids = Some(
                    ProcessIds::from_files(user, group)
                        .map_err(|e| args::bad("user", v).detail(&e).usage())?,
                );
            }
            Opt::Groups => groups = Some(v),
            #[cfg(feature = "tool-privileges")]
            Opt::KeepCap => {
                for item in v.to_bytes().split(|&b| b == b',') {
                    let cap = Capability::parse(item).ok_or_else(|| {
                        args::bad("keep-cap", v)
                            .s("unknown capability ")
                            .v(item)
                            .usage()
                    })?;
                    keep = keep.with(cap);
                }
            }
            #[cfg(feature = "tool-privileges")]
            Opt::NoNewPrivs => {
                config.no_new_privileges(true);
            }
            #[cfg(feature = "tool-privileges")]
            Opt::Chroot => {
                config.chroot_directory(v).map_err(|e| match e.errno() {
                    Some(errno) => args::bad("chroot", v).errno(errno).usage(),
                    None => args::bad_value("chroot", v, "not an absolute path"),
                })?;
                chroot = true;
            }
            Opt::Stdin | Opt::Stdout | Opt::Stderr => {
                let set = match opt {
                    Opt::Stdin => Config::stdin,
                    Opt::Stdout => Config::stdout,
                    _ => Config::stderr,
                };
                set(config, Stdio::Path(v))
                    .map_err(|_| Msg::error().s("--").v(name).s(": empty path").usage())?;
            }
            Opt::KeepFd => {
                let fd = args::fd(v.to_bytes())
                    .ok_or_else(|| args::bad_value("keep-fd", v, "not a descriptor number"))?;
                config.inherit_file(fd).map_err(|e| match e.kind() {
                    ErrorKind::Capacity => args::bad_value("keep-fd", v, "at most 16 descriptors"),
                    _ => args::bad_value("keep-fd", v, "not an open descriptor"),
                })?;
            }
            Opt::AllowCore => {
                config.prevent_core(false);
            }
            Opt::Detach => {
                opts.foreground = v.to_bytes() == b"never";
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
            Opt::Foreground => {
                config.detach(Detach::Never);
                opts.foreground = true;
            }
            #[cfg(feature = "tool-readiness")]
            Opt::Notify | Opt::ReadyFd if opts.ready.is_some() => {
                return Err(Msg::error()
                    .s("start: one of --notify and --ready-fd")
                    .usage())
            }
            #[cfg(feature = "tool-readiness")]
            Opt::Notify => {
                let ms = match inline {
                    None => READY_TIMEOUT_MS,
                    Some(v) => ready_timeout("notify", v, v.to_bytes())?,
                };
                opts.ready = Some(Ready::Notify(ms));
            }
            #[cfg(feature = "tool-readiness")]
            Opt::ReadyFd => {
                let text = v.to_bytes();
                let (n, ms) = match text.iter().position(|&b| b == b':') {
                    Some(colon) => (
                        &text[..colon],
                        ready_timeout("ready-fd", v, &text[colon + 1..])?,
                    ),
                    None => (text, READY_TIMEOUT_MS),
                };
                let fd = args::fd(n)
                    .filter(|&fd| fd > 2)
                    .ok_or_else(|| args::bad_value("ready-fd", v, "not a descriptor above 2"))?;
                opts.ready = Some(Ready::Fd(fd, ms));
            }
            Opt::Supervise => {
                opts.supervise = true;
            }
            Opt::Restart => {
                opts.restart = Some(match inline {
                    None => RESTART_DELAY_MS,
                    Some(v) => args::seconds(v.to_bytes())
                        .filter(|&ms| ms > 0)
                        .ok_or_else(|| {
                            args::bad_value("restart", v, "not a delay in seconds (0.001 to 86400)")
                        })?,
                });
            }
            #[cfg(feature = "tool-log")]
            Opt::Log => {
                if v.to_bytes().first() != Some(&b'/') {
                    return Err(args::bad_value("log", v, "not an absolute path"));
                }
                opts.output.file = Some(v);
            }
            #[cfg(feature = "tool-log")]
            Opt::Syslog => {
                syslog = true;
                tag = inline.map_or(b"", CStr::to_bytes);
            }
            #[cfg(feature = "tool-log")]
            Opt::SyslogFacility => {
                syslog = true;
                facility = Facility::parse(v.to_bytes()).ok_or_else(|| {
                    args::bad_value("syslog-facility", v, "not a facility: kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0 to local7")
                })?;
            }
            #[cfg(feature = "tool-log")]
            Opt::SyslogPriority => {
                syslog = true;
                severity = Severity::parse(v.to_bytes()).ok_or_else(|| {
                    args::bad_value(
                        "syslog-priority",
                        v,
                        "not a priority: emerg, alert, crit, err, warning, notice, info, debug",
                    )
                })?;
            }
            #[cfg(feature = "tool-log")]
            Opt::SyslogSocket => {
                socket = v;
                syslog = true;
            }
            #[cfg(not(feature = "tool-privileges"))]
            Opt::KeepCap | Opt::NoNewPrivs | Opt::Chroot => {
                return Err(args::not_built(name, "tool-privileges"))
            }
            #[cfg(not(feature = "tool-readiness"))]
            Opt::Notify | Opt::ReadyFd => return Err(args::not_built(name, "tool-readiness")),
            #[cfg(not(feature = "tool-log"))]
            Opt::Log
            | Opt::Syslog
            | Opt::SyslogFacility
            | Opt::SyslogPriority
            | Opt::SyslogSocket => return Err(args::not_built(name, "tool-log")),
        }
    }
    #[cfg(feature = "tool-log")]
    if syslog {
        // The tag: PROGRAM's name without its directory, unless given.
        if tag.is_empty() {
            let name = cur.args.get(opts.program).map_or(&b""[..], CStr::to_bytes);
            tag = match name.iter().rposition(|&b| b == b'/') {
                Some(slash) => &name[slash + 1..],
                None => name,
            };
        }
        let to = SyslogTo {
            socket,
            facility,
            severity,
            tag,
        };
        // Made here only to check the socket's path: the supervisor makes its own.
        to.sender().map_err(|_| {
            args::bad_value(
                "syslog-socket",
                socket,
                "not a socket path (1 to 107 bytes)",
            )
        })?;
        opts.output.syslog = Some(to);
    }
    #[cfg(feature = "tool-log")]
    if (syslog || opts.output.file.is_some()) && !opts.supervise {
        return Err(Msg::error()
            .s("start: --log and --syslog need --supervise")
            .usage());
    }
    if let Some(v) = groups {
        let user = ids
            .take()
            .ok_or_else(|| Msg::error().s("start: --groups needs --user").usage())?;
        let set = match v.to_bytes() {
            b"user" => Ok(user),
            b"none" => user.with_groups(&[]),
            list => user.with_groups_from_files(list),
        };
        ids = Some(set.map_err(|e| args::bad("groups", v).detail(&e).usage())?);
    }
    #[cfg(feature = "tool-privileges")]
    if !keep.is_empty() {
        // Kept across a switch to another user only (as root, every capability stays).
        if ids.as_ref().is_none_or(|ids| ids.uid() == 0) {
            return Err(Msg::error()
                .s("start: --keep-cap needs --user, to a user other than root")
                .usage());
        }
        config.keep_capabilities(keep);
    }
    if let Some(ids) = ids {
        config.ids(ids);
    }
    #[cfg(all(feature = "tool-privileges", feature = "tool-readiness"))]
    if chroot && matches!(opts.ready, Some(Ready::Notify(_))) {
        // The private socket is under /run or TMPDIR, outside the jail.
        return Err(Msg::error()
            .s("start: --notify's socket is outside the --chroot jail: use --ready-fd")
            .usage());
    }
    #[cfg(feature = "tool-privileges")]
    if chroot {
        // Exec'd inside the jail: a name looked up here would be the host's.
        if let Some(name) = cur.args.get(opts.program) {
            if name.to_bytes().first() != Some(&b'/') {
                return Err(Msg::error()
                    .s("start: with --chroot, PROGRAM must be an absolute path: ")
                    .v(name.to_bytes())
                    .usage());
            }
        }
    }
    if opts.restart.is_some() && !opts.supervise {
        return Err(Msg::error().s("start: --restart needs --supervise").usage());
    }
    #[cfg(feature = "tool-readiness")]
    if opts.ready.is_some() && opts.foreground {
        return Err(Msg::error()
            .s("start: --notify and --ready-fd wait for a detached PROGRAM: not with --foreground or --detach never")
            .usage());
    }
    Ok(opts)
}

/// A readiness timeout, `SECS` (0.001 to 86400), in milliseconds.
#[cfg(feature = "tool-readiness")]
fn ready_timeout(name: &str, v: &CStr, text: &[u8]) -> Parsed<u64> {
    args::seconds(text)
        .filter(|&ms| ms > 0)
        .ok_or_else(|| args::bad_value(name, v, "not a timeout in seconds (0.001 to 86400)"))
}
