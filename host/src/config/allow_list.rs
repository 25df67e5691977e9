//! `allowed_outbound_hosts`: what a source function may reach. A request's
//! host is matched against the entries ([`AllowList::allows`]); every
//! address it resolves to is checked again before connecting
//! ([`AllowList::admits`]): an internal address (loopback, private,
//! link-local, unspecified, cloud metadata) only when an entry names that
//! address, or `localhost` for a loopback one. `*` never includes them.

mod address;

use std::net::IpAddr;

pub use self::address::InternalAddress;

/// An `allowed_outbound_hosts` entry that is not `*`, `host` or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not `*`, `host` or `host:port`")]
pub struct BadEntry(pub String);

/// Hosts a source function may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

/// One parsed entry of an [`AllowList`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `*`: every host name, and every address that is not internal.
    Any,
    /// One host, on one port or any.
    Host {
        /// The host.
        host: Target,
        /// The port, when the entry names one.
        port: Option<u16>,
    },
}

/// A host as an entry or a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A host name, lower-case.
    Name(String),
    /// An IP address (IPv4 written as IPv6 is kept as IPv4).
    Ip(IpAddr),
}

impl Target {
    /// The host part of a URI or an entry: an IPv4 address, an IPv6
    /// address in brackets, or a name.
    pub fn parse(host: &str) -> Self {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match bare.parse::<IpAddr>() {
            Ok(ip) => Self::Ip(ip.to_canonical()),
            Err(_) => Self::Name(host.to_ascii_lowercase()),
        }
    }
}

