// Interop client: the JavaScript `cloudevents` package (npm) talks to a
// running Sluice.
//
// Usage: node js_client.js URL SPEC_JSON
//
// Same contract as python_client.py: build the events described by
// SPEC_JSON with the SDK, send one binary, one structured and a batch of two
// to URL, decode each reply with the SDK (HTTP.toEvent), and print one JSON
// line per mode with the status and the decoded events. No judgement here.
//
// Run with NODE_PATH pointing at the node_modules that holds `cloudevents`.

"use strict";
const { CloudEvent, HTTP } = require("cloudevents");

const BATCH_CT = "application/cloudevents-batch+json; charset=utf-8";

function build(spec, suffix, data, datacontenttype) {
  return new CloudEvent({
    id: spec.id + suffix,
    source: spec.source,
    type: spec.type,
    specversion: "1.0",
    subject: spec.subject,
    time: spec.time,
    datacontenttype,
    data,
    ...spec.extensions,
  });
}

async function post(url, headers, body) {
  const response = await fetch(url, { method: "POST", headers, body });
  const headersOut = {};
  response.headers.forEach((value, name) => {
    headersOut[name] = value;
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: headersOut, bytes };
}

// The decoded event as plain JSON, data bytes as {"base64": ...}.
function view(event) {
  const attributes = {};
  let data = null;
  for (const [name, value] of Object.entries(event)) {
    if (name === "data" || name === "data_base64") continue;
    attributes[name] = value;
  }
  const d = event.data;
  if (d === undefined || d === null) {
    data = null;
  } else if (Buffer.isBuffer(d) || ArrayBuffer.isView(d)) {
    data = { base64: Buffer.from(Array.from(d)).toString("base64") };
  } else {
    data = d;
  }
  return { attributes, data };
}

function report(mode, status, events, error) {
  console.log(JSON.stringify({ mode, status, events, error: error ?? null }));
}

async function main() {
  const [url, specText] = process.argv.slice(2);
  const spec = JSON.parse(specText);
  const raw = Buffer.from(spec.binary_data, "base64");

  // Binary mode.
  let message = HTTP.binary(build(spec, "-binary", spec.json_data, "application/json"));
  let reply = await post(url, message.headers, message.body);
  report("binary", reply.status, [view(HTTP.toEvent({ headers: reply.headers, body: reply.bytes.toString("utf8") }))]);

  // Structured mode.
  message = HTTP.structured(build(spec, "-structured", raw, "application/octet-stream"));
  reply = await post(url, message.headers, message.body);
  report("structured", reply.status, [view(HTTP.toEvent({ headers: reply.headers, body: reply.bytes.toString("utf8") }))]);

  // Batched mode: the SDK reads batches (HTTP.toEvent) but has no batch
  // serializer, so the batch is a JSON array of the events' JSON form.
  const batch = [
    build(spec, "-batch-0", spec.json_data, "application/json"),
    build(spec, "-batch-1", raw, "application/octet-stream"),
  ];
  const body = "[" + batch.map((e) => e.toString()).join(",") + "]";
  reply = await post(url, { "content-type": BATCH_CT }, body);
  const events = HTTP.toEvent({ headers: reply.headers, body: reply.bytes.toString("utf8") });
  report("batched", reply.status, (Array.isArray(events) ? events : [events]).map(view));
}

main().catch((e) => {
  report("fatal", 0, [], String(e && e.stack ? e.stack : e));
  process.exit(1);
});
