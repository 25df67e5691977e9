// A source function (world `source`) for tests: each run emits `count`
// (config, default 1) events of type `com.example.source.tick` whose JSON
// data is their index and the run number, kept in the state.
import { Event, source } from './sluice-guest.js';

export const run = source((config, state) => {
  const runs = state === undefined ? 0 : Number(new TextDecoder().decode(state));
  const events = [];
  for (let i = 0; i < Number(config.count ?? '1'); i++) {
    events.push(Event.builder('com.example.source.tick')
      .extension('lang', 'js')
      .json({ index: i, run: runs })
      .build());
  }
  return { events, state: new TextEncoder().encode(String(runs + 1)) };
});
