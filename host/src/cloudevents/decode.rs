//! Decoding an HTTP request into events, in whatever mode it uses (§3).

use bytes::Bytes;
use http::{header, HeaderMap};

use super::json::JsonLimits;
use super::{binary, json, DecodeError, Mode};
use crate::event::Event;

/// The events one HTTP message carried, and the mode it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The mode the sender used; replies use it too unless asked otherwise.
    pub mode: Mode,
    /// One event for binary and structured mode; zero or more for batched.
    pub events: Vec<Event>,
}

/// Decode a message's headers and body into validated events, within the
/// ceiling [`JsonLimits`].
///
/// # Errors
/// A [`DecodeError`] whose [`status`](DecodeError::status) is the answer.
pub fn decode(headers: &HeaderMap, body: Bytes) -> Result<Decoded, DecodeError> {
    decode_with(headers, body, &JsonLimits::CEILING)
}

/// Check a structured or batched body against `limits` without decoding
/// it (the ingress does this before its handlers run).
///
/// # Errors
/// [`DecodeError::Limit`], or the content type's error.
pub fn check_limits(
    headers: &HeaderMap,
    body: &[u8],
    limits: &JsonLimits,
) -> Result<(), DecodeError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match Mode::detect(content_type)? {
        Mode::Binary => Ok(()),
        Mode::Structured => json::check_shape(body, 1, limits),
        Mode::Batched => json::check_shape(body, 2, limits),
    }
}

/// [`decode`] with other JSON limits.
///
/// # Errors
/// As [`decode`].
pub fn decode_with(
    headers: &HeaderMap,
    body: Bytes,
    limits: &JsonLimits,
) -> Result<Decoded, DecodeError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| DecodeError::Header {
            name: "content-type".into(),
            reason: "is not visible ASCII".into(),
        })?;
    let mode = Mode::detect(content_type)?;
    let events = match mode {
        Mode::Binary => vec![binary::decode(headers, body)?],
        Mode::Structured => vec![json::decode(&body, limits)?],
        Mode::Batched => json::decode_batch(&body, limits)?,
    };
    Ok(Decoded { mode, events })
}
