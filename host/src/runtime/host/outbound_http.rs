//! The outbound HTTP capability (source functions only):
//! `wasi:http/outgoing-handler`, allowed only to the hosts the binding
//! lists (like Spin's `allowed_outbound_hosts`). A refused request fails
//! inside the guest with `error-code.http-request-denied`; the host logs
//! and counts it.

use std::future::Future;
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks, WasiHttpView};

use crate::config::AllowList;
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

impl OutboundPolicy {
    /// A policy that refuses every request.
    pub fn deny_all() -> Self {
        Self {
            source: Arc::from(""),
            allowed: Arc::new(AllowList::default()),
            metrics: None,
        }
    }
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
            if let Some(m) = &self.metrics {
                m.outbound_denied(&self.source);
            }
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
}
