//! Functions and triggers declared in sluice.toml, including the shipped
//! quick-start example.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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

/// Every file under `dir`, with its contents.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path, bytes);
            }
        }
    }
    out
}

#[tokio::test]
async fn a_host_whose_listen_address_is_taken_fires_no_source_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("sluice.toml");
    // An earlier run left a store behind.
    std::fs::write(
        &config,
        "[triggers.old]\nfilter = { type = \"o\" }\nsubscriber = \"log\"\n",
    )
    .unwrap();
    let host = Host::start_with(&data, Some(&config), &[]).await;
    assert!(host.stop().success());
    let before = files_under(&data);
    assert!(before.keys().any(|p| p.ends_with("triggers/old.json")));

    // The new config adds a trigger and a ping every second to a sink.
    let mut sink = Sink::start().await;
    std::fs::write(
        &config,
        format!(
            "[triggers.new]\nfilter = {{ type = \"n\" }}\nsubscriber = \"log\"\n\n\
             [sources.beat]\nkind = \"ping\"\nschedule = \"* * * * * *\"\ncatch_up = true\nsink = \"{}\"\n",
            sink.url()
        ),
    )
    .unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", &addr.to_string()])
        .args(["--admin-listen", "127.0.0.1:0", "--log-json", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info,sluice=debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("listening on {addr}")), "{stderr}");
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(logs.contains("sluice is starting"), "{logs}");
    assert!(!logs.contains("source started"), "{logs}");
    // The store is exactly as the earlier run left it.
    assert_eq!(files_under(&data), before);
    // The process is gone, so no delivery of it can still be on the way.
    sink.assert_empty();
    drop(taken);
}

#[tokio::test]
async fn a_source_that_cannot_be_used_leaves_the_store_unwritten() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("sluice.toml");
    // A new trigger, and a source whose component is a handler, not a
    // source function.
    std::fs::write(
        &config,
        format!(
            "[triggers.new]\nfilter = {{ type = \"n\" }}\nsubscriber = \"log\"\n\n\
             [sources.s]\nkind = \"function\"\npath = \"{}\"\nschedule = \"0 0 1 1 *\"\nsink = \"log\"\n",
            function("echo").display()
        ),
    )
    .unwrap();
    let err = crate::harness::start_up_error(&data, &config);
    assert!(err.contains("sluice:handler/source"), "{err}");
    assert!(data.join("triggers").is_dir(), "the store was opened");
    assert!(!data.join("triggers/new.json").exists(), "{err}");
    assert!(!data.join("file-owned.json").exists());
}

#[tokio::test]
async fn a_function_dropped_from_the_file_is_removed_at_start_unless_something_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("sluice.toml");
    let declare = |names: &[&str]| {
        let text: String = names
            .iter()
            .map(|n| {
                format!(
                    "[functions.{n}]\npath = \"{}\"\n",
                    function("echo").display()
                )
            })
            .collect();
        std::fs::write(&config, text).unwrap();
    };
    declare(&["echo", "spare"]);
    let host = Host::start_with(&data, Some(&config), &[]).await;
    host.trigger_ok("uses-echo", serde_json::json!({"function": "echo"}))
        .await;
    assert!(host.stop().success());

    // Both dropped: `echo` is still used, so the start is refused, and
    // nothing is removed.
    declare(&[]);
    let err = crate::harness::start_up_error(&data, &config);
    assert!(
        err.contains("function `echo` is no longer declared")
            && err.contains("trigger `uses-echo`"),
        "{err}"
    );
    assert!(data.join("functions/spare").is_dir());

    // Only `spare` dropped: it is removed, `echo` stays.
    declare(&["echo"]);
    let host = Host::start_with(&data, Some(&config), &[]).await;
    let status = |path: &'static str| {
        let r = host.admin(reqwest::Method::GET, path).send();
        async move { r.await.unwrap().status() }
    };
    assert_eq!(
        status("/admin/v1/functions/spare").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(status("/admin/v1/functions/echo").await, StatusCode::OK);
}
