//! Whether the host takes traffic: `GET /readyz` on both listeners (the
//! Kubernetes readiness probe), next to `GET /healthz` (liveness).
//!
//! The host is [`Stage::Starting`] until both listeners serve and the
//! durable log's replay started, [`Stage::ConnectingKafka`] until every
//! Kafka consumer reached its cluster, then [`Stage::Ready`];
//! [`Stage::Draining`] from the stop signal on, for good.

use std::sync::Arc;

use axum::http::StatusCode;
use tokio::sync::watch;

/// Where the host is in its life, as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Built; its listeners, sources or replay not started yet.
    Starting,
    /// Serving; a Kafka consumer has not reached its cluster yet.
    ConnectingKafka,
    /// Takes events.
    Ready,
    /// Stopping: refuses new events while the running deliveries drain.
    Draining,
}

impl Stage {
    /// What `/readyz` answers in this stage: 200 only when ready.
    pub fn answer(self) -> (StatusCode, &'static str) {
        match self {
            Self::Ready => (StatusCode::OK, "ready\n"),
            Self::Starting => (StatusCode::SERVICE_UNAVAILABLE, "not ready: starting\n"),
            Self::ConnectingKafka => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: connecting to Kafka\n",
            ),
            Self::Draining => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: draining (the host is stopping)\n",
            ),
        }
    }
}

/// The host's [`Stage`], shared by the app and both listeners (cheap to
/// clone).
#[derive(Clone)]
pub struct Readiness(Arc<watch::Sender<Stage>>);

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// A host that is [`Stage::Starting`].
    pub fn new() -> Self {
        Self(Arc::new(watch::Sender::new(Stage::Starting)))
    }

    /// The current stage.
    pub fn stage(&self) -> Stage {
        *self.0.borrow()
    }

    /// Whether the host is stopping.
    pub fn is_draining(&self) -> bool {
        self.stage() == Stage::Draining
    }

    /// Move to `stage`, unless the host is already draining (which is
    /// final).
    pub fn set(&self, stage: Stage) {
        self.0.send_if_modified(|now| {
            if *now == Stage::Draining || *now == stage {
                return false;
            }
            *now = stage;
            true
        });
    }

    /// Completes once the host is draining.
    pub async fn draining(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|s| *s == Stage::Draining).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_is_final() {
        let r = Readiness::new();
        assert_eq!(r.stage().answer().0, StatusCode::SERVICE_UNAVAILABLE);
        r.set(Stage::Ready);
        assert_eq!(r.stage().answer().0, StatusCode::OK);
        r.set(Stage::Draining);
        r.set(Stage::Ready);
        assert!(r.is_draining());
        assert_eq!(r.stage().answer().0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
