//! The delivery engine: send an event to a [`Destination`] with retries and
//! a dead letter, route replies, run sequences and parallels in-process.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::failure::{Failure, Undelivered};
use super::{Ended, Reentry};
use crate::cloudevents::Mode;
use crate::config::{apply_extensions, DeliverySpec, Destination, SequenceSpec};
use crate::event::{Event, ExtensionValue};
use crate::kafka::KafkaSinks;
use crate::metrics::{DeliveryMetrics, Outcome, RoutingMetrics};
use crate::name::Name;
use crate::routing::{Compiled, Parallel, Routes, SinkTarget, Trigger};
use crate::runtime::Runtime;
use crate::sinks::{log_event, HttpSink, SinkError};

/// The hop counter extension (Knative's broker TTL): decremented each time
/// a reply passes through the broker again; at 0 the event is dropped.
pub const HOPS_EXTENSION: &str = "sluicehops";
/// Hops an event without the extension starts with.
pub const DEFAULT_HOPS: u32 = 255;

/// A `sluicehops` extension that is not a hop count (a non-negative
/// integer, or a string of decimal digits as binary mode carries it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("extension `{HOPS_EXTENSION}` must be a non-negative integer, not `{0}`")]
pub struct InvalidHops(String);

/// The hop counter an event carries (default [`DEFAULT_HOPS`]); values
/// above the default are capped to it.
///
/// # Errors
/// [`InvalidHops`] when the extension is not a non-negative integer
/// (`"abc"`, `-3`, `true`).
pub fn hops_of(event: &Event) -> Result<u32, InvalidHops> {
    let v = match event.extensions.get(HOPS_EXTENSION) {
        None => return Ok(DEFAULT_HOPS),
        Some(ExtensionValue::Integer(i)) => u64::try_from(*i).ok(),
        Some(ExtensionValue::String(s)) => s.trim().parse::<u64>().ok(),
        Some(ExtensionValue::Boolean(_)) => None,
    };
    let Some(v) = v else {
        let shown = event
            .extensions
            .get(HOPS_EXTENSION)
            .map(ToString::to_string);
        return Err(InvalidHops(shown.unwrap_or_default()));
    };
    Ok(u32::try_from(v).unwrap_or(u32::MAX).min(DEFAULT_HOPS))
}

/// Where a delivery failed when the broker did not store its reply.
const BROKER: &Destination = &Destination::Broker;

/// A boxed future, for recursive delivery and the [`Reentry`] trait.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which leg of a route a delivery is: only a subscriber's 2xx body is a
/// reply; a reply destination's, sink's or dead letter's is ignored (a
/// webhook answering `200 ok` has taken the event).
#[derive(Debug, Clone, Copy)]
enum Leg<'a> {
    /// A trigger's or branch's subscriber, or a sequence step: its reply
    /// is returned.
    Subscriber,
    /// A subscriber whose reply, sent by `sender`, goes to the broker. Each
    /// attempt hands the reply over, so a reply the broker cannot store
    /// fails the attempt and the entire delivery is retried (the
    /// subscriber is called again), as Knative's control-plane spec
    /// requires of a trigger.
    SubscriberToBroker {
        /// Whose reply it is (the trigger, branch or sequence).
        sender: &'a Who,
    },
    /// A reply destination, a source's sink or a dead letter.
    Destination,
}

impl<'a> Leg<'a> {
    /// The leg of a subscriber whose replies, sent by `sender`, go to
    /// `reply`.
    fn subscriber(reply: Option<&Destination>, sender: &'a Who) -> Self {
        if reply == Some(&Destination::Broker) {
            Self::SubscriberToBroker { sender }
        } else {
            Self::Subscriber
        }
    }

    /// Whether the destination's answer may carry a reply.
    fn is_subscriber(self) -> bool {
        !matches!(self, Self::Destination)
    }
}

/// Why [`Engine::deliver`] did not deliver.
#[derive(Debug)]
pub(super) enum Missed {
    /// It failed for good: logged, counted, dead-lettered or dropped.
    Failed(Undelivered),
    /// The same, when the last attempt's subscriber took the event but the
    /// broker did not store its reply ([`Leg::SubscriberToBroker`]).
    ReplyFailed(Undelivered),
    /// The host is stopping: a backoff wait was cut short, so there is no
    /// further attempt and no dead letter (a durable broker keeps the
    /// event and delivers it again after the restart).
    Abandoned,
}

