//! Kafka as the broker (scale-out mode): `POST /` produces accepted events
//! to one topic, keyed by `partitionkey`, and answers 202 once Kafka
//! acknowledged them (acks=all); every host in the consumer group consumes
//! its share of the partitions in order and dispatches them (see
//! [`super::source`]). A host that dies loses nothing acknowledged: its
//! partitions move to the others, which resume from the last committed
//! offsets.

use std::time::Duration;

use super::sink::Producer;
use crate::config::{KafkaBrokerConfig, KafkaConfig, KafkaMode};
use crate::event::Event;
use crate::metrics::KafkaMetrics;

/// Why the Kafka broker could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum KafkaOpenError {
    /// librdkafka refused the producer's configuration.
    #[error("creating the kafka broker producer: {0}")]
    Config(#[source] rdkafka::error::KafkaError),
    /// The cluster did not answer a metadata request for the topic.
    #[error(
        "kafka broker topic `{topic}`: the cluster at {brokers} did not answer within \
         {timeout:?} ([kafka.broker] open_timeout): {reason}"
    )]
    Unreachable {
        /// The broker topic.
        topic: String,
        /// `bootstrap.servers`.
        brokers: String,
        /// How long start-up waited.
        timeout: Duration,
        /// What librdkafka said.
        reason: String,
    },
}

/// Longest a failed open waits for its producer to close.
const RELEASE_LIMIT: Duration = Duration::from_secs(2);

/// The producer side of broker mode.
pub struct KafkaBroker {
    producer: Producer,
}

impl KafkaBroker {
    /// The broker-mode producer for `broker`, once the cluster answered a
    /// metadata request for its topic within `broker.open_timeout`
    /// (librdkafka connects lazily: without this, an unreachable cluster
    /// would only show at the first event).
    ///
    /// # Errors
    /// When librdkafka refuses the configuration or the cluster does not
    /// answer in time.
    pub async fn open(
        config: &KafkaConfig,
        broker: &KafkaBrokerConfig,
        metrics: &KafkaMetrics,
    ) -> Result<Self, KafkaOpenError> {
        let producer = Producer::new(
            config,
            &broker.properties,
            &broker.topic,
            KafkaMode::Binary,
            "broker",
            metrics.clone(),
        )
        .map_err(KafkaOpenError::Config)?;
        if let Err(reason) = producer.fetch_metadata(broker.open_timeout).await {
            // A client that never reached its cluster may take a while to
            // close: off the async workers, bounded.
            super::release::release("the kafka broker producer", producer, RELEASE_LIMIT).await;
            return Err(KafkaOpenError::Unreachable {
                topic: broker.topic.clone(),
                brokers: config.brokers.clone(),
                timeout: broker.open_timeout,
                reason,
            });
        }
        Ok(Self { producer })
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
