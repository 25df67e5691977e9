//! Why one delivery attempt failed, whether to retry, and how the failure
//! is recorded on a dead-lettered event.

use std::time::Duration;

use crate::event::{Event, ExtensionValue};
use crate::kafka::KafkaSinkError;
use crate::runtime::{ErrorKind, InvokeError};
use crate::sinks::{truncate, SinkError};

/// Extension naming the destination that failed (on dead-lettered events).
pub const ERROR_DEST: &str = "sluiceerrordest";
/// Extension with the last HTTP status code (when there was an answer).
pub const ERROR_CODE: &str = "sluiceerrorcode";
/// Extension with the truncated response body or error message.
pub const ERROR_DATA: &str = "sluiceerrordata";

/// A delivery that failed for good: its retries were spent (or its failure
/// was not retryable), and the event went to the dead letter or, without
/// one (or when that failed too), was dropped. The engine has logged and
/// counted it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("delivery to {destination} failed ({kind}): {reason}")]
pub struct Undelivered {
    /// Where it was going, e.g. `function:echo`.
    pub destination: String,
    /// The last failure's kind, as in `sluiceerrordest`'s logs: `status`,
    /// `connect`, `timeout`, `function`, `hop_limit`, ...
    pub kind: &'static str,
    /// The last failure.
    pub reason: String,
    /// Whether the dead letter took the event.
    pub dead_lettered: bool,
}

/// A failed attempt.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A function failed.
    #[error("{0}")]
    Function(#[from] InvokeError),
    /// A function ran past the delivery's per-attempt timeout.
    #[error("timed out after {0:?} (delivery timeout)")]
    FunctionTimeout(Duration),
    /// An HTTP subscriber or sink failed.
    #[error("{0}")]
    Http(#[from] SinkError),
    /// A named object disappeared between routing and delivery.
    #[error("{0} does not exist")]
    Missing(String),
    /// The broker did not store a reply sent to it (its log is full, Kafka
    /// did not acknowledge); retried like a 503.
    #[error("the broker did not take the event: {0}")]
    Broker(super::ReentryError),
    /// A sequence's step or a parallel's branch failed for good. Its own
    /// delivery already retried it and sent it to a dead letter (its own,
    /// else the enclosing one) or dropped it: never retried or
    /// dead-lettered again, only counted against whoever ran it.
    #[error(transparent)]
    Inner(Undelivered),
    /// The host stopped while a sequence's step or a parallel's branch
    /// waited to retry: no further attempt, no dead letter.
    #[error("abandoned: the host is stopping")]
    Abandoned,
}

impl Failure {
    /// Whether another attempt may succeed. Functions follow the HTTP rules:
    /// traps, timeouts, resource exhaustion and "busy" are retried (like a
    /// 5xx or 429); a handler's own error or an invalid reply is not (like
    /// a 4xx).
    pub fn retryable(&self) -> bool {
        match self {
            Self::Function(e) => !matches!(e.kind(), ErrorKind::Handler | ErrorKind::InvalidReply),
            Self::FunctionTimeout(_) => true,
            Self::Http(e) => e.retryable(),
            Self::Missing(_) | Self::Inner(_) | Self::Abandoned => false,
            Self::Broker(_) => true,
        }
    }

    /// `Retry-After` from a 429 or 503.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http(e) => e.retry_after(),
            _ => None,
        }
    }

    /// A short kind for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Function(e) => e.kind().as_str(),
            Self::FunctionTimeout(_) => "timeout",
            Self::Http(SinkError::Connect { .. }) => "connect",
            Self::Http(
                SinkError::Timeout { .. } | SinkError::Kafka(KafkaSinkError::Timeout { .. }),
            ) => "timeout",
            Self::Http(SinkError::Status { .. }) => "status",
            Self::Http(SinkError::InvalidReply { .. }) => "invalid_reply",
            Self::Http(SinkError::ReplyTooLarge { .. }) => "reply_too_large",
            Self::Http(SinkError::Kafka(_)) => "kafka",
            Self::Missing(_) => "missing",
            Self::Broker(_) => "broker",
            Self::Inner(u) => u.kind,
            Self::Abandoned => "abandoned",
        }
    }

    /// Record the failure on `event` as extensions: the destination, the
    /// last status code (HTTP only) and the truncated body or message.
    pub fn annotate(&self, event: &mut Event, destination: &str) {
        let ext = &mut event.extensions;
        ext.insert(
            ERROR_DEST.into(),
            ExtensionValue::String(destination.to_owned()),
        );
        let (code, data) = match self {
            Self::Http(e) => (e.status(), e.body()),
            other => (None, other.to_string()),
        };
        if let Some(code) = code {
            ext.insert(ERROR_CODE.into(), ExtensionValue::Integer(i64::from(code)));
        }
        ext.insert(ERROR_DATA.into(), ExtensionValue::String(truncate(&data)));
    }
}
