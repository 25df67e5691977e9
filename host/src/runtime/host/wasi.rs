//! The WASI capability: WASI preview 2 with no ambient authority. No
//! preopened directories, no sockets (TCP, UDP and name lookup are off), no
//! arguments, no environment beyond what the function's config declares;
//! stdin is closed; stdout and stderr go to the guest's log. Clocks and
//! random numbers are available.

use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::log::GuestLog;

/// The WASI state of one instance. The context is built on the guest's
/// first WASI call: most handler invocations make none, and building one
/// (clocks, random sources, streams) is a measurable share of a fresh
/// instance's cost.
pub struct WasiState {
    ctx: Option<WasiCtx>,
    env: Arc<[(String, String)]>,
}

impl WasiState {
    /// No context yet; `env` is the only environment it will have.
    pub fn new(env: Arc<[(String, String)]>) -> Self {
        Self { ctx: None, env }
    }

    /// The view WASI's host functions use, building the context first if
    /// needed, with its output going to `log`.
    pub fn view<'a>(
        &'a mut self,
        table: &'a mut ResourceTable,
        log: &Arc<GuestLog>,
    ) -> WasiCtxView<'a> {
        let env = &self.env;
        let ctx = self.ctx.get_or_insert_with(|| {
            let mut wasi = WasiCtx::builder();
            wasi.stdout(log.stdout())
                .stderr(log.stderr())
                .envs(env)
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
            wasi.build()
        });
        WasiCtxView { ctx, table }
    }
}

/// Link every WASI preview 2 interface (async).
///
/// # Errors
/// When the linker already defines one of them.
pub fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::host::log::function_budget;

    #[test]
    fn the_context_is_built_on_first_use_only() {
        let log = GuestLog::new(Arc::from("f"), function_budget());
        let mut wasi = WasiState::new(Arc::from([("K".to_owned(), "v".to_owned())]));
        let mut table = ResourceTable::new();
        assert!(wasi.ctx.is_none());
        wasi.view(&mut table, &log);
        assert!(wasi.ctx.is_some());
    }
}