/// How the attempts at one destination ended ([`Engine::attempts`]).
enum Tried {
    /// One succeeded, with the destination's reply.
    Done(Option<Event>),
    /// The last one failed, its retries spent or its failure not retryable.
    Failed {
        failure: Failure,
        /// Whether it was the reply that the broker refused
        /// ([`Leg::SubscriberToBroker`]), not the destination that failed.
        reply: bool,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The host is stopping: a backoff wait was cut short.
    Abandoned,
}

/// Who is delivering, for logs and metrics (`kind` is trigger, sink, step,
/// branch, reply, dead-letter).
#[derive(Debug, Clone)]
struct Who {
    kind: &'static str,
    name: String,
}

impl Who {
    /// Who delivers this one's reply: kind `reply`, named after the sender
    /// (e.g. `trigger/rates`).
    fn reply(&self) -> Self {
        Self {
            kind: "reply",
            name: format!("{}/{}", self.kind, self.name),
        }
    }

    /// Who delivers to this one's dead letter: kind `dead-letter`, named
    /// after the sender (e.g. `trigger/rates`).
    fn dead_letter(&self) -> Self {
        Self {
            kind: "dead-letter",
            name: format!("{}/{}", self.kind, self.name),
        }
    }
}

/// Shared state of every delivery; cheap to clone.
#[derive(Clone)]
pub(super) struct Engine {
    runtime: Arc<Runtime>,
    pub(super) routes: Arc<Routes>,
    http: HttpSink,
    pub(super) kafka: KafkaSinks,
    pub(super) metrics: DeliveryMetrics,
    pub(super) routing: RoutingMetrics,
    pub(super) tasks: TaskTracker,
    /// Where replies bound for the broker go (set once at start-up).
    pub(super) broker: Arc<OnceLock<Weak<dyn Reentry>>>,
    /// Cancelled when the host stops: every backoff wait ends at once, and
    /// its delivery is abandoned.
    pub(super) stopping: CancellationToken,
    /// Cancelled when the shutdown grace period ends: every delivery still
    /// running is abandoned.
    pub(super) abandoning: CancellationToken,
}

impl Engine {
    pub(super) fn new(
        runtime: Arc<Runtime>,
        routes: Arc<Routes>,
        http: HttpSink,
        kafka: KafkaSinks,
        metrics: DeliveryMetrics,
        routing: RoutingMetrics,
    ) -> Self {
        Self {
            runtime,
            routes,
            http,
            kafka,
            metrics,
            routing,
            tasks: TaskTracker::new(),
            broker: Arc::new(OnceLock::new()),
            stopping: CancellationToken::new(),
            abandoning: CancellationToken::new(),
        }
    }

    /// The event's hop counter, or `None` (logged and counted as a hop
    /// limit drop) when it is already spent or not a count (the ingress
    /// refuses those with a 400; other sources' are dropped here).
    pub(super) fn check_hops(&self, event: &Event, kind: &str, name: &str) -> Option<u32> {
        let hops = match hops_of(event) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(event_id = %event.id, r#type = %event.ty, kind, name, "invalid hop counter: event dropped: {e}");
                self.routing.hop_limit(kind, name);
                return None;
            }
        };
        if hops == 0 {
            tracing::warn!(event_id = %event.id, r#type = %event.ty, kind, name, "hop limit reached: event dropped");
            self.routing.hop_limit(kind, name);
            return None;
        }
        Some(hops)
    }

    /// Deliver `event` to trigger number `index` of `snapshot` and route
    /// the reply; abandoned (at once) when the shutdown grace period ends
    /// first.
    pub(super) async fn run_trigger(
        &self,
        snapshot: &Arc<Compiled>,
        index: usize,
        event: Event,
        hops: u32,
    ) -> Ended {
        let Some(spec) = snapshot.triggers().get(index) else {
            return Ended::Completed;
        };
        let name = &spec.name;
        let id = event.id.clone();
        let outcome = tokio::select! {
            biased;
            () = self.abandoning.cancelled() => {
                tracing::warn!(trigger = %name, event_id = %id, "delivery abandoned: still running when the shutdown grace period ended (a durable broker delivers the event again after the restart)");
                Outcome::Abandoned
            }
            outcome = self.trigger_outcome(snapshot, spec, event, hops) => outcome,
        };
        self.metrics.delivery(name.as_str(), outcome);
        if outcome == Outcome::Abandoned {
            Ended::Abandoned
        } else {
            Ended::Completed
        }
    }

