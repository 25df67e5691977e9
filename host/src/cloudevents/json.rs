//! The JSON event format (`json-format.md` v1.0.2), keeping data byte for
//! byte: JSON data is carried as its raw text, never parsed and re-printed.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::value::RawValue;

use super::DecodeError;
use crate::event::{Event, ExtensionValue, InvalidEvent};

/// The spec's integer range for extension values (core spec §3.1.1).
const INT_RANGE: std::ops::RangeInclusive<i64> = (i32::MIN as i64)..=(i32::MAX as i64);

/// Whether a media type says the data is JSON (JSON format §3.1): absent,
/// `application/json`, `text/json`, or any `+json` suffix.
pub(super) fn is_json_content_type(ct: Option<&str>) -> bool {
    let Some(ct) = ct else { return true };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

/// Shape limits of structured and batched bodies, checked by one linear
/// scan before anything is parsed, so no input can recurse deeply or make
/// an event with unbounded attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Deepest nesting of arrays and objects (a batch's array counts).
    pub max_depth: usize,
    /// Most members of one event object.
    pub max_members: usize,
}

impl JsonLimits {
    /// The ceilings every decode applies (the Kafka binding's too); the
    /// ingress may set tighter ones (`ingress.max_json_depth`,
    /// `ingress.max_attributes`). 128 is serde_json's own recursion limit.
    pub const CEILING: Self = Self {
        max_depth: 128,
        max_members: 1024,
    };
}

impl Default for JsonLimits {
    fn default() -> Self {
        Self::CEILING
    }
}

/// Check `body` against `limits`; event objects sit at `event_depth` (1
/// for a structured event, 2 inside a batch). Strings are skipped, escapes
/// included; malformed JSON is left for the parser to refuse.
pub(super) fn check_shape(
    body: &[u8],
    event_depth: usize,
    limits: &JsonLimits,
) -> Result<(), DecodeError> {
    let mut depth = 0usize;
    let mut members = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(DecodeError::Limit(format!(
                        "the JSON body nests deeper than {} levels (ingress.max_json_depth)",
                        limits.max_depth
                    )));
                }
                if depth == event_depth {
                    members = 0;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b':' if depth == event_depth => {
                members += 1;
                if members > limits.max_members {
                    return Err(DecodeError::Limit(format!(
                        "an event has more than {} members (ingress.max_attributes)",
                        limits.max_members
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Decode one JSON event format document (JSON format §3).
pub(super) fn decode(body: &[u8], limits: &JsonLimits) -> Result<Event, DecodeError> {
    check_shape(body, 1, limits)?;
    let members: Members<'_> = serde_json::from_slice(body)
        .map_err(|e| DecodeError::Json(format!("a structured event is one JSON object: {e}")))?;
    decode_members(members.0)
}

/// Decode a batch: a JSON array of event objects (HTTP binding §3.3,
/// JSON format §4). The whole batch fails on its first bad event, named by
/// its zero-based index. An empty array is a valid, empty batch.
pub(super) fn decode_batch(body: &[u8], limits: &JsonLimits) -> Result<Vec<Event>, DecodeError> {
    check_shape(body, 2, limits)?;
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        DecodeError::Json(format!("a batch is one JSON array of event objects: {e}"))
    })?;
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            serde_json::from_str::<Members<'_>>(item.get())
                .map_err(|e| DecodeError::Json(format!("an event is a JSON object: {e}")))
                .and_then(|members| decode_members(members.0))
                .map_err(|e| DecodeError::InBatch {
                    index,
                    source: Box::new(e),
                })
        })
        .collect()
}

/// The members of one JSON object in document order, each value as its raw
/// text. Unlike a map it lets a duplicated member name be refused, so no
/// two readers can disagree on which of two values counts.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members: Vec<(String, &'de RawValue)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, &'de RawValue>()? {
                    if members.iter().any(|(n, _)| *n == name) {
                        return Err(serde::de::Error::custom(format_args!(
                            "member `{name}` appears more than once"
                        )));
                    }
                    members.push((name, value));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visitor)
    }
}

