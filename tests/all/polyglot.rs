//! Handlers in Python, JavaScript and Go (functions/*-py, functions/*-js,
//! functions/*-go, built with componentize-py, componentize-js and Go's
//! wasip1 port) on the real host: the same events in give the same events
//! out as their Rust twins, a guest exception (a Go panic) is an invocation
//! failure with its message, and the memory cap and CPU deadline hold for
//! them. The interpreted components take 15–20 s each to compile, so each
//! test starts one host and checks several things on it.

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{send_event, Host, Sink};

const WAIT: Duration = Duration::from_secs(20);

/// What a direct invocation answered: status, the CloudEvents headers and
/// content type (sorted), and the body.
#[derive(Debug, PartialEq)]
struct Answer {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn invoke(host: &Host, function: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut req = host
        .client
        .post(host.url(&format!("/functions/{function}")))
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("ce-") || k.as_str() == "content-type")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    Answer {
        status,
        headers,
        body: r.bytes().await.unwrap().to_vec(),
    }
}

/// One request: its headers and its body.
type Case = (Vec<(&'static str, &'static str)>, Vec<u8>);

/// The events every echo must give back unchanged but for its type.
fn echo_cases() -> Vec<Case> {
    let binary: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xfe]).collect();
    vec![
        // Binary mode: extensions, a percent-encoded unicode subject, JSON.
        (
            vec![
                ("ce-specversion", "1.0"),
                ("ce-id", "order-1"),
                ("ce-source", "/shop"),
                ("ce-type", "com.example.order"),
                ("ce-subject", "Euro%20%E2%82%AC"),
                ("ce-tenant", "acme"),
                ("ce-time", "2026-01-02T03:04:05Z"),
                ("ce-dataschema", "https://example.com/order.json"),
                ("content-type", "application/json"),
            ],
            r#"{"total": 12.5, "note": "naïve café ☕ 你好"}"#.as_bytes().to_vec(),
        ),
        // Binary data, every byte value, no JSON anywhere.
        (
            vec![
                ("ce-specversion", "1.0"),
                ("ce-id", "blob-1"),
                ("ce-source", "/blobs"),
                ("ce-type", "com.example.blob"),
                ("content-type", "application/octet-stream"),
            ],
            binary,
        ),
        // No data at all.
        (
            vec![
                ("ce-specversion", "1.0"),
                ("ce-id", "empty-1"),
                ("ce-source", "/s"),
                ("ce-type", "t"),
            ],
            Vec::new(),
        ),
        // Structured mode: typed extensions (the integer bounds, a boolean).
        (
            vec![("content-type", "application/cloudevents+json")],
            json!({
                "specversion": "1.0", "id": "s1", "source": "/s", "type": "t",
                "datacontenttype": "application/json", "data": {"k": [1, 2], "u": "ü"},
                "count": 2147483647, "small": -2147483648, "flag": true, "label": "x"
            })
            .to_string()
            .into_bytes(),
        ),
    ]
}

