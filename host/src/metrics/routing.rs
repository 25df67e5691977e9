//! Metrics of event routing: per trigger, sink, sequence step and parallel
//! branch (label `kind` says which, `name` names the object).

use std::time::Duration;

use prometheus::{histogram_opts, opts, HistogramVec, IntCounterVec, Registry};

use super::register;

/// Routing metric families.
#[derive(Clone)]
pub struct RoutingMetrics {
    delivered: IntCounterVec,
    retried: IntCounterVec,
    dead_lettered: IntCounterVec,
    undeliverable: IntCounterVec,
    hop_limit: IntCounterVec,
    filter_time: HistogramVec,
    filter_errors: IntCounterVec,
}

impl RoutingMetrics {
    pub(super) fn register(r: &Registry) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                r,
                IntCounterVec::new(opts!(name, help), labels).expect("valid"),
            )
        };
        Self {
            delivered: counter(
                "routing_delivered_total",
                "Events a trigger, sink, step or branch delivered.",
                &["kind", "name"],
            ),
            retried: counter(
                "routing_retries_total",
                "Delivery attempts that were retries.",
                &["kind", "name"],
            ),
            dead_lettered: counter(
                "routing_dead_lettered_total",
                "Events sent to a dead-letter destination after their retries ran out.",
                &["kind", "name"],
            ),
            undeliverable: counter(
                "routing_undeliverable_total",
                "Events whose retries ran out with no dead letter to take them (logged).",
                &["kind", "name"],
            ),
            hop_limit: counter(
                "routing_hop_limit_dropped_total",
                "Replies dropped because their hop counter reached 0.",
                &["kind", "name"],
            ),
            filter_errors: counter(
                "routing_filter_errors_total",
                "CESQL filter evaluations that raised an error (the event did not pass).",
                &["kind", "name", "error"],
            ),
            filter_time: register(
                r,
                HistogramVec::new(
                    histogram_opts!(
                        "routing_filter_seconds",
                        "Time to evaluate one trigger's filters on one event.",
                        vec![
                            0.000_000_5,
                            0.000_001,
                            0.000_002_5,
                            0.000_005,
                            0.000_01,
                            0.000_025,
                            0.000_1,
                            0.001
                        ]
                    ),
                    &["trigger"],
                )
                .expect("valid"),
            ),
        }
    }

    /// `kind` `name` delivered an event.
    pub fn delivered(&self, kind: &str, name: &str) {
        self.delivered.with_label_values(&[kind, name]).inc();
    }

    /// `kind` `name` is retrying a delivery.
    pub fn retried(&self, kind: &str, name: &str) {
        self.retried.with_label_values(&[kind, name]).inc();
    }

    /// `kind` `name` sent an event to its dead letter.
    pub fn dead_lettered(&self, kind: &str, name: &str) {
        self.dead_lettered.with_label_values(&[kind, name]).inc();
    }

    /// `kind` `name` gave up on an event with nowhere to put it.
    pub fn undeliverable(&self, kind: &str, name: &str) {
        self.undeliverable.with_label_values(&[kind, name]).inc();
    }

    /// A reply of `kind` `name` hit the hop limit.
    pub fn hop_limit(&self, kind: &str, name: &str) {
        self.hop_limit.with_label_values(&[kind, name]).inc();
    }

    /// A CESQL filter of `kind` `name` raised an `error` (its kind, e.g.
    /// `missing_attribute`).
    pub fn filter_error(&self, kind: &str, name: &str, error: &str) {
        self.filter_errors
            .with_label_values(&[kind, name, error])
            .inc();
    }

    /// The filter-time histogram of `trigger`, to bind once per table.
    pub fn filter_timer(&self, trigger: &str) -> prometheus::Histogram {
        self.filter_time.with_label_values(&[trigger])
    }

    /// Evaluating `trigger`'s filters took `d`.
    pub fn filter_time(&self, trigger: &str, d: Duration) {
        self.filter_time
            .with_label_values(&[trigger])
            .observe(d.as_secs_f64());
    }
}
