//! `POST /`: accept events for routing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;

use super::ApiError;
use crate::app::App;
use crate::cloudevents::decode;

/// Decode the event(s) and start delivering each to its triggers. 202 once
/// all are under way; a bad batch is refused whole before any is routed.
pub async fn accept(State(app): State<Arc<App>>, request: Request) -> Result<StatusCode, ApiError> {
    // The whole request, not a `HeaderMap` extractor (which clones).
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let body = super::body::read(&headers, body, app.ingress.max_body_bytes).await?;
    let decoded = decode(&headers, body)?;
    if let Some(broker) = &app.kafka_broker {
        // Kafka is the durable log: 202 once it acknowledged every event.
        return match broker.publish(&decoded.events).await {
            Ok(()) => Ok(StatusCode::ACCEPTED),
            Err(e) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("kafka did not take the events: {e}"),
            )),
        };
    }
    if let Some(durable) = &app.durable {
        // 202 only once the whole request is fsync'd in the log.
        return match durable.accept(&app.dispatcher, decoded.events).await {
            Ok(()) => Ok(StatusCode::ACCEPTED),
            Err(e) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                e.to_string(),
            )),
        };
    }
    for event in decoded.events {
        tracing::debug!(event_id = %event.id, r#type = %event.ty, "accepted");
        app.dispatcher.dispatch(event).await;
    }
    Ok(StatusCode::ACCEPTED)
}