    /// Deliver `event` to the subscriber of trigger `spec` and route the
    /// reply.
    async fn trigger_outcome(
        &self,
        snapshot: &Arc<Compiled>,
        spec: &Trigger,
        mut event: Event,
        hops: u32,
    ) -> Outcome {
        let who = Who {
            kind: "trigger",
            name: spec.name.to_string(),
        };
        apply_extensions(&mut event, &spec.extensions);
        let subscriber = &spec.subscriber;
        let opts = spec.delivery.as_ref();
        // A reply bound for the broker is stored within each attempt.
        let leg = Leg::subscriber(spec.reply.as_ref(), &who);
        match self
            .deliver(snapshot, &who, subscriber, leg, event, opts, hops, None)
            .await
        {
            Err(Missed::Failed(u)) => Outcome::SubscriberFailed(u.kind),
            Err(Missed::ReplyFailed(u)) => Outcome::ReplyFailed(u.kind),
            Err(Missed::Abandoned) => Outcome::Abandoned,
            Ok(None) => Outcome::Delivered,
            Ok(Some(reply)) => {
                // The trigger's delivery options cover its reply leg too.
                match self
                    .reply(snapshot, &who, spec.reply.as_ref(), reply, opts, hops, None)
                    .await
                {
                    Ok(()) => Outcome::Delivered,
                    Err(Missed::Failed(u) | Missed::ReplyFailed(u)) => Outcome::ReplyFailed(u.kind),
                    Err(Missed::Abandoned) => Outcome::Abandoned,
                }
            }
        }
    }

    /// [`Engine::deliver`] on behalf of something outside the routing
    /// table (`kind` names it in logs and metrics, e.g. a source).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn deliver_as(
        &self,
        kind: &'static str,
        name: &str,
        snapshot: &Arc<Compiled>,
        to: &Destination,
        event: Event,
        opts: Option<&DeliverySpec>,
        hops: u32,
    ) -> Result<Option<Event>, Missed> {
        let who = Who {
            kind,
            name: name.to_owned(),
        };
        self.deliver(
            snapshot,
            &who,
            to,
            Leg::Destination,
            event,
            opts,
            hops,
            None,
        )
        .await
    }

