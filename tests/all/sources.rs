//! Event sources: ping schedules and source functions bound to sinks, and
//! the two source examples against their local stand-in APIs.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::harness::{function, next_of, sluice_cli, Host, Received, Sink};

/// How long a test waits for the events of a few ticks.
const WAIT: Duration = Duration::from_secs(15);

/// Start a host on a config written into a fresh directory.
async fn host_with(config: &str) -> (Host, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, config).unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&path), &[]).await;
    (host, dir)
}

#[tokio::test]
async fn a_ping_with_seconds_fires_every_tick_with_its_attributes_and_payload() {
    let mut sink = Sink::start().await;
    let (_host, _dir) = host_with(&format!(
        r#"
        [sources.beat]
        kind = "ping"
        schedule = "* * * * * *"
        timezone = "Europe/Berlin"
        data = {{ hello = "world", n = 1 }}
        sink = "{}"
        overrides = {{ team = "ops" }}
        "#,
        sink.url()
    ))
    .await;

    let mut ids = HashSet::new();
    let mut times = Vec::new();
    for _ in 0..3 {
        let got = next_of(&mut sink, "dev.sluice.sources.ping").await;
        let received = chrono::Utc::now();
        assert_eq!(got.header("ce-source"), Some("/sluice/sources/beat"));
        assert_eq!(got.header("ce-specversion"), Some("1.0"));
        assert_eq!(got.header("ce-team"), Some("ops"));
        assert_eq!(got.header("content-type"), Some("application/json"));
        let data: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(data, serde_json::json!({"hello": "world", "n": 1}));
        assert!(
            ids.insert(got.header("ce-id").unwrap().to_owned()),
            "ids repeat"
        );
        let time = chrono::DateTime::parse_from_rfc3339(got.header("ce-time").unwrap()).unwrap();
        // The schedule is read in Berlin time: the offset is Berlin's.
        assert!(
            matches!(time.offset().local_minus_utc(), 3600 | 7200),
            "{time}"
        );
        // A whole-second tick, delivered within a generous tolerance.
        assert_eq!(time.timestamp_subsec_millis(), 0, "{time}");
        let lag = received.signed_duration_since(time);
        assert!(
            lag >= chrono::Duration::zero() && lag < chrono::Duration::seconds(5),
            "tick {time} arrived at {received}"
        );
        times.push(time);
    }
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
}

#[tokio::test]
async fn a_source_sink_gets_retries_and_a_dead_letter_like_a_trigger() {
    // `flaky` refuses until told otherwise; `down` always refuses.
    let mut flaky = Sink::start().await;
    flaky.respond_with(axum::http::StatusCode::SERVICE_UNAVAILABLE);
    let mut down = Sink::start().await;
    down.respond_with(axum::http::StatusCode::SERVICE_UNAVAILABLE);
    let mut dlq = Sink::start().await;
    let (_host, _dir) = host_with(&format!(
        r#"
        [sources.retried]
        kind = "ping"
        schedule = "* * * * * *"
        sink = "{flaky}"
        delivery = {{ retry = 6, backoff = "linear", backoff_delay = "300ms" }}

        [sources.lost]
        kind = "ping"
        schedule = "* * * * * *"
        sink = "{down}"
        delivery = {{ retry = 1, backoff_delay = "50ms", dead_letter = {{ url = "{dlq}" }} }}
        "#,
        flaky = flaky.url(),
        down = down.url(),
        dlq = dlq.url(),
    ))
    .await;

    // Two refused attempts of one event, then `flaky` accepts: the attempts
    // that follow carry the same id (retries, not the next tick) until one
    // is taken, and the one after is the next tick's event. Seven attempts
    // would mean all were refused (the switch came too late: the retries
    // leave it 6 s).
    let first = next_of(&mut flaky, "dev.sluice.sources.ping").await;
    let id = first.header("ce-id").unwrap().to_owned();
    let second = next_of(&mut flaky, "dev.sluice.sources.ping").await;
    assert_eq!(second.header("ce-id"), Some(id.as_str()));
    flaky.respond_with(axum::http::StatusCode::ACCEPTED);
    let mut attempts = 2;
    loop {
        let next = next_of(&mut flaky, "dev.sluice.sources.ping").await;
        if next.header("ce-id") != Some(id.as_str()) {
            break;
        }
        attempts += 1;
    }
    assert!(
        (3..7).contains(&attempts),
        "{attempts} attempts of one event: 3 to 6 expected (7: every one refused)"
    );

    // Two attempts at `down`, then the dead letter with the reason.
    let a = next_of(&mut down, "dev.sluice.sources.ping").await;
    let lost_id = a.header("ce-id").unwrap().to_owned();
    let b = next_of(&mut down, "dev.sluice.sources.ping").await;
    assert_eq!(b.header("ce-id"), Some(lost_id.as_str()));
    let dead = next_of(&mut dlq, "dev.sluice.sources.ping").await;
    assert_eq!(dead.header("ce-id"), Some(lost_id.as_str()));
    assert_eq!(dead.header("ce-source"), Some("/sluice/sources/lost"));
    assert_eq!(dead.header("ce-sluiceerrorcode"), Some("503"));
    assert!(
        dead.header("ce-sluiceerrordest")
            .is_some_and(|d| d.contains(&down.addr.to_string())),
        "{:?}",
        dead.headers
    );
    // The next tick starts over with a new event.
    let c = next_of(&mut down, "dev.sluice.sources.ping").await;
    assert_ne!(c.header("ce-id"), Some(lost_id.as_str()));
}

