//! The broker as the one way into routing: replies sent back to it are as
//! durable as `POST /`, a reply leg gets its trigger's delivery options,
//! and a reply destination's body is not a reply.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;

use crate::harness::{send_event, serve_in_background, start_up_error, Host, Sink};

/// Events streamed at the host in the crash test.
const N: usize = 600;
/// Concurrent senders.
const SENDERS: usize = 8;

/// A sink that refuses each event's first attempt (503) and takes the
/// next ones (202); the ids it took arrive on the channel.
fn refuse_first_attempt() -> (String, mpsc::UnboundedReceiver<(String, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let attempts: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, _body: Bytes| {
        let (tx, attempts) = (tx.clone(), attempts.clone());
        async move {
            let header = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let id = header("ce-id");
            let n = {
                let mut a = attempts.lock().unwrap();
                let n = a.entry(id.clone()).or_default();
                *n += 1;
                *n
            };
            if n == 1 {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            let _ = tx.send((id, header("ce-type")));
            StatusCode::ACCEPTED
        }
    });
    (format!("http://{}/", serve_in_background(app)), rx)
}

// Multi-threaded: `Host::stop` blocks its thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_through_the_broker_loses_nothing_acknowledged_on_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let (sink, mut arrived) = refuse_first_attempt();
    let host = Host::start_with(data.path(), None, &[]).await;
    host.deploy_ok("echo", "echo").await;
    // POST / -> echo -> broker -> echo -> the sink, with retries.
    host.trigger_ok(
        "first",
        json!({"filter": {"type": "chain.test"}, "function": "echo", "reply": "broker"}),
    )
    .await;
    host.trigger_ok(
        "second",
        json!({
            "filter": {"type": "chain.test.echoed"}, "function": "echo", "sink": sink,
            "delivery": {"retry": 5, "backoff_delay": "300ms"}
        }),
    )
    .await;

    // Kill the host mid-stream, once some events are waiting for their
    // retry at the sink (their first attempt refused).
    let accepted =
        crate::harness::stream_until_killed(host, N, SENDERS, "c", "/chain", "chain.test").await;

    let host = Host::start_with(data.path(), None, &[]).await;
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !accepted.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = tokio::time::timeout(left, arrived.recv()).await;
        let Ok(Some((id, ty))) = got else {
            panic!(
                "lost {} of {} acknowledged events, e.g. {:?}",
                accepted.difference(&seen).count(),
                accepted.len(),
                accepted.difference(&seen).take(5).collect::<Vec<_>>()
            );
        };
        assert_eq!(ty, "chain.test.echoed.echoed");
        seen.insert(id);
    }
    eprintln!(
        "accepted {} of {N} before SIGKILL; every final reply arrived",
        accepted.len()
    );
    host.stop();
}

#[tokio::test]
async fn a_misspelt_kafka_sink_stops_start_up_and_is_refused_by_put() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[functions.echo]
path = "{}"

[triggers.t]
filter = {{ type = "x" }}
function = "echo"
sink = "kafka:ouput"

[kafka]
brokers = "127.0.0.1:9"

[kafka.sinks.output]
topic = "out"
"#,
            crate::harness::function("echo").display()
        ),
    )
    .unwrap();
    let err = start_up_error(&dir.path().join("data"), &config);
    assert!(err.contains("kafka sink `ouput` does not exist"), "{err}");

    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    for spec in [
        json!({"filter": {"type": "x"}, "function": "echo", "sink": "kafka:nope"}),
        json!({"filter": {"type": "x"}, "function": "echo", "reply": {"kafka": "nope"}}),
    ] {
        let r = host
            .client
            .put(host.admin_url("/admin/v1/triggers/t"))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body = r.text().await.unwrap();
        assert!(body.contains("kafka sink `nope` does not exist"), "{body}");
    }
    let triggers = host.get_json("/admin/v1/triggers").await;
    assert_eq!(triggers, json!({}), "nothing was stored");
}

#[test]
fn a_kafka_broker_that_does_not_answer_stops_start_up() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"127.0.0.1:{port}\"\n\
             [kafka.broker]\ntopic = \"events\"\ngroup = \"fleet\"\nopen_timeout = \"1s\"\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let err = start_up_error(&data, &config);
    assert!(
        err.contains("kafka broker topic `events`")
            && err.contains(&format!("127.0.0.1:{port}"))
            && err.contains("open_timeout"),
        "{err}"
    );
    // Nothing fell back to a local log.
    assert!(!data.join(sluice::durable::FILE_NAME).exists());
}

/// A server answering every POST `200 ok` (text/plain); each request's
/// `ce-id` arrives on the channel.
fn answers_200_text() -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let tx = tx.clone();
        async move {
            let id = headers
                .get("ce-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let _ = tx.send(id);
            (StatusCode::OK, [("content-type", "text/plain")], "ok")
        }
    });
    (format!("http://{}/", serve_in_background(app)), rx)
}

