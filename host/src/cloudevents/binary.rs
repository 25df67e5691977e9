//! Binary content mode (HTTP binding §3.1): attributes in `ce-` headers.

use std::borrow::Cow;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, CONTROLS};

use super::DecodeError;
use crate::event::{Event, ExtensionValue, InvalidEvent};

/// Prefix of attribute headers (§3.1.3.1).
const PREFIX: &str = "ce-";

/// What §3.1.3.2 says must be percent-encoded: space, `"`, `%` and every
/// character outside U+0021–U+007E (non-ASCII is always encoded, as UTF-8).
const HEADER_VALUE: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// Decode a binary-mode message (§3.1).
pub(super) fn decode(headers: &HeaderMap, body: Bytes) -> Result<Event, DecodeError> {
    let mut event = Event::new("", "", "");
    event.specversion.clear();
    for (name, value) in headers {
        let Some(attr) = name.as_str().strip_prefix(PREFIX) else {
            continue;
        };
        if headers.get_all(name).iter().count() > 1 {
            return Err(header_error(name, "appears more than once"));
        }
        let value = decode_value(value.as_bytes()).map_err(|reason| header_error(name, reason))?;
        let Some(value) = event.set_context_attribute(attr, value) else {
            continue;
        };
        match attr {
            "datacontenttype" => {
                return Err(header_error(
                    name,
                    "binary mode carries datacontenttype in Content-Type (§3.1.1)",
                ))
            }
            ext => {
                crate::event::validate_extension_name(ext).map_err(DecodeError::from)?;
                event
                    .extensions
                    .insert(ext.to_owned(), ExtensionValue::String(value));
            }
        }
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct
            .to_str()
            .map_err(|_| header_error(&header::CONTENT_TYPE, "is not visible ASCII"))?;
        event.datacontenttype = Some(ct.to_owned());
    }
    if !body.is_empty() {
        event.data = Some(body);
    }
    event.validate().map_err(|e| match e {
        InvalidEvent::Missing("specversion") => DecodeError::Header {
            name: "ce-specversion".into(),
            reason: "is required in binary mode".into(),
        },
        other => other.into(),
    })?;
    Ok(event)
}

/// Encode an event as binary-mode headers and body (§3.1).
pub(super) fn encode(event: &Event) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    let mut put = |name: HeaderName, value: &str| {
        let value = HeaderValue::from_str(&encode_value(value))
            .expect("percent-encoded values are visible ASCII");
        headers.insert(name, value);
    };
    // The context attributes' header names are constants: no allocation,
    // no validation per event.
    put(CE_SPECVERSION, &event.specversion);
    put(CE_ID, &event.id);
    put(CE_SOURCE, &event.source);
    put(CE_TYPE, &event.ty);
    for (name, value) in [
        (CE_DATASCHEMA, &event.dataschema),
        (CE_SUBJECT, &event.subject),
        (CE_TIME, &event.time),
    ] {
        if let Some(v) = value {
            put(name, v);
        }
    }
    for (name, value) in &event.extensions {
        let name = HeaderName::try_from(format!("{PREFIX}{name}"))
            .expect("validated attribute names are valid header names");
        put(name, &value.to_string());
    }
    if let Some(ct) = &event.datacontenttype {
        // A content type is visible ASCII in practice; one that is not
        // cannot travel in Content-Type and is sent percent-encoded.
        let v = HeaderValue::from_str(ct)
            .unwrap_or_else(|_| HeaderValue::from_str(&encode_value(ct)).expect("encoded"));
        headers.insert(header::CONTENT_TYPE, v);
    }
    (headers, event.data.clone().unwrap_or_default())
}

const CE_SPECVERSION: HeaderName = HeaderName::from_static("ce-specversion");
const CE_ID: HeaderName = HeaderName::from_static("ce-id");
const CE_SOURCE: HeaderName = HeaderName::from_static("ce-source");
const CE_TYPE: HeaderName = HeaderName::from_static("ce-type");
const CE_DATASCHEMA: HeaderName = HeaderName::from_static("ce-dataschema");
const CE_SUBJECT: HeaderName = HeaderName::from_static("ce-subject");
const CE_TIME: HeaderName = HeaderName::from_static("ce-time");

/// Percent-encode a header value as §3.1.3.2 requires; borrowed when
/// nothing needs encoding (most values), so no copy is made.
pub(super) fn encode_value(value: &str) -> Cow<'_, str> {
    utf8_percent_encode(value, HEADER_VALUE).into()
}

/// Decode a header value: undo an RFC 7230 quoted-string, then exactly one
/// round of percent-decoding, then require UTF-8 (§3.1.3.2). Raw bytes
/// outside printable ASCII are refused: RFC 7230 §3 and §3.1.3.2 say
/// headers carry only printable ASCII, so anything else must arrive
/// percent-encoded (a raw byte's character set would be a guess).
pub(super) fn decode_value(raw: &[u8]) -> Result<String, &'static str> {
    if raw
        .iter()
        .any(|&b| !(b == b'\t' || (b' '..=b'~').contains(&b)))
    {
        return Err("contains a byte outside printable ASCII; §3.1.3.2 requires it percent-encoded as UTF-8");
    }
    let unquoted;
    let raw = if raw.len() >= 2 && raw[0] == b'"' && raw[raw.len() - 1] == b'"' {
        unquoted = unquote(&raw[1..raw.len() - 1])?;
        &unquoted[..]
    } else {
        raw
    };
    // `%` must itself be encoded, so a `%` not followed by two hex digits
    // is a malformed value rather than a literal.
    let mut i = 0;
    while let Some(p) = raw[i..].iter().position(|&b| b == b'%') {
        let at = i + p;
        let ok = raw.len() >= at + 3
            && raw[at + 1].is_ascii_hexdigit()
            && raw[at + 2].is_ascii_hexdigit();
        if !ok {
            return Err("has a `%` that does not start a percent-encoded octet");
        }
        i = at + 3;
    }
    let decoded: Vec<u8> = percent_decode(raw).collect();
    String::from_utf8(decoded).map_err(|_| "is not valid UTF-8 after percent-decoding")
}

