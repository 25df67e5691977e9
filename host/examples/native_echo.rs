//! The physical-limit baseline for `scripts/bench-http.sh`: a plain hyper
//! server that decodes the CloudEvent with Sluice's own binding, echoes it
//! natively (type suffixed with `.echoed`, as the `echo` function does) and
//! encodes the reply in the request's mode. No wasm, no routing, no axum;
//! the same allocator (mimalloc) as the `sluice` binary.
//!
//! `cargo run --release -p sluice --example native_echo -- 127.0.0.1:9091`

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice::cloudevents::{decode, encode};

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let Ok(decoded) = decode(&parts.headers, body) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let Some(mut event) = decoded.events.into_iter().next() else {
        return Ok(status(StatusCode::NO_CONTENT));
    };
    event.ty.push_str(".echoed");
    let encoded = encode(&event, decoded.mode);
    let mut response = Response::new(Full::new(encoded.body));
    *response.headers_mut() = encoded.headers;
    Ok(response)
}

fn status(s: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = s;
    r
}

/// The same allocator as the `sluice` binary, so the ratio measures the
/// work and not the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9091".into())
        .parse()
        .expect("an address like 127.0.0.1:9091");
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("native echo on {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(echo);
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