#[tokio::test]
async fn a_reply_destination_answering_200_text_is_tried_once_and_delivered() {
    let (url, mut got) = answers_200_text();
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    host.trigger_ok(
        "webhook",
        json!({
            "filter": {"type": "hook"}, "function": "echo", "sink": url,
            "delivery": {"retry": 3, "backoff_delay": "10ms"}
        }),
    )
    .await;
    // And the same answer from a named sink.
    let r = host
        .client
        .put(host.admin_url("/admin/v1/sinks/hook"))
        .json(&json!({"url": url, "delivery": {"retry": 3, "backoff_delay": "10ms"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    host.trigger_ok(
        "named",
        json!({"filter": {"type": "hook2"}, "function": "echo", "reply": {"sink": "hook"}}),
    )
    .await;

    for (id, ty) in [("h1", "hook"), ("h2", "hook2")] {
        let r = send_event(&host.client, &host.url("/"), id, ty, "{}").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let seen = tokio::time::timeout(Duration::from_secs(10), got.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, id);
    }
    for trigger in ["webhook", "named"] {
        host.wait_for_metric(
            "sluice_deliveries_total",
            &[("trigger", trigger), ("outcome", "delivered")],
            |v| v == 1.0,
        )
        .await;
    }
    // Tried once each: both deliveries ended, and no retry followed.
    host.settled().await;
    assert!(
        got.try_recv().is_err(),
        "a 200 with a text body was retried"
    );
    assert_eq!(
        host.metric_sum("sluice_routing_undeliverable_total", &[])
            .await,
        0.0
    );
    assert_eq!(
        host.metric_sum("sluice_routing_retries_total", &[]).await,
        0.0
    );
    assert_eq!(
        host.metric(
            "sluice_routing_delivered_total",
            &[("kind", "sink"), ("name", "hook")]
        )
        .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn a_reply_sink_answering_503_is_retried_per_the_trigger_and_dead_lettered() {
    let mut sink = Sink::start().await;
    sink.respond_with(StatusCode::SERVICE_UNAVAILABLE);
    let mut dead = Sink::start().await;
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    host.trigger_ok(
        "flaky",
        json!({
            "filter": {"type": "flaky"}, "function": "echo", "sink": sink.url(),
            "delivery": {"retry": 2, "backoff_delay": "10ms", "dead_letter": dead.url()}
        }),
    )
    .await;
    let r = send_event(&host.client, &host.url("/"), "f1", "flaky", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for _ in 0..3 {
        let got = sink.next(Duration::from_secs(10)).await;
        assert_eq!(got.header("ce-type"), Some("flaky.echoed"));
    }
    let dl = dead.next(Duration::from_secs(10)).await;
    assert_eq!(dl.header("ce-id"), Some("f1"));
    assert_eq!(dl.header("ce-type"), Some("flaky.echoed"));
    assert_eq!(dl.header("ce-sluiceerrorcode"), Some("503"));
    host.settled().await;
    sink.assert_empty();
    assert_eq!(
        host.metric(
            "sluice_routing_dead_lettered_total",
            &[("kind", "reply"), ("name", "trigger/flaky")]
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        host.metric(
            "sluice_routing_retries_total",
            &[("kind", "reply"), ("name", "trigger/flaky")]
        )
        .await,
        Some(2.0)
    );
}

/// A sink that answers 503 while closed and 202 once opened; the ids it
/// took arrive on the channel.
fn gate() -> (
    String,
    Arc<std::sync::atomic::AtomicBool>,
    mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let is_open = open.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let (tx, is_open) = (tx.clone(), is_open.clone());
        async move {
            if !is_open.load(std::sync::atomic::Ordering::SeqCst) {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            let id = headers
                .get("ce-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let _ = tx.send(id);
            StatusCode::ACCEPTED
        }
    });
    (format!("http://{}/", serve_in_background(app)), open, rx)
}

#[tokio::test]
async fn a_ping_bound_to_the_broker_is_durable_across_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, open, mut arrived) = gate();
    let trigger = format!(
        r#"
[triggers.pings]
filter = {{ type = "dev.sluice.sources.ping" }}
subscriber = "{sink}"
delivery = {{ retry = 100, backoff = "linear", backoff_delay = "1s" }}
"#
    );
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "{trigger}\n[sources.beat]\nkind = \"ping\"\nschedule = \"* * * * * *\"\nsink = \"broker\"\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let host = Host::start_with(&data, Some(&config), &[]).await;
    // Two ticks emitted into the broker; their deliveries are retrying
    // against the closed sink.
    let deadline = Instant::now() + Duration::from_secs(15);
    let emitted = loop {
        let ids: BTreeSet<String> = host
            .logs_with("source event emitted")
            .iter()
            .filter_map(|v| v["fields"]["event_id"].as_str().map(str::to_owned))
            .collect();
        if ids.len() >= 2 {
            break ids;
        }
        assert!(Instant::now() < deadline, "the ping source emitted nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(host); // SIGKILL

    // Restart without the source: what arrives was emitted before the kill.
    std::fs::write(&config, &trigger).unwrap();
    open.store(true, std::sync::atomic::Ordering::SeqCst);
    let host = Host::start_with(&data, Some(&config), &[]).await;
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !emitted.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(id)) = tokio::time::timeout(left, arrived.recv()).await else {
            panic!("lost ping events: emitted {emitted:?}, arrived {seen:?}");
        };
        seen.insert(id);
    }
    host.stop();
}
