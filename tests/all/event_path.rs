//! The foundation path: event in over HTTP, function run in wasm, reply out
//! to a real HTTP sink.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{send_event, Host, Sink};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn echo_reply_reaches_the_sink_with_attributes_and_data() {
    let host = Host::start().await;
    let mut sink = Sink::start().await;
    host.deploy_ok("echo", "echo").await;
    host.trigger_ok(
        "echo-orders",
        json!({"filter": {"type": "com.example.order"}, "function": "echo", "sink": sink.url()}),
    )
    .await;

    let r = host
        .client
        .post(host.url("/"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "order-1")
        .header("ce-source", "/shop")
        .header("ce-type", "com.example.order")
        .header("ce-subject", "Euro%20%E2%82%AC")
        .header("ce-tenant", "acme")
        .header("content-type", "application/json")
        .body(r#"{"total": 12.5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let got = sink.next(WAIT).await;
    assert_eq!(got.header("ce-type"), Some("com.example.order.echoed"));
    assert_eq!(got.header("ce-id"), Some("order-1"));
    assert_eq!(got.header("ce-source"), Some("/shop"));
    assert_eq!(got.header("ce-specversion"), Some("1.0"));
    assert_eq!(got.header("ce-subject"), Some("Euro%20%E2%82%AC"));
    assert_eq!(got.header("ce-tenant"), Some("acme"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(&got.body[..], br#"{"total": 12.5}"#);
}

#[tokio::test]
async fn events_that_match_no_trigger_are_accepted_and_go_nowhere() {
    let host = Host::start().await;
    let mut sink = Sink::start().await;
    host.deploy_ok("echo", "echo").await;
    host.trigger_ok(
        "t",
        json!({"filter": {"type": "wanted"}, "function": "echo", "sink": sink.url()}),
    )
    .await;
    let r = send_event(&host.client, &host.url("/"), "1", "unwanted", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = send_event(&host.client, &host.url("/"), "2", "wanted", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(sink.next(WAIT).await.header("ce-id"), Some("2"));
    // Event 1 was dropped by the router, and nothing of it is still on its
    // way: nothing else reached the sink.
    host.wait_unmatched("1").await;
    host.settled().await;
    sink.assert_empty();
}

#[tokio::test]
async fn drop_forwards_nothing() {
    let host = Host::start().await;
    let mut sink = Sink::start().await;
    host.deploy_ok("drop", "drop").await;
    host.deploy_ok("echo", "echo").await;
    // Both triggers take the event and share one sink: only echo's reply
    // may arrive.
    for (name, f) in [("dropper", "drop"), ("echoer", "echo")] {
        host.trigger_ok(
            name,
            json!({"filter": {"type": "t"}, "function": f, "sink": sink.url()}),
        )
        .await;
    }
    let r = send_event(&host.client, &host.url("/"), "e1", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(sink.next(WAIT).await.header("ce-type"), Some("t.echoed"));
    // The dropper's delivery ended without a reply, and every delivery of
    // the event ended: nothing else reached the sink.
    host.wait_for_metric(
        "sluice_deliveries_total",
        &[("trigger", "dropper"), ("outcome", "delivered")],
        |v| v == 1.0,
    )
    .await;
    host.settled().await;
    sink.assert_empty();

    // Called directly, drop answers 204.
    let r = send_event(&host.client, &host.url("/functions/drop"), "e2", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn direct_invocation_answers_with_the_reply_in_binary_mode() {
    let host = Host::start().await;
    host.deploy_ok("convert", "currency-convert").await;
    let r = send_event(
        &host.client,
        &host.url("/functions/convert"),
        "rate-1",
        "dev.sluice.currency.rate",
        r#"{"base":"USD","quote":"EUR","rate":0.5,"amount":250}"#,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h["ce-type"], "dev.sluice.currency.converted");
    assert_eq!(h["ce-subject"], "USD/EUR");
    assert_eq!(h["content-type"], "application/json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["converted"], 125.0);

    // A handler error is the caller's problem: 422 with the reason.
    let r = send_event(
        &host.client,
        &host.url("/functions/convert"),
        "rate-2",
        "t",
        r#"{"rate":1}"#,
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON data"),
        "{body}"
    );

    let r = send_event(&host.client, &host.url("/functions/nope"), "x", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_events_get_400_with_a_reason() {
    let host = Host::start().await;
    // Binary mode without ce-type.
    let r = host
        .post_binary(
            "/",
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "/s"),
            ],
            "",
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("`type`"), "{body}");

    // Structured mode with broken JSON.
    let r = host
        .post_binary(
            "/",
            &[("content-type", "application/cloudevents+json")],
            "{not json",
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON event"),
        "{body}"
    );

    // A bad time attribute is named.
    let r = host
        .post_binary(
            "/",
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "/s"),
                ("ce-type", "t"),
                ("ce-time", "yesterday"),
            ],
            "",
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("`time`"), "{body}");

    // Other methods than POST on the ingress.
    let r = host.client.put(host.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn structured_mode_in_and_structured_reply_on_request() {
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    let event = json!({
        "specversion": "1.0", "id": "s1", "source": "/s", "type": "t",
        "datacontenttype": "application/json", "data": {"k": [1, 2]}, "count": 3,
        "subject": "sub", "dataschema": "https://example.com/s", "time": "2026-12-02T10:00:00Z",
        "tag": "blue", "flag": true
    });
    let r = host
        .client
        .post(host.url("/functions/echo"))
        .header(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/cloudevents+json"));
    let reply: serde_json::Value = r.json().await.unwrap();
    assert_eq!(reply["type"], "t.echoed");
    assert_eq!(reply["data"], json!({"k": [1, 2]}));
    assert_eq!(reply["count"], 3, "integer extension keeps its type");
    assert_eq!(reply["tag"], "blue", "string extension");
    assert_eq!(reply["flag"], true, "boolean extension keeps its type");
    for attr in [
        "id",
        "source",
        "subject",
        "dataschema",
        "time",
        "datacontenttype",
    ] {
        assert_eq!(
            reply[attr], event[attr],
            "`{attr}` passes through the guest"
        );
    }
}
