//! Consumes every event: the reply is always "no event".

use sluice_guest::{handler, log, Error, Event};

fn handle(event: Event) -> Result<Option<Event>, Error> {
    log::debug(&format!("dropping {}", event.id()));
    Ok(None)
}

handler!(handle);
