//! Python, JavaScript and Go handlers beside Rust (`cargo bench -p sluice
//! --bench polyglot`): the echo function in each language (functions/echo,
//! echo-py, echo-js, echo-go), through `Runtime::invoke`, in one process: cold start
//! from the precompiled artifact, a fresh instance per call, a reused
//! instance (`reuse`), the memory one live (spinning) instance adds, and the compile
//! time of an upload. Ratios are to the Rust echo of the same run. Every
//! loop is bounded in count.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{function, mib, rss_bytes, table, us, Stats};
use sluice::config::{FunctionSettings, RuntimeConfig};
use sluice::event::Event;
use sluice::metrics::Metrics;
use sluice::registry::{FunctionStore, Name};
use sluice::runtime::Runtime;

const FRESH_SAMPLES: usize = 500;
const REUSE_SAMPLES: usize = 2_000;
const COLD_SAMPLES: usize = 40;
/// Instances held live at once to measure memory per instance.
const LIVE: usize = 16;
/// How long they spin (their CPU deadline).
const SPIN_FOR: Duration = Duration::from_secs(2);

fn event() -> Event {
    let mut e = Event::new("bench-1", "/bench", "dev.sluice.bench");
    e.datacontenttype = Some("application/json".into());
    e.data = Some(bytes::Bytes::from_static(
        br#"{"base":"USD","quote":"EUR","rate":0.92,"amount":100}"#,
    ));
    e
}

/// Compile and register `file` as `name`; returns it and the compile time.
async fn deploy(
    rt: &Arc<Runtime>,
    name: &str,
    file: &str,
    settings: FunctionSettings,
) -> (Name, Duration) {
    let bytes = std::fs::read(function(file)).unwrap();
    let t = Instant::now();
    let compiled = rt.compile(bytes.clone().into()).await.unwrap();
    let took = t.elapsed();
    let name: Name = name.parse().unwrap();
    rt.functions()
        .put(
            &name,
            &bytes,
            Some((&compiled.engine_key, &compiled.artifact)),
            settings,
        )
        .unwrap();
    (name, took)
}

struct Row {
    lang: &'static str,
    size: u64,
    compile: Duration,
    cold: Stats,
    fresh: Stats,
    reuse: Stats,
    per_instance: u64,
}

