//! Where replies go: HTTP endpoints (CloudEvents binary mode) and the log.

mod http;

pub use self::http::HttpSink;
use crate::kafka::{KafkaSinkError, KafkaSinks};

use crate::config::Sink;
use crate::event::Event;

/// A delivery to a sink that failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The request could not be sent or no response came back.
    #[error("sending to {url}: {reason}")]
    Connect {
        /// The sink.
        url: String,
        /// Why.
        reason: String,
    },
    /// The sink answered with a status other than 2xx.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The sink.
        url: String,
        /// Its status code.
        status: u16,
        /// The start of its response body.
        body: String,
    },
    /// A Kafka sink did not take the event.
    #[error(transparent)]
    Kafka(#[from] KafkaSinkError),
}

/// Sends events to sinks; one per host, shared by every delivery.
#[derive(Debug, Clone)]
pub struct Sinks {
    http: HttpSink,
    kafka: KafkaSinks,
}

impl Sinks {
    /// Sinks with a fresh HTTP client.
    pub fn new() -> Self {
        Self {
            http: HttpSink::new(),
            kafka: KafkaSinks::default(),
        }
    }

    /// These sinks plus the declared Kafka sinks.
    #[must_use]
    pub fn with_kafka(mut self, kafka: KafkaSinks) -> Self {
        self.kafka = kafka;
        self
    }

    /// Deliver `event` to `sink`.
    ///
    /// # Errors
    /// [`SinkError`] when the sink did not take the event.
    pub async fn send(&self, sink: &Sink, event: &Event) -> Result<(), SinkError> {
        match sink {
            Sink::Http(url) => self.http.send(url, event).await,
            Sink::Kafka(name) => Ok(self.kafka.send(name.as_str(), event).await?),
            Sink::Log => {
                log_event(event);
                Ok(())
            }
        }
    }
}

impl Default for Sinks {
    fn default() -> Self {
        Self::new()
    }
}

/// The `log` sink: one structured record per event (an event display).
fn log_event(event: &Event) {
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
