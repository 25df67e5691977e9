//! Upload progress for `sluice deploy`: the component is streamed in
//! chunks, each counted as the HTTP client takes it, and the host's
//! compile time (it precompiles before it answers) is shown afterwards.
//! On a terminal one line is redrawn; otherwise a line at each quarter.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

/// Bytes per chunk handed to the HTTP client.
const CHUNK: usize = 256 * 1024;

/// Below this size the upload is quick enough to show no progress.
const QUIET_BELOW: usize = 2 * 1024 * 1024;

/// A request body that reports its progress on stderr.
pub fn body(bytes: Vec<u8>) -> reqwest::Body {
    let total = bytes.len();
    let bytes = Bytes::from(bytes);
    let show = total >= QUIET_BELOW;
    let tty = std::io::stderr().is_terminal();
    let sent = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let chunks: Vec<Bytes> = (0..total)
        .step_by(CHUNK)
        .map(|at| bytes.slice(at..(at + CHUNK).min(total)))
        .collect();
    let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        let before = sent.fetch_add(chunk.len(), Ordering::Relaxed);
        let after = before + chunk.len();
        if show {
            report(before, after, total, tty, started);
        }
        Ok::<_, std::io::Error>(chunk)
    }));
    reqwest::Body::wrap_stream(stream)
}

fn mib(n: usize) -> f64 {
    n as f64 / (1024.0 * 1024.0)
}

fn report(before: usize, after: usize, total: usize, tty: bool, started: Instant) {
    let pct = |n: usize| n * 100 / total.max(1);
    let mut err = std::io::stderr().lock();
    if tty {
        let _ = write!(
            err,
            "\ruploading {:.1}/{:.1} MiB ({:>3}%)",
            mib(after),
            mib(total),
            pct(after)
        );
        if after == total {
            let _ = writeln!(err);
        }
    } else if pct(before) / 25 != pct(after) / 25 || before == 0 {
        let _ = writeln!(
            err,
            "uploading {:.1}/{:.1} MiB ({}%)",
            mib(after),
            mib(total),
            pct(after)
        );
    }
    if after == total {
        let _ = writeln!(
            err,
            "uploaded {:.1} MiB in {:.1?}; the host compiles it before it answers \
             (Python and JavaScript components take 15-20 s)",
            mib(total),
            started.elapsed()
        );
    }
}
