//! The CloudEvents Kafka protocol binding (spec v1.0.2,
//! `kafka-protocol-binding.md`) over a plain record type, independent of
//! the Kafka client.
//!
//! - Binary mode (§3.2): attributes in `ce_<name>` headers (UTF-8, no
//!   escaping), `datacontenttype` in `content-type`, data in the value.
//! - Structured mode (§3.3): `content-type: application/cloudevents+json`
//!   and the JSON event format in the value.
//! - Key (§3.1): the `partitionkey` extension becomes the record key; a
//!   record's key becomes `partitionkey` when the event has none.
//! - Records that carry no CloudEvent are wrapped as [`RECORD_TYPE`] events
//!   with their topic, partition, offset and key as extensions.

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};

use crate::cloudevents::{decode, encode, DecodeError, Mode};
use crate::config::KafkaMode;
use crate::event::{Event, ExtensionValue, InvalidEvent};

/// `type` of an event wrapping a record that is not a CloudEvent.
pub const RECORD_TYPE: &str = "dev.sluice.kafka.record";
/// The extension that carries the record key.
pub const PARTITION_KEY: &str = "partitionkey";
const STRUCTURED_JSON: &str = "application/cloudevents+json";
const CONTENT_TYPE: &str = "content-type";
const PREFIX: &str = "ce_";

/// A record as read from or written to Kafka.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The key.
    pub key: Option<Vec<u8>>,
    /// Headers in order (Kafka allows repeats; the first wins here).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The value.
    pub value: Option<Vec<u8>>,
}

/// Where a consumed record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// A record that claims to be a CloudEvent but is not a valid one.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    /// A `ce_` header is not UTF-8.
    #[error("header `{0}` is not UTF-8")]
    NotUtf8(String),
    /// The attributes break a rule of the spec.
    #[error(transparent)]
    Invalid(#[from] InvalidEvent),
    /// The structured value cannot be decoded.
    #[error(transparent)]
    Structured(#[from] DecodeError),
}

impl Record {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// The event `record` carries, or a [`RECORD_TYPE`] event wrapping it when
/// it carries none.
///
/// # Errors
/// When the record is in binary or structured mode but not a valid event.
pub fn from_record(record: &Record, origin: &Origin<'_>) -> Result<Event, BindingError> {
    let content_type = record
        .header(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let structured = content_type.as_deref().is_some_and(|ct| {
        ct.to_ascii_lowercase()
            .starts_with("application/cloudevents")
    });
    let mut event = if structured {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            headers.insert(header::CONTENT_TYPE, ct);
        }
        let body = Bytes::from(record.value.clone().unwrap_or_default());
        let mut events = decode(&headers, body)?.events;
        if events.len() != 1 {
            return Err(InvalidEvent::Missing("id").into());
        }
        events.remove(0)
    } else if record.header("ce_specversion").is_some() {
        from_binary(record, content_type)?
    } else {
        return Ok(wrap(record, origin, content_type));
    };
    if let Some(key) = record.key.as_deref().and_then(key_string) {
        event
            .extensions
            .entry(PARTITION_KEY.to_owned())
            .or_insert_with(|| ExtensionValue::String(key.to_owned()));
    }
    Ok(event)
}

fn from_binary(record: &Record, content_type: Option<String>) -> Result<Event, BindingError> {
    let mut event = Event::new("", "", "");
    event.specversion = String::new();
    event.datacontenttype = content_type;
    for (name, value) in &record.headers {
        let lower = name.to_ascii_lowercase();
        let Some(attr) = lower.strip_prefix(PREFIX) else {
            continue;
        };
        let value = std::str::from_utf8(value)
            .map_err(|_| BindingError::NotUtf8(name.clone()))?
            .to_owned();
        if let Some(value) = event.set_context_attribute(attr, value) {
            event
                .extensions
                .entry(attr.to_owned())
                .or_insert(ExtensionValue::String(value));
        }
    }
    event.data = record.value.clone().map(Bytes::from);
    event.validate()?;
    Ok(event)
}

/// The key as a CloudEvents String: UTF-8 without control characters or
/// noncharacters (keys that are not are carried as `kafkakeybase64`; found
/// by fuzzing).
fn key_string(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key)
        .ok()
        .filter(|k| crate::event::validate_string(PARTITION_KEY, k).is_ok())
}

/// A [`RECORD_TYPE`] event around a record that is not a CloudEvent.
fn wrap(record: &Record, origin: &Origin<'_>, content_type: Option<String>) -> Event {
    let mut event = Event::new(
        format!("{}-{}-{}", origin.topic, origin.partition, origin.offset),
        format!(
            "/kafka/{}",
            percent_encoding::utf8_percent_encode(origin.topic, percent_encoding::NON_ALPHANUMERIC)
        ),
        RECORD_TYPE,
    );
    event.datacontenttype = content_type;
    let ext = &mut event.extensions;
    ext.insert(
        "kafkatopic".into(),
        ExtensionValue::String(origin.topic.to_owned()),
    );
    ext.insert(
        "kafkapartition".into(),
        ExtensionValue::Integer(i64::from(origin.partition)),
    );
    ext.insert("kafkaoffset".into(), ExtensionValue::Integer(origin.offset));
    if let Some(key) = &record.key {
        match key_string(key).ok_or(()) {
            Ok(k) => {
                ext.insert("kafkakey".into(), ExtensionValue::String(k.to_owned()));
                ext.insert(PARTITION_KEY.into(), ExtensionValue::String(k.to_owned()));
            }
            Err(_) => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(key);
                ext.insert("kafkakeybase64".into(), ExtensionValue::String(b64));
            }
        }
    }
    event.data = record.value.clone().map(Bytes::from);
    // A `content-type` that is not a media type would make the wrapper an
    // invalid event: keep the record, not the header (found by fuzzing).
    if matches!(&event.validate(), Err(InvalidEvent::Attribute { name, .. }) if name == "datacontenttype")
    {
        event.datacontenttype = None;
    }
    event
}

