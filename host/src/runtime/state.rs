//! The memory cap of one store.

use wasmtime::ResourceLimiter;

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