#[tokio::test]
async fn the_admin_api_lists_sources_and_graph_draws_them_from_a_running_host() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        r#"
        [sources.hourly]
        kind = "ping"
        schedule = "0 0 * * * *"
        timezone = "Europe/Berlin"
        data = { hello = "world" }
        sink = "http://127.0.0.1:9/ingest"
        delivery = { retry = 2, dead_letter = "log" }

        [sources.beat]
        kind = "ping"
        schedule = "0 0 * * * *"
        sink = "broker"
        "#,
    )
    .unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;

    let listed = host.get_json("/admin/v1/sources").await;
    let hourly = &listed["hourly"];
    assert_eq!(hourly["kind"], "ping", "{listed}");
    assert_eq!(hourly["schedule"], "0 0 * * * *");
    assert_eq!(hourly["timezone"], "Europe/Berlin");
    assert_eq!(hourly["sink"], "http://127.0.0.1:9/ingest");
    assert_eq!(hourly["data"], serde_json::json!({"hello": "world"}));
    assert_eq!(hourly["delivery"]["retry"], 2);
    assert_eq!(hourly["delivery"]["dead_letter"], "log");
    assert_eq!(listed["beat"]["sink"], "broker");

    let from_host = sluice_cli(&["graph", "--host", &host.admin_url("")]);
    for needle in [
        "src_beat --> broker",
        "src_hourly --> ",
        r#"src_hourly -. "dead letter" .-x log"#,
    ] {
        assert!(
            from_host.contains(needle),
            "missing `{needle}` in\n{from_host}"
        );
    }
    assert_eq!(
        from_host,
        sluice_cli(&["graph", "--config", config.to_str().unwrap()]),
        "the host draws what the file declares"
    );
}

