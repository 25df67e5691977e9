//! A graceful stop (SIGTERM) is bounded: backoff waits end at once, running
//! deliveries get the `[shutdown] grace` period, and what did not finish
//! stays in the durable log and is delivered after the restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::mpsc;

use crate::harness::{send_event, serve_in_background, Host, Sink};

const WAIT: Duration = Duration::from_secs(10);

/// Write `text` as the config file in `dir`; its path.
fn config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether some log record of a host that has exited says `needle`.
fn logged(logs: &std::sync::Mutex<Vec<serde_json::Value>>, needle: &str) -> bool {
    logs.lock().unwrap().iter().any(|v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(needle))
    })
}

// Multi-threaded: `Host::stop` blocks its thread while the host stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_backoff_wait_and_the_event_is_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut subscriber = Sink::start().await;
    subscriber.respond_with(StatusCode::SERVICE_UNAVAILABLE);
    let config = config(
        dir.path(),
        &format!(
            "[triggers.t]\nfilter = {{ type = \"backoff.test\" }}\nsubscriber = \"{}\"\ndelivery = {{ retry = 5, backoff_delay = \"120s\" }}\n",
            subscriber.url()
        ),
    );
    let data = dir.path().join("data");
    let host = Host::start_with(&data, Some(&config), &[]).await;
    let r = send_event(&host.client, &host.url("/"), "b1", "backoff.test", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(subscriber.next(WAIT).await.header("ce-id"), Some("b1"));
    // Now in its first backoff wait (120 s).
    host.wait_for_log("the retry is scheduled", |v| {
        v["fields"]["message"] == "attempt failed; retrying"
    })
    .await;

    let logs = host.logs.clone();
    let stopping = Instant::now();
    // Fails (after 10 s) when the stop waits out the backoff.
    let status = host.stop();
    assert!(status.success(), "{status:?}");
    eprintln!("stopped in {:?}", stopping.elapsed());
    assert!(logged(
        &logs,
        "delivery abandoned: the host is stopping during its backoff"
    ));
    assert!(logged(&logs, "the event stays in the durable log"));

    // After the restart the event is delivered (the subscriber is back).
    subscriber.respond_with(StatusCode::OK);
    let host = Host::start_with(&data, Some(&config), &[]).await;
    let again = subscriber.next(WAIT).await;
    assert_eq!(again.header("ce-id"), Some("b1"));
    host.wait_for_metric(
        "sluice_deliveries_total",
        &[("trigger", "t"), ("outcome", "delivered")],
        |v| v == 1.0,
    )
    .await;
}

/// A subscriber whose first request never gets an answer; later ones get
/// a 202. Each request's `ce-id` is sent on the channel as it arrives.
pub(crate) fn hang_once() -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let hung = Arc::new(AtomicBool::new(false));
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let tx = tx.clone();
        let hung = hung.clone();
        async move {
            let id = headers
                .get("ce-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let _ = tx.send(id);
            if !hung.swap(true, Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            StatusCode::ACCEPTED
        }
    });
    let addr = serve_in_background(app);
    (format!("http://{addr}/"), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_bounds_a_delivery_that_never_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (url, mut requests) = hang_once();
    let text = format!(
        "[triggers.t]\nfilter = {{ type = \"hang.test\" }}\nsubscriber = \"{url}\"\ndelivery = {{ timeout = \"10m\" }}\n"
    );
    let short = config(dir.path(), &format!("[shutdown]\ngrace = \"1s\"\n{text}"));
    let data = dir.path().join("data");
    let host = Host::start_with(&data, Some(&short), &[]).await;
    let r = send_event(&host.client, &host.url("/"), "h1", "hang.test", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let first = tokio::time::timeout(WAIT, requests.recv()).await.unwrap();
    assert_eq!(first.as_deref(), Some("h1"));

    let logs = host.logs.clone();
    // Fails (after 10 s) when the stop waits for the 10 minute attempt.
    let status = host.stop();
    assert!(status.success(), "{status:?}");
    assert!(logged(&logs, "at the end of the shutdown grace period"));
    assert!(logged(&logs, "delivery abandoned: still running"));

    // Kept in the log: delivered after the restart.
    let host = Host::start_with(&data, Some(&config(dir.path(), &text)), &[]).await;
    let again = tokio::time::timeout(WAIT, requests.recv()).await.unwrap();
    assert_eq!(again.as_deref(), Some("h1"));
    host.wait_for_metric(
        "sluice_deliveries_total",
        &[("trigger", "t"), ("outcome", "delivered")],
        |v| v == 1.0,
    )
    .await;
}
