//! One sandboxed instance of a function: its store (WASI context, memory
//! cap, log) and the instantiated handler. Usually used for one event and
//! dropped; a function with `reuse = N` keeps it for up to N events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, UpdateDeadline};

use super::bindings::sluice::handler::types as wit;
use super::bindings::Handler;
use super::engine::EPOCH_TICK;
use super::host::log::GuestLog;
use super::host::HostState;
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
        let mut store = new_store(
            engine,
            HostState::new(log.clone(), loaded.env.clone(), loaded.memory_bytes, None),
            loaded.timeout,
        );
        let handler =
            within_ceiling(loaded.timeout, loaded.pre.instantiate_async(&mut store)).await?;
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
        let outcome =
            within_ceiling(timeout, self.handler.call_handle(&mut self.store, event)).await;
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

/// A store for one instance of any world: `state` as its data, its
/// memory cap installed, and the CPU deadline of `timeout` armed (for
/// instantiation, which runs guest code too: start functions).
pub fn new_store(engine: &Engine, state: HostState, timeout: Duration) -> Store<HostState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    arm_deadline(&mut store, timeout);
    store
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
