//! Metrics of event sources (ping schedules and source functions).

use prometheus::{opts, IntCounterVec, Registry};

use super::register;

/// Source metric families.
#[derive(Clone)]
pub struct SourceMetrics {
    runs: IntCounterVec,
    events: IntCounterVec,
    outbound_denied: IntCounterVec,
}

/// How one tick of a source ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickOutcome {
    /// Every event was handed to the source's sink.
    Emitted,
    /// The source function failed or timed out; nothing was emitted.
    RunFailed,
    /// Some event could not be handed to the sink.
    SinkFailed,
}

impl TickOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Emitted => "emitted",
            Self::RunFailed => "run_failed",
            Self::SinkFailed => "sink_failed",
        }
    }
}

impl SourceMetrics {
    pub(super) fn register(r: &Registry) -> Self {
        Self {
            runs: register(
                r,
                IntCounterVec::new(
                    opts!("source_ticks_total", "Source schedule ticks, by outcome."),
                    &["source", "outcome"],
                )
                .expect("valid"),
            ),
            events: register(
                r,
                IntCounterVec::new(
                    opts!("source_events_total", "Events emitted by sources."),
                    &["source"],
                )
                .expect("valid"),
            ),
            outbound_denied: register(
                r,
                IntCounterVec::new(
                    opts!(
                        "source_outbound_denied_total",
                        "Outbound HTTP requests of source functions refused by their allow-list."
                    ),
                    &["source"],
                )
                .expect("valid"),
            ),
        }
    }

    /// A tick of `source` ended with `outcome`.
    pub fn tick(&self, source: &str, outcome: TickOutcome) {
        self.runs
            .with_label_values(&[source, outcome.as_str()])
            .inc();
    }

    /// `source` emitted one event.
    pub fn emitted(&self, source: &str) {
        self.events.with_label_values(&[source]).inc();
    }

    /// `source` tried to reach a host outside its allow-list.
    pub fn outbound_denied(&self, source: &str) {
        self.outbound_denied.with_label_values(&[source]).inc();
    }
}
