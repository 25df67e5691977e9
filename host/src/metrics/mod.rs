//! Telemetry: named metric families with low-cardinality labels (function,
//! trigger, error kind), exported at `GET /metrics` in the Prometheus text
//! format by the `prometheus` crate.
//!
//! Each subsystem owns a typed handle ([`RuntimeMetrics`],
//! [`DeliveryMetrics`]) with one method per thing that happens, so metric
//! names and labels are fixed in one place.

mod delivery;
mod durable;
mod kafka;
mod routing;
mod runtime;
mod security;
mod sources;

use prometheus::{Encoder, Registry, TextEncoder};

pub use self::delivery::{DeliveryMetrics, Outcome};
pub use self::durable::DurableMetrics;
pub use self::kafka::KafkaMetrics;
pub use self::routing::RoutingMetrics;
pub use self::runtime::{FunctionMetrics, RuntimeMetrics};
pub use self::security::SecurityMetrics;
pub use self::sources::{SourceMetrics, TickOutcome};

/// Every metric of one host.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Invocations, cold starts, instances.
    pub runtime: RuntimeMetrics,
    /// Accepted events and deliveries.
    pub delivery: DeliveryMetrics,
    /// Per trigger/sink/step: delivered, retried, dead-lettered, hop limit.
    pub routing: RoutingMetrics,
    /// Source ticks, emitted events, refused outbound requests.
    pub sources: SourceMetrics,
    /// The durable ingress log: pending events, commits, refusals.
    pub durable: DurableMetrics,
    /// The Kafka bridge: records consumed and produced.
    pub kafka: KafkaMetrics,
    /// Refused credentials and connections, rate limiting.
    pub security: SecurityMetrics,
}

impl Metrics {
    /// Register every family in a fresh registry.
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("sluice".into()), None).expect("a static prefix is valid");
        Self {
            runtime: RuntimeMetrics::register(&registry),
            delivery: DeliveryMetrics::register(&registry),
            routing: RoutingMetrics::register(&registry),
            sources: SourceMetrics::register(&registry),
            durable: DurableMetrics::register(&registry),
            kafka: KafkaMetrics::register(&registry),
            security: SecurityMetrics::register(&registry),
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Register `metric` in `registry` (names are static, so this cannot clash).
pub(crate) fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique and valid");
    metric
}
