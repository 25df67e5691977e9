//! Outbound HTTP for source functions: `wasi:http/outgoing-handler`,
//! allowed only to the hosts the binding lists (like Spin's
//! `allowed_outbound_hosts`). A refused request fails inside the guest with
//! `error-code.http-request-denied`; the host logs and counts it.

use std::future::Future;
use std::sync::Arc;

use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::metrics::SourceMetrics;

/// Hosts a source function may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    Any,
    Host { host: String, port: Option<u16> },
}

impl AllowList {
    /// Parse the binding's list.
    ///
    /// # Errors
    /// A message naming the bad entry.
    pub fn new(entries: &[String]) -> Result<Self, String> {
        Ok(Self {
            entries: entries
                .iter()
                .map(|e| Self::parse_entry(e))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Parse one entry: `*`, `host` or `host:port` (a scheme prefix such as
    /// `https://` is accepted and ignored).
    pub(super) fn parse_entry(entry: &str) -> Result<Entry, String> {
        let e = entry.trim();
        if e == "*" {
            return Ok(Entry::Any);
        }
        let e = e.split_once("://").map_or(e, |(_, rest)| rest);
        let e = e.trim_end_matches('/');
        let authority: http::uri::Authority = e
            .parse()
            .map_err(|_| format!("`{entry}` is not `*`, `host` or `host:port`"))?;
        if authority.host().is_empty() || e.contains('@') {
            return Err(format!("`{entry}` is not `*`, `host` or `host:port`"));
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

/// The `wasi:http` hooks of one run: checks each request against the
/// allow-list before the default client sends it.
pub struct OutboundPolicy {
    /// The source's name, for logs and metrics.
    pub source: Arc<str>,
    /// What is allowed.
    pub allowed: Arc<AllowList>,
    /// Where refusals are counted.
    pub metrics: SourceMetrics,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        if !self.allowed.allows(&host, port) {
            tracing::warn!(source = %self.source, %host, port, uri = %uri, "outbound request refused: host not in allowed_outbound_hosts");
            self.metrics.outbound_denied(&self.source);
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        tracing::debug!(source = %self.source, uri = %uri, "outbound request");
        _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_host_and_port() {
        let a = AllowList::new(&["api.example.com".into(), "127.0.0.1:8080".into()]).unwrap();
        assert!(a.allows("API.example.com", 443));
        assert!(a.allows("127.0.0.1", 8080));
        assert!(!a.allows("127.0.0.1", 8081));
        assert!(!a.allows("example.com", 443));
        assert!(AllowList::new(&["*".into()]).unwrap().allows("x", 1));
        assert!(!AllowList::default().allows("127.0.0.1", 80));
        assert!(AllowList::new(&["https://h:1/".into()])
            .unwrap()
            .allows("h", 1));
        assert!(AllowList::new(&["a b".into()]).is_err());
    }
}