impl AllowList {
    /// Parse the binding's list.
    ///
    /// # Errors
    /// The first bad entry.
    pub fn new(entries: &[String]) -> Result<Self, BadEntry> {
        Ok(Self {
            entries: entries
                .iter()
                .map(|e| Self::parse_entry(e))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Parse one entry: `*`, `host` or `host:port` (a scheme prefix such as
    /// `https://` is accepted and ignored).
    ///
    /// # Errors
    /// When `entry` is none of these.
    pub fn parse_entry(entry: &str) -> Result<Entry, BadEntry> {
        let e = entry.trim();
        if e == "*" {
            return Ok(Entry::Any);
        }
        let e = e.split_once("://").map_or(e, |(_, rest)| rest);
        let e = e.trim_end_matches('/');
        let authority: http::uri::Authority = e.parse().map_err(|_| BadEntry(entry.to_owned()))?;
        if authority.host().is_empty() || e.contains('@') {
            return Err(BadEntry(entry.to_owned()));
        }
        Ok(Entry::Host {
            host: Target::parse(authority.host()),
            port: authority.port_u16(),
        })
    }

    /// Whether a request to `host` (as the URI writes it) on `port` may go
    /// out. The addresses it resolves to are checked with
    /// [`AllowList::admits`].
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = Target::parse(host);
        self.entries.iter().any(|e| match e {
            Entry::Any => true,
            Entry::Host { host: h, port: p } => *h == host && p.is_none_or(|p| p == port),
        })
    }

    /// Whether a connection to `ip` on `port` may be opened: a public
    /// address always (its name was allowed), an internal one only when an
    /// entry names that address, or `localhost` for a loopback address.
    ///
    /// # Errors
    /// What the refused address reaches.
    pub fn admits(&self, ip: IpAddr, port: u16) -> Result<(), InternalAddress> {
        let Some(internal) = InternalAddress::of(ip) else {
            return Ok(());
        };
        let ip = ip.to_canonical();
        let named = self.entries.iter().any(|e| match e {
            Entry::Any => false,
            Entry::Host { host, port: p } => {
                p.is_none_or(|p| p == port)
                    && match host {
                        Target::Ip(named) => *named == ip,
                        Target::Name(name) => {
                            internal == InternalAddress::Loopback && name == "localhost"
                        }
                    }
            }
        });
        if named {
            Ok(())
        } else {
            Err(internal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::new(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn entries_match_host_and_port() {
        let a = list(&["api.example.com", "127.0.0.1:8080", "[::1]:9"]);
        assert!(a.allows("API.example.com", 443));
        assert!(a.allows("127.0.0.1", 8080));
        assert!(!a.allows("127.0.0.1", 8081));
        assert!(a.allows("[::1]", 9));
        assert!(a.allows("[::ffff:127.0.0.1]", 8080));
        assert!(!a.allows("example.com", 443));
        assert!(list(&["*"]).allows("x", 1));
        assert!(!AllowList::default().allows("127.0.0.1", 80));
        assert!(list(&["https://h:1/"]).allows("h", 1));
        assert!(AllowList::new(&["a b".into()]).is_err());
    }

    #[test]
    fn a_star_admits_public_addresses_only() {
        let any = list(&["*"]);
        assert_eq!(any.admits(ip("93.184.216.34"), 443), Ok(()));
        assert_eq!(any.admits(ip("2606:4700::1111"), 443), Ok(()));
        for (addr, why) in [
            ("127.0.0.1", InternalAddress::Loopback),
            ("::1", InternalAddress::Loopback),
            ("0.0.0.0", InternalAddress::Unspecified),
            ("10.0.0.7", InternalAddress::Private),
            ("fd12::1", InternalAddress::Private),
            ("169.254.1.1", InternalAddress::LinkLocal),
            ("169.254.169.254", InternalAddress::Metadata),
            ("fd00:ec2::254", InternalAddress::Metadata),
        ] {
            assert_eq!(any.admits(ip(addr), 80), Err(why), "{addr}");
        }
    }

    #[test]
    fn a_name_admits_public_addresses_only() {
        // A listed name that resolves to an internal address (a DNS record
        // pointing at 127.0.0.1, a rebinding attack) does not reach it.
        let named = list(&["api.example.com"]);
        assert_eq!(named.admits(ip("93.184.216.34"), 443), Ok(()));
        assert_eq!(
            named.admits(ip("127.0.0.1"), 443),
            Err(InternalAddress::Loopback)
        );
        assert_eq!(
            named.admits(ip("192.168.0.1"), 443),
            Err(InternalAddress::Private)
        );
    }

    #[test]
    fn an_internal_address_is_admitted_when_named() {
        let a = list(&["127.0.0.1:8080", "10.1.2.3", "[fd00:ec2::254]", "*"]);
        assert_eq!(a.admits(ip("127.0.0.1"), 8080), Ok(()));
        assert_eq!(a.admits(ip("::ffff:127.0.0.1"), 8080), Ok(()));
        assert_eq!(
            a.admits(ip("127.0.0.1"), 8081),
            Err(InternalAddress::Loopback)
        );
        assert_eq!(
            a.admits(ip("127.0.0.2"), 8080),
            Err(InternalAddress::Loopback)
        );
        assert_eq!(a.admits(ip("::1"), 8080), Err(InternalAddress::Loopback));
        assert_eq!(a.admits(ip("10.1.2.3"), 1), Ok(()));
        assert_eq!(a.admits(ip("10.1.2.4"), 1), Err(InternalAddress::Private));
        assert_eq!(a.admits(ip("fd00:ec2::254"), 80), Ok(()));
    }

    #[test]
    fn localhost_admits_loopback_only() {
        let a = list(&["localhost:9000"]);
        assert!(a.allows("LOCALHOST", 9000));
        assert_eq!(a.admits(ip("127.0.0.1"), 9000), Ok(()));
        assert_eq!(a.admits(ip("::1"), 9000), Ok(()));
        assert_eq!(
            a.admits(ip("127.0.0.1"), 9001),
            Err(InternalAddress::Loopback)
        );
        assert_eq!(
            a.admits(ip("10.0.0.1"), 9000),
            Err(InternalAddress::Private)
        );
        assert_eq!(
            a.admits(ip("0.0.0.0"), 9000),
            Err(InternalAddress::Unspecified)
        );
    }
}
