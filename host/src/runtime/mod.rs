//! Running wasm: one shared engine, a fresh sandboxed instance per event
//! (or per source tick), CPU and memory limits, and a cache of loaded
//! functions that lets idle functions scale to zero. Handlers and source
//! functions take the same path: admission, precompiled artifacts, the CPU
//! deadline, the memory cap, the guest log and the metrics.
//!
//! - [`Runtime::compile`] validates an uploaded component against the
//!   `sluice:handler` world and precompiles it.
//! - [`Runtime::invoke`] runs one event through one function.
//! - [`Runtime::recompile_stale`] compiles, in the background, the
//!   artifacts a new engine cannot use (after a wasmtime upgrade).
//! - [`Runtime::load_source`] loads a source function ([`source`]).
//! - Loaded functions ([`Loaded`]: the deserialized component and its
//!   `InstancePre`) live in a `moka` cache with a time-to-idle, keyed by
//!   the deploy they were loaded from ([`Version`]); an evicted function
//!   costs nothing until its next event loads it again from the
//!   precompiled artifact (a cold start, on a blocking thread: it reads and
//!   checks the artifact, and compiles it when it is stale).
//! - [`host`]: what guests may import, one module per capability.

mod admission;
pub(crate) mod bindings;
mod engine;
mod error;
pub mod host;
mod instance;
mod loader;
pub mod source;
mod state;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::Mutex;

use wasmtime::component::{ComponentExportIndex, Linker};
use wasmtime::Engine;

pub use self::engine::EPOCH_TICK;
pub use self::error::{ErrorKind, InvokeError};
pub use self::loader::{CompileError, Compiled, LoadError};
pub use self::source::{RunOutput, SourceFunction, SourceSettings};

pub use self::admission::Wait;
pub use self::state::MemoryCap;

use self::admission::Admission;
use self::bindings::sluice::handler::types as wit;
use self::bindings::{EventView, HandlerPre};
use self::host::log::{FunctionBudget, GuestLog};
use self::host::HostState;
use self::instance::{CallOutcome, Instance, Preempted};
use crate::config::RuntimeConfig;
use crate::event::Event;
use crate::metrics::{FunctionMetrics, RuntimeMetrics};
use crate::name::Name;
use crate::registry::{FunctionRecord, FunctionStore, Version};

/// A function ready to instantiate: its component, linked and type-checked,
/// with its limits, and its idle instances when it reuses them.
pub struct Loaded {
    /// The function's name, which its guest log tags records with (shared
    /// by its instances, so a fresh one allocates no copy).
    name: Arc<str>,
    pre: HandlerPre<HostState>,
    /// Where the `handle` export is, found once.
    handle: ComponentExportIndex,
    /// Whether `handle` was checked to take an [`EventView`] (on the first
    /// instance: see [`bindings::handle_takes_the_view`]).
    view_checked: AtomicBool,
    /// The component imports nothing, so it runs on the calling thread
    /// (see [`instance`]).
    on_thread: bool,
    timeout: Duration,
    memory_bytes: usize,
    env: Arc<[(String, String)]>,
    log_budget: Arc<FunctionBudget>,
    /// `Some(n)`: keep instances for up to `n` events.
    reuse: Option<u32>,
    idle: Mutex<Vec<Instance>>,
    metrics: FunctionMetrics,
}

impl Loaded {
    /// Drop reused instances idle for longer than `max_idle`.
    fn prune_idle(&self, max_idle: Duration) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|i| i.idle_since.elapsed() < max_idle);
    }
}

/// The wasm runtime. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    engine_key: String,
    linker: Linker<HostState>,
    source_linker: Linker<HostState>,
    functions: Arc<FunctionStore>,
    /// Keyed by deploy, not by name: a load that read a version replaced
    /// meanwhile can only fill a key nobody looks up again.
    loaded: moka::sync::Cache<Version, Arc<Loaded>>,
    admissions: Mutex<HashMap<Name, Arc<Admission>>>,
    /// Artifacts being compiled, so each is compiled once.
    compiling: loader::Compiling,
    config: RuntimeConfig,
    metrics: RuntimeMetrics,
    _ticker: engine::EpochTicker,
    /// Runs once in the next cold load, once it has read the artifact
    /// (tests drive interleavings with it).
    #[cfg(test)]
    after_read: Mutex<Option<LoadHook>>,
}