    /// Route `reply` to `to` with the sender's delivery options `opts`
    /// (retries, backoff, dead letter, else `fallback`; a named sink's own
    /// when the sender gives none); `Ok` when it got there (or was meant
    /// to go nowhere).
    #[allow(clippy::too_many_arguments)]
    async fn reply(
        &self,
        snapshot: &Arc<Compiled>,
        who: &Who,
        to: Option<&Destination>,
        reply: Event,
        opts: Option<&DeliverySpec>,
        hops: u32,
        fallback: Option<&Destination>,
    ) -> Result<(), Missed> {
        let Some(to) = to else {
            tracing::debug!(kind = who.kind, name = %who.name, reply_id = %reply.id, "reply has no destination: dropped");
            return Ok(());
        };
        // Counted apart from the subscriber's delivery, as kind `reply`
        // named after its sender (e.g. `trigger/rates`).
        let who = &who.reply();
        match self
            .deliver(
                snapshot,
                who,
                to,
                Leg::Destination,
                reply,
                opts,
                hops,
                fallback,
            )
            .await
        {
            Ok(Some(r)) => {
                tracing::debug!(kind = who.kind, name = %who.name, reply_id = %r.id, destination = %to, "the reply destination replied; that reply is dropped");
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(m) => Err(m),
        }
    }

    /// Send `event` to `to` with the delivery options (`opts`, or a named
    /// sink's own), retrying and dead-lettering (to `fallback`, the dead
    /// letter of the step, branch or trigger that runs this delivery, when
    /// the options name none). `Ok` carries the reply;
    /// [`Missed::Abandoned`] when the host stopped during a backoff wait.
    #[allow(clippy::too_many_arguments)]
    fn deliver<'a>(
        &'a self,
        snapshot: &'a Arc<Compiled>,
        who: &'a Who,
        to: &'a Destination,
        leg: Leg<'a>,
        event: Event,
        opts: Option<&'a DeliverySpec>,
        hops: u32,
        fallback: Option<&'a Destination>,
    ) -> BoxFut<'a, Result<Option<Event>, Missed>> {
        Box::pin(async move {
            let sink_opts = match to {
                Destination::Sink(n) => snapshot.sink(n).and_then(|s| s.delivery.as_ref()),
                _ => None,
            };
            let default = DeliverySpec::default();
            let opts = opts.or(sink_opts).unwrap_or(&default);
            let dead_letter = opts.dead_letter.as_ref().or(fallback);
            let tried = self
                .attempts(snapshot, who, to, leg, &event, opts, hops, dead_letter)
                .await;
            let (failure, reply, attempts) = match tried {
                Tried::Done(reply) => {
                    self.routing.delivered(who.kind, &who.name);
                    if let Destination::Sink(n) = to {
                        self.routing.delivered("sink", n.as_str());
                    }
                    return Ok(reply);
                }
                Tried::Abandoned => return Err(Missed::Abandoned),
                Tried::Failed {
                    failure: Failure::Inner(u),
                    ..
                } => {
                    // A step or branch inside `to` failed for good; its
                    // own delivery logged, counted and dead-lettered it.
                    tracing::error!(kind = who.kind, name = %who.name, event_id = %event.id, destination = %to, "delivery failed inside {to}: {u}");
                    return Err(Missed::Failed(u));
                }
                Tried::Failed {
                    failure,
                    reply,
                    attempts,
                } => (failure, reply, attempts),
            };
            // Where it failed: the destination, or the broker that did not
            // store its reply.
            let at = if reply { BROKER } else { to };
            let trigger = if who.kind == "trigger" {
                who.name.as_str()
            } else {
                ""
            };
            tracing::error!(kind = who.kind, name = %who.name, trigger, event_id = %event.id, destination = %at, attempts, error_kind = failure.kind(), "delivery failed: {failure}");
            let dead_lettered = match self
                .dead_letter(
                    snapshot,
                    who,
                    to,
                    at,
                    event,
                    &failure,
                    dead_letter,
                    opts,
                    hops,
                )
                .await
            {
                Some(taken) => taken,
                None => return Err(Missed::Abandoned),
            };
            let undelivered = Undelivered {
                destination: at.label(),
                kind: failure.kind(),
                reason: failure.to_string(),
                dead_lettered,
            };
            Err(if reply {
                Missed::ReplyFailed(undelivered)
            } else {
                Missed::Failed(undelivered)
            })
        })
    }

    /// Attempt `to` with `event` until an attempt succeeds, the retries of
    /// `opts` are spent, a failure is not retryable, or the host stops
    /// during a backoff wait. Retries are counted against `who` (and a
    /// named sink). On a [`Leg::SubscriberToBroker`], an attempt includes
    /// storing the reply in the broker.
    #[allow(clippy::too_many_arguments)]
    async fn attempts(
        &self,
        snapshot: &Arc<Compiled>,
        who: &Who,
        to: &Destination,
        leg: Leg<'_>,
        event: &Event,
        opts: &DeliverySpec,
        hops: u32,
        dead_letter: Option<&Destination>,
    ) -> Tried {
        let mut attempt = 0u32;
        loop {
            let sent = self
                .send(
                    snapshot,
                    who,
                    to,
                    leg,
                    event.clone(),
                    hops,
                    opts.timeout,
                    dead_letter,
                )
                .await;
            let (result, reply) = match (leg, sent) {
                (Leg::SubscriberToBroker { sender }, Ok(Some(reply))) => (
                    self.store_reply(sender, reply, hops).await.map(|()| None),
                    true,
                ),
                (_, sent) => (sent, false),
            };
            match result {
                Ok(reply) => {
                    tracing::debug!(kind = who.kind, name = %who.name, event_id = %event.id, destination = %to, attempt, "delivered");
                    return Tried::Done(reply);
                }
                Err(Failure::Abandoned) => return Tried::Abandoned,
                Err(f) if f.retryable() && attempt < opts.retry => {
                    attempt += 1;
                    let mut delay = opts.delay(attempt);
                    if let Some(ra) = f.retry_after() {
                        delay = delay.max(ra.min(opts.retry_after_max));
                    }
                    let at = if reply { BROKER } else { to };
                    tracing::warn!(kind = who.kind, name = %who.name, event_id = %event.id, destination = %at, attempt, delay_ms = delay.as_millis() as u64, error = %f, "attempt failed; retrying");
                    self.routing.retried(who.kind, &who.name);
                    if let Destination::Sink(n) = to {
                        self.routing.retried("sink", n.as_str());
                    }
                    if !self.backoff(delay).await {
                        tracing::warn!(kind = who.kind, name = %who.name, event_id = %event.id, destination = %to, attempt, "delivery abandoned: the host is stopping during its backoff (no further attempt, no dead letter; a durable broker delivers the event again after the restart)");
                        return Tried::Abandoned;
                    }
                }
                Err(failure) => {
                    return Tried::Failed {
                        failure,
                        reply,
                        attempts: attempt + 1,
                    }
                }
            }
        }
    }

    /// Hand `reply`, the reply of `sender`'s subscriber, to the broker
    /// (counted as kind `reply`); `Ok` once it is stored.
    async fn store_reply(&self, sender: &Who, reply: Event, hops: u32) -> Result<(), Failure> {
        let who = sender.reply();
        self.reenter(&who, reply, hops).await?;
        self.routing.delivered(who.kind, &who.name);
        Ok(())
    }

    /// Wait `delay` before a retry; `false` (at once) when the host is
    /// stopping.
    async fn backoff(&self, delay: Duration) -> bool {
        tokio::select! {
            biased;
            () = self.stopping.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }

    /// Hand `event`, whose delivery to `to` failed for good at `at` (`to`,
    /// or the broker that did not store its reply), to the dead letter
    /// `dl`, retried with the delivery's own options `opts` (Knative's
    /// spec: the same `retry` and backoff), or (without one) log and count
    /// it. Whether the dead letter took it; `None` when the host stopped
    /// during a backoff wait (abandoned, like the delivery).
    #[allow(clippy::too_many_arguments)]
    async fn dead_letter(
        &self,
        snapshot: &Arc<Compiled>,
        who: &Who,
        to: &Destination,
        at: &Destination,
        mut event: Event,
        failure: &Failure,
        dl: Option<&Destination>,
        opts: &DeliverySpec,
        hops: u32,
    ) -> Option<bool> {
        let sink_name = match to {
            Destination::Sink(n) => Some(n.as_str()),
            _ => None,
        };
        let Some(dl) = dl else {
            let trigger = if who.kind == "trigger" {
                who.name.as_str()
            } else {
                ""
            };
            tracing::error!(kind = who.kind, name = %who.name, trigger, event_id = %event.id, destination = %at, "undeliverable: no dead letter configured, event dropped");
            self.routing.undeliverable(who.kind, &who.name);
            if let Some(n) = sink_name {
                self.routing.undeliverable("sink", n);
            }
            return Some(false);
        };
        failure.annotate(&mut event, &at.label());
        let tried = self
            .attempts(
                snapshot,
                &who.dead_letter(),
                dl,
                Leg::Destination,
                &event,
                opts,
                hops,
                None,
            )
            .await;
        let id = &event.id;
        match tried {
            Tried::Done(_) => {
                tracing::info!(kind = who.kind, name = %who.name, event_id = %id, dead_letter = %dl, "sent to the dead letter");
                self.routing.dead_lettered(who.kind, &who.name);
                if let Some(n) = sink_name {
                    self.routing.dead_lettered("sink", n);
                }
                Some(true)
            }
            Tried::Abandoned => None,
            Tried::Failed {
                failure, attempts, ..
            } => {
                tracing::error!(kind = who.kind, name = %who.name, event_id = %id, dead_letter = %dl, attempts, "undeliverable: the dead letter failed too, event dropped: {failure}");
                self.routing.undeliverable(who.kind, &who.name);
                Some(false)
            }
        }
    }

    /// One attempt at `to`. A sequence or parallel runs its steps or
    /// branches, each with its own retries and dead letter (else
    /// `dead_letter`, the one of this delivery), and fails with
    /// [`Failure::Inner`] when one failed for good. The broker fails when
    /// it cannot store the event (a full log, Kafka down).
    #[allow(clippy::too_many_arguments)]
    fn send<'a>(
        &'a self,
        snapshot: &'a Arc<Compiled>,
        who: &'a Who,
        to: &'a Destination,
        leg: Leg<'a>,
        mut event: Event,
        hops: u32,
        timeout: Option<Duration>,
        dead_letter: Option<&'a Destination>,
    ) -> BoxFut<'a, Result<Option<Event>, Failure>> {
        Box::pin(async move {
            match to {
                Destination::Function(f) => {
                    let call = self.runtime.invoke(f, &event);
                    match timeout {
                        Some(t) => match tokio::time::timeout(t, call).await {
                            Ok(r) => r.map_err(Failure::from),
                            Err(_) => Err(Failure::FunctionTimeout(t)),
                        },
                        None => call.await.map_err(Failure::from),
                    }
                }
                Destination::Url(u) if leg.is_subscriber() => Ok(self
                    .http
                    .post(u, &event, Mode::Binary, &Default::default(), timeout)
                    .await?),
                Destination::Url(u) => {
                    self.http
                        .deliver(u, &event, Mode::Binary, &Default::default(), timeout)
                        .await?;
                    Ok(None)
                }
                Destination::Env(e) => {
                    apply_extensions(&mut event, &e.extensions);
                    let http = self.http.for_sink_binding();
                    if leg.is_subscriber() {
                        return Ok(http
                            .post(&e.url, &event, Mode::Binary, &Default::default(), timeout)
                            .await?);
                    }
                    http.deliver(&e.url, &event, Mode::Binary, &Default::default(), timeout)
                        .await?;
                    Ok(None)
                }
                Destination::Sink(n) => {
                    let spec = snapshot
                        .sink(n)
                        .ok_or_else(|| Failure::Missing(format!("sink `{n}`")))?;
                    apply_extensions(&mut event, &spec.extensions);
                    match &spec.target {
                        SinkTarget::Http { url, mode, headers } => {
                            // Sinks are ends of a route: a body they send back is ignored.
                            self.http
                                .deliver(url, &event, *mode, headers, timeout)
                                .await?;
                        }
                        SinkTarget::Log => log_event(&event),
                    }
                    Ok(None)
                }
                Destination::Sequence(n) => {
                    let spec = snapshot
                        .sequence(n)
                        .ok_or_else(|| Failure::Missing(format!("sequence `{n}`")))?;
                    self.run_sequence(snapshot, n, spec, event, hops, dead_letter)
                        .await
                        .map_err(Failure::from)
                }
                Destination::Parallel(n) => {
                    let spec = snapshot
                        .parallel(n)
                        .ok_or_else(|| Failure::Missing(format!("parallel `{n}`")))?;
                    self.run_parallel(snapshot, n, spec, event, hops, dead_letter)
                        .await
                        .map_err(Failure::from)?;
                    Ok(None)
                }
                Destination::Broker => {
                    self.reenter(who, event, hops).await?;
                    Ok(None)
                }
                Destination::Log => {
                    log_event(&event);
                    Ok(None)
                }
                Destination::Kafka(n) => {
                    self.kafka
                        .send(n.as_str(), &event, timeout)
                        .await
                        .map_err(SinkError::from)?;
                    Ok(None)
                }
            }
        })
    }

    /// Hand `event` (a reply of `who`) back to the broker with one hop
    /// fewer; at 0 it is dropped (logged and counted against `who`). `Ok`
    /// once the broker stored it.
    async fn reenter(&self, who: &Who, mut event: Event, hops: u32) -> Result<(), Failure> {
        let left = hops.saturating_sub(1);
        event.extensions.insert(
            HOPS_EXTENSION.into(),
            ExtensionValue::Integer(i64::from(left)),
        );
        if self.check_hops(&event, who.kind, &who.name).is_none() {
            return Ok(());
        }
        let broker = self
            .broker
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| Failure::Missing("the broker".into()))?;
        let sender = format!("{}/{}", who.kind, who.name);
        broker
            .reenter(&sender, event)
            .await
            .map_err(Failure::Broker)
    }

    /// Run sequence `name`: each step's reply feeds the next; no reply ends
    /// the chain. Returns the last reply when the sequence has no reply
    /// destination of its own. A step that fails for good goes to its own
    /// dead letter, else to `dead_letter` (the one of whoever runs the
    /// sequence), and ends the chain with [`Missed::Failed`]. When the
    /// sequence's `reply` is the broker, the last step's reply is stored
    /// within each of its attempts (a refusal retries that step).
    async fn run_sequence(
        &self,
        snapshot: &Arc<Compiled>,
        name: &Name,
        spec: &SequenceSpec,
        event: Event,
        hops: u32,
        dead_letter: Option<&Destination>,
    ) -> Result<Option<Event>, Missed> {
        let sequence = Who {
            kind: "sequence",
            name: name.to_string(),
        };
        let last = spec.steps.len().saturating_sub(1);
        let mut current = event;
        for (i, step) in spec.steps.iter().enumerate() {
            let who = Who {
                kind: "step",
                name: format!("{name}/{i}"),
            };
            let opts = step.delivery.as_ref();
            let leg = if i == last {
                Leg::subscriber(spec.reply.as_ref(), &sequence)
            } else {
                Leg::Subscriber
            };
            match self
                .deliver(
                    snapshot,
                    &who,
                    &step.to,
                    leg,
                    current,
                    opts,
                    hops,
                    dead_letter,
                )
                .await?
            {
                Some(next) => current = next,
                // Its reply (if any) is stored in the broker.
                None if matches!(leg, Leg::SubscriberToBroker { .. }) => return Ok(None),
                None => {
                    tracing::debug!(sequence = %name, step = i, "step returned no event: the chain ends");
                    return Ok(None);
                }
            }
        }
        match &spec.reply {
            Some(to) => {
                // The last step's delivery options cover the reply it made.
                let opts = spec.steps.last().and_then(|s| s.delivery.as_ref());
                self.reply(
                    snapshot,
                    &sequence,
                    Some(to),
                    current,
                    opts,
                    hops,
                    dead_letter,
                )
                .await?;
                Ok(None)
            }
            None => Ok(Some(current)),
        }
    }

    /// Run parallel `name`: every branch whose filters pass gets the event,
    /// concurrently; each routes its own reply. A branch that fails for
    /// good goes to its own dead letter, else to `dead_letter`; the first
    /// such failure is returned once every branch ended.
    async fn run_parallel(
        &self,
        snapshot: &Arc<Compiled>,
        name: &Name,
        spec: &Parallel,
        event: Event,
        hops: u32,
        dead_letter: Option<&Destination>,
    ) -> Result<(), Missed> {
        let branches = spec
            .branches
            .iter()
            .enumerate()
            .filter(|(_, b)| b.matcher.matches(&event))
            .map(|(i, b)| {
                let event = event.clone();
                async move {
                    let who = Who {
                        kind: "branch",
                        name: format!("{name}/{i}"),
                    };
                    let opts = b.delivery.as_ref();
                    let to = b.reply.as_ref().or(spec.reply.as_ref());
                    // A reply bound for the broker is stored within each attempt.
                    let leg = Leg::subscriber(to, &who);
                    let reply = self
                        .deliver(
                            snapshot,
                            &who,
                            &b.subscriber,
                            leg,
                            event,
                            opts,
                            hops,
                            dead_letter,
                        )
                        .await?;
                    match reply {
                        Some(reply) => {
                            self.reply(snapshot, &who, to, reply, opts, hops, dead_letter)
                                .await
                        }
                        None => Ok(()),
                    }
                }
            });
        let ended = futures_util::future::join_all(branches).await;
        // Abandoned first: the event is still owed to that branch.
        if ended.iter().any(|e| matches!(e, Err(Missed::Abandoned))) {
            return Err(Missed::Abandoned);
        }
        ended.into_iter().find_map(Result::err).map_or(Ok(()), Err)
    }
}

