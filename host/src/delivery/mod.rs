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

pub use engine::{hops_of, BoxFut, InvalidHops, DEFAULT_HOPS, HOPS_EXTENSION};
pub use failure::{
    Failure, Undelivered, ERROR_CODE, ERROR_DATA, ERROR_DEST, KNATIVE_ERROR_CODE,
    KNATIVE_ERROR_DATA, KNATIVE_ERROR_DATA_MAX, KNATIVE_ERROR_DEST,
};

use engine::{Engine, Missed};

/// How the deliveries of one event ended (see
/// [`Dispatcher::dispatch_tracked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Ended {
    /// Every delivery ended: delivered, or failed for good (dead-lettered
    /// or dropped). A log may forget the event.
    Completed,
    /// The host stopped before at least one of them ended: the event is
    /// still owed, and a log keeps it for the next start.
    Abandoned,
}

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
    /// every delivery of `event` has ended (delivered or failed for good:
    /// [`Ended::Completed`], so a durable log can forget the event only
    /// then), or as soon as one was abandoned because the host is stopping
    /// ([`Ended::Abandoned`]: the log keeps it).
    pub async fn dispatch_tracked(
        &self,
        event: Event,
    ) -> impl std::future::Future<Output = Ended> + Send + 'static {
        // A delivery that is abandoned sends `()`; one that ends just drops
        // its sender.
        let (abandoned, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        self.start(event, Some(abandoned)).await;
        async move {
            match rx.recv().await {
                Some(()) => Ended::Abandoned,
                // Every delivery task ended and dropped its sender.
                None => Ended::Completed,
            }
        }
    }

    async fn start(&self, event: Event, abandoned: Option<tokio::sync::mpsc::Sender<()>>) -> usize {
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
                // Closed: the host is stopping and abandoned its deliveries.
                tracing::warn!(event_id = %event.id, "delivery abandoned: the host is stopping (a durable broker delivers the event again after the restart)");
                report_abandoned(abandoned.as_ref());
                break;
            };
            let engine = e.clone();
            let snapshot = snapshot.clone();
            let event = event.clone();
            let abandoned = abandoned.clone();
            e.tasks.spawn(async move {
                let ended = engine.run_trigger(&snapshot, index, event, hops).await;
                drop(permit);
                if ended == Ended::Abandoned {
                    report_abandoned(abandoned.as_ref());
                }
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
        match e
            .deliver_as("source", source, &snapshot, to, event, opts, hops)
            .await
        {
            Ok(reply) => Ok(reply),
            Err(Missed::Failed(u) | Missed::ReplyFailed(u)) => Err(u),
            Err(Missed::Abandoned) => Err(Undelivered {
                destination: to.label(),
                kind: "abandoned",
                reason: "the host is stopping".into(),
                dead_lettered: false,
            }),
        }
    }

    /// The host is stopping: every backoff wait ends now (and any that
    /// starts later ends at once), and its delivery is abandoned without a
    /// further attempt or a dead letter. Running attempts go on.
    pub fn stop(&self) {
        self.engine.stopping.cancel();
    }

    /// The shutdown grace period is over: abandon every delivery still
    /// running or waiting for a slot (each ends with [`Ended::Abandoned`]),
    /// and start no more.
    pub fn abandon(&self) {
        self.engine.stopping.cancel();
        self.engine.abandoning.cancel();
        self.permits.close();
    }

    /// Stop taking new work and wait for running deliveries to finish.
    pub async fn drain(&self) {
        self.engine.tasks.close();
        self.engine.tasks.wait().await;
    }
}

/// Tell a tracked dispatch that one of its deliveries was abandoned.
fn report_abandoned(abandoned: Option<&tokio::sync::mpsc::Sender<()>>) {
    if let Some(tx) = abandoned {
        // Full: another delivery of the event already said so.
        let _ = tx.try_send(());
    }
}
