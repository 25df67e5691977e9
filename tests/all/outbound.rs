//! Outbound HTTP, against real servers on loopback: what the host reads
//! of the answers it gets (a subscriber's reply only up to
//! `runtime.max_reply_bytes`, no more of any other answer than it needs).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::mpsc;

use crate::harness::{serve_in_background, Host, Sink};

const WAIT: Duration = Duration::from_secs(10);

/// How much a [`HugeBody`] server sends at most: 64 times the default
/// `runtime.max_reply_bytes`.
const HUGE: usize = 64 << 20;

/// A real HTTP server answering every request with a 200 whose body is
/// [`HUGE`] bytes streamed in chunks (no `Content-Length`), and reporting
/// how many bytes it had produced when the body was dropped (the client
/// read it all, or hung up).
struct HugeBody {
    url: String,
    dropped: mpsc::UnboundedReceiver<usize>,
}

/// Counts the bytes a body produced; reports them when it is dropped.
struct Produced {
    bytes: Arc<AtomicUsize>,
    report: mpsc::UnboundedSender<usize>,
}

impl Drop for Produced {
    fn drop(&mut self) {
        let _ = self.report.send(self.bytes.load(Ordering::SeqCst));
    }
}

impl HugeBody {
    /// Start one whose answers carry `headers`.
    fn start(headers: &'static [(&'static str, &'static str)]) -> Self {
        let (tx, dropped) = mpsc::unbounded_channel();
        let app = axum::Router::new().fallback(move || {
            let tx = tx.clone();
            async move {
                let produced = Produced {
                    bytes: Arc::new(AtomicUsize::new(0)),
                    report: tx,
                };
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                let body = futures_util::stream::unfold(produced, move |p| {
                    let chunk = chunk.clone();
                    async move {
                        if p.bytes.load(Ordering::SeqCst) >= HUGE {
                            return None;
                        }
                        p.bytes.fetch_add(chunk.len(), Ordering::SeqCst);
                        Some((Ok::<_, std::convert::Infallible>(chunk), p))
                    }
                });
                let mut response = axum::http::Response::builder().status(200);
                for (k, v) in headers {
                    response = response.header(*k, *v);
                }
                response.body(Body::from_stream(body)).unwrap()
            }
        });
        let addr = serve_in_background(app);
        Self {
            url: format!("http://{addr}/"),
            dropped,
        }
    }

    /// How many bytes the first answer's body had produced when it was
    /// dropped (bounded wait).
    async fn produced(&mut self) -> usize {
        tokio::time::timeout(WAIT, self.dropped.recv())
            .await
            .expect("the huge body was never dropped: the host kept the connection open")
            .expect("server gone")
    }
}

async fn put_ok(host: &Host, kind: &str, name: &str, spec: serde_json::Value) {
    let r = host
        .client
        .put(host.admin_url(&format!("/admin/v1/{kind}/{name}")))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{kind}/{name}");
}

async fn send(host: &Host, id: &str, ty: &str) {
    let r = crate::harness::send_event(&host.client, &host.url("/"), id, ty, "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_subscriber_reply_past_max_reply_bytes_fails_to_the_dead_letter_unread() {
    let host = Host::start().await;
    let mut dlq = Sink::start().await;
    // A binary-mode reply event whose data never seems to end.
    let mut subscriber = HugeBody::start(&[
        ("ce-specversion", "1.0"),
        ("ce-id", "reply"),
        ("ce-source", "/huge"),
        ("ce-type", "huge.reply"),
        ("content-type", "text/plain"),
    ]);
    put_ok(
        &host,
        "triggers",
        "huge",
        json!({"filter": {"type": "h"}, "subscriber": subscriber.url, "delivery": {"retry": 3, "backoff_delay": "10ms", "dead_letter": dlq.url()}}),
    )
    .await;
    send(&host, "h1", "h").await;

    // Failed at once (not retried: the same reply would come back), with
    // the reason.
    let dead = dlq.next(WAIT).await;
    assert_eq!(dead.header("ce-id"), Some("h1"));
    assert_eq!(
        dead.header("ce-sluiceerrordest"),
        Some(subscriber.url.as_str())
    );
    assert_eq!(dead.header("ce-sluiceerrorcode"), Some("200"));
    let reason = percent_encoding::percent_decode_str(dead.header("ce-sluiceerrordata").unwrap())
        .decode_utf8()
        .unwrap()
        .into_owned();
    assert!(reason.contains("larger than 1048576 bytes"), "{reason}");
    // The host hung up instead of reading the rest.
    let produced = subscriber.produced().await;
    assert!(produced < HUGE, "the host read all {produced} bytes");
    host.wait_for_log("the failure logged", |v| {
        v["fields"]["error_kind"] == "reply_too_large" && v["fields"]["name"] == "huge"
    })
    .await;
    assert_eq!(
        host.metric_sum("sluice_routing_retries_total", &[("name", "huge")])
            .await,
        0.0
    );
    // And it is still serving.
    let health = host.client.get(host.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_sink_answering_a_huge_body_is_delivered_without_reading_it() {
    let host = Host::start().await;
    let mut sink = HugeBody::start(&[("content-type", "text/plain")]);
    put_ok(&host, "sinks", "big", json!({"url": sink.url})).await;
    put_ok(
        &host,
        "triggers",
        "to-big",
        json!({"filter": {"type": "s"}, "subscriber": {"sink": "big"}}),
    )
    .await;
    send(&host, "s1", "s").await;
    host.wait_for_metric(
        "sluice_routing_delivered_total",
        &[("kind", "sink"), ("name", "big")],
        |v| v == 1.0,
    )
    .await;
    // Its body was not what mattered: the host let go of it early.
    let produced = sink.produced().await;
    assert!(produced < HUGE, "the host read all {produced} bytes");
}
