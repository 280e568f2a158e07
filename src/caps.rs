//! Linux capabilities (capabilities(7)) by name and number, and fixed-size sets of them.
//!
//! Stage 3 keeps a [`Capabilities`] set across the user switch
//! ([`Config::keep_capabilities`](crate::Config::keep_capabilities)): a daemon that
//! drops to `nobody` can still bind port 53 with [`Capability::NET_BIND_SERVICE`], and so
//! can a program it `exec`s (the set is raised into the ambient set).
//!
//! ```
//! use pandaemonium::{Capabilities, Capability};
//!
//! let cap = Capability::parse(b"cap_net_bind_service").unwrap();
//! assert_eq!(cap, Capability::NET_BIND_SERVICE);
//! assert_eq!(Capability::parse(b"NET_BIND_SERVICE"), Some(cap));
//! assert_eq!(cap.name(), "cap_net_bind_service");
//! let set = Capabilities::EMPTY.with(cap);
//! assert_eq!(set.bits(), 1 << 10);
//! assert!(set.contains(cap) && !set.contains(Capability::NET_RAW));
//! ```

macro_rules! capabilities {
    ($($number:literal $name:ident $text:literal,)*) => {
        impl Capability {
            $(
                #[doc = concat!("`CAP_", stringify!($name), "` (", stringify!($number), ").")]
                pub const $name: Capability = Capability($number);
            )*
        }

        /// The names, by number (`cap_` and lower case, as libcap and systemd print
        /// them), packed one after another, each ended by a space: one string, not a
        /// table of pointers (the largest constant of the tool).
        const NAMES: &str = concat!($($text, " "),*);
    };
}

/// One capability, by its number (`CAP_NET_BIND_SERVICE` is 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability(u8);

capabilities! {
    0 CHOWN "cap_chown",
    1 DAC_OVERRIDE "cap_dac_override",
    2 DAC_READ_SEARCH "cap_dac_read_search",
    3 FOWNER "cap_fowner",
    4 FSETID "cap_fsetid",
    5 KILL "cap_kill",
    6 SETGID "cap_setgid",
    7 SETUID "cap_setuid",
    8 SETPCAP "cap_setpcap",
    9 LINUX_IMMUTABLE "cap_linux_immutable",
    10 NET_BIND_SERVICE "cap_net_bind_service",
    11 NET_BROADCAST "cap_net_broadcast",
    12 NET_ADMIN "cap_net_admin",
    13 NET_RAW "cap_net_raw",
    14 IPC_LOCK "cap_ipc_lock",
    15 IPC_OWNER "cap_ipc_owner",
    16 SYS_MODULE "cap_sys_module",
    17 SYS_RAWIO "cap_sys_rawio",
    18 SYS_CHROOT "cap_sys_chroot",
    19 SYS_PTRACE "cap_sys_ptrace",
    20 SYS_PACCT "cap_sys_pacct",
    21 SYS_ADMIN "cap_sys_admin",
    22 SYS_BOOT "cap_sys_boot",
    23 SYS_NICE "cap_sys_nice",
    24 SYS_RESOURCE "cap_sys_resource",
    25 SYS_TIME "cap_sys_time",
    26 SYS_TTY_CONFIG "cap_sys_tty_config",
    27 MKNOD "cap_mknod",
    28 LEASE "cap_lease",
    29 AUDIT_WRITE "cap_audit_write",
    30 AUDIT_CONTROL "cap_audit_control",
    31 SETFCAP "cap_setfcap",
    32 MAC_OVERRIDE "cap_mac_override",
    33 MAC_ADMIN "cap_mac_admin",
    34 SYSLOG "cap_syslog",
    35 WAKE_ALARM "cap_wake_alarm",
    36 BLOCK_SUSPEND "cap_block_suspend",
    37 AUDIT_READ "cap_audit_read",
    38 PERFMON "cap_perfmon",
    39 BPF "cap_bpf",
    40 CHECKPOINT_RESTORE "cap_checkpoint_restore",
}

impl Capability {
    /// The capability numbered `n` (0 to 63: what a [`Capabilities`] set holds; numbers
    /// past [`CHECKPOINT_RESTORE`](Self::CHECKPOINT_RESTORE) are for newer kernels).
    pub const fn from_number(n: u8) -> Option<Capability> {
        if n < 64 {
            Some(Capability(n))
        } else {
            None
        }
    }

    /// Its number.
    pub const fn number(self) -> u8 {
        self.0
    }

