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

use super::{invalid, Invalid};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::name::Name;

/// How an event is written to Kafka.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KafkaMode {
    /// Attributes in `ce_` headers (the default).
    #[default]
    Binary,
    /// The JSON event format in the value.
    Structured,
}

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
    /// How long start-up waits for the cluster to answer a metadata request
    /// for the topic; the host does not start without it. Default 10 s.
    #[serde(default = "default_open_timeout", with = "humantime_serde")]
    pub open_timeout: Duration,
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
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        let used = !self.sources.is_empty() || !self.sinks.is_empty() || self.broker.is_some();
        if used && self.brokers.trim().is_empty() {
            return Err("kafka: `brokers` is required when sources or sinks are declared".into());
        }
        if self
            .broker
            .as_ref()
            .is_some_and(|b| b.open_timeout.is_zero())
        {
            return Err("kafka.broker: `open_timeout` must be positive".into());
        }
        for (name, s) in &self.sources {
            if s.topics.is_empty() || s.group.is_empty() {
                return Err(invalid!(
                    "kafka source `{name}`: `topics` and `group` must not be empty"
                ));
            }
            if !matches!(s.start.as_str(), "earliest" | "latest") {
                return Err(invalid!(
                    "kafka source `{name}`: `start` must be `earliest` or `latest`"
                ));
            }
        }
        Ok(())
    }
}

const fn default_open_timeout() -> Duration {
    Duration::from_secs(10)
}

const fn default_ordered() -> bool {
    true
}

fn default_offset_reset() -> String {
    "earliest".into()
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Destination, KafkaMode};

    fn parse(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn kafka_sections_parse_with_defaults() {
        let c = parse(
            r#"
            [kafka]
            brokers = "127.0.0.1:9092"
            [kafka.sources.in]
            topics = ["a", "b"]
            group = "g"
            [kafka.sinks.out]
            topic = "o"
            mode = "structured"
            [kafka.broker]
            topic = "events"
            group = "fleet"
            [triggers.t]
            function = "f"
            sink = "kafka:out"
            "#,
        )
        .unwrap();
        let source = &c.kafka.sources[&"in".parse().unwrap()];
        assert!(source.ordered);
        assert_eq!(source.start, "earliest");
        assert_eq!(
            c.kafka.sinks[&"out".parse().unwrap()].mode,
            KafkaMode::Structured
        );
        assert_eq!(c.kafka.broker.as_ref().unwrap().group, "fleet");
        assert_eq!(
            c.kafka.broker.as_ref().unwrap().open_timeout,
            std::time::Duration::from_secs(10)
        );
        assert_eq!(
            c.triggers[&"t".parse().unwrap()].sink,
            Some(Destination::Kafka("out".parse().unwrap()))
        );
        assert!(c.durability.enabled);
    }

    #[test]
    fn bad_kafka_sections_are_refused_with_a_reason() {
        let err = parse("[kafka.sinks.out]\ntopic = \"o\"\n").unwrap_err();
        assert!(err.contains("brokers"), "{err}");
        let err =
            parse("[kafka]\nbrokers = \"b:1\"\n[kafka.sources.s]\ntopics = []\ngroup = \"g\"\n")
                .unwrap_err();
        assert!(err.contains("topics"), "{err}");
        let err = parse("[kafka.sinks.out]\ntopic = \"o\"\nmode = \"xml\"\n").unwrap_err();
        assert!(err.contains("xml"), "{err}");
        let err = parse("[triggers.t]\nfunction = \"f\"\nsink = \"kafka:\"\n").unwrap_err();
        assert!(err.contains("kafka:"), "{err}");
        let err = parse("[durability]\nmax_entries = 0\n").unwrap_err();
        assert!(err.contains("max_entries"), "{err}");
    }
}
