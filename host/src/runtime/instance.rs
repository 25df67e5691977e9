//! One sandboxed instance of a function: its store (WASI context, memory
//! cap, log) and the instantiated handler. Usually used for one event and
//! dropped; a function with `reuse = N` keeps it for up to N events.
//!
//! Guest code runs one of two ways:
//!
//! - **On a fiber** ([`Instance::new`], [`Instance::call`]): the guest
//!   yields to the executor at every epoch tick and is throttled once it has
//!   run long (see [`arm_deadline`]). Needed by any component that imports
//!   WASI, whose host functions are async.
//! - **On the calling thread** ([`Instance::new_on_thread`],
//!   [`Instance::call_on_thread`]): for a component that imports nothing,
//!   which cannot block and has no side effect outside its own instance.
//!   No fiber stack is switched to, and no future is polled. The guest may
//!   run until the next epoch tick (at most one [`EPOCH_TICK`], the same
//!   slice it gets on a fiber before it yields); past it, it is interrupted
//!   with [`Preempted`], and the caller starts the event over on a fresh
//!   instance on a fiber, where the usual scheduling and deadline apply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Func, TypedFunc};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use super::bindings::{self, EventView, Handle, HandlerResult};
use super::engine::EPOCH_TICK;
use super::host::log::GuestLog;
use super::host::HostState;
use super::Loaded;

/// What a call returned: the handler's own result, or the trap or
/// instantiation error that stopped it.
pub type CallOutcome = wasmtime::Result<HandlerResult>;

/// Guest code on the calling thread did not finish within its epoch slice
/// and was stopped; nothing of it is visible outside its own instance, so
/// the event can start over on a fiber.
#[derive(Debug)]
pub struct Preempted;

/// A live instance.
pub struct Instance {
    store: Store<HostState>,
    /// The `handle` export, type-checked when the function was loaded.
    handle: Func,
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
    pub async fn new(engine: &Engine, loaded: &Loaded) -> wasmtime::Result<Self> {
        let (state, log) = fresh_state(loaded);
        let mut store = new_store(engine, state, loaded.timeout);
        let instance = within_ceiling(
            loaded.timeout,
            loaded.pre.instance_pre().instantiate_async(&mut store),
        )
        .await?;
        Self::ready(store, instance, loaded, log)
    }

    /// Instantiate `loaded`, a component that imports nothing, on this
    /// thread (see the module docs).
    ///
    /// # Errors
    /// `Err(Preempted)` when its start functions ran past the epoch slice;
    /// `Ok(Err(_))` when instantiation failed otherwise.
    pub fn new_on_thread(
        engine: &Engine,
        loaded: &Loaded,
    ) -> Result<wasmtime::Result<Self>, Preempted> {
        let (state, log) = fresh_state(loaded);
        let mut store = capped_store(engine, state);
        arm_one_slice(&mut store);
        match loaded.pre.instance_pre().instantiate(&mut store) {
            Ok(instance) => Ok(Self::ready(store, instance, loaded, log)),
            Err(e) if preempted(&e) => Err(Preempted),
            Err(e) => Ok(Err(e)),
        }
    }

    fn ready(
        mut store: Store<HostState>,
        instance: wasmtime::component::Instance,
        loaded: &Loaded,
        log: Arc<GuestLog>,
    ) -> wasmtime::Result<Self> {
        let handle = instance
            .get_func(&mut store, loaded.handle)
            .ok_or_else(|| wasmtime::format_err!("the component has no `handle` export"))?;
        if !loaded.view_checked.load(Ordering::Acquire) {
            bindings::handle_takes_the_view(&store, handle)?;
            loaded.view_checked.store(true, Ordering::Release);
        }
        Ok(Self {
            store,
            handle,
            log,
            uses: 0,
            idle_since: Instant::now(),
        })
    }

    /// The `handle` export with its WIT types.
    fn typed<'a>(&self) -> Handle<'a> {
        // SAFETY: `ready` checked this signature against the component's
        // `handle` export (`handle_takes_the_view`) before the first
        // instance of it was used; every instance of a component has the
        // same types.
        unsafe { TypedFunc::new_unchecked(self.handle) }
    }

    /// Call the handler on `event` within `timeout`, on a fiber.
    pub async fn call(&mut self, event: &EventView<'_>, timeout: Duration) -> CallOutcome {
        self.begin(event);
        arm_deadline(&mut self.store, timeout);
        let handle = self.typed();
        let outcome = within_ceiling(timeout, handle.call_async(&mut self.store, (event,))).await;
        self.finish();
        outcome.map(|(r,)| r)
    }

    /// Call the handler on `event` on this thread, within one epoch slice;
    /// only for components that import nothing (see the module docs).
    ///
    /// # Errors
    /// `Err(Preempted)` when the call ran past the slice: the instance is
    /// spent, and the event should start over on a fresh one.
    pub fn call_on_thread(&mut self, event: &EventView<'_>) -> Result<CallOutcome, Preempted> {
        self.begin(event);
        arm_one_slice(&mut self.store);
        let handle = self.typed();
        let outcome = handle.call(&mut self.store, (event,));
        self.finish();
        match outcome {
            Err(e) if preempted(&e) => Err(Preempted),
            outcome => Ok(outcome.map(|(r,)| r)),
        }
    }

