//! `POST /functions/{name}`: run one function on the event and answer with
//! its reply.
//!
//! The reply uses the request's content mode (HTTP binding §3: the sender
//! chooses), unless the `Accept` header asks for another:
//! `application/cloudevents+json` asks for structured mode and
//! `application/cloudevents-batch+json` for batched mode (§3 allows batched
//! mode only when solicited; this is the solicitation). A batch runs the
//! function on each event in order and answers with the batch of replies
//! (possibly empty); the first failure fails the request. A single event
//! whose function returns nothing gets 204.

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::IngressState;
use crate::cloudevents::{decode, encode, encode_batch, Mode};
use crate::event::Event;
use crate::http::ApiError;
use crate::name::Name;

/// The function's name from its path segment, percent-decoded, or the 404
/// that says why it cannot be one.
pub(super) fn decode_name(segment: &str) -> Result<Name, ApiError> {
    let not_a_name = |reason: String| ApiError::new(StatusCode::NOT_FOUND, reason);
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| not_a_name(format!("{segment:?} is not UTF-8 once percent-decoded")))?;
    decoded
        .parse()
        .map_err(|e: crate::name::InvalidName| not_a_name(e.to_string()))
}

/// Invoke the function `name` on the event(s) in `body`, which
/// [`super::admit`] read and checked.
pub async fn invoke(
    state: &IngressState,
    name: &Name,
    parts: Parts,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !state.runtime.functions().contains(name) {
        return Err(ApiError::not_found("function", name));
    }
    let headers = parts.headers;
    let decoded = decode(&headers, body)?;
    let mode = reply_mode(decoded.mode, &headers);
    let encoded = match (mode, decoded.events.as_slice()) {
        // One event, one reply or none: nothing to collect.
        (Mode::Binary | Mode::Structured, [event]) => match invoke_one(state, name, event).await? {
            Some(reply) => encode(&reply, mode),
            None => return Ok(StatusCode::NO_CONTENT.into_response()),
        },
        (_, events) => {
            let mut replies = Vec::with_capacity(events.len());
            for event in events {
                if let Some(reply) = invoke_one(state, name, event).await? {
                    replies.push(reply);
                }
            }
            encode_batch(&replies)
        }
    };
    let mut response = Response::new(Body::from(encoded.body));
    *response.headers_mut() = encoded.headers;
    Ok(response)
}

/// Run `name` on one event; a failure is answered as
/// [`ApiError::invocation`] (naming the event, without the guest's stderr).
async fn invoke_one(
    state: &IngressState,
    name: &Name,
    event: &Event,
) -> Result<Option<Event>, ApiError> {
    state
        .runtime
        .invoke_bounded(name, event)
        .await
        .map_err(|e| ApiError::invocation(e, name, &event.id))
}

/// The request's mode, unless `Accept` names a CloudEvents media type.
/// Batched wins over structured when both are named; a batched request
/// always gets a batched reply.
pub(super) fn reply_mode(request: Mode, headers: &HeaderMap) -> Mode {
    let accepts = |wanted: &str| {
        headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case(wanted))
            })
    };
    if request == Mode::Batched || accepts("application/cloudevents-batch+json") {
        Mode::Batched
    } else if accepts("application/cloudevents+json") {
        Mode::Structured
    } else {
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, v.parse().unwrap());
        h
    }

    #[test]
    fn reply_mode_follows_the_request_unless_accept_asks() {
        let none = HeaderMap::new();
        assert_eq!(reply_mode(Mode::Binary, &none), Mode::Binary);
        assert_eq!(reply_mode(Mode::Structured, &none), Mode::Structured);
        assert_eq!(reply_mode(Mode::Batched, &none), Mode::Batched);
        let s = accept("text/plain, Application/CloudEvents+JSON; q=0.9");
        assert_eq!(reply_mode(Mode::Binary, &s), Mode::Structured);
        assert_eq!(reply_mode(Mode::Batched, &s), Mode::Batched);
        let b = accept("application/cloudevents-batch+json");
        assert_eq!(reply_mode(Mode::Binary, &b), Mode::Batched);
        assert_eq!(reply_mode(Mode::Structured, &b), Mode::Batched);
    }
}
