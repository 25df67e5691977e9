"""Interop client: the Python CloudEvents SDK v2 (cloudevents.core) talks to
a running Sluice.

Usage: python_client.py URL SPEC_JSON

SPEC_JSON describes the events to send (id, source, type, subject, time,
extensions, json_data, binary_data as base64). The script builds them with
the SDK, sends one in binary mode, one in structured mode and two in a
batch to URL (a /functions/echo endpoint), decodes every reply with the
SDK, and prints one JSON line per mode with the HTTP status and the
decoded events, for the Rust test to check. It makes no judgement itself.
"""

import base64
import json
import sys
import urllib.error
import urllib.request
from datetime import datetime

from cloudevents.core.bindings import http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

BATCH_CT = "application/cloudevents-batch+json; charset=utf-8"


def build(spec, suffix, data, content_type):
    attributes = {
        "id": spec["id"] + suffix,
        "source": spec["source"],
        "type": spec["type"],
        "specversion": "1.0",
        "subject": spec["subject"],
        "time": datetime.fromisoformat(spec["time"]),
        "datacontenttype": content_type,
    }
    attributes.update(spec["extensions"])
    return CloudEvent(attributes=attributes, data=data)


def post(url, headers, body):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def view(event):
    """The decoded event as plain JSON, data bytes as {"base64": ...}."""
    data = event.get_data()
    if isinstance(data, (bytes, bytearray)):
        data = {"base64": base64.b64encode(data).decode()}
    attributes = {}
    for name, value in event.get_attributes().items():
        attributes[name] = value.isoformat() if isinstance(value, datetime) else value
    return {"attributes": attributes, "data": data}


def report(mode, status, events, error=None):
    print(json.dumps({"mode": mode, "status": status, "events": events, "error": error}))


def main():
    url, spec = sys.argv[1], json.loads(sys.argv[2])
    fmt = JSONFormat()
    json_event = build(spec, "-binary", spec["json_data"], "application/json")
    raw = base64.b64decode(spec["binary_data"])

    # Binary mode.
    message = http.to_binary(json_event, fmt)
    status, headers, body = post(url, message.headers, message.body)
    reply = http.from_binary(http.HTTPMessage(headers=headers, body=body), fmt)
    report("binary", status, [view(reply)])

    # Structured mode.
    message = http.to_structured(build(spec, "-structured", raw, "application/octet-stream"), fmt)
    status, headers, body = post(url, message.headers, message.body)
    reply = http.from_structured(http.HTTPMessage(headers=headers, body=body), fmt)
    report("structured", status, [view(reply)])

    # Batched mode: the SDK has no batch helper, so the batch is a JSON
    # array of its JSON-format documents (JSON format §4), and each reply
    # element is read back with its JSON format.
    events = [
        build(spec, "-batch-0", spec["json_data"], "application/json"),
        build(spec, "-batch-1", raw, "application/octet-stream"),
    ]
    body = b"[" + b",".join(fmt.write(e) for e in events) + b"]"
    status, headers, body = post(url, {"content-type": BATCH_CT}, body)
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if not content_type.startswith("application/cloudevents-batch+json"):
        report("batched", status, [], "reply content-type " + content_type)
        return
    replies = [fmt.read(None, json.dumps(item).encode()) for item in json.loads(body)]
    report("batched", status, [view(r) for r in replies])


if __name__ == "__main__":
    main()
