//! Reading a request body within a size limit and a deadline.
//!
//! The CloudEvents core spec ("Size Limits") says intermediaries MUST
//! forward, and consumers SHOULD accept, events of 64 KiB or less; Sluice
//! accepts event bodies up to `ingress.max_body_bytes` (default 1 MiB, never
//! below 64 KiB) and answers 413 with a JSON reason past it: at once when
//! `Content-Length` says so, and otherwise as soon as the bytes read pass
//! the limit, so an oversized body is never buffered whole. A body that
//! does not arrive within the listener's `body_timeout` gets 408.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::ApiError;

/// Read `body`, refusing it with 413 once it is longer than `limit` bytes
/// (`key` names the setting in the reason) and with 408 when it takes
/// longer than `timeout`. A `Content-Length` over the limit is refused
/// before any byte is read.
///
/// # Errors
/// 413 past the limit; 408 past the deadline; 400 when the body cannot be
/// read.
pub async fn read_within(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
    key: &str,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit, key));
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {timeout:?} (connections.body_timeout)"
            ),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large(limit, key)),
        Ok(Err(e)) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

fn too_large(limit: usize, key: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than the {limit} byte limit ({key})"),
    )
}
