"""`cairn serve` through real HTTP on loopback: loading a directory, the /v1
API (runs, idempotency, paging, events and their stream, commands,
approvals), metrics and health, SIGHUP and SIGTERM, resuming after a kill,
the OpenAPI file against the routes served, the limits, and bad input that
must start nothing and leave the journal as it was."""
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, ROOT, Suite, cairn_json, journal_sql, wait_for, write  # noqa: E402

HELLO = """cairn: 1
name: hello
inputs:
  who: { type: string, default: world }
steps:
  - id: greet
    run: echo hello ${{ .inputs.who }}
"""

GATE = """cairn: 1
name: gate
steps:
  - id: ok
    uses: approval
    with: { prompt: "Go?", approvers: [alice] }
  - id: after
    needs: [ok]
    run: echo done
"""


class Server:
    """A `cairn serve` on a free loopback port, its stderr in a file."""

    def __init__(self, s, name, wfdir, env=None, db=None, extra=None):
        self.s = s
        self.db = db or s.path(name + ".db")
        self.port_file = s.path(name + ".port")
        self.err_path = s.path(name + ".err")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        e = dict(os.environ)
        e.update(env or {})
        self.err = open(self.err_path, "a")
        self.proc = subprocess.Popen(
            [CAIRN, "--db", self.db, "serve", "--workflows", wfdir, "--listen", "127.0.0.1:0",
             "--port-file", self.port_file] + (extra or []), stdout=subprocess.DEVNULL,
            stderr=self.err, env=e)
        self.port = int(wait_for(self._port, "the server to listen"))

    def _port(self):
        if self.proc.poll() is not None:
            raise AssertionError("cairn serve exited %d: %s" % (self.proc.returncode, self.stderr()))
        try:
            with open(self.port_file) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, raw=False):
        """(status, headers, parsed JSON or text)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        if raw or not r.getheader("Content-Type", "").startswith("application/json"):
            return r.status, r, data.decode("utf-8", "replace")
        return r.status, r, json.loads(data)

    def start_run(self, wf, inputs=None, key=None):
        h = {"Idempotency-Key": key} if key else {}
        st, _, body = self.request("POST", "/v1/workflows/%s/runs" % wf,
                                   {"inputs": inputs or {}}, h)
        if st not in (200, 201):
            raise AssertionError("start %s: %d %s" % (wf, st, body))
        return body["id"]

    def stream(self, run_id, last=None, until=("run_succeeded", "run_failed", "run_cancelled"),
               count=None, headers=None):
        """Follow a run's events (SSE) until one of `until` or `count` events;
        returns [(id, type, data)]."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if last is not None:
            h["Last-Event-ID"] = str(last)
        c.request("GET", "/v1/runs/%s/events?follow=1" % run_id, headers=h)
        r = c.getresponse()
        assert r.status == 200, r.status
        assert r.getheader("Content-Type") == "text/event-stream"
        got, cur = [], {}
        deadline = time.monotonic() + 60   # keepalives come every 15 s: bound the whole wait
        while True:
            if time.monotonic() > deadline:
                c.close()
                raise AssertionError("the stream of %s did not reach %s" % (run_id, until))
            line = r.readline().decode()
            if line == "":
                break
            line = line.rstrip("\n")
            if line == "":
                if "id" in cur:
                    got.append((int(cur["id"]), cur["event"], json.loads(cur["data"])))
                    if cur["event"] in until or (count and len(got) >= count):
                        break
                cur = {}
            elif not line.startswith(":"):
                k, _, v = line.partition(": ")
                cur[k] = v
        c.close()
        return got

    def stop(self, sig=signal.SIGTERM, timeout=60):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()   # a hung server fails the test, and is not left behind
            self.proc.wait()
            rc = "hung"
        self.err.close()
        return rc


def journal_counts(db):
    """Rows of the tables a request could change."""
    return tuple(journal_sql(db, "SELECT count(*) FROM %s" % t)[0][0]
                 for t in ("events", "runs", "commands", "idempotency"))


def wfdir(s, name, files):
    d = s.path(name)
    os.makedirs(d, exist_ok=True)
    for fname, text in files.items():
        with open(os.path.join(d, fname), "w") as f:
            f.write(text)
    return d


# ---- start, workflows, runs ---------------------------------------------------------------

