//! Metrics of the durable ingress log.

use std::time::Duration;

use prometheus::{histogram_opts, Histogram, IntCounter, IntCounterVec, IntGauge, Registry};

use super::register;

/// Durable log metric families.
#[derive(Clone)]
pub struct DurableMetrics {
    entries: IntGauge,
    bytes: IntGauge,
    appended: IntCounter,
    duplicates: IntCounter,
    refused: IntCounterVec,
    commit: Histogram,
    redelivered: IntCounter,
}

impl DurableMetrics {
    pub(super) fn register(r: &Registry) -> Self {
        Self {
            entries: register(r, IntGauge::new("durable_log_entries", "Events in the durable log whose deliveries have not all ended.").expect("valid")),
            bytes: register(r, IntGauge::new("durable_log_bytes", "Stored size of the pending events.").expect("valid")),
            appended: register(r, IntCounter::new("durable_log_appended_total", "Events stored in the durable log.").expect("valid")),
            duplicates: register(r, IntCounter::new("durable_log_duplicates_total", "Events not stored again because their source and id were seen within the dedup window.").expect("valid")),
            refused: register(r, IntCounterVec::new(prometheus::opts!("durable_log_refused_total", "Events refused by the durable log (503), by reason: full or storage."), &["reason"]).expect("valid")),
            commit: register(r, Histogram::with_opts(histogram_opts!(
                "durable_log_commit_seconds",
                "Time of one durable (fsync'd) commit of a group of appends.",
                vec![0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]
            )).expect("valid")),
            redelivered: register(r, IntCounter::new("durable_log_redelivered_total", "Events found pending at start-up and delivered again.").expect("valid")),
        }
    }

    /// The log holds `entries` pending events of `bytes` in all.
    pub fn pending(&self, entries: u64, bytes: u64) {
        self.entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// A durable commit stored `stored` events and skipped `duplicates`,
    /// taking `took`.
    pub fn committed(&self, stored: u64, duplicates: u64, took: Duration) {
        self.appended.inc_by(stored);
        self.duplicates.inc_by(duplicates);
        self.commit.observe(took.as_secs_f64());
    }

    /// `events` were refused because the log was full (`full`) or could not
    /// write.
    pub fn refused(&self, events: u64, full: bool) {
        self.refused
            .with_label_values(&[if full { "full" } else { "storage" }])
            .inc_by(events);
    }

    /// `events` left by an earlier run are being delivered again.
    pub fn redelivered(&self, events: u64) {
        self.redelivered.inc_by(events);
    }
}
