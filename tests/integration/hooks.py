"""Webhooks carried out: POST /v1/hooks/{source} through real HTTP on
loopback, and `cairn trigger` without --dry-run.

Every source's vendor payload (tests/fixtures/hooks) against what
--dry-run says it would start; dedupe (a repeat, 16 concurrent deliveries,
a resolved alert delivered and read by the run, a new firing once the run
ended, a claim left by a crash between claim and start); each credential
scheme and its forgeries; bad input that must start nothing and leave the
journal as it was; the metrics; and `cairn trigger` through a server and
with an engine of its own."""
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cairn_test import CAIRN, ROOT, Suite, cairn, journal_sql, wait_for, write  # noqa: E402
from serve import Server, raw_exchange, status_of, wfdir  # noqa: E402

HOOKS = os.path.join(ROOT, "tests", "fixtures", "hooks")
FIXTURE_WFS = os.path.join(HOOKS, "workflows")
JSON = {"Content-Type": "application/json"}

# Stops at an approval, so the run stays live while the test delivers again;
# then reads the resolved event it may have been given.
PAGE = r"""cairn: 1
name: page
inputs:
  alert: { type: object, required: true }
  instance: { type: string, required: true }
triggers:
  - webhook: alertmanager
    match: { alertname: "^HighErrorRate$" }
    dedupe: ${{ .fingerprint }}
    inputs: { alert: "${{ . }}", instance: "${{ .labels.instance }}" }
  - webhook: generic
    match: { alertname: "^Ping$" }
    inputs: { alert: "${{ . }}", instance: "${{ .labels.host }}" }
steps:
  - id: hold
    uses: approval
    with: { prompt: "Close it?", approvers: [ann] }
  - id: close
    needs: [hold]
    uses: set
    with:
      resolved: '${{ .run.trigger.resolved.status // "open" }}'
      ended: '${{ .run.trigger.resolved.ends_at // "" }}'
      source: ${{ .run.trigger.source }}
      instance: ${{ .inputs.instance }}
outputs:
  resolved: ${{ .steps.close.output.resolved }}
  ended: ${{ .steps.close.output.ended }}
"""


def alert(fingerprint, status="firing", name="HighErrorRate", instance="api-1:8080"):
    """An Alertmanager webhook (version 4) of one alert."""
    a = {"status": status,
         "labels": {"alertname": name, "instance": instance, "severity": "critical"},
         "annotations": {"summary": "5xx above 5%% on %s" % instance},
         "startsAt": "2026-12-07T06:58:12.345Z",
         "endsAt": "2026-12-07T07:21:42.000Z" if status == "resolved" else "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus.example.com:9090/graph", "fingerprint": fingerprint}
    return json.dumps({"version": "4", "groupKey": "{}:{alertname=\"%s\"}" % name,
                       "truncatedAlerts": 0, "status": status, "receiver": "cairn",
                       "groupLabels": {"alertname": name}, "commonLabels": {"alertname": name},
                       "commonAnnotations": {}, "externalURL": "http://am.example.com:9093",
                       "alerts": [a]}).encode()


def counts(db):
    """Rows of every table a delivery could change."""
    out = []
    for t in ("events", "runs", "commands", "idempotency", "claims"):
        try:
            out.append(int(journal_sql(db, "SELECT count(*) FROM %s" % t)[0][0]))
        except Exception:   # a table an older journal does not have yet
            out.append(0)
    return tuple(out)


def hook(srv, source, body, headers=None):
    h = dict(JSON)
    h.update(headers or {})
    return srv.request("POST", "/v1/hooks/" + source, body, h)


def fixture(name):
    with open(os.path.join(HOOKS, name), "rb") as f:
        return f.read()


def trigger_of(srv, run_id):
    """The run's trigger, as its run_created event holds it."""
    evs = srv.request("GET", "/v1/runs/%s/events?limit=1" % run_id)[2]["events"]
    return evs[0]["data"]["trigger"]


def runs_of(srv, workflow):
    st, _, body = srv.request("GET", "/v1/runs?workflow=%s&limit=1000" % workflow)
    return body["runs"]


