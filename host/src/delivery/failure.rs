//! Why one delivery attempt failed, whether to retry, and how the failure
//! is recorded on a dead-lettered event: in Sluice's `sluiceerror*`
//! extensions and in Knative's `knativeerror*` ones, which tools and
//! dead-letter consumers written for Knative read.

use std::time::Duration;

use base64::Engine as _;

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
/// Knative's extension naming the destination that failed (as
/// [`ERROR_DEST`]).
pub const KNATIVE_ERROR_DEST: &str = "knativeerrordest";
/// Knative's extension with the last HTTP status code, or 500 when there
/// was no HTTP answer (as Knative's dispatcher sets for a dispatch error).
pub const KNATIVE_ERROR_CODE: &str = "knativeerrorcode";
/// Knative's extension with the response body or error message in base64,
/// at most [`KNATIVE_ERROR_DATA_MAX`] characters long.
pub const KNATIVE_ERROR_DATA: &str = "knativeerrordata";
/// Longest [`KNATIVE_ERROR_DATA`]: the base64 of up to 768 bytes.
pub const KNATIVE_ERROR_DATA_MAX: usize = 1024;
/// The code [`KNATIVE_ERROR_CODE`] carries when there was no HTTP answer.
const NO_ANSWER: u16 = 500;

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

    /// Record the failure on `event` as extensions, in both dialects: the
    /// destination, the last status code and the body or message.
    /// Sluice's code is absent without an HTTP answer and its data is
    /// text truncated to 1 KiB; Knative's code is then 500 and its data is
    /// base64 ([`KNATIVE_ERROR_DATA`]).
    pub fn annotate(&self, event: &mut Event, destination: &str) {
        let (code, data) = match self {
            Self::Http(e) => (e.status(), e.body()),
            other => (None, other.to_string()),
        };
        let data = truncate(&data);
        let knative_data = base64::engine::general_purpose::STANDARD
            .encode(&data.as_bytes()[..data.len().min(KNATIVE_ERROR_DATA_MAX / 4 * 3)]);
        let ext = &mut event.extensions;
        for name in [ERROR_DEST, KNATIVE_ERROR_DEST] {
            ext.insert(name.into(), ExtensionValue::String(destination.to_owned()));
        }
        if let Some(code) = code {
            ext.insert(ERROR_CODE.into(), ExtensionValue::Integer(i64::from(code)));
        }
        ext.insert(
            KNATIVE_ERROR_CODE.into(),
            ExtensionValue::Integer(i64::from(code.unwrap_or(NO_ANSWER))),
        );
        ext.insert(ERROR_DATA.into(), ExtensionValue::String(data));
        ext.insert(
            KNATIVE_ERROR_DATA.into(),
            ExtensionValue::String(knative_data),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::SinkError;

    fn annotated(f: &Failure) -> Event {
        let mut e = Event::new("1", "/s", "t");
        f.annotate(&mut e, "http://x/");
        e
    }

    fn text(e: &Event, name: &str) -> String {
        match e.extensions.get(name) {
            Some(ExtensionValue::String(s)) => s.clone(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn failures_are_recorded_in_both_dialects() {
        let status = Failure::Http(SinkError::Status {
            url: "http://x/".into(),
            status: 503,
            body: "busy".into(),
            retry_after: None,
        });
        let e = annotated(&status);
        assert_eq!(text(&e, ERROR_DEST), "http://x/");
        assert_eq!(text(&e, KNATIVE_ERROR_DEST), "http://x/");
        for code in [ERROR_CODE, KNATIVE_ERROR_CODE] {
            assert_eq!(e.extensions.get(code), Some(&ExtensionValue::Integer(503)));
        }
        assert_eq!(text(&e, ERROR_DATA), "busy");
        assert_eq!(text(&e, KNATIVE_ERROR_DATA), "YnVzeQ==");

        // No HTTP answer: Knative's code is 500, Sluice's is absent.
        let e = annotated(&Failure::Missing("sink `s`".into()));
        assert_eq!(e.extensions.get(ERROR_CODE), None);
        assert_eq!(
            e.extensions.get(KNATIVE_ERROR_CODE),
            Some(&ExtensionValue::Integer(500))
        );
        let data = base64::engine::general_purpose::STANDARD
            .decode(text(&e, KNATIVE_ERROR_DATA))
            .unwrap();
        assert_eq!(data, text(&e, ERROR_DATA).as_bytes());

        // A long body: Knative's data stays within its bound.
        let long = Failure::Http(SinkError::Status {
            url: "http://x/".into(),
            status: 500,
            body: "x".repeat(5000),
            retry_after: None,
        });
        let e = annotated(&long);
        assert_eq!(text(&e, KNATIVE_ERROR_DATA).len(), KNATIVE_ERROR_DATA_MAX);
        assert_eq!(text(&e, ERROR_DATA).len(), 1024);
    }
}
