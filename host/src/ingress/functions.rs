//! `POST /functions/{name}`: run one function on the event and answer with
//! its reply.
//!
//! The reply uses the request's content mode, unless the `Accept` header
//! asks for structured mode (`application/cloudevents+json`). A batch runs
//! the function on each event in order and answers with the batch of
//! replies; the first failure fails the request.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::app::App;
use crate::cloudevents::{decode, encode, encode_batch, Mode};
use crate::registry::Name;

/// Invoke the function `name`.
pub async fn invoke(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name: Name = name.parse().map_err(|e: crate::registry::InvalidName| {
        ApiError::new(StatusCode::NOT_FOUND, e.to_string())
    })?;
    if app.runtime.functions().get(&name).is_none() {
        return Err(ApiError::not_found("function", &name));
    }
    let decoded = decode(&headers, body)?;
    let mut replies = Vec::new();
    for event in &decoded.events {
        if let Some(reply) = app.runtime.invoke_bounded(&name, event).await? {
            replies.push(reply);
        }
    }
    let mode = reply_mode(decoded.mode, &headers);
    let encoded = match (mode, replies.as_slice()) {
        (Mode::Batched, _) => encode_batch(&replies),
        (_, []) => return Ok(StatusCode::NO_CONTENT.into_response()),
        (mode, [reply]) => encode(reply, mode),
        (_, _) => encode_batch(&replies),
    };
    let mut response = Response::new(Body::from(encoded.body));
    *response.headers_mut() = encoded.headers;
    Ok(response)
}

/// The request's mode, unless `Accept` asks for structured mode.
fn reply_mode(request: Mode, headers: &HeaderMap) -> Mode {
    let wants_structured = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/cloudevents+json")
            })
        });
    if wants_structured && request == Mode::Binary {
        Mode::Structured
    } else {
        request
    }
}
