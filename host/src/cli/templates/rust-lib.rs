//! {{name}}: a Sluice handler. It replies to every event with the event,
//! its type suffixed with `.handled`, and logs through the host.
//!
//! A handler that reads no environment variables and neither logs nor
//! prints can add `sluice_guest::without_wasi!();` below `handler!`: its
//! fresh instance per event is cheaper (see docs/runtime.md).

use sluice_guest::{handler, log, Error, Event};

fn handle(event: Event) -> Result<Option<Event>, Error> {
    log::info(&format!("{{name}} got {}", event.id()));
    let ty = format!("{}.handled", event.ty());
    Ok(Some(event.into_builder().ty(ty).build()?))
}

handler!(handle);
