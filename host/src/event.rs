//! The host's CloudEvent (spec v1.0.2 §2–3): validated context attributes
//! and data kept byte for byte.
//!
//! Sluice keeps its own event type rather than `cloudevents::Event`: the
//! SDK's type parses `time` into a UTC `DateTime` (so `+02:00` comes back out
//! as `Z`) and re-encodes JSON data, while Sluice promises that what it
//! receives and sends again keeps every attribute and the data byte for byte.
//! This type mirrors the WIT `event` record one to one.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

/// The one CloudEvents version Sluice speaks on the wire (see
/// `docs/cloudevents.md` for why 0.3 is refused).
pub const SPEC_VERSION: &str = "1.0";

/// An extension attribute's value (spec §3.1.1 type system, narrowed to the
/// types the JSON format can tell apart; others travel as strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionValue {
    /// A string (also the canonical form of URI, timestamp and binary values).
    String(String),
    /// A boolean.
    Boolean(bool),
    /// A signed integer.
    Integer(i64),
}

impl fmt::Display for ExtensionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Boolean(b) => write!(f, "{b}"),
            Self::Integer(i) => write!(f, "{i}"),
        }
    }
}

/// A CloudEvent whose attributes have passed [`Event::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `id`: unique per `source`.
    pub id: String,
    /// `source`: a URI-reference.
    pub source: String,
    /// `type`: e.g. `com.example.order.created`.
    pub ty: String,
    /// `specversion`: always [`SPEC_VERSION`] once validated.
    pub specversion: String,
    /// `datacontenttype`: media type of `data`.
    pub datacontenttype: Option<String>,
    /// `dataschema`: an absolute URI.
    pub dataschema: Option<String>,
    /// `subject`.
    pub subject: Option<String>,
    /// `time`: an RFC 3339 timestamp, kept exactly as received.
    pub time: Option<String>,
    /// Extension attributes by name.
    pub extensions: BTreeMap<String, ExtensionValue>,
    /// The data, byte for byte.
    pub data: Option<Bytes>,
}

/// Why an event is not a valid CloudEvent; the message names the attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    /// A required attribute is absent or empty (spec §3.1).
    #[error("required attribute `{0}` is missing or empty")]
    Missing(&'static str),
    /// `specversion` is not one Sluice accepts.
    #[error("unsupported specversion `{0}`: Sluice accepts \"1.0\"")]
    SpecVersion(String),
    /// An attribute value does not have the attribute's type.
    #[error("attribute `{name}` is invalid: {reason}")]
    Attribute {
        /// The attribute's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An extension attribute's name breaks the naming rules (spec §3.1.1).
    #[error("extension attribute name `{0}` is invalid: names use only lower-case a-z and 0-9, at most 20 characters")]
    ExtensionName(String),
}

/// Longest extension attribute name Sluice accepts (the spec's
/// recommendation, enforced: see `docs/cloudevents.md`).
pub const MAX_EXTENSION_NAME_LEN: usize = 20;

/// Attribute names defined by the spec that may not be used as extensions.
const CONTEXT_ATTRIBUTES: [&str; 10] = [
    "id",
    "source",
    "type",
    "specversion",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];

impl Event {
    /// A new event with the required attributes and nothing else.
    pub fn new(id: impl Into<String>, source: impl Into<String>, ty: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            source: source.into(),
            ty: ty.into(),
            specversion: SPEC_VERSION.to_owned(),
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            extensions: BTreeMap::new(),
            data: None,
        }
    }

    /// Check every attribute against spec §3.1 and §3.1.1.
    ///
    /// # Errors
    /// The first rule the event breaks, naming the attribute.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        for (name, value) in [
            ("id", &self.id),
            ("source", &self.source),
            ("specversion", &self.specversion),
            ("type", &self.ty),
        ] {
            if value.is_empty() {
                return Err(InvalidEvent::Missing(name));
            }
        }
        if self.specversion != SPEC_VERSION {
            return Err(InvalidEvent::SpecVersion(self.specversion.clone()));
        }
        validate_uri_reference("source", &self.source)?;
        if let Some(schema) = &self.dataschema {
            validate_absolute_uri("dataschema", schema)?;
        }
        if let Some(time) = &self.time {
            validate_timestamp("time", time)?;
        }
        for (name, value) in [
            ("datacontenttype", &self.datacontenttype),
            ("subject", &self.subject),
        ] {
            if value.as_deref() == Some("") {
                return Err(InvalidEvent::Attribute {
                    name: name.to_owned(),
                    reason: "must not be empty when present".to_owned(),
                });
            }
        }
        for name in self.extensions.keys() {
            validate_extension_name(name)?;
        }
        Ok(())
    }

    /// One attribute by name (context or extension) as a string, the way
    /// filters and binary-mode headers see it.
    pub fn attribute(&self, name: &str) -> Option<String> {
        match name {
            "id" => Some(self.id.clone()),
            "source" => Some(self.source.clone()),
            "type" => Some(self.ty.clone()),
            "specversion" => Some(self.specversion.clone()),
            "datacontenttype" => self.datacontenttype.clone(),
            "dataschema" => self.dataschema.clone(),
            "subject" => self.subject.clone(),
            "time" => self.time.clone(),
            other => self.extensions.get(other).map(ToString::to_string),
        }
    }
}

