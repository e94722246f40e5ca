"""workflows/alert-triage.yaml end to end, every action against a real
server on 127.0.0.1: the LLM stand-in (llm), the instance label parsed
(match), sshd as root (ssh), PostgreSQL and an SQLite file (db), the HTTP
target (http, and notify's Slack, webhook and PagerDuty), the SMTP sink
(notify's e-mail), a local report (shell), plus set, fail, foreach and
parallel needs.

Three alerts go through the runbook:
  1. a real alert on a known host: every step runs but the guard (fail), and
     each side effect is checked from the outside, as the servers saw it;
  2. the model calls the next alert a false positive: it is recorded and told,
     but nobody is paged;
  3. an alert on a host the inventory does not know: the guard (fail) stops
     the run before anyone is told or anything recorded.
Then `cairn verify` checks the journal, and every byte Cairn wrote (journal
files, CLI output) is searched for the secrets: none may appear.
"""
import email
import email.policy
import glob
import hashlib
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import ROOT, Suite, cairn  # noqa: E402
from servers import Postgres, Servers  # noqa: E402

WORKFLOW = os.path.join(ROOT, "workflows", "alert-triage.yaml")
RUN_TIMEOUT_S = 60

HOST = "app-7.prod.internal"
SLACK_PATH = "/services/T0CAIRN01/B0CAIRN02/slack-9f3c71e2d4b8a6"
SECRETS = {  # CAIRN_SECRET_* for all but SLACK_URL, which `cairn secret set` stores
    "PAGERDUTY_ROUTING_KEY": "R0UTING-KEY-5e8a1b7c3d",
    "OPENAI_API_KEY": "sk-standin-2b9d4f6a8c1e",
    "INCIDENTS_DB_PASSWORD": Postgres.PASSWORD,
}
REASON = "5xx rate is far above normal on a production service"
FP_REASON = "the error rate rule fired on a canary taking synthetic errors"


def alert(fingerprint, instance, alertname="HighErrorRate"):
    return {
        "status": "firing",
        "labels": {"alertname": alertname, "severity": "critical", "instance": instance,
                   "job": "checkout", "service": "checkout"},
        "annotations": {"summary": "5xx rate above 5% on checkout for 10 minutes",
                        "description": "checkout answers 503 to 7.2% of requests"},
        "startsAt": "2026-11-23T15:58:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=job%3Acheckout%3A5xx",
        "fingerprint": fingerprint,
    }


