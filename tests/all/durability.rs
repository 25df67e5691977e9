//! The durable ingress log: what got a 202 survives SIGKILL, and a full log
//! answers 503 instead of accepting what it cannot keep.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{send_event, Host, Sink};

/// Events streamed at the host in the crash test.
const N: usize = 600;
/// Concurrent senders.
const SENDERS: usize = 8;

// Multi-threaded: `Host::stop` blocks its thread while the host finishes
// deliveries to the sink served by this runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_event_arrives_after_a_sigkill_and_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut sink = Sink::start().await;
    let host = Host::start_with(data.path(), None, &[]).await;
    host.deploy_ok("echo", "echo").await;
    host.trigger_ok(
        "all",
        json!({"filter": {"type": "crash.test"}, "function": "echo", "sink": sink.url()}),
    )
    .await;

    // Stream events from several senders, and kill the host mid-stream.
    let accepted =
        crate::harness::stream_until_killed(host, N, SENDERS, "e", "/crash", "crash.test").await;

    // Restart on the same data directory; its functions and triggers are
    // stored there, and so are the pending events.
    let host = Host::start_with(data.path(), None, &[]).await;
    let mut seen = BTreeSet::new();
    let mut duplicates = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !accepted.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "lost {} accepted events, e.g. {:?}",
            accepted.difference(&seen).count(),
            accepted.difference(&seen).take(5).collect::<Vec<_>>()
        );
        let got = sink.next(left).await;
        assert_eq!(got.header("ce-type"), Some("crash.test.echoed"));
        let id = got.header("ce-id").unwrap().to_owned();
        if !seen.insert(id) {
            duplicates += 1;
        }
    }
    eprintln!(
        "accepted {} of {N} before SIGKILL; all arrived ({} distinct, {duplicates} duplicates)",
        accepted.len(),
        seen.len()
    );
    host.stop();

    // A clean stop leaves nothing pending: the next start redelivers nothing.
    // (The log is read when the broker opens: by its record, a pending
    // entry would have been reported and counted.)
    let host = Host::start_with(data.path(), None, &[]).await;
    host.wait_for_log("the broker opening", |v| {
        v["fields"]["message"] == "broker opened"
    })
    .await;
    assert!(host.logs_with("undelivered").is_empty());
    assert_eq!(
        host.metric("sluice_durable_log_entries", &[]).await,
        Some(0.0)
    );
}

#[tokio::test]
async fn a_full_log_answers_503_with_a_reason_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[durability]\nmax_entries = 1\n").unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    let mut sink = Sink::start().await;
    // `spin` keeps the first event's delivery running until its deadline,
    // so its entry stays in the log.
    let r = host
        .upload(
            "spin",
            std::fs::read(crate::harness::function("spin")).unwrap(),
            "?timeout=3s",
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    host.trigger_ok(
        "slow",
        json!({"filter": {"type": "slow"}, "function": "spin"}),
    )
    .await;
    host.deploy_ok("echo", "echo").await;
    host.trigger_ok(
        "fast",
        json!({"filter": {"type": "fast"}, "function": "echo", "sink": sink.url()}),
    )
    .await;

    let r = send_event(&host.client, &host.url("/"), "s1", "slow", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = send_event(&host.client, &host.url("/"), "f1", "fast", "{}").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = r.text().await.unwrap();
    assert!(body.contains("durable log is full"), "{body}");
    // f1 was never routed (only s1 reached the dispatcher), so nothing of
    // it can reach the sink.
    assert_eq!(
        host.metric("sluice_events_accepted_total", &[]).await,
        Some(1.0)
    );
    sink.assert_empty();
    // The log's metrics tell the same story.
    assert_eq!(
        host.metric("sluice_durable_log_entries", &[]).await,
        Some(1.0)
    );
    assert_eq!(
        host.metric("sluice_durable_log_appended_total", &[]).await,
        Some(1.0)
    );
    assert_eq!(
        host.metric("sluice_durable_log_refused_total", &[("reason", "full")])
            .await,
        Some(1.0)
    );

    // Once the slow delivery ends (its deadline), the log has room again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = send_event(&host.client, &host.url("/"), "f1", "fast", "{}").await;
        if r.status() == StatusCode::ACCEPTED {
            break;
        }
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "the log never freed up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = sink.next(Duration::from_secs(10)).await;
    assert_eq!(got.header("ce-id"), Some("f1"));
}

#[tokio::test]
async fn a_stop_during_start_up_is_graceful() {
    // SIGTERM while the host is still compiling its functions: it must be
    // the graceful stop (exit 0, the durable log closed), not the default
    // kill, which would skip closing the log.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    let mut text = String::new();
    for f in [
        "echo",
        "currency-convert",
        "inspect",
        "rate-enrich",
        "rate-format",
    ] {
        text.push_str(&format!(
            "[functions.{f}]\npath = \"{}\"\n",
            crate::harness::function(f).display()
        ));
    }
    std::fs::write(&config, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-json",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info,sluice=debug")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let pid = child.id().to_string();
    let lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("sluice is starting") {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid])
                    .status();
            }
            lines.push(line);
        }
        lines
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "sluice did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let lines = lines.await.unwrap();
    assert!(status.success(), "{status}: {lines:#?}");
    let position = |needle: &str| lines.iter().position(|l| l.contains(needle));
    // Stopped before it ever served a request... or, on a machine fast
    // enough to finish the start-up first, right after: gracefully either way.
    assert!(position("durable log closed").is_some(), "{lines:#?}");
    assert!(position("\"stopped\"").is_some(), "{lines:#?}");
}
