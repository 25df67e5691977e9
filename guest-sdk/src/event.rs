//! The CloudEvent type handlers see, and a builder for replies.

use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Serialize};

use crate::bindings::sluice::handler::types as wit;
use crate::Error;

/// The value of an extension attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionValue {
    /// A string (also the canonical form of URI, timestamp and binary values).
    String(String),
    /// A boolean.
    Boolean(bool),
    /// An integer.
    Integer(i64),
}

impl From<&str> for ExtensionValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}
impl From<String> for ExtensionValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}
impl From<bool> for ExtensionValue {
    fn from(b: bool) -> Self {
        Self::Boolean(b)
    }
}
impl From<i64> for ExtensionValue {
    fn from(i: i64) -> Self {
        Self::Integer(i)
    }
}

impl std::fmt::Display for ExtensionValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Boolean(b) => write!(f, "{b}"),
            Self::Integer(i) => write!(f, "{i}"),
        }
    }
}

/// One CloudEvent (spec v1.0.2): context attributes and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    id: String,
    source: String,
    ty: String,
    specversion: String,
    datacontenttype: Option<String>,
    dataschema: Option<String>,
    subject: Option<String>,
    time: Option<String>,
    extensions: BTreeMap<String, ExtensionValue>,
    data: Option<Vec<u8>>,
}

impl Event {
    /// Start a new event; `id`, `source` and `ty` must be set before `build`.
    pub fn builder() -> EventBuilder {
        EventBuilder::default()
    }

    /// A builder that starts as a copy of this event, for deriving a reply
    /// while keeping the event.
    pub fn to_builder(&self) -> EventBuilder {
        EventBuilder {
            event: self.clone(),
        }
    }

    /// A builder that starts as this event, for deriving a reply from it
    /// without copying its attributes and data (the handler owns its event).
    pub fn into_builder(self) -> EventBuilder {
        EventBuilder { event: self }
    }

    /// The `id` attribute.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The `source` attribute.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The `type` attribute.
    pub fn ty(&self) -> &str {
        &self.ty
    }
    /// The `specversion` attribute.
    pub fn specversion(&self) -> &str {
        &self.specversion
    }
    /// The `datacontenttype` attribute.
    pub fn datacontenttype(&self) -> Option<&str> {
        self.datacontenttype.as_deref()
    }
    /// The `dataschema` attribute.
    pub fn dataschema(&self) -> Option<&str> {
        self.dataschema.as_deref()
    }
    /// The `subject` attribute.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
    /// The `time` attribute, an RFC 3339 timestamp.
    pub fn time(&self) -> Option<&str> {
        self.time.as_deref()
    }
    /// One extension attribute.
    pub fn extension(&self, name: &str) -> Option<&ExtensionValue> {
        self.extensions.get(name)
    }
    /// All extension attributes, by name.
    pub fn extensions(&self) -> &BTreeMap<String, ExtensionValue> {
        &self.extensions
    }
    /// The data, byte for byte.
    pub fn data(&self) -> Option<&[u8]> {
        self.data.as_deref()
    }

    /// Deserialize the data as JSON.
    ///
    /// # Errors
    /// When there is no data or it is not valid JSON for `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let data = self
            .data
            .as_deref()
            .ok_or_else(|| Error::new("event has no data"))?;
        Ok(serde_json::from_slice(data)?)
    }

    #[cfg_attr(feature = "source", allow(dead_code))]
    pub(crate) fn from_wit(e: wit::Event) -> Self {
        Self {
            id: e.id,
            source: e.source,
            ty: e.type_,
            specversion: e.specversion,
            datacontenttype: e.datacontenttype,
            dataschema: e.dataschema,
            subject: e.subject,
            time: e.time,
            extensions: e
                .extensions
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        wit::ExtensionValue::String(s) => ExtensionValue::String(s),
                        wit::ExtensionValue::Boolean(b) => ExtensionValue::Boolean(b),
                        wit::ExtensionValue::Integer(i) => ExtensionValue::Integer(i),
                    };
                    (k, v)
                })
                .collect(),
            data: e.data,
        }
    }

    pub(crate) fn into_wit(self) -> wit::Event {
        wit::Event {
            id: self.id,
            source: self.source,
            type_: self.ty,
            specversion: self.specversion,
            datacontenttype: self.datacontenttype,
            dataschema: self.dataschema,
            subject: self.subject,
            time: self.time,
            extensions: self
                .extensions
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        ExtensionValue::String(s) => wit::ExtensionValue::String(s),
                        ExtensionValue::Boolean(b) => wit::ExtensionValue::Boolean(b),
                        ExtensionValue::Integer(i) => wit::ExtensionValue::Integer(i),
                    };
                    (k, v)
                })
                .collect(),
            data: self.data,
        }
    }
}

