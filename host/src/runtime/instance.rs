//! One sandboxed instance of a function: its store (WASI context, memory
//! cap, log) and the instantiated handler. Usually used for one event and
//! dropped; a function with `reuse = N` keeps it for up to N events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, UpdateDeadline};

use super::bindings::sluice::handler::types as wit;
use super::bindings::Handler;
use super::guest_log::GuestLog;
use super::state::HostState;
use super::Loaded;

/// What a call returned: the handler's own result, or the trap or
/// instantiation error that stopped it.
pub type CallOutcome = wasmtime::Result<Result<Option<wit::Event>, wit::HandlerError>>;

/// A live instance.
pub struct Instance {
    store: Store<HostState>,
    handler: Handler,
    log: Arc<GuestLog>,
    /// Events it has handled.
    pub uses: u32,
    /// When it last finished an event.
    pub idle_since: Instant,
}

impl Instance {
    /// Instantiate `loaded` in a fresh store.
    ///
    /// # Errors
    /// When instantiation fails (e.g. no pool slot is free, or a start
    /// function traps).
    pub async fn new(engine: &Engine, name: &str, loaded: &Loaded) -> wasmtime::Result<Self> {
        let log = GuestLog::new(Arc::from(name), loaded.log_budget.clone());
        let mut store = Store::new(
            engine,
            HostState::new(log.clone(), &loaded.env, loaded.memory_bytes),
        );
        store.limiter(|s| &mut s.memory);
        // Instantiation runs guest code too (start functions): give it the
        // same deadline as a call.
        arm_deadline(&mut store, loaded.timeout);
        let handler = loaded.pre.instantiate_async(&mut store).await?;
        Ok(Self {
            store,
            handler,
            log,
            uses: 0,
            idle_since: Instant::now(),
        })
    }

    /// Call the handler on `event` within `timeout`.
    pub async fn call(&mut self, event: &wit::Event, timeout: Duration) -> CallOutcome {
        self.log.begin(&event.id);
        self.store.data_mut().memory.reset();
        arm_deadline(&mut self.store, timeout);
        let outcome = self.handler.call_handle(&mut self.store, event).await;
        self.uses += 1;
        self.idle_since = Instant::now();
        outcome
    }

    /// The store, for classifying a failure.
    pub fn store(&self) -> &Store<HostState> {
        &self.store
    }

    /// The instance's log.
    pub fn log(&self) -> &GuestLog {
        &self.log
    }
}

/// Let the guest run in slices of one epoch tick, yielding to the executor
/// in between so a spinning guest cannot starve other tasks, until
/// `timeout` has passed; then interrupt it (a `Trap::Interrupt`).
fn arm_deadline(store: &mut Store<HostState>, timeout: Duration) {
    let started = Instant::now();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if started.elapsed() >= timeout {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}
