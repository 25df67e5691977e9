//! The assembled host: storage, runtime, routing and delivery, built from
//! the configuration in order (parse, validate, build, then serve).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use tokio_util::sync::CancellationToken;

use crate::admin::{AdminState, Uploads};
use crate::broker::Broker;
use crate::config::{Config, Destination, ParallelSpec, SequenceSpec, SinkSpec, TriggerSpec};
use crate::delivery::Dispatcher;
use crate::ingress::IngressState;
use crate::metrics::Metrics;
use crate::name::Name;
use crate::registry::{FileOwned, FunctionStore, RoutingStores};
use crate::routing::{Kind, Routes, Table};
use crate::runtime::Runtime;
use crate::security::server::{self, Listener};
use crate::security::Security;
use crate::sinks::HttpSink;
use crate::sources::{PreparedSources, SourceContext, Sources};

/// Most deliveries running at once before the ingress waits.
const MAX_IN_FLIGHT: usize = 4096;

/// Overlay the config file's routing objects on the stored ones (less
/// those the file owned and no longer declares), check the result and the
/// sources' destinations, and only then write to the store: the file's
/// objects, the removal of those it dropped (functions included), and the
/// record of what it owns (see `docs/configuration.md`, "The config file
/// and the admin API").
fn apply_and_load(stores: &RoutingStores, c: &Config, functions: &FunctionStore) -> Result<Table> {
    let owned = stores.file_owned()?;
    let declared = declared(c);
    let mut table = Table::default();
    load::<TriggerSpec>(&mut table, stores, c, &owned)?;
    load::<SinkSpec>(&mut table, stores, c, &owned)?;
    load::<SequenceSpec>(&mut table, stores, c, &owned)?;
    load::<ParallelSpec>(&mut table, stores, c, &owned)?;
    table
        .check(|_| true, |n| c.kafka.sinks.contains_key(n))
        .map_err(|e| anyhow::anyhow!("routing: {e}"))?;
    table
        .check_sources(
            &c.sources,
            |f| functions.contains(f),
            |n| c.kafka.sinks.contains_key(n),
        )
        .map_err(|e| anyhow::anyhow!("sources: {e}"))?;
    let dropped: Vec<&Name> = owned
        .functions
        .difference(&declared.functions)
        .filter(|f| functions.contains(f))
        .collect();
    for f in &dropped {
        let mut users = table.users_of_function(f);
        users.extend(
            c.sources
                .iter()
                .filter(|(_, s)| {
                    s.destinations()
                        .any(|d| matches!(d, Destination::Function(n) if n == *f))
                })
                .map(|(n, _)| format!("source `{n}`")),
        );
        if !users.is_empty() {
            anyhow::bail!(
                "function `{f}` is no longer declared in the config file, but {} still use it",
                users.join(", ")
            );
        }
    }
    // Whatever is about to be written counts as the file's first, so a
    // crash halfway leaves nothing the file wrote looking like the admin
    // API's.
    stores.set_file_owned(&owned.union(&declared))?;
    save::<TriggerSpec>(stores, c, &owned)?;
    save::<SinkSpec>(stores, c, &owned)?;
    save::<SequenceSpec>(stores, c, &owned)?;
    save::<ParallelSpec>(stores, c, &owned)?;
    for f in dropped {
        functions.remove(f)?;
        tracing::info!(function = %f, "removed: no longer declared in the config file");
    }
    stores.set_file_owned(&declared)?;
    Ok(table)
}

/// The names the config file declares.
fn declared(c: &Config) -> FileOwned {
    FileOwned {
        triggers: c.triggers.keys().cloned().collect(),
        sinks: c.sinks.keys().cloned().collect(),
        sequences: c.sequences.keys().cloned().collect(),
        parallels: c.parallels.keys().cloned().collect(),
        functions: c.functions.keys().cloned().collect(),
    }
}

/// The stored objects of kind `K`, less those the file owned (`owned`)
/// and no longer declares, with the config file's over them.
fn load<K: Kind>(
    table: &mut Table,
    stores: &RoutingStores,
    c: &Config,
    owned: &FileOwned,
) -> Result<()> {
    let map = K::map_mut(table);
    *map = K::store(stores).load_all()?;
    let (file, ours) = (K::in_config(c), K::file_owned(owned));
    map.retain(|name, _| !ours.contains(name) || file.contains_key(name));
    for name in file.keys() {
        if map.contains_key(name) && !ours.contains(name) {
            tracing::warn!(kind = K::KIND, name = %name, "created through the admin API, now declared in the config file: the file's definition replaces it, and the file owns it from now on");
        }
    }
    map.extend(file.clone());
    Ok(())
}

/// Write the config file's objects of kind `K` to the store, and remove
/// those it owned (`owned`) and no longer declares.
fn save<K: Kind>(stores: &RoutingStores, c: &Config, owned: &FileOwned) -> Result<()> {
    let file = K::in_config(c);
    for (name, spec) in file {
        K::store(stores).put(name, spec)?;
    }
    for name in K::file_owned(owned) {
        if !file.contains_key(name) && K::store(stores).remove(name)? {
            tracing::info!(kind = K::KIND, name = %name, "removed: no longer declared in the config file");
        }
    }
    Ok(())
}

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
            Security::load(&config, &data_dir, metrics.security.clone())
                .context("security settings")?,
        );
        let http = HttpSink::new(config.outbound.ca_file.as_deref()).context("outbound TLS")?;
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

        let stores = RoutingStores::open(&data_dir)?;
        let table = apply_and_load(&stores, &config, &functions)?;
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
            http,
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
            crate::sources::kafka::prepare(&config.kafka).context("starting kafka sources")?;
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
        let admin = Arc::new(AdminState {
            runtime: runtime.clone(),
            routes: routes.clone(),
            stores,
            kafka_sinks: config.kafka.sinks.keys().cloned().collect(),
            security: security.clone(),
            uploads: Uploads::new(&config.admin),
            metrics: metrics.clone(),
            sources: config.sources.clone(),
        });
        let ingress = Arc::new(IngressState {
            broker: broker.clone(),
            runtime: runtime.clone(),
            limits: config.ingress,
            security: security.clone(),
        });
        let app = Arc::new(Self {
            runtime,
            routes,
            dispatcher,
            broker,
            security,
            metrics,
            sources,
            ingress,
            admin,
        });
        app.broker.replay();
        Ok(app)
    }

    /// Serve the event listener and the admin listener until `shutdown`
    /// completes; then stop accepting, let running requests and
    /// deliveries finish, and close the broker (the durable log's last
    /// removals are committed).
    pub async fn serve(
        &self,
        events: Listener,
        admin: Listener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
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
        shutdown.await;
        stop.cancel();
        let _ = events.await;
        let _ = admin.await;
        self.broker.shutdown().await;
    }
}
