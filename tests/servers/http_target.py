#!/usr/bin/env python3
"""A local HTTP or HTTPS target for the tests of the http and notify actions.

    http_target.py --port-file FILE [--record DIR] [--cert PEM --key PEM]

Listens on 127.0.0.1 on a free port and writes that port to FILE (atomically)
once it accepts connections.  With --cert and --key it speaks HTTPS only.
With --record, every request is written to DIR/NNNN.json before it is
answered: {"method", "path", "query", "args", "headers", "body"} (headers:
lower-cased names, repeated ones joined with ", ").

What a path answers:
  /status/<code>     that status; ?body=TEXT&type=CONTENT-TYPE set the body
                     and its type (default: empty, text/plain)
  /redirect/<n>      302 to /redirect/<n-1>; /redirect/0 echoes
  /slow/<ms>         waits <ms> milliseconds, then echoes
  /truncated         application/json whose text is cut short: {"items": [1, 2
  /short             declares Content-Length: 1000, sends 10 bytes, closes
  /big/<bytes>       a text/plain body of that many bytes
  /headers           repeated headers (X-Multi twice, Set-Cookie twice)
  /many-headers/<n>  n headers of about 100 bytes each
  /pagerduty         202 and PagerDuty's reply, echoing the event's dedup_key
  anything else      200, application/json: the request as recorded
Python 3 standard library only.
"""
import argparse
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
COUNTER = [0]
LOCK = threading.Lock()


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.rename(tmp, path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "http-target/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def record(self):
        url = urllib.parse.urlsplit(self.path)
        headers = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = headers[key] + ", " + value if key in headers else value
        rec = {
            "method": self.command,
            "path": url.path,
            "query": url.query,
            "args": urllib.parse.parse_qs(url.query, keep_blank_values=True),
            "headers": headers,
            "body": self.read_body().decode("utf-8", "replace"),
        }
        if ARGS.record:
            with LOCK:
                COUNTER[0] += 1
                n = COUNTER[0]
            write_atomic(os.path.join(ARGS.record, "%04d.json" % n), json.dumps(rec))
        return rec

    def answer(self, code, body, ctype="application/json", extra=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def route(self):
        rec = self.record()
        parts = rec["path"].strip("/").split("/")
        head, arg = parts[0], parts[1] if len(parts) > 1 else ""
        args = {k: v[-1] for k, v in rec["args"].items()}
        if head == "status":
            self.answer(int(arg), args.get("body", ""), args.get("type", "text/plain"))
        elif head == "redirect" and int(arg) > 0:
            self.answer(302, "", "text/plain", [("Location", "/redirect/%d" % (int(arg) - 1))])
        elif head == "slow":
            time.sleep(int(arg) / 1000.0)
            self.answer(200, json.dumps(rec))
        elif head == "truncated":
            self.answer(200, '{"items": [1, 2')
        elif head == "short":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
        elif head == "big":
            self.big(int(arg))
        elif head == "headers":
            self.answer(200, "ok", "text/plain", [("X-Multi", "one"), ("X-Multi", "two"),
                                                  ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        elif head == "many-headers":
            extra = [("X-Filler-%d" % i, "v" * 90) for i in range(int(arg))]
            self.answer(200, "ok", "text/plain", extra)
        elif head == "pagerduty":
            event = json.loads(rec["body"] or "{}")
            reply = {"status": "success", "message": "Event processed",
                     "dedup_key": event.get("dedup_key") or "srv-generated-key"}
            self.answer(202, json.dumps(reply))
        else:
            self.answer(200, json.dumps(rec))

    def big(self, n):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        chunk = b"x" * 65536
        while n > 0:
            k = min(n, len(chunk))
            self.wfile.write(chunk[:k])
            n -= k

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = route


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--record")
    p.add_argument("--cert")
    p.add_argument("--key")
    ARGS = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if ARGS.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.cert, ARGS.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    write_atomic(ARGS.port_file, str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