# ---- every source ---------------------------------------------------------------------------

FIXTURES = [("alertmanager", "alertmanager_group.json"), ("alertmanager", "alertmanager_resolved.json"),
            ("pagerduty", "pagerduty_triggered.json"), ("pagerduty", "pagerduty_resolved.json"),
            ("pagerduty", "pagerduty_ping.json"), ("datadog", "datadog_triggered.json"),
            ("datadog", "datadog_recovered.json"), ("grafana", "grafana_group.json"),
            ("servicenow", "servicenow_incident.json"), ("servicenow", "servicenow_resolved.json"),
            ("generic", "generic_list.json")]


def test_every_source(s):
    srv = Server(s, "src", FIXTURE_WFS)
    try:
        for source, name in FIXTURES:
            p = cairn("trigger", source, "--payload", os.path.join(HOOKS, name), "--dry-run",
                      "--workflows", FIXTURE_WFS, "--json")
            want = json.loads(p.stdout)
            st, _, got = hook(srv, source, fixture(name))
            ok = (isinstance(got, dict) and got.get("events") == len(want["events"]) and
                  len(got["started"]) + len(got["existed"]) == len(want["start"]) and
                  len(got["resolved"]) + len(got["ignored"]) == len(want["resolve"]) and
                  got["refused"] == want["refused"] and got["unmatched"] == want["unmatched"])
            s.check(ok, "%s %s: the server does what --dry-run says" % (source, name),
                    (st, got, want))
            started = got.get("started", []) if isinstance(got, dict) else []
            s.check(st == (201 if started else 422 if got.get("refused") and not
                           got.get("unmatched") else 200),
                    "%s %s: status %d" % (source, name, st), got)
            for item in started:
                run = srv.request("GET", "/v1/runs/" + item["run"])[2]
                trig = trigger_of(srv, item["run"])
                s.check(run.get("workflow") == item["workflow"] and trig.get("source") == source and
                        trig.get("fingerprint") == item["fingerprint"] and
                        trig.get("dedupe") == item["dedupe"] and trig.get("client") == "127.0.0.1" and
                        "raw" in trig, "%s: run %s carries the event as its trigger" % (source, item["run"]),
                        trig)
                want_inputs = [w["inputs"] for w in want["start"] if w["event"] == item["event"] and
                               w["workflow"] == item["workflow"]]
                s.check(want_inputs and run.get("inputs") == want_inputs[0],
                        "%s: the run's inputs are the trigger's" % source, (run.get("inputs"), want_inputs))
    finally:
        s.check(srv.stop() == 0, "every source: the server stops cleanly", srv.stderr())


# ---- dedupe ---------------------------------------------------------------------------------------

