//! Shared helpers of the benchmarks: timing statistics, a CPU calibration
//! baseline, and the table printer.

#![allow(dead_code)] // each bench uses a subset

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where `cargo xtask functions` put the components.
pub fn function(name: &str) -> PathBuf {
    let dir = std::env::var_os("SLUICE_FUNCTIONS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/functions"));
    let p = dir.join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} missing: run `cargo xtask functions`",
        p.display()
    );
    p
}

/// Percentiles of a set of durations.
pub struct Stats {
    pub median: Duration,
    pub p99: Duration,
    pub n: usize,
}

impl Stats {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Self {
            median: at(0.5),
            p99: at(0.99),
            n: samples.len(),
        }
    }
}

/// A fixed CPU workload (SHA-256 of 16 KiB), timed like the benchmarks so
/// results can be read as ratios that survive a noisy or slower machine.
pub fn calibration(samples: usize) -> Stats {
    use sha2::Digest;
    let data = vec![0x5au8; 16 * 1024];
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        std::hint::black_box(sha2::Sha256::digest(std::hint::black_box(&data)));
        times.push(t.elapsed());
    }
    Stats::of(times)
}

/// Resident set size of this process or another, in bytes.
pub fn rss_bytes(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).expect("reading /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS present");
    kib * 1024
}

pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

pub fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// Print a Markdown table.
pub fn table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    println!("\n### {title}\n");
    println!("| {} |", header.join(" | "));
    println!(
        "|{}|",
        header.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for r in rows {
        println!("| {} |", r.join(" | "));
    }
}
