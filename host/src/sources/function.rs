//! Source functions: components of the `sluice:handler/source` world, run
//! on the shared engine with the same CPU deadline, memory cap and log
//! handling as handlers, plus `wasi:http` outgoing requests filtered by the
//! binding's allow-list.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::{classify, MemoryCap};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::outbound::{AllowList, OutboundPolicy};
use super::spec::FunctionSourceSpec;
use crate::event::Event;
use crate::metrics::SourceMetrics;
use crate::runtime::bindings::sluice::handler::{log as wit_log, types as wit_types};
use crate::runtime::guest_log::GuestLog;
use crate::runtime::{InvokeError, Runtime};

mod bindings {
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

use self::bindings::{Source, SourcePre};

/// Largest state a run may hand to the next one.
pub const MAX_STATE_BYTES: usize = 64 * 1024;

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
    pre: SourcePre<SourceState>,
    timeout: Duration,
    memory_bytes: usize,
    config: Vec<(String, String)>,
    allowed: Arc<AllowList>,
    metrics: SourceMetrics,
    log_budget: Arc<crate::runtime::guest_log::FunctionBudget>,
}

impl SourceFunction {
    /// Read, compile and link the component of `spec` on the runtime's
    /// engine. CPU-heavy: compiles on a blocking thread.
    ///
    /// # Errors
    /// A message saying why the component cannot be used.
    pub async fn load(
        runtime: &Runtime,
        name: &str,
        spec: &FunctionSourceSpec,
        metrics: SourceMetrics,
    ) -> Result<Self, String> {
        let bytes = std::fs::read(&spec.path)
            .map_err(|e| format!("reading {}: {e}", spec.path.display()))?;
        let engine = runtime.engine().clone();
        let pre = {
            let engine = engine.clone();
            tokio::task::spawn_blocking(move || -> Result<_, String> {
                let component = Component::new(&engine, &bytes)
                    .map_err(|e| format!("invalid component: {e:#}"))?;
                let linker = linker(&engine).map_err(|e| format!("{e:#}"))?;
                linker
                    .instantiate_pre(&component)
                    .and_then(SourcePre::new)
                    .map_err(|e| {
                        format!("the component does not fit the sluice:handler/source world: {e:#}")
                    })
            })
            .await
            .map_err(|e| e.to_string())??
        };
        let rc = runtime.config();
        Ok(Self {
            name: Arc::from(name),
            engine,
            pre,
            timeout: spec.timeout.unwrap_or(rc.default_timeout),
            memory_bytes: spec.memory_mib.unwrap_or(rc.default_memory_mib) as usize * 1024 * 1024,
            config: spec
                .config
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            allowed: Arc::new(AllowList::new(&spec.allowed_outbound_hosts)?),
            metrics,
            log_budget: crate::runtime::guest_log::function_budget(),
        })
    }

    /// Run the function once in a fresh instance, handing it `state`.
    ///
    /// # Errors
    /// An [`InvokeError`] saying why the run produced nothing.
    pub async fn run(&self, tick: &str, state: Option<Vec<u8>>) -> Result<RunOutput, InvokeError> {
        let log = GuestLog::new(self.name.clone(), self.log_budget.clone());
        log.begin(&format!("tick {tick}"));
        let mut wasi = WasiCtx::builder();
        wasi.stdout(log.stdout())
            .stderr(log.stderr())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let mut store = Store::new(
            &self.engine,
            SourceState {
                wasi: wasi.build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                hooks: OutboundPolicy {
                    source: self.name.clone(),
                    allowed: self.allowed.clone(),
                    metrics: self.metrics.clone(),
                },
                memory: MemoryCap::new(self.memory_bytes),
                log: log.clone(),
            },
        );
        store.limiter(|s| &mut s.memory);
        // CPU deadline in epoch slices, as for handlers; time spent waiting
        // on outbound HTTP counts too, which bounds a hanging request.
        let started = Instant::now();
        let timeout = self.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if started.elapsed() >= timeout {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let run = async {
            let source = self.pre.instantiate_async(&mut store).await?;
            source
                .call_run(&mut store, &self.config, state.as_deref())
                .await
        };
        // Host calls (an HTTP request in flight) do not hit epoch checks,
        // so the deadline is also enforced from outside.
        let outcome = match tokio::time::timeout(timeout + Duration::from_millis(50), run).await {
            Ok(outcome) => outcome,
            Err(_) => return Err(InvokeError::Timeout(timeout)),
        };
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
            Err(err) => Err(classify(&err, &store.data().memory, timeout, &log)),
        }
    }
}

fn linker(engine: &Engine) -> wasmtime::Result<Linker<SourceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Source::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Per-run store data.
struct SourceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundPolicy,
    memory: MemoryCap,
    log: Arc<GuestLog>,
}

impl WasiView for SourceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for SourceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl wit_types::Host for SourceState {}

impl bindings::sluice::handler::source_types::Host for SourceState {}

impl wit_log::Host for SourceState {
    fn log(&mut self, level: wit_log::Level, message: String) {
        self.log.record(level, &message);
    }
}
