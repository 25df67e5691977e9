// Write Sluice CloudEvent handlers in JavaScript.
//
// A handler is a function that takes an `Event` and returns the reply (an
// `Event`), or `null`/`undefined` to consume the event. Wrap it with
// `handler` and export the result as `handle`; build with
// `componentize-js` against Sluice's `wit/` files (`sluice build` does it):
//
//     import { handler, log } from './sluice-guest.js';
//
//     export const handle = handler((event) => {
//       log.info(`got ${event.type}`);
//       const order = event.json();
//       return event.toBuilder()
//         .type('com.example.order.priced')
//         .json({ total: order.qty * 2.5 })
//         .build();
//     });
//
// Throw a `HandlerError` to fail the invocation with a reason (the host
// answers 422 with it, like a Rust `Err`); any other exception traps the
// invocation like a Rust panic (500, with the exception's message).
// Source functions (world `source`)
// export `run = source((config, state) => [...events])` instead.

import { log as hostLog } from 'sluice:handler/log@0.1.0';

/** Fails the invocation with `message`; it reaches the caller. */
export class HandlerError extends Error {
  constructor(message) {
    super(message);
    this.name = 'HandlerError';
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * One CloudEvent: context attributes, `extensions` (an object of strings,
 * booleans and integers; integers beyond 2^53 stay BigInt) and `data`
 * (a Uint8Array, or undefined when the event has none).
 */
export class Event {
  constructor({
    id = '',
    source = '',
    type = '',
    specversion = '1.0',
    datacontenttype,
    dataschema,
    subject,
    time,
    extensions = {},
    data,
  } = {}) {
    this.id = id;
    this.source = source;
    this.type = type;
    this.specversion = specversion;
    this.datacontenttype = datacontenttype;
    this.dataschema = dataschema;
    this.subject = subject;
    this.time = time;
    this.extensions = { ...extensions };
    this.data = data;
  }

  /** A builder for a new event. */
  static builder(type, source = '', id = '') {
    return new EventBuilder(new Event({ type, source, id }));
  }

  /** The data parsed as JSON; a HandlerError when it is not JSON. */
  json() {
    if (this.data === undefined) {
      throw new HandlerError('invalid JSON data: the event has no data');
    }
    try {
      return JSON.parse(decoder.decode(this.data));
    } catch (e) {
      throw new HandlerError(`invalid JSON data: ${e.message}`);
    }
  }

  /** The data decoded as UTF-8 ('' when there is none). */
  text() {
    return this.data === undefined ? '' : decoder.decode(this.data);
  }

  /** A builder starting from a copy of this event, for the reply. */
  toBuilder() {
    return new EventBuilder(this);
  }

  static fromWit(raw) {
    const extensions = {};
    for (const [name, value] of raw.extensions) {
      let v = value.val;
      if (value.tag === 'integer' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
        v = Number(v);
      }
      extensions[name] = v;
    }
    return new Event({ ...raw, extensions });
  }

  toWit() {
    const extensions = [];
    for (const [name, v] of Object.entries(this.extensions)) {
      if (typeof v === 'boolean') {
        extensions.push([name, { tag: 'boolean', val: v }]);
      } else if (typeof v === 'bigint') {
        extensions.push([name, { tag: 'integer', val: v }]);
      } else if (typeof v === 'number' && Number.isInteger(v)) {
        extensions.push([name, { tag: 'integer', val: BigInt(v) }]);
      } else {
        extensions.push([name, { tag: 'string', val: String(v) }]);
      }
    }
    let data = this.data;
    if (data !== undefined && !(data instanceof Uint8Array)) {
      data = new Uint8Array(data);
    }
    return {
      id: this.id,
      source: this.source,
      type: this.type,
      specversion: this.specversion,
      datacontenttype: this.datacontenttype,
      dataschema: this.dataschema,
      subject: this.subject,
      time: this.time,
      extensions,
      data,
    };
  }
}

/** Chained setters for a reply; `build()` checks and returns it. */
export class EventBuilder {
  constructor(base) {
    this.event = new Event(base);
  }
  id(v) { this.event.id = v; return this; }
  source(v) { this.event.source = v; return this; }
  type(v) { this.event.type = v; return this; }
  subject(v) { this.event.subject = v; return this; }
  time(v) { this.event.time = v; return this; }
  dataschema(v) { this.event.dataschema = v; return this; }
  /** Set extension `name`; `undefined` or `null` removes it. */
  extension(name, v) {
    if (v === undefined || v === null) delete this.event.extensions[name];
    else this.event.extensions[name] = v;
    return this;
  }
  /** Raw data (Uint8Array), with its media type (kept when omitted). */
  data(bytes, contentType) {
    this.event.data = bytes;
    if (contentType !== undefined) this.event.datacontenttype = contentType;
    return this;
  }
  text(s, contentType = 'text/plain') {
    return this.data(encoder.encode(s), contentType);
  }
  /** `value` as JSON data, `datacontenttype` application/json. */
  json(value) {
    return this.data(encoder.encode(JSON.stringify(value)), 'application/json');
  }
  build() {
    const e = this.event;
    if (!e.type) throw new HandlerError('invalid reply: `type` must not be empty');
    for (const name of Object.keys(e.extensions)) {
      if (!/^[a-z0-9]+$/.test(name)) {
        throw new HandlerError(`invalid reply: extension name '${name}' must be lower-case a-z0-9`);
      }
    }
    return e;
  }
}

// A HandlerError becomes the `err` case (like a Rust handler's `Err`);
// anything else is written to stderr (the host log, whose last lines
// explain the trap) and rethrown, so the invocation traps like a Rust panic.
function failure(e) {
  if (e instanceof HandlerError) return { payload: { message: e.message } };
  console.error(e instanceof Error ? `${e.name}: ${e.message}` : `uncaught: ${String(e)}`);
  // componentize-js would turn an Error's `message` into the `err` case;
  // a payload that is not a handler-error record cannot be lowered, which
  // traps the invocation.
  return { payload: null };
}

/**
 * Wrap `fn(event) -> Event | null | undefined` as the component's `handle`
 * export: `export const handle = handler(fn)`. A HandlerError `fn` throws
 * fails the invocation with its message; any other exception traps it.
 */
export function handler(fn) {
  return (raw) => {
    let reply;
    try {
      reply = fn(Event.fromWit(raw));
      if (reply === null || reply === undefined) return undefined;
      if (!(reply instanceof Event)) {
        throw new HandlerError('the handler returned something other than an Event, null or undefined');
      }
      return reply.toWit();
    } catch (e) {
      // componentize-js turns a thrown `{payload}` into the `err` case;
      // any other exception traps, like a Rust panic.
      throw failure(e);
    }
  };
}

/**
 * Wrap `fn(config, state) -> Event[] | {events, state}` as a source
 * function's `run` export: `export const run = source(fn)`. `config` is an
 * object of strings, `state` a Uint8Array or undefined.
 */
export function source(fn) {
  return (config, state) => {
    try {
      let out = fn(Object.fromEntries(config), state);
      if (Array.isArray(out)) out = { events: out };
      return {
        events: out.events.map((e) => e.toWit()),
        state: out.state,
      };
    } catch (e) {
      throw failure(e);
    }
  };
}

/** Host logging: `log.info('...')`, also trace, debug, warn, error. */
export const log = {
  trace: (m) => hostLog('trace', String(m)),
  debug: (m) => hostLog('debug', String(m)),
  info: (m) => hostLog('info', String(m)),
  warn: (m) => hostLog('warn', String(m)),
  error: (m) => hostLog('error', String(m)),
};