    /// A capability by name, as systemd, libcap and the kernel headers spell it, in any
    /// case, with or without the `cap_` prefix (`NET_BIND_SERVICE`,
    /// `cap_net_bind_service`, `CAP_NET_BIND_SERVICE`), or by its decimal number.
    /// `None` for anything else.
    pub fn parse(name: &[u8]) -> Option<Capability> {
        if let Some(n) = crate::decimal::parse_u32(name) {
            return u8::try_from(n).ok().and_then(Capability::from_number);
        }
        let bare = match name {
            [c, a, p, b'_', rest @ ..] if same(&[*c, *a, *p], b"cap") => rest,
            _ => name,
        };
        names()
            .position(|n| same(bare, &n.as_bytes()[4..]))
            .map(|i| Capability(i as u8))
    }

    /// Its name (`cap_net_bind_service`), or `cap_?` for a number this crate has no
    /// name for.
    pub fn name(self) -> &'static str {
        names().nth(usize::from(self.0)).unwrap_or("cap_?")
    }
}

/// The names in number order.
fn names() -> impl Iterator<Item = &'static str> {
    NAMES.split_terminator(' ')
}

/// Whether `a` is `lower` in any case (`lower` is lower case).
fn same(a: &[u8], lower: &[u8]) -> bool {
    a.len() == lower.len()
        && a.iter()
            .zip(lower)
            .all(|(x, y)| x.to_ascii_lowercase() == *y)
}

/// A set of capabilities, as the kernel holds one: a 64-bit mask (bit N is capability
/// N). Plain data, no allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u64);

impl Capabilities {
    /// The empty set.
    pub const EMPTY: Capabilities = Capabilities(0);

    /// The set with `cap` added.
    #[must_use]
    pub const fn with(self, cap: Capability) -> Capabilities {
        Capabilities(self.0 | 1 << cap.0)
    }

    /// The set of these bits (bit N: capability N), as `/proc/PID/status` prints it
    /// (`CapEff: 0000000000000400` is [`NET_BIND_SERVICE`](Capability::NET_BIND_SERVICE)).
    pub const fn from_bits(bits: u64) -> Capabilities {
        Capabilities(bits)
    }

    /// The mask.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether `cap` is in the set.
    pub const fn contains(self, cap: Capability) -> bool {
        self.0 & 1 << cap.0 != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The capabilities in the set, by number.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        (0..64u8).map(Capability).filter(move |&c| self.contains(c))
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(caps: I) -> Capabilities {
        caps.into_iter()
            .fold(Capabilities::EMPTY, Capabilities::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_its_number_in_every_spelling() {
        assert_eq!(names().count(), 41);
        for (i, name) in names().enumerate() {
            let cap = Capability(i as u8);
            assert_eq!(cap.name(), name);
            assert_eq!(Capability::parse(name.as_bytes()), Some(cap), "{name}");
            let mut upper = [0u8; 32];
            let upper = &mut upper[..name.len()];
            upper.copy_from_slice(name.as_bytes());
            upper.make_ascii_uppercase();
            assert_eq!(Capability::parse(upper), Some(cap), "{name}");
            assert_eq!(Capability::parse(&upper[4..]), Some(cap), "{name}");
            assert_eq!(
                Capability::parse(&name.as_bytes()[4..]),
                Some(cap),
                "{name}"
            );
        }
        assert_eq!(Capability::NET_BIND_SERVICE.number(), 10);
        assert_eq!(Capability::CHECKPOINT_RESTORE.number(), 40);
        assert_eq!(Capability::SYS_RESOURCE.name(), "cap_sys_resource");
    }

    #[test]
    fn numbers_parse_up_to_63_and_nothing_else_does() {
        assert_eq!(Capability::parse(b"10"), Some(Capability::NET_BIND_SERVICE));
        assert_eq!(Capability::parse(b"63").map(Capability::number), Some(63));
        assert_eq!(
            Capability::parse(b"63").map(Capability::name),
            Some("cap_?")
        );
        for bad in [
            &b"64"[..],
            b"300",
            b"",
            b"cap_",
            b"cap",
            b"net_bind",
            b"cap_net_bind_service ",
            b"capnet_bind_service",
            b"cap_cap_chown",
        ] {
            assert_eq!(Capability::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Capability::from_number(64), None);
    }

    #[test]
    fn a_set_holds_exactly_what_was_added() {
        let set: Capabilities = [Capability::NET_BIND_SERVICE, Capability(63), Capability(0)]
            .into_iter()
            .collect();
        assert_eq!(set.bits(), 1 << 63 | 1 << 10 | 1);
        let back: heapless::Vec<u8, 4> = set.iter().map(Capability::number).collect();
        assert_eq!(&back[..], &[0, 10, 63]);
        assert!(!set.is_empty() && Capabilities::EMPTY.is_empty());
        assert!(!set.contains(Capability::NET_RAW));
        assert_eq!(
            Capabilities::from_bits(0x400),
            Capabilities::EMPTY.with(Capability(10))
        );
        // Adding one already there keeps it (a union, not a toggle).
        assert_eq!(set.with(Capability::NET_BIND_SERVICE), set);
    }
}