    fn begin(&mut self, event: &EventView<'_>) {
        self.log.begin(event.id);
        self.store.data_mut().memory.reset();
    }

    fn finish(&mut self) {
        self.uses += 1;
        self.idle_since = Instant::now();
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

/// A store for one instance of any world: `state` as its data, its
/// memory cap installed, and the CPU deadline of `timeout` armed (for
/// instantiation, which runs guest code too: start functions).
pub fn new_store(engine: &Engine, state: HostState, timeout: Duration) -> Store<HostState> {
    let mut store = capped_store(engine, state);
    arm_deadline(&mut store, timeout);
    store
}

/// A store with `state` as its data and its memory cap installed; the
/// caller arms the deadline.
fn capped_store(engine: &Engine, state: HostState) -> Store<HostState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    store
}

/// The host state of a fresh instance of `loaded`, and its log.
fn fresh_state(loaded: &Loaded) -> (HostState, Arc<GuestLog>) {
    let log = GuestLog::new(loaded.name.clone(), loaded.log_budget.clone());
    let state = HostState::new(log.clone(), loaded.env.clone(), loaded.memory_bytes, None);
    (state, log)
}

/// Let guest code run on the calling thread until the next epoch tick, then
/// interrupt it: all a guest without imports may take without yielding.
fn arm_one_slice(store: &mut Store<HostState>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Interrupt));
}

/// Whether `err` is the interrupt of [`arm_one_slice`].
fn preempted(err: &wasmtime::Error) -> bool {
    matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt))
}

/// Run `call` (instantiation or a call into the guest), but stop waiting
/// after the wall-clock ceiling of `timeout` ([`CEILING_FACTOR`] times it).
/// Epoch checks happen only while guest code runs, so this is what ends a
/// guest stuck in a host call (an outbound request that never answers);
/// it is reported like a CPU deadline (`Trap::Interrupt`).
pub async fn within_ceiling<R>(
    timeout: Duration,
    call: impl std::future::Future<Output = wasmtime::Result<R>>,
) -> wasmtime::Result<R> {
    match tokio::time::timeout(timeout.saturating_mul(CEILING_FACTOR), call).await {
        Ok(r) => r,
        Err(_) => Err(wasmtime::Error::new(wasmtime::Trap::Interrupt)),
    }
}

/// The wall-clock ceiling of one call, as a multiple of its CPU deadline.
const CEILING_FACTOR: u32 = 8;

/// The most one slice (from resuming the guest to the next epoch check)
/// counts towards the deadline. A running guest reaches an epoch check
/// within about one [`EPOCH_TICK`]; a longer slice means it was waiting in
/// a host call (an outbound HTTP request, a sleep), which is not CPU time.
const MAX_SLICE: Duration = EPOCH_TICK.saturating_mul(4);

/// A guest that has run this long in one invocation is throttled.
const THROTTLE_AFTER: Duration = Duration::from_millis(10);
/// How long a throttled guest sleeps after each slice it runs.
const THROTTLE_SLEEP: Duration = Duration::from_millis(15);

/// Arm the CPU deadline and the scheduling of one call.
///
/// The guest runs in slices that end at each epoch tick. After a slice it
/// yields to the executor so other tasks run; once it has run longer than
/// [`THROTTLE_AFTER`] it also sleeps [`THROTTLE_SLEEP`] after each slice,
/// so a long-running or spinning guest gets a fraction of a core and
/// cannot crowd out short handlers. The deadline counts the time the guest
/// actually ran (measured from each resume to the next tick, at most
/// [`MAX_SLICE`] per slice, so time spent waiting in host calls does not
/// count), so neither throttling nor waiting on I/O makes a legitimate
/// guest time out; a wall-clock ceiling of [`CEILING_FACTOR`] times the
/// timeout bounds it anyway. Past the deadline the guest is interrupted
/// (`Trap::Interrupt`).
pub fn arm_deadline(store: &mut Store<HostState>, timeout: Duration) {
    let started = Instant::now();
    let ceiling = timeout.saturating_mul(CEILING_FACTOR);
    // Nanoseconds after `started` at which the guest last resumed.
    let resumed = Arc::new(AtomicU64::new(0));
    let mut ran = Duration::ZERO;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        let wall = started.elapsed();
        let slice = wall.saturating_sub(Duration::from_nanos(resumed.load(Ordering::Relaxed)));
        ran += slice.min(MAX_SLICE);
        if ran >= timeout || wall >= ceiling {
            return Ok(UpdateDeadline::Interrupt);
        }
        let pause = (wall >= THROTTLE_AFTER).then_some(THROTTLE_SLEEP);
        let resumed = resumed.clone();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                match pause {
                    Some(d) => tokio::time::sleep(d).await,
                    None => tokio::task::yield_now().await,
                }
                let at = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                resumed.store(at, Ordering::Relaxed);
            }),
        ))
    });
}