/// Check an extension attribute's name (spec §3.1.1 "Attribute Naming
/// Convention").
///
/// # Errors
/// When the name is empty, too long, uses other characters than `[a-z0-9]`,
/// or is the name of a context attribute.
pub fn validate_extension_name(name: &str) -> Result<(), InvalidEvent> {
    let ok = !name.is_empty()
        && name.len() <= MAX_EXTENSION_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && !CONTEXT_ATTRIBUTES.contains(&name);
    if ok {
        Ok(())
    } else {
        Err(InvalidEvent::ExtensionName(name.to_owned()))
    }
}

fn validate_uri_reference(name: &str, value: &str) -> Result<(), InvalidEvent> {
    // A URI-reference (RFC 3986 §4.1) is an absolute URI or a relative
    // reference; resolving against a dummy base accepts exactly those.
    static BASE: std::sync::OnceLock<url::Url> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(|| url::Url::parse("sluice:/").expect("static base URL parses"));
    let bad = value.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad
        || url::Url::options()
            .base_url(Some(base))
            .parse(value)
            .is_err()
    {
        return Err(InvalidEvent::Attribute {
            name: name.to_owned(),
            reason: format!("`{value}` is not a URI-reference"),
        });
    }
    Ok(())
}

fn validate_absolute_uri(name: &str, value: &str) -> Result<(), InvalidEvent> {
    let bad = value.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad || url::Url::parse(value).is_err() {
        return Err(InvalidEvent::Attribute {
            name: name.to_owned(),
            reason: format!("`{value}` is not an absolute URI"),
        });
    }
    Ok(())
}

fn validate_timestamp(name: &str, value: &str) -> Result<(), InvalidEvent> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|_| ())
        .map_err(|e| InvalidEvent::Attribute {
            name: name.to_owned(),
            reason: format!("`{value}` is not an RFC 3339 timestamp ({e})"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Event {
        Event::new("1", "/orders", "com.example.created")
    }

    #[test]
    fn required_attributes_must_be_non_empty() {
        // spec §3.1 REQUIRED attributes
        let mut e = ok();
        e.id.clear();
        assert_eq!(e.validate(), Err(InvalidEvent::Missing("id")));
        let mut e = ok();
        e.ty.clear();
        assert_eq!(e.validate(), Err(InvalidEvent::Missing("type")));
    }

    #[test]
    fn only_specversion_1_0() {
        let mut e = ok();
        e.specversion = "0.3".into();
        assert!(matches!(e.validate(), Err(InvalidEvent::SpecVersion(v)) if v == "0.3"));
    }

    #[test]
    fn source_is_a_uri_reference() {
        let mut e = ok();
        for good in ["/a/b", "urn:event:1", "https://example.com/x?y=1", "a"] {
            e.source = good.into();
            assert_eq!(e.validate(), Ok(()), "{good}");
        }
        e.source = "has space".into();
        assert!(
            matches!(e.validate(), Err(InvalidEvent::Attribute { name, .. }) if name == "source")
        );
    }

    #[test]
    fn dataschema_must_be_absolute() {
        let mut e = ok();
        e.dataschema = Some("/relative".into());
        assert!(e.validate().is_err());
        e.dataschema = Some("https://example.com/schema".into());
        assert_eq!(e.validate(), Ok(()));
    }

    #[test]
    fn time_is_rfc3339_and_kept_verbatim() {
        let mut e = ok();
        e.time = Some("2026-11-25T10:00:00+02:00".into());
        assert_eq!(e.validate(), Ok(()));
        assert_eq!(
            e.attribute("time").as_deref(),
            Some("2026-11-25T10:00:00+02:00")
        );
        e.time = Some("yesterday".into());
        assert!(e.validate().is_err());
    }

    #[test]
    fn extension_names() {
        assert!(validate_extension_name("traceparent").is_ok());
        assert!(validate_extension_name("partitionkey").is_ok());
        assert!(validate_extension_name("Upper").is_err());
        assert!(validate_extension_name("with-dash").is_err());
        assert!(validate_extension_name("abcdefghijklmnopqrstu").is_err());
        assert!(validate_extension_name("time").is_err());
    }
}
