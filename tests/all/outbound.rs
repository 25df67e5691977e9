//! Outbound HTTP, against real servers on loopback: what the host reads
//! of the answers it gets (a subscriber's reply only up to
//! `runtime.max_reply_bytes`, no more of any other answer than it needs),
//! and where a source function's requests may connect (internal addresses
//! only where `allowed_outbound_hosts` names them).

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

/// The first event `sink` receives from source `name` (skipping others'),
/// failing the test after [`WAIT`].
async fn next_from(sink: &mut Sink, name: &str) -> crate::harness::Received {
    let source = format!("/sluice/sources/{name}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "no event from source `{name}` in time");
        let r = sink.next(left).await;
        if r.header("ce-source") == Some(source.as_str()) {
            return r;
        }
    }
}

#[tokio::test]
async fn a_source_allowed_everything_reaches_loopback_only_where_the_list_names_it() {
    // Stand-ins for the host's own admin API and other local services.
    let mut forbidden = Sink::start().await;
    let mut allowed = Sink::start().await;
    let mut sink = Sink::start().await;
    let (f, a) = (forbidden.addr.port(), allowed.addr.port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    let source = |name: &str, url: String, list: &str| {
        format!(
            "[sources.{name}]\nkind = \"function\"\npath = \"{}\"\nschedule = \"* * * * * *\"\n\
             sink = \"{}\"\nconfig = {{ mode = \"fetch\", url = \"{url}\" }}\n\
             allowed_outbound_hosts = {list}\n\n",
            crate::harness::function("test-source").display(),
            sink.url(),
        )
    };
    std::fs::write(
        &config,
        [
            // `*` and a public-looking list do not reach loopback, by
            // address or by a name that resolves to it.
            source("star", format!("http://127.0.0.1:{f}/"), r#"["*"]"#),
            source("star-by-name", format!("http://localhost:{f}/"), r#"["*"]"#),
            // Naming the address, or `localhost`, does.
            source(
                "address",
                format!("http://127.0.0.1:{a}/address"),
                r#"["127.0.0.1"]"#,
            ),
            source(
                "localhost",
                format!("http://localhost:{a}/localhost"),
                &format!(r#"["localhost:{a}"]"#),
            ),
        ]
        .concat(),
    )
    .unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;

    for name in ["star", "star-by-name"] {
        let failed = next_from(&mut sink, name).await;
        assert_eq!(
            failed.header("ce-type"),
            Some("com.example.source.fetch-failed"),
            "{name}"
        );
        let message = String::from_utf8_lossy(&failed.body);
        assert!(message.contains("DestinationIpProhibited"), "{message}");
        let refusal = host
            .wait_for_log("the refusal", |v| {
                v["fields"]["source"] == name
                    && v["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("outbound request refused"))
            })
            .await;
        let logged = refusal["fields"]["message"].as_str().unwrap();
        assert!(logged.contains("a loopback address"), "{logged}");
        assert!(
            host.metric_sum("sluice_source_outbound_denied_total", &[("source", name)])
                .await
                >= 1.0
        );
    }
    for name in ["address", "localhost"] {
        let fetched = next_from(&mut sink, name).await;
        assert_eq!(
            fetched.header("ce-type"),
            Some("com.example.source.fetched"),
            "{name}: {}",
            String::from_utf8_lossy(&fetched.body)
        );
    }
    allowed.next(WAIT).await;
    // The refusals above were decided before connecting: nothing came.
    forbidden.assert_empty();
}
