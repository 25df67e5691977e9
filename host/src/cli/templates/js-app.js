// {{name}}: a Sluice handler. It replies to every event with a copy whose
// type is suffixed with `.handled`, and logs through the host.
import { handler, log } from './sluice-guest.js';

export const handle = handler((event) => {
  log.info(`{{name}} got ${event.id}`);
  return event.toBuilder().type(`${event.type}.handled`).build();
});
