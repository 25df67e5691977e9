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

/// The names of the stored triggers, as `GET /admin/v1/triggers` lists them.
async fn trigger_names(host: &Host) -> Vec<String> {
    let all = host.get_json("/admin/v1/triggers").await;
    all.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn a_trigger_deleted_from_the_file_is_gone_after_a_restart_while_an_admin_created_one_stays()
{
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("sluice.toml");
    let mut sink = Sink::start().await;
    std::fs::write(
        &config,
        format!(
            "[triggers.from-file]\nfilter = {{ type = \"t\" }}\nsubscriber = \"{}\"\n",
            sink.url()
        ),
    )
    .unwrap();
    let host = Host::start_with(&data, Some(&config), &[]).await;
    host.trigger_ok(
        "from-api",
        serde_json::json!({"filter": {"type": "t"}, "subscriber": sink.url()}),
    )
    .await;
    assert_eq!(trigger_names(&host).await, ["from-api", "from-file"]);
    assert!(host.stop().success());

    // The file no longer declares its trigger.
    std::fs::write(&config, "").unwrap();
    let host = Host::start_with(&data, Some(&config), &[]).await;
    host.wait_for_log("the dropped trigger's removal", |v| {
        v["fields"]["message"] == "removed: no longer declared in the config file"
            && v["fields"]["name"] == "from-file"
    })
    .await;
    assert_eq!(trigger_names(&host).await, ["from-api"]);
    // The admin API's trigger still routes.
    let r = send_event(&host.client, &host.url("/"), "e1", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let got = sink.next(Duration::from_secs(10)).await;
    assert_eq!(got.header("ce-id"), Some("e1"));
    host.wait_for_metric(
        "sluice_deliveries_total",
        &[("trigger", "from-api"), ("outcome", "delivered")],
        |n| n == 1.0,
    )
    .await;
    assert!(host.stop().success());

    // And it stays the admin API's across further restarts.
    let host = Host::start_with(&data, Some(&config), &[]).await;
    assert_eq!(trigger_names(&host).await, ["from-api"]);
}

#[tokio::test]
async fn an_admin_edit_of_an_unrelated_object_succeeds_while_a_stored_trigger_names_a_missing_function(
) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A stored trigger whose function is gone (lost with its files).
    std::fs::create_dir_all(data.join("triggers")).unwrap();
    std::fs::write(
        data.join("triggers/stale.json"),
        r#"{"filter": {"type": "s"}, "function": "gone"}"#,
    )
    .unwrap();
    let host = Host::start_with(&data, None, &[]).await;
    assert_eq!(trigger_names(&host).await, ["stale"]);

    // Other objects can still be created, changed and deleted.
    host.trigger_ok(
        "other",
        serde_json::json!({"filter": {"type": "o"}, "subscriber": "log"}),
    )
    .await;
    let r = host
        .admin(reqwest::Method::PUT, "/admin/v1/sinks/out")
        .json(&serde_json::json!({"type": "log"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let r = host
        .admin(reqwest::Method::DELETE, "/admin/v1/triggers/other")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "{}",
        r.text().await.unwrap()
    );

    // A new reference to a missing function is still refused.
    let r = host
        .admin(reqwest::Method::PUT, "/admin/v1/triggers/new")
        .json(&serde_json::json!({"filter": {"type": "n"}, "function": "gone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let reason = r.text().await.unwrap();
    assert!(
        reason.contains("function `gone` does not exist"),
        "{reason}"
    );
    assert_eq!(trigger_names(&host).await, ["stale"]);
}
