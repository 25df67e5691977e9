//! The assembled host: storage, runtime, routing and delivery, built from
//! the configuration in order (parse, validate, build, then serve).

mod apply;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use tokio_util::sync::CancellationToken;

use crate::admin::{AdminState, Uploads};
use crate::broker::Broker;
use crate::config::Config;
use crate::delivery::Dispatcher;
use crate::ingress::IngressState;
use crate::metrics::Metrics;
use crate::readiness::{Readiness, Stage};
use crate::registry::{FunctionStore, RoutingStores};
use crate::routing::Routes;
use crate::runtime::Runtime;
use crate::security::server::{self, Listener};
use crate::security::Security;
use crate::sinks::HttpSink;
use crate::sources::kafka::{KafkaSource, Reach};
use crate::sources::{PreparedSources, SourceContext, Sources};

/// Most deliveries running at once before the ingress waits.
const MAX_IN_FLIGHT: usize = 4096;

/// How long one check that a Kafka consumer reached its cluster waits.
const KAFKA_REACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Pause between two such checks.
const KAFKA_REACH_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Everything a running host shares between requests: the composition
/// root, imported by nobody but the CLI.
pub struct App {
    /// The wasm runtime (and through it, the function store).
    pub runtime: Arc<Runtime>,
    /// The routing table.
    pub routes: Arc<Routes>,
    /// Runs deliveries (the broker's; for sources bound to a destination).
    pub dispatcher: Dispatcher,
    /// The one way into routing: in memory, the durable log or Kafka.
    pub broker: Arc<Broker>,
    /// Tokens, audit log, rate limit, TLS (see `docs/security.md`).
    pub security: Arc<Security>,
    /// Every metric, for `GET /metrics`.
    pub metrics: Metrics,
    /// The running event sources: ping sources, source functions, Kafka
    /// sources and the Kafka broker's consumer (signalled to stop when the
    /// app is dropped; [`Sources::stop`] stops them and waits).
    pub sources: Sources,
    /// What the event listener's handlers share.
    pub ingress: Arc<IngressState>,
    /// What the admin listener's handlers share.
    pub admin: Arc<AdminState>,
    /// What `/readyz` answers: ready once [`App::start`] started
    /// everything and the Kafka consumers reached their cluster; draining
    /// once [`App::serve`] was told to stop.
    pub readiness: Readiness,
    /// What [`App::start`] starts: taken once.
    pending: Mutex<Option<Pending>>,
}

/// The sources, built and checked but not running yet.
struct Pending {
    scheduled: PreparedSources,
    kafka: Vec<KafkaSource>,
}

impl App {
    /// Open the data directory, start the runtime, and apply the config
    /// file: its functions are deployed (when their bytes changed), its
    /// routing objects written over stored ones of the same name, and those
    /// it declared before and no longer does removed. What was created
    /// through the admin API is loaded from the data directory. Everything
    /// is checked (sources included) before anything is stored. Nothing
    /// runs yet: [`App::start`] starts the sources and the replay.
    ///
    /// # Errors
    /// When the data directory, a declared function, a source or the
    /// runtime cannot be used; nothing is stored or served then.
    pub async fn build(config: Config, data_dir: PathBuf) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let metrics = Metrics::new();
        let security = Arc::new(
            Security::load(&config, &data_dir, metrics.security.clone())
                .context("security settings")?,
        );
        let http = HttpSink::new(
            config.outbound.ca_file.as_deref(),
            config.runtime.max_reply_bytes,
        )
        .context("outbound TLS")?;
        // Knative's SinkBinding: the sink's CA, trusted for `env:` destinations.
        let http = match std::env::var(crate::config::CA_CERTS) {
            Ok(pem) => http
                .with_sink_binding_ca(config.outbound.ca_file.as_deref(), pem.as_bytes())
                .context("outbound TLS for env: destinations")?,
            Err(_) => http,
        };
        let functions = Arc::new(FunctionStore::open(&data_dir)?);
        let runtime = Arc::new(Runtime::new(
            config.runtime.clone(),
            functions.clone(),
            metrics.runtime.clone(),
        )?);