fn decode_members(members: Vec<(String, &RawValue)>) -> Result<Event, DecodeError> {
    let mut event = Event::new("", "", "");
    event.specversion.clear();
    let mut data: Option<&RawValue> = None;
    let mut data_base64: Option<String> = None;
    for (name, raw) in members {
        if name == "data" {
            // `data: null` is an explicit JSON null payload, distinct from
            // no data (JSON format §3.1.1), so it is kept, not skipped.
            data = Some(raw);
            continue;
        }
        if raw.get() == "null" {
            continue; // null means unset (JSON format §2.2)
        }
        match name.as_str() {
            "id" => event.id = string(&name, raw)?,
            "source" => event.source = string(&name, raw)?,
            "type" => event.ty = string(&name, raw)?,
            "specversion" => event.specversion = string(&name, raw)?,
            "datacontenttype" => event.datacontenttype = Some(string(&name, raw)?),
            "dataschema" => event.dataschema = Some(string(&name, raw)?),
            "subject" => event.subject = Some(string(&name, raw)?),
            "time" => event.time = Some(string(&name, raw)?),
            "data_base64" => data_base64 = Some(string(&name, raw)?),
            _ => {
                crate::event::validate_extension_name(&name)?;
                let value = extension(&name, raw)?;
                event.extensions.insert(name, value);
            }
        }
    }
    event.data = match (data, data_base64) {
        (Some(_), Some(_)) => {
            return Err(DecodeError::Json(
                "`data` and `data_base64` are both present; they exclude each other (JSON format §3.1.1)".into(),
            ))
        }
        (None, Some(b64)) => Some(Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| invalid("data_base64", &format!("is not valid Base64 (RFC 4648): {e}")))?,
        )),
        (Some(raw), None) => {
            if event.datacontenttype.is_none() {
                // JSON format §3.1.2: unspecified means application/json,
                // and it is set explicitly for re-serialization.
                event.datacontenttype = Some("application/json".to_owned());
            }
            if is_json_content_type(event.datacontenttype.as_deref()) {
                // Kept as the JSON text it arrived as (a JSON string stays a
                // JSON string, quotes included: it is not parsed twice).
                Some(Bytes::copy_from_slice(raw.get().as_bytes()))
            } else if raw.get() == "null" {
                None // no string: read as no data
            } else {
                // Non-JSON data travels as a JSON string (§3.1.1).
                let s: String = serde_json::from_str(raw.get()).map_err(|_| {
                    invalid(
                        "data",
                        "must be a JSON string when datacontenttype is not JSON (JSON format §3.1.2)",
                    )
                })?;
                Some(Bytes::from(s))
            }
        }
        (None, None) => None,
    };
    event.validate()?;
    Ok(event)
}

fn string(name: &str, raw: &RawValue) -> Result<String, DecodeError> {
    serde_json::from_str(raw.get()).map_err(|_| invalid(name, "must be a JSON string"))
}

fn extension(name: &str, raw: &RawValue) -> Result<ExtensionValue, DecodeError> {
    let value: serde_json::Value = serde_json::from_str(raw.get())
        .map_err(|e| invalid(name, &format!("is not valid JSON: {e}")))?;
    let int_text = |t: &str| {
        let digits = t.strip_prefix('-').unwrap_or(t);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    };
    match value {
        serde_json::Value::String(s) => Ok(ExtensionValue::String(s)),
        // JSON format §2.2: only the integer component, optionally signed
        // (so `1.0` and `1e3` are not integers).
        serde_json::Value::Number(_) if !int_text(raw.get()) => Err(invalid(
            name,
            "must be an integer without fraction or exponent (JSON format §2.2)",
        )),
        serde_json::Value::Bool(b) => Ok(ExtensionValue::Boolean(b)),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) if INT_RANGE.contains(&i) => Ok(ExtensionValue::Integer(i)),
            _ => Err(invalid(
                name,
                "must be an integer between -2147483648 and 2147483647 (core spec §3.1.1)",
            )),
        },
        _ => Err(invalid(name, "must be a string, boolean or integer")),
    }
}

