//! Property tests: any valid event, encoded in each content mode and decoded
//! again, comes back unchanged, except for the two changes the spec itself
//! makes (see [`expected`]). The decoder never panics on arbitrary input.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::{decode, encode, encode_batch, Mode};
use crate::event::{Event, ExtensionValue};

/// A CloudEvents `String`: no control characters, no noncharacters
/// (`\PC` excludes both, and unassigned code points).
fn string(min: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("\\PC{{{min},16}}")).expect("regex")
}

fn source() -> impl Strategy<Value = String> {
    prop_oneof![
        "(/[a-z0-9._~-]{0,6}){1,3}",
        "https://example\\.com(/[a-zA-Z0-9]{1,5}){0,2}(\\?q=[0-9]{1,3})?",
        "urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}",
        "[a-z0-9-]{1,10}",
        "/a%20b%E2%82%AC",
    ]
}

fn time() -> impl Strategy<Value = String> {
    "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?([Zz]|[+-](0[0-9]|1[0-3]):[0-5][0-9])"
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/json".to_owned()),
        Just("application/json; charset=utf-8".to_owned()),
        Just("application/vnd.example+json".to_owned()),
        Just("text/plain; charset=utf-8".to_owned()),
        Just("application/octet-stream".to_owned()),
        Just("application/xml".to_owned()),
    ]
}

fn extension_value() -> impl Strategy<Value = ExtensionValue> {
    prop_oneof![
        string(0).prop_map(ExtensionValue::String),
        any::<bool>().prop_map(ExtensionValue::Boolean),
        any::<i32>().prop_map(|i| ExtensionValue::Integer(i64::from(i))),
    ]
}

fn extensions() -> impl Strategy<Value = BTreeMap<String, ExtensionValue>> {
    proptest::collection::btree_map(
        "[a-z0-9]{1,24}".prop_filter("not a context attribute", |n| {
            crate::event::validate_extension_name(n).is_ok()
        }),
        extension_value(),
        0..4,
    )
}

/// JSON text of a small value, compact or pretty (inner whitespace kept).
fn json_text() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        string(0).prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    (value, any::<bool>()).prop_map(|(v, pretty)| {
        if pretty {
            serde_json::to_vec_pretty(&v).expect("serializes")
        } else {
            serde_json::to_vec(&v).expect("serializes")
        }
    })
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..48),
        string(0).prop_map(String::into_bytes),
        json_text(),
    ]
}

prop_compose! {
    /// Any event that passes [`Event::validate`].
    fn event()(
        id in string(1),
        source in source(),
        ty in string(1),
        datacontenttype in proptest::option::of(content_type()),
        dataschema in proptest::option::of("https://example\\.com/schema/[a-z]{1,6}(#/[a-z]{1,4})?"),
        subject in proptest::option::of(string(1)),
        time in proptest::option::of(time()),
        extensions in extensions(),
        data in proptest::option::of(data()),
    ) -> Event {
        let mut e = Event::new(id, source, ty);
        e.datacontenttype = datacontenttype;
        e.dataschema = dataschema;
        e.subject = subject;
        e.time = time;
        e.extensions = extensions;
        e.data = data.map(Bytes::from);
        e
    }
}

/// What decoding `e` encoded in `mode` gives back:
/// - binary mode carries extension values as their canonical strings
///   (core spec "Type System"; headers have no types), and cannot tell
///   empty data from no data (HTTP binding §3.1.2: data is the body);
/// - the JSON format sets an absent `datacontenttype` of JSON `data` to
///   `application/json` explicitly (JSON format §3.1.2).
fn expected(e: &Event, mode: Mode) -> Event {
    let mut e = e.clone();
    match mode {
        Mode::Binary => {
            for v in e.extensions.values_mut() {
                *v = ExtensionValue::String(v.to_string());
            }
            if e.data.as_ref().is_some_and(|d| d.is_empty()) {
                e.data = None;
            }
        }
        Mode::Structured | Mode::Batched => {
            let exact_json = e.data.as_ref().is_some_and(|d| {
                serde_json::from_slice::<&serde_json::value::RawValue>(d)
                    .is_ok_and(|r| r.get().len() == d.len())
            });
            if e.datacontenttype.is_none() && exact_json {
                e.datacontenttype = Some("application/json".to_owned());
            }
        }
    }
    e
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_events_are_valid(e in event()) {
        prop_assert_eq!(e.validate(), Ok(()));
    }

    #[test]
    fn every_mode_round_trips(e in event()) {
        for mode in [Mode::Binary, Mode::Structured, Mode::Batched] {
            let enc = encode(&e, mode);
            let dec = decode(&enc.headers, enc.body).map_err(|err| {
                TestCaseError::fail(format!("{mode:?}: {err}"))
            })?;
            prop_assert_eq!(dec.mode, mode);
            prop_assert_eq!(dec.events, vec![expected(&e, mode)], "{:?}", mode);
        }
    }

    #[test]
    fn batches_round_trip(events in proptest::collection::vec(event(), 0..5)) {
        let enc = encode_batch(&events);
        let dec = decode(&enc.headers, enc.body).map_err(|err| TestCaseError::fail(err.to_string()))?;
        let want: Vec<Event> = events.iter().map(|e| expected(e, Mode::Batched)).collect();
        prop_assert_eq!(dec.events, want);
    }

    #[test]
    fn structured_output_is_read_by_the_rust_sdk(e in event()) {
        // An independent decoder: cloudevents-sdk's serde implementation of
        // the JSON format sees the same attributes.
        let enc = encode(&e, Mode::Structured);
        let theirs: cloudevents::Event = serde_json::from_slice(&enc.body)
            .map_err(|err| TestCaseError::fail(format!("{err}: {}", String::from_utf8_lossy(&enc.body))))?;
        use cloudevents::AttributesReader as _;
        prop_assert_eq!(theirs.id(), e.id.as_str());
        prop_assert_eq!(theirs.ty(), e.ty.as_str());
        prop_assert_eq!(theirs.subject(), e.subject.as_deref());
        for (name, value) in &e.extensions {
            let got = theirs.extension(name).map(ToString::to_string);
            prop_assert_eq!(got, Some(value.to_string()), "{}", name);
        }
    }

    #[test]
    fn binary_headers_are_printable_ascii(e in event()) {
        // HTTP binding §3.1.3.2: every value percent-encoded to U+0021–U+007E
        let enc = encode(&e, Mode::Binary);
        for (name, value) in &enc.headers {
            if name.as_str().starts_with("ce-") {
                prop_assert!(value.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b)), "{:?}", value);
            }
        }
    }

    #[test]
    fn decode_never_panics(
        headers in proptest::collection::vec(("(ce-[a-z]{0,6}|content-type)", proptest::collection::vec(0x20u8..0x7f, 0..24)), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..96),
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_bytes(&value)) {
                map.append(n, v);
            }
        }
        let _ = decode(&map, Bytes::from(body));
    }
}
