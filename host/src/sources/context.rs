//! What a running source is given: the way into routing, the delivery
//! engine, the shutdown signal and the metrics (Vector's `SourceContext`).
//! A source never holds the host itself.
//!
//! [`SourceContext::publish`], [`SourceContext::route_and_wait`] and
//! [`SourceContext::deliver`] are the one seam between sources and routing:
//! every event a source produces passes through them, and the first two
//! through the broker, like an event POSTed to the ingress.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, BrokerError};
use crate::config::{DeliverySpec, Destination};
use crate::delivery::{Dispatcher, Ended, Undelivered};
use crate::event::Event;
use crate::metrics::Metrics;

/// The handles a source runs with. Cheap to clone.
#[derive(Clone)]
pub struct SourceContext {
    broker: Arc<Broker>,
    dispatcher: Dispatcher,
    shutdown: CancellationToken,
    metrics: Metrics,
}

/// A source event that was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// Its delivery failed for good; the delivery engine logged why and
    /// what it did with the event (dead letter or dropped).
    #[error(transparent)]
    Undeliverable(#[from] Undelivered),
    /// The broker refused it (the log is full or failing, Kafka did not
    /// acknowledge it, or the host is stopping).
    #[error("the broker refused it: {0}")]
    Refused(#[from] BrokerError),
}

impl SourceContext {
    /// A context over the host's routing and delivery, with a fresh
    /// shutdown signal.
    pub fn new(broker: Arc<Broker>, dispatcher: Dispatcher, metrics: Metrics) -> Self {
        Self {
            broker,
            dispatcher,
            shutdown: CancellationToken::new(),
            metrics,
        }
    }

    /// Fires when the host stops: a source stops taking new work then.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Every metric of the host.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether the broker keeps what it accepts across a crash (the
    /// durable log or Kafka).
    pub fn durable(&self) -> bool {
        self.broker.is_durable()
    }

    /// Hand `events` to the broker, exactly like events POSTed to the
    /// ingress: stored as the broker promises, then routed. Returns once
    /// they are stored and their deliveries have started.
    ///
    /// # Errors
    /// [`EmitError::Refused`] when the broker did not take them.
    pub async fn publish(&self, events: Vec<Event>) -> Result<(), EmitError> {
        Ok(self.broker.publish(events).await?)
    }

    /// Route `event` without storing it and wait until every delivery of
    /// it ended: for events whose own log is their origin (an ordered
    /// Kafka source commits the offset only afterwards, and not when the
    /// host stopped first: [`Ended::Abandoned`]).
    pub async fn route_and_wait(&self, event: Event) -> Ended {
        self.broker.route_and_wait(event).await
    }

    /// Deliver `event` from the source `source` to `to` with `opts`
    /// (retries, backoff, timeout, dead letter; default one attempt), the
    /// way a trigger delivers to its subscriber. Returns the destination's
    /// reply once the delivery has ended.
    ///
    /// # Errors
    /// [`EmitError::Undeliverable`] when it failed for good (after the dead
    /// letter, if any, was tried).
    pub async fn deliver(
        &self,
        source: &str,
        to: &Destination,
        event: Event,
        opts: Option<&DeliverySpec>,
    ) -> Result<Option<Event>, EmitError> {
        self.dispatcher
            .deliver_from_source(source, to, event, opts)
            .await
            .map_err(EmitError::from)
    }
}