fn invalid(name: &str, reason: &str) -> DecodeError {
    DecodeError::Invalid(InvalidEvent::Attribute {
        name: name.to_owned(),
        reason: reason.to_owned(),
    })
}

/// The JSON members of one event, ready to serialize in order.
pub(super) fn members(event: &Event) -> Vec<(&str, Box<RawValue>)> {
    let raw = |s: &str| serde_json::value::to_raw_value(s).expect("strings serialize");
    let mut out: Vec<(&str, Box<RawValue>)> = vec![
        ("specversion", raw(&event.specversion)),
        ("id", raw(&event.id)),
        ("source", raw(&event.source)),
        ("type", raw(&event.ty)),
    ];
    for (name, value) in [
        ("datacontenttype", &event.datacontenttype),
        ("dataschema", &event.dataschema),
        ("subject", &event.subject),
        ("time", &event.time),
    ] {
        if let Some(v) = value {
            out.push((name, raw(v)));
        }
    }
    for (name, value) in &event.extensions {
        let v = match value {
            ExtensionValue::String(s) => raw(s),
            ExtensionValue::Boolean(b) => serde_json::value::to_raw_value(b).expect("bool"),
            ExtensionValue::Integer(i) => serde_json::value::to_raw_value(i).expect("int"),
        };
        out.push((name, v));
    }
    if let Some(data) = &event.data {
        out.push(data_member(event.datacontenttype.as_deref(), data));
    }
    out
}

/// Choose `data` or `data_base64` (JSON format §3.1.1): JSON data as JSON,
/// other text as a JSON string, anything else Base64-encoded.
///
/// Data whose content type says JSON goes in `data` only when its bytes are
/// exactly one JSON value (no whitespace around it, no invalid JSON): that
/// text is embedded verbatim, so decoding gives the same bytes back.
/// Anything else travels as `data_base64`, which keeps every byte.
fn data_member<'a>(ct: Option<&str>, data: &[u8]) -> (&'a str, Box<RawValue>) {
    if is_json_content_type(ct) {
        if let Ok(raw) = serde_json::from_slice::<&RawValue>(data) {
            if raw.get().len() == data.len() {
                return ("data", raw.to_owned());
            }
        }
    } else if let Ok(text) = std::str::from_utf8(data) {
        return ("data", serde_json::value::to_raw_value(text).expect("str"));
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    (
        "data_base64",
        serde_json::value::to_raw_value(&b64).expect("str"),
    )
}

/// Serialize one event as a JSON object.
pub(super) fn encode(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + event.data.as_ref().map_or(0, |d| d.len()));
    write_object(&mut out, event);
    out
}

/// Serialize events as a JSON array.
pub(super) fn encode_batch(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(b'[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_object(&mut out, e);
    }
    out.push(b']');
    out
}

