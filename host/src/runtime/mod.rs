//! Running handlers: one shared engine, a fresh sandboxed instance per
//! event, CPU and memory limits, and a cache of loaded functions that lets
//! idle functions scale to zero.
//!
//! - [`Runtime::compile`] validates an uploaded component against the
//!   `sluice:handler` world and precompiles it.
//! - [`Runtime::invoke`] runs one event through one function.
//! - Loaded functions ([`Loaded`]: the deserialized component and its
//!   `InstancePre`) live in a `moka` cache with a time-to-idle; an evicted
//!   function costs nothing until its next event loads it again from the
//!   precompiled artifact (a cold start).

pub(crate) mod bindings;
mod engine;
mod error;
pub(crate) mod guest_log;
mod loader;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::Linker;
use wasmtime::{Engine, Store, UpdateDeadline};

pub use self::engine::EPOCH_TICK;
pub use self::error::{ErrorKind, InvokeError};
pub use self::loader::{CompileError, Compiled};

use self::bindings::sluice::handler::types as wit;
use self::bindings::{Handler, HandlerPre};
use self::guest_log::GuestLog;
use self::state::HostState;
use crate::config::RuntimeConfig;
use crate::event::Event;
use crate::metrics::RuntimeMetrics;
use crate::registry::{FunctionStore, Name};

/// A function ready to instantiate: its component, linked and type-checked.
pub struct Loaded {
    pre: HandlerPre<HostState>,
    timeout: Duration,
    memory_bytes: usize,
    env: Vec<(String, String)>,
}

/// The wasm runtime. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    engine_key: String,
    linker: Linker<HostState>,
    functions: Arc<FunctionStore>,
    loaded: moka::sync::Cache<Name, Arc<Loaded>>,
    config: RuntimeConfig,
    metrics: RuntimeMetrics,
    _ticker: engine::EpochTicker,
}

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
#[error("starting the wasm runtime: {0:#}")]
pub struct StartError(wasmtime::Error);

impl Runtime {
    /// Build the engine and linker for `config`, over `functions`.
    ///
    /// # Errors
    /// When wasmtime refuses the configuration.
    pub fn new(
        config: RuntimeConfig,
        functions: Arc<FunctionStore>,
        metrics: RuntimeMetrics,
    ) -> Result<Self, StartError> {
        let engine = engine::build(&config).map_err(StartError)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(StartError)?;
        Handler::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
            .map_err(StartError)?;
        let listener_metrics = metrics.clone();
        let loaded: moka::sync::Cache<Name, Arc<Loaded>> = moka::sync::Cache::builder()
            .max_capacity(config.max_resident)
            .time_to_idle(config.idle_timeout)
            .eviction_listener(move |name: Arc<Name>, _, cause| {
                listener_metrics.unloaded(cause.was_evicted());
                tracing::debug!(function = %name, ?cause, "function unloaded");
            })
            .build();
        // Expiry in moka happens during its housekeeping; run it regularly
        // so an idle function is unloaded even when no event arrives.
        let housekeeping = loaded.clone();
        Ok(Self {
            engine_key: engine::engine_key(&engine),
            _ticker: engine::EpochTicker::start(engine.clone(), move || {
                housekeeping.run_pending_tasks()
            }),
            engine,
            linker,
            functions,
            loaded,
            config,
            metrics,
        })
    }

    /// The runtime's settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The shared engine (source functions run on it too, under the same
    /// epoch ticker and instance pool).
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The metric handle (source functions report their runs through it).
    pub(crate) fn metrics(&self) -> &RuntimeMetrics {
        &self.metrics
    }

    /// The function store this runtime loads from.
    pub fn functions(&self) -> &Arc<FunctionStore> {
        &self.functions
    }

    /// How many functions are loaded right now.
    pub fn resident(&self) -> u64 {
        self.loaded.run_pending_tasks();
        self.loaded.entry_count()
    }

    /// Forget the loaded copy of `name` (after it is redeployed or removed).
    pub fn unload(&self, name: &Name) {
        self.loaded.invalidate(name);
    }

    /// Run `event` through the function `name` in a fresh instance.
    ///
    /// # Errors
    /// An [`InvokeError`] saying why no result was produced; only this
    /// invocation is affected.
    pub async fn invoke(&self, name: &Name, event: &Event) -> Result<Option<Event>, InvokeError> {
        let loaded = match self.load(name) {
            Ok(loaded) => loaded,
            Err(e) => {
                self.metrics.failed_to_start(name.as_str(), e.kind());
                return Err(e);
            }
        };
        let started = Instant::now();
        let live = self.metrics.live_instances(name.as_str());
        live.inc();
        let result = self.run(name, &loaded, event).await;
        live.dec();
        self.metrics.finished(
            name.as_str(),
            started.elapsed(),
            result.as_ref().err().map(InvokeError::kind),
        );
        result
    }

