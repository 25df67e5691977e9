//! `allowed_outbound_hosts`: the hosts a source function may reach.

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
    /// `*`: every host.
    Any,
    /// One host, on one port or any.
    Host {
        /// Lower-case host name or address.
        host: String,
        /// The port, when the entry names one.
        port: Option<u16>,
    },
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
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16(),
        })
    }

    /// Whether a request to `host` on `port` may go out.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.entries.iter().any(|e| match e {
            Entry::Any => true,
            Entry::Host { host: h, port: p } => *h == host && p.is_none_or(|p| p == port),
        })
    }
}
