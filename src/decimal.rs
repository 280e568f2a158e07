//! Integers to and from ASCII decimal without allocating (pid file contents, `/proc`
//! names, messages): for `no_std` programs that print without `core::fmt`.
//!
//! ```
//! use pandaemonium::decimal::{parse_u32, parse_u64, Dec};
//!
//! assert_eq!(Dec::new(-42).as_bytes(), b"-42");
//! assert_eq!(parse_u32(b"4194304"), Some(4194304));
//! assert_eq!(parse_u32(b"12a"), None);
//! assert_eq!(Dec::unsigned(u64::MAX).as_bytes(), b"18446744073709551615");
//! assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
//! ```

/// A decimal rendering of an integer in a fixed stack buffer (rustix's `DecInt` idea).
#[derive(Clone, Debug)]
pub struct Dec {
    // Text, not bytes: `as_str` needs no UTF-8 check (`str::from_utf8` is 500 bytes of
    // code that a no_std binary need not link for digits).
    text: heapless::String<20, u8>,
}

impl Dec {
    /// Renders `n` (an `i64` covers pids, fds, uids and errnos). Out of line: inlined,
    /// each of its dozen callers would get its own copy of the buffer set-up.
    #[inline(never)]
    pub fn new(n: i64) -> Dec {
        Dec::digits(n.unsigned_abs(), n < 0)
    }

    /// Renders an unsigned `n` (microseconds, sizes): every `u64`, up to
    /// `18446744073709551615`.
    pub fn unsigned(n: u64) -> Dec {
        Dec::digits(n, false)
    }

    /// `magnitude`'s digits, after a `-` when `negative`: inlined into `new` and
    /// `unsigned`, so that a program using one links one copy.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn digits(magnitude: u64, negative: bool) -> Dec {
        let mut buf = [0; 20];
        let start = render(&mut buf, magnitude, negative);
        let mut text = heapless::String::new();
        // SAFETY: `render` writes only ASCII digits and `-` (one byte of UTF-8 each);
        // a check would link core's UTF-8 validation (500 bytes) for digits.
        let digits = unsafe { core::str::from_utf8_unchecked(&buf[start..]) };
        // 20 characters at most: they fit.
        let _ = text.push_str(digits);
        Dec { text }
    }

    /// The digits.
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The digits, as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Writes `magnitude`, after a `-` when `negative`, at the end of `buf` (20 bytes hold
/// any `i64` and any `u64`) and returns where it starts. Out of line, and through `black_box` the buffer's length is unknown here:
/// knowing it, an optimising build unrolls the digit loop twenty times into every caller.
#[inline(never)]
fn render(buf: &mut [u8], magnitude: u64, negative: bool) -> usize {
    let buf = core::hint::black_box(buf);
    let mut v = magnitude;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        buf[i] = b'-';
    }
    i
}

/// Parses a non-negative decimal that fills `s` entirely; `None` on anything else
/// (empty, sign, junk, or more than `u32::MAX`).
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    u32::try_from(v).ok()
}

/// Parses a non-negative decimal that fills `s` entirely; `None` on anything else
/// (empty, sign, junk, or more than `u64::MAX`). Leading zeros are allowed.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        assert_eq!(Dec::new(0).as_bytes(), b"0");
        assert_eq!(Dec::new(4194304).as_bytes(), b"4194304");
        assert_eq!(Dec::new(-13).as_bytes(), b"-13");
        assert_eq!(Dec::new(i64::MIN).as_bytes(), b"-9223372036854775808");
        assert_eq!(Dec::unsigned(0).as_bytes(), b"0");
        assert_eq!(Dec::unsigned(u64::MAX).as_bytes(), b"18446744073709551615");
    }

    #[test]
    fn parses() {
        assert_eq!(parse_u32(b"123"), Some(123));
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"12a"), None);
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"99999999999999999999"), None);
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"000000000000000000000042"), Some(42));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"+1"), None);
    }
}
