// Misbehaves on purpose, for the host's isolation tests, by event type:
// `raise` throws a TypeError, `spin` loops forever (the CPU deadline must
// stop it), `hog` allocates without bound (the memory cap must stop it),
// `log` logs one record and consumes the event.
import { handler, log } from './sluice-guest.js';

export const handle = handler((event) => {
  switch (event.type) {
    case 'raise':
      throw new TypeError(`misbehave-js refused ${event.id}`);
    case 'spin': {
      let n = 0;
      for (;;) n += event.id.length;
    }
    case 'hog': {
      const hoard = [];
      for (;;) hoard.push(new Uint8Array(1 << 20).fill(0xa5));
    }
    case 'log':
      log.warn(`misbehave-js logged ${event.id}`);
      return null;
    default:
      return event;
  }
});
