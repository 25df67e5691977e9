//! `[kafka]`: the Kafka bridge's sources and sinks (see `docs/kafka.md`).
//!
//! ```toml
//! [kafka]
//! brokers = "127.0.0.1:9092"
//! properties = { "session.timeout.ms" = "6000" }
//!
//! [kafka.sources.orders]
//! topics = ["orders"]
//! group = "sluice"
//!
//! [kafka.sinks.replies]
//! topic = "replies"
//! mode = "structured"
//! ```
//! A trigger sends to a Kafka sink with `sink = "kafka:replies"`.

use std::collections::BTreeMap;

use super::binding::KafkaMode;
use crate::registry::Name;

/// The `[kafka]` section; empty when Kafka is not used.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    #[serde(default)]
    pub brokers: String,
    /// Extra librdkafka properties for every client (e.g. security).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Topics consumed into the host, by name.
    #[serde(default)]
    pub sources: BTreeMap<Name, KafkaSourceConfig>,
    /// Topics replies are produced to, by name (`sink = "kafka:NAME"`).
    #[serde(default)]
    pub sinks: BTreeMap<Name, KafkaSinkConfig>,
    /// Kafka as the broker: `POST /` produces to this topic and every host
    /// in the group dispatches its share of the partitions.
    #[serde(default)]
    pub broker: Option<KafkaBrokerConfig>,
}

/// `[kafka.broker]`: the scale-out mode.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaBrokerConfig {
    /// The topic events go through.
    pub topic: String,
    /// The consumer group shared by every host of the fleet.
    pub group: String,
    /// Extra librdkafka properties for this producer and consumer.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// One Kafka source: a consumer group member.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Consumer group id.
    pub group: String,
    /// Deliver one record at a time, in order (default `true`); `false`
    /// hands records on as fast as the durable log takes them.
    #[serde(default = "default_ordered")]
    pub ordered: bool,
    /// Where a new group starts: `earliest` (default) or `latest`.
    #[serde(default = "default_offset_reset")]
    pub start: String,
    /// Extra librdkafka properties for this consumer.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// One Kafka sink: a topic written by an idempotent producer.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Topic to produce to.
    pub topic: String,
    /// `binary` (default) or `structured`.
    #[serde(default)]
    pub mode: KafkaMode,
    /// Extra librdkafka properties for this producer.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Checks the schema cannot express.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let used = !self.sources.is_empty() || !self.sinks.is_empty() || self.broker.is_some();
        if used && self.brokers.trim().is_empty() {
            return Err("kafka: `brokers` is required when sources or sinks are declared".into());
        }
        for (name, s) in &self.sources {
            if s.topics.is_empty() || s.group.is_empty() {
                return Err(format!(
                    "kafka source `{name}`: `topics` and `group` must not be empty"
                ));
            }
            if !matches!(s.start.as_str(), "earliest" | "latest") {
                return Err(format!(
                    "kafka source `{name}`: `start` must be `earliest` or `latest`"
                ));
            }
        }
        Ok(())
    }
}

const fn default_ordered() -> bool {
    true
}

fn default_offset_reset() -> String {
    "earliest".into()
}
