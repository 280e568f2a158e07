//! Command-line parsing over the process's own `argv`: no copies, no allocation.
//!
//! Options are GNU-style long options, `--name VALUE` or `--name=VALUE`; `--` ends
//! them. Every error is a usage error: one line on stderr, exit status 2.

use core::ffi::{c_int, CStr};

use crate::out::Msg;
use pandaemonium::decimal::parse_u32;
use pandaemonium::MainArgs;

/// Reads `argv` from a position on.
pub struct Cursor {
    pub args: MainArgs,
    pub next: usize,
}

/// One command-line item.
pub enum Item {
    /// `--name` or `--name=value` (also `-h`, as `help`).
    Opt {
        name: &'static [u8],
        inline: Option<&'static CStr>,
    },
    /// `--`: the operands follow.
    End,
    /// Anything not starting with `-` (or `-` alone), at this index.
    Operand(usize),
}

/// `Err` carries the exit status, the message already printed.
pub type Parsed<T> = Result<T, i32>;

/// How an option takes its value.
#[derive(Clone, Copy)]
pub enum Kind {
    /// `--name VALUE` or `--name=VALUE`.
    Value,
    /// `--name` alone.
    Flag,
    /// `--name` or `--name=VALUE`, never the next argument.
    Inline,
}

/// A command's options: their names, each ended by a NUL, and in the same order what
/// each one is and how it takes its value. [`options!`] writes both from one list:
/// one scan of a few hundred bytes instead of a comparison per name.
pub struct Table<T: 'static> {
    pub names: &'static [u8],
    pub opts: &'static [(T, Kind)],
}