def test_load_and_run(s):
    d = wfdir(s, "w1", {"hello.yaml": HELLO, "gate.yaml": GATE, "bad.yaml": "cairn: 1\nname: [\n"})
    srv = Server(s, "w1", d)
    try:
        err = srv.stderr()
        s.check("bad.yaml is not served" in err, "a bad file is reported", err)
        s.check("loopback only" in err, "the server says it listens on loopback only", err)
        st, _, body = srv.request("GET", "/v1/workflows")
        names = [w["name"] for w in body["workflows"]]
        s.check(st == 200 and names == ["gate", "hello"], "the good workflows are served", names)
        st, r, body = srv.request("POST", "/v1/workflows/hello/runs", {"inputs": {"who": "you"}})
        s.check(st == 201 and r.getheader("Location") == "/v1/runs/" + body["id"],
                "POST runs: 201 and Location", (st, body))
        evs = srv.stream(body["id"])
        s.check(evs and evs[-1][1] == "run_succeeded" and [e[0] for e in evs] ==
                list(range(1, len(evs) + 1)), "the stream carries every event to the end", evs)
        st, _, run = srv.request("GET", "/v1/runs/" + body["id"])
        s.check(st == 200 and run["status"] == "succeeded" and
                run["steps"]["greet"]["output"]["stdout"] == "hello you\n",
                "GET run: as `cairn show --json`", run)
        st, _, page = srv.request("GET", "/v1/runs/%s/events?after=1&limit=2" % body["id"])
        s.check(st == 200 and [e["seq"] for e in page["events"]] == [2, 3] and not page["ended"],
                "events after a seq, a page at a time", page)
        st, _, body = srv.request("POST", "/v1/workflows/hello/runs",
                                  {"inputs": {"who": 5}})
        s.check(st == 422 and body["error"]["code"] == "invalid", "a wrong input: 422", body)
    finally:
        s.check(srv.stop() == 0, "SIGTERM: exit 0", srv.stderr())


def test_identity_and_tokens(s):
    d = wfdir(s, "w2", {"gate.yaml": GATE})
    p = subprocess.run([CAIRN, "--db", s.path("w2.db"), "serve", "--workflows", d, "--listen",
                        "0.0.0.0:0"], capture_output=True, text=True, timeout=30)
    s.check(p.returncode == 2 and "not a loopback address" in p.stderr,
            "refused: a non-loopback address without tokens", p.stderr)
    tokens = s.path("tokens")
    tok = {}
    for name, role in (("viewer1", "viewer"), ("op1", "operator"), ("alice", "operator")):
        t = subprocess.run([CAIRN, "token", "add", name, "--role", role, "--tokens", tokens],
                           capture_output=True, text=True, timeout=30)
        tok[name] = t.stdout.strip()
    os.chmod(tokens, 0o644)
    p = subprocess.run([CAIRN, "--db", s.path("w2.db"), "serve", "--workflows", d, "--tokens",
                        tokens], capture_output=True, text=True, timeout=30)
    s.check(p.returncode == 3 and "chmod" in p.stderr, "a tokens file others may read: exit 3",
            p.stderr)
    os.chmod(tokens, 0o600)
    srv = Server(s, "w2", d, extra=["--tokens", tokens])

    def auth(name):
        return {"Authorization": "Bearer " + tok[name]}
    try:
        s.check("3 tokens from" in srv.stderr() and "loopback only" not in srv.stderr(),
                "the server says it checks tokens", srv.stderr())
        st, r, body = srv.request("GET", "/v1/runs")
        s.check(st == 401 and body["error"]["code"] == "unauthorized" and
                r.getheader("WWW-Authenticate") == "Bearer", "no token: 401", body)
        st, _, body = srv.request("GET", "/v1/runs", headers={"Authorization": "Bearer cairn_x"})
        s.check(st == 401, "a wrong token: 401", body)
        s.check(srv.request("GET", "/healthz")[0] == 200, "health needs no token")
        s.check(srv.request("GET", "/v1/runs", headers=auth("viewer1"))[0] == 200,
                "a viewer reads")
        st, _, body = srv.request("POST", "/v1/workflows/gate/runs", {}, auth("viewer1"))
        s.check(st == 403 and body["error"]["code"] == "forbidden", "a viewer may not start: 403",
                body)
        st, _, body = srv.request("POST", "/v1/workflows/gate/runs", {}, auth("op1"))
        s.check(st == 201, "an operator starts a run", body)
        r = body["id"]
        run = srv.request("GET", "/v1/runs/" + r, headers=auth("viewer1"))[2]
        s.check(run.get("status") == "waiting", "the run waits for its approval", run)
        events = srv.request("GET", "/v1/runs/%s/events" % r, headers=auth("viewer1"))[2]
        created = events["events"][0]["data"]
        s.check(created["trigger"].get("user") == "op1", "the run's starter is the token's name",
                created)
        path = "/v1/runs/%s/steps/ok/approval" % r
        st, _, body = srv.request("POST", path, {"decision": "approve"}, auth("op1"))
        s.check(st == 403 and "op1 may not decide" in body["error"]["message"],
                "a token not among the approvers: 403", body)
        st, _, body = srv.request("POST", path, {"decision": "approve", "by": "mallory"},
                                  auth("alice"))
        s.check(st == 403, "a token decides as its own name only", body)
        st, _, body = srv.request("POST", path, {"decision": "approve"}, auth("alice"))
        s.check(st == 200, "the approver's token decides", body)
        s.check(srv.stream(r, headers=auth("viewer1"))[-1][1] == "run_succeeded",
                "the run goes on to its end")
        dec = [e for e in srv.request("GET", "/v1/runs/%s/events" % r,
                                      headers=auth("viewer1"))[2]["events"]
               if e["type"] == "approval_decided"]
        s.check(dec and dec[0]["data"]["by"] == "alice", "recorded under the token's name", dec)
    finally:
        srv.stop()


