//! Metrics of the Kafka bridge: records consumed by sources (and broker
//! mode), records produced by sinks (and broker mode).

use prometheus::{opts, IntCounterVec, Registry};

use super::register;

/// Kafka metric families.
#[derive(Clone)]
pub struct KafkaMetrics {
    records: IntCounterVec,
    invalid: IntCounterVec,
    produced: IntCounterVec,
    produce_errors: IntCounterVec,
}

impl KafkaMetrics {
    pub(super) fn register(r: &Registry) -> Self {
        Self {
            records: register(r, IntCounterVec::new(opts!("kafka_records_total", "Records consumed by a Kafka source (`broker` in broker mode)."), &["source"]).expect("valid")),
            invalid: register(r, IntCounterVec::new(opts!("kafka_invalid_records_total", "Consumed records that were not valid CloudEvents and were skipped."), &["source"]).expect("valid")),
            produced: register(r, IntCounterVec::new(opts!("kafka_produced_total", "Records a Kafka sink (`broker` in broker mode) produced and Kafka acknowledged."), &["sink"]).expect("valid")),
            produce_errors: register(r, IntCounterVec::new(opts!("kafka_produce_errors_total", "Records Kafka did not acknowledge."), &["sink"]).expect("valid")),
        }
    }

    /// `source` consumed `records`, of which `invalid` were skipped.
    pub fn consumed(&self, source: &str, records: u64, invalid: u64) {
        self.records.with_label_values(&[source]).inc_by(records);
        if invalid > 0 {
            self.invalid.with_label_values(&[source]).inc_by(invalid);
        }
    }

    /// `sink` produced one record (`ok`) or failed to.
    pub fn produced(&self, sink: &str, ok: bool) {
        if ok {
            self.produced.with_label_values(&[sink]).inc();
        } else {
            self.produce_errors.with_label_values(&[sink]).inc();
        }
    }
}