#[tokio::test]
async fn python_js_and_go_echo_answer_exactly_like_the_rust_echo() {
    let host = Host::start_patient().await;
    let mut sink = Sink::start().await;
    for f in ["echo", "echo-py", "echo-js", "echo-go"] {
        host.deploy_ok(f, f).await;
    }

    for (headers, body) in echo_cases() {
        let rust = invoke(&host, "echo", &headers, &body).await;
        assert_eq!(
            rust.status,
            StatusCode::OK,
            "{:?}",
            String::from_utf8_lossy(&rust.body)
        );
        for f in ["echo-py", "echo-js", "echo-go"] {
            let got = invoke(&host, f, &headers, &body).await;
            assert_eq!(got, rust, "{f} differs from the Rust echo for {headers:?}");
        }
    }
    // The structured reply keeps the extensions' types in every language.
    let (headers, body) = echo_cases().pop().unwrap();
    for f in ["echo", "echo-py", "echo-js", "echo-go"] {
        let mut h = headers.clone();
        h.push(("accept", "application/cloudevents+json"));
        let a = invoke(&host, f, &h, &body).await;
        let reply: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(reply["type"], "t.echoed", "{f}");
        assert_eq!(reply["count"], 2147483647, "{f}: {reply}");
        assert_eq!(reply["small"], -2147483648_i64, "{f}");
        assert_eq!(reply["flag"], true, "{f}");
        assert_eq!(reply["label"], "x", "{f}");
        assert_eq!(reply["data"], json!({"k": [1, 2], "u": "ü"}), "{f}");
    }

    // Through the ingress and a trigger, to a real sink.
    for f in ["echo-py", "echo-js", "echo-go"] {
        host.trigger_ok(
            f,
            json!({"filter": {"type": format!("to.{f}")}, "function": f, "sink": sink.url()}),
        )
        .await;
        let r = send_event(
            &host.client,
            &host.url("/"),
            "via-ingress",
            &format!("to.{f}"),
            r#"{"a":1}"#,
        )
        .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let got = sink.next(WAIT).await;
        assert_eq!(
            got.header("ce-type"),
            Some(format!("to.{f}.echoed").as_str())
        );
        assert_eq!(got.header("ce-id"), Some("via-ingress"));
        assert_eq!(got.header("ce-source"), Some("/tests"));
        assert_eq!(&got.body[..], br#"{"a":1}"#);
    }
}

#[tokio::test]
async fn currency_convert_agrees_in_four_languages() {
    let host = Host::start_patient().await;
    for f in [
        "currency-convert",
        "currency-convert-py",
        "currency-convert-js",
        "currency-convert-go",
    ] {
        host.deploy_ok(f, f).await;
    }
    let headers = [
        ("ce-specversion", "1.0"),
        ("ce-id", "rate-1"),
        ("ce-source", "/rates"),
        ("ce-type", "dev.sluice.currency.rate"),
        ("content-type", "application/json"),
    ];
    for data in [
        r#"{"base":"USD","quote":"EUR","rate":0.5,"amount":250}"#,
        r#"{"base":"GBP","quote":"JPY","rate":187.125}"#,
        r#"{"base":"EUR","quote":"CHF","rate":0.935,"amount":-10.005}"#,
    ] {
        let rust = invoke(&host, "currency-convert", &headers, data.as_bytes()).await;
        assert_eq!(rust.status, StatusCode::OK);
        let want: serde_json::Value = serde_json::from_slice(&rust.body).unwrap();
        for f in [
            "currency-convert-py",
            "currency-convert-js",
            "currency-convert-go",
        ] {
            let got = invoke(&host, f, &headers, data.as_bytes()).await;
            assert_eq!(got.status, rust.status, "{f}");
            assert_eq!(got.headers, rust.headers, "{f}");
            // Numbers compare as numbers (JavaScript writes 125, Rust 125.0).
            let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
            for key in ["base", "quote"] {
                assert_eq!(body[key], want[key], "{f} {key}: {body}");
            }
            for key in ["rate", "amount", "converted"] {
                assert_eq!(body[key].as_f64(), want[key].as_f64(), "{f} {key}: {body}");
            }
        }
    }
    // A handler error is the caller's problem in every language: 422 with
    // the reason.
    for f in [
        "currency-convert",
        "currency-convert-py",
        "currency-convert-js",
        "currency-convert-go",
    ] {
        for (data, reason) in [
            (r#"{"rate":1}"#, "invalid JSON data"),
            ("not json", "invalid JSON data"),
            (
                r#"{"base":"A","quote":"B","rate":-1}"#,
                "rate must be a positive number",
            ),
        ] {
            let got = invoke(&host, f, &headers, data.as_bytes()).await;
            assert_eq!(got.status, StatusCode::UNPROCESSABLE_ENTITY, "{f} {data}");
            let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
            let error = body["error"].as_str().unwrap();
            assert!(error.contains(reason), "{f} {data}: {error}");
        }
    }
}

async fn error_of(host: &Host, function: &str, id: &str, ty: &str) -> (StatusCode, String) {
    let r = send_event(
        &host.client,
        &host.url(&format!("/functions/{function}")),
        id,
        ty,
        "{}",
    )
    .await;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn guest_exceptions_memory_caps_and_deadlines_hold_for_python_js_and_go() {
    let host = Host::start_patient().await;
    host.deploy_ok("echo", "echo").await;
    for (f, exception) in [
        ("misbehave-py", "ValueError"),
        ("misbehave-js", "TypeError"),
        ("misbehave-go", "panic"),
    ] {
        let bytes = std::fs::read(crate::harness::function(f)).unwrap();
        let r = host.upload(f, bytes, "?timeout=500ms&memory_mib=96").await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );

        // An exception traps the invocation, like a Rust panic; its message
        // (the tail of stderr) is in the host log, not in the answer.
        let (status, reason) = error_of(&host, f, "x1", "raise").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{f}: {reason}");
        assert!(reason.contains("trapped"), "{f}: {reason}");
        let message = format!("{exception}: {f} refused x1");
        host.wait_for_log("the exception in the host log", |v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(&message))
        })
        .await;

        // The CPU deadline stops an endless loop.
        let (status, reason) = error_of(&host, f, "s1", "spin").await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{f}: {reason}");
        assert!(reason.contains("timed out after 500ms"), "{f}: {reason}");

        // The memory cap stops unbounded allocation. Deployed again with a
        // deadline far off, so that on a loaded machine the cap, not the
        // clock, is what ends the run.
        let hog = format!("{f}-hog");
        let bytes = std::fs::read(crate::harness::function(f)).unwrap();
        let r = host.upload(&hog, bytes, "?timeout=20s&memory_mib=96").await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let (status, reason) = error_of(&host, &hog, "h1", "hog").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{f}: {reason}");
        assert!(
            reason.contains("out of memory") && reason.contains("96 MiB"),
            "{f}: {reason}"
        );

        // Logging reaches the host log, tagged with the function.
        let r = send_event(
            &host.client,
            &host.url(&format!("/functions/{f}")),
            "l1",
            "log",
            "{}",
        )
        .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{f}");
        let needle = format!("{f} logged l1");
        host.wait_for_log("the guest's log record", |v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(&needle))
        })
        .await;

        // And the next event is served as usual.
        let r = send_event(
            &host.client,
            &host.url(&format!("/functions/{f}")),
            "ok",
            "fine",
            "{}",
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{f}");
    }
    // A Go handler's returned error fails only its invocation: 422 with the
    // error's message, like a Rust `Err`.
    let (status, reason) = error_of(&host, "misbehave-go", "f1", "fail").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reason}");
    assert!(reason.contains("misbehave-go failed f1"), "{reason}");
    let r = send_event(
        &host.client,
        &host.url("/functions/echo"),
        "after",
        "t",
        "{}",
    )
    .await;
    let status = r.status();
    assert_eq!(status, StatusCode::OK, "{}", r.text().await.unwrap());
}