/// The record that carries `event` in `mode`.
pub fn to_record(event: &Event, mode: KafkaMode) -> Record {
    let key = event
        .extensions
        .get(PARTITION_KEY)
        .map(|k| k.to_string().into_bytes());
    match mode {
        KafkaMode::Structured => {
            let encoded = encode(event, Mode::Structured);
            Record {
                key,
                headers: vec![(CONTENT_TYPE.to_owned(), STRUCTURED_JSON.as_bytes().to_vec())],
                value: Some(encoded.body.to_vec()),
            }
        }
        KafkaMode::Binary => {
            let mut headers = Vec::new();
            for (name, value) in [
                ("specversion", Some(&event.specversion)),
                ("id", Some(&event.id)),
                ("source", Some(&event.source)),
                ("type", Some(&event.ty)),
                ("dataschema", event.dataschema.as_ref()),
                ("subject", event.subject.as_ref()),
                ("time", event.time.as_ref()),
            ] {
                if let Some(v) = value {
                    headers.push((format!("{PREFIX}{name}"), v.as_bytes().to_vec()));
                }
            }
            for (name, value) in &event.extensions {
                headers.push((format!("{PREFIX}{name}"), value.to_string().into_bytes()));
            }
            if let Some(ct) = &event.datacontenttype {
                headers.push((CONTENT_TYPE.to_owned(), ct.as_bytes().to_vec()));
            }
            Record {
                key,
                headers,
                value: event.data.as_ref().map(|d| d.to_vec()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_record_with_a_broken_content_type_is_wrapped_without_it() {
        let record = Record {
            key: None,
            headers: vec![("content-type".into(), b"applicati\x08\0".to_vec())],
            value: Some(b"{}".to_vec()),
        };
        let origin = Origin {
            topic: "t",
            partition: 0,
            offset: 1,
        };
        let e = from_record(&record, &origin).unwrap();
        assert_eq!(e.ty, RECORD_TYPE);
        assert_eq!(e.datacontenttype, None);
        assert_eq!(e.validate(), Ok(()));
        // A key with a control character is carried as Base64.
        let record = Record {
            key: Some(b"a\0b".to_vec()),
            ..record
        };
        let e = from_record(&record, &origin).unwrap();
        assert_eq!(e.validate(), Ok(()));
        assert!(e.extensions.contains_key("kafkakeybase64"));
        assert!(!e.extensions.contains_key(PARTITION_KEY));
    }

    use super::*;

    const ORIGIN: Origin<'static> = Origin {
        topic: "orders",
        partition: 3,
        offset: 42,
    };

    fn sample() -> Event {
        let mut e = Event::new("id-1", "/shop", "com.example.order");
        e.subject = Some("Euro € ✓".into());
        e.time = Some("2026-11-25T10:00:00+02:00".into());
        e.datacontenttype = Some("application/json".into());
        e.extensions
            .insert("tenant".into(), ExtensionValue::String("acme corp".into()));
        e.extensions.insert(
            PARTITION_KEY.into(),
            ExtensionValue::String("cust-7".into()),
        );
        e.data = Some(Bytes::from_static(br#"{"total": 1.50}"#));
        e
    }

    #[test]
    fn binary_mode_round_trips_and_maps_partitionkey_to_the_key() {
        let e = sample();
        let r = to_record(&e, KafkaMode::Binary);
        assert_eq!(r.key.as_deref(), Some(&b"cust-7"[..]));
        assert_eq!(r.header("ce_id"), Some(&b"id-1"[..]));
        assert_eq!(r.header("ce_subject"), Some("Euro € ✓".as_bytes()));
        assert_eq!(r.header("content-type"), Some(&b"application/json"[..]));
        assert_eq!(r.value.as_deref(), Some(&br#"{"total": 1.50}"#[..]));
        assert_eq!(from_record(&r, &ORIGIN).unwrap(), e);
    }

    #[test]
    fn structured_mode_round_trips() {
        let e = sample();
        let r = to_record(&e, KafkaMode::Structured);
        assert_eq!(r.header("content-type"), Some(STRUCTURED_JSON.as_bytes()));
        assert_eq!(r.key.as_deref(), Some(&b"cust-7"[..]));
        let back = from_record(&r, &ORIGIN).unwrap();
        assert_eq!(back.id, e.id);
        assert_eq!(back.subject, e.subject);
        assert_eq!(back.extensions, e.extensions);
        assert_eq!(back.data.as_deref(), Some(&br#"{"total": 1.50}"#[..]));
    }

    #[test]
    fn the_record_key_becomes_partitionkey_when_the_event_has_none() {
        let mut e = sample();
        e.extensions.remove(PARTITION_KEY);
        let mut r = to_record(&e, KafkaMode::Binary);
        assert_eq!(r.key, None);
        r.key = Some(b"k1".to_vec());
        let back = from_record(&r, &ORIGIN).unwrap();
        assert_eq!(
            back.extensions.get(PARTITION_KEY),
            Some(&ExtensionValue::String("k1".into()))
        );
    }

    #[test]
    fn other_records_are_wrapped_with_their_coordinates() {
        let r = Record {
            key: Some(b"user-1".to_vec()),
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
            value: Some(b"hello".to_vec()),
        };
        let e = from_record(&r, &ORIGIN).unwrap();
        assert_eq!(e.ty, RECORD_TYPE);
        assert_eq!(e.id, "orders-3-42");
        assert_eq!(e.source, "/kafka/orders");
        assert_eq!(e.datacontenttype.as_deref(), Some("text/plain"));
        assert_eq!(e.attribute("kafkapartition").as_deref(), Some("3"));
        assert_eq!(e.attribute("kafkaoffset").as_deref(), Some("42"));
        assert_eq!(e.attribute("kafkakey").as_deref(), Some("user-1"));
        assert_eq!(e.data.as_deref(), Some(&b"hello"[..]));
        e.validate().unwrap();

        let binary_key = Record {
            key: Some(vec![0xff, 0]),
            ..Record::default()
        };
        let e = from_record(&binary_key, &ORIGIN).unwrap();
        assert_eq!(e.attribute("kafkakeybase64").as_deref(), Some("/wA="));
        assert_eq!(e.data, None);
    }

    #[test]
    fn invalid_cloudevents_are_errors_not_wrapped() {
        let r = Record {
            headers: vec![("ce_specversion".into(), b"1.0".to_vec())],
            ..Record::default()
        };
        assert!(matches!(
            from_record(&r, &ORIGIN),
            Err(BindingError::Invalid(_))
        ));
        let r = Record {
            headers: vec![
                ("ce_specversion".into(), b"1.0".to_vec()),
                ("ce_id".into(), vec![0xff]),
            ],
            ..Record::default()
        };
        assert!(matches!(
            from_record(&r, &ORIGIN),
            Err(BindingError::NotUtf8(_))
        ));
        let r = Record {
            headers: vec![("content-type".into(), STRUCTURED_JSON.as_bytes().to_vec())],
            value: Some(b"{not json".to_vec()),
            ..Record::default()
        };
        assert!(matches!(
            from_record(&r, &ORIGIN),
            Err(BindingError::Structured(_))
        ));
    }
}
