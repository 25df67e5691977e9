//! Sending one request to addresses that were resolved and checked here:
//! the connection is opened to a checked address, never by resolving the
//! name again, so a DNS answer cannot change between the check and the
//! connection (DNS rebinding). The rest follows
//! `wasmtime_wasi_http::default_send_request` (48.0.8), which resolves the
//! name itself and so cannot be used: its timeouts and their defaults, TLS
//! with the Mozilla roots, HTTP/1.1 over hyper.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::config::Target;

/// What `send_request` gives back: the response, and the future that
/// drives the connection until its body is read.
pub type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// The deadlines of one request, `wasmtime-wasi-http`'s defaults where the
/// guest sets none.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Name lookup, TCP connect, TLS and the HTTP handshake, each.
    pub connect: Duration,
    /// Until the response head.
    pub first_byte: Duration,
    /// Between frames of the response body.
    pub between_bytes: Duration,
}

impl Deadlines {
    /// The guest's options, 600 s for each it leaves unset.
    pub fn new(options: Option<RequestOptions>) -> Self {
        const DEFAULT: Duration = Duration::from_secs(600);
        let o = options.unwrap_or_default();
        Self {
            connect: o.connect_timeout.unwrap_or(DEFAULT),
            first_byte: o.first_byte_timeout.unwrap_or(DEFAULT),
            between_bytes: o.between_bytes_timeout.unwrap_or(DEFAULT),
        }
    }
}

/// Every address `host` stands for on `port`: an address itself, or what
/// the name resolves to (once).
///
/// # Errors
/// `DnsTimeout`, or `DnsError` when the name does not resolve.
pub async fn resolve(host: &Target, port: u16, within: Duration) -> Result<Vec<SocketAddr>, Error> {
    let name = match host {
        Target::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
        Target::Name(name) => name.as_str(),
    };
    let dns_error = |reason: String| Error::DnsError {
        rcode: Some(reason),
        info_code: None,
    };
    match tokio::time::timeout(within, tokio::net::lookup_host((name, port))).await {
        Err(_) => Err(Error::DnsTimeout),
        Ok(Err(e)) => Err(dns_error(e.to_string())),
        Ok(Ok(addrs)) => {
            let addrs: Vec<_> = addrs.collect();
            if addrs.is_empty() {
                return Err(dns_error("no address".into()));
            }
            Ok(addrs)
        }
    }
}

/// Connect to the first of `addrs` that answers, within `within` in all.
///
/// # Errors
/// `ConnectionTimeout`, or the last connection error.
pub async fn connect(addrs: &[SocketAddr], within: Duration) -> Result<TcpStream, Error> {
    let attempts = async {
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(Error::Connect(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address")
        })))
    };
    tokio::time::timeout(within, attempts)
        .await
        .map_err(|_| Error::ConnectionTimeout)?
}

/// Send `request` over `stream`, in TLS for `host` when `tls` is set.
///
/// # Errors
/// As `default_send_request`: TLS, handshake, timeout and protocol errors.
pub async fn send(
    stream: TcpStream,
    host: &Target,
    tls: bool,
    request: http::Request<WasiBody>,
    deadlines: Deadlines,
) -> Result<Sent, Error> {
    if !tls {
        return over(stream, request, deadlines).await;
    }
    let name = match host {
        Target::Ip(ip) => rustls_pki_types::ServerName::IpAddress((*ip).into()),
        Target::Name(name) => rustls_pki_types::ServerName::try_from(name.clone())?,
    };
    let stream = tokio::time::timeout(deadlines.connect, connector()?.connect(name, stream))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Tls)?;
    over(stream, request, deadlines).await
}

/// TLS with the Mozilla roots (the host's outbound client config without
/// `[outbound] ca_file`, as `default_send_request` has).
fn connector() -> Result<tokio_rustls::TlsConnector, Error> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            crate::security::tls::client_config(None)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map(tokio_rustls::TlsConnector::from)
        .map_err(|e| Error::InternalError(Some(e)))
}

/// HTTP/1.1 over a connected stream: the request, then its response head
/// while the connection is driven; the body stays on the connection.
async fn over<S>(
    stream: S,
    mut request: http::Request<WasiBody>,
    deadlines: Deadlines,
) -> Result<Sent, Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = tokio::time::timeout(
        deadlines.connect,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries the path only (the authority is for a
    // proxy); the `host` header is already set.
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(
            request
                .uri()
                .path_and_query()
                .map_or("/", http::uri::PathAndQuery::as_str),
        )
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    let between_bytes = deadlines.between_bytes.max(Duration::from_nanos(1));
    let send = async move {
        let response = tokio::time::timeout(deadlines.first_byte, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        let mut timeout = tokio::time::interval(between_bytes);
        timeout.reset();
        Ok::<_, Error>(response.map(|incoming| TimedBody { incoming, timeout }.boxed_unsync()))
    };
    let mut send = pin!(send);
    let mut conn = Some(conn);
    // Wait for the response head while driving the connection's I/O.
    let response = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => {
            let Some(c) = conn.as_mut() else {
                return Poll::Pending;
            };
            let done = ready!(Pin::new(c).poll(cx));
            conn = None;
            match done {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        }
    })
    .await?;
    let io = async move {
        let Some(conn) = conn else {
            return Ok(());
        };
        conn.await.map_err(|e| {
            if e.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(e)
            }
        })
    };
    Ok((response, Box::new(io)))
}

/// A response body that fails when no frame came for `timeout`.
struct TimedBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(e)
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timeout.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.incoming.size_hint()
    }
}
