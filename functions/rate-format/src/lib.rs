//! Formats an enriched conversion (`dev.sluice.currency.enriched`) as one
//! line of text, e.g. `100.00 USD = 92.00 EUR at 0.92 (1 EUR = 1.086957 USD,
//! major pair)`.
//!
//! Reply: type `dev.sluice.currency.formatted`, JSON data `{"pair", "text"}`.

use serde::{Deserialize, Serialize};
use sluice_guest::{handler, Error, Event};

#[derive(Deserialize)]
struct Enriched {
    base: String,
    quote: String,
    rate: f64,
    amount: f64,
    converted: f64,
    pair: String,
    inverse: f64,
    band: String,
}

#[derive(Serialize)]
struct Formatted {
    pair: String,
    text: String,
}

fn handle(event: Event) -> Result<Option<Event>, Error> {
    let e: Enriched = event.json()?;
    let text = format!(
        "{:.2} {} = {:.2} {} at {} (1 {} = {} {}, {} pair)",
        e.amount, e.base, e.converted, e.quote, e.rate, e.quote, e.inverse, e.base, e.band
    );
    let reply = event
        .to_builder()
        .ty("dev.sluice.currency.formatted")
        .json(&Formatted { pair: e.pair, text })?
        .build()?;
    Ok(Some(reply))
}

handler!(handle);
