//! The admin API and CLI: uploads, refusals, persistence across restarts.

use std::process::Command;

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{function, send_event, Host};

#[tokio::test]
async fn bad_uploads_are_refused_with_a_reason_and_the_old_version_stays() {
    let host = Host::start().await;
    host.deploy_ok("f", "echo").await;

    let r = host.upload("f", b"definitely not wasm".to_vec(), "").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly binary"),
        "{body}"
    );

    // A core module (not a component) gets advice.
    let r = host.upload("f", b"\0asm\x01\0\0\0".to_vec(), "").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("core WebAssembly module"),
        "{body}"
    );

    // A component truncated half-way fails validation.
    let mut echo = std::fs::read(function("echo")).unwrap();
    echo.truncate(echo.len() / 2);
    let r = host.upload("f", echo, "").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid component"),
        "{body}"
    );

    // Wrong content type.
    let r = host
        .client
        .put(host.admin_url("/admin/v1/functions/f"))
        .header("content-type", "text/plain")
        .body(std::fs::read(function("echo")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Bad name.
    let r = host
        .upload("Bad_Name", std::fs::read(function("echo")).unwrap(), "")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The echo deployed first still answers.
    let r = send_event(&host.client, &host.url("/functions/f"), "1", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["ce-type"], "t.echoed");
}

#[tokio::test]
async fn upload_answers_name_digest_size_and_list_get_delete_work() {
    let host = Host::start().await;
    let bytes = std::fs::read(function("echo")).unwrap();
    let r = host.upload("echo", bytes.clone(), "").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let rec: serde_json::Value = r.json().await.unwrap();
    assert_eq!(rec["name"], "echo");
    assert_eq!(rec["size"], bytes.len());
    assert_eq!(rec["digest"].as_str().unwrap().len(), 64);

    let list = host.get_json("/admin/v1/functions").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    host.trigger_ok("t", json!({"filter": {"type": "x"}, "function": "echo"}))
        .await;
    // A trigger on a function that does not exist is refused.
    let r = host
        .client
        .put(host.admin_url("/admin/v1/triggers/u"))
        .json(&json!({"function": "ghost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Malformed trigger JSON is refused with serde's reason.
    let r = host
        .client
        .put(host.admin_url("/admin/v1/triggers/u"))
        .json(&json!({"function": "echo", "sink": "ftp://x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Deleting a function in use is refused; after its trigger goes, it can go.
    let r = host
        .client
        .delete(host.admin_url("/admin/v1/functions/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = host
        .client
        .delete(host.admin_url("/admin/v1/triggers/t"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = host
        .client
        .delete(host.admin_url("/admin/v1/functions/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = host
        .client
        .get(host.admin_url("/admin/v1/functions/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = send_event(&host.client, &host.url("/functions/echo"), "1", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn functions_and_triggers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = crate::harness::Sink::start().await;
    let host = Host::start_with(dir.path(), None, &[]).await;
    host.deploy_ok("echo", "echo").await;
    host.trigger_ok(
        "t",
        json!({"filter": {"type": "t"}, "function": "echo", "sink": sink.url()}),
    )
    .await;
    host.stop();

    let host = Host::start_with(dir.path(), None, &[]).await;
    let r = send_event(&host.client, &host.url("/functions/echo"), "1", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send_event(&host.client, &host.url("/"), "2", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        sink.next(std::time::Duration::from_secs(10))
            .await
            .header("ce-id"),
        Some("2")
    );
}

#[tokio::test]
async fn cli_deploys_binds_sends_and_lists() {
    let host = Host::start().await;
    let mut sink = crate::harness::Sink::start().await;
    let (admin, events) = (host.admin_url(""), host.url(""));
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .env("SLUICE_ADMIN_URL", &admin)
            .env("SLUICE_URL", &events)
            .env_remove("SLUICE_ADMIN_TOKEN")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr)
    };
    let echo = function("echo");
    let (ok, out, err) = cli(&["deploy", "echo", echo.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"name\": \"echo\""), "{out}");
    let sink_url = sink.url();
    let (ok, _, err) = cli(&[
        "trigger",
        "pings",
        "--function",
        "echo",
        "--type",
        "ping",
        "--sink",
        &sink_url,
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = cli(&[
        "send",
        "--type",
        "ping",
        "--id",
        "cli-1",
        "--data",
        r#"{"n":1}"#,
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with("202"), "{out}");
    let got = sink.next(std::time::Duration::from_secs(10)).await;
    assert_eq!(got.header("ce-id"), Some("cli-1"));
    assert_eq!(&got.body[..], br#"{"n":1}"#);

    let to = host.url("/functions/echo");
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["send", "--type", "ping", "--to", &to])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("\"type\": \"ping.echoed\""), "{out}");

    let (ok, out, _) = cli(&["ls"]);
    assert!(ok);
    assert!(
        out.contains("echo") && out.contains("pings") && out.contains("type=ping"),
        "{out}"
    );

    let (ok, _, err) = cli(&["deploy", "bad", "/etc/hostname"]);
    assert!(!ok);
    assert!(
        err.contains("400") && err.contains("not a WebAssembly binary"),
        "{err}"
    );
}
