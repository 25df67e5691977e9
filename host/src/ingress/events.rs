//! `POST /`: accept events for routing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;

use super::IngressState;
use crate::cloudevents::decode;
use crate::http::ApiError;

/// Decode the event(s) and start delivering each to its triggers. 202 once
/// all are under way; a bad batch is refused whole before any is routed.
pub async fn accept(
    State(state): State<Arc<IngressState>>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    // The whole request, not a `HeaderMap` extractor (which clones).
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let body = crate::http::body::read(&headers, body, state.limits.max_body_bytes).await?;
    let decoded = decode(&headers, body)?;
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
