//! Serving one listener with hyper's HTTP/1 connection builder (instead of
//! `axum::serve`, which has no connection limits or header timeout):
//!
//! - at most `max_connections` open, and at most
//!   `max_connections_per_client` from one address, so a flood of idle
//!   connections from one client leaves room for every other; a
//!   connection past either bound is closed as soon as it is accepted;
//! - a request's headers must arrive within `header_timeout` of the
//!   connection opening or the previous response (slow or idle clients are
//!   closed), and be at most `max_header_bytes` (431 past it);
//! - optional TLS, whose handshake must also finish within `header_timeout`.
//!
//! Body limits and timeouts are applied where bodies are read
//! (`http/body.rs`); a body left unread by a refusal is drained a little
//! while ([`super::linger`]) so the client reads the refusal.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::linger::Lingering;
use crate::config::ConnectionLimits;
use crate::metrics::SecurityMetrics;

/// The address of the client a request came from, in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// One bound listener, ready to serve.
pub struct Listener {
    /// `events` or `admin`, for logs and metrics.
    pub name: &'static str,
    /// The socket.
    pub tcp: TcpListener,
    /// TLS, when configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Connection limits.
    pub limits: ConnectionLimits,
}

/// Open connections, in total and per client address.
struct Slots {
    limits: ConnectionLimits,
    state: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One taken slot, given back on drop.
struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Slots {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 >= self.limits.max_connections {
            return Err("max_connections");
        }
        let mine = state.1.entry(ip).or_insert(0);
        if *mine >= self.limits.max_connections_per_client {
            return Err("per_client");
        }
        *mine += 1;
        state.0 += 1;
        Ok(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.slots.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 -= 1;
        if let Some(n) = state.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                state.1.remove(&self.ip);
            }
        }
    }
}

/// Whether a request carries a body (RFC 9112 §6.3).
fn has_body<B>(request: &http::Request<B>) -> bool {
    let h = request.headers();
    h.contains_key(http::header::TRANSFER_ENCODING)
        || h.get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Serve `service` (an axum router, or the event listener's
/// `ingress::Ingress`) on `listener` until `stop` is cancelled, then stop
/// accepting, let every open connection finish its request (idle ones are
/// closed at once), and return.
///
/// With `tag_clients`, each request carries its [`ClientAddr`] in its
/// extensions (for the sender guard's rate limit); without, it carries
/// none, and no extension map is allocated per request.
pub async fn serve<S>(
    listener: Listener,
    service: S,
    tag_clients: bool,
    metrics: SecurityMetrics,
    stop: CancellationToken,
) where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let Listener {
        name,
        tcp,
        tls,
        limits,
    } = listener;
    let slots = Arc::new(Slots {
        limits: limits.clone(),
        state: Mutex::new((0, HashMap::new())),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    let tls = tls.map(TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = tcp.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, usually: wait for some to close.
                    tracing::warn!(listener = name, "accepting a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match slots.take(peer.ip()) {
            Ok(slot) => slot,
            Err(reason) => {
                metrics.connection_refused(name, reason);
                tracing::debug!(listener = name, %peer, reason, "connection refused");
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let per_connection = service.clone();
        let linger = limits.body_timeout;
        let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            if tag_clients {
                request.extensions_mut().insert(ClientAddr(peer));
            }
            let has_body = has_body(&request);
            let request = request.map(|body| axum::body::Body::new(Lingering::new(body, linger)));
            let response = per_connection.clone().oneshot(request);
            async move {
                let mut response = response.await?;
                if has_body
                    && (response.status().is_client_error() || response.status().is_server_error())
                {
                    // A refusal may leave the body unread, and then the
                    // connection cannot carry another request: say so, so
                    // a client never reuses it and races its closing.
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, Infallible>(response)
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let metrics = metrics.clone();
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            metrics.connections_open(name, 1);
            let result = match tls {
                None => {
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            watcher
                                .watch(builder.serve_connection(TokioIo::new(tls_stream), service))
                                .await
                        }
                        Ok(Err(e)) => {
                            metrics.connection_refused(name, "tls");
                            tracing::debug!(listener = name, %peer, "TLS handshake failed: {e}");
                            Ok(())
                        }
                        Err(_) => {
                            metrics.connection_refused(name, "tls");
                            tracing::debug!(listener = name, %peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(listener = name, %peer, "connection ended: {e}");
            }
            metrics.connections_open(name, -1);
        });
    }
    drop(tcp);
    graceful.shutdown().await;
}
