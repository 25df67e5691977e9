//! Delivering routed events: each matching trigger gets its own task that
//! sends the event to the trigger's subscriber (with retries and a dead
//! letter) and routes the reply; sequences and parallels run in-process.
//!
//! # Backpressure
//! At most `max_in_flight` trigger deliveries started by the ingress run at
//! once. [`Dispatcher::dispatch`] waits for room before it returns, so a
//! client that sends faster than handlers finish is slowed down at the
//! ingress instead of filling memory. A reply routed back to the broker
//! never waits for a slot while holding its own: it is handed to the
//! [`Reentry`] (the broker), which stores it and starts its deliveries
//! later from a task of its own, so a full dispatcher cannot deadlock.

mod engine;
mod failure;

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::{DeliverySpec, Destination};
use crate::event::Event;
use crate::kafka::KafkaSinks;
use crate::metrics::{DeliveryMetrics, RoutingMetrics};
use crate::routing::Routes;
use crate::runtime::Runtime;
use crate::sinks::HttpSink;

pub use engine::{hops_of, BoxFut, DEFAULT_HOPS, HOPS_EXTENSION};
pub use failure::{Failure, Undelivered, ERROR_CODE, ERROR_DATA, ERROR_DEST};

use engine::Engine;

/// A broker refusal, as the delivery engine sees it (retryable).
pub type ReentryError = Box<dyn std::error::Error + Send + Sync>;

/// The way back into the broker for replies bound for it (`reply =
/// "broker"`): implemented by [`crate::broker::Broker`], attached with
/// [`Dispatcher::attach_broker`].
pub trait Reentry: Send + Sync {
    /// Accept `event`, a reply of `sender` (e.g. `reply/trigger/t`) with
    /// its hop counter already decremented, as durably as the broker
    /// accepts anything: `Ok` once it is stored (fsync'd in the durable
    /// log, acknowledged by Kafka). Its deliveries start later; this never
    /// waits for a delivery slot.
    fn reenter<'a>(&'a self, sender: &'a str, event: Event)
        -> BoxFut<'a, Result<(), ReentryError>>;
}

/// Runs deliveries for accepted events; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    engine: Engine,
    permits: Arc<Semaphore>,
}

impl Dispatcher {
    /// A dispatcher running at most `max_in_flight` deliveries at once.
    pub fn new(
        runtime: Arc<Runtime>,
        routes: Arc<Routes>,
        http: HttpSink,
        kafka: KafkaSinks,
        metrics: DeliveryMetrics,
        routing: RoutingMetrics,
        max_in_flight: usize,
    ) -> Self {
        Self {
            engine: Engine::new(runtime, routes, http, kafka, metrics, routing),
            permits: Arc::new(Semaphore::new(max_in_flight)),
        }
    }

    /// Send replies bound for the broker to `broker` (held weakly: the
    /// broker owns this dispatcher). Until then such replies fail.
    pub fn attach_broker(&self, broker: std::sync::Weak<dyn Reentry>) {
        let _ = self.engine.broker.set(broker);
    }

    /// Start delivering `event` to every matching trigger. Returns how many
    /// triggers matched, once each delivery has been started.
    pub async fn dispatch(&self, event: Event) -> usize {
        self.start(event, None).await
    }

    /// Like [`Dispatcher::dispatch`], but the returned future completes once
    /// every delivery of `event` has ended (delivered or failed for good),
    /// so a durable log can forget the event only then.
    pub async fn dispatch_tracked(
        &self,
        event: Event,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (done, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
        self.start(event, Some(done)).await;
        async move {
            // `None` once every delivery task has dropped its sender.
            let _ = all_done.recv().await;
        }
    }

    async fn start(&self, event: Event, done: Option<tokio::sync::mpsc::Sender<()>>) -> usize {
        let e = &self.engine;
        e.metrics.accepted();
        let Some(hops) = e.check_hops(&event, "ingress", "ingress") else {
            return 0;
        };
        let snapshot = e.routes.compiled();
        let matched: Vec<usize> = snapshot.matching(&event).map(|(i, _)| i).collect();
        if matched.is_empty() {
            tracing::debug!(event_id = %event.id, r#type = %event.ty, "no trigger matched");
        }
        let count = matched.len();
        for index in matched {
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                break; // closed: shutting down
            };
            let engine = e.clone();
            let snapshot = snapshot.clone();
            let event = event.clone();
            let done = done.clone();
            e.tasks.spawn(async move {
                engine.run_trigger(&snapshot, index, event, hops).await;
                drop(permit);
                drop(done);
            });
        }
        count
    }

    /// Deliver `event` from an event source named `source` to `to` with
    /// `opts` (retries, backoff, timeout, dead letter; default one
    /// attempt), the way a trigger delivers to its subscriber. Returns the
    /// destination's reply once the delivery has ended.
    ///
    /// # Errors
    /// [`Undelivered`] when it failed for good (after the dead letter, if
    /// any, was tried) or its hop counter was spent.
    pub async fn deliver_from_source(
        &self,
        source: &str,
        to: &Destination,
        event: Event,
        opts: Option<&DeliverySpec>,
    ) -> Result<Option<Event>, Undelivered> {
        let e = &self.engine;
        let hops = e
            .check_hops(&event, "source", source)
            .ok_or_else(|| Undelivered {
                destination: to.label(),
                kind: "hop_limit",
                reason: "the hop limit was reached".into(),
                dead_lettered: false,
            })?;
        let snapshot = e.routes.compiled();
        e.deliver_as("source", source, &snapshot, to, event, opts, hops)
            .await
    }

    /// Stop taking new work and wait for running deliveries to finish.
    pub async fn drain(&self) {
        self.engine.tasks.close();
        self.engine.tasks.wait().await;
    }
}
