//! Allocates (and touches) memory without bound. The host's memory cap must
//! stop it.

use sluice_guest::{handler, Error, Event};

fn handle(_event: Event) -> Result<Option<Event>, Error> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![0xA5; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

handler!(handle);
sluice_guest::without_wasi!();