fn write_object(out: &mut Vec<u8>, event: &Event) {
    out.push(b'{');
    for (i, (name, value)) in members(event).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, name).expect("writing to a Vec cannot fail");
        out.push(b':');
        out.extend_from_slice(value.get().as_bytes());
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &[u8]) -> Result<Event, DecodeError> {
        super::decode(body, &JsonLimits::CEILING)
    }

    fn decode_batch(body: &[u8]) -> Result<Vec<Event>, DecodeError> {
        super::decode_batch(body, &JsonLimits::CEILING)
    }

    #[test]
    fn nesting_and_member_limits_refuse_before_parsing() {
        let limits = JsonLimits {
            max_depth: 4,
            max_members: 6,
        };
        let head = r#""specversion":"1.0","id":"1","source":"/s","type":"t""#;
        // Depth 4 passes (the event, then three levels of data).
        let ok = format!(r#"{{{head},"data":[[["x"]]]}}"#);
        assert!(super::decode(ok.as_bytes(), &limits).is_ok());
        let deep = format!(r#"{{{head},"data":[[[["x"]]]]}}"#);
        let err = super::decode(deep.as_bytes(), &limits).unwrap_err();
        assert!(err.to_string().contains("deeper than 4"), "{err}");
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        // Brackets and colons inside strings do not count.
        let quoted = format!(r#"{{{head},"data":"[[[[[:::\"{{{{"}}"#);
        assert!(super::decode(quoted.as_bytes(), &limits).is_ok());
        // Members of the event count; members inside data do not.
        let wide = format!(r#"{{{head},"a":"1","b":"2","c":"3"}}"#);
        let err = super::decode(wide.as_bytes(), &limits).unwrap_err();
        assert!(err.to_string().contains("more than 6 members"), "{err}");
        let data = format!(r#"{{{head},"data":{{"a":1,"b":2,"c":3,"d":4}}}}"#);
        assert!(super::decode(data.as_bytes(), &limits).is_ok());
        // In a batch the events sit one level down, and each is counted alone.
        let batch = format!(r#"[{{{head},"a":"1"}},{{{head},"b":"1"}}]"#);
        assert!(super::decode_batch(batch.as_bytes(), &limits).is_ok());
        // A million open brackets is refused at once, never recursed into.
        let bomb = "[".repeat(1_000_000);
        assert!(matches!(
            super::decode_batch(bomb.as_bytes(), &JsonLimits::CEILING),
            Err(DecodeError::Limit(_))
        ));
    }

    #[test]
    fn json_data_is_kept_as_its_raw_text() {
        // JSON format §3.1.2: JSON data stays JSON, whitespace and all
        let e = decode(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a": [1, 2]}}"#,
        )
        .unwrap();
        assert_eq!(e.data.as_deref(), Some(&br#"{"a": [1, 2]}"#[..]));
        assert_eq!(e.datacontenttype.as_deref(), Some("application/json"));
    }

    #[test]
    fn a_json_string_is_not_parsed_twice() {
        let e = decode(br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":"{\"a\":1}"}"#)
            .unwrap();
        assert_eq!(e.data.as_deref(), Some(&br#""{\"a\":1}""#[..]));
    }

    #[test]
    fn text_data_and_base64() {
        let e = decode(br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi \u00e9"}"#).unwrap();
        assert_eq!(e.data.as_deref(), Some("hi é".as_bytes()));
        let e = decode(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AAEC"}"#,
        )
        .unwrap();
        assert_eq!(e.data.as_deref(), Some(&[0u8, 1, 2][..]));
        assert_eq!(e.datacontenttype, None);
    }

    #[test]
    fn data_and_data_base64_together_is_refused() {
        let err = decode(br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}"#).unwrap_err();
        assert!(err.to_string().contains("both present"), "{err}");
    }

    #[test]
    fn null_means_unset_and_extensions_keep_their_types() {
        let e = decode(br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":null,"n":7,"b":true,"s":"x"}"#).unwrap();
        assert_eq!(e.subject, None);
        assert_eq!(e.extensions["n"], ExtensionValue::Integer(7));
        assert_eq!(e.extensions["b"], ExtensionValue::Boolean(true));
        assert_eq!(e.extensions["s"], ExtensionValue::String("x".into()));
        let err = decode(br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","n":1.5}"#)
            .unwrap_err();
        assert!(err.to_string().contains("`n`"), "{err}");
    }

    #[test]
    fn attribute_types_are_checked() {
        let err = decode(br#"{"specversion":"1.0","id":1,"source":"/s","type":"t"}"#).unwrap_err();
        assert!(err.to_string().contains("`id`"), "{err}");
    }

    #[test]
    fn batch_names_the_first_bad_index() {
        let err = decode_batch(br#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"specversion":"1.0","id":"2","source":"/s"}]"#).unwrap_err();
        assert!(
            matches!(err, DecodeError::InBatch { index: 1, .. }),
            "{err}"
        );
        assert_eq!(decode_batch(b"[]").unwrap(), vec![]);
    }

    #[test]
    fn encode_round_trips() {
        let mut e = Event::new("1", "/s", "t");
        e.extensions.insert("n".into(), ExtensionValue::Integer(-3));
        e.datacontenttype = Some("application/cloudevents-test+json".into());
        e.data = Some(Bytes::from_static(br#"{"x": "y"}"#));
        assert_eq!(decode(&encode(&e)).unwrap(), e);
        e.datacontenttype = Some("image/png".into());
        e.data = Some(Bytes::from_static(&[0xff, 0x00]));
        let text = String::from_utf8(encode(&e)).unwrap();
        assert!(text.contains(r#""data_base64":"/wA=""#), "{text}");
        assert_eq!(decode(text.as_bytes()).unwrap(), e);
    }

    const HEAD: &str = r#""specversion":"1.0","id":"1","source":"/s","type":"t""#;

    fn doc(rest: &str) -> Vec<u8> {
        format!("{{{HEAD}{rest}}}").into_bytes()
    }

    #[test]
    fn duplicate_members_are_refused() {
        // RFC 8259 §4: names SHOULD be unique; two readers could disagree
        let err = decode(&doc(r#","id":"2""#)).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
    }

    #[test]
    fn data_null_is_an_explicit_json_null() {
        // JSON format §3.1.1: `data: null` differs from no `data`
        let e = decode(&doc(r#","data":null"#)).unwrap();
        assert_eq!(e.data.as_deref(), Some(&b"null"[..]));
        assert_eq!(decode(&encode(&e)).unwrap(), e);
        let e = decode(&doc(r#","datacontenttype":"text/plain","data":null"#)).unwrap();
        assert_eq!(e.data, None);
    }

    #[test]
    fn non_json_data_must_be_a_string() {
        // JSON format §3.1.2
        let err = decode(&doc(r#","datacontenttype":"text/plain","data":{"a":1}"#)).unwrap_err();
        assert!(err.to_string().contains("`data`"), "{err}");
    }

    #[test]
    fn extension_integers_have_no_fraction_or_exponent() {
        // JSON format §2.2, core spec Integer range
        for bad in ["1.0", "1e3", "2147483648", "-2147483649", "[1]", "{}"] {
            assert!(decode(&doc(&format!(r#","ext":{bad}"#))).is_err(), "{bad}");
        }
        let e = decode(&doc(r#","ext":-2147483648"#)).unwrap();
        assert_eq!(e.extensions["ext"], ExtensionValue::Integer(-2147483648));
    }

    #[test]
    fn structured_documents_must_be_objects_and_batches_arrays() {
        // JSON format §3, §4.1
        assert!(decode(b"[]").is_err());
        assert!(decode(b"").is_err());
        assert!(decode_batch(&doc("")).is_err());
        let err = decode_batch(format!("[{{{HEAD}}}, 7]").as_bytes()).unwrap_err();
        assert!(
            matches!(err, DecodeError::InBatch { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn required_attributes_are_named_when_missing() {
        // core spec REQUIRED attributes
        let err = decode(br#"{"specversion":"1.0","id":"1","type":"t"}"#).unwrap_err();
        assert!(err.to_string().contains("`source`"), "{err}");
        let err =
            decode(br#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#).unwrap_err();
        assert!(err.to_string().contains("0.3"), "{err}");
    }

    #[test]
    fn json_data_that_is_not_exactly_one_value_keeps_its_bytes_as_base64() {
        // JSON format §3.1.1: data is Binary when it is not a JSON value
        let mut e = Event::new("1", "/s", "t");
        e.datacontenttype = Some("application/json".into());
        for data in [&b" {\"a\":1}\n"[..], b"{not json", b"\xff"] {
            e.data = Some(Bytes::copy_from_slice(data));
            let text = String::from_utf8(encode(&e)).unwrap();
            assert!(text.contains("data_base64"), "{text}");
            assert_eq!(decode(text.as_bytes()).unwrap(), e);
        }
    }

    #[test]
    fn invalid_base64_and_lone_surrogates_are_refused() {
        // JSON format §2.2 Binary; core spec String (unpaired surrogates)
        assert!(decode(&doc(r#","data_base64":"!!""#)).is_err());
        assert!(decode(&doc(r#","subject":"\uDEAD""#)).is_err());
        let e = decode(&doc(r#","subject":"\uD83D\uDE00""#)).unwrap();
        assert_eq!(e.subject.as_deref(), Some("😀"));
    }
}
