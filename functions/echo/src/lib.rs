//! Replies with the event it received, its `type` suffixed with `.echoed`.
//! Everything else (id, source, extensions, data) is kept as it came.

use sluice_guest::{handler, Error, Event};

fn handle(event: Event) -> Result<Option<Event>, Error> {
    let ty = format!("{}.echoed", event.ty());
    Ok(Some(event.into_builder().ty(ty).build()?))
}

handler!(handle);
sluice_guest::without_wasi!();
