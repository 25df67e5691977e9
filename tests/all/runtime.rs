//! The sandbox at work: fresh instances, reuse, admission control, scale to
//! zero, precompiled artifacts and their repair, metrics.

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::harness::{function, send_event, Host};

async fn inspect(host: &Host, path: &str, id: &str) -> serde_json::Value {
    let r = send_event(&host.client, &host.url(path), id, "t", "{}").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn every_event_gets_a_fresh_instance_with_no_ambient_authority() {
    let host = Host::start().await;
    host.deploy_ok("inspect", "inspect").await;
    for i in 0..3 {
        let seen = inspect(&host, "/functions/inspect", &format!("e{i}")).await;
        assert_eq!(seen["count"], 1, "no state survives between events");
        assert_eq!(seen["env"], serde_json::json!({}), "no host environment");
        assert!(
            seen["file_read"].as_str().unwrap().starts_with("error"),
            "no file system: {seen}"
        );
    }
}

#[tokio::test]
async fn declared_environment_is_all_a_function_sees() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[functions.inspect]\npath = \"{}\"\nenv = {{ GREETING = \"hello\" }}\n",
            function("inspect").display()
        ),
    )
    .unwrap();
    let host = Host::start_with(
        &dir.path().join("data"),
        Some(&config),
        &[("SECRET_HOST_VAR", "x")],
    )
    .await;
    let seen = inspect(&host, "/functions/inspect", "e").await;
    assert_eq!(seen["env"], serde_json::json!({"GREETING": "hello"}));
}

