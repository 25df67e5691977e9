//! Reading an event request's body within the ingress size limit.
//!
//! The CloudEvents core spec ("Size Limits") says intermediaries MUST
//! forward, and consumers SHOULD accept, events of 64 KiB or less; Sluice
//! accepts bodies up to `ingress.max_body_bytes` (default 1 MiB, never below
//! 64 KiB) and answers 413 with a JSON reason past it.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::ApiError;

/// The smallest body limit a configuration may set: the spec's 64 KiB.
pub const MIN_BODY_LIMIT: usize = 64 * 1024;

/// Read `body`, refusing it with 413 once it is longer than `limit` bytes.
/// A `Content-Length` over the limit is refused before any byte is read.
///
/// # Errors
/// 413 past the limit; 400 when the body cannot be read.
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large(limit)),
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than the {limit} byte limit (ingress.max_body_bytes)"),
    )
}