        // Check everything first: the config file over the store, the
        // sources, the broker. Nothing is stored until all of it passed.
        let stores = RoutingStores::open(&data_dir)?;
        let plan = apply::Plan::new(&config, &stores, &functions, &runtime).await?;
        let scheduled =
            PreparedSources::prepare(&config.sources, &runtime, &metrics.sources, &data_dir)
                .await?;
        let kafka_sources =
            crate::sources::kafka::prepare(&config.kafka).context("starting kafka sources")?;
        let kafka_sinks = crate::kafka::KafkaSinks::new(&config.kafka, &metrics.kafka)
            .context("creating kafka sinks")?;
        let routes = Arc::new(Routes::measured(
            plan.table().clone(),
            metrics.routing.clone(),
        ));
        let dispatcher = Dispatcher::new(
            runtime.clone(),
            routes.clone(),
            http,
            kafka_sinks,
            metrics.delivery.clone(),
            metrics.routing.clone(),
            MAX_IN_FLIGHT,
        );
        // Chosen once: in Kafka-broker mode no local log is opened.
        let broker = Broker::open(&config, &data_dir, &metrics, dispatcher.clone()).await?;
        plan.write(&config, &stores, &functions)?;
        // Stored objects may refer to functions that are gone: warn, and
        // let those deliveries fail (and dead-letter) until they are back.
        if let Err(e) = routes.snapshot().check(
            |f| functions.contains(f),
            |n| config.kafka.sinks.contains_key(n),
        ) {
            tracing::warn!("{e}; its events will fail until the function is deployed");
        }
        // Sources get the way into routing, not the app.
        let sources = Sources::new(SourceContext::new(
            broker.clone(),
            dispatcher.clone(),
            metrics.clone(),
        ));
        let readiness = Readiness::new();
        let admin = Arc::new(AdminState {
            runtime: runtime.clone(),
            routes: routes.clone(),
            stores,
            kafka_sinks: config.kafka.sinks.keys().cloned().collect(),
            security: security.clone(),
            uploads: Uploads::new(&config.admin),
            metrics: metrics.clone(),
            sources: config.sources.clone(),
            readiness: readiness.clone(),
        });
        let ingress = Arc::new(IngressState {
            broker: broker.clone(),
            runtime: runtime.clone(),
            limits: config.ingress,
            security: security.clone(),
            readiness: readiness.clone(),
        });
        Ok(Arc::new(Self {
            runtime,
            routes,
            dispatcher,
            broker,
            security,
            metrics,
            sources,
            ingress,
            admin,
            readiness,
            pending: Mutex::new(Some(Pending {
                scheduled,
                kafka: kafka_sources,
            })),
        }))
    }

    /// Start the sources and the replay of the durable log's backlog: once
    /// both listeners are bound, so a host that cannot listen never fires
    /// a source or delivers anything. Only the first call starts them.
    /// Then the host is ready (`/readyz`), once every Kafka consumer
    /// reached its cluster when there are any.
    pub fn start(&self) {
        let Some(pending) = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let reaches: Vec<Reach> = pending.kafka.iter().map(KafkaSource::reach).collect();
        self.sources.start(pending.scheduled);
        for k in pending.kafka {
            self.sources.spawn(k);
        }
        self.broker.replay();
        if reaches.is_empty() {
            self.readiness.set(Stage::Ready);
        } else {
            self.readiness.set(Stage::ConnectingKafka);
            tokio::spawn(ready_once_reached(reaches, self.readiness.clone()));
        }
    }

    /// Serve the event listener and the admin listener until `shutdown`
    /// completes; then drain: `/readyz` answers 503 and new events are
    /// refused (503) while both listeners keep answering, every backoff
    /// wait ends, running deliveries get up to `grace` to finish (what has
    /// not finished then is abandoned, and stays in the durable log), the
    /// broker closes (the durable log's last removals are committed), and
    /// the listeners stop, running requests bounded by the same `grace`.
    pub async fn serve(
        &self,
        events: Listener,
        admin: Listener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        grace: std::time::Duration,
    ) {
        let stop = CancellationToken::new();
        let metrics = self.metrics.security.clone();
        let events = tokio::spawn(server::serve(
            events,
            crate::ingress::Ingress::new(self.ingress.clone()),
            self.security.guards_senders(),
            metrics.clone(),
            stop.clone(),
        ));
        let admin = tokio::spawn(server::serve(
            admin,
            crate::admin::router(self.admin.clone()),
            false,
            metrics,
            stop.clone(),
        ));
        // Serving now: compile what this engine lacks without delaying it.
        let recompile = CancellationToken::new();
        let _recompiling = self.runtime.recompile_stale(recompile.clone());
        shutdown.await;
        let deadline = tokio::time::Instant::now() + grace;
        // Not ready from now on; the listeners still answer (probes,
        // `/metrics`) and refuse new events while the deliveries drain.
        self.readiness.set(Stage::Draining);
        recompile.cancel();
        self.broker.shutdown(grace).await;
        stop.cancel();
        let listeners = async {
            let _ = events.await;
            let _ = admin.await;
        };
        // Idle connections close at once; a running request (an invocation)
        // gets what is left of the grace period, and a moment at least.
        let deadline = deadline.max(tokio::time::Instant::now() + LISTENERS_CLOSE);
        if tokio::time::timeout_at(deadline, listeners).await.is_err() {
            tracing::warn!(grace = ?grace, "requests still running at the end of the shutdown grace period: abandoned");
        }
    }
}

/// Shortest wait for the listeners to close at shutdown.
const LISTENERS_CLOSE: std::time::Duration = std::time::Duration::from_millis(200);

/// Mark the host ready once the cluster answered each of `reaches`,
/// checking again after a pause until then; give up when the host drains.
async fn ready_once_reached(reaches: Vec<Reach>, readiness: Readiness) {
    let reached = async {
        for reach in &reaches {
            while !reach.answered(KAFKA_REACH_TIMEOUT).await {
                tokio::time::sleep(KAFKA_REACH_PAUSE).await;
            }
        }
    };
    tokio::select! {
        () = reached => {
            tracing::info!("kafka consumers reached their cluster: ready");
            readiness.set(Stage::Ready);
        }
        () = readiness.draining() => {}
    }
    // The consumers are dropped on threads of their own.
    drop(reaches);
}