#[tokio::test]
async fn missed_ticks_are_skipped_unless_catch_up_fires_the_newest_once() {
    let mut sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [sources.caught]
            kind = "ping"
            schedule = "* * * * * *"
            sink = "{url}"
            catch_up = true

            [sources.skipped]
            kind = "ping"
            schedule = "* * * * * *"
            sink = "{url}"
            "#,
            url = sink.url()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let time_of = |r: &Received| {
        chrono::DateTime::parse_from_rfc3339(r.header("ce-time").unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let host = Host::start_with(&data, Some(&config), &[]).await;
    let before = loop {
        let got = next_of(&mut sink, "dev.sluice.sources.ping").await;
        if got.header("ce-source") == Some("/sluice/sources/caught") {
            break time_of(&got);
        }
    };
    // The tick is recorded once its event is out.
    let record = data.join("sources").join("caught.last-tick");
    let deadline = Instant::now() + WAIT;
    while !record.is_file() {
        assert!(
            Instant::now() < deadline,
            "{} never written",
            record.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.stop();
    // What the stopped host sent has all arrived: set it aside.
    sink.drain();
    // Two ticks of the schedule (whole seconds) pass while the host is
    // down: wait for the clock to pass the second one.
    let first_missed =
        chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 1, 0).unwrap();
    let second_missed = first_missed + chrono::Duration::seconds(1);
    while let Ok(left) = (second_missed - chrono::Utc::now()).to_std() {
        tokio::time::sleep(left).await;
    }
    let host = Host::start_with(&data, Some(&config), &[]).await;
    let logged_at = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let catch_up = host
        .wait_for_log("the catch-up", |v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("catching up"))
        })
        .await;
    let skipped_started = logged_at(
        &host
            .wait_for_log("the other source's start", |v| {
                v["fields"]["message"] == "source started" && v["fields"]["source"] == "skipped"
            })
            .await,
    );
    let (mut caught, mut skipped) = (Vec::new(), Vec::new());
    while caught.len() < 2 || skipped.is_empty() {
        let got = next_of(&mut sink, "dev.sluice.sources.ping").await;
        match got.header("ce-source") {
            Some("/sluice/sources/caught") => caught.push(got),
            Some("/sluice/sources/skipped") => skipped.push(time_of(&got)),
            other => panic!("unexpected source {other:?}"),
        }
    }
    // The catch-up source fired the newest tick of the downtime (already
    // past when it was logged), once, then went on with later ticks.
    assert_eq!(
        caught[0].header("ce-time"),
        catch_up["fields"]["tick"].as_str()
    );
    let missed = time_of(&caught[0]);
    assert!(
        missed > before && missed >= second_missed && missed <= logged_at(&catch_up),
        "{missed} {before} {second_missed}"
    );
    assert!(time_of(&caught[1]) > missed);
    // The other one only fires ticks after its restart.
    assert!(
        skipped.iter().all(|t| *t > skipped_started),
        "{skipped:?} {skipped_started}"
    );
}

#[tokio::test]
async fn a_base64_ping_carries_its_bytes_and_content_type() {
    let mut sink = Sink::start().await;
    let bytes = [0u8, 1, 2, 0xfe, 0xff];
    let (_host, _dir) = host_with(&format!(
        r#"
        [sources.blob]
        kind = "ping"
        schedule = "*/1 * * * * *"
        data_base64 = "{}"
        content_type = "application/octet-stream"
        sink = "{}"
        "#,
        base64::engine::general_purpose::STANDARD.encode(bytes),
        sink.url()
    ))
    .await;
    let got = next_of(&mut sink, "dev.sluice.sources.ping").await;
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    assert_eq!(&got.body[..], &bytes[..]);
    assert_eq!(got.header("ce-source"), Some("/sluice/sources/blob"));
}

#[tokio::test]
async fn a_ping_into_the_broker_reaches_a_trigger_and_its_sink() {
    let mut sink = Sink::start().await;
    let (host, _dir) = host_with(&format!(
        r#"
        [functions.echo]
        path = "{}"

        [sources.beat]
        kind = "ping"
        schedule = "* * * * * *"
        data = "tick"
        sink = "broker"

        [triggers.pings]
        filter = {{ type = "dev.sluice.sources.ping" }}
        function = "echo"
        sink = "{}"

        # Straight to a function: it runs, its reply goes nowhere.
        [sources.direct]
        kind = "ping"
        schedule = "* * * * * *"
        sink = "function:echo"
        "#,
        function("echo").display(),
        sink.url()
    ))
    .await;
    let got = next_of(&mut sink, "dev.sluice.sources.ping.echoed").await;
    assert_eq!(got.header("content-type"), Some("text/plain"));
    assert_eq!(&got.body[..], b"tick");
    assert_eq!(got.header("ce-source"), Some("/sluice/sources/beat"));
    host.wait_for_log("the direct ping's reply dropped", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("reply to a source event dropped"))
            && v["fields"]["source"] == "direct"
            && v["fields"]["destination"] == "function:echo"
    })
    .await;
}