    /// Instantiate `loaded` in a fresh store and call its handler.
    async fn run(
        &self,
        name: &Name,
        loaded: &Loaded,
        event: &Event,
    ) -> Result<Option<Event>, InvokeError> {
        let log = GuestLog::new(Arc::from(name.as_str()), event.id.clone());
        let mut store = Store::new(
            &self.engine,
            HostState::new(log.clone(), &loaded.env, loaded.memory_bytes),
        );
        store.limiter(|s| &mut s.memory);
        // The guest runs in slices of one epoch tick, yielding to the
        // executor in between so a spinning guest cannot starve other
        // tasks, until its deadline passes.
        let started = Instant::now();
        let timeout = loaded.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if started.elapsed() >= timeout {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let input = wit::Event::from(event);
        let outcome = async {
            let handler: Handler = loaded.pre.instantiate_async(&mut store).await?;
            handler.call_handle(&mut store, &input).await
        }
        .await;
        if log.dropped() > 0 {
            tracing::warn!(function = %name, event_id = %event.id, dropped = log.dropped(), "guest log records dropped over the per-invocation budget");
        }
        match outcome {
            Ok(Ok(Some(reply))) => self.check_reply(reply).map(Some),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(InvokeError::Handler(e.message)),
            Err(err) => {
                let classified = classify(&err, &store, loaded, &log);
                tracing::warn!(function = %name, event_id = %event.id, kind = classified.kind().as_str(), "invocation failed: {err:#}");
                Err(classified)
            }
        }
    }

    fn check_reply(&self, reply: wit::Event) -> Result<Event, InvokeError> {
        let size = bindings::reply_size(&reply);
        if size > self.config.max_reply_bytes {
            return Err(InvokeError::InvalidReply(format!(
                "the reply is {size} bytes, over the {} byte cap",
                self.config.max_reply_bytes
            )));
        }
        let event = Event::from(reply);
        event
            .validate()
            .map_err(|e| InvokeError::InvalidReply(e.to_string()))?;
        Ok(event)
    }

    /// The loaded function, loading it first on a cold start.
    fn load(&self, name: &Name) -> Result<Arc<Loaded>, InvokeError> {
        if let Some(l) = self.loaded.get(name) {
            self.metrics.started(name.as_str(), false);
            return Ok(l);
        }
        let loaded = self
            .loaded
            .try_get_with(name.clone(), || self.load_uncached(name).map(Arc::new))
            .map_err(|e: Arc<InvokeError>| match &*e {
                InvokeError::NotFound(n) => InvokeError::NotFound(n.clone()),
                other => InvokeError::Load {
                    function: name.clone(),
                    reason: other.to_string(),
                },
            })?;
        self.metrics.started(name.as_str(), true);
        Ok(loaded)
    }

    fn load_uncached(&self, name: &Name) -> Result<Loaded, InvokeError> {
        let record = self
            .functions
            .get(name)
            .ok_or_else(|| InvokeError::NotFound(name.clone()))?;
        let component =
            loader::load_artifact(&self.engine, &self.engine_key, &self.functions, &record)
                .map_err(|reason| InvokeError::Load {
                    function: name.clone(),
                    reason,
                })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(HandlerPre::new)
            .map_err(|e| InvokeError::Load {
                function: name.clone(),
                reason: format!("{e:#}"),
            })?;
        self.metrics.loaded();
        let s = &record.settings;
        Ok(Loaded {
            pre,
            timeout: s.timeout.unwrap_or(self.config.default_timeout),
            memory_bytes: s.memory_mib.unwrap_or(self.config.default_memory_mib) as usize
                * 1024
                * 1024,
            env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }

    /// Validate `bytes` as a `sluice:handler` component and precompile it.
    /// CPU-heavy: runs on a blocking thread.
    ///
    /// # Errors
    /// [`CompileError`] with the compiler's or linker's reason.
    pub async fn compile(self: &Arc<Self>, bytes: bytes::Bytes) -> Result<Compiled, CompileError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            loader::compile(&this.engine, &this.engine_key, &this.linker, &bytes)
        })
        .await
        .map_err(|e| CompileError::Internal(e.to_string()))?
    }
}

/// Turn a wasmtime error into the invocation error it stands for.
fn classify(
    err: &wasmtime::Error,
    store: &Store<HostState>,
    loaded: &Loaded,
    log: &GuestLog,
) -> InvokeError {
    if store.data().memory.exceeded() {
        return InvokeError::OutOfMemory {
            limit_mib: (store.data().memory.limit() / (1024 * 1024)) as u32,
        };
    }
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return InvokeError::Busy;
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => InvokeError::Timeout(loaded.timeout),
        Some(wasmtime::Trap::StackOverflow) => InvokeError::StackOverflow,
        Some(trap) => {
            let mut msg = trap.to_string();
            let stderr = log.stderr_tail();
            if !stderr.is_empty() {
                msg.push_str(&format!(" (guest stderr: {stderr})"));
            }
            InvokeError::Trap(msg)
        }
        None => InvokeError::Trap(format!("{err:#}")),
    }
}
