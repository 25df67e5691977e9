//! Errors as HTTP responses: a status and a JSON body `{"error": reason}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::cloudevents::DecodeError;
use crate::name::Name;
use crate::runtime::InvokeError;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: String,
    retry_after: Option<u32>,
    /// For a refused batch: the index of the first bad event.
    index: Option<usize>,
    /// For a failed invocation: the id of the event it failed on.
    event_id: Option<String>,
}

impl ApiError {
    /// An error with this status and reason.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            retry_after: None,
            index: None,
            event_id: None,
        }
    }

    /// 404 for a named object that does not exist.
    pub fn not_found(what: &str, name: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("{what} `{name}` does not exist"),
        )
    }

    /// 400 with a reason.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    /// The same error, answered with `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 500 for a failure of the host itself.
    pub fn internal(reason: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, reason.to_string())
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        let index = match &e {
            DecodeError::InBatch { index, .. } => Some(*index),
            _ => None,
        };
        Self {
            index,
            ..Self::new(e.status(), e.to_string())
        }
    }
}

impl ApiError {
    /// The answer to a failed invocation of `function` on the event
    /// `event_id`, which the body names (`event_id`). A trap or a failed
    /// load is answered with a short reason and logged whole with the event
    /// id: its reason carries the guest's stderr, backtraces and the host's
    /// file paths, which are not the sender's business.
    pub fn invocation(e: InvokeError, function: &Name, event_id: &str) -> Self {
        let (status, hidden) = match &e {
            InvokeError::NotFound(_) => (StatusCode::NOT_FOUND, None),
            InvokeError::Busy => (StatusCode::TOO_MANY_REQUESTS, None),
            InvokeError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, None),
            InvokeError::Handler(_) => (StatusCode::UNPROCESSABLE_ENTITY, None),
            InvokeError::InvalidReply(_) => (StatusCode::BAD_GATEWAY, None),
            InvokeError::OutOfMemory { .. } | InvokeError::StackOverflow => {
                (StatusCode::INTERNAL_SERVER_ERROR, None)
            }
            InvokeError::Trap(_) => (StatusCode::INTERNAL_SERVER_ERROR, Some("trapped")),
            InvokeError::Load { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("could not be loaded"),
            ),
        };
        let reason = match hidden {
            Some(what) => {
                tracing::warn!(function = %function, event_id, "direct invocation failed: {e}");
                format!(
                    "function `{function}` {what} on event `{event_id}`; the host log has the details"
                )
            }
            None => e.to_string(),
        };
        Self {
            retry_after: matches!(e, InvokeError::Busy).then_some(1),
            event_id: Some(event_id.to_owned()),
            ..Self::new(status, reason)
        }
    }
}

impl From<crate::registry::RegistryError> for ApiError {
    fn from(e: crate::registry::RegistryError) -> Self {
        tracing::error!("storage failure: {e}");
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.reason });
        if let Some(index) = self.index {
            body["index"] = index.into();
        }
        if let Some(id) = self.event_id {
            body["event_id"] = id.into();
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