#[tokio::test]
async fn a_source_that_cannot_be_used_stops_start_up_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    for (text, needle) in [
        (
            "[sources.s]\nkind = \"ping\"\nschedule = \"* * * * * * * *\"\nsink = \"log\"\n",
            "not a valid cron expression",
        ),
        (
            "[sources.s]\nkind = \"function\"\npath = \"missing.wasm\"\nschedule = \"* * * * *\"\nsink = \"log\"\n",
            "missing.wasm",
        ),
        (
            "[sources.s]\nkind = \"function\"\npath = \"x.wasm\"\nschedule = \"* * * * *\"\nsink = \"log\"\nallowed_outbound_hosts = [\"a b\"]\n",
            "allowed_outbound_hosts",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let err = crate::harness::start_up_error(&dir.path().join("data"), &config);
        assert!(err.contains("source") && err.contains(needle), "{err}");
    }
    // A handler component is not a source function.
    std::fs::write(
        &config,
        format!(
            "[sources.s]\nkind = \"function\"\npath = \"{}\"\nschedule = \"* * * * *\"\nsink = \"log\"\n",
            function("echo").display()
        ),
    )
    .unwrap();
    let err = crate::harness::start_up_error(&dir.path().join("data"), &config);
    assert!(err.contains("sluice:handler/source"), "{err}");
}

#[tokio::test]
async fn a_source_function_emits_through_its_binding_with_overrides_on_every_event() {
    let mut sink = Sink::start().await;
    let (host, _dir) = host_with(&format!(
        r#"
        [functions.echo]
        path = "{}"

        [sources.ticks]
        kind = "function"
        path = "{}"
        schedule = "* * * * * *"
        sink = "broker"
        config = {{ mode = "emit", count = "3" }}
        overrides = {{ team = "ops", region = "eu" }}

        [triggers.ticks]
        filter = {{ type = "com.example.source.tick" }}
        function = "echo"
        sink = "{}"
        "#,
        function("echo").display(),
        function("test-source").display(),
        sink.url()
    ))
    .await;
    let mut seen = HashSet::new();
    let mut runs = HashSet::new();
    for _ in 0..6 {
        let got = next_of(&mut sink, "com.example.source.tick.echoed").await;
        // The binding's overrides win over the guest's own `team`.
        assert_eq!(got.header("ce-team"), Some("ops"));
        assert_eq!(got.header("ce-region"), Some("eu"));
        assert_eq!(got.header("ce-source"), Some("/sluice/sources/ticks"));
        assert!(seen.insert(got.header("ce-id").unwrap().to_owned()));
        let data: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        runs.insert(data["run"].as_u64().unwrap());
    }
    // Six events of three per run: the state (a run counter) moved on.
    assert!(runs.len() >= 2, "{runs:?}");
    // Emits are counted one by one, each before the next event goes out.
    assert!(
        host.metric_sum("sluice_source_events_total", &[("source", "ticks")])
            .await
            >= 5.0
    );
}

#[tokio::test]
async fn outbound_http_is_limited_to_the_allowed_hosts_and_refusals_are_counted() {
    // Two real HTTP servers: one allowed, one not.
    let mut allowed_api = Sink::start().await;
    let mut denied_api = Sink::start().await;
    let mut sink = Sink::start().await;
    let port = allowed_api.addr.port();
    let denied_port = denied_api.addr.port();
    let (host, _dir) = host_with(&format!(
        r#"
        [sources.allowed]
        kind = "function"
        path = "{src}"
        schedule = "* * * * * *"
        sink = "{sink}"
        config = {{ mode = "fetch", url = "http://127.0.0.1:{port}/allowed" }}
        allowed_outbound_hosts = ["127.0.0.1:{port}"]

        [sources.denied]
        kind = "function"
        path = "{src}"
        schedule = "* * * * * *"
        sink = "{sink}"
        config = {{ mode = "fetch", url = "http://127.0.0.1:{denied_port}/" }}
        allowed_outbound_hosts = ["127.0.0.1:{port}", "example.com"]
        "#,
        src = function("test-source").display(),
        sink = sink.url()
    ))
    .await;

    let fetched = next_of(&mut sink, "com.example.source.fetched").await;
    assert_eq!(fetched.header("ce-source"), Some("/sluice/sources/allowed"));
    let failed = next_of(&mut sink, "com.example.source.fetch-failed").await;
    assert_eq!(failed.header("ce-source"), Some("/sluice/sources/denied"));
    let message = String::from_utf8_lossy(&failed.body);
    assert!(message.contains("HttpRequestDenied"), "{message}");
    assert!(message.contains("allowed_outbound_hosts"), "{message}");
    assert!(
        host.metric_sum(
            "sluice_source_outbound_denied_total",
            &[("source", "denied")]
        )
        .await
            >= 1.0
    );
    assert_eq!(
        host.metric_sum(
            "sluice_source_outbound_denied_total",
            &[("source", "allowed")]
        )
        .await,
        0.0
    );
    host.wait_for_log("refusal logged", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("outbound request refused"))
            && v["fields"]["source"] == "denied"
    })
    .await;
    // The allowed request went out; the refused one never left the host:
    // the denied run that reported it had ended before its event reached
    // the sink.
    allowed_api.next(WAIT).await;
    denied_api.assert_empty();
}

