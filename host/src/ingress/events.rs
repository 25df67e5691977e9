//! `POST /`: accept events for routing.

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::IngressState;
use crate::cloudevents::decode;
use crate::delivery::hops_of;
use crate::http::ApiError;

/// Decode the event(s) and start delivering each to its triggers. 202 once
/// all are under way; a bad batch (an invalid `sluicehops` included) is
/// refused whole before any is routed.
/// `body` was read and checked by [`super::admit`].
pub async fn accept(
    state: &IngressState,
    parts: Parts,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let decoded = decode(&parts.headers, body)?;
    // A hop counter that is not a count is refused, never guessed at.
    for event in &decoded.events {
        hops_of(event).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("event `{}`: {e}", event.id),
            )
        })?;
    }
    // 202 once the broker took every event: fsync'd in the durable log,
    // acknowledged by Kafka, or (in memory) its deliveries started.
    match state.broker.publish(decoded.events).await {
        Ok(()) => Ok(StatusCode::ACCEPTED),
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
        )),
    }
}
