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
    /// The subscriber took the event; its reply (if any) reached the
    /// reply destination.
    Delivered,
    /// The subscriber (a function, a URL, a sequence...) failed for good,
    /// for this reason (`timeout`, `status`, `connect`, `trap`, ...).
    SubscriberFailed(&'static str),
    /// The reply destination did not take the reply, for this reason.
    ReplyFailed(&'static str),
    /// The host stopped before the delivery ended (during a backoff wait,
    /// or past the shutdown grace period): not failed, still owed.
    Abandoned,
}

impl Outcome {
    /// The `outcome` and `error` labels.
    fn labels(self) -> [&'static str; 2] {
        match self {
            Self::Delivered => ["delivered", ""],
            Self::SubscriberFailed(e) => ["subscriber_failed", e],
            Self::ReplyFailed(e) => ["reply_failed", e],
            Self::Abandoned => ["abandoned", ""],
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
                    opts!(
                        "deliveries_total",
                        "Deliveries to triggers, by outcome and, for a failure, its kind."
                    ),
                    &["trigger", "outcome", "error"],
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
        let [outcome, error] = outcome.labels();
        self.deliveries
            .with_label_values(&[trigger, outcome, error])
            .inc();
    }
}
