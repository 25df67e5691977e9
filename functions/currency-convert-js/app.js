// Converts an amount with the rate carried by an exchange-rate event; the
// JavaScript twin of functions/currency-convert (same input, same reply).
//
// Input: JSON data {"base": "USD", "quote": "EUR", "rate": 0.92,
// "amount": 250.0} (`amount` defaults to 1). Reply: type
// `dev.sluice.currency.converted`, the input fields plus `converted`
// (rounded to cents), subject `BASE/QUOTE`.
import { handler, HandlerError } from './sluice-guest.js';

function field(rate, name, kind) {
  if (!(name in rate)) throw new HandlerError(`invalid JSON data: missing field \`${name}\``);
  const value = rate[name];
  if (typeof value !== kind) throw new HandlerError(`invalid JSON data: \`${name}\` must be a ${kind}`);
  return value;
}

export const handle = handler((event) => {
  const r = event.json();
  if (r === null || typeof r !== 'object' || Array.isArray(r)) {
    throw new HandlerError('invalid JSON data: expected an object');
  }
  const base = field(r, 'base', 'string');
  const quote = field(r, 'quote', 'string');
  const rate = field(r, 'rate', 'number');
  const amount = 'amount' in r ? field(r, 'amount', 'number') : 1;
  if (!(Number.isFinite(rate) && rate > 0)) {
    throw new HandlerError(`rate must be a positive number, got ${rate}`);
  }
  const cents = amount * rate * 100;
  // Half away from zero, like Rust's f64::round in the Rust twin.
  const converted = (Math.sign(cents) * Math.floor(Math.abs(cents) + 0.5)) / 100;
  return event.toBuilder()
    .type('dev.sluice.currency.converted')
    .subject(`${base}/${quote}`)
    .json({ base, quote, rate, amount, converted })
    .build();
});
