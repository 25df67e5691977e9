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

/// The one CloudEvents version Sluice speaks on the wire. Version 0.3 is
/// refused rather than upgraded: upgrading renames and re-encodes
/// attributes (`schemaurl`, `datacontentencoding`), which would break the
/// promise that what Sluice forwards is what it received (see
/// `docs/cloudevents.md`).
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
    /// An extension attribute's name breaks the naming rules (core spec
    /// "Attribute Naming Convention").
    #[error("extension attribute name `{0}` is invalid: names use only lower-case a-z and 0-9 and are not a context attribute's name")]
    ExtensionName(String),
}

/// The length the spec recommends extension names stay within (core spec
/// "Attribute Naming Convention": "SHOULD NOT exceed 20 characters").
/// Sluice accepts longer names: the rule is a SHOULD for producers, so such
/// an event is still valid, and refusing it would break interoperability
/// (see `docs/cloudevents.md`).
pub const RECOMMENDED_EXTENSION_NAME_LEN: usize = 20;

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
        validate_string("id", &self.id)?;
        validate_string("type", &self.ty)?;
        validate_uri_reference("source", &self.source)?;
        for (name, value) in [
            ("datacontenttype", &self.datacontenttype),
            ("dataschema", &self.dataschema),
            ("subject", &self.subject),
            ("time", &self.time),
        ] {
            if value.as_deref() == Some("") {
                return Err(invalid(name, "must not be empty when present"));
            }
        }
        if let Some(ct) = &self.datacontenttype {
            validate_media_type("datacontenttype", ct)?;
        }
        if let Some(schema) = &self.dataschema {
            validate_uri("dataschema", schema)?;
        }
        if let Some(subject) = &self.subject {
            validate_string("subject", subject)?;
        }
        if let Some(time) = &self.time {
            validate_timestamp("time", time)?;
        }
        for (name, value) in &self.extensions {
            validate_extension_name(name)?;
            if let ExtensionValue::String(s) = value {
                validate_string(name, s)?;
            }
        }
        Ok(())
    }

    /// Set the string-valued context attribute `name` (id, source, type,
    /// specversion, dataschema, subject, time) to `value`. Any other name
    /// (an extension, or `datacontenttype`, which each binding carries its
    /// own way) gets `value` back for the caller to place.
    pub fn set_context_attribute(&mut self, name: &str, value: String) -> Option<String> {
        let slot = match name {
            "id" => &mut self.id,
            "source" => &mut self.source,
            "type" => &mut self.ty,
            "specversion" => &mut self.specversion,
            "dataschema" => self.dataschema.insert(String::new()),
            "subject" => self.subject.insert(String::new()),
            "time" => self.time.insert(String::new()),
            _ => return Some(value),
        };
        *slot = value;
        None
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

/// Check an extension attribute's name (core spec "Attribute Naming
/// Convention": lower-case ASCII letters and digits only). Names longer than
/// [`RECOMMENDED_EXTENSION_NAME_LEN`] are accepted.
///
/// # Errors
/// When the name is empty, uses other characters than `[a-z0-9]`, or is
/// the name of a context attribute (or of `data`/`data_base64`).
pub fn validate_extension_name(name: &str) -> Result<(), InvalidEvent> {
    let ok = !name.is_empty()
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

fn invalid(name: &str, reason: impl Into<String>) -> InvalidEvent {
    InvalidEvent::Attribute {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// A `String` value (core spec "Type System"): no control characters
/// (U+0000–U+001F, U+007F–U+009F) and no Unicode noncharacters. Unpaired
/// surrogates cannot occur in a Rust string; decoders refuse them earlier.
pub(crate) fn validate_string(name: &str, value: &str) -> Result<(), InvalidEvent> {
    // Printable ASCII, what almost every attribute is, needs no decoding.
    if value.bytes().all(|b| matches!(b, 0x20..=0x7E)) {
        return Ok(());
    }
    match value
        .chars()
        .find(|&c| c.is_control() || is_noncharacter(c))
    {
        None => Ok(()),
        Some(c) => Err(invalid(
            name,
            format!(
                "contains U+{:04X}, which a CloudEvents String may not contain",
                u32::from(c)
            ),
        )),
    }
}

/// U+FDD0–U+FDEF and the last two code points of every plane.
fn is_noncharacter(c: char) -> bool {
    let c = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&c) || c & 0xFFFE == 0xFFFE
}

/// A `URI-reference` (core spec "Type System", RFC 3986 §4.1), checked by
/// the `iri-string` crate's strict RFC 3986 parser.
fn validate_uri_reference(name: &str, value: &str) -> Result<(), InvalidEvent> {
    iri_string::types::UriReferenceStr::new(value)
        .map(|_| ())
        .map_err(|_| invalid(name, format!("`{value}` is not a URI-reference (RFC 3986)")))
}

/// A `URI` (core spec "Type System"): an RFC 3986 URI with a scheme. A
/// fragment is allowed, as in the JSON Schema the spec publishes
/// (`"format": "uri"`), since schemas are often addressed by fragment.
fn validate_uri(name: &str, value: &str) -> Result<(), InvalidEvent> {
    iri_string::types::UriStr::new(value)
        .map(|_| ())
        .map_err(|_| invalid(name, format!("`{value}` is not an absolute URI (RFC 3986)")))
}

/// A `Timestamp` (core spec "Type System"): RFC 3339, kept as received.
fn validate_timestamp(name: &str, value: &str) -> Result<(), InvalidEvent> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|_| ())
        .map_err(|e| {
            invalid(
                name,
                format!("`{value}` is not an RFC 3339 timestamp ({e})"),
            )
        })
}

/// A media type (core spec `datacontenttype`: RFC 2046, with the syntax of
/// RFC 7231 §3.1.1.1): `type/subtype` tokens, then `; name=value`
/// parameters whose value is a token or a quoted-string.
fn validate_media_type(name: &str, value: &str) -> Result<(), InvalidEvent> {
    media_type_syntax(value).map_err(|why| {
        invalid(
            name,
            format!("`{value}` is not a media type such as `text/plain; charset=utf-8` ({why})"),
        )
    })
}

fn media_type_syntax(value: &str) -> Result<(), &'static str> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let token = |s: &str| !s.is_empty() && s.bytes().all(is_tchar);
    let ows = [' ', '\t'];
    let (essence, mut rest) = value.split_once(';').unwrap_or((value, ""));
    let (ty, sub) = essence
        .trim_matches(ows)
        .split_once('/')
        .ok_or("no `/` between type and subtype")?;
    if !token(ty) || !token(sub) {
        return Err("type and subtype must be tokens");
    }
    // Parameters: `; name=token` or `; name="quoted \"string\""`.
    loop {
        rest = rest.trim_start_matches(ows);
        if rest.is_empty() {
            return Ok(());
        }
        if let Some(r) = rest.strip_prefix(';') {
            rest = r; // an empty parameter, e.g. a trailing `;`
            continue;
        }
        let (key, after) = rest.split_once('=').ok_or("a parameter has no `=`")?;
        if !token(key.trim_end_matches(ows)) {
            return Err("a parameter name is not a token");
        }
        rest = if let Some(quoted) = after.strip_prefix('"') {
            let mut bytes = quoted.bytes().enumerate();
            let mut end = None;
            while let Some((i, b)) = bytes.next() {
                match b {
                    b'"' => {
                        end = Some(i);
                        break;
                    }
                    b'\\' => {
                        bytes
                            .next()
                            .ok_or("a quoted-string ends inside an escape")?;
                    }
                    b'\t' | b' '..=b'~' => {}
                    _ => return Err("a quoted-string holds a control or non-ASCII byte"),
                }
            }
            &quoted[end.ok_or("a quoted-string is not closed")? + 1..]
        } else {
            let len = after.find([';', ' ', '\t']).unwrap_or(after.len());
            if !token(&after[..len]) {
                return Err("a parameter value is neither a token nor a quoted-string");
            }
            &after[len..]
        };
        rest = rest.trim_start_matches(ows);
        match rest.strip_prefix(';') {
            Some(r) => rest = r,
            None if rest.is_empty() => return Ok(()),
            None => return Err("parameters are separated by `;`"),
        }
    }
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
        // core spec `specversion`; 0.3 refused (see SPEC_VERSION)
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
        // core spec "Attribute Naming Convention"
        assert!(validate_extension_name("traceparent").is_ok());
        assert!(validate_extension_name("partitionkey").is_ok());
        assert!(
            validate_extension_name("0start").is_ok(),
            "v1.0.2 allows a leading digit"
        );
        assert!(validate_extension_name("Upper").is_err());
        assert!(validate_extension_name("with-dash").is_err());
        assert!(validate_extension_name("").is_err());
        assert!(validate_extension_name("time").is_err());
        assert!(validate_extension_name("data_base64").is_err());
        // Past the recommended 20 characters: accepted (a SHOULD, not a MUST).
        let long = "a".repeat(RECOMMENDED_EXTENSION_NAME_LEN + 1);
        assert!(validate_extension_name(&long).is_ok());
    }

    #[test]
    fn source_is_an_rfc3986_uri_reference() {
        // core spec "Type System": URI-reference per RFC 3986 §4.1
        let mut e = ok();
        for bad in ["/a{b}", "/caf\u{e9}", "/%zz", "http://[::1"] {
            e.source = bad.into();
            assert!(e.validate().is_err(), "{bad}");
        }
        for good in [
            "mailto:cncf-wg-serverless@lists.cncf.io",
            "1-555-123-4567",
            "/a%20b",
            "#frag",
        ] {
            e.source = good.into();
            assert_eq!(e.validate(), Ok(()), "{good}");
        }
    }

    #[test]
    fn dataschema_is_a_uri_with_a_scheme() {
        // core spec `dataschema`: Type URI, non-empty
        let mut e = ok();
        e.dataschema = Some("https://example.com/s.json#/defs/a".into());
        assert_eq!(e.validate(), Ok(()));
        e.dataschema = Some(String::new());
        assert!(e.validate().is_err());
    }

    #[test]
    fn strings_refuse_control_characters_and_noncharacters() {
        // core spec "Type System": String
        for bad in [
            "a\nb",
            "a\u{0}",
            "a\u{85}",
            "a\u{FFFE}",
            "a\u{FDD0}",
            "a\u{10FFFF}",
        ] {
            let mut e = ok();
            e.subject = Some(bad.into());
            assert!(
                matches!(e.validate(), Err(InvalidEvent::Attribute { ref name, .. }) if name == "subject"),
                "{bad:?}"
            );
            let mut e = ok();
            e.extensions
                .insert("ext".into(), ExtensionValue::String(bad.into()));
            assert!(e.validate().is_err(), "{bad:?}");
        }
        let mut e = ok();
        e.id = "Euro € 😀 \u{A0}".into();
        assert_eq!(e.validate(), Ok(()));
    }

    #[test]
    fn optional_attributes_are_non_empty_when_present() {
        // core spec: subject, dataschema "If present, MUST be non-empty"
        let mut e = ok();
        e.subject = Some(String::new());
        assert!(e.validate().is_err());
    }

    #[test]
    fn datacontenttype_is_a_media_type() {
        // core spec `datacontenttype`: RFC 2046
        let mut e = ok();
        for good in [
            "application/json",
            "text/plain; charset=utf-8",
            "application/vnd.apache.thrift.binary",
            "multipart/mixed; boundary=\"a b;c \\\" d\"; x=y",
            "text/plain;",
            "application/cloudevents+json;charset=UTF-8",
        ] {
            e.datacontenttype = Some(good.into());
            assert_eq!(e.validate(), Ok(()), "{good}");
        }
        for bad in [
            "json",
            "text/",
            "text/plain; charset",
            "a b/c",
            "text/plain; x=a b",
        ] {
            e.datacontenttype = Some(bad.into());
            assert!(e.validate().is_err(), "{bad}");
        }
    }
}