def test_idempotency_survives_restart(s):
    d = wfdir(s, "w3", {"gate.yaml": GATE})
    srv = Server(s, "w3", d)
    try:
        st1, _, a = srv.request("POST", "/v1/workflows/gate/runs", {}, {"Idempotency-Key": "k-1"})
        st2, _, b = srv.request("POST", "/v1/workflows/gate/runs", {}, {"Idempotency-Key": "k-1"})
        s.check(st1 == 201 and st2 == 200 and a["id"] == b["id"] and b["existed"],
                "a repeated key returns the same run", (a, b))
        st, _, c = srv.request("POST", "/v1/workflows/gate/runs", {"inputs": {"x": 1}},
                               {"Idempotency-Key": "k-1"})
        s.check(st == 422 and c["error"]["code"] == "idempotency_key_reused",
                "the key with another body: 422", c)
        answers = []

        def one():
            answers.append(srv.request("POST", "/v1/workflows/gate/runs", {},
                                       {"Idempotency-Key": "k-2"}))
        threads = [threading.Thread(target=one) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = {a[2].get("id") for a in answers}
        s.check(len(answers) == 16 and all(a[0] in (200, 201) for a in answers) and len(ids) == 1,
                "sixteen requests with one key at once: one run", answers)
    finally:
        srv.stop()
    srv = Server(s, "w3", d)
    try:
        st, _, c = srv.request("POST", "/v1/workflows/gate/runs", {}, {"Idempotency-Key": "k-1"})
        s.check(st == 200 and c["id"] == a["id"], "after a restart the key still names its run", c)
        runs = cairn_json("runs", db=srv.db)[0]
        s.check(len(runs) == 2, "one run in the journal for each key", runs)
    finally:
        srv.stop()


def test_paging_and_filters(s):
    d = wfdir(s, "w4", {"hello.yaml": HELLO, "gate.yaml": GATE})
    srv = Server(s, "w4", d)
    try:
        ids = [srv.start_run("hello") for _ in range(5)]
        gate = srv.start_run("gate")
        for i in ids:
            srv.stream(i)
        seen, cursor, pages = [], None, 0
        while True:
            q = "/v1/runs?workflow=hello&limit=2" + ("&cursor=" + cursor if cursor else "")
            st, _, page = srv.request("GET", q)
            seen += [(r["created_at"], r["id"]) for r in page["runs"]]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor or pages > 10:
                break
        # newest first; runs made in one millisecond come by id
        s.check(sorted(i for _, i in seen) == sorted(ids) and pages == 3 and
                seen == sorted(seen, reverse=True),
                "cursor paging: every run once, newest first", (seen, ids, pages))
        page = wait_for(lambda: srv.request("GET", "/v1/runs?status=running,waiting")[2]["runs"],
                        "the gate's run to be listed")
        s.check([r["id"] for r in page] == [gate], "status filter", page)
        st, _, page = srv.request("GET", "/v1/runs?workflow=gate&status=succeeded")
        s.check(st == 200 and page["runs"] == [], "filters combine", page)
        st, _, body = srv.request("GET", "/v1/runs?cursor=nonsense")
        s.check(st == 400 and body["error"]["code"] == "invalid_parameter", "a bad cursor: 400", body)
        st, _, body = srv.request("GET", "/v1/runs?status=sleeping")
        s.check(st == 400, "an unknown status: 400", body)
        st, _, body = srv.request("GET", "/v1/runs?limit=0")
        s.check(st == 400, "limit 0: 400", body)
    finally:
        srv.stop()


def test_commands_and_approvals(s):
    d = wfdir(s, "w5", {"gate.yaml": GATE})
    srv = Server(s, "w5", d)
    try:
        # a cancel the moment the id is handed out
        r1 = srv.start_run("gate")
        st, _, body = srv.request("POST", "/v1/runs/%s/cancel" % r1)
        s.check(st == 200 and body["state"] == "done", "cancel at once after the start", body)
        evs = srv.stream(r1)
        s.check(evs[-1][1] == "run_cancelled", "the run ends cancelled", evs)
        st, _, body = srv.request("POST", "/v1/runs/%s/cancel" % r1)
        s.check(st == 409 and body["error"]["code"] == "conflict", "cancel of an ended run: 409", body)

        r2 = srv.start_run("gate")
        st, _, body = srv.request("POST", "/v1/runs/%s/pause" % r2)
        st2, _, run = srv.request("GET", "/v1/runs/" + r2)
        s.check(st == 200 and run["paused"], "pause", (body, run))
        st, _, ap = srv.request("GET", "/v1/approvals")
        s.check(st == 200 and [(a["run"], a["step"]) for a in ap["approvals"]] == [(r2, "ok")],
                "a paused run's open approval is listed", ap)
        st, _, body = srv.request("POST", "/v1/runs/%s/unpause" % r2)
        st2, _, run = srv.request("GET", "/v1/runs/" + r2)
        s.check(st == 200 and not run["paused"], "unpause", (body, run))
        st, _, ap = srv.request("GET", "/v1/approvals")
        s.check(st == 200 and [(a["run"], a["step"]) for a in ap["approvals"]] == [(r2, "ok")],
                "the approval is listed", ap)
        path = "/v1/runs/%s/steps/ok/approval" % r2
        st, _, body = srv.request("POST", path, {"decision": "approve", "by": "mallory"})
        s.check(st == 403 and body["error"]["code"] == "forbidden", "not an approver: 403", body)
        st, _, body = srv.request("POST", path, {"decision": "maybe", "by": "alice"})
        s.check(st == 422, "a decision that is neither: 422", body)
        st, _, body = srv.request("POST", "/v1/runs/%s/steps/nosuch/approval" % r2,
                                  {"decision": "approve", "by": "alice"})
        s.check(st == 404, "no such step: 404", body)
        st, _, body = srv.request("POST", path, {"decision": "approve", "by": "alice",
                                                 "comment": "fine"})
        s.check(st == 200, "the approver approves", body)
        evs = srv.stream(r2)
        s.check(evs[-1][1] == "run_succeeded", "the run goes on to its end", evs)
        st, _, body = srv.request("POST", "/v1/runs/zzzzzzzzzzzzzzzz/cancel")
        s.check(st == 404 and body["error"]["code"] == "not_found", "an unknown run: 404", body)
    finally:
        srv.stop()


def test_stream_resumes(s):
    d = wfdir(s, "w6", {"gate.yaml": GATE})
    srv = Server(s, "w6", d)
    try:
        r = srv.start_run("gate")
        first = srv.stream(r, count=2)
        srv.request("POST", "/v1/runs/%s/steps/ok/approval" % r, {"decision": "approve", "by": "alice"})
        rest = srv.stream(r, last=first[-1][0])
        s.check(first[-1][0] == 2 and rest and rest[0][0] == 3 and rest[-1][1] == "run_succeeded",
                "Last-Event-ID resumes after the last event seen", (first, rest))
    finally:
        srv.stop()


def metric(text, name):
    """The value of an unlabelled sample in Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_metrics_and_health(s):
    d = wfdir(s, "w7", {"hello.yaml": HELLO})
    srv = Server(s, "w7", d)
    try:
        for _ in range(3):
            srv.stream(srv.start_run("hello"))
        st, r, text = srv.request("GET", "/metrics")
        s.check(st == 200 and r.getheader("Content-Type").startswith("text/plain"),
                "metrics: Prometheus text", st)
        for fam in ("cairn_runs_started_total", "cairn_runs_finished_total", "cairn_steps_total",
                    "cairn_step_duration_seconds", "cairn_journal_commit_seconds",
                    "cairn_journal_batch_events", "cairn_runs_active", "cairn_http_requests_total",
                    "cairn_event_streams", "cairn_webhooks_total"):
            s.check("# TYPE %s " % fam in text, "metrics: family " + fam)
        want = ['cairn_runs_started_total{workflow="hello"} 3',
                'cairn_runs_finished_total{workflow="hello",status="succeeded"} 3',
                'cairn_steps_total{action="shell",status="succeeded"} 3',
                'cairn_step_duration_seconds_count{action="shell"} 3']
        # a stream may read the end from the journal a moment before the
        # engine's report of it has reached the metrics
        text = wait_for(lambda: (lambda t: t if all(w in t for w in want) else None)(
            srv.request("GET", "/metrics")[2]), "the metrics to count the three runs", timeout=10)
        s.check(all(w in text for w in want), "metrics count the runs and steps", text)
        # every event of the three runs (run_created, step_started,
        # step_succeeded, run_succeeded at least) went through a group commit
        batched = wait_for(lambda: (lambda v: v if v and v >= 12 else None)(metric(
            srv.request("GET", "/metrics")[2], "cairn_journal_batch_events_sum")),
            "the group commits to count the runs' events", timeout=10)
        s.check(batched is not None and batched >= 12, "metrics count the events committed", batched)
        for p in ("/healthz", "/readyz"):
            st, _, body = srv.request("GET", p)
            s.check(st == 200, p + ": 200", body)
    finally:
        srv.stop()


def test_reload(s):
    d = wfdir(s, "w8", {"gate.yaml": GATE, "hello.yaml": HELLO})
    srv = Server(s, "w8", d)
    try:
        pinned = srv.start_run("gate")
        old = {w["name"]: w["hash"] for w in srv.request("GET", "/v1/workflows")[2]["workflows"]}
        write(s, "w8/gate.yaml", GATE.replace("echo done", "echo done again"))
        write(s, "w8/hello.yaml", "cairn: 1\nname: hello\nsteps: [\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in srv.stderr(), "the reload to be reported")
        new = {w["name"]: w["hash"] for w in srv.request("GET", "/v1/workflows")[2]["workflows"]}
        s.check(new["gate"] != old["gate"] and new["hello"] == old["hello"],
                "reload: a changed file is new, a broken one keeps its last version", (old, new))
        s.check("hello.yaml is not served" in srv.stderr(), "reload: the broken file is reported")
        srv.request("POST", "/v1/runs/%s/steps/ok/approval" % pinned,
                    {"decision": "approve", "by": "alice"})
        srv.stream(pinned)
        run = srv.request("GET", "/v1/runs/" + pinned)[2]
        s.check(run["steps"]["after"]["output"]["stdout"] == "done\n",
                "a run started before the reload keeps its definition", run["steps"]["after"])
        fresh = srv.start_run("gate")
        srv.request("POST", "/v1/runs/%s/steps/ok/approval" % fresh,
                    {"decision": "approve", "by": "alice"})
        srv.stream(fresh)
        run = srv.request("GET", "/v1/runs/" + fresh)[2]
        s.check(run["steps"]["after"]["output"]["stdout"] == "done again\n",
                "a run started after it has the new one", run["steps"]["after"])
    finally:
        srv.stop()


def test_drain_on_sigterm(s):
    fifo = s.path("go.fifo")
    os.mkfifo(fifo)
    d = wfdir(s, "w9", {"slow.yaml": """cairn: 1
name: slow
steps:
  - id: wait_for_go
    run: cat %s
""" % fifo})
    srv = Server(s, "w9", d, env={"CAIRN_GRACE_MS": "60000"})
    r = srv.start_run("slow")
    srv.stream(r, until=("step_started",))
    srv.proc.send_signal(signal.SIGTERM)

    def refused():
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()
            return False
        except OSError:
            return True
    s.check(wait_for(refused, "the listener to close"), "SIGTERM: new connections are refused")
    s.check(srv.proc.poll() is None, "SIGTERM: the server waits for the running step")
    with open(fifo, "w") as f:
        f.write("go\n")
    rc = srv.proc.wait(timeout=60)
    srv.err.close()
    s.check(rc == 0 and "stopped" in srv.stderr(), "then exits 0", srv.stderr())
    run = cairn_json("show", r, db=srv.db)[0]
    s.check(run["steps"]["wait_for_go"]["status"] == "succeeded",
            "the running step finished, not interrupted", run)


def test_resume_on_start(s):
    d = wfdir(s, "w10", {"gate.yaml": GATE})
    srv = Server(s, "w10", d)
    r = srv.start_run("gate")
    srv.stop(signal.SIGKILL)
    srv = Server(s, "w10", d)
    try:
        s.check("resumed 1 unfinished run" in srv.stderr(), "start: the unfinished run is resumed",
                srv.stderr())
        st, _, body = srv.request("POST", "/v1/runs/%s/steps/ok/approval" % r,
                                  {"decision": "approve", "by": "alice"})
        s.check(st == 200 and srv.stream(r)[-1][1] == "run_succeeded",
                "and carried on to its end", body)
    finally:
        srv.stop()


def test_openapi_matches_routes(s):
    with open(os.path.join(ROOT, "schema", "openapi.yaml")) as f:
        spec = yaml.safe_load(f)
    s.check(str(spec.get("openapi", "")).startswith("3."), "schema/openapi.yaml is OpenAPI 3")
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops
                  if m in ("get", "post", "put", "delete", "patch")}
    d = wfdir(s, "w11", {"hello.yaml": HELLO})
    srv = Server(s, "w11", d)
    try:
        st, _, body = srv.request("GET", "/v1")
        served = {(r["method"], r["path"]) for r in body["routes"]}
        s.check(documented == served, "the OpenAPI paths are the routes served",
                (sorted(documented - served), sorted(served - documented)))
        for method, path in sorted(documented):
            if path.endswith("/events"):
                continue   # the stream is probed above; its page form here
            concrete = path.replace("{name}", "hello").replace("{id}", "zzzzzzzzzzzzzzzz") \
                           .replace("{step}", "ok")
            st, _, body = srv.request(method, concrete, {} if method == "POST" else None)
            code = body["error"]["code"] if isinstance(body, dict) and "error" in body else ""
            s.check(code not in ("route_not_found", "method_not_allowed"),
                    "%s %s is a route" % (method, path), (st, body))
    finally:
        srv.stop()


# ---- bad input and limits ---------------------------------------------------------------------

def raw_exchange(port, data, chunk=None):
    """Send data (in chunks of `chunk`, reading between), return what came back
    (b"" when the server closed without answering)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    got = b""
    try:
        step = chunk or len(data)
        for i in range(0, len(data), step):
            try:
                sock.sendall(data[i:i + step])
            except (BrokenPipeError, ConnectionResetError):
                break
            if select.select([sock], [], [], 0)[0]:
                break
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        while True:
            try:
                b = sock.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            got += b
    finally:
        sock.close()
    return got


def status_of(raw):
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


def test_bad_input(s):
    d = wfdir(s, "w12", {"hello.yaml": HELLO})
    srv = Server(s, "w12", d, env={"CAIRN_SERVE_REQUEST_MS": "2000"})
    try:
        srv.request("GET", "/healthz")
        before = journal_counts(srv.db)
        post = "/v1/workflows/hello/runs"
        cases = [
            ("malformed JSON", post, b'{"inputs": {', {"Content-Type": "application/json"},
             400, "invalid_json"),
            ("a wrong content type", post, b"who=you", {"Content-Type": "application/x-www-form-urlencoded"},
             415, "unsupported_media_type"),
            ("JSON nested 100,000 deep", post, b"[" * 100000 + b"]" * 100000,
             {"Content-Type": "application/json"}, 400, "invalid_json"),
            ("invalid UTF-8", post, b'{"inputs": {"who": "\xff\xfe"}}',
             {"Content-Type": "application/json"}, 400, "invalid_utf8"),
            ("an overlong UTF-8 form", post, b'{"inputs": {"who": "\xc0\xaf"}}',
             {"Content-Type": "application/json"}, 400, "invalid_utf8"),
            ("an unknown workflow", "/v1/workflows/nosuch/runs", b"{}",
             {"Content-Type": "application/json"}, 404, "unknown_workflow"),
            ("a body that is not an object", post, b"[1]", {"Content-Type": "application/json"},
             400, "invalid_json"),
            ("a bad Idempotency-Key", post, b"{}", {"Content-Type": "application/json",
                                                    "Idempotency-Key": "x" * 300}, 400,
             "invalid_idempotency_key"),
            ("headers too large", "/v1/runs", None, {"X-Big": "y" * 20000}, 431,
             "headers_too_large"),
        ]
        for what, path, body, headers, want, code in cases:
            st, _, b = srv.request("POST" if body is not None else "GET", path, body, headers)
            got_code = b.get("error", {}).get("code") if isinstance(b, dict) else b
            s.check(st == want and got_code == code, "%s: %d %s" % (what, want, code), (st, b))
        # a decoded %2F splits the path: no route; a bad character in an id: 400
        for path, want, code in (("/v1/runs/..%2F..%2Fetc%2Fpasswd", 404, "route_not_found"),
                                 ("/v1/runs/../../etc/passwd", 404, "route_not_found"),
                                 ("/v1/workflows/..%2Fhello/runs", 404, "route_not_found"),
                                 ("/v1/runs/%00abc/cancel", 404, "route_not_found"),
                                 ("/v1/runs/ABC;rm/events", 400, "invalid_path"),
                                 ("/v1/workflows/../runs", 400, "invalid_path"),
                                 ("/v1/workflows/%2e%2e/runs", 400, "invalid_path"),
                                 ("/v1/runs/01k97o%0a2bimbv/cancel", 400, "invalid_path")):
            method = "POST" if path.endswith(("/runs", "/cancel")) else "GET"
            st, _, b = srv.request(method, path, b"{}" if method == "POST" else None,
                                   {"Content-Type": "application/json"})
            s.check(st == want and isinstance(b, dict) and b["error"]["code"] == code,
                    "path trick %s: %d %s" % (path, want, code), (st, b))
        # 100 MB: refused by its Content-Length before the body is read
        big = 100 * 1024 * 1024
        head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % (post, big)).encode()
        raw = raw_exchange(srv.port, head + b"{" * (4 << 20), chunk=1 << 16)
        s.check(status_of(raw) == 413 or raw == b"", "a 100 MB body: 413 or closed", raw[:200])
        s.check(b"body_too_large" in raw or raw == b"", "a 100 MB body: the JSON error names it")
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        sock.sendall(head)   # the headers alone: the answer comes before any body
        try:
            early = sock.recv(4096)
        except OSError:
            early = b""
        sock.close()
        s.check(status_of(early) == 413, "a 100 MB Content-Length: 413 before the body", early[:200])
        # ... and one with no Content-Length (chunked) past the limit
        chunks = b"".join(b"%x\r\n%s\r\n" % (1 << 16, b"a" * (1 << 16)) for _ in range(20)) + b"0\r\n\r\n"
        raw = raw_exchange(srv.port, ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                      "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                      % post).encode() + chunks)
        s.check(status_of(raw) == 413, "a chunked body past the limit: 413", raw[:200])
        # a client sending one byte a second is cut off at the request deadline
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        req = ("GET /v1/runs HTTP/1.1\r\nHost: x\r\n" + "X-Slow: " + "a" * 100 + "\r\n\r\n").encode()
        t0, sent, closed = time.monotonic(), 0, False
        while sent < len(req) and time.monotonic() - t0 < 20:
            try:
                sock.send(req[sent:sent + 1])
            except OSError:
                closed = True
                break
            sent += 1
            r, _, _ = select.select([sock], [], [], 1.0)   # the pace: a byte a second
            if r:
                try:
                    closed = sock.recv(1) == b""
                except OSError:
                    closed = True
                break
        sock.close()
        s.check(closed and sent < len(req) and time.monotonic() - t0 < 6,
                "a byte a second: the connection is closed at the deadline", (closed, sent))
        after = journal_counts(srv.db)
        s.check(after == before, "bad input started nothing and left the journal as it was",
                (before, after))
        st, _, b = srv.request("GET", "/healthz")
        s.check(st == 200, "the server is well after it all", b)
    finally:
        s.check(srv.stop() == 0, "and stops cleanly")


def test_rate_and_connection_limits(s):
    d = wfdir(s, "w13", {"hello.yaml": HELLO})
    srv = Server(s, "w13", d, env={"CAIRN_SERVE_RATE_PER_S": "2", "CAIRN_SERVE_RATE_BURST": "5",
                                   "CAIRN_SERVE_CONNECTIONS_MAX": "3"})
    try:
        statuses = [srv.request("GET", "/v1/workflows")[0] for _ in range(16)]
        s.check(statuses[:5] == [200] * 5 and 429 in statuses[5:], "past the burst: 429", statuses)
        st, r, body = srv.request("GET", "/v1/workflows")
        s.check(st != 429 or (r.getheader("Retry-After") and body["error"]["code"] == "rate_limited"),
                "429 says when to retry, as a JSON error", body)
        socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(3)]
        extra = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        try:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = extra.recv(100)
        except OSError:
            data = b""
        s.check(data == b"", "a connection past the limit is closed", data)
        for k in socks + [extra]:
            k.close()
    finally:
        srv.stop()