def make_inventory(path):
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE services (host TEXT, service TEXT, team TEXT, owner_email TEXT, tier INT);
        INSERT INTO services VALUES
          ('app-7.prod.internal', 'checkout', 'payments', 'payments-oncall@example.com', 1),
          ('app-7.prod.internal', 'cart', 'storefront', 'storefront@example.com', 2),
          ('app-7.prod.internal', 'cart-worker', 'storefront', 'storefront@example.com', 2),
          ('db-2.prod.internal', 'ledger', 'payments', 'ledger@example.com', 1);
    """)
    db.commit()
    db.close()


def make_incidents_table(pg):
    pg.psql("""
        CREATE TABLE incidents (
          id serial PRIMARY KEY, fingerprint text UNIQUE NOT NULL, alertname text,
          host text, port int, verdict text, reason text, http_status int,
          diagnostics text, updated_at timestamptz NOT NULL DEFAULT now());
        GRANT SELECT, INSERT, UPDATE ON incidents TO cairn;
        GRANT USAGE ON SEQUENCE incidents_id_seq TO cairn;""")


class Env:
    """Everything the runs share: servers, paths, inputs, secrets."""

    def __init__(self, s, sv):
        self.s = s
        self.db = s.path("journal.db")
        self.http = sv.http()
        self.smtp = sv.smtp()
        self.llm = sv.llm(api_key=SECRETS["OPENAI_API_KEY"])
        self.sshd = sv.sshd()
        self.pg = sv.postgres()
        make_incidents_table(self.pg)
        self.inventory = s.path("inventory.sqlite")
        make_inventory(self.inventory)
        self.diag_dir = s.path("host", "diag")
        self.report_dir = s.path("reports")
        self.slack_url = self.http.url(SLACK_PATH)
        self.written = []          # every byte Cairn printed, for the leak check
        self.env = {"CAIRN_SECRET_" + k: v for k, v in SECRETS.items()}

    def inputs(self, the_alert):
        return {
            "alert": the_alert,
            "llm_base_url": self.llm.base_url,
            "llm_model": "gpt-4o-mini",
            "ssh_host": "127.0.0.1",
            "ssh_port": self.sshd.port,
            "ssh_user": self.sshd.user,
            "ssh_key_file": self.sshd.key_file,
            "known_hosts": self.sshd.known_hosts,
            "diag_dir": self.diag_dir,
            "health_url": self.http.url("/status/503?body=upstream+timeout"),
            "inventory_path": self.inventory,
            "incidents_dsn": self.pg.dsn(user=Postgres.ROLE),
            "status_webhook_url": self.http.url("/statuspage/components"),
            "smtp_url": self.smtp.url,
            "mail_from": "Cairn <cairn@ops.example.com>",
            "pagerduty_url": self.http.url("/pagerduty"),
            "report_dir": self.report_dir,
        }

    def cli(self, *args):
        p = cairn(*args, db=self.db, env=self.env, timeout=RUN_TIMEOUT_S)
        self.written += [p.stdout, p.stderr]
        return p

    def run(self, name, the_alert):
        """Run the runbook; returns (run as `show --json`, CompletedProcess)."""
        path = self.s.path(name + ".json")
        with open(path, "w") as f:
            json.dump(self.inputs(the_alert), f)
        p = self.cli("run", WORKFLOW, "--inputs-file", path, "--json")
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        run = json.loads(lines[-1]) if lines else {}
        if p.returncode not in (0, 1) or not run:
            print(p.stdout[-3000:], p.stderr[-3000:])
        return run, p

    def requests_since(self, n):
        return self.http.requests()[n:]


def by_path(requests):
    out = {}
    for r in requests:
        out.setdefault(r["path"], []).append(r)
    return out


def mail_text(message):
    msg = email.message_from_string(message["data"], policy=email.policy.default)
    return msg, msg.get_body().get_content().replace("\r\n", "\n")


def statuses(run):
    return {k: v["status"] for k, v in run.get("steps", {}).items()}


# ---- 1. a real alert: every effect, as the servers saw it ------------------------

def test_real_alert(s, env):
    fp = "a1f0c3e5b7d90001"
    env.llm.script([{"reply": json.dumps({"verdict": "real", "reason": REASON})}])
    run, p = env.run("real", alert(fp, HOST + ":8080"))
    if not s.check(p.returncode == 0 and run.get("status") == "succeeded",
                   "the runbook succeeds on a real alert", p.stderr[-2000:] + str(run.get("error"))):
        return None
    rid = run["id"]
    st = statuses(run)
    s.check(st.pop("unknown_host") == "skipped", "the fail guard is skipped on a known host")
    s.check(set(st.values()) == {"succeeded"}, "every other step succeeded", str(st))
    report = os.path.join(env.report_dir, "incident-1.json")
    want = {"verdict": "real", "reason": REASON, "host": HOST, "port": 8080, "http_status": 503,
            "services": 3, "incident_id": 1, "recorded_rows": 1, "status_updates": 3,
            "paged": True, "report": report}
    s.check(run["outputs"] == want, "the run's outputs summarise it",
            json.dumps(run["outputs"], sort_keys=True))
    check_llm(s, env, fp)
    check_ssh(s, env, run, fp)
    check_parallel(s, env, rid)
    check_http_side(s, env, run, fp)
    check_mail(s, env, run)
    check_postgres(s, env, run, fp)
    check_report(s, run, report)
    return run


def check_llm(s, env, fp):
    reqs = env.llm.requests()
    s.check(len(reqs) == 1, "the model was asked once", str(len(reqs)))
    if not reqs:
        return
    r = reqs[0]
    body = r["body"] or {}
    s.check(r["path"] == "/v1/chat/completions", "the OpenAI route under base_url", r["path"])
    s.check(r["headers"].get("authorization") == "Bearer " + SECRETS["OPENAI_API_KEY"],
            "the API key from the secret is sent")
    s.check(body.get("model") == "gpt-4o-mini" and body.get("temperature") == 0,
            "model and temperature as written", str(body.get("model")))
    prompt = " ".join(m.get("content", "") for m in body.get("messages", [])
                      if isinstance(m.get("content"), str))
    s.check(fp in prompt and "HighErrorRate" in prompt and "SRE" in prompt,
            "system and prompt carry the alert", prompt[:300])
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
    s.check(schema.get("properties", {}).get("verdict", {}).get("enum") == ["real", "false_positive"],
            "the reply schema is sent", json.dumps(body.get("response_format"))[:300])


def check_ssh(s, env, run, fp):
    marker = os.path.join(env.diag_dir, fp + ".txt")
    out = run["steps"]["diagnose"]["output"]
    s.check(os.path.isfile(marker), "the ssh command wrote its snapshot on the host")
    if os.path.isfile(marker):
        text = open(marker).read()
        s.check(text.startswith("host ") and text == out["stdout"],
                "the snapshot is what ssh returned", repr(out["stdout"][:200]))
    s.check(out.get("host_key_checked") is True and out.get("port") == env.sshd.port,
            "the host key was checked against known_hosts", str(out.get("host_key_checked")))


def check_parallel(s, env, rid):
    """diagnose and health both start before either ends: needs ran them at once."""
    p = env.cli("journal", rid, "--json")
    events = json.loads(p.stdout) if p.returncode == 0 else []
    seq = {}
    for e in events:
        seq.setdefault((e["type"], e.get("step")), e["seq"])
    starts = [seq.get(("step_started", k)) for k in ("diagnose", "health")]
    ends = [seq.get(("step_succeeded", k)) for k in ("diagnose", "health")]
    s.check(None not in starts + ends and max(starts) < min(ends),
            "diagnose and health run in parallel", "starts %s ends %s" % (starts, ends))
    items = [e for e in events if e["type"] == "step_started" and e.get("step") == "status_page"]
    s.check(len(items) == 3, "foreach starts one status_page item per service", str(len(items)))


def check_http_side(s, env, run, fp):
    paths = by_path(env.http.requests())
    rid = run["id"]
    health = paths.get("/status/503", [])
    s.check(len(health) == 1 and health[0]["method"] == "GET"
            and health[0]["headers"].get("idempotency-key") == rid + "/health",
            "the health endpoint was probed once, with the step's idempotency key", str(health)[:300])

    hooks = paths.get("/statuspage/components", [])
    bodies = sorted((json.loads(h["body"]) for h in hooks), key=lambda b: b["component"])
    want = [{"component": c, "team": t, "status": "major_outage", "incident": 1}
            for c, t in (("cart", "storefront"), ("cart-worker", "storefront"),
                         ("checkout", "payments"))]
    s.check(bodies == want, "the status page got one update per service", json.dumps(bodies))

    slack = paths.get(SLACK_PATH, [])
    text = json.loads(slack[0]["body"]).get("text", "") if len(slack) == 1 else ""
    s.check(len(slack) == 1 and text.startswith("Incident #1: HighErrorRate on " + HOST)
            and "is real (" + REASON + ")" in text and "HTTP 503" in text,
            "Slack got the incident summary at the secret URL", text or str(slack)[:300])

    pd = paths.get("/pagerduty", [])
    ev = json.loads(pd[0]["body"]) if len(pd) == 1 else {}
    payload = ev.get("payload", {})
    s.check(ev.get("routing_key") == SECRETS["PAGERDUTY_ROUTING_KEY"]
            and ev.get("event_action") == "trigger" and ev.get("dedup_key") == fp
            and payload.get("severity") == "critical"
            and payload.get("summary") == "HighErrorRate on %s: %s" % (HOST, REASON),
            "PagerDuty got a trigger event deduplicated on the fingerprint", json.dumps(ev)[:400])
    s.check(run["steps"]["page"]["output"].get("dedup_key") == fp,
            "the page step reports PagerDuty's dedup key", str(run["steps"]["page"]["output"]))
    s.check(sum(len(v) for v in paths.values()) == 6, "no other HTTP request was made",
            str(sorted(paths)))


def check_mail(s, env, run):
    msgs = env.smtp.messages()
    s.check(len(msgs) == 1, "one e-mail was sent", str(len(msgs)))
    if len(msgs) != 1:
        return
    m = msgs[0]
    owners = ["payments-oncall@example.com", "storefront@example.com"]
    s.check(m["mail_from"] == "cairn@ops.example.com" and sorted(m["rcpt_to"]) == owners,
            "the mail went from Cairn to each owner once", "%s -> %s" % (m["mail_from"], m["rcpt_to"]))
    msg, body = mail_text(m)
    s.check(msg["Subject"] == "[incident 1] HighErrorRate on " + HOST, "the subject names it",
            str(msg["Subject"]))
    diag = run["steps"]["diagnose"]["output"]["stdout"]
    s.check("Services: cart, cart-worker, checkout" in body and "HTTP 503" in body
            and diag.strip() in body and REASON in body,
            "the body has triage, services, health and the host's diagnostics", body[:600])


def check_postgres(s, env, run, fp):
    rows = env.pg.psql("SELECT id, fingerprint, alertname, host, port, verdict, reason, "
                       "http_status FROM incidents ORDER BY id")
    s.check(rows == [["1", fp, "HighErrorRate", HOST, "8080", "real", REASON, "503"]],
            "PostgreSQL holds the incident row", str(rows))
    diag = env.pg.psql("SELECT md5(diagnostics) FROM incidents WHERE id = 1")
    want = hashlib.md5(run["steps"]["diagnose"]["output"]["stdout"].encode()).hexdigest()
    s.check(diag == [[want]], "with the diagnostics from ssh, byte for byte", str(diag))


def check_report(s, run, path):
    s.check(os.path.isfile(path), "the shell step wrote the report", path)
    if os.path.isfile(path):
        with open(path) as f:
            report = json.load(f)
        s.check(report == run["steps"]["summary"]["output"], "the report is the set summary")
        s.check(report.get("notified") == {
            "status_page": 3, "slack": True, "pagerduty": report.get("fingerprint"),
            "email": ["payments-oncall@example.com", "storefront@example.com"]},
            "the summary says who was told", json.dumps(report.get("notified")))


# ---- 2. a false positive: recorded and told, nobody paged ------------------------

def test_false_positive(s, env):
    fp = "a1f0c3e5b7d90002"
    before = len(env.http.requests())
    env.llm.script([{"reply": json.dumps({"verdict": "false_positive", "reason": FP_REASON})}])
    run, p = env.run("false-positive", alert(fp, HOST + ":8443"))
    s.check(p.returncode == 0 and run.get("status") == "succeeded",
            "a false positive runs to its end", p.stderr[-1000:])
    if not run.get("outputs"):
        return
    s.check(run["steps"]["page"]["status"] == "skipped" and run["outputs"]["paged"] is False,
            "nobody is paged for a false positive", str(run["steps"]["page"]))
    paths = by_path(env.requests_since(before))
    s.check("/pagerduty" not in paths and len(paths.get(SLACK_PATH, [])) == 1,
            "Slack is told, PagerDuty is not", str(sorted(paths)))
    rows = env.pg.psql("SELECT id, port, verdict, reason FROM incidents WHERE fingerprint = '%s'" % fp)
    s.check(rows == [["2", "8443", "false_positive", FP_REASON]], "it is recorded as such", str(rows))


# ---- 3. an unknown host: the guard fails the run --------------------------------

def test_unknown_host(s, env):
    before, mails = len(env.http.requests()), len(env.smtp.messages())
    env.llm.script([{"reply": json.dumps({"verdict": "real", "reason": REASON})}])
    run, p = env.run("unknown", alert("a1f0c3e5b7d90003", "web-9.prod.internal:8080"))
    err = run.get("error") or {}
    s.check(p.returncode == 1 and run.get("status") == "failed" and err.get("kind") == "inventory"
            and err.get("step") == "unknown_host",
            "the fail guard stops a run on an unknown host", str(err) + p.stderr[-500:])
    st = statuses(run)
    s.check(st.get("diagnose") == "skipped" and st.get("record") == "skipped",
            "nothing after the guard ran: it ends skipped", str(st))
    s.check("instance web-9.prod.internal:8080 is not in the inventory" in err.get("message", ""),
            "the failure names the host", str(err))
    paths = by_path(env.requests_since(before))
    s.check(not paths and len(env.smtp.messages()) == mails,
            "nobody was told, no health probe was made", str(sorted(paths)))
    rows = env.pg.psql("SELECT count(*) FROM incidents")
    s.check(rows == [["2"]], "nothing was recorded", str(rows))


# ---- the journal and the secrets ----------------------------------------------------

def test_journal_and_secrets(s, env):
    v = env.cli("verify")
    s.check(v.returncode == 0 and v.stdout.count(" ok ") == 3, "cairn verify passes for each run",
            v.stdout + v.stderr)
    runs = json.loads(env.cli("runs", "--json").stdout or "[]")
    for r in runs:
        for args in (["show", r["id"]], ["show", r["id"], "--json"], ["journal", r["id"]],
                     ["journal", r["id"], "--json"]):
            env.cli(*args)
    files = []
    for path in glob.glob(env.db + "*"):
        with open(path, "rb") as f:
            files.append(f.read().decode("latin-1"))
    s.check(len(files) >= 2 and any("run_succeeded" in f for f in files),
            "the journal files were read", str(glob.glob(env.db + "*")))
    s.check(any("***" in w for w in env.written), "the stored copies show *** for secrets")
    written = env.written + files
    for name, value in [("SLACK_URL", env.slack_url), ("Slack URL's path", SLACK_PATH),
                        ("Slack URL's token", SLACK_PATH.rsplit("/", 1)[1])] + \
                       [(k, v) for k, v in SECRETS.items()]:
        leaks = sum(value in w for w in written)
        s.check(leaks == 0, "the %s secret appears nowhere Cairn wrote" % name,
                "%d places" % leaks)


def main():
    s = Suite("all_actions")
    try:
        with Servers(s.path("servers")) as sv:
            env = Env(s, sv)
            p = env.cli("check", WORKFLOW)
            s.check(p.returncode == 0, "cairn check accepts the workflow", p.stderr)
            p = cairn("secret", "set", "SLACK_URL", db=env.db, input=env.slack_url + "\n")
            s.check(p.returncode == 0, "the Slack URL is sealed with cairn secret set", p.stderr)
            env.written += [p.stdout, p.stderr]
            for t in (test_real_alert, test_false_positive, test_unknown_host,
                      test_journal_and_secrets):
                try:
                    t(s, env)
                except Exception as e:  # a crash in one part is a failure, not the end
                    s.check(False, t.__name__, repr(e))
    except Exception as e:  # servers that would not start, or not stop
        s.check(False, "servers", repr(e))
    s.finish()


if __name__ == "__main__":
    main()
