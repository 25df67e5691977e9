//! The guest's global allocator: a bump allocator over a static arena,
//! falling back to the system allocator when the arena is spent.
//!
//! Why: Sluice runs every event in a fresh instance, whose memory starts at
//! the size the module declares. An allocator that asks for memory with
//! `memory.grow` (Debian's 2022 wasi-libc dlmalloc does on its first
//! allocation; Rust's `wasm32-unknown-unknown` allocator always does) makes
//! every event pay for growing the memory: in wasmtime's pooling allocator,
//! an `mprotect` on growth and another when the slot is reused. The arena
//! lives in the module's zero-initialised data, inside the declared memory,
//! so a handler that stays within it never grows memory, whatever the libc
//! or target (`wasm32-wasip1`, `wasm32-wasip2`, `wasm32-unknown-unknown`).
//!
//! Memory is reclaimed with the instance. Within one, freeing the most
//! recent allocation (and growing it in place) gives its bytes back, which
//! covers the push-and-pop pattern of `Vec` and `String` building; other
//! frees are left for the instance's end. A function with `reuse` keeps its
//! instance: once the arena is spent, it simply allocates from the system
//! allocator as a crate without this allocator would.
//!
//! Guests are single-threaded (wasm without the threads proposal), which is
//! what makes the unsynchronised cells sound; the allocator is compiled only
//! for such targets. Turn it off with `default-features = false` to bring
//! your own `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;

/// Bytes in the arena: room for a typical handler's event, reply and JSON
/// values, and the WASI adapter's 64 KiB stack and state.
const ARENA_BYTES: usize = 256 * 1024;

#[repr(C, align(16))]
struct Arena {
    bytes: UnsafeCell<[u8; ARENA_BYTES]>,
    /// Offset of the first free byte.
    next: UnsafeCell<usize>,
}

// SAFETY: compiled only for wasm without atomics, where there is one thread.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena {
    bytes: UnsafeCell::new([0; ARENA_BYTES]),
    next: UnsafeCell::new(0),
};

/// The allocator; installed as the global allocator by this crate.
pub struct ArenaAllocator;

impl ArenaAllocator {
    fn base() -> usize {
        ARENA.bytes.get() as usize
    }

    fn contains(ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= Self::base() && p < Self::base() + ARENA_BYTES
    }

    /// Whether `ptr..ptr + size` is the most recent allocation.
    ///
    /// # Safety
    /// Single-threaded access to the arena.
    unsafe fn is_last(ptr: *mut u8, size: usize) -> bool {
        ptr as usize + size == Self::base() + *ARENA.next.get()
    }
}

unsafe impl GlobalAlloc for ArenaAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = Self::base();
        let next = &mut *ARENA.next.get();
        let start = (base + *next).next_multiple_of(layout.align());
        match start.checked_add(layout.size()) {
            Some(end) if end <= base + ARENA_BYTES => {
                *next = end - base;
                start as *mut u8
            }
            _ => System.alloc(layout),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !Self::contains(ptr) {
            return System.dealloc(ptr, layout);
        }
        if Self::is_last(ptr, layout.size()) {
            *ARENA.next.get() = ptr as usize - Self::base();
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !Self::contains(ptr) {
            return System.realloc(ptr, layout, new_size);
        }
        if Self::is_last(ptr, layout.size())
            && ptr as usize + new_size <= Self::base() + ARENA_BYTES
        {
            *ARENA.next.get() = ptr as usize + new_size - Self::base();
            return ptr;
        }
        // SAFETY: `layout.align()` is a valid alignment and `new_size`,
        // rounded up to it, does not overflow (GlobalAlloc::realloc's contract).
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new = self.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}