/// examples/polyglot/sluice.toml on a real broker: Python converts, Rust
/// enriches, JavaScript formats, and the record lands on the topic.
#[tokio::test]
async fn polyglot_pipeline_produces_to_kafka() {
    use crate::kafka::Broker;

    let broker = Broker::start();
    broker.client(&["create", "rates-formatted", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Deploy the two interpreted handlers once, with the settings the file
    // declares, so the host that applies the file finds their artifacts
    // and starts without compiling them again.
    {
        let patient = dir.path().join("patient.toml");
        std::fs::write(&patient, crate::harness::PATIENT_ADMIN).unwrap();
        let host = Host::start_with(&data, Some(&patient), &[]).await;
        for (name, file) in [
            ("convert", "currency-convert-py"),
            ("format", "rate-format-js"),
        ] {
            let bytes = std::fs::read(crate::harness::function(file)).unwrap();
            let r = host.upload(name, bytes, "?reuse=1000").await;
            assert_eq!(
                r.status(),
                StatusCode::CREATED,
                "{}",
                r.text().await.unwrap()
            );
        }
        host.stop();
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/polyglot/sluice.toml");
    let functions = crate::harness::function("echo");
    let functions = functions.parent().unwrap();
    let config = std::fs::read_to_string(&example)
        .unwrap()
        .replace("127.0.0.1:9092", &broker.addr)
        .replace("../../target/functions", functions.to_str().unwrap());
    let config_path = dir.path().join("sluice.toml");
    std::fs::write(&config_path, config).unwrap();
    let host = Host::start_with(&data, Some(&config_path), &[]).await;

    let r = send_event(
        &host.client,
        &host.url("/"),
        "r1",
        "dev.sluice.currency.rate",
        r#"{"base":"USD","quote":"EUR","rate":0.92,"amount":100}"#,
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (broker, lines) = tokio::task::spawn_blocking(move || {
        let lines = broker.client(&["consume", "rates-formatted", "1", "60"]);
        (broker, lines)
    })
    .await
    .unwrap();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let record: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(
        record["headers"]["ce_type"], "dev.sluice.currency.formatted",
        "{record}"
    );
    assert_eq!(record["headers"]["ce_id"], "r1", "{record}");
    let value: serde_json::Value = serde_json::from_str(record["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        value,
        json!({"pair": "USD/EUR", "text": "100.00 USD = 92.00 EUR at 0.92 (1 EUR = 1.086957 USD, major pair)"})
    );
    host.stop();
    drop(broker);
}

/// The `source` world in Python, JavaScript and Go: a source function's
/// events reach the binding's sink, and the state it returns comes back
/// next run.
#[tokio::test]
async fn python_js_and_go_source_functions_emit_and_keep_their_state() {
    for (f, lang) in [
        ("tick-source-py", "python"),
        ("tick-source-js", "js"),
        ("tick-source-go", "go"),
    ] {
        let mut sink = Sink::start().await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("sluice.toml");
        std::fs::write(
            &config,
            format!(
                "[sources.ticks]\nkind = \"function\"\npath = \"{}\"\nschedule = \"* * * * * *\"\n\
                 sink = \"{}\"\nconfig = {{ count = \"2\" }}\n",
                crate::harness::function(f).display(),
                sink.url()
            ),
        )
        .unwrap();
        // The host compiles the declared component before it serves.
        let host = Host::start_within(
            Duration::from_secs(120),
            &dir.path().join("data"),
            Some(&config),
            &[],
        )
        .await;
        let mut runs = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let got = sink.next(WAIT).await;
            assert_eq!(
                got.header("ce-type"),
                Some("com.example.source.tick"),
                "{f}"
            );
            assert_eq!(got.header("ce-lang"), Some(lang), "{f}");
            assert_eq!(
                got.header("ce-source"),
                Some("/sluice/sources/ticks"),
                "{f}"
            );
            let data: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
            runs.insert(data["run"].as_u64().unwrap());
        }
        // Four events of two per run: the run counter in the state moved on.
        assert!(runs.len() >= 2, "{f}: {runs:?}");
        host.stop();
    }
}
