//! Fuzz the structured and batched JSON decoder with tight shape limits: no
//! input may panic it or recurse past the depth limit, a body it accepts
//! passes the shape check it was decoded under, and every accepted event
//! encodes to the JSON format and decodes again to an equal event.
//!
//! Input: the first byte picks the mode (even: structured, odd: batched);
//! the rest is the body. Compiles the decoder's source files directly, as
//! `decode.rs` does.

#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../host/src/event.rs"]
mod event;

#[allow(dead_code, unused_imports)]
#[path = "../../host/src/cloudevents/mod.rs"]
mod cloudevents;

use bytes::Bytes;
use cloudevents::{JsonLimits, Mode};
use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const TIGHT: JsonLimits = JsonLimits {
    max_depth: 6,
    max_members: 12,
};

fuzz_target!(|input: &[u8]| {
    let Some((&pick, body)) = input.split_first() else {
        return;
    };
    let ct = if pick % 2 == 0 {
        "application/cloudevents+json"
    } else {
        "application/cloudevents-batch+json"
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    let checked = cloudevents::check_limits(&headers, body, &TIGHT);
    let decoded = cloudevents::decode_with(&headers, Bytes::copy_from_slice(body), &TIGHT);
    if let Ok(decoded) = decoded {
        assert!(checked.is_ok(), "decoded a body the shape check refuses");
        for event in &decoded.events {
            let enc = cloudevents::encode(event, Mode::Structured);
            let again = cloudevents::decode(&enc.headers, enc.body)
                .unwrap_or_else(|e| panic!("re-decode failed: {e}\n{event:?}"));
            let mut want = event.clone();
            if want.datacontenttype.is_none() && want.data.is_some() {
                want.datacontenttype = again.events[0].datacontenttype.clone();
            }
            assert_eq!(again.events, vec![want]);
        }
    }
});
