//! `GET /readyz` on both listeners: ready once the host serves (and its
//! Kafka consumers reached their cluster), not ready while it drains at
//! shutdown, when new events are refused too.

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::harness::{send_event, Host};
use crate::kafka::{black_hole, Broker};

const WAIT: Duration = Duration::from_secs(10);

/// `GET url`: its status and body.
async fn get(client: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let r = client.get(url).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Poll `url` until it answers `status` (within [`WAIT`]); its body then.
async fn until(client: &reqwest::Client, url: &str, status: StatusCode) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (now, body) = get(client, url).await;
        if now == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} still answers {now}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn readyz_is_ready_on_both_listeners_once_serving_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = [(
        "SLUICE_ADMIN_TOKENS",
        "op:write:s3cret-admin-token-0123456789",
    )];
    let host = Host::start_with(dir.path(), None, &tokens).await;
    // Ready by the time the host logs that it serves.
    let bare = reqwest::Client::new();
    assert_eq!(
        get(&bare, &host.url("/readyz")).await,
        (StatusCode::OK, "ready\n".into())
    );
    assert_eq!(
        get(&bare, &host.admin_url("/readyz")).await,
        (StatusCode::OK, "ready\n".into())
    );
    // The token guards the rest of the admin listener.
    assert_eq!(
        get(&bare, &host.admin_url("/metrics")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

// Multi-threaded: the host's subscriber runs on this runtime while the test
// polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_draining_and_new_events_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (url, mut requests) = crate::shutdown::hang_once();
    let config = dir.path().join("sluice.toml");
    // A grace period far longer than the test: the host is still draining
    // when the test is done with it (and kills it).
    std::fs::write(
        &config,
        format!(
            "[shutdown]\ngrace = \"10m\"\n[triggers.t]\nfilter = {{ type = \"hang.test\" }}\nsubscriber = \"{url}\"\ndelivery = {{ timeout = \"10m\" }}\n"
        ),
    )
    .unwrap();
    let mut host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    assert_eq!(
        get(&host.client, &host.url("/readyz")).await.0,
        StatusCode::OK
    );
    let r = send_event(&host.client, &host.url("/"), "d1", "hang.test", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let first = tokio::time::timeout(WAIT, requests.recv()).await.unwrap();
    assert_eq!(first.as_deref(), Some("d1"));

    // The delivery hangs: the host drains, and says so.
    host.terminate();
    let body = until(
        &host.client,
        &host.url("/readyz"),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert!(body.contains("draining"), "{body}");
    let (status, body) = get(&host.client, &host.admin_url("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("draining"), "{body}");
    // Alive, and refusing what it could not deliver any more.
    assert_eq!(
        get(&host.client, &host.url("/healthz")).await.0,
        StatusCode::OK
    );
    let r = send_event(&host.client, &host.url("/"), "d2", "hang.test", "{}").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        host.running(),
        "the host exited before its grace period ended"
    );
}

fn kafka_source(dir: &std::path::Path, brokers: &str) -> std::path::PathBuf {
    let config = dir.join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\n[kafka.sources.in]\ntopics = [\"in\"]\ngroup = \"g\"\n"
        ),
    )
    .unwrap();
    config
}

#[tokio::test]
async fn readyz_waits_for_the_kafka_consumers_to_reach_their_cluster() {
    // A cluster that never answers: serving, alive, not ready.
    let dir = tempfile::tempdir().unwrap();
    let config = kafka_source(dir.path(), &black_hole());
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    assert_eq!(
        get(&host.client, &host.url("/healthz")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&host.client, &host.url("/readyz")).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: connecting to Kafka\n".into()
        )
    );
    drop(host);

    // A real one: ready once it answered.
    let broker = Broker::start();
    broker.client(&["create", "in", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let config = kafka_source(dir.path(), &broker.addr);
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    let body = until(&host.client, &host.url("/readyz"), StatusCode::OK).await;
    assert_eq!(body, "ready\n");
}
