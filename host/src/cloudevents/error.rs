//! Why a request does not carry valid CloudEvents, and the status it earns.

use http::StatusCode;

use crate::event::InvalidEvent;

/// A request that cannot be decoded into CloudEvents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A structured or batched format other than JSON (§3.2.1, §3.3): 415.
    #[error("unsupported event format `{0}`: Sluice reads application/cloudevents+json and application/cloudevents-batch+json")]
    UnsupportedFormat(String),
    /// A header that cannot be decoded (§3.1.3.2): 400.
    #[error("header `{name}`: {reason}")]
    Header {
        /// The header's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A body that is not a valid JSON event format document (JSON §3): 400.
    #[error("invalid JSON event: {0}")]
    Json(String),
    /// A JSON body past a shape limit (nesting depth, members of one
    /// event): 400.
    #[error("{0}")]
    Limit(String),
    /// An event that breaks a spec rule: 400.
    #[error(transparent)]
    Invalid(#[from] InvalidEvent),
    /// One event in a batch is bad; the whole batch is refused (§3.3): 400.
    #[error("event {index} of the batch: {source}")]
    InBatch {
        /// Zero-based index of the first bad event.
        index: usize,
        /// Why it is bad.
        source: Box<DecodeError>,
    },
}

impl DecodeError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedFormat(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InBatch { source, .. } => source.status(),
            _ => StatusCode::BAD_REQUEST,
        }
    }
}