async fn measure(rt: &Arc<Runtime>, lang: &'static str, file: &str) -> Row {
    let e = event();
    let size = std::fs::metadata(function(file)).unwrap().len();
    let (fresh_fn, compile) = deploy(rt, file, file, FunctionSettings::default()).await;
    let reuse = |n| FunctionSettings {
        reuse: Some(n),
        ..Default::default()
    };
    let (reused_fn, _) = deploy(rt, &format!("{file}-reused"), file, reuse(u32::MAX)).await;

    // Cold: unloaded, loaded from its precompiled artifact, instantiated.
    let mut cold = Vec::with_capacity(COLD_SAMPLES);
    for _ in 0..COLD_SAMPLES {
        rt.unload(&fresh_fn);
        let t = Instant::now();
        std::hint::black_box(rt.invoke(&fresh_fn, &e).await.unwrap());
        cold.push(t.elapsed());
    }
    // Fresh instance + call + drop, the function loaded.
    for _ in 0..20 {
        rt.invoke(&fresh_fn, &e).await.unwrap();
    }
    let mut fresh = Vec::with_capacity(FRESH_SAMPLES);
    for _ in 0..FRESH_SAMPLES {
        let t = Instant::now();
        std::hint::black_box(rt.invoke(&fresh_fn, &e).await.unwrap());
        fresh.push(t.elapsed());
    }
    // One reused instance.
    rt.invoke(&reused_fn, &e).await.unwrap();
    let mut reused = Vec::with_capacity(REUSE_SAMPLES);
    for _ in 0..REUSE_SAMPLES {
        let t = Instant::now();
        std::hint::black_box(rt.invoke(&reused_fn, &e).await.unwrap());
        reused.push(t.elapsed());
    }
    // Memory per live instance: LIVE instances of the language's spinning
    // function held at once (they yield at every epoch tick until their
    // deadline), RSS measured while they all run.
    let (spin_file, spin_type) = match lang {
        "Rust" => ("spin", "t"),
        "Python" => ("misbehave-py", "spin"),
        "Go" => ("misbehave-go", "spin"),
        _ => ("misbehave-js", "spin"),
    };
    let (spin_fn, _) = deploy(
        rt,
        &format!("{file}-spin"),
        spin_file,
        FunctionSettings {
            timeout: Some(SPIN_FOR),
            ..Default::default()
        },
    )
    .await;
    let mut spin_event = event();
    spin_event.ty = spin_type.into();
    // Load it first, so only instances are counted.
    rt.invoke(&spin_fn, &spin_event).await.unwrap_err();
    let before = rss_bytes(None);
    let mut calls = Vec::new();
    for _ in 0..LIVE {
        let (rt, f, e) = (rt.clone(), spin_fn.clone(), spin_event.clone());
        calls.push(tokio::spawn(async move { rt.invoke(&f, &e).await }));
    }
    tokio::time::sleep(SPIN_FOR / 2).await;
    let per_instance = rss_bytes(None).saturating_sub(before) / LIVE as u64;
    for c in calls {
        assert!(c.await.unwrap().is_err(), "spin ends at its deadline");
    }
    rt.unload(&spin_fn);
    rt.unload(&reused_fn);
    rt.unload(&fresh_fn);
    Row {
        lang,
        size,
        compile,
        cold: Stats::of(cold),
        fresh: Stats::of(fresh),
        reuse: Stats::of(reused),
        per_instance,
    }
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
    let config = RuntimeConfig {
        max_instances: 256,
        ..RuntimeConfig::default()
    };
    let rt = Arc::new(Runtime::new(config, store, Metrics::new().runtime).unwrap());
    let mut rows = Vec::new();
    for (lang, file) in [
        ("Rust", "echo"),
        ("Python", "echo-py"),
        ("JavaScript", "echo-js"),
        ("Go", "echo-go"),
    ] {
        rows.push(measure(&rt, lang, file).await);
    }
    let base = |f: fn(&Row) -> f64| f(&rows[0]);
    let x = |v: f64, b: f64| format!("{:.0}×", v / b);
    let out: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.lang.into(),
                mib(r.size),
                format!("{:.1?}", r.compile),
                format!(
                    "{} ({})",
                    us(r.cold.median),
                    x(
                        r.cold.median.as_secs_f64(),
                        base(|r| r.cold.median.as_secs_f64())
                    )
                ),
                format!(
                    "{} ({})",
                    us(r.fresh.median),
                    x(
                        r.fresh.median.as_secs_f64(),
                        base(|r| r.fresh.median.as_secs_f64())
                    )
                ),
                format!(
                    "{} ({})",
                    us(r.reuse.median),
                    x(
                        r.reuse.median.as_secs_f64(),
                        base(|r| r.reuse.median.as_secs_f64())
                    )
                ),
                format!(
                    "{} ({})",
                    mib(r.per_instance),
                    x(
                        r.per_instance as f64,
                        base(|r| r.per_instance.max(1) as f64)
                    )
                ),
            ]
        })
        .collect();
    table(
        "echo in four languages (runtime API; medians, ratio to Rust)",
        &[
            "language",
            "component",
            "compile",
            "cold start",
            "fresh instance + call",
            "reused instance",
            "memory per live instance",
        ],
        &out,
    );
    for r in &rows {
        println!(
            "{}: p99 cold {} fresh {} reuse {}",
            r.lang,
            us(r.cold.p99),
            us(r.fresh.p99),
            us(r.reuse.p99)
        );
    }
}
