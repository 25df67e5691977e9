//! Decoding an HTTP request into events, in whatever mode it uses (§3).

use bytes::Bytes;
use http::{header, HeaderMap};

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

/// Decode a message's headers and body into validated events.
///
/// # Errors
/// A [`DecodeError`] whose [`status`](DecodeError::status) is the answer.
pub fn decode(headers: &HeaderMap, body: Bytes) -> Result<Decoded, DecodeError> {
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
        Mode::Structured => vec![json::decode(&body)?],
        Mode::Batched => json::decode_batch(&body)?,
    };
    Ok(Decoded { mode, events })
}
