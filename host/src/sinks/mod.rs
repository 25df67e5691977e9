//! Where events leave the host: HTTP endpoints (binary or structured mode),
//! Kafka topics (see [`crate::kafka`]) and the log.

mod http;

use std::time::Duration;

pub use self::http::{parse_retry_after, truncate, HttpSink, DEFAULT_TIMEOUT, MAX_ERROR_BODY};

use crate::event::Event;
use crate::kafka::KafkaSinkError;

/// A delivery over HTTP that failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The request could not be sent or no response came back.
    #[error("sending to {url}: {reason}")]
    Connect {
        /// The endpoint.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer within the attempt's deadline.
    #[error("{url} did not answer within {after:?}")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The deadline.
        after: Duration,
    },
    /// The endpoint answered with a status other than 2xx.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The endpoint.
        url: String,
        /// Its status code.
        status: u16,
        /// The start of its response body.
        body: String,
        /// Its `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// A 2xx answer whose body is not a valid CloudEvent.
    #[error("{url} answered {status} with an invalid CloudEvent: {reason}")]
    InvalidReply {
        /// The endpoint.
        url: String,
        /// Its status code.
        status: u16,
        /// What is wrong.
        reason: String,
        /// The start of its response body.
        body: String,
    },
    /// A 2xx answer longer than `runtime.max_reply_bytes`: not read past
    /// the limit, not retried (the same reply would come back).
    #[error(
        "{url} answered {status} with a reply larger than {limit} bytes (runtime.max_reply_bytes)"
    )]
    ReplyTooLarge {
        /// The endpoint.
        url: String,
        /// Its status code.
        status: u16,
        /// The limit it went past.
        limit: usize,
    },
    /// A Kafka sink did not take the event (retried: broker errors are
    /// usually transient).
    #[error(transparent)]
    Kafka(#[from] KafkaSinkError),
}

impl SinkError {
    /// Whether another attempt may succeed: connection errors, timeouts,
    /// 5xx, 404, 408, 409 and 429 (Knative's rule), and a 3xx (a redirect,
    /// which is not followed); not other 4xx, nor an invalid reply nor one
    /// too large.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } | Self::Kafka(_) => true,
            Self::Status { status, .. } => {
                *status >= 500
                    || (300..400).contains(status)
                    || matches!(status, 404 | 408 | 409 | 429)
            }
            Self::InvalidReply { .. } | Self::ReplyTooLarge { .. } => false,
        }
    }

    /// The status code, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. }
            | Self::InvalidReply { status, .. }
            | Self::ReplyTooLarge { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The (truncated) response body, or the error's description.
    pub fn body(&self) -> String {
        match self {
            Self::Status { body, .. } | Self::InvalidReply { body, .. } => body.clone(),
            other => other.to_string(),
        }
    }

    /// How long the endpoint asked to wait (only honoured on 429 and 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status {
                status: 429 | 503,
                retry_after,
                ..
            } => *retry_after,
            _ => None,
        }
    }
}

/// The `log` sink: one structured record per event (an event display).
pub fn log_event(event: &Event) {
    let data = event
        .data
        .as_ref()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default();
    let extensions: Vec<String> = event
        .extensions
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    tracing::info!(
        target: "sluice::display",
        id = %event.id,
        source = %event.source,
        r#type = %event.ty,
        subject = event.subject.as_deref().unwrap_or(""),
        extensions = %extensions.join(","),
        data = %data,
        "event"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification() {
        let status = |s: u16| SinkError::Status {
            url: "u".into(),
            status: s,
            body: String::new(),
            retry_after: Some(Duration::from_secs(1)),
        };
        for s in [500, 502, 503, 404, 408, 409, 429, 301, 302, 303, 307, 308] {
            assert!(status(s).retryable(), "{s}");
        }
        for s in [400, 401, 403, 410, 413, 422] {
            assert!(!status(s).retryable(), "{s}");
        }
        assert_eq!(status(429).retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(status(500).retry_after(), None);
    }
}
