//! The one shared wasmtime [`Engine`], configured for a server: pooling
//! allocation with copy-on-write memory images, epoch interruption for CPU
//! deadlines, and async calls so a guest never blocks an executor thread.

use std::hash::Hasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::RuntimeConfig;

/// How often the epoch advances; CPU deadlines are rounded up to it.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bytes of each memory and table slot kept resident between instances.
const KEEP_RESIDENT: usize = 2 * 1024 * 1024;

/// Wasm stack a guest may use before it traps with a stack overflow.
const MAX_WASM_STACK: usize = 512 * 1024;

/// Build the engine for `cfg`.
///
/// # Errors
/// When wasmtime refuses the configuration (e.g. the pool cannot be
/// reserved).
pub fn build(cfg: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let instances = cfg.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    // A handler component instantiates a handful of core instances (the
    // guest module, the WASI adapter, and wit-component's shims).
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(4))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memory_size(cfg.max_memory_mib as usize * 1024 * 1024)
        // Reset the first pages an instance touched with memset instead of
        // madvise, so the next instance in the slot does not page-fault
        // them back in (what makes per-event instances cheap).
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        // With the PAGEMAP_SCAN ioctl (Linux 6.7+) only the pages an
        // instance actually wrote are reset, instead of memsetting the whole
        // kept-resident prefix on every instance; older kernels fall back.
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    Engine::new(&config)
}

/// Identifies the engine configuration a precompiled artifact is valid for:
/// wasmtime's compatibility hash (version, target, settings) and the
/// artifact file's `format`, as hex.
pub fn engine_key(engine: &Engine, format: &str) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0 // unused: the digest is read below
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = Sha(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
    h.write(format.as_bytes());
    hex::encode(&h.0.finalize()[..8])
}

/// How often the ticker thread runs the housekeeping task.
const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(250);

/// Advances the engine's epoch every [`EPOCH_TICK`], and runs a
/// housekeeping task every [`HOUSEKEEPING_EVERY`], until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Start ticking `engine`.
    pub fn start(engine: Engine, housekeeping: impl Fn() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("sluice-epoch".into())
            .spawn(move || {
                let every = (HOUSEKEEPING_EVERY.as_nanos() / EPOCH_TICK.as_nanos()).max(1);
                let mut ticks: u128 = 0;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                    ticks += 1;
                    if ticks.is_multiple_of(every) {
                        housekeeping();
                    }
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