#[tokio::test]
async fn a_trapping_source_is_reported_and_runs_again_at_its_next_tick() {
    let mut sink = Sink::start().await;
    let (host, _dir) = host_with(&format!(
        r#"
        [sources.flaky]
        kind = "function"
        path = "{}"
        schedule = "* * * * * *"
        sink = "{}"
        config = {{ mode = "trap-odd" }}
        "#,
        function("test-source").display(),
        sink.url()
    ))
    .await;
    host.wait_for_log("a failed run", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("source run failed"))
            && v["fields"]["source"] == "flaky"
    })
    .await;
    // Ticks after the trap still run and emit.
    let failures_before = host
        .metric_sum(
            "sluice_source_ticks_total",
            &[("outcome", "run_failed"), ("source", "flaky")],
        )
        .await;
    assert!(failures_before >= 1.0);
    assert!(
        host.metric_sum(
            "sluice_invocation_errors_total",
            &[("function", "source:flaky"), ("kind", "trap")]
        )
        .await
            >= 1.0
    );
    next_of(&mut sink, "com.example.source.tick").await;
    next_of(&mut sink, "com.example.source.tick").await;
    // A tick is counted once its events are out, so by the second event
    // the first tick has been counted.
    assert!(
        host.metric_sum(
            "sluice_source_ticks_total",
            &[("outcome", "emitted"), ("source", "flaky")]
        )
        .await
            >= 1.0
    );
}

#[tokio::test]
async fn a_source_past_its_deadline_is_stopped_and_runs_again_at_its_next_tick() {
    let mut sink = Sink::start().await;
    let (host, _dir) = host_with(&format!(
        r#"
        [sources.spinner]
        kind = "function"
        path = "{}"
        schedule = "* * * * * *"
        timeout = "100ms"
        sink = "{}"
        config = {{ mode = "spin-odd" }}
        "#,
        function("test-source").display(),
        sink.url()
    ))
    .await;
    let failed = host
        .wait_for_log("a timed-out run", |v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("source run failed"))
                && v["fields"]["source"] == "spinner"
        })
        .await;
    assert_eq!(failed["fields"]["kind"], "timeout", "{failed}");
    next_of(&mut sink, "com.example.source.tick").await;
    next_of(&mut sink, "com.example.source.tick").await;
}