#[tokio::test]
async fn reuse_keeps_an_instance_for_n_events() {
    let host = Host::start().await;
    let bytes = std::fs::read(function("inspect")).unwrap();
    assert_eq!(
        host.upload("inspect", bytes, "?reuse=3").await.status(),
        StatusCode::CREATED
    );
    let mut counts = Vec::new();
    for i in 0..5 {
        counts.push(
            inspect(&host, "/functions/inspect", &format!("e{i}")).await["count"]
                .as_u64()
                .unwrap(),
        );
    }
    assert_eq!(counts, [1, 2, 3, 1, 2]);
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let host = Host::start().await;
    let spin = std::fs::read(function("spin")).unwrap();
    let r = host
        .upload(
            "spin",
            spin,
            "?timeout=1500ms&max_concurrency=1&max_queue=0",
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let first = {
        let (client, url) = (host.client.clone(), host.url("/functions/spin"));
        tokio::spawn(async move { send_event(&client, &url, "1", "t", "{}").await.status() })
    };
    host.wait_for_metric("sluice_live_instances", &[("function", "spin")], |v| {
        v >= 1.0
    })
    .await;
    let r = send_event(&host.client, &host.url("/functions/spin"), "2", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(first.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
    let busy = host
        .metric(
            "sluice_invocation_errors_total",
            &[("function", "spin"), ("kind", "busy")],
        )
        .await;
    assert_eq!(busy, Some(1.0));
    let timeouts = host
        .metric(
            "sluice_invocation_errors_total",
            &[("function", "spin"), ("kind", "timeout")],
        )
        .await;
    assert_eq!(timeouts, Some(1.0));
}

#[tokio::test]
async fn an_idle_function_scales_to_zero_and_comes_back_cold() {
    // Used within this long, a function stays loaded; idle for it, it is
    // unloaded. Each check of "still loaded" below is bounded by it, and
    // fails as such if the machine was too slow to make the check.
    let idle = Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[runtime]\nidle_timeout = \"3s\"\n").unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    host.deploy_ok("echo", "echo").await;
    let labels = [("function", "echo")];
    let echo = |id: &'static str| {
        let host = &host;
        async move {
            let r = send_event(&host.client, &host.url("/functions/echo"), id, "t", "{}").await;
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    let within_idle = |since: Instant| {
        let took = since.elapsed();
        assert!(
            took < idle,
            "the checks took {took:?}, past the idle timeout: they could not be made"
        );
    };

    let since = Instant::now();
    echo("1").await;
    echo("2").await;
    let cold = host.metric("sluice_cold_starts_total", &labels).await;
    let warm = host.metric("sluice_warm_starts_total", &labels).await;
    within_idle(since);
    assert_eq!((cold, warm), (Some(1.0), Some(1.0)), "(cold, warm)");

    // Left alone, it is unloaded...
    host.wait_for_metric("sluice_loaded_functions", &[], |v| v == 0.0)
        .await;
    assert!(host.metric("sluice_evictions_total", &[]).await.unwrap() >= 1.0);
    // ...and its next event loads it again from the precompiled artifact.
    let since = Instant::now();
    echo("3").await;
    let cold = host.metric("sluice_cold_starts_total", &labels).await;
    let loaded = host.metric("sluice_loaded_functions", &[]).await;
    within_idle(since);
    assert_eq!(cold, Some(2.0));
    assert_eq!(loaded, Some(1.0));
}

#[tokio::test]
async fn a_corrupt_or_missing_artifact_is_rebuilt_from_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start_with(dir.path(), None, &[]).await;
    host.deploy_ok("echo", "echo").await;
    host.stop();

    let fn_dir = dir.path().join("functions/echo");
    let artifact = std::fs::read_dir(&fn_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("an artifact was stored at upload");
    let good = std::fs::read(&artifact).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&artifact, &bad).unwrap();

    let host = Host::start_with(dir.path(), None, &[]).await;
    let r = send_event(&host.client, &host.url("/functions/echo"), "1", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["ce-type"], "t.echoed");
    assert!(!host.logs_with("checksum mismatch").is_empty());
    assert_eq!(
        std::fs::read(&artifact).unwrap(),
        good,
        "rebuilt to the same artifact"
    );
    host.stop();

    std::fs::remove_file(&artifact).unwrap();
    let host = Host::start_with(dir.path(), None, &[]).await;
    let r = send_event(&host.client, &host.url("/functions/echo"), "2", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(artifact.exists(), "recompiled and stored again");
}

#[tokio::test]
async fn metrics_count_invocations_and_errors_by_kind() {
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    host.deploy_ok("trap", "trap").await;
    for i in 0..3 {
        send_event(
            &host.client,
            &host.url("/functions/echo"),
            &format!("{i}"),
            "t",
            "{}",
        )
        .await;
    }
    send_event(&host.client, &host.url("/functions/trap"), "x", "t", "{}").await;
    assert_eq!(
        host.metric("sluice_invocations_total", &[("function", "echo")])
            .await,
        Some(3.0)
    );
    assert_eq!(
        host.metric(
            "sluice_invocation_errors_total",
            &[("function", "trap"), ("kind", "trap")]
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        host.metric(
            "sluice_invocation_duration_seconds_count",
            &[("function", "echo")]
        )
        .await,
        Some(3.0)
    );
    assert_eq!(
        host.metric("sluice_live_instances", &[("function", "echo")])
            .await,
        Some(0.0)
    );
}

#[tokio::test]
async fn a_handler_without_wasi_runs_on_the_thread_and_a_spinning_one_starts_over_on_a_fiber() {
    let host = Host::start().await;
    // echo and spin are built with `sluice_guest::without_wasi!()`: their
    // components import nothing. inspect reads its environment: WASI.
    host.deploy_ok("echo", "echo").await;
    host.deploy_ok("inspect", "inspect").await;
    let spin = std::fs::read(function("spin")).unwrap();
    assert_eq!(
        host.upload("spin", spin, "?timeout=300ms").await.status(),
        StatusCode::CREATED
    );
    let echo_reused = std::fs::read(function("echo")).unwrap();
    assert_eq!(
        host.upload("echo-reused", echo_reused, "?reuse=3")
            .await
            .status(),
        StatusCode::CREATED
    );
    for path in ["/functions/echo", "/functions/echo-reused"] {
        for i in 0..10 {
            let r = send_event(&host.client, &host.url(path), &format!("e{i}"), "t", "{}").await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.headers()["ce-type"], "t.echoed");
        }
    }
    inspect(&host, "/functions/inspect", "i").await;
    let r = send_event(&host.client, &host.url("/functions/spin"), "s", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);

    for echo in ["echo", "echo-reused"] {
        let on_thread = host
            .metric_sum("sluice_invocations_on_thread_total", &[("function", echo)])
            .await;
        let preempted = host
            .metric_sum("sluice_invocations_preempted_total", &[("function", echo)])
            .await;
        // A call is preempted only if an epoch tick (every 5 ms) falls
        // inside it: rare for a call of tens of microseconds.
        assert_eq!(on_thread + preempted, 10.0, "{echo}");
        assert!(on_thread >= 7.0, "{echo}: {on_thread} of 10 on the thread");
    }
    assert_eq!(
        host.metric_sum(
            "sluice_invocations_on_thread_total",
            &[("function", "inspect")]
        )
        .await,
        0.0
    );
    assert_eq!(
        host.metric_sum(
            "sluice_invocations_preempted_total",
            &[("function", "inspect")]
        )
        .await,
        0.0
    );
    // spin started on the thread, was preempted at the first tick, and timed
    // out on a fiber, with its deadline.
    assert_eq!(
        host.metric_sum(
            "sluice_invocations_on_thread_total",
            &[("function", "spin")]
        )
        .await,
        0.0
    );
    assert_eq!(
        host.metric_sum(
            "sluice_invocations_preempted_total",
            &[("function", "spin")]
        )
        .await,
        1.0
    );
}
