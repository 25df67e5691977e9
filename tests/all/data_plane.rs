//! Knative's data-plane rules, end to end against real HTTP subscribers on
//! loopback: `Prefer: reply` to subscribers only, the empty value of the
//! simple filter, redirects as failures, retried dead letters, a reply the
//! broker cannot store retrying the whole delivery, and Knative's
//! dead-letter extensions.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Host, Sink};

const WAIT: Duration = Duration::from_secs(10);

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
    let mut req = host
        .client
        .post(host.url("/"))
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "/tests/data-plane")
        .header("ce-type", ty)
        .header("content-type", "application/json")
        .body("{}");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
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
