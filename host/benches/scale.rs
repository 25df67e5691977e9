//! Scale benchmark (`cargo bench -p sluice --bench scale`): resident memory
//! of a real `sluice serve` process with 1,000 registered idle functions,
//! with all of them loaded, and with 1,000 live instances; the baseline is
//! the same host with no functions, measured in the same run.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{function, mib, rss_bytes, table};
use sluice::config::{FunctionSettings, RuntimeConfig};
use sluice::metrics::Metrics;
use sluice::registry::{FunctionStore, Name};
use sluice::runtime::Runtime;

const FUNCTIONS: usize = 1_000;

/// Fill `data_dir` with `n` copies of echo (compiled once) and one `spin`
/// that admits `n` concurrent invocations with a long deadline.
async fn populate(data_dir: &std::path::Path, n: usize) {
    let store = std::sync::Arc::new(FunctionStore::open(data_dir).unwrap());
    let rt = std::sync::Arc::new(
        Runtime::new(
            RuntimeConfig::default(),
            store.clone(),
            Metrics::new().runtime,
        )
        .unwrap(),
    );
    let bytes = std::fs::read(function("echo")).unwrap();
    let compiled = rt.compile(bytes.clone().into()).await.unwrap();
    for i in 0..n {
        let name: Name = format!("f{i}").parse().unwrap();
        store
            .put(
                &name,
                &bytes,
                Some((&compiled.engine_key, &compiled.artifact)),
                FunctionSettings::default(),
            )
            .unwrap();
    }
    let spin = std::fs::read(function("spin")).unwrap();
    let compiled = rt.compile(spin.clone().into()).await.unwrap();
    let settings = FunctionSettings {
        timeout: Some(Duration::from_secs(60)),
        max_concurrency: Some(n as u32),
        ..Default::default()
    };
    store
        .put(
            &"spin".parse().unwrap(),
            &spin,
            Some((&compiled.engine_key, &compiled.artifact)),
            settings,
        )
        .unwrap();
}

struct Served {
    child: Child,
    base: String,
}

impl Served {
    fn start(data_dir: &std::path::Path, config: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--config",
            ])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "host did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, base }
    }

    fn rss(&self) -> u64 {
        rss_bytes(Some(self.child.id()))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(client: &reqwest::Client, url: String) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("ce-specversion", "1.0")
        .header("ce-id", "1")
        .header("ce-source", "/bench")
        .header("ce-type", "t")
}

/// The value of an unlabelled-or-first matching sample of `/metrics`.
async fn metric(client: &reqwest::Client, base: &str, prefix: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

async fn call_all(client: &reqwest::Client, base: &str, n: usize) {
    for i in 0..n {
        let r = event(client, format!("{base}/functions/f{i}"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("sluice.toml");
    // Keep everything resident and every instance slot available.
    std::fs::write(
        &config,
        "[runtime]\nidle_timeout = \"1h\"\nmax_resident = 2000\nmax_instances = 2000\n",
    )
    .unwrap();
    let client = reqwest::Client::new();

    let empty = tmp.path().join("empty");
    let baseline = {
        let host = Served::start(&empty, &config);
        tokio::time::sleep(Duration::from_millis(500)).await;
        host.rss()
    };

    let full = tmp.path().join("full");
    populate(&full, FUNCTIONS).await;
    let host = Served::start(&full, &config);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = host.rss();
    call_all(&client, &host.base, FUNCTIONS).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        metric(&client, &host.base, "sluice_loaded_functions").await,
        FUNCTIONS as f64
    );
    let loaded = host.rss();

    // 1,000 concurrent invocations of `spin`: 1,000 live instances.
    let mut spinning = Vec::new();
    for _ in 0..FUNCTIONS {
        let req = event(&client, format!("{}/functions/spin", host.base));
        spinning.push(tokio::spawn(async move { req.send().await }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let live_prefix = "sluice_live_instances{function=\"spin\"}";
    while metric(&client, &host.base, live_prefix).await < FUNCTIONS as f64 {
        assert!(Instant::now() < deadline, "instances did not all start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = host.rss();
    drop(host);
    for t in spinning {
        let _ = t.await;
    }

    let per = |a: u64, b: u64| {
        format!(
            "{:.1} KiB",
            (a.saturating_sub(b)) as f64 / FUNCTIONS as f64 / 1024.0
        )
    };
    table(
        "Host resident memory (sluice serve, RSS)",
        &["state", "RSS", "ratio to empty host", "per function"],
        &[
            vec![
                "empty host (baseline)".into(),
                mib(baseline),
                "1.00".into(),
                "-".into(),
            ],
            vec![
                format!("{FUNCTIONS} registered, idle (not loaded)"),
                mib(idle),
                format!("{:.2}", idle as f64 / baseline as f64),
                per(idle, baseline),
            ],
            vec![
                format!("{FUNCTIONS} loaded, no instance"),
                mib(loaded),
                format!("{:.2}", loaded as f64 / baseline as f64),
                per(loaded, idle),
            ],
            vec![
                format!("{FUNCTIONS} live instances (spinning, throttled)"),
                mib(live),
                format!("{:.2}", live as f64 / baseline as f64),
                format!("{} per instance", per(live, loaded)),
            ],
        ],
    );
}
