#!/usr/bin/env python3
"""A tiny local stand-in for an exchange-rate API (frankfurter.app shape).

    python3 examples/currency/rates_api.py [--port 8099]

GET /latest?base=EUR answers {"base": "EUR", "date": "...", "rates": {...}}
with fixed rates, so runs are reproducible. Prints "listening on HOST:PORT"
once ready (use --port 0 for any free port). Standard library only.
"""

import argparse
import datetime
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# Quotes per one unit of the base currency.
RATES = {
    "EUR": {"USD": 1.08, "GBP": 0.86, "JPY": 161.5},
    "USD": {"EUR": 0.925, "GBP": 0.79, "JPY": 149.5},
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/latest":
            self.send_error(404, "try /latest?base=EUR")
            return
        base = parse_qs(url.query).get("base", ["EUR"])[0].upper()
        if base not in RATES:
            self.send_error(400, f"unknown base {base}")
            return
        body = json.dumps(
            {
                "base": base,
                "date": datetime.date.today().isoformat(),
                "rates": RATES[base],
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("rates-api: " + (fmt % args) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8099)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
