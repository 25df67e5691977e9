//! A source function for tests. Config `mode`:
//! - `emit`: emit `count` (default 2) events of type `com.example.source.tick`
//!   whose data is their index and run number (kept in the state);
//! - `fetch`: GET `url` and emit its body (`com.example.source.fetched`), or,
//!   when the request fails, an event `com.example.source.fetch-failed`
//!   whose data is the error message;
//! - `trap-odd`: trap on odd runs (counted from the wall clock's seconds),
//!   emit `com.example.source.tick` on even ones;
//! - `spin-odd`: the same, but spin forever (until the CPU deadline) instead
//!   of trapping;
//! - `hog`: allocate (and touch) memory without bound, until the host's
//!   memory cap stops the run.

use sluice_guest::source::{http, Context, Output};
use sluice_guest::{source, Error, Event};

fn run(cx: Context) -> Result<Output, Error> {
    let runs: u64 = cx
        .state()
        .and_then(|s| std::str::from_utf8(s).ok()?.parse().ok())
        .unwrap_or(0);
    let tick = |i: u64| {
        Event::builder()
            .ty("com.example.source.tick")
            .extension("team", "guest")
            .json(&serde_json::json!({ "index": i, "run": runs }))?
            .finish()
    };
    let events = match cx.config("mode").unwrap_or("emit") {
        "emit" => {
            let count: u64 = cx.config("count").and_then(|c| c.parse().ok()).unwrap_or(2);
            (0..count).map(tick).collect::<Result<Vec<_>, _>>()?
        }
        "fetch" => {
            let url = cx.config("url").ok_or("config `url` is required")?;
            match http::get(url) {
                Ok(body) => vec![Event::builder()
                    .ty("com.example.source.fetched")
                    .data("text/plain", body)
                    .finish()?],
                Err(e) => vec![Event::builder()
                    .ty("com.example.source.fetch-failed")
                    .data("text/plain", e.message())
                    .finish()?],
            }
        }
        mode @ ("trap-odd" | "spin-odd") => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if secs % 2 == 1 {
                if mode == "spin-odd" {
                    let mut n: u64 = 0;
                    loop {
                        n = std::hint::black_box(n.wrapping_add(1));
                    }
                }
                panic!("odd second {secs}: trapping on purpose");
            }
            vec![tick(0)?]
        }
        "hog" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![0xA5; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        other => return Err(Error::new(format!("unknown mode `{other}`"))),
    };
    Ok(Output::events(events).with_state((runs + 1).to_string()))
}

source!(run);
