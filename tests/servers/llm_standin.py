#!/usr/bin/env python3
"""A stand-in LLM server for tests: speaks the OpenAI chat completions and
the Anthropic messages wire formats over plain HTTP on 127.0.0.1.

    llm_standin.py --port-file F --log L [--control C] [--api-key K] [--replies R]

It binds 127.0.0.1 on a free port and writes the port to F (atomically,
once it listens).  Routes:

    POST .../chat/completions   OpenAI  (Authorization: Bearer K)
    POST .../v1/messages        Anthropic (x-api-key: K, anthropic-version:
                                2023-06-01; max_tokens required)

Every request is appended to L as one JSON line before any reply is sent:
{"n", "time" (monotonic seconds), "method", "path", "headers" (names in
lower case), "body" (the parsed JSON, or null), "raw" (the text when it is
not JSON)}.  With --replies, each reply is appended to R once it is wholly
written: {"n", "status"}.

What to answer comes from the control file C, read on every request: a JSON
list whose n-th entry (0-based) scripts the n-th request; past the end the
last entry repeats; no file means the defaults.  An entry with `when` (a
text) is a rule instead: the first rule whose text occurs in the request's
system prompt or messages answers it, whatever its number; a request no
rule fits takes the entries without `when` as above.  An entry may hold:

    when           answer the requests whose prompt contains this text

    reply          the model's text (default "Hello from the stand-in.");
                   for an Anthropic request with a forced tool, a JSON
                   object text becomes the tool_use input (else a text block)
    finish_reason  reported as finish_reason / stop_reason
    model          reported model (default: the one asked for)
    usage          [input_tokens, output_tokens] (default: word counts)
    refusal        OpenAI: message.refusal with content null
    status         an error status (429, 500, 529, 401...) with the
                   provider's error body; "message" sets its text
    retry_after    the retry-after header, verbatim
    retry_after_in retry-after as an HTTP date this many seconds ahead
    stall          seconds to wait before answering
    truncate       true: send the first half of the JSON body only
    content_type   the content type to send (default application/json)
    raw            this exact body text
    body_bytes     a 200 JSON body of about this many bytes

With --api-key, a wrong key gets 401; the error message repeats the key it
received, so tests can prove the client never shows it.
"""
import argparse
import email.utils
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_REPLY = "Hello from the stand-in."
OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                      403: "permission_error", 404: "not_found_error",
                      429: "requests", 500: "server_error", 503: "server_error"}
ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                         403: "permission_error", 404: "not_found_error",
                         413: "request_too_large", 429: "rate_limit_error",
                         500: "api_error", 529: "overloaded_error"}
DEFAULT_MESSAGES = {429: "Rate limit reached for requests", 500: "The server had an error",
                    529: "Overloaded", 503: "Service unavailable"}


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.count = 0

    def next_index(self):
        with self.lock:
            n = self.count
            self.count += 1
            return n

    def entry(self, n, body):
        try:
            with open(self.args.control) as f:
                script = json.load(f)
        except (TypeError, OSError, ValueError):
            return {}
        if isinstance(script, dict):
            script = [script]
        text = prompt_text(body)
        for rule in script:
            if "when" in rule and rule["when"] in text:
                return rule
        script = [e for e in script if "when" not in e]
        if not script:
            return {}
        return script[min(n, len(script) - 1)]

    def log(self, record, path=None):
        with self.lock, open(path or self.args.log, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up (a stopped or timed-out request) is normal
        # here; anything else is worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def prompt_text(body):
    """The system prompt and every message's text of a request, joined."""
    if not isinstance(body, dict):
        return ""
    parts = [body.get("system")] + [m.get("content") for m in body.get("messages") or []
                                    if isinstance(m, dict)]
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, list):
            out += [b.get("text", "") for b in p if isinstance(b, dict)]
    return "\n".join(out)


