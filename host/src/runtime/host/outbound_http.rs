//! The outbound HTTP capability (source functions only):
//! `wasi:http/outgoing-handler`, allowed only to the hosts the binding
//! lists (like Spin's `allowed_outbound_hosts`). The host is checked when
//! the request is made; the name is then resolved here, every address it
//! resolves to checked (internal addresses only when the list names them),
//! and the connection opened to a checked address ([`send`]). A request
//! refused by name fails inside the guest with
//! `error-code.http-request-denied`, one refused by address with
//! `error-code.destination-ip-prohibited`; the host logs and counts both.

mod send;

use std::future::Future;
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks, WasiHttpView};

use crate::config::{AllowList, InternalAddress, Target};
use crate::metrics::SourceMetrics;

/// What one function may reach, and where its refusals are counted;
/// shared by all its instances.
#[derive(Clone)]
pub struct OutboundPolicy {
    /// The function's name (the source's), for logs and metrics.
    pub source: Arc<str>,
    /// What is allowed.
    pub allowed: Arc<AllowList>,
    /// Where refusals are counted (`None`: not counted).
    pub metrics: Option<SourceMetrics>,
}

/// The `wasi:http` state of one instance: its context and the policy its
/// requests are checked against.
pub struct HttpState {
    ctx: WasiHttpCtx,
    hooks: OutboundPolicy,
}

impl HttpState {
    /// A fresh state under `policy`.
    pub fn new(policy: OutboundPolicy) -> Self {
        Self {
            ctx: WasiHttpCtx::new(),
            hooks: policy,
        }
    }

    /// The view `wasi:http`'s host functions use.
    pub fn view<'a>(
        &'a mut self,
        table: &'a mut wasmtime::component::ResourceTable,
    ) -> wasmtime_wasi_http::WasiHttpCtxView<'a> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.ctx,
            table,
            hooks: &mut self.hooks,
        }
    }
}

/// Link `wasi:http/outgoing-handler` and `wasi:http/types` (async).
///
/// # Errors
/// When the linker already defines them.
pub fn add_to_linker<T: WasiHttpView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

type SendResult = wasmtime_wasi_http::Result<send::Sent>;

impl OutboundPolicy {
    /// A policy that refuses every request.
    pub fn deny_all() -> Self {
        Self {
            source: Arc::from(""),
            allowed: Arc::new(AllowList::default()),
            metrics: None,
        }
    }

    /// Log and count a refused request.
    fn refused(&self, uri: &http::Uri, reason: &str) {
        tracing::warn!(source = %self.source, uri = %uri, "outbound request refused: {reason}");
        if let Some(m) = &self.metrics {
            m.outbound_denied(&self.source);
        }
    }

    /// Resolve, check every address, connect to a checked one, send.
    async fn send(
        self,
        request: http::Request<WasiBody>,
        host: Target,
        port: u16,
        options: Option<RequestOptions>,
    ) -> SendResult {
        let deadlines = send::Deadlines::new(options);
        let addrs = send::resolve(&host, port, deadlines.connect).await?;
        for addr in &addrs {
            if let Err(internal) = self.allowed.admits(addr.ip(), port) {
                self.refused(request.uri(), &refusal(&host, *addr, internal));
                return Err(wasmtime_wasi_http::Error::DestinationIpProhibited);
            }
        }
        let tls = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
        let stream = send::connect(&addrs, deadlines.connect).await?;
        send::send(stream, &host, tls, request, deadlines).await
    }
}

/// Why a connection to `addr` was refused.
fn refusal(host: &Target, addr: std::net::SocketAddr, internal: InternalAddress) -> String {
    let named = match host {
        Target::Ip(_) => String::new(),
        Target::Name(name) => format!("{name} resolves to "),
    };
    format!(
        "{named}{addr}, a {internal} address, which allowed_outbound_hosts does not name \
         (`*` and host names never reach internal addresses)"
    )
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        _ = fut;
        let uri = request.uri();
        let Some(host) = uri.host() else {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestUriInvalid) });
        };
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        if !self.allowed.allows(host, port) {
            self.refused(
                uri,
                &format!("{host}:{port} is not in allowed_outbound_hosts"),
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        tracing::debug!(source = %self.source, uri = %uri, "outbound request");
        let host = Target::parse(host);
        Box::new(self.clone().send(request, host, port, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_outside_the_list_is_refused_before_it_is_sent() {
        use http_body_util::{BodyExt, Empty};
        let mut policy = OutboundPolicy {
            source: Arc::from("s"),
            allowed: Arc::new(AllowList::new(&["127.0.0.1:1".into()]).unwrap()),
            metrics: None,
        };
        // Port 2 is not allowed; nothing listens there either, so only a
        // refusal before sending can answer `HttpRequestDenied`.
        let body = Empty::new()
            .map_err(|e: std::convert::Infallible| match e {})
            .boxed_unsync();
        let request = http::Request::get("http://127.0.0.1:2/")
            .body(body)
            .unwrap();
        let sent = policy.send_request(request, None, Box::new(async { Ok(()) }));
        let result = Box::into_pin(sent).await;
        assert!(
            matches!(result, Err(wasmtime_wasi_http::Error::HttpRequestDenied)),
            "{:?}",
            result.err()
        );
        // A policy for guests that were given none refuses everything.
        assert!(!OutboundPolicy::deny_all().allowed.allows("127.0.0.1", 1));
    }

    #[tokio::test]
    async fn a_star_does_not_reach_loopback_by_address_or_by_name() {
        use futures_util::FutureExt;
        use http_body_util::{BodyExt, Empty};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut policy = OutboundPolicy {
            source: Arc::from("s"),
            allowed: Arc::new(AllowList::new(&["*".into()]).unwrap()),
            metrics: None,
        };
        for host in ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"] {
            let body = Empty::new()
                .map_err(|e: std::convert::Infallible| match e {})
                .boxed_unsync();
            let request = http::Request::get(format!("http://{host}:{port}/"))
                .body(body)
                .unwrap();
            let sent = policy.send_request(request, None, Box::new(async { Ok(()) }));
            let result = Box::into_pin(sent).await;
            assert!(
                matches!(
                    result,
                    Err(wasmtime_wasi_http::Error::DestinationIpProhibited)
                ),
                "{host}: {:?}",
                result.err()
            );
        }
        // Nothing connected: a connection on loopback is established (and
        // so ready to accept) before `connect` returns.
        assert!(listener.accept().now_or_never().is_none());
    }
}
