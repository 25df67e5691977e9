//! Functions and triggers declared in sluice.toml, including the shipped
//! quick-start example.

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;

use crate::harness::{function, send_event, Host, Sink};

#[tokio::test]
async fn declared_functions_and_triggers_run_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::start().await;
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [functions.convert]
            path = "{}"
            timeout = "500ms"

            [triggers.rates]
            filter = {{ type = "dev.sluice.currency.rate" }}
            function = "convert"
            sink = "{}"
            "#,
            function("currency-convert").display(),
            sink.url()
        ),
    )
    .unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    let r = send_event(
        &host.client,
        &host.url("/"),
        "r1",
        "dev.sluice.currency.rate",
        r#"{"base":"GBP","quote":"JPY","rate":190.25,"amount":2}"#,
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let got = sink.next(Duration::from_secs(10)).await;
    assert_eq!(got.header("ce-type"), Some("dev.sluice.currency.converted"));
    let data: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(data["converted"], 380.5);
}

#[tokio::test]
async fn a_broken_config_file_stops_start_up_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[functions.x]\npath = \"missing.wasm\"\n").unwrap();
    let err = crate::harness::start_up_error(&dir.path().join("data"), &config);
    assert!(
        err.contains("reading function `x`") && err.contains("missing.wasm"),
        "{err}"
    );
}

#[tokio::test]
async fn the_quickstart_example_converts_rates_to_its_log_sink() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/sluice.toml");
    let data = tempfile::tempdir().unwrap();
    let host = Host::start_with(data.path(), Some(&example), &[]).await;
    let r = send_event(
        &host.client,
        &host.url("/"),
        "q1",
        "dev.sluice.currency.rate",
        r#"{"base":"USD","quote":"EUR","rate":0.92,"amount":100}"#,
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let shown = host
        .wait_for_log("converted event on the log sink", |v| {
            v["target"] == "sluice::display"
                && v["fields"]["type"] == "dev.sluice.currency.converted"
        })
        .await;
    let data: serde_json::Value =
        serde_json::from_str(shown["fields"]["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["converted"], 92.0);
    // The example's echo function answers directly too.
    let r = send_event(
        &host.client,
        &host.url("/functions/echo"),
        "q2",
        "hello",
        "{}",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}
