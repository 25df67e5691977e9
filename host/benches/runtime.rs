//! Runtime benchmarks (`cargo bench -p sluice --bench runtime`): warm
//! invocation, cold start, and the cost of misbehaving neighbours, each
//! printed with a baseline measured in the same process.
//!
//! Not criterion: these targets are about medians and p99s of single
//! invocations and about throughput ratios, which a plain harness reports
//! directly. Each measurement is bounded in count and time.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{calibration, function, table, us, Stats};
use sluice::config::{FunctionSettings, RuntimeConfig};
use sluice::event::Event;
use sluice::metrics::Metrics;
use sluice::registry::{FunctionStore, Name};
use sluice::runtime::Runtime;

const WARM_SAMPLES: usize = 5_000;
const COLD_SAMPLES: usize = 500;
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(3);
const CONCURRENCY: usize = 4;

fn event() -> Event {
    let mut e = Event::new("bench-1", "/bench", "dev.sluice.bench");
    e.datacontenttype = Some("application/json".into());
    e.data = Some(bytes::Bytes::from_static(
        br#"{"base":"USD","quote":"EUR","rate":0.92,"amount":100}"#,
    ));
    e
}

async fn deploy(rt: &Arc<Runtime>, name: &str, file: &str, settings: FunctionSettings) -> Name {
    let bytes = std::fs::read(function(file)).unwrap();
    let compiled = rt.compile(bytes.clone().into()).await.unwrap();
    let name: Name = name.parse().unwrap();
    rt.functions()
        .put(
            &name,
            &bytes,
            Some((&compiled.engine_key, &compiled.artifact)),
            settings,
        )
        .unwrap();
    name
}

/// Warm fresh-instance latency of the component at `path`, deployed as
/// `echo-compare`.
async fn warm_fresh(rt: &Arc<Runtime>, path: &std::path::Path, e: &Event) -> Stats {
    let bytes = std::fs::read(path).unwrap();
    let compiled = rt.compile(bytes.clone().into()).await.unwrap();
    let name: Name = "echo-compare".parse().unwrap();
    rt.functions()
        .put(
            &name,
            &bytes,
            Some((&compiled.engine_key, &compiled.artifact)),
            FunctionSettings::default(),
        )
        .unwrap();
    for _ in 0..200 {
        rt.invoke(&name, e).await.unwrap();
    }
    let mut samples = Vec::with_capacity(WARM_SAMPLES);
    for _ in 0..WARM_SAMPLES {
        let t = Instant::now();
        std::hint::black_box(rt.invoke(&name, e).await.unwrap());
        samples.push(t.elapsed());
    }
    Stats::of(samples)
}

/// Invocations per second of `name` from `CONCURRENCY` tasks for the window.
async fn throughput(rt: &Arc<Runtime>, name: &Name) -> f64 {
    let deadline = Instant::now() + THROUGHPUT_WINDOW;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (rt, name, e) = (rt.clone(), name.clone(), event());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                rt.invoke(&name, &e).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / THROUGHPUT_WINDOW.as_secs_f64()
}