/// Undo RFC 7230 §3.2.6 quoted-pair escapes inside a quoted-string.
fn unquote(inner: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => out.push(*bytes.next().ok_or("ends inside a quoted-pair escape")?),
            b'"' => return Err("has an unescaped `\"` inside a quoted-string"),
            _ => out.push(b),
        }
    }
    Ok(out)
}

fn header_error(name: &HeaderName, reason: &str) -> DecodeError {
    DecodeError::Header {
        name: name.as_str().to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::try_from(*k).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
        ]
    }

    #[test]
    fn percent_encodes_exactly_what_3_1_3_2_says() {
        assert_eq!(encode_value("Euro € 😀"), "Euro%20%E2%82%AC%20%F0%9F%98%80");
        assert_eq!(encode_value("a\"b%c"), "a%22b%25c");
        assert_eq!(encode_value("!~/:?#[]@$&'()*+,;="), "!~/:?#[]@$&'()*+,;=");
    }

    #[test]
    fn decodes_quoted_then_percent_once() {
        // §3.1.3.2: one round of decoding only
        assert_eq!(decode_value(b"Euro%20%E2%82%AC").unwrap(), "Euro €");
        assert_eq!(decode_value(b"%2541").unwrap(), "%41");
        assert_eq!(decode_value(b"\"a\\\"b%20c\"").unwrap(), "a\"b c");
        assert!(decode_value(b"%C3%28").is_err(), "invalid UTF-8");
        assert!(decode_value(b"50%").is_err(), "bare percent");
        assert!(
            decode_value(b"%C0%A0").is_err(),
            "overlong UTF-8 (§3.1.3.2 example)"
        );
        assert_eq!(
            decode_value(b"%e2%82%ac").unwrap(),
            "€",
            "lower-case hex accepted"
        );
        assert_eq!(
            decode_value(b"%41").unwrap(),
            "A",
            "unnecessary encoding accepted"
        );
        assert!(
            decode_value("caf\u{e9}".as_bytes()).is_err(),
            "raw non-ASCII"
        );
    }

    #[test]
    fn header_names_are_case_insensitive_and_content_type_maps() {
        // §3.1.3.1, §3.1.1 (HeaderName lower-cases on parse)
        let mut h = headers(&minimal());
        h.insert("CE-Tenant", HeaderValue::from_static("acme"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let e = decode(&h, Bytes::from_static(b"hi")).unwrap();
        assert_eq!(
            e.extensions["tenant"],
            ExtensionValue::String("acme".into())
        );
        assert_eq!(e.datacontenttype.as_deref(), Some("text/plain"));
        assert_eq!(e.data.as_deref(), Some(&b"hi"[..]));
    }

    #[test]
    fn missing_specversion_is_named() {
        let h = headers(&minimal()[1..]);
        let err = decode(&h, Bytes::new()).unwrap_err();
        assert!(err.to_string().contains("ce-specversion"), "{err}");
    }

    #[test]
    fn round_trip_keeps_everything() {
        let mut e = Event::new("1", "/s", "t");
        e.subject = Some("Euro € 😀 \"quoted\" 100%".into());
        e.time = Some("2026-11-25T10:00:00+02:00".into());
        e.extensions
            .insert("tenant".into(), ExtensionValue::String("a b".into()));
        e.datacontenttype = Some("application/octet-stream".into());
        e.data = Some(Bytes::from_static(&[0, 159, 146, 150]));
        let (h, body) = encode(&e);
        assert_eq!(decode(&h, body).unwrap(), e);
    }

    #[test]
    fn duplicate_and_forbidden_headers_are_refused() {
        // §3.1.3: one header per attribute; §3.1.1: no ce-datacontenttype
        let mut h = headers(&minimal());
        h.append("ce-tenant", HeaderValue::from_static("a"));
        h.append("ce-tenant", HeaderValue::from_static("b"));
        let err = decode(&h, Bytes::new()).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
        let mut h = headers(&minimal());
        h.insert("ce-datacontenttype", HeaderValue::from_static("text/plain"));
        assert!(decode(&h, Bytes::new()).is_err());
        let mut h = headers(&minimal());
        h.insert("ce-bad_name", HeaderValue::from_static("x"));
        assert!(decode(&h, Bytes::new()).is_err());
    }

    #[test]
    fn broken_quoted_strings_are_refused() {
        // RFC 7230 §3.2.6 as required by §3.1.3.2
        assert!(decode_value(b"\"a\"b\"").is_err());
        assert!(decode_value(b"\"a\\\"").is_err());
        assert_eq!(decode_value(b"\"\"").unwrap(), "");
    }

    #[test]
    fn empty_body_is_no_data_and_content_type_is_kept_verbatim() {
        // §3.1.1, §3.1.2
        let mut h = headers(&minimal());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=UTF-8"),
        );
        let e = decode(&h, Bytes::new()).unwrap();
        assert_eq!(e.data, None);
        assert_eq!(
            e.datacontenttype.as_deref(),
            Some("Application/JSON; charset=UTF-8")
        );
    }
}
