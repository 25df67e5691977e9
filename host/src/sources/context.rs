//! What a running source is given: the way into routing, the delivery
//! engine, the shutdown signal and the metrics (Vector's `SourceContext`).
//! A source never holds the host itself.
//!
//! The `publish*` and [`SourceContext::deliver`] methods are the one seam
//! between sources and routing: every event a source produces passes
//! through them.

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::{DeliverySpec, Destination};
use crate::delivery::Dispatcher;
use crate::durable::{DurableIngress, LogError};
use crate::event::Event;
use crate::metrics::Metrics;

/// The handles a source runs with. Cheap to clone.
#[derive(Clone)]
pub struct SourceContext {
    dispatcher: Arc<Dispatcher>,
    durable: Option<Arc<DurableIngress>>,
    shutdown: CancellationToken,
    metrics: Metrics,
}

/// A source event that was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// Its delivery failed for good; the delivery engine logged why and
    /// what it did with the event (dead letter or dropped).
    #[error("the delivery failed for good")]
    Undeliverable,
    /// The durable log refused it (full or failing).
    #[error("the durable log refused it: {0}")]
    Refused(#[from] LogError),
    /// There is no durable log to accept it.
    #[error("durability is disabled")]
    NoDurableLog,
}

impl SourceContext {
    /// A context over the host's routing and delivery, with a fresh
    /// shutdown signal.
    pub fn new(
        dispatcher: Arc<Dispatcher>,
        durable: Option<Arc<DurableIngress>>,
        metrics: Metrics,
    ) -> Self {
        Self {
            dispatcher,
            durable,
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

    /// Whether events can be handed on durably
    /// ([`SourceContext::publish_durably`]).
    pub fn durable(&self) -> bool {
        self.durable.is_some()
    }

    /// Route `event` like an event POSTed to the ingress. Returns how many
    /// triggers matched, once their deliveries have started.
    pub async fn publish(&self, event: Event) -> usize {
        self.dispatcher.dispatch(event).await
    }

    /// Like [`SourceContext::publish`], but the returned future completes
    /// once every delivery of `event` has ended.
    pub async fn publish_tracked(&self, event: Event) -> impl Future<Output = ()> + Send + 'static {
        self.dispatcher.dispatch_tracked(event).await
    }

    /// Store `events` in the durable log, then route them. Returns once
    /// they are stored and their deliveries have started.
    ///
    /// # Errors
    /// When the log refuses them or there is none; nothing was stored then.
    pub async fn publish_durably(&self, events: Vec<Event>) -> Result<(), EmitError> {
        let durable = self.durable.as_ref().ok_or(EmitError::NoDurableLog)?;
        Ok(durable.accept(&self.dispatcher, events).await?)
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
            .map_err(|()| EmitError::Undeliverable)
    }
}
