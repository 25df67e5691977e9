//! Kafka as the broker (scale-out mode): `POST /` produces accepted events
//! to one topic, keyed by `partitionkey`, and answers 202 once Kafka
//! acknowledged them (acks=all); every host in the consumer group consumes
//! its share of the partitions in order and dispatches them (see
//! [`super::source`]). A host that dies loses nothing acknowledged: its
//! partitions move to the others, which resume from the last committed
//! offsets.

use super::sink::Producer;
use crate::config::{KafkaConfig, KafkaMode};
use crate::event::Event;
use crate::metrics::KafkaMetrics;

/// The producer side of broker mode.
pub struct KafkaBroker {
    producer: Producer,
}

impl KafkaBroker {
    /// The broker-mode producer, when `[kafka.broker]` is configured.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn new(
        config: &KafkaConfig,
        metrics: &KafkaMetrics,
    ) -> Result<Option<Self>, rdkafka::error::KafkaError> {
        let Some(b) = &config.broker else {
            return Ok(None);
        };
        Ok(Some(Self {
            producer: Producer::new(
                config,
                &b.properties,
                &b.topic,
                KafkaMode::Binary,
                "broker",
                metrics.clone(),
            )?,
        }))
    }

    /// Produce every event; returns once Kafka acknowledged all of them.
    ///
    /// # Errors
    /// The first failure; some events may have been produced (a retry by
    /// the client then duplicates them, as at-least-once allows).
    pub async fn publish(&self, events: &[Event]) -> Result<(), rdkafka::error::KafkaError> {
        let sends = events.iter().map(|e| self.producer.send(e));
        for r in futures_util::future::join_all(sends).await {
            r?;
        }
        Ok(())
    }
}
