//! Metrics of the listeners' defences: refused credentials, refused
//! connections, rate-limited senders, open connections.

use prometheus::{opts, IntCounterVec, IntGaugeVec, Registry};

use super::register;

/// Security metric families; `listener` is `events` or `admin`.
#[derive(Clone)]
pub struct SecurityMetrics {
    auth_refused: IntCounterVec,
    connections_refused: IntCounterVec,
    rate_limited: IntCounterVec,
    connections_open: IntGaugeVec,
}

impl SecurityMetrics {
    pub(super) fn register(r: &Registry) -> Self {
        Self {
            auth_refused: register(
                r,
                IntCounterVec::new(
                    opts!(
                        "auth_refused_total",
                        "Requests refused for their credentials (reason: missing, unknown, scope)"
                    ),
                    &["listener", "reason"],
                )
                .expect("valid metric"),
            ),
            connections_refused: register(
                r,
                IntCounterVec::new(
                    opts!(
                        "connections_refused_total",
                        "Connections closed at accept (reason: max_connections, per_client, tls)"
                    ),
                    &["listener", "reason"],
                )
                .expect("valid metric"),
            ),
            rate_limited: register(
                r,
                IntCounterVec::new(
                    opts!(
                        "rate_limited_total",
                        "Requests answered 429 by the per-sender rate limit"
                    ),
                    &["listener"],
                )
                .expect("valid metric"),
            ),
            connections_open: register(
                r,
                IntGaugeVec::new(
                    opts!("connections_open", "Connections open now"),
                    &["listener"],
                )
                .expect("valid metric"),
            ),
        }
    }

    /// A request refused for its credentials.
    pub fn auth_refused(&self, listener: &str, reason: &str) {
        self.auth_refused
            .with_label_values(&[listener, reason])
            .inc();
    }

    /// A connection closed as soon as it was accepted.
    pub fn connection_refused(&self, listener: &str, reason: &str) {
        self.connections_refused
            .with_label_values(&[listener, reason])
            .inc();
    }

    /// A request answered 429 by the rate limit.
    pub fn rate_limited(&self, listener: &str) {
        self.rate_limited.with_label_values(&[listener]).inc();
    }

    /// One more (`+1`) or one fewer (`-1`) open connection.
    pub fn connections_open(&self, listener: &str, delta: i64) {
        self.connections_open
            .with_label_values(&[listener])
            .add(delta);
    }
}
