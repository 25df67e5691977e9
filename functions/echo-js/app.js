// Replies with the event it received, its `type` suffixed with `.echoed`.
// Everything else (id, source, extensions, data) is kept as it came; the
// JavaScript twin of functions/echo.
import { handler } from './sluice-guest.js';

export const handle = handler((event) =>
  event.toBuilder().type(`${event.type}.echoed`).build());
