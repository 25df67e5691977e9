//! How an [`Event`] is stored in the log: a small JSON record that keeps
//! every attribute and the data byte for byte (data as base64).

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::event::{Event, ExtensionValue};

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    id: String,
    source: String,
    ty: String,
    specversion: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    datacontenttype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dataschema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    ext: BTreeMap<String, Ext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
enum Ext {
    S(String),
    B(bool),
    I(i64),
}

/// A stored record that cannot be read back (a bug or a damaged file).
#[derive(Debug, thiserror::Error)]
#[error("unreadable log record: {0}")]
pub struct BadRecord(String);

/// The stored form of `event`.
pub fn encode(event: &Event) -> Vec<u8> {
    let r = Record {
        id: event.id.clone(),
        source: event.source.clone(),
        ty: event.ty.clone(),
        specversion: event.specversion.clone(),
        datacontenttype: event.datacontenttype.clone(),
        dataschema: event.dataschema.clone(),
        subject: event.subject.clone(),
        time: event.time.clone(),
        ext: event
            .extensions
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    ExtensionValue::String(s) => Ext::S(s.clone()),
                    ExtensionValue::Boolean(b) => Ext::B(*b),
                    ExtensionValue::Integer(i) => Ext::I(*i),
                };
                (k.clone(), v)
            })
            .collect(),
        data: event
            .data
            .as_ref()
            .map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
    };
    // Serialising plain strings, maps and enums to JSON cannot fail.
    serde_json::to_vec(&r).unwrap_or_default()
}

/// The event stored as `bytes`.
///
/// # Errors
/// When `bytes` is not a record written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Event, BadRecord> {
    let r: Record = serde_json::from_slice(bytes).map_err(|e| BadRecord(e.to_string()))?;
    let data = match r.data {
        Some(d) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(d)
                .map_err(|e| BadRecord(e.to_string()))?
                .into(),
        ),
        None => None,
    };
    Ok(Event {
        id: r.id,
        source: r.source,
        ty: r.ty,
        specversion: r.specversion,
        datacontenttype: r.datacontenttype,
        dataschema: r.dataschema,
        subject: r.subject,
        time: r.time,
        extensions: r
            .ext
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Ext::S(s) => ExtensionValue::String(s),
                    Ext::B(b) => ExtensionValue::Boolean(b),
                    Ext::I(i) => ExtensionValue::Integer(i),
                };
                (k, v)
            })
            .collect(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_attribute_and_binary_data() {
        let mut extensions = BTreeMap::new();
        extensions.insert("s".into(), ExtensionValue::String("x".into()));
        extensions.insert("b".into(), ExtensionValue::Boolean(true));
        extensions.insert("i".into(), ExtensionValue::Integer(-7));
        let e = Event {
            id: "1".into(),
            source: "/s".into(),
            ty: "t".into(),
            specversion: "1.0".into(),
            datacontenttype: Some("application/octet-stream".into()),
            dataschema: Some("https://x/s".into()),
            subject: Some("sub".into()),
            time: Some("2024-01-01T00:00:00+02:00".into()),
            extensions,
            data: Some(vec![0u8, 255, 10].into()),
        };
        assert_eq!(decode(&encode(&e)).unwrap(), e);
        assert!(decode(b"{").is_err());
    }
}
