#!/usr/bin/env python3
"""A small service for the runbooks to look after, with a fault switch.

    target_service.py --port-file FILE --record DIR [--log-file PATH] [--token T]

Listens on 127.0.0.1 on a free port and writes that port to FILE
(atomically) once it accepts connections.  Every request but those to
/_control is written to DIR/NNNN.json before it is answered, in the order
they arrived: {"n", "method", "path", "query", "headers", "body"} (header
names lower-cased), so a test can check which side effects happened, and in
what order.  The service's log lines go to --log-file too (where a runbook
reads them over SSH) and to /logs.

The service:
  GET  /health            200 {"status": "ok", ...} when healthy; 503
                          {"status": "failing", "reason"} while a fault is on
  GET  /metrics           Prometheus text: db_pool_active, db_pool_max,
                          db_pool_waiting, replicas, http_requests_5xx_total
  GET  /logs?lines=N      the last N log lines (default 100), text/plain
  POST /actions/NAME      restart, scale {"replicas"}, scale-pool {"size"},
                          drain, undrain, config {key: value...}; 200 and
                          the state; 404 for another NAME
A fault names the actions that cure it; a curing action takes it away after
`recover_after` more failing health checks; any other action leaves it on.

A provisioning API (one "system" per path segment), for onboarding:
  POST   /provision/SYSTEM/users          {"login", ...}: 201, or 409 if present
  DELETE /provision/SYSTEM/users/LOGIN    204, or 404

A ServiceNow-shaped table API (Authorization: Bearer T when --token is set):
  GET    /api/now/table/incident/SYS_ID   {"result": record}
  PATCH  /api/now/table/incident/SYS_ID   fields set; `work_notes` is
                                          appended to the record's
                                          `work_notes_history`, as ServiceNow
                                          journals it; {"result": record}
  POST   /api/now/table/incident/SYS_ID   the same as PATCH

Receivers for what runbooks send people, so that one ordered record holds
them beside the service's own calls:
  POST /hooks/NAME        202 and PagerDuty's reply (dedup_key echoed): a
                          stand-in for a chat webhook or the Events API

The switch, for tests (not recorded):
  POST /_control/fault      {"name", "cured_by": [...], "recover_after": N,
                            "fail_actions": {NAME: STATUS},
                            "fail_systems": {SYSTEM: STATUS}}; {} clears all
  POST /_control/incident   a ServiceNow record (with "sys_id") to serve
  GET  /_control/state      everything: pool, replicas, accounts, incidents...
Python 3 standard library only.
"""
import argparse
import copy
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
LOG_KEEP = 1000                       # log lines kept in memory

# What a fault looks like from outside: the health check's reason and the
# log lines it writes when it comes on.
FAULTS = {
    "pool_exhausted": ("database connection pool exhausted", [
        "ERROR HikariPool-1 - Connection is not available, request timed out after 30000ms",
        "ERROR o.h.e.j.s.SqlExceptionHelper - HikariPool-1 - Connection is not available",
        "WARN  HikariPool-1 - Thread starvation or clock leap detected",
        "ERROR c.e.checkout.OrderController - GET /orders failed: pool exhausted (active=%(pool_max)d, waiting=37)",
    ]),
    "error_rate": ("upstream answers 5xx", [
        "ERROR c.e.checkout.PaymentClient - upstream timeout after 5000ms",
        "ERROR c.e.checkout.OrderController - POST /orders answered 503",
    ]),
}


def fresh_state():
    return {"fault": None, "failing_checks_left": 0, "replicas": 2, "pool_max": 20,
            "pool_active": 3, "pool_waiting": 0, "errors_5xx": 0, "drained": False,
            "restarts": 0, "config": {}, "fail_actions": {}, "fail_systems": {},
            "accounts": {}, "incidents": {}, "log": []}


STATE = fresh_state()
COUNTER = [0]


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.rename(tmp, path)


def log(line):
    """Under LOCK: one line to the log, in memory and in the file."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = "%s %s" % (stamp, line)
    STATE["log"] = (STATE["log"] + [text])[-LOG_KEEP:]
    if ARGS.log_file:
        with open(ARGS.log_file, "a") as f:
            f.write(text + "\n")


def set_fault(spec):
    """Under LOCK: the switch.  {} clears every fault."""
    STATE["fail_actions"] = spec.get("fail_actions", {})
    STATE["fail_systems"] = spec.get("fail_systems", {})
    name = spec.get("name")
    if not name:
        STATE["fault"] = None
        STATE["pool_active"], STATE["pool_waiting"] = 3, 0
        return
    if name not in FAULTS:
        raise ValueError("unknown fault %r (known: %s)" % (name, ", ".join(sorted(FAULTS))))
    STATE["fault"] = {"name": name, "cured_by": spec.get("cured_by", ["restart"]),
                      "recover_after": int(spec.get("recover_after", 0))}
    if name == "pool_exhausted":
        STATE["pool_active"], STATE["pool_waiting"] = STATE["pool_max"], 37
    for line in FAULTS[name][1]:
        log(line % STATE)


def act(name, body):
    """Under LOCK: an action's effect; returns (status, reply)."""
    if name in STATE["fail_actions"]:
        log("ERROR action %s failed" % name)
        return STATE["fail_actions"][name], {"error": "action %s failed" % name}
    if name == "restart":
        STATE["restarts"] += 1
    elif name == "scale":
        STATE["replicas"] = int(body["replicas"])
    elif name == "scale-pool":
        STATE["pool_max"] = int(body["size"])
    elif name in ("drain", "undrain"):
        STATE["drained"] = name == "drain"
    elif name == "config":
        STATE["config"].update(body)
    else:
        return 404, {"error": "no action %s" % name}
    log("INFO action %s %s" % (name, json.dumps(body, sort_keys=True)))
    fault = STATE["fault"]
    if fault and name in fault["cured_by"]:
        STATE["failing_checks_left"] = fault["recover_after"]
        fault["cured"] = True
        if fault["recover_after"] == 0:
            cure()
    return 200, public_state()


