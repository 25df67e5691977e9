//! Which addresses are internal: the host itself, its networks, and the
//! cloud's metadata service. A source function reaches them only when its
//! allow-list names them (see [`super::AllowList::admits`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an internal address reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalAddress {
    /// `127.0.0.0/8`, `::1`: the host itself, its admin API included.
    Loopback,
    /// `0.0.0.0/8`, `::`: connecting to it reaches the host itself.
    Unspecified,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), shared address space
    /// (`100.64/10`), IPv6 unique local (`fc00::/7`) and site-local
    /// (`fec0::/10`) addresses.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud metadata service (`169.254.169.254`, `fd00:ec2::254`,
    /// `100.100.100.200`), which hands out the machine's credentials.
    Metadata,
}

impl InternalAddress {
    /// What `ip` reaches, or `None` for a public address. IPv4 addresses
    /// written as IPv6 (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`)
    /// are classified as the IPv4 address they carry.
    pub fn of(ip: IpAddr) -> Option<Self> {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => Self::of_v6(v6),
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Option<Self> {
        let [a, b, ..] = ip.octets();
        if matches!(ip.octets(), [169, 254, 169, 254] | [100, 100, 100, 200]) {
            Some(Self::Metadata)
        } else if ip.is_loopback() {
            Some(Self::Loopback)
        } else if a == 0 {
            Some(Self::Unspecified)
        } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
            Some(Self::Private)
        } else if ip.is_link_local() {
            Some(Self::LinkLocal)
        } else {
            None
        }
    }

    fn of_v6(ip: Ipv6Addr) -> Option<Self> {
        const METADATA: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
        let s = ip.segments();
        if ip == METADATA {
            Some(Self::Metadata)
        } else if ip.is_loopback() {
            Some(Self::Loopback)
        } else if ip.is_unspecified() {
            Some(Self::Unspecified)
        } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
            // NAT64's well-known prefix: a gateway forwards to the IPv4
            // address in the low 32 bits.
            let ([a, b], [c, d]) = (s[6].to_be_bytes(), s[7].to_be_bytes());
            Self::of_v4(Ipv4Addr::new(a, b, c, d))
        } else if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfec0 {
            Some(Self::Private)
        } else if (s[0] & 0xffc0) == 0xfe80 {
            Some(Self::LinkLocal)
        } else {
            None
        }
    }
}

impl std::fmt::Display for InternalAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Loopback => "loopback",
            Self::Unspecified => "unspecified",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::Metadata => "cloud metadata",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<InternalAddress> {
        InternalAddress::of(s.parse().unwrap())
    }

    #[test]
    fn internal_addresses_are_classified() {
        use InternalAddress::*;
        for (ip, want) in [
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("64:ff9b::7f00:1", Loopback),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("::ffff:10.1.2.3", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("169.254.0.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("169.254.169.254", Metadata),
            ("::ffff:169.254.169.254", Metadata),
            ("fd00:ec2::254", Metadata),
            ("100.100.100.200", Metadata),
        ] {
            assert_eq!(class(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_not_internal() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "192.169.0.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "::ffff:8.8.8.8",
            "fe00::1",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }
}
