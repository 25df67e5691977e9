//! The Kafka bridge: the CloudEvents Kafka protocol binding ([`binding`]),
//! sources that consume topics into the host ([`source`]) and sinks that
//! produce replies to topics ([`sink`]). See `docs/kafka.md`.

pub mod binding;
mod broker;
mod config;
pub mod release;
mod sink;
pub mod source;

pub use self::broker::KafkaBroker;
pub use self::config::{KafkaBrokerConfig, KafkaConfig, KafkaSinkConfig, KafkaSourceConfig};
pub use self::sink::{KafkaSinkError, KafkaSinks};