def test_run_hands_over(s):
    d = wfdir(s, "w14", {"hello.yaml": HELLO})
    other = write(s, "other.yaml", """cairn: 1
name: other
inputs:
  n: { type: integer }
steps:
  - id: one
    run: echo one ${{ .inputs.n }}
  - id: two
    needs: [one]
    run: test ${{ .inputs.n }} -lt 10
""")
    srv = Server(s, "w14", d)
    try:
        p = cairn_run(srv.db, other, "--input", "n=5")
        s.check(p.returncode == 0 and "held by the cairn serve" in p.stderr,
                "cairn run hands its run to the server", p.stderr)
        s.check("run_created" in p.stdout and "run_succeeded" in p.stdout and
                p.stdout.count("step_succeeded") == 2, "and prints its transitions", p.stdout)
        runs = srv.request("GET", "/v1/runs?workflow=other")[2]["runs"]
        s.check(len(runs) == 1 and runs[0]["status"] == "succeeded", "the server holds that run", runs)
        run = srv.request("GET", "/v1/runs/" + runs[0]["id"])[2]
        s.check(run["steps"]["one"]["output"]["stdout"] == "one 5\n", "with its inputs", run)
        p = cairn_run(srv.db, other, "--input", "n=50")
        s.check(p.returncode == 1 and "run_failed" in p.stdout, "a failed run: exit 1", p.stdout)
        p = cairn_run(srv.db, other, "--input", "n=x")
        s.check(p.returncode == 2, "a bad input: exit 2, nothing sent", p.stderr)
        p = cairn_run(srv.db, other, "--input", "n=1", "--json")
        last = json.loads(p.stdout.splitlines()[-1])
        s.check(p.returncode == 0 and last["status"] == "succeeded", "--json as before", p.stdout)
        s.check(len(srv.request("GET", "/v1/runs?workflow=other")[2]["runs"]) == 3,
                "three runs in all", "")
    finally:
        srv.stop(signal.SIGKILL)
    p = cairn_run(srv.db, other, "--input", "n=5")
    s.check(p.returncode == 0 and "held by" not in p.stderr and "run_succeeded" in p.stdout,
            "with the server gone (its socket left behind), cairn run runs the run itself",
            p.stdout + p.stderr)


