//! Converts an amount with the rate carried by an exchange-rate event.
//!
//! Input: any event whose JSON data is `{"base": "USD", "quote": "EUR",
//! "rate": 0.92, "amount": 250.0}` (`amount` defaults to 1).
//! Reply: type `dev.sluice.currency.converted`, JSON data with the input
//! fields plus `converted` (rounded to cents), subject `BASE/QUOTE`.

use serde::{Deserialize, Serialize};
use sluice_guest::{handler, Error, Event};

#[derive(Deserialize)]
struct Rate {
    base: String,
    quote: String,
    rate: f64,
    #[serde(default = "one")]
    amount: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Serialize)]
struct Converted<'a> {
    base: &'a str,
    quote: &'a str,
    rate: f64,
    amount: f64,
    converted: f64,
}

fn handle(event: Event) -> Result<Option<Event>, Error> {
    let r: Rate = event.json()?;
    if !(r.rate.is_finite() && r.rate > 0.0) {
        return Err(Error::new(format!("rate must be a positive number, got {}", r.rate)));
    }
    if !r.amount.is_finite() {
        return Err(Error::new("amount must be a finite number"));
    }
    let converted = (r.amount * r.rate * 100.0).round() / 100.0;
    let reply = event
        .to_builder()
        .ty("dev.sluice.currency.converted")
        .subject(format!("{}/{}", r.base, r.quote))
        .json(&Converted {
            base: &r.base,
            quote: &r.quote,
            rate: r.rate,
            amount: r.amount,
            converted,
        })?
        .build()?;
    Ok(Some(reply))
}

handler!(handle);
