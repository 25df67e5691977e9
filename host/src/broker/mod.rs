//! The broker: the one way into routing, chosen once at start-up.
//!
//! Every event that is to be routed by the triggers comes in here: `POST /`
//! (single and batched), ping sources and source functions bound to
//! `broker`, unordered Kafka sources, and replies sent to the broker
//! (`reply = "broker"`, through [`Reentry`]). Each gets the same admission
//! (the dispatcher's delivery slots; 503 when the log is full), dedup,
//! metrics and durability:
//!
//! - [`Mode::Memory`] (`[durability] enabled = false`): delivered from
//!   memory; an accepted event is lost if the host dies.
//! - [`Mode::Durable`] (the default): fsync'd in the durable log
//!   ([`crate::durable`]) before it is acknowledged; deliveries start from
//!   the log, and an entry is removed once they all ended.
//! - [`Mode::Kafka`] (`[kafka.broker]`): produced to the broker topic and
//!   acknowledged by Kafka (acks=all); the host's consumer of that topic
//!   routes it ([`crate::sources::kafka`]). No local log is opened.
//!
//! A reply bound for the broker is accepted by it (stored as above) inside
//! its parent's delivery, so before the parent's log entry (or Kafka
//! offset) is released: a crash anywhere in a chain loses nothing that was
//! acknowledged.
//!
//! # Backpressure
//! [`Broker::publish`] returns once every delivery of its events has been
//! started, waiting for delivery slots. A reply never waits for a slot
//! while its parent holds one: it is stored, and its deliveries start from
//! a task of the broker's own, after the parent released its slot (the
//! durable log bounds how many wait; in memory, the hop counter does).

mod durable;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use self::durable::DurableIngress;
use crate::config::Config;
use crate::delivery::{hops_of, BoxFut, Dispatcher, Ended, Reentry, ReentryError};
use crate::durable::LogError;
use crate::event::Event;
use crate::kafka::{KafkaBroker, KafkaOpenError};
use crate::metrics::Metrics;

/// Which broker a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In memory, not durable.
    Memory,
    /// The durable log under the data directory.
    Durable,
    /// A Kafka topic (`[kafka.broker]`).
    Kafka,
}

impl Mode {
    /// `memory`, `durable` or `kafka`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Durable => "durable",
            Self::Kafka => "kafka",
        }
    }
}