#[cfg(test)]
type LoadHook = Box<dyn FnOnce(&FunctionRecord) + Send>;

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
        let linker = host::handler_linker(&engine).map_err(StartError)?;
        let source_linker = host::source_linker(&engine).map_err(StartError)?;
        let listener_metrics = metrics.clone();
        let loaded: moka::sync::Cache<Version, Arc<Loaded>> = moka::sync::Cache::builder()
            .max_capacity(config.max_resident)
            .time_to_idle(config.idle_timeout)
            .eviction_listener(move |_, loaded: Arc<Loaded>, cause| {
                listener_metrics.unloaded(cause.was_evicted());
                tracing::debug!(function = %loaded.name, ?cause, "function unloaded");
            })
            .build();
        // Expiry in moka happens during its housekeeping; run it regularly
        // so an idle function is unloaded even when no event arrives, and
        // drop reused instances that sat idle too long.
        let housekeeping = loaded.clone();
        let reuse_idle = config.reuse_idle_timeout;
        let ticker = engine::EpochTicker::start(engine.clone(), move || {
            housekeeping.run_pending_tasks();
            for (_, l) in housekeeping.iter() {
                if l.reuse.is_some() {
                    l.prune_idle(reuse_idle);
                }
            }
        });
        Ok(Self {
            engine_key: engine::engine_key(&engine, loader::ARTIFACT_FORMAT),
            _ticker: ticker,
            engine,
            linker,
            source_linker,
            functions,
            loaded,
            admissions: Mutex::new(HashMap::new()),
            compiling: loader::Compiling::default(),
            config,
            metrics,
            #[cfg(test)]
            after_read: Mutex::new(None),
        })
    }

    /// The runtime's settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
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

    /// Forget the loaded copies of `name` (after it is redeployed or
    /// removed).
    pub fn unload(&self, name: &Name) {
        for (version, loaded) in &self.loaded {
            if *loaded.name == *name.as_str() {
                self.loaded.invalidate(&*version);
            }
        }
        self.admissions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// Run `event` through the function `name`, waiting as long as it takes
    /// for one of the function's slots (for callers that bound their own
    /// concurrency, like the dispatcher).
    ///
    /// # Errors
    /// An [`InvokeError`] saying why no result was produced; only this
    /// invocation is affected.
    pub async fn invoke(
        self: &Arc<Self>,
        name: &Name,
        event: &Event,
    ) -> Result<Option<Event>, InvokeError> {
        self.invoke_with(name, event, Wait::Unbounded).await
    }

    /// Like [`Runtime::invoke`], but shed with [`InvokeError::Busy`] when the
    /// function's wait queue is full (for direct HTTP invocations: 429).
    ///
    /// # Errors
    /// As [`Runtime::invoke`], plus `Busy`.
    pub async fn invoke_bounded(
        self: &Arc<Self>,
        name: &Name,
        event: &Event,
    ) -> Result<Option<Event>, InvokeError> {
        self.invoke_with(name, event, Wait::Bounded).await
    }

    async fn invoke_with(
        self: &Arc<Self>,
        name: &Name,
        event: &Event,
        wait: Wait,
    ) -> Result<Option<Event>, InvokeError> {
        let admission = match self.admission(name) {
            Ok(a) => a,
            Err(e) => {
                self.metrics
                    .failed_to_start(name.as_str(), e.kind().as_str());
                return Err(e);
            }
        };
        let _slot = match admission.enter(wait).await {
            Ok(slot) => slot,
            Err(e) => {
                self.metrics
                    .failed_to_start(name.as_str(), e.kind().as_str());
                return Err(e);
            }
        };
        let (loaded, cold) = match self.load(name).await {
            Ok(loaded) => loaded,
            Err(e) => {
                self.metrics
                    .failed_to_start(name.as_str(), e.kind().as_str());
                return Err(e);
            }
        };
        metered(&loaded.metrics, cold, self.run(name, &loaded, event)).await
    }

    /// Call the handler in an instance: a reused idle one when the function
    /// allows it, otherwise a fresh one; on the calling thread when the
    /// component imports nothing, starting over on a fiber if it ran past
    /// its first epoch slice.
    async fn run(
        &self,
        name: &Name,
        loaded: &Loaded,
        event: &Event,
    ) -> Result<Option<Event>, InvokeError> {
        let input = EventView::from(event);
        let mut reused = loaded
            .reuse
            .and_then(|_| loaded.idle.lock().unwrap_or_else(|p| p.into_inner()).pop());
        if loaded.on_thread {
            let instance = match reused.take() {
                Some(i) => Some(i),
                None => match Instance::new_on_thread(&self.engine, loaded) {
                    Ok(Ok(i)) => Some(i),
                    Ok(Err(err)) => return Err(self.instantiation_failed(name, event, &err)),
                    Err(Preempted) => None,
                },
            };
            let finished = instance.and_then(|mut i| Some((i.call_on_thread(&input).ok()?, i)));
            if let Some((outcome, instance)) = finished {
                loaded.metrics.ran_on_thread();
                return self.finish(name, loaded, event, instance, outcome);
            }
            loaded.metrics.preempted();
        }
        // Boxed: wasmtime's async instantiation and call are kilobytes of
        // future state, which would otherwise be part of (and be moved with)
        // every invocation's future, the common on-thread ones included.
        Box::pin(self.run_on_fiber(name, loaded, event, &input, reused)).await
    }

    /// Call the handler on a fiber: every component that imports WASI, and
    /// one that imports nothing but was preempted on the thread (then in a
    /// fresh instance).
    async fn run_on_fiber(
        &self,
        name: &Name,
        loaded: &Loaded,
        event: &Event,
        input: &EventView<'_>,
        reused: Option<Instance>,
    ) -> Result<Option<Event>, InvokeError> {
        let mut instance = match reused {
            Some(i) => i,
            None => Instance::new(&self.engine, loaded)
                .await
                .map_err(|err| self.instantiation_failed(name, event, &err))?,
        };
        let outcome = instance.call(input, loaded.timeout).await;
        self.finish(name, loaded, event, instance, outcome)
    }

    fn instantiation_failed(
        &self,
        name: &Name,
        event: &Event,
        err: &wasmtime::Error,
    ) -> InvokeError {
        let classified = classify_instantiation(err);
        tracing::warn!(function = %name, event_id = %event.id, kind = classified.kind().as_str(), "instantiation failed: {err:#}");
        classified
    }

    /// Turn a call's outcome into the invocation's result, and keep the
    /// instance for its next event when the function reuses them.
    fn finish(
        &self,
        name: &Name,
        loaded: &Loaded,
        event: &Event,
        instance: Instance,
        outcome: CallOutcome,
    ) -> Result<Option<Event>, InvokeError> {
        let dropped = instance.log().dropped();
        if dropped > 0 {
            tracing::warn!(function = %name, event_id = %event.id, dropped, "guest log records dropped over the log budget");
        }
        let result = match outcome {
            Ok(Ok(Some(reply))) => self.check_reply(reply).map(Some),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(InvokeError::Handler(e.message)),
            Err(err) => {
                let classified = classify(
                    &err,
                    &instance.store().data().memory,
                    loaded.timeout,
                    instance.log(),
                );
                tracing::warn!(function = %name, event_id = %event.id, kind = classified.kind().as_str(), "invocation failed: {err:#}");
                // A trapped instance is in an unknown state: never reuse it.
                return Err(classified);
            }
        };
        if let Some(max_uses) = loaded.reuse {
            if instance.uses < max_uses {
                loaded
                    .idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(instance);
            }
        }
        result
    }

    /// The admission control of `name`, created from its settings.
    fn admission(&self, name: &Name) -> Result<Arc<Admission>, InvokeError> {
        let mut map = self.admissions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = map.get(name) {
            return Ok(a.clone());
        }
        let record = self
            .functions
            .get(name)
            .ok_or_else(|| InvokeError::NotFound(name.clone()))?;
        let s = &record.settings;
        let a = Arc::new(Admission::new(
            s.max_concurrency
                .unwrap_or(self.config.default_max_concurrency) as usize,
            s.max_queue.unwrap_or(self.config.default_max_queue) as usize,
        ));
        map.insert(name.clone(), a.clone());
        Ok(a)
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

    /// The loaded function, loading it first on a cold start (then `true`),
    /// on a blocking thread.
    async fn load(self: &Arc<Self>, name: &Name) -> Result<(Arc<Loaded>, bool), InvokeError> {
        let version = self
            .functions
            .version(name)
            .ok_or_else(|| InvokeError::NotFound(name.clone()))?;
        if let Some(l) = self.loaded.get(&version) {
            return Ok((l, false));
        }
        let (this, cold) = (self.clone(), name.clone());
        tokio::task::spawn_blocking(move || this.load_cold(&cold))
            .await
            .map_err(|e| InvokeError::Load {
                function: name.clone(),
                reason: e.to_string(),
            })?
    }

    /// A cold start: concurrent ones of one version share one load.
    /// Blocking: file reads, and maybe Cranelift.
    fn load_cold(&self, name: &Name) -> Result<(Arc<Loaded>, bool), InvokeError> {
        let (version, record) = self
            .functions
            .current(name)
            .ok_or_else(|| InvokeError::NotFound(name.clone()))?;
        let loaded = self
            .loaded
            .try_get_with(version, || self.load_uncached(&record).map(Arc::new))
            .map_err(|e: Arc<InvokeError>| InvokeError::Load {
                function: name.clone(),
                reason: e.to_string(),
            })?;
        // Redeployed or removed while it loaded: this event still runs the
        // version it found (it came first), but the copy leaves the cache.
        if self.functions.version(name) != Some(version) {
            self.loaded.invalidate(&version);
        }
        Ok((loaded, true))
    }

    fn load_uncached(&self, record: &FunctionRecord) -> Result<Loaded, InvokeError> {
        let name = &record.name;
        let artifact = loader::load_artifact(
            &self.engine,
            &self.engine_key,
            &self.functions,
            record,
            &self.compiling,
        )
        .map_err(|e| InvokeError::Load {
            function: name.clone(),
            reason: e.to_string(),
        })?;
        if artifact.compiled.is_some() {
            self.metrics.artifact_compiled(name.as_str());
        }
        #[cfg(test)]
        if let Some(hook) = self.after_read.lock().unwrap().take() {
            hook(record);
        }
        let component = &artifact.component;
        let load_failed = |reason: String| InvokeError::Load {
            function: name.clone(),
            reason,
        };
        let pre = self
            .linker
            .instantiate_pre(component)
            .and_then(HandlerPre::new)
            .map_err(|e| load_failed(format!("{e:#}")))?;
        let handle = component
            .get_export_index(None, "handle")
            .ok_or_else(|| load_failed("the component has no `handle` export".into()))?;
        let on_thread = imports_only_types(&self.engine, component);
        self.metrics.loaded();
        let s = &record.settings;
        Ok(Loaded {
            name: Arc::from(name.as_str()),
            pre,
            handle,
            view_checked: AtomicBool::new(false),
            on_thread,
            timeout: s.timeout.unwrap_or(self.config.default_timeout),
            memory_bytes: s.memory_mib.unwrap_or(self.config.default_memory_mib) as usize
                * 1024
                * 1024,
            env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            log_budget: host::log::function_budget(),
            reuse: s.reuse.filter(|&n| n > 1),
            idle: Mutex::new(Vec::new()),
            metrics: self.metrics.function(name.as_str()),
        })
    }

    /// Compile the artifacts missing for this engine (every function's,
    /// after a wasmtime upgrade), in the background, one at a time on a
    /// blocking thread, so that the first event of each function does not
    /// wait for Cranelift. A function invoked meanwhile waits for its own
    /// compile instead of starting a second one. Stops between compiles
    /// once `stop` is cancelled.
    pub fn recompile_stale(
        self: &Arc<Self>,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let stale: Vec<FunctionRecord> = this
                .functions
                .list()
                .into_iter()
                .filter(|r| !this.functions.artifact_path(r, &this.engine_key).exists())
                .collect();
            if stale.is_empty() {
                return;
            }
            tracing::info!(
                functions = stale.len(),
                "compiling the artifacts of this engine in the background"
            );
            for record in stale {
                if stop.is_cancelled() {
                    return;
                }
                let compiled = loader::ensure_artifact(
                    &this.engine,
                    &this.engine_key,
                    &this.functions,
                    &record,
                    &this.compiling,
                );
                match compiled {
                    Ok(true) => this.metrics.artifact_compiled(record.name.as_str()),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(function = %record.name, "compiling its artifact failed: {e}");
                    }
                }
            }
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

/// Whether `component` imports nothing but type definitions (such as the
/// `sluice:handler/types` interface): no function, module or resource, so
/// nothing it runs can block or reach outside its instance.
fn imports_only_types(engine: &Engine, component: &wasmtime::component::Component) -> bool {
    use wasmtime::component::types::ComponentItem;
    fn only_types<'a>(
        engine: &Engine,
        mut items: impl Iterator<Item = (&'a str, wasmtime::component::types::ComponentExtern<'a>)>,
    ) -> bool {
        items.all(|(_, item)| match item.ty {
            ComponentItem::Type(_) => true,
            ComponentItem::ComponentInstance(instance) => {
                only_types(engine, instance.exports(engine))
            }
            _ => false,
        })
    }
    only_types(engine, component.component_type().imports(engine))
}

/// Count one run in `metrics` (started, live while it runs, its duration
/// and error kind): the same for handlers and source functions.
async fn metered<R>(
    metrics: &FunctionMetrics,
    cold: bool,
    run: impl std::future::Future<Output = Result<R, InvokeError>>,
) -> Result<R, InvokeError> {
    metrics.started(cold);
    let started = Instant::now();
    metrics.live_instances().inc();
    let result = run.await;
    metrics.live_instances().dec();
    metrics.finished(
        started.elapsed(),
        result.as_ref().err().map(|e| e.kind().as_str()),
    );
    result
}

/// Turn an instantiation error into the invocation error it stands for.
fn classify_instantiation(err: &wasmtime::Error) -> InvokeError {
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return InvokeError::Busy;
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            InvokeError::Trap("start function ran past its deadline".into())
        }
        Some(trap) => InvokeError::Trap(trap.to_string()),
        None => InvokeError::Trap(format!("instantiation failed: {err:#}")),
    }
}

