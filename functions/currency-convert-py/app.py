"""Converts an amount with the rate carried by an exchange-rate event; the
Python twin of functions/currency-convert (same input, same reply).

Input: JSON data `{"base": "USD", "quote": "EUR", "rate": 0.92,
"amount": 250.0}` (`amount` defaults to 1). Reply: type
`dev.sluice.currency.converted`, the input fields plus `converted`
(rounded to cents), subject `BASE/QUOTE`."""

import math

from sluice_guest import Event, HandlerError, handler


def _field(rate: dict, name: str, kind: type):
    if name not in rate:
        raise HandlerError(f"invalid JSON data: missing field `{name}`")
    value = rate[name]
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        raise HandlerError(f"invalid JSON data: `{name}` must be a {kind.__name__}")
    return float(value) if kind is float else value


@handler
def handle(event: Event) -> Event:
    r = event.json()
    if not isinstance(r, dict):
        raise HandlerError("invalid JSON data: expected an object")
    base, quote = _field(r, "base", str), _field(r, "quote", str)
    rate = _field(r, "rate", float)
    amount = _field(r, "amount", float) if "amount" in r else 1.0
    if not (math.isfinite(rate) and rate > 0):
        raise HandlerError(f"rate must be a positive number, got {rate}")
    if not math.isfinite(amount):
        raise HandlerError("amount must be a finite number")
    cents = amount * rate * 100.0
    # Half away from zero, like Rust's f64::round in the Rust twin.
    converted = math.copysign(math.floor(abs(cents) + 0.5), cents) / 100.0
    return (
        event.to_builder()
        .type("dev.sluice.currency.converted")
        .subject(f"{base}/{quote}")
        .json({"base": base, "quote": quote, "rate": rate, "amount": amount,
               "converted": converted})
        .build()
    )
