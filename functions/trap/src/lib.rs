//! Panics on every event. The host must fail only this invocation.

use sluice_guest::{handler, Error, Event};

fn handle(event: Event) -> Result<Option<Event>, Error> {
    panic!("trap function asked to handle {}", event.id());
}

handler!(handle);
