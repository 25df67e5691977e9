//! What each store holds: WASI context (with no ambient authority), the
//! memory cap, and the identity used to tag the guest's logs.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, Level};
use super::guest_log::GuestLog;

/// Per-invocation store data.
pub struct HostState {
    /// Built on the guest's first WASI call: most handler invocations make
    /// none, and building one (clocks, random sources, streams) is a
    /// measurable share of a fresh instance's cost.
    wasi: Option<WasiCtx>,
    env: Arc<[(String, String)]>,
    table: ResourceTable,
    /// The memory cap, and whether the guest ran into it.
    pub memory: MemoryCap,
    log: Arc<GuestLog>,
}

impl HostState {
    /// A fresh state: no files, no network, no environment beyond `env`;
    /// stdout and stderr go to the host log.
    pub fn new(log: Arc<GuestLog>, env: Arc<[(String, String)]>, memory_limit: usize) -> Self {
        Self {
            wasi: None,
            env,
            table: ResourceTable::new(),
            memory: MemoryCap::new(memory_limit),
            log,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (log, env) = (&self.log, &self.env);
        let ctx = self.wasi.get_or_insert_with(|| {
            let mut wasi = WasiCtx::builder();
            wasi.stdout(log.stdout())
                .stderr(log.stderr())
                .envs(env)
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
            wasi.build()
        });
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

impl bindings::sluice::handler::types::Host for HostState {}

impl bindings::sluice::handler::log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        self.log.record(level, &message);
    }
}

/// Caps the total linear memory of one store. Growth past the cap fails
/// the way `memory.grow` fails (the guest sees -1); `exceeded` records that
/// it happened, so the trap that usually follows is reported as
/// out-of-memory rather than as a generic trap.
#[derive(Debug)]
pub struct MemoryCap {
    limit: usize,
    exceeded: bool,
}

impl MemoryCap {
    /// A cap of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            exceeded: false,
        }
    }

    /// Whether the guest asked for more than the cap.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// The cap in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Forget an earlier invocation's overrun (a reused instance).
    pub fn reset(&mut self) {
        self.exceeded = false;
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Each handler component has one linear memory that matters (the
        // adapter and shims use the main module's), so the cap applies per
        // memory.
        if desired > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are pointer-sized; keep them within the same byte budget.
        Ok(desired.saturating_mul(std::mem::size_of::<usize>()) <= self.limit)
    }
}