/// Why the broker did not take events.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    /// The durable log refused them (full, cannot write, closing).
    #[error(transparent)]
    Log(#[from] LogError),
    /// Kafka did not acknowledge them.
    #[error("kafka did not take the events: {0}")]
    Kafka(#[source] rdkafka::error::KafkaError),
    /// The host is stopping: its last deliveries are draining.
    #[error("the host is shutting down")]
    Closed,
}

/// Why the broker could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The durable log cannot be opened.
    #[error("opening the durable log: {0}")]
    Log(#[from] LogError),
    /// The Kafka broker cannot be used: see [`KafkaOpenError`].
    #[error(transparent)]
    Kafka(#[from] KafkaOpenError),
}

enum Store {
    Memory,
    Durable(DurableIngress),
    Kafka(KafkaBroker),
}

/// The broker of a running host.
pub struct Broker {
    store: Store,
    dispatcher: Dispatcher,
    /// In memory: replies waiting for, or running, their deliveries.
    tasks: TaskTracker,
    /// `true` once [`Broker::shutdown`] began. Each publish holds a read
    /// guard, so the shutdown waits for those under way and refuses later
    /// ones: nothing is stored after the last drain.
    closed: tokio::sync::RwLock<bool>,
}

impl Broker {
    /// Open the broker `config` asks for (a Kafka topic when
    /// `[kafka.broker]` is set, else the durable log unless `[durability]
    /// enabled = false`, else memory) over `dispatcher`, and attach it to
    /// the dispatcher for replies bound for the broker. Entries left in the durable log by an earlier run wait
    /// for [`Broker::replay`].
    ///
    /// # Errors
    /// When the durable log cannot be opened, or in Kafka mode when
    /// librdkafka refuses the producer's configuration or the cluster does
    /// not answer within `[kafka.broker] open_timeout`: the host does not
    /// start then (never falls back to memory).
    pub async fn open(
        config: &Config,
        data_dir: &Path,
        metrics: &Metrics,
        dispatcher: Dispatcher,
    ) -> Result<Arc<Self>, OpenError> {
        let store = match &config.kafka.broker {
            Some(b) => Store::Kafka(KafkaBroker::open(&config.kafka, b, &metrics.kafka).await?),
            None if config.durability.enabled => Store::Durable(DurableIngress::open(
                data_dir,
                &config.durability,
                metrics.durable.clone(),
            )?),
            None => Store::Memory,
        };
        let broker = Arc::new(Self {
            store,
            dispatcher: dispatcher.clone(),
            tasks: TaskTracker::new(),
            closed: tokio::sync::RwLock::new(false),
        });
        let weak = Arc::downgrade(&broker);
        let weak: std::sync::Weak<dyn Reentry> = weak;
        dispatcher.attach_broker(weak);
        tracing::info!(broker = broker.mode().as_str(), "broker opened");
        Ok(broker)
    }

    /// Which broker this is.
    pub fn mode(&self) -> Mode {
        match self.store {
            Store::Memory => Mode::Memory,
            Store::Durable(_) => Mode::Durable,
            Store::Kafka(_) => Mode::Kafka,
        }
    }

    /// Whether an accepted event survives the host's death (the durable
    /// log or Kafka).
    pub fn is_durable(&self) -> bool {
        !matches!(self.store, Store::Memory)
    }

    /// Accept `events` for routing, all or none: stored as the broker
    /// promises, then (except in Kafka mode, where the topic's consumer
    /// does it) their deliveries started. Returns once that is done; this
    /// is when `POST /` answers 202.
    ///
    /// # Errors
    /// [`BrokerError`] when the events were not stored (a retry by the
    /// sender is safe; with Kafka some may have been produced, which
    /// at-least-once allows).
    pub async fn publish(&self, events: Vec<Event>) -> Result<(), BrokerError> {
        let closed = self.closed.read().await;
        if *closed {
            return Err(BrokerError::Closed);
        }
        match &self.store {
            Store::Memory => {
                for event in events {
                    tracing::debug!(event_id = %event.id, r#type = %event.ty, "accepted");
                    self.dispatcher.dispatch(event).await;
                }
                Ok(())
            }
            Store::Durable(d) => Ok(d.accept(&self.dispatcher, events).await?),
            Store::Kafka(k) => k.publish(&events).await.map_err(BrokerError::Kafka),
        }
    }

    /// Route `event` without storing it, and wait until every delivery of
    /// it ended: for events whose origin is their log (a Kafka offset
    /// committed only afterwards, and only when [`Ended::Completed`]), and
    /// in per-partition order.
    pub async fn route_and_wait(&self, event: Event) -> Ended {
        self.dispatcher.dispatch_tracked(event).await.await
    }

    /// Start delivering what the durable log kept from an earlier run, in
    /// the background (nothing to do for the other brokers).
    pub fn replay(self: &Arc<Self>) {
        if let Store::Durable(_) = &self.store {
            let me = self.clone();
            tokio::spawn(async move {
                if let Store::Durable(d) = &me.store {
                    d.replay(&me.dispatcher).await;
                }
            });
        }
    }

    /// Once the ingress refuses new events (the host is draining): end
    /// every backoff wait (those deliveries are abandoned), refuse further
    /// events (a source's tick now gets [`BrokerError::Closed`]), and let
    /// every started delivery finish (replies included) for at most
    /// `grace`; then abandon what is still running, and close the durable
    /// log. An abandoned delivery's event stays in the log and is
    /// delivered again at the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.dispatcher.stop();
        if tokio::time::timeout(grace, self.drain()).await.is_err() {
            tracing::warn!(
                grace = ?grace,
                "deliveries still running at the end of the shutdown grace period: abandoned (the durable log keeps their events for the next start)"
            );
            self.dispatcher.abandon();
            self.drain().await;
        }
        tracing::debug!("deliveries drained");
        if let Store::Durable(d) = &self.store {
            d.close().await;
        }
    }

    /// Refuse further events and wait for every started delivery to end
    /// (cancel-safe: [`Broker::shutdown`] runs it again after abandoning).
    async fn drain(&self) {
        *self.closed.write().await = true;
        if let Store::Durable(d) = &self.store {
            d.wait_replayed().await;
        }
        self.dispatcher.drain().await;
        self.tasks.close();
        self.tasks.wait().await;
        if let Store::Durable(d) = &self.store {
            d.wait_removals().await;
        }
    }
}

impl Reentry for Broker {
    fn reenter<'a>(
        &'a self,
        sender: &'a str,
        event: Event,
    ) -> BoxFut<'a, Result<(), ReentryError>> {
        Box::pin(async move {
            match &self.store {
                Store::Memory => {
                    let dispatcher = self.dispatcher.clone();
                    self.tasks.spawn(async move {
                        // Abandoned at shutdown: lost with the memory broker.
                        let _ = dispatcher.dispatch_tracked(event).await.await;
                    });
                    Ok(())
                }
                Store::Durable(d) => {
                    // The engine set a valid count on every reply it reenters.
                    let hops = hops_of(&event).unwrap_or(0);
                    let scope = format!("{sender}\0{hops}");
                    d.accept_reply(&self.dispatcher, event, scope)
                        .await
                        .map_err(|e| Box::new(BrokerError::from(e)) as ReentryError)
                }
                Store::Kafka(k) => k
                    .publish(std::slice::from_ref(&event))
                    .await
                    .map_err(|e| Box::new(BrokerError::Kafka(e)) as ReentryError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Destination, Filter, FunctionSettings, TriggerSpec};
    use crate::kafka::KafkaSinks;
    use crate::name::Name;
    use crate::registry::FunctionStore;
    use crate::routing::{Routes, Table};
    use crate::runtime::Runtime;

    fn n(s: &str) -> Name {
        s.parse().unwrap()
    }

    /// `first` (type `t`) runs echo and replies to the broker; `second`
    /// (type `t.echoed`) runs echo and drops the reply.
    fn chain() -> Table {
        let on = |ty: &str| Filter {
            attributes: [("type".to_owned(), ty.to_owned())].into(),
        };
        let mut first = TriggerSpec::to_function(on("t"), n("echo"), None);
        first.reply = Some(Destination::Broker);
        let mut t = Table::default();
        t.triggers.insert(n("first"), first);
        t.triggers.insert(
            n("second"),
            TriggerSpec::to_function(on("t.echoed"), n("echo"), None),
        );
        t
    }

    /// A dispatcher with a single delivery slot, so a reply that waited for
    /// a slot while its parent holds the only one would never run.
    async fn one_slot(dir: &Path, metrics: &Metrics) -> Dispatcher {
        let functions = Arc::new(FunctionStore::open(dir).unwrap());
        let runtime = Arc::new(
            Runtime::new(
                Default::default(),
                functions.clone(),
                metrics.runtime.clone(),
            )
            .unwrap(),
        );
        let dir = std::env::var_os("SLUICE_FUNCTIONS_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/functions"),
            std::path::PathBuf::from,
        );
        let wasm = dir.join("echo.wasm");
        let bytes = std::fs::read(&wasm)
            .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask functions`)", wasm.display()));
        let compiled = runtime.compile(bytes.clone().into()).await.unwrap();
        functions
            .put(
                &n("echo"),
                &bytes,
                Some((&compiled.engine_key, &compiled.artifact)),
                FunctionSettings::default(),
            )
            .unwrap();
        Dispatcher::new(
            runtime,
            Arc::new(Routes::new(chain())),
            crate::sinks::HttpSink::new(None, 1 << 20).unwrap(),
            KafkaSinks::default(),
            metrics.delivery.clone(),
            metrics.routing.clone(),
            1,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replies_to_the_broker_never_deadlock_a_full_dispatcher() {
        for durable in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let metrics = Metrics::new();
            let dispatcher = one_slot(dir.path(), &metrics).await;
            let mut config = Config::default();
            config.durability.enabled = durable;
            let broker = Broker::open(&config, dir.path(), &metrics, dispatcher)
                .await
                .unwrap();
            broker.replay();
            assert_eq!(
                broker.mode(),
                if durable { Mode::Durable } else { Mode::Memory }
            );
            let events = (0..8)
                .map(|i| Event::new(i.to_string(), "/s", "t"))
                .collect();
            let done =
                "sluice_deliveries_total{error=\"\",outcome=\"delivered\",trigger=\"second\"} 8";
            // Bounded as a whole: a deadlock would stall the publish too.
            let chain = async {
                broker.publish(events).await.unwrap();
                while !metrics.render().lines().any(|l| l == done) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            if tokio::time::timeout(Duration::from_secs(20), chain)
                .await
                .is_err()
            {
                panic!(
                    "the chain stalled (durable: {durable}):\n{}",
                    metrics.render()
                );
            }
            broker.shutdown(Duration::from_secs(30)).await;
            assert!(matches!(
                broker.publish(vec![Event::new("late", "/s", "t")]).await,
                Err(BrokerError::Closed)
            ));
        }
    }
}
