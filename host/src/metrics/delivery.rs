//! Metrics of the ingress and delivery.

use prometheus::{opts, IntCounter, IntCounterVec, Registry};

use super::register;

/// Delivery metric families.
#[derive(Clone)]
pub struct DeliveryMetrics {
    accepted: IntCounter,
    deliveries: IntCounterVec,
}

/// How one delivery to one trigger ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The function ran; its reply (if any) reached the sink.
    Delivered,
    /// The function failed.
    FunctionFailed,
    /// The sink did not take the reply.
    SinkFailed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::FunctionFailed => "function_failed",
            Self::SinkFailed => "sink_failed",
        }
    }
}

impl DeliveryMetrics {
    pub(super) fn register(r: &Registry) -> Self {
        Self {
            accepted: register(
                r,
                IntCounter::new(
                    "events_accepted_total",
                    "Events accepted by the broker for routing.",
                )
                .expect("valid"),
            ),
            deliveries: register(
                r,
                IntCounterVec::new(
                    opts!("deliveries_total", "Deliveries to triggers, by outcome."),
                    &["trigger", "outcome"],
                )
                .expect("valid"),
            ),
        }
    }

    /// An event was accepted.
    pub fn accepted(&self) {
        self.accepted.inc();
    }

    /// A delivery to `trigger` ended with `outcome`.
    pub fn delivery(&self, trigger: &str, outcome: Outcome) {
        self.deliveries
            .with_label_values(&[trigger, outcome.as_str()])
            .inc();
    }
}
