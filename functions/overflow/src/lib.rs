//! Recurses without bound. The host must report the stack overflow as this
//! invocation's failure.

use sluice_guest::{handler, Error, Event};

// Each frame keeps its state in wasm locals only (no shadow-stack frame in
// linear memory), so it is the wasm call stack that runs out.
#[allow(unconditional_recursion)] // the point of this function
fn depth(n: u64) -> u64 {
    depth(std::hint::black_box(n.wrapping_add(1))).wrapping_add(n)
}

fn handle(event: Event) -> Result<Option<Event>, Error> {
    let d = depth(event.id().len() as u64);
    Err(Error::new(format!("unreachable depth {d}")))
}

handler!(handle);
