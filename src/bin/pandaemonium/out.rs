//! Messages without `core::fmt`: `fmt`'s machinery and the `Arguments` at every call
//! site would be about a sixth of this binary. A [`Msg`] is the core's `Line` (a stack
//! buffer written with a single `write(2)`, so concurrent writers never interleave)
//! with the tool's vocabulary: values shortened in the middle, signals, seconds.
//!
//! ```text
//! Msg::error().s("exec ").c(name).s(": ").errno(e).to(2);
//! ```
//!
//! The larger methods are `#[inline(never)]` (and the usage-error helpers in `args`
//! `#[cold]` too): one copy each instead of one per call site, about 1 KiB of code.

use core::ffi::{c_int, CStr};

use pandaemonium::{os, Errno, Error, Line, Signal};

/// A line being built (a core [`Line`]); bytes beyond the capacity are dropped.
pub struct Msg(Line);

/// The longest user value a message shows whole ([`Msg::v`]).
pub const VALUE_MAX: usize = 160;

impl Msg {
    /// An empty line.
    pub fn new() -> Msg {
        Msg(Line::new())
    }

    /// `pandaemonium: exec PROGRAM: REASON`, to go on or end.
    #[cold]
    #[inline(never)]
    pub fn exec_failed(name: &CStr, e: Errno) -> Msg {
        let mut m = Msg::error();
        m.s("exec ").v(name.to_bytes()).s(": ").errno(e);
        m
    }

    /// A line starting `pandaemonium: COMMAND: `.
    #[inline(never)]
    pub fn command(command: &str) -> Msg {
        let mut m = Msg::error();
        m.s(command).s(": ");
        m
    }

    /// A line starting `pandaemonium: COMMAND: PATH` (a pid file, as given).
    #[inline(never)]
    pub fn about(command: &str, path: &CStr) -> Msg {
        let mut m = Msg::command(command);
        m.c(path);
        m
    }

    /// A line starting `pandaemonium: `.
    #[inline(never)]
    pub fn error() -> Msg {
        let mut m = Msg::new();
        m.s("pandaemonium: ");
        m
    }

    /// Raw bytes (paths and names are shown as they are, as C tools do).
    pub fn b(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.push(bytes);
        self
    }

    /// A value the user gave (a path, an option, an operand), shortened in the middle
    /// past [`VALUE_MAX`] bytes, so that what follows it (the reason) always fits.
    #[inline(never)]
    pub fn v(&mut self, value: &[u8]) -> &mut Self {
        if value.len() <= VALUE_MAX {
            return self.b(value);
        }
        let head = VALUE_MAX / 2;
        let tail = VALUE_MAX - head - 3;
        self.b(&value[..head])
            .b(b"...")
            .b(&value[value.len() - tail..])
    }

    /// Text.
    pub fn s(&mut self, text: &str) -> &mut Self {
        self.b(text.as_bytes())
    }

    /// A C string.
    pub fn c(&mut self, text: &CStr) -> &mut Self {
        self.b(text.to_bytes())
    }

    /// A number (pids, milliseconds: far below `i64::MAX`).
    pub fn n(&mut self, n: u64) -> &mut Self {
        self.i(n as i64)
    }

    /// A signed number.
    pub fn i(&mut self, n: i64) -> &mut Self {
        self.0.push_dec(n);
        self
    }

    /// `No such file or directory (os error 2)`, as `Errno`'s `Display` and std show it.
    pub fn errno(&mut self, e: Errno) -> &mut Self {
        self.0.push_errno(e);
        self
    }

    /// `SIGTERM`, or `signal 34`.
    pub fn signal(&mut self, sig: c_int) -> &mut Self {
        match Signal::new(sig).ok().and_then(Signal::name) {
            Some(name) => self.s("SIG").s(name),
            None => self.s("signal ").i(i64::from(sig)),
        }
    }

    /// Milliseconds as seconds: `1`, `0.25`.
    pub fn secs(&mut self, ms: u64) -> &mut Self {
        self.n(ms / 1000);
        let mut frac = ms % 1000;
        if frac != 0 {
            self.s(".");
            let mut scale = 100;
            while frac != 0 {
                self.n(frac / scale);
                frac %= scale;
                scale /= 10;
            }
        }
        self
    }

    /// A core error as its `Display` shows it: `stage 5 (working directory): chdir
    /// /x: No such file or directory (os error 2)` (the core's `Error::write_to`).
    pub fn error_of(&mut self, e: &Error) -> &mut Self {
        self.0.push_error(e);
        self
    }

    /// A core error without its stage: `open /x.pid: Permission denied (os error 13)`.
    pub fn detail(&mut self, e: &Error) -> &mut Self {
        self.s(e.detail()).errno_of(e)
    }

    fn errno_of(&mut self, e: &Error) -> &mut Self {
        match e.errno() {
            Some(errno) => self.s(": ").errno(errno),
            None => self,
        }
    }

    /// Ends the line and writes it to `fd` (errors ignored: nothing better to do).
    pub fn to(&mut self, fd: c_int) {
        let _ = self.0.write_line(fd);
    }

    /// Ends a usage error: the hint, the line to stderr; the exit status 2.
    #[inline(never)]
    pub fn usage(&mut self) -> i32 {
        self.s(" (see pandaemonium --help)").to(2);
        2
    }
}

/// Writes `text` to `fd` as it is.
pub fn text(fd: c_int, text: &str) {
    let _ = os::write_all(fd, text.as_bytes());
}
