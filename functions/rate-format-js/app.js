// Formats an enriched conversion (`dev.sluice.currency.enriched`) as one
// line of text, e.g. `100.00 USD = 92.00 EUR at 0.92 (1 EUR = 1.086957 USD,
// major pair)`; the JavaScript twin of functions/rate-format.
//
// Reply: type `dev.sluice.currency.formatted`, JSON data `{"pair", "text"}`.
import { handler } from './sluice-guest.js';

export const handle = handler((event) => {
  const e = event.json();
  const text = `${e.amount.toFixed(2)} ${e.base} = ${e.converted.toFixed(2)} ${e.quote} at ${e.rate} ` +
    `(1 ${e.quote} = ${e.inverse} ${e.base}, ${e.band} pair)`;
  return event.toBuilder()
    .type('dev.sluice.currency.formatted')
    .json({ pair: e.pair, text })
    .build();
});
