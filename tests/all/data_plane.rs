//! Knative's data-plane rules, end to end against real HTTP subscribers on
//! loopback: `Prefer: reply` to subscribers only, the empty value of the
//! simple filter, redirects as failures, retried dead letters, a reply the
//! broker cannot store retrying the whole delivery, and Knative's
//! dead-letter extensions.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::{serve_in_background, Host, Received, Sink};

const WAIT: Duration = Duration::from_secs(10);

/// A real HTTP server on loopback that records every request and answers
/// the n-th (from 0) with `answer(n)`.
struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    fn start<F, Fut>(answer: F) -> Self
    where
        F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (record, answer) = (record.clone(), answer.clone());
            async move {
                let n = {
                    let mut seen = record.lock().unwrap();
                    seen.push(Received { headers, body });
                    seen.len() - 1
                };
                answer(n).await
            }
        });
        Self {
            url: format!("http://{}/", serve_in_background(app)),
            seen,
        }
    }

    /// Wait (bounded) for `n` requests, then return them all.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests arrived at {}",
                seen.len(),
                self.url
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    let mut b = axum::http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(axum::body::Body::from(body.to_owned())).unwrap()
}

async fn put_ok(host: &Host, kind: &str, name: &str, spec: Value) {
    let r = host
        .admin(reqwest::Method::PUT, &format!("/admin/v1/{kind}/{name}"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{kind}/{name}: {}",
        r.text().await.unwrap()
    );
}

/// POST a binary-mode event with extra headers; assert it was accepted.
async fn send(host: &Host, id: &str, ty: &str, extra: &[(&str, &str)]) {
    crate::harness::send_accepted(host, "/tests/data-plane", id, ty, extra).await;
}

#[tokio::test]
async fn prefer_reply_goes_to_subscribers_and_not_to_sinks_replies_or_dead_letters() {
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    // Subscribers: a trigger's, a sequence step, a parallel branch, and
    // one that refuses the event (400: straight to the dead letter).
    let mut subscriber = Sink::start().await;
    let mut refusing = Sink::start().await;
    refusing.respond_with(StatusCode::BAD_REQUEST);
    // Not subscribers: a reply destination, a named sink, a dead letter.
    let mut other = Sink::start().await;
    put_ok(&host, "sinks", "named", json!({"url": other.url()})).await;
    put_ok(
        &host,
        "sequences",
        "q",
        json!({"steps": [{"url": subscriber.url()}]}),
    )
    .await;
    put_ok(
        &host,
        "parallels",
        "fan",
        json!({"branches": [{"subscriber": subscriber.url()}]}),
    )
    .await;
    let triggers = [
        ("url", json!({"subscriber": subscriber.url()})),
        ("seq", json!({"subscriber": {"sequence": "q"}})),
        ("par", json!({"subscriber": {"parallel": "fan"}})),
        (
            "reply",
            json!({"subscriber": {"function": "echo"}, "reply": other.url()}),
        ),
        ("sink", json!({"subscriber": {"sink": "named"}})),
        (
            "dl",
            json!({"subscriber": refusing.url(), "delivery": {"dead_letter": other.url()}}),
        ),
    ];
    for (name, mut spec) in triggers {
        spec["filter"] = json!({ "type": name });
        put_ok(&host, "triggers", name, spec).await;
    }

    for ty in ["url", "seq", "par"] {
        send(&host, ty, ty, &[]).await;
        let got = subscriber.next(WAIT).await;
        assert_eq!(got.header("ce-type"), Some(ty));
        assert_eq!(got.header("prefer"), Some("reply"), "{ty}");
    }
    send(&host, "reply", "reply", &[]).await;
    let got = other.next(WAIT).await;
    assert_eq!(got.header("ce-type"), Some("reply.echoed"));
    assert_eq!(got.header("prefer"), None, "a reply destination");

    send(&host, "sink", "sink", &[]).await;
    let got = other.next(WAIT).await;
    assert_eq!(got.header("ce-type"), Some("sink"));
    assert_eq!(got.header("prefer"), None, "a named sink");

    send(&host, "dl", "dl", &[]).await;
    let got = refusing.next(WAIT).await;
    assert_eq!(
        got.header("prefer"),
        Some("reply"),
        "the refusing subscriber"
    );
    let got = other.next(WAIT).await;
    assert_eq!(got.header("ce-type"), Some("dl"));
    assert_eq!(got.header("ce-sluiceerrorcode"), Some("400"));
    assert_eq!(got.header("prefer"), None, "a dead letter");

    host.settled().await;
    subscriber.assert_empty();
    other.assert_empty();
}

#[tokio::test]
async fn an_empty_filter_value_matches_every_value_of_a_present_attribute() {
    let host = Host::start().await;
    let mut sink = Sink::start().await;
    put_ok(
        &host,
        "triggers",
        "tenants",
        json!({"filter": {"type": "x", "tenant": ""}, "subscriber": sink.url()}),
    )
    .await;
    // Any value of `tenant`, the empty one included.
    for (id, tenant) in [("acme", "acme"), ("other", "other"), ("empty", "")] {
        send(&host, id, "x", &[("ce-tenant", tenant)]).await;
        let got = sink.next(WAIT).await;
        assert_eq!(got.header("ce-id"), Some(id));
    }
    // No `tenant`, or another type: no match.
    send(&host, "none", "x", &[]).await;
    host.wait_unmatched("none").await;
    send(&host, "y", "y", &[("ce-tenant", "acme")]).await;
    host.wait_unmatched("y").await;
    host.settled().await;
    sink.assert_empty();
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_retried_then_dead_lettered() {
    let host = Host::start().await;
    let mut target = Sink::start().await;
    let mut dead = Sink::start().await;
    let location = target.url();
    let redirecting = Server::start(move |_| {
        let location = location.clone();
        async move { answer(302, &[("location", &location)], "moved") }
    });
    put_ok(
        &host,
        "triggers",
        "moved",
        json!({
            "filter": {"type": "moved"}, "subscriber": redirecting.url,
            "delivery": {"retry": 2, "backoff_delay": "10ms", "dead_letter": dead.url()}
        }),
    )
    .await;
    send(&host, "m1", "moved", &[]).await;
    let got = dead.next(WAIT).await;
    assert_eq!(got.header("ce-id"), Some("m1"));
    assert_eq!(got.header("ce-sluiceerrorcode"), Some("302"));
    assert_eq!(
        got.header("ce-sluiceerrordest"),
        Some(redirecting.url.as_str())
    );
    let seen = redirecting.wait_for(3).await;
    assert!(seen.iter().all(|r| r.header("ce-id") == Some("m1")));
    host.settled().await;
    assert_eq!(redirecting.count(), 3, "one attempt and two retries");
    target.assert_empty();
    dead.assert_empty();
    assert_eq!(
        host.metric_sum(
            "sluice_deliveries_total",
            &[
                ("trigger", "moved"),
                ("outcome", "subscriber_failed"),
                ("error", "status")
            ]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_dead_letter_is_retried_with_the_delivery_options() {
    let host = Host::start().await;
    let mut refusing = Sink::start().await;
    refusing.respond_with(StatusCode::BAD_REQUEST);
    // The dead letter is unavailable once, then takes the event.
    let dead = Server::start(|n| async move {
        match n {
            0 => answer(503, &[], "not yet"),
            _ => answer(202, &[], ""),
        }
    });
    put_ok(
        &host,
        "triggers",
        "t",
        json!({
            "filter": {"type": "dl"}, "subscriber": refusing.url(),
            "delivery": {"retry": 2, "backoff_delay": "10ms", "dead_letter": dead.url}
        }),
    )
    .await;
    send(&host, "d1", "dl", &[]).await;
    // 400: not retried.
    assert_eq!(refusing.next(WAIT).await.header("ce-id"), Some("d1"));
    let seen = dead.wait_for(2).await;
    assert!(seen.iter().all(|r| r.header("ce-id") == Some("d1")));
    assert!(seen
        .iter()
        .all(|r| r.header("ce-sluiceerrorcode") == Some("400")));
    host.wait_for_metric(
        "sluice_routing_dead_lettered_total",
        &[("kind", "trigger"), ("name", "t")],
        |v| v == 1.0,
    )
    .await;
    host.settled().await;
    assert_eq!(dead.count(), 2, "no attempt after the dead letter took it");
    refusing.assert_empty();
    assert_eq!(
        host.metric_sum(
            "sluice_routing_retries_total",
            &[("kind", "dead-letter"), ("name", "trigger/t")]
        )
        .await,
        1.0
    );
    assert_eq!(
        host.metric_sum("sluice_routing_undeliverable_total", &[])
            .await,
        0.0
    );
}

#[tokio::test]
async fn a_reply_the_broker_cannot_store_retries_the_whole_delivery() {
    // Room for two events in the durable log: a stuck one and the one
    // under test, so the subscriber's reply finds the log full.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[durability]\nmax_entries = 2\n").unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    let (release, released) = tokio::sync::watch::channel(false);
    let stuck = Server::start(move |_| {
        let mut released = released.clone();
        async move {
            let _ = released.wait_for(|r| *r).await;
            answer(202, &[], "")
        }
    });
    // The subscriber replies at once the first time; the second time only
    // once the test opens it, after the log has room again.
    let (open, opened) = tokio::sync::watch::channel(false);
    let subscriber = Server::start(move |n| {
        let mut opened = opened.clone();
        async move {
            if n > 0 {
                let _ = opened.wait_for(|o| *o).await;
            }
            let reply = [
                ("ce-specversion", "1.0"),
                ("ce-id", "reply-1"),
                ("ce-source", "/tests/subscriber"),
                ("ce-type", "r.reply"),
                ("content-type", "application/json"),
            ];
            answer(200, &reply, "{}")
        }
    });
    let mut sink = Sink::start().await;
    let mut dead = Sink::start().await;
    put_ok(
        &host,
        "triggers",
        "stuck",
        json!({"filter": {"type": "stuck"}, "subscriber": stuck.url}),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "t",
        json!({
            "filter": {"type": "r"}, "subscriber": subscriber.url, "reply": "broker",
            "delivery": {"retry": 3, "backoff_delay": "20ms", "dead_letter": dead.url()}
        }),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "replies",
        json!({"filter": {"type": "r.reply"}, "subscriber": sink.url()}),
    )
    .await;

    send(&host, "a1", "stuck", &[]).await;
    send(&host, "e1", "r", &[]).await;
    subscriber.wait_for(1).await;
    // The broker refused the reply: the log holds a1 and e1.
    host.wait_for_metric(
        "sluice_durable_log_refused_total",
        &[("reason", "full")],
        |v| v >= 1.0,
    )
    .await;
    // Free a slot (a1's delivery ends), then let the retry answer.
    release.send_replace(true);
    host.wait_for_metric("sluice_durable_log_entries", &[], |v| v == 1.0)
        .await;
    open.send_replace(true);
    // The subscriber is called again, and this time its reply is stored
    // and routed.
    let seen = subscriber.wait_for(2).await;
    assert!(seen.iter().all(|r| r.header("ce-id") == Some("e1")));
    let got = sink.next(WAIT).await;
    assert_eq!(got.header("ce-id"), Some("reply-1"));
    assert_eq!(got.header("ce-type"), Some("r.reply"));
    host.settled().await;
    assert_eq!(subscriber.count(), 2, "one attempt, one retry");
    dead.assert_empty();
    sink.assert_empty();
    assert_eq!(
        host.metric_sum(
            "sluice_routing_retries_total",
            &[("kind", "trigger"), ("name", "t")]
        )
        .await,
        1.0
    );
    assert_eq!(
        host.metric_sum(
            "sluice_deliveries_total",
            &[("trigger", "t"), ("outcome", "delivered")]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_reply_the_broker_never_stores_dead_letters_the_original_event() {
    // Room for one event: the one under test, so no reply fits.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[durability]\nmax_entries = 1\n").unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    host.deploy_ok("echo", "echo").await;
    let mut dead = Sink::start().await;
    put_ok(
        &host,
        "triggers",
        "t",
        json!({
            "filter": {"type": "r"}, "function": "echo", "reply": "broker",
            "delivery": {"retry": 2, "backoff_delay": "10ms", "dead_letter": dead.url()}
        }),
    )
    .await;
    send(&host, "e1", "r", &[]).await;
    let got = dead.next(WAIT).await;
    // The event the trigger was delivering, not its reply.
    assert_eq!(got.header("ce-id"), Some("e1"));
    assert_eq!(got.header("ce-type"), Some("r"));
    assert_eq!(got.header("ce-sluiceerrordest"), Some("broker"));
    host.settled().await;
    dead.assert_empty();
    // Three whole deliveries: echo ran each time.
    assert_eq!(
        host.metric_sum("sluice_invocations_total", &[("function", "echo")])
            .await,
        3.0
    );
    assert_eq!(
        host.metric_sum(
            "sluice_deliveries_total",
            &[
                ("trigger", "t"),
                ("outcome", "reply_failed"),
                ("error", "broker")
            ]
        )
        .await,
        1.0
    );
}

/// The value of binary-mode header `name`, percent-decoded.
fn decoded(r: &Received, name: &str) -> String {
    let raw = r.header(name).unwrap_or_else(|| panic!("no {name}"));
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

#[tokio::test]
async fn dead_letters_carry_knatives_error_extensions_beside_sluices() {
    let host = Host::start().await;
    let mut dead = Sink::start().await;
    let failing = Server::start(|_| async { answer(500, &[], "boom: no ledger") });
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    for (name, url) in [("status", &failing.url), ("connect", &closed)] {
        put_ok(
            &host,
            "triggers",
            name,
            json!({"filter": {"type": name}, "subscriber": url, "delivery": {"dead_letter": dead.url()}}),
        )
        .await;
    }

    send(&host, "k1", "status", &[]).await;
    let got = dead.next(WAIT).await;
    assert_eq!(got.header("ce-id"), Some("k1"));
    for dest in ["ce-knativeerrordest", "ce-sluiceerrordest"] {
        assert_eq!(got.header(dest), Some(failing.url.as_str()), "{dest}");
    }
    assert_eq!(got.header("ce-knativeerrorcode"), Some("500"));
    assert_eq!(got.header("ce-sluiceerrorcode"), Some("500"));
    // Knative's data is the response body in base64; Sluice's, as text.
    let data = base64::engine::general_purpose::STANDARD
        .decode(decoded(&got, "ce-knativeerrordata"))
        .unwrap();
    assert_eq!(data, b"boom: no ledger");
    assert_eq!(decoded(&got, "ce-sluiceerrordata"), "boom: no ledger");

    // No HTTP answer: Knative's code is 500 (as its dispatcher sets for a
    // dispatch error), Sluice's is absent; both carry the error message.
    send(&host, "k2", "connect", &[]).await;
    let got = dead.next(WAIT).await;
    assert_eq!(got.header("ce-id"), Some("k2"));
    assert_eq!(got.header("ce-knativeerrordest"), Some(closed.as_str()));
    assert_eq!(got.header("ce-knativeerrorcode"), Some("500"));
    assert_eq!(got.header("ce-sluiceerrorcode"), None);
    let data = base64::engine::general_purpose::STANDARD
        .decode(decoded(&got, "ce-knativeerrordata"))
        .unwrap();
    let message = decoded(&got, "ce-sluiceerrordata");
    assert_eq!(String::from_utf8(data).unwrap(), message);
    assert!(message.contains(closed.as_str()), "{message}");
    host.settled().await;
    dead.assert_empty();
}
