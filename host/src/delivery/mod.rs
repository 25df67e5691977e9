//! Dispatching accepted events: each matching trigger gets its own task
//! that runs the trigger's function and hands the reply to its sink.
//!
//! # Backpressure
//! At most `max_in_flight` deliveries run at once. [`Dispatcher::dispatch`]
//! waits for room before it returns, so a client that sends faster than
//! handlers finish is slowed down at the ingress instead of filling memory.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::event::Event;
use crate::metrics::{DeliveryMetrics, Outcome};
use crate::routing::{Route, Routes};
use crate::runtime::Runtime;
use crate::sinks::Sinks;

/// Runs deliveries for accepted events.
pub struct Dispatcher {
    runtime: Arc<Runtime>,
    routes: Arc<Routes>,
    sinks: Sinks,
    metrics: DeliveryMetrics,
    permits: Arc<Semaphore>,
    tasks: TaskTracker,
}

impl Dispatcher {
    /// A dispatcher running at most `max_in_flight` deliveries at once.
    pub fn new(
        runtime: Arc<Runtime>,
        routes: Arc<Routes>,
        sinks: Sinks,
        metrics: DeliveryMetrics,
        max_in_flight: usize,
    ) -> Self {
        Self {
            runtime,
            routes,
            sinks,
            metrics,
            permits: Arc::new(Semaphore::new(max_in_flight)),
            tasks: TaskTracker::new(),
        }
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
        self.metrics.accepted();
        let routes = self.routes.matching(&event);
        let matched = routes.len();
        if matched == 0 {
            tracing::debug!(event_id = %event.id, r#type = %event.ty, "no trigger matched");
        }
        let event = Arc::new(event);
        for route in routes {
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                break; // closed: shutting down
            };
            let runtime = self.runtime.clone();
            let sinks = self.sinks.clone();
            let metrics = self.metrics.clone();
            let event = event.clone();
            let done = done.clone();
            self.tasks.spawn(async move {
                let outcome = deliver(&runtime, &sinks, &route, &event).await;
                metrics.delivery(route.name.as_str(), outcome);
                drop(permit);
                drop(done);
            });
        }
        matched
    }

    /// Stop taking new work and wait for running deliveries to finish.
    pub async fn drain(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Run one trigger's function on `event` and forward the reply.
async fn deliver(runtime: &Runtime, sinks: &Sinks, route: &Route, event: &Event) -> Outcome {
    let function = &route.spec.function;
    let reply = match runtime.invoke(function, event).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(trigger = %route.name, %function, event_id = %event.id, kind = e.kind().as_str(), "delivery failed: {e}");
            return Outcome::FunctionFailed;
        }
    };
    let (Some(reply), Some(sink)) = (reply, &route.spec.sink) else {
        tracing::debug!(trigger = %route.name, event_id = %event.id, "delivered, no reply forwarded");
        return Outcome::Delivered;
    };
    match sinks.send(sink, &reply).await {
        Ok(()) => {
            tracing::debug!(trigger = %route.name, event_id = %event.id, reply_id = %reply.id, %sink, "reply forwarded");
            Outcome::Delivered
        }
        Err(e) => {
            tracing::error!(trigger = %route.name, event_id = %event.id, reply_id = %reply.id, "forwarding the reply failed: {e}");
            Outcome::SinkFailed
        }
    }
}