fn main() {
    let rt_tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt_tokio.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FunctionStore::open(dir.path()).unwrap());
    let config = RuntimeConfig::default();
    let rt = Arc::new(Runtime::new(config, store, Metrics::new().runtime).unwrap());
    let echo = deploy(&rt, "echo", "echo", FunctionSettings::default()).await;
    let e = event();
    let calib = calibration(2_000);

    // 1. Warm: loaded function, fresh instance + call + drop.
    for _ in 0..200 {
        rt.invoke(&echo, &e).await.unwrap();
    }
    let mut warm = Vec::with_capacity(WARM_SAMPLES);
    for _ in 0..WARM_SAMPLES {
        let t = Instant::now();
        std::hint::black_box(rt.invoke(&echo, &e).await.unwrap());
        warm.push(t.elapsed());
    }
    let warm = Stats::of(warm);

    // Optionally, another build of echo (`SLUICE_BENCH_COMPARE=path.wasm`,
    // e.g. one without WASI imports), measured the same way in the same
    // run, so a change to the guest shows up as a same-run ratio.
    let compare = match std::env::var_os("SLUICE_BENCH_COMPARE") {
        Some(path) => Some(warm_fresh(&rt, &std::path::PathBuf::from(path), &e).await),
        None => None,
    };

    // Reference: the same event through a native Rust echo (clone, rename).
    let mut native = Vec::with_capacity(WARM_SAMPLES);
    for _ in 0..WARM_SAMPLES {
        let t = Instant::now();
        let mut reply = std::hint::black_box(&e).clone();
        reply.ty = format!("{}.echoed", reply.ty);
        reply.validate().unwrap();
        std::hint::black_box(reply);
        native.push(t.elapsed());
    }
    let native = Stats::of(native);

    // 2. Cold: unloaded function, loaded from its precompiled artifact.
    let mut cold = Vec::with_capacity(COLD_SAMPLES);
    for _ in 0..COLD_SAMPLES {
        rt.unload(&echo);
        let t = Instant::now();
        std::hint::black_box(rt.invoke(&echo, &e).await.unwrap());
        cold.push(t.elapsed());
    }
    let cold = Stats::of(cold);

    // Reused instance (`reuse`), for comparison with a fresh one.
    let reused = deploy(
        &rt,
        "echo-reused",
        "echo",
        FunctionSettings {
            reuse: Some(u32::MAX),
            ..Default::default()
        },
    )
    .await;
    rt.invoke(&reused, &e).await.unwrap();
    let mut reuse = Vec::with_capacity(WARM_SAMPLES);
    for _ in 0..WARM_SAMPLES {
        let t = Instant::now();
        std::hint::black_box(rt.invoke(&reused, &e).await.unwrap());
        reuse.push(t.elapsed());
    }
    let reuse = Stats::of(reuse);

    let ratio = |s: &Stats| {
        format!(
            "{:.2}×",
            s.median.as_secs_f64() / calib.median.as_secs_f64()
        )
    };
    table(
        "Invocation latency (echo, runtime API, sequential)",
        &[
            "measurement",
            "samples",
            "median",
            "p99",
            "median / calibration",
        ],
        &[
            vec![
                "calibration: SHA-256 of 16 KiB (baseline)".into(),
                calib.n.to_string(),
                us(calib.median),
                us(calib.p99),
                "1.00×".into(),
            ],
            vec![
                "native Rust echo (reference)".into(),
                native.n.to_string(),
                us(native.median),
                us(native.p99),
                ratio(&native),
            ],
            vec![
                "warm: fresh instance + call + drop".into(),
                warm.n.to_string(),
                us(warm.median),
                us(warm.p99),
                ratio(&warm),
            ],
            compare
                .as_ref()
                .map(|c| {
                    vec![
                        "warm, `SLUICE_BENCH_COMPARE` build of echo".into(),
                        c.n.to_string(),
                        us(c.median),
                        us(c.p99),
                        ratio(c),
                    ]
                })
                .unwrap_or_default(),
            vec![
                "reused instance (`reuse`)".into(),
                reuse.n.to_string(),
                us(reuse.median),
                us(reuse.p99),
                ratio(&reuse),
            ],
            vec![
                "cold: load artifact + instantiate + call".into(),
                cold.n.to_string(),
                us(cold.median),
                us(cold.p99),
                ratio(&cold),
            ],
        ]
        .into_iter()
        .filter(|row| !row.is_empty())
        .collect::<Vec<_>>(),
    );
    println!(
        "\ncold / warm median: {:.1}×",
        cold.median.as_secs_f64() / warm.median.as_secs_f64()
    );

    if std::env::var_os("SLUICE_BENCH_LATENCY_ONLY").is_some() {
        return;
    }

    // 5. Isolation: echo throughput alone, then with a spinning and a
    // memory-hogging neighbour running into their limits all the time.
    let solo = throughput(&rt, &echo).await;
    let spin = deploy(
        &rt,
        "spin",
        "spin",
        FunctionSettings {
            timeout: Some(Duration::from_millis(100)),
            ..Default::default()
        },
    )
    .await;
    let hog = deploy(
        &rt,
        "hog",
        "hog",
        FunctionSettings {
            memory_mib: Some(64),
            ..Default::default()
        },
    )
    .await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut noisy = Vec::new();
    let counts = Arc::new([
        std::sync::atomic::AtomicU64::new(0),
        std::sync::atomic::AtomicU64::new(0),
    ]);
    for (i, f) in [spin, hog].into_iter().enumerate() {
        let (rt, stop, counts, e) = (rt.clone(), stop.clone(), counts.clone(), event());
        noisy.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert!(rt.invoke(&f, &e).await.is_err());
                counts[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    let noisy_tp = throughput(&rt, &echo).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in noisy {
        t.await.unwrap();
    }
    table(
        "Isolation cost (echo throughput, 4 concurrent callers, 2 cores)",
        &["measurement", "invocations/s", "ratio to solo"],
        &[
            vec![
                "echo alone (baseline)".into(),
                format!("{solo:.0}"),
                "1.00".into(),
            ],
            vec![
                format!(
                    "echo while `spin` times out ({} times) and `hog` hits its cap ({} times)",
                    counts[0].load(std::sync::atomic::Ordering::Relaxed),
                    counts[1].load(std::sync::atomic::Ordering::Relaxed)
                ),
                format!("{noisy_tp:.0}"),
                format!("{:.2}", noisy_tp / solo),
            ],
        ],
    );
}
