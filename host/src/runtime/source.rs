//! Source functions: components of the `sluice:handler/source` world, run
//! by the runtime on the same path as handlers (admission, precompiled
//! artifacts, CPU deadline, memory cap, guest log, metrics), with outbound
//! HTTP ([`super::host::outbound_http`]) as their one extra capability.
//!
//! A source function is not in the function store: its component comes
//! from its binding's file. Its precompiled artifact is kept in a
//! content-addressed cache, named by the component's digest and the
//! engine's key, so the next start with the same bytes and engine loads it
//! instead of compiling.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Engine;

use super::admission::{Admission, Wait};
use super::host::log::{function_budget, FunctionBudget, GuestLog};
use super::host::outbound_http::OutboundPolicy;
use super::host::HostState;
use super::instance::{arm_deadline, new_store, within_ceiling};
use super::loader::{self, LoadError};
use super::{classify, classify_instantiation, metered, InvokeError, Runtime};
use crate::event::Event;
use crate::metrics::FunctionMetrics;
use crate::registry::Digest;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "source",
        exports: { default: async },
        with: {
            "sluice:handler/types": crate::runtime::bindings::sluice::handler::types,
            "sluice:handler/log": crate::runtime::bindings::sluice::handler::log,
        },
    });
}

use self::bindings::SourcePre;

/// Largest state a run may hand to the next one.
pub const MAX_STATE_BYTES: usize = 64 * 1024;

/// What a source function binding asks of the runtime.
pub struct SourceSettings {
    /// CPU deadline of one run; default the runtime's `default_timeout`.
    pub timeout: Option<Duration>,
    /// Memory cap of one run in MiB; default the runtime's.
    pub memory_mib: Option<u32>,
    /// The binding's read-only values, sorted by key.
    pub config: Vec<(String, String)>,
    /// Where its outbound requests may go.
    pub outbound: OutboundPolicy,
}

/// What a successful run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Events in the order returned (not yet completed or validated).
    pub events: Vec<Event>,
    /// New state for the next run, if the function returned one.
    pub state: Option<Vec<u8>>,
}

/// A loaded source function, ready to run any number of times.
pub struct SourceFunction {
    name: Arc<str>,
    engine: Engine,
    pre: SourcePre<HostState>,
    timeout: Duration,
    memory_bytes: usize,
    config: Vec<(String, String)>,
    outbound: OutboundPolicy,
    log_budget: Arc<FunctionBudget>,
    admission: Admission,
    metrics: FunctionMetrics,
    artifact: PathBuf,
}

impl Runtime {
    /// Load the source function `name` from its component `bytes`: from
    /// its precompiled artifact in `cache_dir` when there is one for these
    /// bytes and this engine, otherwise compiled (on a blocking thread) and
    /// cached there once it links. Its runs are reported under the function
    /// label `source:NAME`.
    ///
    /// # Errors
    /// [`LoadError`] when the bytes are not a component of the
    /// `sluice:handler/source` world, or the cache cannot be used.
    pub async fn load_source(
        self: &Arc<Self>,
        name: &str,
        bytes: Vec<u8>,
        settings: SourceSettings,
        cache_dir: &Path,
    ) -> Result<SourceFunction, LoadError> {
        let label = format!("source:{name}");
        let path = loader::cached_artifact_path(cache_dir, &Digest::of(&bytes), &self.engine_key);
        let this = self.clone();
        let at = path.clone();
        let (pre, compiled) = tokio::task::spawn_blocking(move || {
            let artifact = loader::load_cached(&this.engine, &at, &bytes)?;
            let pre = this
                .source_linker
                .instantiate_pre(&artifact.component)
                .and_then(SourcePre::new)
                .map_err(|reason| LoadError::DoesNotFit {
                    world: "source",
                    reason,
                })?;
            if let Some(framed) = &artifact.compiled {
                loader::store_cached(&at, framed)?;
            }
            Ok::<_, LoadError>((pre, artifact.compiled.is_some()))
        })
        .await
        .map_err(|e| LoadError::Internal(e.to_string()))??;
        if compiled {
            self.metrics.artifact_compiled(&label);
            tracing::info!(source = name, artifact = %path.display(), "source function compiled; its artifact is cached for the next start");
        } else {
            tracing::info!(source = name, artifact = %path.display(), "source function loaded from its precompiled artifact");
        }
        let rc = &self.config;
        Ok(SourceFunction {
            name: Arc::from(name),
            engine: self.engine.clone(),
            pre,
            timeout: settings.timeout.unwrap_or(rc.default_timeout),
            memory_bytes: settings.memory_mib.unwrap_or(rc.default_memory_mib) as usize
                * 1024
                * 1024,
            config: settings.config,
            outbound: settings.outbound,
            log_budget: function_budget(),
            // One run at a time: a source's ticks never overlap.
            admission: Admission::new(1, 0),
            metrics: self.metrics.function(&label),
            artifact: path,
        })
    }
}

impl SourceFunction {
    /// Run the function once in a fresh instance, handing it `state`.
    /// Source functions stay loaded for the host's lifetime, so every run
    /// is a warm start.
    ///
    /// # Errors
    /// An [`InvokeError`] saying why the run produced nothing.
    pub async fn run(&self, tick: &str, state: Option<Vec<u8>>) -> Result<RunOutput, InvokeError> {
        let _slot = self.admission.enter(Wait::Unbounded).await?;
        metered(&self.metrics, false, self.run_once(tick, state)).await
    }

    /// Where its precompiled artifact is cached.
    pub fn artifact(&self) -> &Path {
        &self.artifact
    }

    async fn run_once(&self, tick: &str, state: Option<Vec<u8>>) -> Result<RunOutput, InvokeError> {
        let log = GuestLog::new(self.name.clone(), self.log_budget.clone());
        log.begin(&format!("tick {tick}"));
        let data = HostState::new(
            log.clone(),
            Arc::from([]),
            self.memory_bytes,
            Some(self.outbound.clone()),
        );
        let mut store = new_store(&self.engine, data, self.timeout);
        let source = match within_ceiling(self.timeout, self.pre.instantiate_async(&mut store))
            .await
        {
            Ok(s) => s,
            Err(err) => {
                let classified = classify_instantiation(&err);
                tracing::warn!(source = %self.name, kind = classified.kind().as_str(), "instantiation failed: {err:#}");
                return Err(classified);
            }
        };
        arm_deadline(&mut store, self.timeout);
        let outcome = within_ceiling(
            self.timeout,
            source.call_run(&mut store, &self.config, state.as_deref()),
        )
        .await;
        let dropped = log.dropped();
        if dropped > 0 {
            tracing::warn!(source = %self.name, dropped, "guest log records dropped over the log budget");
        }
        match outcome {
            Ok(Ok(out)) => {
                if out
                    .state
                    .as_ref()
                    .is_some_and(|s| s.len() > MAX_STATE_BYTES)
                {
                    return Err(InvokeError::InvalidReply(format!(
                        "the returned state is over the {MAX_STATE_BYTES} byte cap"
                    )));
                }
                Ok(RunOutput {
                    events: out.events.into_iter().map(Event::from).collect(),
                    state: out.state,
                })
            }
            Ok(Err(e)) => Err(InvokeError::Handler(e.message)),
            Err(err) => Err(classify(&err, &store.data().memory, self.timeout, &log)),
        }
    }
}
