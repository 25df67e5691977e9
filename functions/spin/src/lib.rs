//! Loops forever. The host's CPU deadline must stop it.

use sluice_guest::{handler, Error, Event};

fn handle(event: Event) -> Result<Option<Event>, Error> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(event.id().len() as u64));
    }
}

handler!(handle);
sluice_guest::without_wasi!();
