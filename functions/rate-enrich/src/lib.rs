//! Enriches a converted amount (a `dev.sluice.currency.converted` event from
//! `currency-convert`): adds the pair, the inverse rate and whether both
//! currencies are majors. A conversion between a currency and itself says
//! nothing, so it is dropped (no reply), which ends a sequence.
//!
//! Reply: type `dev.sluice.currency.enriched`, extension `pair` (e.g.
//! `usdeur`), JSON data with the input fields plus `pair`, `inverse`, `band`.

use serde::{Deserialize, Serialize};
use sluice_guest::{handler, Error, Event};

const MAJORS: [&str; 8] = ["USD", "EUR", "JPY", "GBP", "CHF", "CAD", "AUD", "NZD"];

#[derive(Deserialize, Serialize)]
struct Converted {
    base: String,
    quote: String,
    rate: f64,
    amount: f64,
    converted: f64,
}

#[derive(Serialize)]
struct Enriched<'a> {
    #[serde(flatten)]
    converted: &'a Converted,
    pair: String,
    inverse: f64,
    band: &'static str,
}

fn handle(event: Event) -> Result<Option<Event>, Error> {
    let c: Converted = event.json()?;
    if c.base == c.quote {
        return Ok(None);
    }
    if !(c.rate.is_finite() && c.rate > 0.0) {
        return Err(Error::new(format!("rate must be a positive number, got {}", c.rate)));
    }
    let band = if MAJORS.contains(&c.base.as_str()) && MAJORS.contains(&c.quote.as_str()) {
        "major"
    } else {
        "minor"
    };
    let inverse = (1.0 / c.rate * 1e6).round() / 1e6;
    let pair = format!("{}/{}", c.base, c.quote);
    let ext = format!("{}{}", c.base, c.quote).to_ascii_lowercase();
    let reply = event
        .to_builder()
        .ty("dev.sluice.currency.enriched")
        .extension("pair", ext)
        .json(&Enriched {
            converted: &c,
            pair,
            inverse,
            band,
        })?
        .build()?;
    Ok(Some(reply))
}

handler!(handle);
