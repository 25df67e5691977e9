//! Kafka sinks: one idempotent producer (acks=all) per declared sink.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::ClientConfig;

use super::binding::to_record;
use crate::config::{KafkaConfig, KafkaMode};
use crate::event::Event;
use crate::metrics::KafkaMetrics;
use crate::name::Name;

/// How long a send may wait in the producer queue.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// A Kafka sink failed to take an event.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    /// No `[kafka.sinks.NAME]` is declared.
    #[error("kafka sink `{0}` is not declared in [kafka.sinks]")]
    Unknown(String),
    /// The broker did not acknowledge the record within the delivery's
    /// timeout (it may still land later: at least once).
    #[error("producing to kafka sink `{sink}`: no acknowledgement within {timeout:?} (delivery timeout)")]
    Timeout {
        /// The sink.
        sink: String,
        /// The delivery's per-attempt timeout.
        timeout: Duration,
    },
    /// The broker did not acknowledge the record.
    #[error("producing to kafka sink `{sink}`: {source}")]
    Produce {
        /// The sink.
        sink: String,
        /// What librdkafka said.
        source: rdkafka::error::KafkaError,
    },
}

/// An idempotent producer (acks=all) bound to one topic and mode.
pub(crate) struct Producer {
    producer: FutureProducer,
    topic: String,
    mode: KafkaMode,
    /// The sink's name in metrics (`broker` in broker mode).
    label: String,
    metrics: KafkaMetrics,
}

impl Producer {
    /// A producer for `topic`, with the shared then the specific properties;
    /// its records are counted under `label`.
    pub(crate) fn new(
        config: &KafkaConfig,
        properties: &BTreeMap<String, String>,
        topic: &str,
        mode: KafkaMode,
        label: &str,
        metrics: KafkaMetrics,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &config.brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            // Send at once: an ordered source waits for each reply's ack,
            // and librdkafka still batches what queues up meanwhile.
            .set("linger.ms", "0");
        for (k, v) in config.properties.iter().chain(properties) {
            c.set(k, v);
        }
        Ok(Self {
            producer: c.create()?,
            topic: topic.to_owned(),
            mode,
            label: label.to_owned(),
            metrics,
        })
    }

    /// Ask the cluster for the topic's metadata, waiting at most `timeout`
    /// (on a blocking thread: librdkafka's call blocks). `Err` with what
    /// librdkafka said when no broker answered.
    pub(crate) async fn fetch_metadata(&self, timeout: Duration) -> Result<(), String> {
        let (producer, topic) = (self.producer.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
    }

    /// Produce `event`; returns once the broker acknowledged it.
    ///
    /// # Errors
    /// What librdkafka reports when the record is not acknowledged.
    pub(crate) async fn send(&self, event: &Event) -> Result<(), rdkafka::error::KafkaError> {
        let record = to_record(event, self.mode);
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (k, v) in &record.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let mut out = FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = &record.key {
            out = out.key(key);
        }
        if let Some(value) = &record.value {
            out = out.payload(value);
        }
        let result = self
            .producer
            .send(out, QUEUE_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(|(e, _)| e);
        self.metrics.produced(&self.label, result.is_ok());
        result
    }
}

/// Every declared Kafka sink; cheap to clone.
#[derive(Clone, Default)]
pub struct KafkaSinks {
    producers: Arc<BTreeMap<Name, Producer>>,
}

impl std::fmt::Debug for KafkaSinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.producers.keys()).finish()
    }
}

impl KafkaSinks {
    /// A producer per sink in `config`, counted in `metrics`.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn new(
        config: &KafkaConfig,
        metrics: &KafkaMetrics,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let mut producers = BTreeMap::new();
        for (name, sink) in &config.sinks {
            producers.insert(
                name.clone(),
                Producer::new(
                    config,
                    &sink.properties,
                    &sink.topic,
                    sink.mode,
                    name.as_str(),
                    metrics.clone(),
                )?,
            );
        }
        Ok(Self {
            producers: Arc::new(producers),
        })
    }

    /// Whether sink `name` is declared.
    pub fn contains(&self, name: &Name) -> bool {
        self.producers.contains_key(name)
    }

    /// Produce `event` to sink `name`; returns once the broker acknowledged
    /// it, waiting at most `timeout` (the delivery's per-attempt timeout;
    /// without one, librdkafka's `message.timeout.ms` bounds the wait).
    ///
    /// # Errors
    /// [`KafkaSinkError`] when the sink is unknown, the broker refused, or
    /// no acknowledgement came within `timeout`.
    pub async fn send(
        &self,
        name: &str,
        event: &Event,
        timeout: Option<Duration>,
    ) -> Result<(), KafkaSinkError> {
        let p = self
            .producers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, p)| p)
            .ok_or_else(|| KafkaSinkError::Unknown(name.to_owned()))?;
        let produce = p.send(event);
        let result = match timeout {
            Some(t) => match tokio::time::timeout(t, produce).await {
                Ok(r) => r,
                Err(_) => {
                    p.metrics.produced(&p.label, false);
                    return Err(KafkaSinkError::Timeout {
                        sink: name.to_owned(),
                        timeout: t,
                    });
                }
            },
            None => produce.await,
        };
        result.map_err(|source| KafkaSinkError::Produce {
            sink: name.to_owned(),
            source,
        })
    }
}
