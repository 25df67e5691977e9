//! Encoding events into HTTP headers and a body (§3).

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};

use super::mode::{BATCHED_JSON, STRUCTURED_JSON};
use super::{binary, json, Mode};
use crate::event::Event;

/// Headers and body that carry one or more events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// `ce-` headers and `Content-Type` (binary), or just `Content-Type`.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// Encode one event in `mode`. [`Mode::Batched`] sends a batch of one.
pub fn encode(event: &Event, mode: Mode) -> Encoded {
    match mode {
        Mode::Binary => {
            let (headers, body) = binary::encode(event);
            Encoded { headers, body }
        }
        Mode::Structured => with_content_type(STRUCTURED_JSON, json::encode(event)),
        Mode::Batched => encode_batch(std::slice::from_ref(event)),
    }
}

/// Encode events as one batched-mode message (§3.3).
pub fn encode_batch(events: &[Event]) -> Encoded {
    with_content_type(BATCHED_JSON, json::encode_batch(events))
}

fn with_content_type(ct: &'static str, body: Vec<u8>) -> Encoded {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Encoded {
        headers,
        body: Bytes::from(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudevents::decode;
    use crate::event::ExtensionValue;

    #[test]
    fn every_mode_round_trips_through_decode() {
        let mut e = Event::new("id-1", "https://example.com/s", "com.example.t");
        e.subject = Some("Euro € 😀".into());
        e.time = Some("2026-11-25T10:00:00.123+02:00".into());
        e.extensions
            .insert("tenant".into(), ExtensionValue::String("acme corp".into()));
        e.datacontenttype = Some("application/json".into());
        e.data = Some(Bytes::from_static(br#"{"amount": 1.50}"#));
        for mode in [Mode::Binary, Mode::Structured, Mode::Batched] {
            let enc = encode(&e, mode);
            let dec = decode(&enc.headers, enc.body).unwrap();
            assert_eq!(dec.mode, mode);
            assert_eq!(dec.events, vec![e.clone()], "{mode:?}");
        }
    }
}
