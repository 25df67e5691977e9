//! Declarative routing end to end: Knative filter dialects, fan-out, reply
//! destinations, the hop limit, sequences, parallels, and delivery with
//! retries and dead letters against real HTTP servers on loopback.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use crate::harness::{sluice_cli, Host, Received, Sink};

const WAIT: Duration = Duration::from_secs(10);

/// PUT a routing object; the status and body text.
async fn put(host: &Host, kind: &str, name: &str, spec: Value) -> (StatusCode, String) {
    let r = host
        .client
        .put(host.admin_url(&format!("/admin/v1/{kind}/{name}")))
        .json(&spec)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn put_ok(host: &Host, kind: &str, name: &str, spec: Value) {
    let (status, body) = put(host, kind, name, spec).await;
    assert_eq!(status, StatusCode::CREATED, "{kind}/{name}: {body}");
}

/// Wait (bounded) until `metric` reaches `want`.
async fn wait_metric(host: &Host, name: &str, labels: &[(&str, &str)], want: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = host.metric_sum(name, labels).await;
        if v >= want {
            assert_eq!(v, want, "{name}{labels:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} stayed at {v}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One scripted answer of a [`Scripted`] server.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Default for Answer {
    fn default() -> Self {
        status(200)
    }
}

fn status(s: u16) -> Answer {
    Answer {
        status: s,
        headers: vec![],
        body: String::new(),
        delay: Duration::ZERO,
    }
}

/// A real HTTP server that answers with a script (then a default) and
/// records when each request arrived.
struct Scripted {
    url: String,
    seen: Arc<Mutex<Vec<(Instant, Received)>>>,
}

impl Scripted {
    async fn start(script: Vec<Answer>, default: Answer) -> Self {
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let script = script.clone();
            let record = record.clone();
            let default = default.clone();
            async move {
                record
                    .lock()
                    .unwrap()
                    .push((Instant::now(), Received { headers, body }));
                let a = script.lock().unwrap().pop_front().unwrap_or(default);
                tokio::time::sleep(a.delay).await;
                let mut b = axum::http::Response::builder().status(a.status);
                for (k, v) in a.headers {
                    b = b.header(k, v);
                }
                b.body(axum::body::Body::from(a.body)).unwrap()
            }
        });
        let addr = crate::harness::serve_in_background(app);
        Self {
            url: format!("http://{addr}/"),
            seen,
        }
    }

    /// Wait (bounded) for `n` requests, then return them.
    async fn wait_for(&self, n: usize) -> Vec<(Instant, Received)> {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests arrived",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn gaps(seen: &[(Instant, Received)]) -> Vec<Duration> {
    seen.windows(2).map(|w| w[1].0 - w[0].0).collect()
}

/// POST a binary-mode event from `/tests/rates`; assert it was accepted.
async fn send(host: &Host, id: &str, ty: &str, extra: &[(&str, &str)]) {
    crate::harness::send_accepted(host, "/tests/rates", id, ty, extra).await;
}

#[tokio::test]
async fn filter_dialects_fan_out_to_every_matching_trigger() {
    let host = Host::start().await;
    let mut sink = Sink::start().await;
    // Each trigger sends the event itself (a URL subscriber) to the sink,
    // marked with the trigger's name through an extension override.
    let triggers = [
        ("eq", json!({"filter": {"type": "dev.rates.daily"}})),
        (
            "pre",
            json!({"filters": [{"prefix": {"type": "dev.rates."}}]}),
        ),
        (
            "suf",
            json!({"filters": [{"suffix": {"source": "/rates"}}]}),
        ),
        ("ext", json!({"filters": [{"exact": {"tenant": "acme"}}]})),
        (
            "not",
            json!({"filters": [{"not": {"prefix": {"type": "dev."}}}]}),
        ),
        (
            "any",
            json!({"filters": [{"any": [{"exact": {"subject": "EUR"}}, {"suffix": {"type": ".weekly"}}]}]}),
        ),
        (
            "all",
            json!({"filters": [{"all": [{"prefix": {"type": "dev."}}, {"not": {"exact": {"tenant": "acme"}}}]}]}),
        ),
        (
            "both",
            json!({"filter": {"source": "/tests/rates"}, "filters": [{"prefix": {"type": "DEV."}}]}),
        ),
    ];
    for (name, mut spec) in triggers {
        spec["subscriber"] = json!(sink.url());
        spec["extensions"] = json!({ "via": name });
        put_ok(&host, "triggers", name, spec).await;
    }
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 4] = [
        ("dev.rates.daily", &[], &["all", "eq", "pre", "suf"]),
        (
            "dev.rates.weekly",
            &[("ce-tenant", "acme")],
            &["any", "ext", "pre", "suf"],
        ),
        ("other", &[("ce-subject", "EUR")], &["any", "not", "suf"]),
        ("Dev.rates.daily", &[("ce-tenant", "ACME")], &["not", "suf"]),
    ];
    for (i, (ty, extra, want)) in cases.iter().enumerate() {
        send(&host, &format!("e{i}"), ty, extra).await;
        let mut got = Vec::new();
        for _ in 0..want.len() {
            let r = sink.next(WAIT).await;
            assert_eq!(r.header("ce-type"), Some(*ty));
            got.push(r.header("ce-via").unwrap().to_owned());
        }
        got.sort();
        assert_eq!(&got, want, "event type {ty} {extra:?}");
        // Every delivery of the event ended: no other trigger sent it.
        host.settled().await;
        sink.assert_empty();
    }
    assert!(
        host.metric_sum("sluice_routing_filter_seconds_count", &[("trigger", "pre")])
            .await
            >= 4.0
    );
}

#[tokio::test]
async fn replies_reach_each_kind_of_destination() {
    let host = Host::start().await;
    let mut sink = Sink::start().await;
    host.deploy_ok("echo", "echo").await;
    host.deploy_ok("echo-two", "echo").await;
    // A named sink: structured mode, an extra header, an extension.
    put_ok(
        &host,
        "sinks",
        "out",
        json!({"url": sink.url(), "mode": "structured", "headers": {"x-token": "s3cret"}, "extensions": {"pipeline": "rates"}}),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "to-sink",
        json!({"filter": {"type": "a"}, "function": "echo", "reply": {"sink": "out"}}),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "to-url",
        json!({"filter": {"type": "b"}, "function": "echo", "reply": sink.url()}),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "to-fn",
        json!({"filter": {"type": "c"}, "function": "echo", "reply": {"function": "echo-two"}}),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "nowhere",
        json!({"filter": {"type": "d"}, "function": "echo"}),
    )
    .await;
    // Through the broker: e's reply (type e.echoed) is routed again.
    put_ok(
        &host,
        "triggers",
        "to-broker",
        json!({"filter": {"type": "e"}, "function": "echo", "reply": "broker"}),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "again",
        json!({"filter": {"type": "e.echoed"}, "subscriber": sink.url()}),
    )
    .await;

    send(&host, "1", "a", &[]).await;
    let r = sink.next(WAIT).await;
    assert_eq!(r.header("x-token"), Some("s3cret"));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/cloudevents+json"));
    let doc: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(doc["type"], "a.echoed");
    assert_eq!(doc["pipeline"], "rates");

    send(&host, "2", "b", &[]).await;
    assert_eq!(sink.next(WAIT).await.header("ce-type"), Some("b.echoed"));

    send(&host, "3", "c", &[]).await;
    wait_metric(
        &host,
        "sluice_invocations_total",
        &[("function", "echo-two")],
        1.0,
    )
    .await;

    send(&host, "4", "d", &[]).await;
    wait_metric(
        &host,
        "sluice_routing_delivered_total",
        &[("kind", "trigger"), ("name", "nowhere")],
        1.0,
    )
    .await;

    send(&host, "5", "e", &[]).await;
    let r = sink.next(WAIT).await;
    assert_eq!(r.header("ce-type"), Some("e.echoed"));
    assert_eq!(
        r.header("ce-sluicehops"),
        Some("254"),
        "one pass through the broker"
    );
    host.settled().await;
    sink.assert_empty();
}

#[tokio::test]
async fn the_hop_limit_stops_a_reply_loop() {
    let host = Host::start().await;
    let counter = Scripted::start(vec![], status(202)).await;
    host.deploy_ok("echo", "echo").await;
    // echo's reply goes back to the broker, where it matches again: a loop.
    put_ok(
        &host,
        "triggers",
        "loop",
        json!({"filters": [{"prefix": {"type": "loop"}}], "function": "echo", "reply": "broker"}),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "watch",
        json!({"filters": [{"prefix": {"type": "loop"}}], "subscriber": counter.url}),
    )
    .await;

    send(&host, "l1", "loop", &[("ce-sluicehops", "4")]).await;
    wait_metric(
        &host,
        "sluice_routing_hop_limit_dropped_total",
        &[("kind", "reply"), ("name", "trigger/loop")],
        1.0,
    )
    .await;
    host.wait_for_log("hop limit log line", |v| {
        v["fields"]["message"] == "hop limit reached: event dropped"
    })
    .await;
    // Passes with 4, 3, 2 and 1 hops left; the fifth would have 0.
    let seen = counter.wait_for(4).await;
    // (The watcher's deliveries run concurrently with the loop, so they may
    // arrive out of order.)
    let mut hops: Vec<Option<&str>> = seen
        .iter()
        .map(|(_, r)| r.header("ce-sluicehops"))
        .collect();
    hops.sort();
    assert_eq!(hops, [Some("1"), Some("2"), Some("3"), Some("4")]);
    host.settled().await;
    assert_eq!(counter.count(), 4, "the loop stopped");

    // The default limit (255) also ends a loop that carries no counter.
    send(&host, "l2", "loop", &[]).await;
    wait_metric(
        &host,
        "sluice_routing_hop_limit_dropped_total",
        &[("kind", "reply"), ("name", "trigger/loop")],
        2.0,
    )
    .await;
    counter.wait_for(4 + 255).await;
    host.settled().await;
    assert_eq!(counter.count(), 4 + 255, "the loop stopped");
}

#[tokio::test]
async fn sequences_chain_steps_and_stop_when_a_step_drops_the_event() {
    let host = Host::start().await;
    let mut sink = Sink::start().await;
    host.deploy_ok("echo", "echo").await;
    host.deploy_ok("drop", "drop").await;
    // An HTTP step that answers with a CloudEvent (structured): its reply.
    let service = Scripted::start(
        vec![],
        Answer {
            status: 200,
            headers: vec![("content-type", "application/cloudevents+json".into())],
            body: json!({"specversion": "1.0", "id": "svc-1", "source": "/svc", "type": "from.service", "data": {"ok": true}}).to_string(),
            ..Answer::default()
        },
    )
    .await;
    put_ok(&host, "sequences", "three", json!({"steps": [{"function": "echo"}, {"function": "echo"}, {"function": "echo"}], "reply": sink.url()})).await;
    put_ok(&host, "sequences", "dropping", json!({"steps": [{"function": "echo"}, {"function": "drop"}, {"function": "echo"}], "reply": sink.url()})).await;
    put_ok(&host, "sequences", "mixed", json!({"steps": [{"function": "echo"}, {"url": service.url}, {"function": "echo"}, {"function": "echo"}]})).await;
    put_ok(
        &host,
        "triggers",
        "t3",
        json!({"filter": {"type": "s3"}, "subscriber": {"sequence": "three"}}),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "td",
        json!({"filter": {"type": "sd"}, "subscriber": {"sequence": "dropping"}}),
    )
    .await;
    // Without a reply of its own, the sequence's last reply is the trigger's.
    put_ok(
        &host,
        "triggers",
        "tm",
        json!({"filter": {"type": "sm"}, "subscriber": {"sequence": "mixed"}, "reply": sink.url()}),
    )
    .await;

    send(&host, "q1", "s3", &[]).await;
    let r = sink.next(WAIT).await;
    assert_eq!(r.header("ce-type"), Some("s3.echoed.echoed.echoed"));
    assert_eq!(r.header("ce-id"), Some("q1"));

    send(&host, "q2", "sd", &[]).await;
    wait_metric(
        &host,
        "sluice_routing_delivered_total",
        &[("kind", "step"), ("name", "dropping/1")],
        1.0,
    )
    .await;
    host.settled().await;
    sink.assert_empty();
    assert_eq!(
        host.metric_sum(
            "sluice_routing_delivered_total",
            &[("kind", "step"), ("name", "dropping/2")]
        )
        .await,
        0.0
    );

    send(&host, "q3", "sm", &[]).await;
    let r = sink.next(WAIT).await;
    assert_eq!(r.header("ce-type"), Some("from.service.echoed.echoed"));
    assert_eq!(r.header("ce-id"), Some("svc-1"));
    let step_input = &service.wait_for(1).await[0].1;
    assert_eq!(step_input.header("ce-type"), Some("sm.echoed"));
}

#[tokio::test]
async fn sequence_step_failure_reaches_the_triggers_dead_letter() {
    let host = Host::start().await;
    let mut dlq = Sink::start().await;
    host.deploy_ok("echo", "echo").await;
    let failing = Scripted::start(
        vec![],
        Answer {
            status: 500,
            headers: vec![],
            body: "step broke".into(),
            ..Answer::default()
        },
    )
    .await;
    // The second step always answers 500; neither it nor the sequence has
    // a dead letter, so the trigger's takes the event.
    put_ok(&host, "sequences", "q", json!({"steps": [{"function": "echo"}, {"url": failing.url, "delivery": {"retry": 1, "backoff_delay": "10ms"}}]})).await;
    put_ok(
        &host,
        "triggers",
        "t",
        json!({"filter": {"type": "seqfail"}, "subscriber": {"sequence": "q"}, "delivery": {"dead_letter": dlq.url()}}),
    )
    .await;
    send(&host, "s1", "seqfail", &[]).await;
    let dead = dlq.next(WAIT).await;
    assert_eq!(failing.wait_for(2).await.len(), 2, "one attempt, one retry");
    // What the failed step was given (the first step's reply), naming it.
    assert_eq!(dead.header("ce-id"), Some("s1"));
    assert_eq!(dead.header("ce-type"), Some("seqfail.echoed"));
    assert_eq!(
        dead.header("ce-sluiceerrordest"),
        Some(failing.url.as_str())
    );
    assert_eq!(dead.header("ce-sluiceerrorcode"), Some("500"));
    // (Binary mode percent-encodes header values.)
    assert_eq!(dead.header("ce-sluiceerrordata"), Some("step%20broke"));
    // The trigger's delivery failed; it was not delivered.
    let failed = [
        ("trigger", "t"),
        ("outcome", "subscriber_failed"),
        ("error", "status"),
    ];
    wait_metric(&host, "sluice_deliveries_total", &failed, 1.0).await;
    let delivered = [("trigger", "t"), ("outcome", "delivered")];
    assert_eq!(
        host.metric_sum("sluice_deliveries_total", &delivered).await,
        0.0
    );
    let step = [("kind", "step"), ("name", "q/1")];
    assert_eq!(
        host.metric_sum("sluice_routing_dead_lettered_total", &step)
            .await,
        1.0
    );

    // A parallel's failing branch, the same way.
    put_ok(
        &host,
        "parallels",
        "fan",
        json!({"branches": [{"subscriber": {"function": "echo"}}, {"subscriber": failing.url}]}),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "tp",
        json!({"filter": {"type": "parfail"}, "subscriber": {"parallel": "fan"}, "delivery": {"dead_letter": dlq.url()}}),
    )
    .await;
    send(&host, "p1", "parfail", &[]).await;
    let dead = dlq.next(WAIT).await;
    assert_eq!(dead.header("ce-id"), Some("p1"));
    assert_eq!(dead.header("ce-type"), Some("parfail"));
    assert_eq!(
        dead.header("ce-sluiceerrordest"),
        Some(failing.url.as_str())
    );
    let failed = [
        ("trigger", "tp"),
        ("outcome", "subscriber_failed"),
        ("error", "status"),
    ];
    wait_metric(&host, "sluice_deliveries_total", &failed, 1.0).await;
    let branch = [("kind", "branch"), ("name", "fan/1")];
    assert_eq!(
        host.metric_sum("sluice_routing_dead_lettered_total", &branch)
            .await,
        1.0
    );
}

#[tokio::test]
async fn an_invalid_hop_counter_is_refused_at_the_ingress() {
    let host = Host::start().await;
    let counter = Scripted::start(vec![], status(202)).await;
    put_ok(
        &host,
        "triggers",
        "watch",
        json!({"filter": {"type": "hops"}, "subscriber": counter.url}),
    )
    .await;
    for bad in ["abc", "-3", "1.5"] {
        let r = host
            .client
            .post(host.url("/"))
            .header("ce-specversion", "1.0")
            .header("ce-id", "bad")
            .header("ce-source", "/tests")
            .header("ce-type", "hops")
            .header("ce-sluicehops", bad)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "sluicehops {bad:?}");
        let reason = r.text().await.unwrap();
        assert!(reason.contains("sluicehops"), "{reason}");
    }
    // Structured mode carries it as a JSON integer.
    let r = host
        .client
        .post(host.url("/"))
        .header("content-type", "application/cloudevents+json")
        .body(json!({"specversion": "1.0", "id": "neg", "source": "/tests", "type": "hops", "sluicehops": -3}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A valid counter passes; only it reaches the subscriber.
    send(&host, "good", "hops", &[("ce-sluicehops", "3")]).await;
    let seen = counter.wait_for(1).await;
    assert_eq!(seen[0].1.header("ce-id"), Some("good"));
    assert_eq!(seen[0].1.header("ce-sluicehops"), Some("3"));
}

#[tokio::test]
async fn parallel_branches_get_the_events_their_filters_pass() {
    let host = Host::start().await;
    let mut a = Sink::start().await;
    let mut b = Sink::start().await;
    host.deploy_ok("echo", "echo").await;
    put_ok(
        &host,
        "parallels",
        "fan",
        json!({
            "branches": [
                {"filters": [{"suffix": {"type": ".eur"}}], "subscriber": {"function": "echo"}, "reply": a.url()},
                {"subscriber": {"function": "echo"}},
                {"filters": [{"exact": {"type": "never"}}], "subscriber": a.url()}
            ],
            "reply": b.url()
        }),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "p",
        json!({"filters": [{"prefix": {"type": "rate"}}], "subscriber": {"parallel": "fan"}}),
    )
    .await;

    send(&host, "p1", "rate.eur", &[]).await;
    assert_eq!(
        a.next(WAIT).await.header("ce-type"),
        Some("rate.eur.echoed")
    );
    assert_eq!(
        b.next(WAIT).await.header("ce-type"),
        Some("rate.eur.echoed")
    );
    send(&host, "p2", "rate.usd", &[]).await;
    assert_eq!(b.next(WAIT).await.header("ce-id"), Some("p2"));
    host.settled().await;
    a.assert_empty();
    b.assert_empty();
}

#[tokio::test]
async fn retries_follow_the_backoff_then_succeed() {
    let host = Host::start().await;
    let server = Scripted::start(vec![status(503), status(500), status(404)], status(202)).await;
    put_ok(
        &host,
        "triggers",
        "flaky",
        json!({"filter": {"type": "r"}, "subscriber": server.url, "delivery": {"retry": 4, "backoff": "linear", "backoff_delay": "100ms"}}),
    )
    .await;
    send(&host, "r1", "r", &[]).await;
    let seen = server.wait_for(4).await;
    // Linear: waits of 100, 200 and 300 ms (lower bounds: sleeps never end early).
    let g = gaps(&seen);
    for (i, want) in [100u64, 200, 300].into_iter().enumerate() {
        assert!(
            g[i] >= Duration::from_millis(want),
            "gap {i} was {:?}",
            g[i]
        );
    }
    assert!(seen.iter().all(|(_, r)| r.header("ce-id") == Some("r1")));
    wait_metric(
        &host,
        "sluice_routing_delivered_total",
        &[("kind", "trigger"), ("name", "flaky")],
        1.0,
    )
    .await;
    assert_eq!(
        host.metric_sum("sluice_routing_retries_total", &[("name", "flaky")])
            .await,
        3.0
    );
    host.settled().await;
    assert_eq!(server.count(), 4, "no attempt after the success");
}

#[tokio::test]
async fn exhausted_retries_go_to_the_dead_letter_with_the_failure() {
    let host = Host::start().await;
    let mut dlq = Sink::start().await;
    let long_body = "x".repeat(5000);
    let server = Scripted::start(
        vec![],
        Answer {
            status: 500,
            headers: vec![],
            body: long_body,
            ..Answer::default()
        },
    )
    .await;
    put_ok(&host, "sinks", "dlq", json!({"url": dlq.url()})).await;
    put_ok(
        &host,
        "triggers",
        "failing",
        json!({"filter": {"type": "f"}, "subscriber": server.url, "delivery": {"retry": 2, "backoff": "exponential", "backoff_delay": "50ms", "dead_letter": {"sink": "dlq"}}}),
    )
    .await;
    send(&host, "f1", "f", &[]).await;
    let dead = dlq.next(WAIT).await;
    let seen = server.wait_for(3).await;
    assert_eq!(seen.len(), 3, "one attempt and two retries");
    let g = gaps(&seen);
    assert!(
        g[0] >= Duration::from_millis(50) && g[1] >= Duration::from_millis(100),
        "{g:?}"
    );
    assert_eq!(dead.header("ce-id"), Some("f1"));
    assert_eq!(dead.header("ce-type"), Some("f"));
    assert_eq!(dead.header("ce-sluiceerrordest"), Some(server.url.as_str()));
    assert_eq!(dead.header("ce-sluiceerrorcode"), Some("500"));
    let data = dead.header("ce-sluiceerrordata").unwrap();
    assert!(
        data.len() <= 1024 && data.starts_with("xxx"),
        "{}",
        data.len()
    );
    wait_metric(
        &host,
        "sluice_routing_dead_lettered_total",
        &[("name", "failing")],
        1.0,
    )
    .await;
    host.settled().await;
    dlq.assert_empty();
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn other_4xx_and_invalid_replies_are_not_retried() {
    let host = Host::start().await;
    let mut dlq = Sink::start().await;
    let bad_request = Scripted::start(
        vec![],
        Answer {
            status: 400,
            headers: vec![],
            body: "no thanks".into(),
            ..Answer::default()
        },
    )
    .await;
    let garbage = Scripted::start(
        vec![],
        Answer {
            status: 200,
            headers: vec![("content-type", "application/cloudevents+json".into())],
            body: "{not json".into(),
            ..Answer::default()
        },
    )
    .await;
    for (name, ty, url) in [("bad", "b", &bad_request.url), ("junk", "j", &garbage.url)] {
        put_ok(
            &host,
            "triggers",
            name,
            json!({"filter": {"type": ty}, "subscriber": url, "delivery": {"retry": 3, "backoff_delay": "10ms", "dead_letter": dlq.url()}}),
        )
        .await;
    }
    send(&host, "b1", "b", &[]).await;
    let dead = dlq.next(WAIT).await;
    assert_eq!(dead.header("ce-sluiceerrorcode"), Some("400"));
    assert_eq!(dead.header("ce-sluiceerrordata"), Some("no%20thanks"));
    send(&host, "j1", "j", &[]).await;
    let dead = dlq.next(WAIT).await;
    assert_eq!(dead.header("ce-id"), Some("j1"));
    assert_eq!(dead.header("ce-sluiceerrorcode"), Some("200"));
    host.settled().await;
    dlq.assert_empty();
    assert_eq!(bad_request.count(), 1);
    assert_eq!(garbage.count(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_its_maximum() {
    let host = Host::start().await;
    let ra = |secs: &str| Answer {
        status: 429,
        headers: vec![("retry-after", secs.to_owned())],
        ..Answer::default()
    };
    let honoured = Scripted::start(vec![ra("1")], status(202)).await;
    let capped = Scripted::start(
        vec![Answer {
            status: 503,
            ..ra("3600")
        }],
        status(202),
    )
    .await;
    put_ok(&host, "triggers", "honoured", json!({"filter": {"type": "h"}, "subscriber": honoured.url, "delivery": {"retry": 1, "backoff_delay": "10ms"}})).await;
    put_ok(&host, "triggers", "capped", json!({"filter": {"type": "c"}, "subscriber": capped.url, "delivery": {"retry": 1, "backoff_delay": "10ms", "retry_after_max": "300ms"}})).await;
    send(&host, "h1", "h", &[]).await;
    send(&host, "c1", "c", &[]).await;
    let g = gaps(&honoured.wait_for(2).await)[0];
    assert!(
        g >= Duration::from_millis(1000),
        "Retry-After: 1 waited {g:?}"
    );
    // Capped at 300ms instead of an hour; the bound below is generous.
    let g = gaps(&capped.wait_for(2).await)[0];
    assert!(
        g >= Duration::from_millis(300) && g < Duration::from_secs(30),
        "{g:?}"
    );
}

#[tokio::test]
async fn failing_functions_are_retried_then_dead_lettered_or_logged() {
    let host = Host::start().await;
    let mut dlq = Sink::start().await;
    host.deploy_ok("trap", "trap").await;
    put_ok(
        &host,
        "triggers",
        "trapping",
        json!({"filter": {"type": "t"}, "function": "trap", "delivery": {"retry": 2, "backoff_delay": "10ms", "dead_letter": dlq.url()}}),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "lost",
        json!({"filter": {"type": "u"}, "function": "trap"}),
    )
    .await;
    send(&host, "t1", "t", &[]).await;
    let dead = dlq.next(WAIT).await;
    assert_eq!(dead.header("ce-id"), Some("t1"));
    assert_eq!(dead.header("ce-sluiceerrordest"), Some("function:trap"));
    assert!(dead.header("ce-sluiceerrorcode").is_none());
    assert!(dead
        .header("ce-sluiceerrordata")
        .unwrap()
        .contains("trapped"));
    assert_eq!(
        host.metric_sum("sluice_invocations_total", &[("function", "trap")])
            .await,
        3.0
    );
    // Without a dead letter: logged and counted, never silent.
    send(&host, "u1", "u", &[]).await;
    wait_metric(
        &host,
        "sluice_routing_undeliverable_total",
        &[("name", "lost")],
        1.0,
    )
    .await;
    host.wait_for_log("undeliverable log line", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("undeliverable"))
            && v["fields"]["event_id"] == "u1"
    })
    .await;
}

#[tokio::test]
async fn invalid_definitions_are_refused_and_change_nothing() {
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    put_ok(&host, "sinks", "out", json!({"type": "log"})).await;
    put_ok(
        &host,
        "sequences",
        "a",
        json!({"steps": [{"function": "echo"}]}),
    )
    .await;
    put_ok(
        &host,
        "triggers",
        "t",
        json!({"function": "echo", "reply": {"sink": "out"}}),
    )
    .await;
    let cases = [
        (
            "triggers",
            "t",
            json!({"function": "nope"}),
            "function `nope` does not exist",
        ),
        (
            "triggers",
            "t",
            json!({"function": "echo", "filters": [{"prefx": {"type": "x"}}]}),
            "prefx",
        ),
        (
            "triggers",
            "t",
            json!({"function": "echo", "filters": [{"exact": {"Bad": "x"}}]}),
            "Bad",
        ),
        (
            "triggers",
            "t",
            json!({"function": "echo", "reply": {"sink": "missing"}}),
            "sink `missing` does not exist",
        ),
        (
            "triggers",
            "t",
            json!({"function": "echo", "subscriber": "log"}),
            "not both",
        ),
        (
            "triggers",
            "t",
            json!({"function": "echo", "delivery": {"retry": 1, "backoff": "sometimes"}}),
            "sometimes",
        ),
        ("sinks", "s", json!({"url": "ftp://x"}), "ftp"),
        ("sinks", "s", json!({"type": "http"}), "needs a `url`"),
        (
            "sequences",
            "a",
            json!({"steps": [{"sequence": "b"}]}),
            "sequence `b` does not exist",
        ),
        (
            "sequences",
            "a",
            json!({"steps": [{"sequence": "a"}]}),
            "cycle",
        ),
        ("sequences", "a", json!({"steps": []}), "at least one step"),
        (
            "parallels",
            "p",
            json!({"branches": [{"subscriber": {"sequence": "zzz"}}]}),
            "does not exist",
        ),
    ];
    let before: Value = host
        .client
        .get(host.admin_url("/admin/v1/routing"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (kind, name, spec, needle) in cases {
        let (status, body) = put(&host, kind, name, spec.clone()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{kind}/{name} {spec}: {body}"
        );
        assert!(body.contains(needle), "{spec}: {body}");
    }
    // A cycle through two sequences is refused too.
    put_ok(
        &host,
        "sequences",
        "b",
        json!({"steps": [{"function": "echo"}]}),
    )
    .await;
    let (status, body) = put(
        &host,
        "sequences",
        "b",
        json!({"steps": [{"sequence": "a"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = put(
        &host,
        "sequences",
        "a",
        json!({"steps": [{"sequence": "b"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("cycle"), "{body}");
    // Deleting what is in use is refused.
    let r = host
        .client
        .delete(host.admin_url("/admin/v1/sinks/out"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = host
        .client
        .delete(host.admin_url("/admin/v1/sequences/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "b uses a");
    let mut after: Value = host
        .client
        .get(host.admin_url("/admin/v1/routing"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    after["sequences"].as_object_mut().unwrap().remove("b");
    assert_eq!(before, after);
    // The trigger still has its stored definition.
    let r = host
        .client
        .get(host.admin_url("/admin/v1/triggers/t"))
        .send()
        .await
        .unwrap();
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["reply"], json!({"sink": "out"}));
}

/// The example's config with function paths from the test build and the
/// display sink pointed at `display`.
fn rates_pipeline_config(dir: &std::path::Path, display: &str) -> std::path::PathBuf {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/rates-pipeline/sluice.toml");
    let mut text = std::fs::read_to_string(example).unwrap();
    for f in ["currency-convert", "rate-enrich", "rate-format"] {
        text = text.replace(
            &format!("../../target/functions/{f}.wasm"),
            &crate::harness::function(f).display().to_string(),
        );
    }
    assert!(text.contains("http://127.0.0.1:8080/"));
    text = text.replace("http://127.0.0.1:8080/", display);
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn the_rates_pipeline_example_converts_enriches_formats_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let mut display = Sink::start().await;
    let config = rates_pipeline_config(dir.path(), &display.url());
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    let rate = |id: &str, data: &str| {
        let host = &host;
        let (id, data) = (id.to_owned(), data.to_owned());
        async move {
            let r = crate::harness::send_event(
                &host.client,
                &host.url("/"),
                &id,
                "dev.sluice.currency.rate",
                &data,
            )
            .await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
        }
    };
    rate(
        "ok-1",
        r#"{"base":"USD","quote":"EUR","rate":0.92,"amount":100}"#,
    )
    .await;
    let got = display.next(WAIT).await;
    assert!(got
        .header("content-type")
        .unwrap()
        .starts_with("application/cloudevents+json"));
    assert_eq!(got.header("x-pipeline"), Some("rates"));
    let doc: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(doc["type"], "dev.sluice.currency.formatted");
    assert_eq!(doc["id"], "ok-1");
    assert_eq!(doc["pipeline"], "rates");
    assert_eq!(doc["pair"], "usdeur");
    assert_eq!(
        doc["data"]["text"],
        "100.00 USD = 92.00 EUR at 0.92 (1 EUR = 1.086957 USD, major pair)"
    );

    // A conversion of a currency to itself is dropped by the enrich step.
    rate("same-1", r#"{"base":"EUR","quote":"EUR","rate":1}"#).await;
    wait_metric(
        &host,
        "sluice_routing_delivered_total",
        &[("kind", "step"), ("name", "enrich-and-format/0")],
        2.0,
    )
    .await;
    host.settled().await;
    display.assert_empty();

    // A bad rate fails the conversion (a handler error: not retried) and
    // lands in the dead-letter sink, a log sink.
    rate("bad-1", r#"{"base":"USD","quote":"EUR","rate":-1}"#).await;
    let dead = host
        .wait_for_log("dead letter display", |v| {
            v["target"] == "sluice::display" && v["fields"]["id"] == "bad-1"
        })
        .await;
    let ext = dead["fields"]["extensions"].as_str().unwrap();
    assert!(ext.contains("deadletter=rates"), "{ext}");
    assert!(
        ext.contains("sluiceerrordest=function:currency-convert"),
        "{ext}"
    );
    assert!(ext.contains("rate must be a positive number"), "{ext}");
    assert_eq!(
        host.metric_sum(
            "sluice_invocations_total",
            &[("function", "currency-convert")]
        )
        .await,
        3.0
    );

    // A test-marked rate does not pass the trigger's `not` filter.
    let r = host
        .client
        .post(host.url("/"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "test-1")
        .header("ce-source", "/t")
        .header("ce-type", "dev.sluice.currency.rate")
        .header("ce-subject", "test")
        .header("content-type", "application/json")
        .body(r#"{"base":"USD","quote":"EUR","rate":0.9}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    host.wait_unmatched("test-1").await;
    host.settled().await;
    display.assert_empty();
    assert_eq!(
        host.metric_sum(
            "sluice_invocations_total",
            &[("function", "currency-convert")]
        )
        .await,
        3.0
    );
}

#[tokio::test]
async fn graph_draws_a_config_file_and_a_running_host() {
    let dir = tempfile::tempdir().unwrap();
    let config = rates_pipeline_config(dir.path(), "http://127.0.0.1:9/");
    let run = |args: &[&str]| sluice_cli(&[&["graph"], args].concat());
    let from_file = run(&["--config", config.to_str().unwrap()]);
    for needle in [
        "flowchart LR",
        "broker --> trigger_rates",
        "trigger_rates --> fn_currency_convert",
        "trigger_rates -. \"reply\" .-> seq_enrich_and_format",
        "seq_enrich_and_format_1 -. \"reply\" .-> sink_display",
        "trigger_rates -. \"dead letter\" .-x sink_dead_letters",
    ] {
        assert!(
            from_file.contains(needle),
            "missing `{needle}` in\n{from_file}"
        );
    }
    let dot = run(&["--config", config.to_str().unwrap(), "--format", "dot"]);
    assert!(
        dot.contains("trigger_rates -> fn_currency_convert;"),
        "{dot}"
    );

    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    let from_host = run(&["--host", &host.admin_url("")]);
    assert_eq!(
        from_host, from_file,
        "the host draws what the file declares"
    );
}

#[tokio::test]
async fn changes_apply_at_once_without_dropping_in_flight_events() {
    let host = Host::start().await;
    let mut sink = Sink::start().await;
    // A server that holds its first request until released, then refuses
    // it (503); it takes the later ones (202).
    let release = Arc::new(tokio::sync::Notify::new());
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let app = {
        let (release, seen) = (release.clone(), seen.clone());
        axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (release, seen) = (release.clone(), seen.clone());
            async move {
                let first = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(Received { headers, body });
                    seen.len() == 1
                };
                if first {
                    release.notified().await;
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::ACCEPTED
                }
            }
        })
    };
    let server = format!("http://{}/", crate::harness::serve_in_background(app));
    let wait_for = |n: usize| {
        let seen = seen.clone();
        async move {
            let deadline = Instant::now() + WAIT;
            loop {
                let arrived = seen.lock().unwrap().len();
                if arrived >= n {
                    return;
                }
                assert!(Instant::now() < deadline, "request {n} never came");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    put_ok(
        &host,
        "triggers",
        "slow",
        json!({"filter": {"type": "s"}, "subscriber": server, "delivery": {"retry": 1, "backoff_delay": "10ms"}}),
    )
    .await;
    send(&host, "s1", "s", &[]).await;
    wait_for(1).await;
    // While s1's first attempt is held, the trigger is replaced and then
    // deleted.
    put_ok(
        &host,
        "triggers",
        "slow",
        json!({"filter": {"type": "s"}, "subscriber": sink.url()}),
    )
    .await;
    send(&host, "s2", "s", &[]).await;
    assert_eq!(
        sink.next(WAIT).await.header("ce-id"),
        Some("s2"),
        "the new definition applies at once"
    );
    let r = host
        .client
        .delete(host.admin_url("/admin/v1/triggers/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Only now does the first attempt fail: s1 still finishes, retried
    // with the definition it was routed with.
    release.notify_one();
    wait_for(2).await;
    assert_eq!(seen.lock().unwrap()[1].header("ce-id"), Some("s1"));
    wait_metric(
        &host,
        "sluice_routing_delivered_total",
        &[("kind", "trigger"), ("name", "slow")],
        2.0,
    )
    .await;
    // The deleted trigger takes nothing more.
    send(&host, "s3", "s", &[]).await;
    host.wait_unmatched("s3").await;
    host.settled().await;
    sink.assert_empty();
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_config_file_with_a_broken_reference_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        "[triggers.t]\nsubscriber = \"log\"\nreply = { sink = \"nowhere\" }\n\n[sequences.q]\nsteps = [{ sequence = \"q\" }]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let err = crate::harness::start_up_error(&data, &config);
    assert!(err.contains("sink `nowhere` does not exist"), "{err}");
    // Nothing was written for the next start.
    assert_eq!(std::fs::read_dir(data.join("triggers")).unwrap().count(), 0);
}

#[tokio::test]
async fn a_slow_attempt_times_out_and_is_retried() {
    let host = Host::start().await;
    let slow = Answer {
        delay: Duration::from_secs(60),
        ..status(202)
    };
    let server = Scripted::start(vec![slow], status(202)).await;
    put_ok(
        &host,
        "triggers",
        "slow",
        json!({"filter": {"type": "s"}, "subscriber": server.url, "delivery": {"retry": 1, "backoff_delay": "10ms", "timeout": "200ms"}}),
    )
    .await;
    send(&host, "s1", "s", &[]).await;
    server.wait_for(2).await;
    // The retry came after the 200ms deadline: the answer would take a
    // minute (longer than `wait_for` waits).
    wait_metric(
        &host,
        "sluice_routing_delivered_total",
        &[("kind", "trigger"), ("name", "slow")],
        1.0,
    )
    .await;
    assert_eq!(
        host.metric_sum("sluice_routing_retries_total", &[("name", "slow")])
            .await,
        1.0
    );
}