#[tokio::test]
async fn a_source_function_uses_its_precompiled_artifact_on_its_second_start() {
    let mut sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [sources.ticks]
            kind = "function"
            path = "{}"
            schedule = "* * * * * *"
            sink = "{}"
            config = {{ mode = "emit", count = "1" }}
            "#,
            function("test-source").display(),
            sink.url()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let compiles = [("function", "source:ticks")];

    // First start: no artifact yet, so the runtime compiles and caches one.
    let host = Host::start_with(&data, Some(&config), &[]).await;
    host.wait_for_log("the compile", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("source function compiled"))
            && v["fields"]["source"] == "ticks"
    })
    .await;
    next_of(&mut sink, "com.example.source.tick").await;
    assert_eq!(
        host.metric_sum("sluice_artifact_compiles_total", &compiles)
            .await,
        1.0
    );
    // Its runs are the runtime's invocations, under the source's label.
    assert!(
        host.metric_sum("sluice_invocations_total", &compiles).await >= 1.0,
        "source runs are not counted as invocations"
    );
    host.stop();
    let artifacts: Vec<_> = std::fs::read_dir(data.join("sources").join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert!(
        artifacts[0].extension().is_some_and(|e| e == "cwasm"),
        "{artifacts:?}"
    );

    // Second start: the same bytes on the same engine load the artifact.
    let host = Host::start_with(&data, Some(&config), &[]).await;
    host.wait_for_log("the artifact load", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("loaded from its precompiled artifact"))
            && v["fields"]["source"] == "ticks"
    })
    .await;
    next_of(&mut sink, "com.example.source.tick").await;
    assert_eq!(
        host.metric_sum("sluice_artifact_compiles_total", &compiles)
            .await,
        0.0,
        "the second start compiled again"
    );
    assert!(host.logs_with("source function compiled").is_empty());
}

#[tokio::test]
async fn a_source_deadline_counts_cpu_time_not_time_waiting_on_outbound_http() {
    // An API that takes four times the source's deadline to answer.
    let slow = crate::harness::serve_in_background(axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        "slow answer"
    }));
    let mut sink = Sink::start().await;
    let (host, _dir) = host_with(&format!(
        r#"
        [sources.waiting]
        kind = "function"
        path = "{src}"
        schedule = "* * * * * *"
        timeout = "200ms"
        sink = "{sink}"
        config = {{ mode = "fetch", url = "http://{slow}/rates" }}
        allowed_outbound_hosts = ["{slow}"]

        [sources.spinning]
        kind = "function"
        path = "{src}"
        schedule = "* * * * * *"
        timeout = "200ms"
        sink = "{sink}"
        config = {{ mode = "spin-odd" }}
        "#,
        src = function("test-source").display(),
        sink = sink.url(),
    ))
    .await;
    // Waiting 800 ms on the request is not running: the run completes.
    let fetched = next_of(&mut sink, "com.example.source.fetched").await;
    assert_eq!(fetched.header("ce-source"), Some("/sluice/sources/waiting"));
    assert_eq!(&fetched.body[..], b"slow answer");
    // Spinning is: that run is stopped at its deadline.
    let failed = host
        .wait_for_log("the spinning run's timeout", |v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("source run failed"))
                && v["fields"]["source"] == "spinning"
        })
        .await;
    assert_eq!(failed["fields"]["kind"], "timeout", "{failed}");
    assert_eq!(
        host.metric_sum(
            "sluice_invocation_errors_total",
            &[("function", "source:waiting")]
        )
        .await,
        0.0
    );
}

#[tokio::test]
async fn a_source_past_its_memory_cap_is_stopped_as_oom_and_the_host_goes_on() {
    let mut sink = Sink::start().await;
    let (host, _dir) = host_with(&format!(
        r#"
        [sources.hog]
        kind = "function"
        path = "{src}"
        schedule = "* * * * * *"
        memory_mib = 16
        sink = "{sink}"
        config = {{ mode = "hog" }}

        [sources.ticks]
        kind = "function"
        path = "{src}"
        schedule = "* * * * * *"
        sink = "{sink}"
        "#,
        src = function("test-source").display(),
        sink = sink.url(),
    ))
    .await;
    let failed = host
        .wait_for_log("the hog's failed run", |v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("source run failed"))
                && v["fields"]["source"] == "hog"
        })
        .await;
    assert_eq!(failed["fields"]["kind"], "oom", "{failed}");
    assert!(
        host.metric_sum(
            "sluice_invocation_errors_total",
            &[("function", "source:hog"), ("kind", "oom")]
        )
        .await
            >= 1.0
    );
    // The other source is not affected.
    next_of(&mut sink, "com.example.source.tick").await;
}