def words(value):
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(words(v.get("text", "")) if isinstance(v, dict) else words(v) for v in value)
    return 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llm-standin/1"

    def log_message(self, fmt, *args):
        pass

    # ---- sending ----------------------------------------------------------

    def send(self, status, body, content_type="application/json", headers=None):
        data = body if isinstance(body, bytes) else body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except ConnectionError:
            return
        state = self.server.state
        if state.args.replies:
            state.log({"n": self.n, "status": status}, state.args.replies)

    def error_body(self, anthropic, status, message):
        if anthropic:
            kind = ANTHROPIC_ERROR_TYPES.get(status, "api_error")
            return {"type": "error", "error": {"type": kind, "message": message}}
        kind = OPENAI_ERROR_TYPES.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def fail(self, anthropic, status, message, headers=None):
        self.send(status, json.dumps(self.error_body(anthropic, status, message)),
                  headers=headers)

    # ---- requests ---------------------------------------------------------

    n = -1                             # the request being answered

    def do_GET(self):
        self.send(404, json.dumps({"error": {"message": "POST only", "type": "invalid_request_error"}}))

    def do_POST(self):
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        n = self.n = state.next_index()
        state.log({"n": n, "time": time.monotonic(), "method": "POST", "path": self.path,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body, "raw": None if body is not None else raw})
        entry = state.entry(n, body)
        if self.path.endswith("/chat/completions"):
            self.serve(False, body, entry)
        elif self.path.endswith("/v1/messages"):
            self.serve(True, body, entry)
        else:
            self.fail(False, 404, "no route for %s" % self.path)

    def check_request(self, anthropic, body):
        """The provider's own checks: a (status, message) to refuse, or None."""
        key = self.server.state.args.api_key
        if anthropic:
            got = self.headers.get("x-api-key")
            if key is not None and got != key:
                return 401, "invalid x-api-key: %s" % got
            if self.headers.get("anthropic-version") != ANTHROPIC_VERSION:
                return 400, "anthropic-version: header is required and must be %s" % ANTHROPIC_VERSION
        else:
            got = self.headers.get("Authorization") or ""
            if key is not None and got != "Bearer " + key:
                return 401, "Incorrect API key provided: %s." % got.replace("Bearer ", "", 1)
        if not isinstance(body, dict):
            return 400, "the request body is not a JSON object"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return 400, "model: field required"
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return 400, "messages: at least one message is required"
        if anthropic and not isinstance(body.get("max_tokens"), int):
            return 400, "max_tokens: field required"
        if anthropic and any(m.get("role") not in ("user", "assistant") for m in body["messages"]):
            return 400, "messages: roles must be user or assistant"
        return None

    def serve(self, anthropic, body, entry):
        stall = float(entry.get("stall", 0))
        end = time.monotonic() + stall
        while time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        if "raw" in entry:
            return self.send(entry.get("status", 200), entry["raw"],
                             entry.get("content_type", "application/json"))
        if "body_bytes" in entry:
            pad = "x" * int(entry["body_bytes"])
            return self.send(200, json.dumps({"pad": pad}))
        refused = self.check_request(anthropic, body)
        if refused:
            return self.fail(anthropic, *refused)
        if "status" in entry:
            headers = {}
            if "retry_after" in entry:
                headers["retry-after"] = str(entry["retry_after"])
            if "retry_after_in" in entry:
                headers["retry-after"] = email.utils.formatdate(
                    time.time() + float(entry["retry_after_in"]), usegmt=True)
            status = int(entry["status"])
            message = entry.get("message", DEFAULT_MESSAGES.get(status, "error %d" % status))
            return self.fail(anthropic, status, message, headers)
        reply = (self.anthropic_reply if anthropic else self.openai_reply)(body, entry)
        text = json.dumps(reply)
        if entry.get("truncate"):
            text = text[: len(text) // 2]
        self.send(200, text, entry.get("content_type", "application/json"))

    # ---- replies ----------------------------------------------------------

    def usage(self, body, entry, reply):
        if "usage" in entry:
            return entry["usage"]
        asked = words(body.get("system", "")) + sum(words(m.get("content")) for m in body["messages"])
        return [max(asked, 1), max(words(reply), 1)]

    def openai_reply(self, body, entry):
        n = self.server.state.count
        reply = entry.get("reply", DEFAULT_REPLY)
        message = {"role": "assistant", "content": reply, "refusal": None}
        if "refusal" in entry:
            message = {"role": "assistant", "content": None, "refusal": entry["refusal"]}
        tin, tout = self.usage(body, entry, reply)
        return {"id": "chatcmpl-standin-%d" % n, "object": "chat.completion",
                "created": int(time.time()), "model": entry.get("model", body["model"]),
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": entry.get("finish_reason", "stop")}],
                "usage": {"prompt_tokens": tin, "completion_tokens": tout,
                          "total_tokens": tin + tout},
                "system_fingerprint": "fp_standin"}

    def anthropic_reply(self, body, entry):
        n = self.server.state.count
        reply = entry.get("reply", DEFAULT_REPLY)
        choice = body.get("tool_choice") or {}
        block, stop = {"type": "text", "text": reply}, "end_turn"
        if choice.get("type") == "tool":
            try:
                value = json.loads(reply)
            except ValueError:
                value = None
            if isinstance(value, dict):
                block = {"type": "tool_use", "id": "toolu_standin_%d" % n,
                         "name": choice.get("name"), "input": value}
                stop = "tool_use"
        tin, tout = self.usage(body, entry, reply)
        return {"id": "msg_standin_%d" % n, "type": "message", "role": "assistant",
                "model": entry.get("model", body["model"]), "content": [block],
                "stop_reason": entry.get("finish_reason", stop), "stop_sequence": None,
                "usage": {"input_tokens": tin, "output_tokens": tout}}


def main():
    ap = argparse.ArgumentParser(description="stand-in LLM server (OpenAI and Anthropic)")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--control")
    ap.add_argument("--api-key")
    ap.add_argument("--replies")
    args = ap.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    server.state = State(args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
