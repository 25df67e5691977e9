#!/usr/bin/env python3
"""A tiny local stand-in for a social network's posts API.

    python3 examples/social-stream/posts_api.py [--port 8098] [--every 1]

GET /posts?after=CURSOR answers {"posts": [...], "cursor": "N"} with the
posts newer than CURSOR (oldest first, at most 20). At start the feed holds
two stale posts (created hours ago); then a new post appears every
`--every` seconds. Prints "listening on HOST:PORT" once ready (use --port 0
for any free port). Standard library only.
"""

import argparse
import datetime
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
POSTS = []  # (seq, post)


def stamp(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(
        timespec="seconds"
    ).replace("+00:00", "Z")


def add(text, created):
    with LOCK:
        seq = len(POSTS) + 1
        POSTS.append(
            (seq, {"id": f"p{seq}", "author": "demo", "text": text, "created_at": stamp(created)})
        )


def produce(every):
    n = 0
    while True:
        time.sleep(every)
        n += 1
        add(f"fresh post #{n}", time.time())


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/posts":
            self.send_error(404, "try /posts?after=CURSOR")
            return
        after = parse_qs(url.query).get("after", ["0"])[0] or "0"
        try:
            after = int(after)
        except ValueError:
            self.send_error(400, "after must be a cursor from an earlier answer")
            return
        with LOCK:
            page = [p for s, p in POSTS if s > after][:20]
            cursor = after + len(page)
        body = json.dumps({"posts": page, "cursor": str(cursor)}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("posts-api: " + (fmt % args) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8098)
    p.add_argument("--every", type=float, default=1.0)
    args = p.parse_args()
    now = time.time()
    add("stale post from this morning", now - 6 * 3600)
    add("stale post from an hour ago", now - 3600)
    threading.Thread(target=produce, args=(args.every,), daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
