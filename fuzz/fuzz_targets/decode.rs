//! Fuzz the CloudEvents HTTP decoder: no input may panic it, and whatever
//! it accepts must encode in every mode and decode again to an equal event,
//! up to the two changes the spec makes (see `expected`).
//!
//! Input format: header lines `name: value` up to the first empty line,
//! then the body. The decoder's source files are compiled in directly (the
//! same files the `sluice` crate uses), so the fuzz build does not
//! instrument the whole wasm runtime.

#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../host/src/event.rs"]
mod event;

#[allow(dead_code, unused_imports)]
#[path = "../../host/src/cloudevents/mod.rs"]
mod cloudevents;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use cloudevents::Mode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (head, body) = match input.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&input[..at], &input[at + 2..]),
        None => (&input[..0], input),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }
    let Ok(decoded) = cloudevents::decode(&headers, Bytes::copy_from_slice(body)) else {
        return;
    };
    for event in &decoded.events {
        assert_eq!(event.validate(), Ok(()));
        for mode in [Mode::Binary, Mode::Structured, Mode::Batched] {
            let enc = cloudevents::encode(event, mode);
            let again = cloudevents::decode(&enc.headers, enc.body)
                .unwrap_or_else(|e| panic!("{mode:?} re-decode failed: {e}\n{event:?}"));
            assert_eq!(again.events, vec![expected(event, mode)], "{mode:?}");
        }
    }
});

/// Binary mode carries extension values as strings and cannot tell empty
/// data from none (HTTP binding §3.1); the JSON format makes an absent
/// `datacontenttype` of JSON data explicit (JSON format §3.1.2).
fn expected(e: &event::Event, mode: Mode) -> event::Event {
    let mut e = e.clone();
    if mode == Mode::Binary {
        for v in e.extensions.values_mut() {
            *v = event::ExtensionValue::String(v.to_string());
        }
        if e.data.as_ref().is_some_and(|d| d.is_empty()) {
            e.data = None;
        }
    } else if e.datacontenttype.is_none() {
        let exact_json = e.data.as_ref().is_some_and(|d| {
            serde_json::from_slice::<&serde_json::value::RawValue>(d)
                .is_ok_and(|r| r.get().len() == d.len())
        });
        if exact_json {
            e.datacontenttype = Some("application/json".to_owned());
        }
    }
    e
}
