//! The assembled host: storage, runtime, routing and delivery, built from
//! the configuration in order (parse, validate, build, then serve).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::{Config, IngressConfig, TriggerSpec};
use crate::delivery::Dispatcher;
use crate::durable::DurableIngress;
use crate::metrics::Metrics;
use crate::registry::{FunctionStore, ObjectStore};
use crate::routing::Routes;
use crate::runtime::Runtime;
use crate::sinks::Sinks;

/// Most deliveries running at once before the ingress waits.
const MAX_IN_FLIGHT: usize = 4096;

/// Everything a running host shares between requests.
pub struct App {
    /// The wasm runtime (and through it, the function store).
    pub runtime: Arc<Runtime>,
    /// The trigger table.
    pub routes: Arc<Routes>,
    /// Durable copies of the triggers.
    pub triggers: ObjectStore<TriggerSpec>,
    /// Runs deliveries.
    pub dispatcher: Dispatcher,
    /// Ingress limits.
    pub ingress: IngressConfig,
    /// Every metric, for `GET /metrics`.
    pub metrics: Metrics,
    /// The durable ingress log (`None` when `[durability] enabled = false`).
    pub durable: Option<DurableIngress>,
    /// Kafka as the broker (`[kafka.broker]`): `POST /` produces to it.
    pub kafka_broker: Option<crate::kafka::KafkaBroker>,
}

impl App {
    /// Open the data directory, start the runtime, and apply the config
    /// file: its functions are deployed (when their bytes changed) and its
    /// triggers written over stored ones of the same name. What was created
    /// through the admin API is loaded from the data directory.
    ///
    /// # Errors
    /// When the data directory, a declared function or the runtime cannot
    /// be used; nothing is served then.
    pub async fn build(config: Config, data_dir: PathBuf) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let metrics = Metrics::new();
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

        let triggers = ObjectStore::<TriggerSpec>::open(&data_dir, "triggers")?;
        for (name, spec) in &config.triggers {
            triggers.put(name, spec)?;
        }
        let routes = Arc::new(Routes::new(triggers.load_all()?));
        for (name, spec) in routes.list() {
            if functions.get(&spec.function).is_none() {
                tracing::warn!(trigger = %name, function = %spec.function, "trigger names a function that is not deployed; its events will fail until it is");
            }
        }
        let dispatcher = Dispatcher::new(
            runtime.clone(),
            routes.clone(),
            Sinks::new().with_kafka(
                crate::kafka::KafkaSinks::new(&config.kafka).context("creating kafka sinks")?,
            ),
            metrics.delivery.clone(),
            MAX_IN_FLIGHT,
        );
        let durable = if config.durability.enabled {
            Some(
                DurableIngress::open(&data_dir, &config.durability)
                    .context("opening the durable log")?,
            )
        } else {
            None
        };
        let app = Arc::new(Self {
            runtime,
            routes,
            triggers,
            dispatcher,
            ingress: config.ingress,
            metrics,
            durable,
            kafka_broker: crate::kafka::KafkaBroker::new(&config.kafka)
                .context("creating the kafka broker producer")?,
        });
        crate::kafka::source::start(&app, &config.kafka).context("starting kafka sources")?;
        if app.durable.is_some() {
            let replaying = app.clone();
            tokio::spawn(async move {
                if let Some(d) = &replaying.durable {
                    d.replay(&replaying.dispatcher).await;
                }
            });
        }
        Ok(app)
    }
}
