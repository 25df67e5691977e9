//! The assembled host: storage, runtime, routing and delivery, built from
//! the configuration in order (parse, validate, build, then serve).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::broker::Broker;
use crate::config::{Config, IngressConfig, ParallelSpec, SequenceSpec, SinkSpec, TriggerSpec};
use crate::delivery::Dispatcher;
use crate::metrics::Metrics;
use crate::registry::{FunctionStore, ObjectStore};
use crate::routing::{Routes, Table};
use crate::runtime::Runtime;
use crate::sources::{PreparedSources, SourceContext, Sources};

/// Most deliveries running at once before the ingress waits.
const MAX_IN_FLIGHT: usize = 4096;

/// Durable copies of the routing objects, one directory per kind.
pub struct Stores {
    /// `<data-dir>/triggers`.
    pub triggers: ObjectStore<TriggerSpec>,
    /// `<data-dir>/sinks`.
    pub sinks: ObjectStore<SinkSpec>,
    /// `<data-dir>/sequences`.
    pub sequences: ObjectStore<SequenceSpec>,
    /// `<data-dir>/parallels`.
    pub parallels: ObjectStore<ParallelSpec>,
}

impl Stores {
    fn open(data_dir: &std::path::Path) -> Result<Self> {
        Ok(Self {
            triggers: ObjectStore::open(data_dir, "triggers")?,
            sinks: ObjectStore::open(data_dir, "sinks")?,
            sequences: ObjectStore::open(data_dir, "sequences")?,
            parallels: ObjectStore::open(data_dir, "parallels")?,
        })
    }

    /// Overlay the config file's objects on the stored ones, check the
    /// result, and only then write the config file's objects to the store.
    fn apply_and_load(&self, c: &Config) -> Result<Table> {
        let has_kafka_sink = |n: &crate::registry::Name| c.kafka.sinks.contains_key(n);
        let mut table = Table {
            triggers: self.triggers.load_all()?,
            sinks: self.sinks.load_all()?,
            sequences: self.sequences.load_all()?,
            parallels: self.parallels.load_all()?,
        };
        table.triggers.extend(c.triggers.clone());
        table.sinks.extend(c.sinks.clone());
        table.sequences.extend(c.sequences.clone());
        table.parallels.extend(c.parallels.clone());
        table
            .check(|_| true, has_kafka_sink)
            .map_err(|e| anyhow::anyhow!("routing: {e}"))?;
        for (n, v) in &c.triggers {
            self.triggers.put(n, v)?;
        }
        for (n, v) in &c.sinks {
            self.sinks.put(n, v)?;
        }
        for (n, v) in &c.sequences {
            self.sequences.put(n, v)?;
        }
        for (n, v) in &c.parallels {
            self.parallels.put(n, v)?;
        }
        Ok(table)
    }
}

/// Everything a running host shares between requests.
pub struct App {
    /// The wasm runtime (and through it, the function store).
    pub runtime: Arc<Runtime>,
    /// The routing table.
    pub routes: Arc<Routes>,
    /// Durable copies of the routing objects.
    pub stores: Stores,
    /// Runs deliveries (the broker's; for sources bound to a destination).
    pub dispatcher: Dispatcher,
    /// The one way into routing: in memory, the durable log or Kafka.
    pub broker: Arc<Broker>,
    /// Ingress limits.
    pub ingress: IngressConfig,
    /// Tokens, audit log, rate limit, TLS (see `docs/security.md`).
    pub security: Arc<crate::security::Security>,
    /// The admin API's compile pool and upload limits.
    pub admin: crate::admin::AdminState,
    /// Every metric, for `GET /metrics`.
    pub metrics: Metrics,
    /// The running event sources: ping sources, source functions, Kafka
    /// sources and the Kafka broker's consumer (signalled to stop when the
    /// app is dropped; [`Sources::stop`] stops them and waits).
    pub sources: Sources,
    /// The sources as the config file declares them (read-only at
    /// `GET /admin/v1/sources`).
    pub source_specs: std::collections::BTreeMap<crate::registry::Name, crate::sources::SourceSpec>,
}

impl App {
    /// Open the data directory, start the runtime, and apply the config
    /// file: its functions are deployed (when their bytes changed) and its
    /// routing objects written over stored ones of the same name. What was created
    /// through the admin API is loaded from the data directory.
    ///
    /// # Errors
    /// When the data directory, a declared function or the runtime cannot
    /// be used; nothing is served then.
    pub async fn build(config: Config, data_dir: PathBuf) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let metrics = Metrics::new();
        let security = Arc::new(
            crate::security::Security::load(&config, &data_dir, metrics.security.clone())
                .context("security settings")?,
        );
        crate::sinks::set_extra_ca(config.outbound.ca_file.clone());
        let functions = Arc::new(FunctionStore::open(&data_dir)?);
        let runtime = Arc::new(Runtime::new(
            config.runtime.clone(),
            functions.clone(),
            metrics.runtime.clone(),
        )?);

        for (name, f) in &config.functions {
            let bytes = std::fs::read(&f.path)
                .with_context(|| format!("reading function `{name}` from {}", f.path.display()))?;
            let unchanged = functions.get(name).is_some_and(|r| {
                r.digest == crate::registry::Digest::of(&bytes) && r.settings == f.settings
            });
            if unchanged {
                continue;
            }
            let compiled = runtime
                .compile(bytes.clone().into())
                .await
                .with_context(|| format!("function `{name}` ({})", f.path.display()))?;
            functions.put(
                name,
                &bytes,
                Some((&compiled.engine_key, &compiled.artifact)),
                f.settings.clone(),
            )?;
            tracing::info!(function = %name, path = %f.path.display(), "deployed from config");
        }

        let stores = Stores::open(&data_dir)?;
        let table = stores.apply_and_load(&config)?;
        // Stored objects may refer to functions that are gone: warn, and
        // let those deliveries fail (and dead-letter) until they are back.
        if let Err(e) = table.check(
            |f| functions.get(f).is_some(),
            |n| config.kafka.sinks.contains_key(n),
        ) {
            tracing::warn!("{e}; its events will fail until the function is deployed");
        }
        let routes = Arc::new(Routes::measured(table, metrics.routing.clone()));
        let dispatcher = Dispatcher::new(
            runtime.clone(),
            routes.clone(),
            crate::kafka::KafkaSinks::new(&config.kafka, &metrics.kafka)
                .context("creating kafka sinks")?,
            metrics.delivery.clone(),
            metrics.routing.clone(),
            MAX_IN_FLIGHT,
        );
        let prepared =
            PreparedSources::prepare(&config.sources, &runtime, &metrics.sources, &data_dir)
                .await?;
        // Chosen once: in Kafka-broker mode no local log is opened.
        let broker = Broker::open(&config, &data_dir, &metrics, dispatcher.clone())?;
        let kafka_sources =
            crate::kafka::source::prepare(&config.kafka).context("starting kafka sources")?;
        // Sources get the way into routing, not the app.
        let sources = Sources::new(SourceContext::new(
            broker.clone(),
            dispatcher.clone(),
            metrics.clone(),
        ));
        sources.start(prepared);
        for k in kafka_sources {
            sources.spawn(k);
        }
        let app = Arc::new(Self {
            runtime,
            routes,
            stores,
            dispatcher,
            broker,
            ingress: config.ingress,
            security,
            admin: crate::admin::AdminState::new(&config.admin),
            metrics,
            sources,
            source_specs: config.sources.clone(),
        });
        app.broker.replay();
        Ok(app)
    }
}