#[tokio::test]
async fn sigterm_stops_running_sources_first_then_drains_and_exits_cleanly() {
    let mut sink = Sink::start().await;
    let (host, _dir) = host_with(&format!(
        r#"
        [functions.echo]
        path = "{echo}"

        [sources.beat]
        kind = "ping"
        schedule = "* * * * * *"
        data = "tick"
        sink = "broker"

        [sources.ticks]
        kind = "function"
        path = "{src}"
        schedule = "* * * * * *"
        sink = "{sink}"

        [triggers.pings]
        filter = {{ type = "dev.sluice.sources.ping" }}
        function = "echo"
        sink = "{sink}"
        "#,
        echo = function("echo").display(),
        src = function("test-source").display(),
        sink = sink.url(),
    ))
    .await;
    next_of(&mut sink, "dev.sluice.sources.ping.echoed").await;
    next_of(&mut sink, "com.example.source.tick").await;
    let logs = host.logs.clone();
    let status = host.stop();
    assert!(status.success(), "{status}");
    // The log is read on a thread of its own: wait for its end.
    let deadline = Instant::now() + WAIT;
    let position = |message: &str| {
        logs.lock()
            .unwrap()
            .iter()
            .position(|v| v["fields"]["message"] == message)
    };
    while position("stopped").is_none() {
        assert!(Instant::now() < deadline, "no `stopped` record");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sources = position("sources stopped").expect("sources stopped");
    let drained = position("deliveries drained").expect("deliveries drained");
    assert!(
        sources < drained,
        "deliveries drained before the sources stopped"
    );
    // Every source ended on the signal, none had to be dropped.
    assert!(
        !logs.lock().unwrap().iter().any(|v| v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("still busy"))),
        "a source had to be dropped"
    );
}

/// A stand-in API script from `examples/`, on a free loopback port.
struct StandIn {
    child: Child,
    port: u16,
}

