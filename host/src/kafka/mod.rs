//! The Kafka bridge: the CloudEvents Kafka protocol binding ([`binding`]),
//! sources that consume topics into the host ([`source`]) and sinks that
//! produce replies to topics ([`sink`]). See `docs/kafka.md`.

pub mod binding;
mod broker;
pub mod release;
mod sink;

pub use self::broker::{KafkaBroker, KafkaOpenError};
pub use self::sink::{KafkaSinkError, KafkaSinks};