def cure():
    log("INFO %s cleared" % STATE["fault"]["name"])
    STATE["fault"] = None
    STATE["pool_active"], STATE["pool_waiting"] = 3, 0


def health():
    """Under LOCK: (status, body) of one health check."""
    fault = STATE["fault"]
    if fault and fault.get("cured"):
        if STATE["failing_checks_left"] > 0:
            STATE["failing_checks_left"] -= 1
        else:
            cure()
            fault = None
    if fault:
        STATE["errors_5xx"] += 1
        return 503, {"status": "failing", "reason": FAULTS[fault["name"]][0]}
    return 200, dict(public_state(), status="ok")


def public_state():
    return {k: STATE[k] for k in ("replicas", "pool_max", "drained", "restarts", "config")}


def metrics():
    return "".join("%s %s\n" % kv for kv in (
        ("db_pool_active", STATE["pool_active"]), ("db_pool_max", STATE["pool_max"]),
        ("db_pool_waiting", STATE["pool_waiting"]), ("replicas", STATE["replicas"]),
        ("http_requests_5xx_total", STATE["errors_5xx"])))


def provision(method, system, login, body):
    """Under LOCK: the provisioning API; returns (status, reply)."""
    if system in STATE["fail_systems"]:
        return STATE["fail_systems"][system], {"error": "%s is unavailable" % system}
    users = STATE["accounts"].setdefault(system, {})
    if method == "POST" and login is None:
        login = body.get("login")
        if not login:
            return 400, {"error": "login is required"}
        if login in users:
            return 409, {"error": "%s exists in %s" % (login, system)}
        users[login] = body
        return 201, {"system": system, "login": login, "id": "%s-%d" % (system, len(users))}
    if method == "DELETE" and login is not None:
        if users.pop(login, None) is None:
            return 404, {"error": "no %s in %s" % (login, system)}
        return 204, None
    return 405, {"error": "not here"}


def servicenow(handler, method, sys_id, body):
    """Under LOCK: the incident table; returns (status, reply)."""
    if ARGS.token and handler.headers.get("Authorization") != "Bearer " + ARGS.token:
        return 401, {"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
                     "status": "failure"}
    record = STATE["incidents"].get(sys_id)
    if record is None:
        return 404, {"error": {"message": "No Record found", "detail": "Record doesn't exist"},
                     "status": "failure"}
    if method in ("PATCH", "POST", "PUT"):
        for key, value in body.items():
            if key == "work_notes":
                record["work_notes_history"].append(value)
            else:
                record[key] = value
        record["sys_mod_count"] = record.get("sys_mod_count", 0) + 1
    return 200, {"result": record}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "target-service/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def answer(self, code, body):
        if body is None:             # 204: no body, so no type either
            data, ctype = b"", None
        elif isinstance(body, str):
            data, ctype = body.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(body).encode(), "application/json"
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self.answer(400, {"error": "the body is not JSON"})
        parts = url.path.strip("/").split("/")
        with LOCK:
            if parts[0] != "_control":
                self.record(url, raw)
            try:
                code, reply = self.dispatch(parts, urllib.parse.parse_qs(url.query), body)
            except (KeyError, TypeError, ValueError) as e:
                code, reply = 400, {"error": repr(e)}
        self.answer(code, reply)

    def record(self, url, raw):
        COUNTER[0] += 1
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = {"n": COUNTER[0], "method": self.command, "path": url.path, "query": url.query,
               "headers": headers, "body": raw}
        write_atomic(os.path.join(ARGS.record, "%04d.json" % COUNTER[0]), json.dumps(rec))

    def dispatch(self, parts, query, body):
        m = self.command
        if parts == ["health"] and m == "GET":
            return health()
        if parts == ["metrics"] and m == "GET":
            return 200, metrics()
        if parts == ["logs"] and m == "GET":
            lines = int(query.get("lines", ["100"])[-1])
            return 200, "".join(l + "\n" for l in STATE["log"][-lines:])
        if len(parts) == 2 and parts[0] == "actions" and m == "POST":
            return act(parts[1], body)
        if len(parts) in (3, 4) and parts[0] == "provision" and parts[2] == "users":
            return provision(m, parts[1], parts[3] if len(parts) == 4 else None, body)
        if len(parts) == 5 and parts[:4] == ["api", "now", "table", "incident"]:
            return servicenow(self, m, parts[4], body)
        if len(parts) == 2 and parts[0] == "hooks" and m == "POST":
            return 202, {"status": "success", "message": "Event processed",
                         "dedup_key": body.get("dedup_key") or parts[1]}
        if parts == ["_control", "fault"] and m == "POST":
            set_fault(body)
            return 200, public_state()
        if parts == ["_control", "incident"] and m == "POST":
            record = dict(body, work_notes_history=[])
            STATE["incidents"][record["sys_id"]] = record
            return 200, {"result": record}
        if parts == ["_control", "state"] and m == "GET":
            return 200, copy.deepcopy({k: v for k, v in STATE.items() if k != "log"})
        return 404, {"error": "no route for %s %s" % (m, "/".join(parts))}

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = route


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--log-file")
    p.add_argument("--token")
    ARGS = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with LOCK:
        log("INFO checkout started: pool_max=%(pool_max)d replicas=%(replicas)d" % STATE)
    write_atomic(ARGS.port_file, str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
