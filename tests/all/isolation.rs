//! A misbehaving handler fails only its own invocation.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{send_event, Host, Sink};

async fn error_of(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn trap_fails_its_own_invocation_and_the_host_keeps_serving() {
    let host = Host::start().await;
    let mut sink = Sink::start().await;
    host.deploy_ok("trap", "trap").await;
    host.deploy_ok("echo", "echo").await;
    for (name, f) in [("traps", "trap"), ("echoes", "echo")] {
        host.trigger_ok(
            name,
            json!({"filter": {"type": "t"}, "function": f, "sink": sink.url()}),
        )
        .await;
    }

    let (status, reason) =
        error_of(send_event(&host.client, &host.url("/functions/trap"), "x1", "t", "{}").await)
            .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reason.contains("trapped"), "{reason}");

    // Through the ingress, the trapping trigger fails alone: echo's reply
    // still arrives, for this event and the next.
    for id in ["a", "b"] {
        let r = send_event(&host.client, &host.url("/"), id, "t", "{}").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let got = sink.next(Duration::from_secs(10)).await;
        assert_eq!(got.header("ce-id"), Some(id));
        assert_eq!(got.header("ce-type"), Some("t.echoed"));
    }
    host.wait_for_log("delivery failure logged", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("delivery failed"))
            && v["fields"]["trigger"] == "traps"
    })
    .await;
}

#[tokio::test]
async fn spin_times_out_with_504_and_others_keep_running() {
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    let r = host
        .upload(
            "spin",
            std::fs::read(crate::harness::function("spin")).unwrap(),
            "?timeout=5s",
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let spinning = {
        let client = host.client.clone();
        let url = host.url("/functions/spin");
        tokio::spawn(async move { send_event(&client, &url, "s", "t", "{}").await })
    };
    // Once spin runs...
    host.wait_for_metric("sluice_live_instances", &[("function", "spin")], |v| {
        v >= 1.0
    })
    .await;
    // ...echo answers, while it spins.
    for i in 0..5 {
        let r = send_event(
            &host.client,
            &host.url("/functions/echo"),
            &format!("e{i}"),
            "t",
            "{}",
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Spin was still running: the calls overlapped.
    assert_eq!(
        host.metric("sluice_live_instances", &[("function", "spin")])
            .await,
        Some(1.0),
        "spin had stopped before echo answered: nothing overlapped"
    );
    let (status, reason) = error_of(spinning.await.unwrap()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(reason.contains("timed out after 5s"), "{reason}");
}

#[tokio::test]
async fn hog_hits_its_memory_cap_and_overflow_its_stack() {
    let host = Host::start().await;
    let hog = std::fs::read(crate::harness::function("hog")).unwrap();
    assert_eq!(
        host.upload("hog", hog, "?memory_mib=16").await.status(),
        StatusCode::CREATED
    );
    host.deploy_ok("overflow", "overflow").await;
    host.deploy_ok("echo", "echo").await;

    let (status, reason) =
        error_of(send_event(&host.client, &host.url("/functions/hog"), "h", "t", "{}").await).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        reason.contains("out of memory") && reason.contains("16 MiB"),
        "{reason}"
    );

    let (status, reason) = error_of(
        send_event(
            &host.client,
            &host.url("/functions/overflow"),
            "o",
            "t",
            "{}",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reason, "stack overflow");

    let r = send_event(
        &host.client,
        &host.url("/functions/echo"),
        "after",
        "t",
        "{}",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}
