//! Fuzz the `sluice.toml` parser and validator: no text may panic it. The
//! input is the file's text (not UTF-8 is skipped: the loader refuses it
//! when reading). A config that passes must also pass again (parsing is
//! deterministic) and draw as a routing graph without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::config::Config;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let path = std::path::Path::new("/fuzz/sluice.toml");
    let Ok(config) = Config::parse(text, path) else {
        return;
    };
    assert_eq!(Config::parse(text, path).ok().as_ref(), Some(&config));
    let table = sluice::routing::Table::from_config(&config);
    let _ = sluice::routing::graph::render_with_sources(
        &table,
        &config.sources,
        sluice::routing::graph::Format::Mermaid,
    );
});