/// `enum NAME in TABLE { Variant = "option-name" Kind, ... }`: the enum of a command's
/// options and its [`Table`].
macro_rules! options {
    ($(#[$meta:meta])* enum $enum:ident in $table:ident {
        $($(#[$vmeta:meta])* $variant:ident = $name:literal $kind:ident,)*
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        enum $enum {
            $($(#[$vmeta])* $variant,)*
        }
        const $table: crate::args::Table<$enum> = crate::args::Table {
            names: concat!($($name, "\0",)*).as_bytes(),
            opts: &[$(($enum::$variant, crate::args::Kind::$kind),)*],
        };
    };
}
pub(crate) use options;

/// The index of `name` among `names` (each ended by a NUL).
#[inline(never)]
fn position(names: &[u8], name: &[u8]) -> Option<usize> {
    names.split(|&b| b == 0).position(|n| n == name)
}

impl Cursor {
    /// The next item, or `None` at the end.
    pub fn item(&mut self) -> Parsed<Option<Item>> {
        let Some(arg) = self.args.get(self.next) else {
            return Ok(None);
        };
        let at = self.next;
        self.next += 1;
        let bytes = arg.to_bytes();
        if bytes == b"--" {
            return Ok(Some(Item::End));
        }
        if bytes == b"-h" {
            return Ok(Some(Item::Opt {
                name: b"help",
                inline: None,
            }));
        }
        let Some(rest) = bytes.strip_prefix(b"--") else {
            if bytes.len() > 1 && bytes[0] == b'-' {
                return Err(Msg::error().s("unknown option ").v(arg.to_bytes()).usage());
            }
            return Ok(Some(Item::Operand(at)));
        };
        Ok(Some(match rest.iter().position(|&b| b == b'=') {
            Some(eq) => {
                // The text after '=' is itself a NUL-terminated suffix of the argument.
                let tail = &arg.to_bytes_with_nul()[2 + eq + 1..];
                Item::Opt {
                    name: &rest[..eq],
                    inline: CStr::from_bytes_until_nul(tail).ok(),
                }
            }
            None => Item::Opt {
                name: rest,
                inline: None,
            },
        }))
    }

    /// The option `name` of `table` (a usage error if it has none such) and its value:
    /// for a [`Kind::Value`] option the inline `=value` or the next argument; for a
    /// flag none (refusing `--name=value`); for a [`Kind::Inline`] option the empty
    /// string (the caller reads `inline`).
    pub fn option<T: Copy>(
        &mut self,
        table: &Table<T>,
        name: &'static [u8],
        inline: Option<&'static CStr>,
    ) -> Parsed<(T, &'static CStr)> {
        let Some(&(opt, kind)) = position(table.names, name).and_then(|i| table.opts.get(i)) else {
            return Err(unknown(name));
        };
        let value = match kind {
            Kind::Value => self.value(name, inline)?,
            Kind::Flag => {
                no_value(name, inline)?;
                c""
            }
            Kind::Inline => c"",
        };
        Ok((opt, value))
    }

    /// The value of option `name`: the inline `=value`, else the next argument.
    #[inline(never)]
    pub fn value(&mut self, name: &[u8], inline: Option<&'static CStr>) -> Parsed<&'static CStr> {
        if let Some(v) = inline {
            return Ok(v);
        }
        match self.args.get(self.next) {
            Some(v) => {
                self.next += 1;
                Ok(v)
            }
            None => Err(Msg::error()
                .s("option --")
                .v(name)
                .s(" needs a value")
                .usage()),
        }
    }
}

/// Refuses `--name=value` for a flag that takes none.
#[inline(never)]
pub fn no_value(name: &[u8], inline: Option<&'static CStr>) -> Parsed<()> {
    match inline {
        None => Ok(()),
        Some(_) => Err(Msg::error()
            .s("option --")
            .v(name)
            .s(" takes no value")
            .usage()),
    }
}

/// The usage error for an option this command does not know.
#[cold]
#[inline(never)]
pub fn unknown(name: &[u8]) -> i32 {
    Msg::error().s("unknown option --").v(name).usage()
}

/// The usage error for an option this build leaves out: `--name: not in this build
/// (cargo feature FEATURE)`.
#[cold]
#[inline(never)]
#[allow(dead_code)] // every feature on
pub fn not_built(name: &[u8], feature: &str) -> i32 {
    Msg::error()
        .s("--")
        .v(name)
        .s(": not in this build (cargo feature ")
        .s(feature)
        .s(")")
        .usage()
}

/// The start of the usage error for a value option `--name` refuses: `--name VALUE: `.
#[cold]
#[inline(never)]
pub fn bad(name: &str, value: &CStr) -> Msg {
    let mut m = Msg::error();
    m.s("--").s(name).s(" ").v(value.to_bytes()).s(": ");
    m
}

/// The usage error for a value an option refuses.
#[cold]
#[inline(never)]
pub fn bad_value(name: &str, value: &CStr, why: &str) -> i32 {
    bad(name, value).s(why).usage()
}

/// The usage error for a pid-file path the core refuses (relative, too long).
#[cold]
#[inline(never)]
pub fn bad_pid_file(value: &CStr, e: &pandaemonium::Error) -> i32 {
    let why = match e.kind() {
        pandaemonium::ErrorKind::Capacity => "longer than 255 bytes",
        _ => "not an absolute path",
    };
    bad_value("pid-file", value, why)
}

/// The usage error for an unexpected operand.
#[cold]
#[inline(never)]
pub fn unexpected(command: &str, cur: &Cursor) -> i32 {
    let what = cur.args.get(cur.next - 1).unwrap_or(c"");
    Msg::error()
        .s(command)
        .s(": unexpected argument ")
        .v(what.to_bytes())
        .usage()
}

/// A file-mode mask in octal, at most `777`.
pub fn octal(text: &[u8]) -> Option<libc::mode_t> {
    if text.is_empty() || text.len() > 4 {
        return None;
    }
    let mut n: libc::mode_t = 0;
    for &b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        n = n * 8 + libc::mode_t::from(b - b'0');
    }
    (n <= 0o777).then_some(n)
}

/// A descriptor number.
pub fn fd(text: &[u8]) -> Option<c_int> {
    parse_u32(text).and_then(|n| c_int::try_from(n).ok())
}

/// Seconds, with up to three decimals (`10`, `0.5`, `1.25`), as milliseconds; at most
/// a day.
pub fn seconds(text: &[u8]) -> Option<u64> {
    let (whole, frac) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    if frac.len() > 3 || (whole.is_empty() && frac.is_empty()) {
        return None;
    }
    let secs = if whole.is_empty() {
        0
    } else {
        u64::from(parse_u32(whole)?)
    };
    let mut ms = 0;
    for i in 0..3 {
        let d = match frac.get(i) {
            Some(b) if b.is_ascii_digit() => u64::from(b - b'0'),
            Some(_) => return None,
            None => 0,
        };
        ms = ms * 10 + d;
    }
    let total = secs.checked_mul(1000)?.checked_add(ms)?;
    (total <= 86_400_000).then_some(total)
}