def test_dedupe(s):
    d = wfdir(s, "dd", {"page.yaml": PAGE})
    srv = Server(s, "dd", d)
    try:
        st, _, a = hook(srv, "alertmanager", alert("aaaa000000000001"))
        s.check(st == 201 and len(a["started"]) == 1, "a firing alert starts a run: 201", a)
        first = a["started"][0]["run"]
        st, _, b = hook(srv, "alertmanager", alert("aaaa000000000001"))
        s.check(st == 200 and b["started"] == [] and [e["run"] for e in b["existed"]] == [first],
                "the same alert again: 200, the live run existed", b)

        answers = []

        def deliver():
            answers.append(hook(srv, "alertmanager", alert("bbbb000000000002")))
        threads = [threading.Thread(target=deliver) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = set()
        for st, _, body in answers:
            for k in ("started", "existed"):
                ids.update(e["run"] for e in body.get(k, []))
        n_started = sum(len(body.get("started", [])) for _, _, body in answers)
        runs = [r for r in runs_of(srv, "page")
                if trigger_of(srv, r["id"])["fingerprint"] == "bbbb000000000002"]
        s.check(len(answers) == 16 and all(st in (200, 201) for st, _, _ in answers) and
                n_started == 1 and len(ids) == 1 and [r["id"] for r in runs] == list(ids),
                "16 concurrent deliveries of one alert: one run", (n_started, ids, runs))

        st, _, c = hook(srv, "alertmanager", alert("aaaa000000000001", status="resolved"))
        s.check(st == 200 and [e["run"] for e in c["resolved"]] == [first] and c["ignored"] == [],
                "a resolved alert is delivered to the live run", c)
        evs = srv.request("GET", "/v1/runs/%s/events" % first)[2]["events"]
        res = [e for e in evs if e["type"] == "trigger_resolved"]
        s.check(len(res) == 1 and res[0]["data"]["event"]["status"] == "resolved",
                "the run journals trigger_resolved with the event", evs[-2:])
        st, _, c2 = hook(srv, "alertmanager", alert("aaaa000000000001", status="resolved"))
        evs = srv.request("GET", "/v1/runs/%s/events" % first)[2]["events"]
        s.check(st == 200 and len([e for e in evs if e["type"] == "trigger_resolved"]) == 1,
                "a resolved alert sent again is journaled once", c2)
        st, _, body = srv.request("POST", "/v1/runs/%s/steps/hold/approval" % first,
                                  {"decision": "approve", "by": "ann"})
        s.check(st == 200, "the run's approval is given", body)
        run = wait_for(lambda: (lambda r: r if r.get("status") == "succeeded" else None)(
            srv.request("GET", "/v1/runs/" + first)[2]), "the run to end")
        s.check(run["outputs"]["resolved"] == "resolved" and
                run["outputs"]["ended"] == "2026-12-07T07:21:42.000Z",
                "the run reads the resolved event as .run.trigger.resolved", run.get("outputs"))
        p = cairn("timeline", first, db=srv.db)
        s.check(p.returncode == 0 and "alertmanager: HighErrorRate resolved +" in p.stdout,
                "cairn timeline shows when the alert was resolved", p.stdout + p.stderr)
        st, _, e = hook(srv, "alertmanager", alert("aaaa000000000001", status="resolved"))
        s.check(st == 200 and e["resolved"] == [] and len(e["ignored"]) == 1,
                "a resolved alert with no live run is ignored", e)
        st, _, f = hook(srv, "alertmanager", alert("aaaa000000000001"))
        s.check(st == 201 and len(f["started"]) == 1 and f["started"][0]["run"] != first,
                "a new firing after the run ended starts a new run", f)
        before = wait_for(lambda: (lambda c: c if c[1] == 3 else None)(counts(srv.db)),
                          "the three runs of page in the journal's tables")
        st, _, g = hook(srv, "alertmanager", alert("cccc000000000003", status="resolved"))
        after = counts(srv.db)
        s.check(st == 200 and g["started"] == [] and len(g["ignored"]) == 1 and
                (after[1], after[4]) == (before[1], before[4]),
                "a resolved alert never seen firing starts and claims nothing", (g, before, after))
        st, _, n1 = hook(srv, "generic", json.dumps({"alertname": "Ping", "labels": {"host": "h1"}}))
        st2, _, n2 = hook(srv, "generic", json.dumps({"alertname": "Ping", "labels": {"host": "h1"}}))
        s.check(st == st2 == 201 and n1["started"][0]["run"] != n2["started"][0]["run"] and
                n1["started"][0]["dedupe"] is None, "a trigger without dedupe starts a run each time",
                (n1, n2))
        metrics = srv.request("GET", "/metrics")[2]
        s.check('cairn_webhooks_total{source="alertmanager",result="started"} 3' in metrics and
                'cairn_webhooks_total{source="alertmanager",result="existed"} 16' in metrics and
                'cairn_webhooks_total{source="alertmanager",result="resolved"} 2' in metrics and
                'cairn_webhooks_total{source="alertmanager",result="ignored"} 2' in metrics and
                'cairn_webhooks_total{source="generic",result="started"} 2' in metrics,
                "webhooks are counted by source and result",
                [l for l in metrics.splitlines() if "webhooks" in l])
    finally:
        s.check(srv.stop() == 0, "dedupe: the server stops cleanly", srv.stderr())


def test_claim_left_by_a_crash(s):
    """A claim whose run never became durable (its process died between the
    claim and the start) is taken over, and that same id started; one whose
    process lives is left to it."""
    d = wfdir(s, "cr", {"page.yaml": PAGE})
    db = s.path("cr.db")
    srv = Server(s, "cr", d, db=db)   # makes the journal
    srv.stop()
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    journal_sql(db, "INSERT INTO claims VALUES ('dedupe/page', 'dddd000000000004', "
                    "'01k9zzzzzzzzzzz1 %s:%d:1', 0, 0)" % (host, dead.pid))
    journal_sql(db, "INSERT INTO claims VALUES ('dedupe/page', 'eeee000000000005', "
                    "'01k9zzzzzzzzzzz2 %s:%d:%s', 0, 0)" % (host, os.getpid(), start_time(os.getpid())))
    srv = Server(s, "cr", d, db=db)
    try:
        st, _, a = hook(srv, "alertmanager", alert("dddd000000000004"))
        s.check(st == 201 and [e["run"] for e in a["started"]] == ["01k9zzzzzzzzzzz1"],
                "a claim left by a dead process: that same run id is started", a)
        st, _, b = hook(srv, "alertmanager", alert("eeee000000000005"))
        s.check(st == 200 and [e["run"] for e in b["existed"]] == ["01k9zzzzzzzzzzz2"] and
                b["started"] == [], "a claim of a live process starting its run: existed", b)
    finally:
        s.check(srv.stop() == 0, "claims: the server stops cleanly", srv.stderr())


def start_time(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def test_reload(s):
    """SIGHUP: the triggers follow the workflows served, a file that no
    longer loads keeping its previous version."""
    d = wfdir(s, "rl", {"page.yaml": PAGE})
    srv = Server(s, "rl", d)
    ping = json.dumps({"alertname": "Ping", "labels": {"host": "h1"}})
    try:
        st, _, a = hook(srv, "generic", ping)
        s.check(st == 201 and [e["workflow"] for e in a["started"]] == ["page"], "page takes Ping", a)
        with open(os.path.join(d, "page.yaml"), "w") as f:
            f.write(PAGE.replace("    match: { alertname: \"^Ping$\" }", "    match: { alertname: \"^Pong$\" }"))
        with open(os.path.join(d, "other.yaml"), "w") as f:
            f.write(PAGE.replace("name: page", "name: other"))
        with open(os.path.join(d, "broken.yaml"), "w") as f:
            f.write("cairn: 1\nname: [\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in srv.stderr(), "the reload")
        st, _, a = hook(srv, "generic", ping)
        s.check(st == 201 and [e["workflow"] for e in a["started"]] == ["other"],
                "after SIGHUP: the edited trigger no longer takes Ping, the new file's does", a)
        st, _, a = hook(srv, "generic", json.dumps({"alertname": "Pong", "labels": {"host": "h1"}}))
        s.check(st == 201 and [e["workflow"] for e in a["started"]] == ["page"],
                "after SIGHUP: the edited trigger takes what it now matches", a)
        with open(os.path.join(d, "page.yaml"), "w") as f:
            f.write("cairn: 1\nname: page\nsteps: [\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: srv.stderr().count("reloaded") == 2, "the second reload")
        st, _, a = hook(srv, "generic", json.dumps({"alertname": "Pong", "labels": {"host": "h1"}}))
        s.check(st == 201 and [e["workflow"] for e in a["started"]] == ["page"],
                "a file that no longer loads keeps its previous triggers", a)
    finally:
        s.check(srv.stop() == 0, "reload: the server stops cleanly", srv.stderr())


# ---- credentials ------------------------------------------------------------------------------------

def sign(key, text):
    return hmac.new(key.encode(), text, hashlib.sha256).hexdigest()


def test_credentials(s):
    d = wfdir(s, "cred", {"page.yaml": PAGE})
    env = {"CAIRN_SECRET_HOOK_ALERTMANAGER": "# rotating\nbearer old-7a1c\nbearer new-93fe\n",
           "CAIRN_SECRET_HOOK_SERVICENOW": "basic snow:pa55-w0rd",
           "CAIRN_SECRET_HOOK_PAGERDUTY": "hmac pd-key-1",
           "CAIRN_SECRET_HOOK_GRAFANA": "hmac gf-key-1",
           "CAIRN_SECRET_HOOK_DATADOG": "hmac dd-key"}
    srv = Server(s, "cred", d, env=env)
    try:
        before = counts(srv.db)
        body = alert("1111000000000001", name="Quiet")
        cases = [("no credential", {}, 401), ("a wrong bearer", {"Authorization": "Bearer nope"}, 401),
                 ("a basic for a bearer source", {"Authorization": "Basic bm9wZTpub3Bl"}, 401)]
        for what, h, want in cases:
            st, r, b = hook(srv, "alertmanager", body, h)
            s.check(st == want and b["error"]["code"] == "unauthorized", "bearer: %s: %d" % (what, want), b)
        for tok in ("old-7a1c", "new-93fe"):
            st, _, b = hook(srv, "alertmanager", body, {"Authorization": "Bearer " + tok})
            s.check(st == 200 and len(b["unmatched"]) == 1, "bearer: the line %s accepts" % tok, b)
        snow = fixture("servicenow_resolved.json")
        import base64
        good = "Basic " + base64.b64encode(b"snow:pa55-w0rd").decode()
        bad = "Basic " + base64.b64encode(b"snow:guess").decode()
        s.check(hook(srv, "servicenow", snow, {"Authorization": good})[0] == 200, "basic: accepted")
        s.check(hook(srv, "servicenow", snow, {"Authorization": bad})[0] == 401, "basic: a wrong password: 401")
        pd = fixture("pagerduty_ping.json")
        s.check(hook(srv, "pagerduty", pd, {"X-PagerDuty-Signature": "v1=" + sign("pd-key-1", pd)})[0] == 200,
                "pagerduty hmac: accepted")
        s.check(hook(srv, "pagerduty", pd, {"X-PagerDuty-Signature": "v1=%s,v1=%s" % (
            sign("other", pd), sign("pd-key-1", pd))})[0] == 200,
            "pagerduty hmac: one good signature of several is enough")
        st, _, b = hook(srv, "pagerduty", pd, {"X-PagerDuty-Signature": "v1=" + sign("forged", pd)})
        s.check(st == 401 and "does not match" in b["error"]["message"], "pagerduty: a forged signature: 401", b)
        st, _, b = hook(srv, "pagerduty", pd + b" ", {"X-PagerDuty-Signature": "v1=" + sign("pd-key-1", pd)})
        s.check(st == 401, "pagerduty: a body changed after signing: 401", b)
        gf = fixture("grafana_group.json")
        now = str(int(time.time()))
        s.check(hook(srv, "grafana", gf, {"X-Grafana-Alerting-Signature": sign("gf-key-1", now.encode() + b":" + gf),
                                          "X-Grafana-Alerting-Signature-Timestamp": now})[0] in (200, 201),
                "grafana hmac with its timestamp: accepted")
        old = str(int(time.time()) - 3600)
        st, _, b = hook(srv, "grafana", gf, {"X-Grafana-Alerting-Signature": sign("gf-key-1", old.encode() + b":" + gf),
                                             "X-Grafana-Alerting-Signature-Timestamp": old})
        s.check(st == 401 and "replay window" in b["error"]["message"],
                "grafana: a replayed delivery (signed an hour ago): 401", b)
        st, _, b = hook(srv, "grafana", gf, {"X-Grafana-Alerting-Signature": sign("gf-key-1", old.encode() + b":" + gf),
                                             "X-Grafana-Alerting-Signature-Timestamp": now})
        s.check(st == 401, "grafana: an old signature under a new timestamp: 401", b)
        st, _, b = hook(srv, "datadog", fixture("datadog_triggered.json"))
        s.check(st == 500 and b["error"]["code"] == "credentials_invalid",
                "an hmac line for a source that signs nothing: 500, never accepted", b)
        # generic has no credential: the loopback mode without tokens takes it
        st, _, b = hook(srv, "generic", json.dumps({"alertname": "Nothing"}))
        s.check(st == 200 and len(b["unmatched"]) == 1, "no credential, no tokens file: accepted", b)
        # a rotated secret in the secrets file takes effect without a restart
        p = cairn("secret", "set", "HOOK_GENERIC", db=srv.db, input="bearer g-1\n")
        s.check(p.returncode == 0, "cairn secret set HOOK_GENERIC", p.stderr)
        st, _, b = hook(srv, "generic", json.dumps({"alertname": "Nothing"}))
        s.check(st == 401, "the secret set while serving is in force at once", b)
        gen = json.dumps({"alertname": "Nothing"}).encode()
        s.check(hook(srv, "generic", gen, {"Authorization": "Bearer g-1"})[0] == 200,
                "... and its bearer accepted")
        p = cairn("secret", "set", "HOOK_GENERIC", db=srv.db,
                  input="hmac gk-2\n")
        t = str(int(time.time()))
        st, _, b = hook(srv, "generic", gen, {"X-Cairn-Signature": "t=%s,v1=%s" % (t, sign("gk-2", t.encode() + b"." + gen))})
        s.check(st == 200, "generic hmac (X-Cairn-Signature): accepted", b)
        t_old = str(int(time.time()) - 900)
        st, _, b = hook(srv, "generic", gen, {"X-Cairn-Signature": "t=%s,v1=%s" % (
            t_old, sign("gk-2", t_old.encode() + b"." + gen))})
        s.check(st == 401, "generic: a replayed signature: 401", b)
        fp = alert("1111000000000002")
        st, _, b = hook(srv, "alertmanager", fp, {"Authorization": "Bearer nope"})
        after = counts(srv.db)
        s.check(st == 401 and after[1] == before[1] and after[4] == before[4],
                "refused deliveries started nothing", (before, after))
        metrics = srv.request("GET", "/metrics")[2]
        s.check('cairn_webhooks_total{source="alertmanager",result="unauthorized"} 4' in metrics,
                "refused deliveries are counted", [l for l in metrics.splitlines() if "webhooks" in l])
    finally:
        s.check(srv.stop() == 0, "credentials: the server stops cleanly", srv.stderr())


def test_tokens_mode(s):
    """With a tokens file a source needs its own credential: an API token,
    of any role, is not one."""
    d = wfdir(s, "tok", {"page.yaml": PAGE})
    tokens = s.path("tokens")
    tok = {}
    for name, role in (("v", "viewer"), ("adm", "admin")):
        t = subprocess.run([CAIRN, "token", "add", name, "--role", role, "--tokens", tokens],
                           capture_output=True, text=True, timeout=30)
        tok[name] = t.stdout.strip()
    srv = Server(s, "tok", d, env={"CAIRN_SECRET_HOOK_ALERTMANAGER": "bearer am-1"},
                 extra=["--tokens", tokens])
    try:
        before = counts(srv.db)
        gen = json.dumps({"alertname": "Ping", "labels": {"host": "h"}})
        for what, h in (("no token", {}), ("a wrong token", {"Authorization": "Bearer cairn_x"}),
                        ("a viewer's token", {"Authorization": "Bearer " + tok["v"]}),
                        ("an admin's token", {"Authorization": "Bearer " + tok["adm"]})):
            st, _, b = hook(srv, "generic", gen, h)
            s.check(st == 401 and "HOOK_GENERIC" in b["error"]["message"],
                    "tokens file, a source with no credential, %s: 401" % what, b)
        st, _, b = hook(srv, "alertmanager", alert("2222000000000001"), {"Authorization": "Bearer " + tok["adm"]})
        s.check(st == 401, "tokens file: an API token is not the source's credential", b)
        s.check(counts(srv.db) == before, "nothing was journaled for them")
        st, _, b = hook(srv, "alertmanager", alert("2222000000000001"), {"Authorization": "Bearer am-1"})
        s.check(st == 201 and len(b["started"]) == 1, "tokens file: the source's credential starts the run", b)
    finally:
        s.check(srv.stop() == 0, "tokens: the server stops cleanly", srv.stderr())


# ---- bad input ----------------------------------------------------------------------------------------

def test_bad_input(s):
    d = wfdir(s, "bad", {"page.yaml": PAGE})
    srv = Server(s, "bad", d, env={"CAIRN_SERVE_REQUEST_MS": "2000"})
    try:
        srv.request("GET", "/healthz")
        before = counts(srv.db)
        url = "/v1/hooks/alertmanager"
        many = json.loads(alert("3333000000000001"))
        many["alerts"] = many["alerts"] * 1001
        cases = [
            ("malformed JSON", url, b'{"version": "4", "alerts": [', JSON, 400, "invalid_json"),
            ("a wrong content type", url, alert("3333000000000001"),
             {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
            ("no content type", url, alert("3333000000000001"), {}, 415, "unsupported_media_type"),
            ("JSON nested 100,000 deep", url, b"[" * 100000 + b"]" * 100000, JSON, 400, "invalid_json"),
            ("invalid UTF-8", url, b'{"version": "4", "alerts": [{"status": "\xff"}]}', JSON, 400,
             "invalid_utf8"),
            ("an unknown source", "/v1/hooks/nagios", alert("3333000000000001"), JSON, 404, "unknown_source"),
            ("JSON that is no Alertmanager payload", url, b'{"alerts": [{"labels": {}}]}', JSON, 422,
             "invalid_payload"),
            ("an alert with no status", url, b'{"version": "4", "alerts": [{"labels": {"alertname": "A"}}]}',
             JSON, 422, "invalid_payload"),
            ("1,001 alerts in one body", url, json.dumps(many).encode(), JSON, 413, "too_large"),
            ("an empty body", url, b"", JSON, 400, "invalid_json"),
        ]
        for what, path, body, headers, want, code in cases:
            st, _, b = srv.request("POST", path, body, headers)
            got = b.get("error", {}).get("code") if isinstance(b, dict) else b
            s.check(st == want and got == code, "%s: %d %s" % (what, want, code), (st, b))
        for path, want, code in (("/v1/hooks/../workflows/page/runs", 404, "route_not_found"),
                                 ("/v1/hooks/..%2Fworkflows", 404, "route_not_found"),
                                 ("/v1/hooks/%2e%2e", 400, "invalid_path"),
                                 ("/v1/hooks/alert%00manager", 404, "unknown_source"),
                                 ("/v1/hooks/alert;rm", 400, "invalid_path"),
                                 ("/v1/hooks/alertmanager/extra", 404, "route_not_found"),
                                 ("/v1/hooks/ALERTMANAGER", 404, "unknown_source"),
                                 ("/v1/hooks/" + "a" * 300, 400, "invalid_path")):
            st, _, b = srv.request("POST", path, alert("3333000000000001"), JSON)
            s.check(st == want and isinstance(b, dict) and b["error"]["code"] == code,
                    "path trick %s: %d %s" % (path[:40], want, code), (st, b))
        st, _, b = srv.request("GET", url)
        s.check(st == 405, "GET on a webhook: 405", b)
        big = 100 * 1024 * 1024
        head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % (url, big)).encode()
        raw = raw_exchange(srv.port, head + b"[" * (4 << 20), chunk=1 << 16)
        s.check((status_of(raw) == 413 and b"body_too_large" in raw) or raw == b"",
                "a 100 MB webhook: 413 or closed", raw[:200])
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        req = head.replace(b"%d" % big, b"300") + b" " * 300
        t0, sent, closed = time.monotonic(), 0, False
        while sent < len(req) and time.monotonic() - t0 < 20:
            try:
                sock.send(req[sent:sent + 1])
            except OSError:
                closed = True
                break
            sent += 1
            import select
            r, _, _ = select.select([sock], [], [], 1.0)   # a byte a second
            if r:
                try:
                    closed = sock.recv(1) == b""
                except OSError:
                    closed = True
                break
        sock.close()
        s.check(closed and sent < len(req) and time.monotonic() - t0 < 6,
                "a webhook sent a byte a second: closed at the deadline", (closed, sent))
        after = counts(srv.db)
        s.check(after == before, "bad webhooks started nothing and left the journal as it was",
                (before, after))
        st, _, b = hook(srv, "alertmanager", alert("3333000000000001"))
        s.check(st == 201, "and the server still takes a good one", b)
    finally:
        s.check(srv.stop() == 0, "bad input: the server stops cleanly", srv.stderr())


# ---- cairn trigger -------------------------------------------------------------------------------------

def test_cli_trigger(s):
    d = wfdir(s, "cli", {"page.yaml": PAGE})
    db = s.path("cli.db")
    payload = write(s, "a.json", alert("4444000000000001").decode())
    # no server: an engine of its own, which waits for the run it started
    first = subprocess.Popen([CAIRN, "--db", db, "trigger", "alertmanager", "--payload", payload,
                              "--workflows", d, "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)

    def gate():
        p = cairn("approvals", "--json", db=db)
        items = json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else []
        return items[0]["run"] if items else None
    run_id = wait_for(gate, "the run started by cairn trigger to wait for its approval")
    p = cairn("trigger", "alertmanager", "--payload", payload, "--workflows", d, "--json", db=db)
    a = json.loads(p.stdout.splitlines()[-1]) if p.stdout.strip() else {}
    s.check(p.returncode == 0 and [e["run"] for e in a.get("existed", [])] == [run_id] and
            a.get("started") == [], "a second cairn trigger of the alert: the run existed", p.stdout + p.stderr)
    p = cairn("approve", run_id, "hold", "--as", "ann", db=db)
    s.check(p.returncode == 0, "approve the run", p.stderr)
    out, err = first.communicate(timeout=60)
    a = json.loads(out.splitlines()[-1]) if out.strip() else {}
    s.check(first.returncode == 0 and [e["run"] for e in a.get("started", [])] == [run_id] and
            a["started"][0]["status"] == "succeeded",
            "cairn trigger with no server: runs the run to its end", out + err)
    srv = Server(s, "cli", d, db=db)
    try:
        p = cairn("trigger", "alertmanager", "--payload", payload, db=db)
        s.check(p.returncode == 0 and "1 started" in p.stdout and "started   page  run " in p.stdout,
                "cairn trigger with a server: handed to it, the answer printed", p.stdout + p.stderr)
        live = wait_for(lambda: [r for r in runs_of(srv, "page")
                                 if r["status"] not in ("succeeded", "failed")], "the run listed")
        s.check(len(live) == 1, "the server holds the run", live)
        p = cairn("trigger", "alertmanager", "--payload", payload, "--json", db=db)
        a = json.loads(p.stdout)
        s.check([e["run"] for e in a["existed"]] == [live[0]["id"]], "... and dedupes a repeat", a)
        trig = trigger_of(srv, live[0]["id"])
        s.check(trig.get("user") and trig["source"] == "alertmanager",
                "a run handed over by cairn trigger names its user", trig)
        bad = write(s, "bad.json", "{")
        before = counts(db)
        p = cairn("trigger", "alertmanager", "--payload", bad, db=db)
        s.check(p.returncode == 2 and "not JSON" in p.stderr and counts(db) == before,
                "a bad payload through the server: exit 2, nothing journaled", p.stderr)
    finally:
        s.check(srv.stop() == 0, "cli: the server stops cleanly", srv.stderr())


if __name__ == "__main__":
    suite = Suite("hooks")
    only = sys.argv[1:]
    tests = [test_every_source, test_dedupe, test_claim_left_by_a_crash, test_reload, test_credentials,
             test_tokens_mode, test_bad_input, test_cli_trigger]
    suite.run_all([t for t in tests if not only or t.__name__ in only])
    suite.finish()
