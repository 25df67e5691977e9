//! Polls an exchange-rate HTTP API and emits one `dev.sluice.currency.rate`
//! event per quoted currency, in the shape `currency-convert` takes.
//!
//! Config: `url` (required) answers `{"base": "EUR", "rates": {"USD":
//! 1.08, ...}}` (the shape of frankfurter.app and exchangerate.host);
//! `amount` (optional, default 1) is copied into every event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_guest::source::{http, Context, Output};
use sluice_guest::{source, Error, Event};

#[derive(Deserialize)]
struct Rates {
    base: String,
    #[serde(default)]
    date: Option<String>,
    rates: BTreeMap<String, f64>,
}

#[derive(Serialize)]
struct Rate<'a> {
    base: &'a str,
    quote: &'a str,
    rate: f64,
    amount: f64,
}

fn run(cx: Context) -> Result<Output, Error> {
    let url = cx.config("url").ok_or("config `url` is required")?;
    let amount = match cx.config("amount") {
        Some(a) => a
            .parse::<f64>()
            .map_err(|_| Error::new(format!("config `amount` is not a number: {a}")))?,
        None => 1.0,
    };
    let body = http::get(url)?;
    let rates: Rates = serde_json::from_slice(&body)?;
    let mut events = Vec::new();
    for (quote, rate) in &rates.rates {
        let mut b = Event::builder()
            .ty("dev.sluice.currency.rate")
            .subject(format!("{}/{quote}", rates.base))
            .json(&Rate {
                base: &rates.base,
                quote,
                rate: *rate,
                amount,
            })?;
        if let Some(date) = &rates.date {
            b = b.extension("ratedate", date.as_str());
        }
        events.push(b.finish()?);
    }
    Ok(Output::events(events))
}

source!(run);
