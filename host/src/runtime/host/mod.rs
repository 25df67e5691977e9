//! Host capabilities: one module per thing a guest may import, each with
//! its own per-instance state and its own linker wiring (Spin's factors are
//! the model). [`HostState`] composes them into the data of one store;
//! [`handler_linker`] and [`source_linker`] link what each world may use.
//!
//! - [`log`]: `sluice:handler/log`, stdout and stderr into the host log.
//! - [`wasi`]: WASI preview 2 without ambient authority.
//! - [`outbound_http`]: `wasi:http/outgoing-handler` limited to an
//!   allow-list (source functions only).

pub mod log;
pub mod outbound_http;
pub mod wasi;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::Engine;
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use self::log::{GuestLog, LogView};
use self::outbound_http::{HttpState, OutboundPolicy};
use self::wasi::WasiState;
use super::bindings::sluice::handler::types;
use super::source::bindings::sluice::handler::source_types;
use super::state::MemoryCap;

/// The data of one store: each capability's state, the resource table
/// they share, and the memory cap.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiState,
    log: Arc<GuestLog>,
    /// Only source functions are linked to `wasi:http`; built on first use.
    http: Option<HttpState>,
    outbound: Option<OutboundPolicy>,
    /// The memory cap, and whether the guest ran into it.
    pub memory: MemoryCap,
}

impl HostState {
    /// A fresh state: no files, no network, no environment beyond `env`;
    /// stdout and stderr go to `log`; outbound HTTP only as `outbound`
    /// allows (`None`: refused).
    pub fn new(
        log: Arc<GuestLog>,
        env: Arc<[(String, String)]>,
        memory_limit: usize,
        outbound: Option<OutboundPolicy>,
    ) -> Self {
        Self {
            table: ResourceTable::new(),
            wasi: WasiState::new(env),
            log,
            http: None,
            outbound,
            memory: MemoryCap::new(memory_limit),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.view(&mut self.table, &self.log)
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let outbound = &mut self.outbound;
        let http = self.http.get_or_insert_with(|| {
            HttpState::new(outbound.take().unwrap_or_else(OutboundPolicy::deny_all))
        });
        http.view(&mut self.table)
    }
}

impl LogView for HostState {
    fn guest_log(&self) -> &GuestLog {
        &self.log
    }
}

impl types::Host for HostState {}

impl source_types::Host for HostState {}

/// The linker of the `sluice:handler/handler` world: WASI and logging.
///
/// # Errors
/// When wasmtime refuses a definition (a bug).
pub fn handler_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasi::add_to_linker(&mut linker)?;
    log::add_to_linker(&mut linker)?;
    types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// The linker of the `sluice:handler/source` world: WASI, logging and
/// outbound HTTP.
///
/// # Errors
/// When wasmtime refuses a definition (a bug).
pub fn source_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = handler_linker(engine)?;
    outbound_http::add_to_linker(&mut linker)?;
    source_types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}