def test_cli_commands_through_server(s):
    d = wfdir(s, "w15", {"gate.yaml": GATE})
    srv = Server(s, "w15", d)
    try:
        def cli(*args):
            return subprocess.run([CAIRN, "--db", srv.db] + list(args), capture_output=True,
                                  text=True, timeout=120)
        r = srv.start_run("gate")   # at once: the journal's tables may not show it yet
        p = cli("pause", r)
        s.check(p.returncode == 0 and p.stdout == "run %s paused\n" % r and
                "carried out by the cairn serve" in p.stderr,
                "cairn pause of a run the server just started, by the server", p.stdout + p.stderr)
        s.check(srv.request("GET", "/v1/runs/" + r)[2]["paused"], "the run is paused")
        p = cli("unpause", r)
        s.check(p.returncode == 0 and p.stdout == "run %s unpaused\n" % r, "cairn unpause",
                p.stdout + p.stderr)
        p = cli("approve", r, "ok", "--as", "mallory")
        s.check(p.returncode == 2 and "mallory may not decide" in p.stderr,
                "cairn approve by one who may not: exit 2, the server's reason", p.stderr)
        p = cli("approve", r, "ok", "--as", "alice", "--comment", "fine")
        s.check(p.returncode == 0 and p.stdout == "approve of %s/ok by alice taken\n" % r and
                "carried out by the cairn serve" in p.stderr,
                "cairn approve through the server", p.stdout + p.stderr)
        s.check(srv.stream(r)[-1][1] == "run_succeeded", "the run goes on to its end")
        r2 = srv.start_run("gate")
        p = cli("cancel", r2)
        s.check(p.returncode == 0 and p.stdout == "run %s cancelled\n" % r2 and
                "carried out by the cairn serve" in p.stderr,
                "cairn cancel of a run the server just started waits for its end",
                p.stdout + p.stderr)
        p = cli("cancel", r2)
        s.check(p.returncode == 2 and "already ended" in p.stderr, "cancel again: exit 2", p.stderr)
        p = cli("cancel", "zzzzzzzzzzzzzzzz")
        s.check(p.returncode == 2, "an unknown run: exit 2", p.stderr)
    finally:
        srv.stop()


def cairn_run(db, *args):
    return subprocess.run([CAIRN, "--db", db, "run"] + list(args), capture_output=True, text=True,
                          timeout=120)


if __name__ == "__main__":
    suite = Suite("serve")
    suite.run_all([test_load_and_run, test_identity_and_tokens, test_idempotency_survives_restart,
                   test_paging_and_filters, test_commands_and_approvals, test_stream_resumes,
                   test_metrics_and_health, test_reload, test_drain_on_sigterm,
                   test_resume_on_start, test_openapi_matches_routes, test_bad_input,
                   test_rate_and_connection_limits, test_run_hands_over,
                   test_cli_commands_through_server])
    suite.finish()
