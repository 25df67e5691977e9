//! The CloudEvents HTTP binding at the front door, end to end: limits,
//! methods, the webhook handshake, modes in and out, and refusals with
//! their status codes (see docs/cloudevents.md).

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{ce, Host, Sink};

const STRUCTURED: &str = "application/cloudevents+json; charset=utf-8";
const BATCH: &str = "application/cloudevents-batch+json; charset=utf-8";

fn event_json(id: &str) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "/t", "type": "t", "data": {"n": 1}})
}

async fn error_of(r: reqwest::Response) -> Value {
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    r.json().await.unwrap()
}

#[tokio::test]
async fn body_limit_passes_64_kib_and_refuses_past_the_limit_with_413() {
    let host = Host::start().await;
    // Spec "Size Limits": 64 KiB events must pass.
    let data = format!("\"{}\"", "x".repeat(64 * 1024 - 2));
    let r = crate::harness::send_event(&host.client, &host.url("/"), "big", "t", &data).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // Past the default 1 MiB limit: 413 with a JSON reason.
    let data = format!("\"{}\"", "x".repeat(1024 * 1024));
    let r = crate::harness::send_event(&host.client, &host.url("/"), "huge", "t", &data).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = error_of(r).await;
    assert!(
        body["error"].as_str().unwrap().contains("max_body_bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn the_body_limit_is_configurable_but_never_below_64_kib() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[ingress]\nmax_body_bytes = 100000\n").unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    let data = |n: usize| format!("\"{}\"", "x".repeat(n - 2));
    let r =
        crate::harness::send_event(&host.client, &host.url("/"), "a", "t", &data(100_000)).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r =
        crate::harness::send_event(&host.client, &host.url("/"), "b", "t", &data(100_001)).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    drop(host);

    std::fs::write(&config, "[ingress]\nmax_body_bytes = 65535\n").unwrap();
    let err = crate::harness::start_up_error(&dir.path().join("data2"), &config);
    assert!(
        err.contains("max_body_bytes must be at least 65536"),
        "{err}"
    );
}

#[tokio::test]
async fn a_chunked_body_without_length_is_cut_at_the_limit() {
    let host = Host::start().await;
    let mut s = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    let head = "POST / HTTP/1.1\r\nhost: x\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-source: /t\r\nce-type: t\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 256 * 1024];
    let mut answer = Vec::new();
    // Send 2 MiB in chunks: the host answers once past 1 MiB, and reads
    // (and drops) the rest, so every write goes through and the answer is
    // not lost to a reset.
    for _ in 0..8 {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        s.write_all(&frame)
            .await
            .expect("the host cut the body off");
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("max_body_bytes"), "{text}");
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    for (method, path) in [
        (reqwest::Method::GET, "/"),
        (reqwest::Method::PUT, "/"),
        (reqwest::Method::DELETE, "/functions/echo"),
        (reqwest::Method::PATCH, "/functions/echo"),
    ] {
        let r = host
            .client
            .request(method.clone(), host.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(r.headers()["allow"], "POST, OPTIONS");
        let body = error_of(r).await;
        assert!(
            body["error"].as_str().unwrap().contains(method.as_str()),
            "{body}"
        );
    }
}

/// The event listener matches its two `POST`s by hand (the hot path, not
/// the router): only `/` and `/functions/{one segment}` are endpoints, the
/// segment is percent-decoded, and a query string is ignored.
#[tokio::test]
async fn posts_reach_exactly_the_two_event_endpoints() {
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    let post = |path: &str| {
        let mut req = host
            .client
            .post(host.url(path))
            .header("content-type", "application/json")
            .body("{}");
        for (k, v) in ce("m-1", "dev.sluice.match") {
            req = req.header(k, v);
        }
        req.send()
    };
    for path in [
        "/functions/echo",
        "/functions/%65cho",
        "/functions/echo?x=1",
    ] {
        let r = post(path).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["ce-type"], "dev.sluice.match.echoed", "{path}");
    }
    let r = post("/?x=1").await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for (path, reason) in [
        ("/functions/", "nothing at POST /functions/"),
        (
            "/functions/echo/more",
            "nothing at POST /functions/echo/more",
        ),
        ("/functions", "nothing at POST /functions"),
        ("/elsewhere", "nothing at POST /elsewhere"),
        ("/functions/Not_A_Name", "Not_A_Name"),
        ("/functions/%FF", "not UTF-8"),
        ("/functions/nope", "`nope` does not exist"),
    ] {
        let r = post(path).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body = error_of(r).await;
        assert!(
            body["error"].as_str().unwrap().contains(reason),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn options_answers_the_webhook_handshake() {
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    for path in ["/", "/functions/echo"] {
        // Webhook spec §4.1/§4.2: the origin asked for is granted.
        let r = host
            .client
            .request(reqwest::Method::OPTIONS, host.url(path))
            .header("WebHook-Request-Origin", "eventemitter.example.com")
            .header("WebHook-Request-Rate", "120")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(
            r.headers()["webhook-allowed-origin"],
            "eventemitter.example.com"
        );
        assert_eq!(r.headers()["webhook-allowed-rate"], "*");
        assert_eq!(r.headers()["allow"], "POST, OPTIONS");
        // A plain OPTIONS only learns the methods.
        let r = host
            .client
            .request(reqwest::Method::OPTIONS, host.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["allow"], "POST, OPTIONS");
        assert!(r.headers().get("webhook-allowed-origin").is_none());
    }
    let r = host
        .client
        .request(reqwest::Method::OPTIONS, host.url("/functions/nope"))
        .header("WebHook-Request-Origin", "eventemitter.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// What is sent, with which headers and body, the status expected, and a
/// word the reason must contain.
type Refusal = (
    &'static str,
    Vec<(&'static str, String)>,
    String,
    StatusCode,
    &'static str,
);

#[tokio::test]
async fn refusals_carry_their_status_and_a_reason() {
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    let url = host.url("/functions/echo");
    let cases: Vec<Refusal> = vec![
        ("unknown format", vec![("content-type", "application/cloudevents+avro".into())], "x".into(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "avro"),
        ("raw non-ASCII header", { let mut h = ce("1", "t"); h.push(("ce-subject", "caf\u{e9}".into())); h }, String::new(), StatusCode::BAD_REQUEST, "ce-subject"),
        ("invalid UTF-8 after decoding", { let mut h = ce("1", "t"); h.push(("ce-subject", "%C0%A0".into())); h }, String::new(), StatusCode::BAD_REQUEST, "UTF-8"),
        ("ce-datacontenttype", { let mut h = ce("1", "t"); h.push(("ce-datacontenttype", "text/plain".into())); h }, String::new(), StatusCode::BAD_REQUEST, "ce-datacontenttype"),
        ("specversion 0.3", vec![("ce-specversion", "0.3".into()), ("ce-id", "1".into()), ("ce-source", "/s".into()), ("ce-type", "t".into())], String::new(), StatusCode::BAD_REQUEST, "0.3"),
        ("bad time", { let mut h = ce("1", "t"); h.push(("ce-time", "yesterday".into())); h }, String::new(), StatusCode::BAD_REQUEST, "time"),
        ("data and data_base64", vec![("content-type", STRUCTURED.into())], r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}"#.into(), StatusCode::BAD_REQUEST, "data_base64"),
        ("missing type", vec![("content-type", STRUCTURED.into())], r#"{"specversion":"1.0","id":"1","source":"/s"}"#.into(), StatusCode::BAD_REQUEST, "type"),
    ];
    for (what, headers, body, status, needle) in cases {
        let mut req = host.client.post(&url).body(body);
        for (k, v) in &headers {
            req = req.header(*k, v.as_str());
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), status, "{what}");
        let body = error_of(r).await;
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn a_bad_batch_is_refused_whole_with_the_index() {
    let host = Host::start().await;
    let mut sink = Sink::start().await;
    host.deploy_ok("echo", "echo").await;
    host.trigger_ok(
        "all",
        json!({"filter": {"type": "t"}, "function": "echo", "sink": sink.url()}),
    )
    .await;
    let mut bad = event_json("2");
    bad["source"] = json!("not a uri reference");
    let body = json!([event_json("1"), bad, event_json("3")]).to_string();
    let r = host
        .client
        .post(host.url("/"))
        .header("content-type", BATCH)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let err = error_of(r).await;
    assert_eq!(err["index"], 1, "{err}");
    assert!(err["error"].as_str().unwrap().contains("source"), "{err}");
    // None of the batch was stored or routed, so nothing can reach the sink.
    for metric in [
        "sluice_durable_log_appended_total",
        "sluice_events_accepted_total",
    ] {
        assert_eq!(host.metric(metric, &[]).await, Some(0.0), "{metric}");
    }
    sink.assert_empty();
    // The good batch is accepted, each event routed; an empty one too.
    let body = json!([event_json("1"), event_json("3")]).to_string();
    let r = host
        .client
        .post(host.url("/"))
        .header("content-type", BATCH)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mut ids = vec![
        sink.next(Duration::from_secs(10))
            .await
            .header("ce-id")
            .unwrap()
            .to_owned(),
        sink.next(Duration::from_secs(10))
            .await
            .header("ce-id")
            .unwrap()
            .to_owned(),
    ];
    ids.sort();
    assert_eq!(ids, ["1", "3"]);
    let r = host
        .client
        .post(host.url("/"))
        .header("content-type", BATCH)
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn replies_use_the_request_mode_unless_accept_asks() {
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    let url = host.url("/functions/echo");
    let subject = "Euro € 😀";
    let bytes: Vec<u8> = vec![0, 1, 2, 0xff, b'"', b'\n'];

    // Binary in, binary out: §3.1.3.2 percent-encoding, data byte for byte.
    let mut req = host
        .client
        .post(&url)
        .header("content-type", "application/octet-stream")
        .header("ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80")
        .body(bytes.clone());
    for (k, v) in ce("b1", "t") {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["ce-subject"], "Euro%20%E2%82%AC%20%F0%9F%98%80");
    assert_eq!(r.headers()["ce-type"], "t.echoed");
    assert_eq!(&r.bytes().await.unwrap()[..], &bytes[..]);

    // Binary in, Accept structured: a JSON event format document.
    let mut req = host
        .client
        .post(&url)
        .header("accept", "application/cloudevents+json")
        .header("content-type", "application/json")
        .body(r#"{"a": [1, 2]}"#);
    for (k, v) in ce("b2", "t") {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/cloudevents+json"));
    let text = r.text().await.unwrap();
    assert!(
        text.contains(r#""data":{"a": [1, 2]}"#),
        "JSON data kept verbatim: {text}"
    );

    // Structured in, structured out, with every attribute kept.
    let mut e = event_json("s1");
    e["subject"] = json!(subject);
    e["time"] = json!("2026-11-25T10:00:00.5+02:00");
    e["ext"] = json!(7);
    let r = host
        .client
        .post(&url)
        .header("content-type", STRUCTURED)
        .body(e.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/cloudevents+json"));
    let got: Value = r.json().await.unwrap();
    for k in [
        "id",
        "source",
        "subject",
        "time",
        "ext",
        "data",
        "specversion",
    ] {
        assert_eq!(got[k], e[k], "{k}");
    }

    // Binary in, Accept batch: a batch of one.
    let mut req = host
        .client
        .post(&url)
        .header("accept", "application/cloudevents-batch+json");
    for (k, v) in ce("b3", "t") {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/cloudevents-batch+json"));
    let got: Value = r.json().await.unwrap();
    assert_eq!(got[0]["id"], "b3");
    assert_eq!(got.as_array().unwrap().len(), 1);
}