impl StandIn {
    fn start(script: &Path) -> Self {
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the example's stand-in API");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from {}: {line}", script.display()));
        Self { child, port }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// The example's config with its stand-in port, function paths and `log`
/// sink pointed at what the test started.
fn example_config(name: &str, fixed_port: u16, port: u16, sink: &Sink) -> String {
    let text = std::fs::read_to_string(example(name).join("sluice.toml")).unwrap();
    let functions = function("echo").parent().unwrap().display().to_string();
    text.replace(
        &format!("127.0.0.1:{fixed_port}"),
        &format!("127.0.0.1:{port}"),
    )
    .replace("../../target/functions", &functions)
    .replace("sink = \"log\"", &format!("sink = \"{}\"", sink.url()))
}

#[tokio::test]
async fn the_currency_example_converts_polled_rates_end_to_end() {
    let api = StandIn::start(&example("currency").join("rates_api.py"));
    let mut sink = Sink::start().await;
    let (_host, _dir) = host_with(&example_config("currency", 8099, api.port, &sink)).await;
    let mut quotes = HashSet::new();
    while quotes.len() < 3 {
        let got = next_of(&mut sink, "dev.sluice.currency.converted").await;
        let data: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(data["base"], "EUR");
        assert_eq!(data["amount"], 100.0);
        let expected = match data["quote"].as_str().unwrap() {
            "USD" => 108.0,
            "GBP" => 86.0,
            "JPY" => 16150.0,
            other => panic!("unexpected quote {other}"),
        };
        assert_eq!(data["converted"], expected);
        assert_eq!(got.header("ce-example"), Some("currency"));
        quotes.insert(data["quote"].as_str().unwrap().to_owned());
    }
}

#[tokio::test]
async fn the_social_stream_example_forwards_each_fresh_post_once_even_across_a_restart() {
    let api = StandIn::start(&example("social-stream").join("posts_api.py"));
    let mut sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        example_config("social-stream", 8098, api.port, &sink),
    )
    .unwrap();
    let data = dir.path().join("data");

    let mut ids = Vec::new();
    for round in 0..2 {
        let host = Host::start_with(&data, Some(&config), &[]).await;
        let want = ids.len() + 3;
        while ids.len() < want {
            let got = next_of(&mut sink, "dev.sluice.social.post.fresh").await;
            let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
            let text = body["text"].as_str().unwrap();
            assert!(
                text.starts_with("fresh post"),
                "a stale post got through: {text}"
            );
            assert_eq!(got.header("ce-feed"), Some("demo"));
            ids.push(got.header("ce-id").unwrap().to_owned());
        }
        if round == 0 {
            // The cursor is kept in the data directory: the restarted host
            // goes on from where it stopped.
            host.stop();
        }
    }
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a post was emitted twice: {ids:?}");
    // The stale posts (p1, p2) were dropped by the freshness filter.
    assert!(
        !ids.iter().any(|i| i == "post-p1" || i == "post-p2"),
        "{ids:?}"
    );
}

#[tokio::test]
async fn a_source_function_keeps_its_state_only_once_its_events_were_taken() {
    // The sink refuses the first run's event (one attempt, no dead letter:
    // dropped), then accepts.
    let mut sink = Sink::start().await;
    sink.respond_with(axum::http::StatusCode::SERVICE_UNAVAILABLE);
    let (_host, _dir) = host_with(&format!(
        r#"
        [sources.counter]
        kind = "function"
        path = "{}"
        schedule = "* * * * * *"
        sink = "{}"
        config = {{ mode = "emit", count = "1" }}
        "#,
        function("test-source").display(),
        sink.url()
    ))
    .await;
    let run_of = |r: &Received| -> u64 {
        let data: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        data["run"].as_u64().unwrap()
    };
    let refused = next_of(&mut sink, "com.example.source.tick").await;
    assert_eq!(run_of(&refused), 0);
    sink.respond_with(axum::http::StatusCode::ACCEPTED);
    // Refused runs do not advance the state: run 0 comes again (once more
    // at least: the first one taken), and only then run 1.
    let mut runs = vec![run_of(&refused)];
    while runs.last() == Some(&0) {
        assert!(runs.len() < 10, "the state never advanced: {runs:?}");
        runs.push(run_of(&next_of(&mut sink, "com.example.source.tick").await));
    }
    assert_eq!(runs.last(), Some(&1), "a run was skipped: {runs:?}");
    assert!(
        runs.len() >= 3,
        "the refused run's state was kept: {runs:?}"
    );
}

#[tokio::test]
async fn a_source_bound_to_something_missing_stops_start_up_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    let ping = "[sources.s]\nkind = \"ping\"\nschedule = \"0 0 1 1 *\"\n";
    for (binding, needle) in [
        (
            "sink = \"kafka:typo\"\n",
            "kafka sink `typo` does not exist",
        ),
        ("sink = \"sink:nope\"\n", "sink `nope` does not exist"),
        (
            "sink = \"function:nope\"\n",
            "function `nope` does not exist",
        ),
        (
            "sink = \"log\"\ndelivery = { dead_letter = \"sequence:nope\" }\n",
            "sequence `nope` does not exist",
        ),
    ] {
        std::fs::write(&config, format!("{ping}{binding}")).unwrap();
        let err = crate::harness::start_up_error(&dir.path().join("data"), &config);
        assert!(err.contains("source `s`") && err.contains(needle), "{err}");
    }
}

#[tokio::test]
async fn the_admin_api_cannot_delete_what_a_source_uses() {
    let (host, _dir) = host_with(&format!(
        r#"
        [functions.echo]
        path = "{}"

        [sinks.out]
        type = "log"

        [sequences.steps]
        steps = [{{ url = "http://127.0.0.1:9/" }}]

        [sources.to-sink]
        kind = "ping"
        schedule = "0 0 1 1 *"
        sink = "sink:out"

        [sources.to-sequence]
        kind = "ping"
        schedule = "0 0 1 1 *"
        sink = "log"
        delivery = {{ dead_letter = "sequence:steps" }}

        [sources.to-function]
        kind = "ping"
        schedule = "0 0 1 1 *"
        sink = "function:echo"
        "#,
        function("echo").display()
    ))
    .await;
    // Nothing in the routing table uses them: only the sources do.
    for (path, user) in [
        ("/admin/v1/sinks/out", "source `to-sink`"),
        ("/admin/v1/sequences/steps", "source `to-sequence`"),
        ("/admin/v1/functions/echo", "source `to-function`"),
    ] {
        let r = host
            .admin(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), axum::http::StatusCode::CONFLICT, "{path}");
        let reason = r.text().await.unwrap();
        assert!(reason.contains(user), "{path}: {reason}");
        let r = host.admin(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), axum::http::StatusCode::OK, "{path} is gone");
    }
}