/// Builds an [`Event`]; see [`Event::builder`] and [`Event::to_builder`].
#[derive(Debug, Clone)]
pub struct EventBuilder {
    event: Event,
}

impl Default for EventBuilder {
    fn default() -> Self {
        Self {
            event: Event {
                id: String::new(),
                source: String::new(),
                ty: String::new(),
                specversion: "1.0".to_owned(),
                datacontenttype: None,
                dataschema: None,
                subject: None,
                time: None,
                extensions: BTreeMap::new(),
                data: None,
            },
        }
    }
}

impl EventBuilder {
    /// Set `id`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.event.id = id.into();
        self
    }
    /// Set `source`.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.event.source = source.into();
        self
    }
    /// Set `type`.
    pub fn ty(mut self, ty: impl Into<String>) -> Self {
        self.event.ty = ty.into();
        self
    }
    /// Set `subject`.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.event.subject = Some(subject.into());
        self
    }
    /// Set `time` (an RFC 3339 timestamp; the host validates it).
    pub fn time(mut self, time: impl Into<String>) -> Self {
        self.event.time = Some(time.into());
        self
    }
    /// Set `dataschema` (an absolute URI; the host validates it).
    pub fn dataschema(mut self, dataschema: impl Into<String>) -> Self {
        self.event.dataschema = Some(dataschema.into());
        self
    }
    /// Set one extension attribute.
    pub fn extension(mut self, name: impl Into<String>, value: impl Into<ExtensionValue>) -> Self {
        self.event.extensions.insert(name.into(), value.into());
        self
    }
    /// Set raw data and its content type.
    pub fn data(mut self, content_type: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        self.event.datacontenttype = Some(content_type.into());
        self.event.data = Some(data.into());
        self
    }
    /// Remove the data and its content type.
    pub fn no_data(mut self) -> Self {
        self.event.datacontenttype = None;
        self.event.data = None;
        self
    }
    /// Serialize `value` as the JSON data (`application/json`).
    ///
    /// # Errors
    /// When `value` cannot be serialized.
    pub fn json<T: Serialize>(self, value: &T) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(value)?;
        Ok(self.data("application/json", bytes))
    }

    /// Finish an event a source function emits: only `type` is required;
    /// the host fills in an empty `id` (a fresh UUID) and `source` (the
    /// source's URI).
    ///
    /// # Errors
    /// When `type` is empty.
    pub fn finish(self) -> Result<Event, Error> {
        if self.event.ty.is_empty() {
            return Err(Error::new("event attribute `type` is required"));
        }
        Ok(self.event)
    }

    /// Finish the event.
    ///
    /// # Errors
    /// When `id`, `source` or `type` is empty.
    pub fn build(self) -> Result<Event, Error> {
        for (name, value) in [
            ("id", &self.event.id),
            ("source", &self.event.source),
            ("type", &self.event.ty),
        ] {
            if value.is_empty() {
                return Err(Error::new(format!("event attribute `{name}` is required")));
            }
        }
        Ok(self.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_requires_core_attributes() {
        let err = Event::builder().id("1").source("/s").build().unwrap_err();
        assert_eq!(err.message(), "event attribute `type` is required");
    }

    #[test]
    fn to_builder_keeps_everything_but_what_is_changed() {
        let e = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .extension("tenant", "acme")
            .json(&serde_json::json!({"a": 1}))
            .unwrap()
            .build()
            .unwrap();
        let r = e.to_builder().ty("t.echoed").build().unwrap();
        assert_eq!(r, e.clone().into_builder().ty("t.echoed").build().unwrap());
        assert_eq!(r.ty(), "t.echoed");
        assert_eq!(r.id(), "1");
        assert_eq!(r.extension("tenant"), Some(&ExtensionValue::from("acme")));
        assert_eq!(r.data(), e.data());
        assert_eq!(r.datacontenttype(), Some("application/json"));
    }

    #[test]
    fn json_round_trip_and_missing_data() {
        let e = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .json(&vec![1, 2, 3])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(e.json::<Vec<i32>>().unwrap(), vec![1, 2, 3]);
        let empty = e.to_builder().no_data().build().unwrap();
        assert_eq!(
            empty.json::<Vec<i32>>().unwrap_err().message(),
            "event has no data"
        );
    }
}
