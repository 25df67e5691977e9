//! The JSON event format (`json-format.md` v1.0.2), keeping data byte for
//! byte: JSON data is carried as its raw text, never parsed and re-printed.

use std::collections::BTreeMap;

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

/// Decode one JSON event format document (JSON format §3).
pub(super) fn decode(body: &[u8]) -> Result<Event, DecodeError> {
    let members: BTreeMap<String, &RawValue> =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    decode_members(members)
}

/// Decode a batch: a JSON array of event objects (HTTP binding §3.3,
/// JSON format §4). The whole batch fails on its first bad event.
pub(super) fn decode_batch(body: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let items: Vec<BTreeMap<String, &RawValue>> = serde_json::from_slice(body)
        .map_err(|e| DecodeError::Json(format!("a batch is a JSON array of event objects: {e}")))?;
    items
        .into_iter()
        .enumerate()
        .map(|(index, members)| {
            decode_members(members).map_err(|e| DecodeError::InBatch {
                index,
                source: Box::new(e),
            })
        })
        .collect()
}

fn decode_members(members: BTreeMap<String, &RawValue>) -> Result<Event, DecodeError> {
    let mut event = Event::new("", "", "");
    event.specversion.clear();
    let mut data: Option<&RawValue> = None;
    let mut data_base64: Option<String> = None;
    for (name, raw) in members {
        if raw.get() == "null" {
            continue; // null means unset (JSON format §2.4)
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
            "data" => data = Some(raw),
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
                "`data` and `data_base64` are both present (JSON format §3.1)".into(),
            ))
        }
        (None, Some(b64)) => Some(Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| invalid("data_base64", &format!("is not valid Base64: {e}")))?,
        )),
        (Some(raw), None) => {
            if event.datacontenttype.is_none() {
                // JSON format §3.1.2: unspecified means application/json.
                event.datacontenttype = Some("application/json".to_owned());
            }
            if is_json_content_type(event.datacontenttype.as_deref()) {
                // Kept as the JSON text it arrived as (a JSON string stays a
                // JSON string, quotes included: it is not parsed twice).
                Some(Bytes::copy_from_slice(raw.get().as_bytes()))
            } else {
                // Non-JSON data travels as a JSON string (§3.1.1).
                let s: String = serde_json::from_str(raw.get()).map_err(|_| {
                    invalid(
                        "data",
                        "must be a JSON string when datacontenttype is not JSON",
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
    match value {
        serde_json::Value::String(s) => Ok(ExtensionValue::String(s)),
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
fn data_member<'a>(ct: Option<&str>, data: &[u8]) -> (&'a str, Box<RawValue>) {
    if is_json_content_type(ct) {
        if let Ok(raw) = serde_json::from_slice::<&RawValue>(data) {
            return ("data", raw.to_owned());
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
}