/// Turn a wasmtime error into the invocation error it stands for.
/// Shared by handlers and source functions: `memory` is the store's cap,
/// `timeout` its deadline, `log` its guest log (for a panic message).
fn classify(
    err: &wasmtime::Error,
    memory: &MemoryCap,
    timeout: Duration,
    log: &GuestLog,
) -> InvokeError {
    if memory.exceeded() {
        return InvokeError::OutOfMemory {
            limit_mib: (memory.limit() / (1024 * 1024)) as u32,
        };
    }
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return InvokeError::Busy;
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => InvokeError::Timeout(timeout),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FunctionSettings;
    use std::sync::mpsc;

    /// The bytes of the built function `name` (`cargo xtask functions`).
    fn wasm(name: &str) -> Vec<u8> {
        let dir = std::env::var_os("SLUICE_FUNCTIONS_DIR").map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/functions"),
            std::path::PathBuf::from,
        );
        let path = dir.join(format!("{name}.wasm"));
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask functions`)", path.display()))
    }

    fn runtime(dir: &std::path::Path, metrics: &crate::metrics::Metrics) -> Arc<Runtime> {
        let functions = Arc::new(FunctionStore::open(dir).unwrap());
        let metrics = metrics.runtime.clone();
        Arc::new(Runtime::new(RuntimeConfig::default(), functions, metrics).unwrap())
    }

    /// Deploy the built function `component` as `name`, the way the admin
    /// API does.
    async fn deploy(runtime: &Arc<Runtime>, name: &Name, component: &str) {
        let bytes = wasm(component);
        let compiled = runtime.compile(bytes.clone().into()).await.unwrap();
        runtime
            .functions()
            .put(
                name,
                &bytes,
                Some((&compiled.engine_key, &compiled.artifact)),
                FunctionSettings::default(),
            )
            .unwrap();
        runtime.unload(name);
    }

    fn after_read_hook(runtime: &Runtime, hook: impl FnOnce(&FunctionRecord) + Send + 'static) {
        *runtime.after_read.lock().unwrap() = Some(Box::new(hook));
    }

    #[tokio::test]
    async fn a_load_of_the_old_version_is_not_cached_over_a_redeploy() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime(dir.path(), &crate::metrics::Metrics::new());
        let f: Name = "f".parse().unwrap();
        deploy(&runtime, &f, "echo").await;
        // `drop`, compiled before the race.
        let bytes = wasm("drop");
        let compiled = runtime.compile(bytes.clone().into()).await.unwrap();
        // Once the cold load has read echo's artifact, `f` is redeployed as
        // drop.
        let (rt, name) = (runtime.clone(), f.clone());
        after_read_hook(&runtime, move |record| {
            assert_eq!(record.digest, crate::registry::Digest::of(&wasm("echo")));
            rt.functions()
                .put(
                    &name,
                    &bytes,
                    Some((&compiled.engine_key, &compiled.artifact)),
                    FunctionSettings::default(),
                )
                .unwrap();
            rt.unload(&name);
        });
        let event = Event::new("1", "/s", "t");
        // The event that started before the redeploy runs the old version...
        let reply = runtime.invoke(&f, &event).await.unwrap();
        assert_eq!(reply.unwrap().ty, "t.echoed");
        // ...but every later one runs the new version.
        let reply = runtime.invoke(&f, &event).await.unwrap();
        assert!(
            reply.is_none(),
            "the old version was cached over the redeploy: {reply:?}"
        );
    }

    /// On a current-thread runtime the test's thread is the only async
    /// worker: a cold load that ran on it would keep it from answering.
    #[tokio::test]
    async fn a_cold_load_leaves_the_async_worker_free() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime(dir.path(), &crate::metrics::Metrics::new());
        let f: Name = "f".parse().unwrap();
        deploy(&runtime, &f, "echo").await;
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (go, go_rx) = mpsc::channel::<()>();
        let (answered_tx, answered) = mpsc::channel();
        after_read_hook(&runtime, move |_| {
            let _ = started_tx.send(());
            // Bounded only so that a blocked worker fails the test rather
            // than hanging it.
            let _ = answered_tx.send(go_rx.recv_timeout(Duration::from_secs(10)).is_ok());
        });
        let invoke = tokio::spawn({
            let (runtime, f) = (runtime.clone(), f.clone());
            async move { runtime.invoke(&f, &Event::new("1", "/s", "t")).await }
        });
        started.await.unwrap();
        let _ = go.send(());
        assert!(invoke.await.unwrap().unwrap().is_some());
        assert!(
            answered.recv().unwrap(),
            "the cold load held the async worker"
        );
    }

    #[tokio::test]
    async fn an_event_during_the_background_compile_waits_for_that_compile() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = crate::metrics::Metrics::new();
        let runtime = runtime(dir.path(), &metrics);
        let f: Name = "f".parse().unwrap();
        deploy(&runtime, &f, "echo").await;
        // As after a wasmtime upgrade: no artifact for this engine.
        let record = runtime.functions().get(&f).unwrap();
        let artifact = runtime
            .functions()
            .artifact_path(&record, &runtime.engine_key);
        std::fs::remove_file(&artifact).unwrap();
        let (release, held) = mpsc::channel::<()>();
        *runtime.compiling.hooks.hold.lock().unwrap() = Some(held);
        let recompile = runtime.recompile_stale(tokio_util::sync::CancellationToken::new());
        let invoke = tokio::spawn({
            let (runtime, f) = (runtime.clone(), f.clone());
            async move { runtime.invoke(&f, &Event::new("1", "/s", "t")).await }
        });
        // Whichever claimed the compile first, the other waits for it.
        let one_waits = async {
            while runtime.compiling.hooks.waiters() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), one_waits)
            .await
            .expect("neither the event nor the background compile waited for the other");
        drop(release);
        recompile.await.unwrap();
        assert!(invoke.await.unwrap().unwrap().is_some());
        assert!(artifact.is_file());
        let compiles = "sluice_artifact_compiles_total{function=\"f\"} 1";
        let text = metrics.render();
        assert!(
            text.lines().any(|l| l == compiles),
            "{compiles} missing in:\n{text}"
        );
    }

    #[tokio::test]
    async fn stale_artifacts_are_compiled_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = crate::metrics::Metrics::new();
        let runtime = runtime(dir.path(), &metrics);
        let (f, g): (Name, Name) = ("f".parse().unwrap(), "g".parse().unwrap());
        deploy(&runtime, &f, "echo").await;
        deploy(&runtime, &g, "drop").await;
        let record = runtime.functions().get(&f).unwrap();
        let artifact = runtime
            .functions()
            .artifact_path(&record, &runtime.engine_key);
        std::fs::remove_file(&artifact).unwrap();
        runtime
            .recompile_stale(tokio_util::sync::CancellationToken::new())
            .await
            .unwrap();
        assert!(artifact.is_file());
        let text = metrics.render();
        assert!(
            text.contains("sluice_artifact_compiles_total{function=\"f\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("sluice_artifact_compiles_total{function=\"g\"}"),
            "{text}"
        );
        // The next event loads the artifact: no second compile.
        assert!(runtime
            .invoke(&f, &Event::new("1", "/s", "t"))
            .await
            .unwrap()
            .is_some());
        assert!(metrics
            .render()
            .contains("sluice_artifact_compiles_total{function=\"f\"} 1"));
    }
}