impl From<Missed> for Failure {
    fn from(m: Missed) -> Self {
        match m {
            Missed::Failed(u) | Missed::ReplyFailed(u) => Self::Inner(u),
            Missed::Abandoned => Self::Abandoned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_counter_parsing() {
        let mut e = Event::new("1", "/s", "t");
        assert_eq!(hops_of(&e), Ok(DEFAULT_HOPS));
        let mut with = |v: ExtensionValue| {
            e.extensions.insert(HOPS_EXTENSION.into(), v);
            hops_of(&e)
        };
        assert_eq!(with(ExtensionValue::String("5".into())), Ok(5));
        assert_eq!(with(ExtensionValue::String(" 7 ".into())), Ok(7));
        assert_eq!(with(ExtensionValue::Integer(0)), Ok(0));
        assert_eq!(with(ExtensionValue::Integer(10_000)), Ok(DEFAULT_HOPS));
        assert_eq!(
            with(ExtensionValue::String("99999999999999".into())),
            Ok(DEFAULT_HOPS)
        );
        // Not a count: refused, never read as a default or as 0.
        for bad in [
            ExtensionValue::String("abc".into()),
            ExtensionValue::String("-3".into()),
            ExtensionValue::String(String::new()),
            ExtensionValue::String("1.5".into()),
            ExtensionValue::Integer(-3),
            ExtensionValue::Boolean(true),
        ] {
            let shown = bad.to_string();
            let err = with(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("`{shown}`")), "{err}");
        }
    }
}
