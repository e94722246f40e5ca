"""The seed runbooks of workflows/, each run end to end with the real CLI
against local stand-ins: the target service with its fault switch
(tests/servers/target_service.py, which records every call in order), the
LLM stand-in (answers keyed on the prompt), sshd as root, the SMTP sink and
PostgreSQL.  Each runbook's happy path and its failure branch; every side
effect is checked from outside, as the stand-ins saw it.

    runbooks.py [RUNBOOK...]     only those (default: all)

incident-response, servicenow-sre, onboarding, db-pool-exhaustion and
approval-runbook have a section each below.
"""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cairn_test import Suite, wait_for  # noqa: E402
from runbooks_lib import (LLM_KEY, PAGERDUTY_KEY, Scenario, calls, check_cairn_check,  # noqa: E402
                          check_documented, check_journals, hooks, steps_status)
from servers import Servers  # noqa: E402


class Stand:
    """The servers every runbook shares; a target service per scenario."""

    def __init__(self, s, sv):
        self.s = s
        self.sv = sv
        self.llm = sv.llm(api_key=LLM_KEY)
        self.sshd = sv.sshd()
        self.smtp = sv.smtp()
        self._pg = None
        self.n_targets = 0

    def pg(self):
        if self._pg is None:
            self._pg = self.sv.postgres()
        return self._pg

    def target(self, token=None):
        self.n_targets += 1
        return self.sv.target("target%d" % self.n_targets, token)

    def ssh_inputs(self):
        return {"ssh_host": "127.0.0.1", "ssh_port": self.sshd.port, "ssh_user": self.sshd.user,
                "ssh_key_file": self.sshd.key_file, "known_hosts": self.sshd.known_hosts}

    def llm_inputs(self, provider="openai"):
        if provider == "anthropic":
            return {"llm_provider": "anthropic", "llm_base_url": "http://127.0.0.1:%d" % self.llm.port,
                    "llm_model": "claude-sonnet-4-5"}
        return {"llm_provider": "openai", "llm_base_url": self.llm.base_url,
                "llm_model": "gpt-4o-mini"}

    def llm_asked(self, since, when):
        """The requests to the model after the first `since` whose prompt holds `when`."""
        out = []
        for r in self.llm.requests()[since:]:
            text = json.dumps(r.get("body"))
            if when in text:
                out.append(r)
        return out


# ---- incident-response -------------------------------------------------------------

IR_SECRETS = {"LLM_API_KEY": LLM_KEY, "PAGERDUTY_ROUTING_KEY": PAGERDUTY_KEY}
IR_REASON = "checkout answers 503 to 7% of requests; users cannot pay"
IR_FP_REASON = "the alert fired on the canary instance, which takes synthetic errors"


def alertmanager_alert(fingerprint, instance="checkout-1.prod.internal:8080"):
    """One alert of an Alertmanager webhook, version 4."""
    return {"status": "firing",
            "labels": {"alertname": "HighErrorRate", "severity": "critical", "instance": instance,
                       "service": "checkout", "job": "checkout"},
            "annotations": {"summary": "5xx rate above 5% on checkout for 10 minutes",
                            "description": "checkout answers 503 to 7.2% of requests"},
            "startsAt": "2026-12-07T06:58:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example/graph?g0.expr=job%3Acheckout%3A5xx",
            "fingerprint": fingerprint}


def ir_inputs(st, target, fingerprint):
    return dict(st.ssh_inputs(), **st.llm_inputs(), alert=alertmanager_alert(fingerprint),
                service_url=target.url(), notes_url=target.url("/hooks/notes"),
                pagerduty_url=target.url("/hooks/pagerduty"), log_path=target.log_file,
                diag_dir=st.s.path("diag"), approvers=["oncall-ann", "oncall-bo"], scale_by=2)


def ir_triage(st, verdict, reason, fingerprint):
    st.llm.script([{"when": fingerprint, "reply": json.dumps({"verdict": verdict, "reason": reason})}])


def ir_false_positive(s, st):
    fp = "fa15e0000000a001"
    target = st.target()
    ir_triage(st, "false_positive", IR_FP_REASON, fp)
    asked = len(st.llm.requests())
    sc = Scenario(s, "ir-fp", IR_SECRETS)
    r, run = sc.run("incident-response", ir_inputs(st, target, fp))
    s.check(r.returncode == 0 and run.get("status") == "succeeded",
            "incident-response: a false positive ends the run as succeeded", r.stderr[-1500:])
    s.check(run.get("outputs", {}).get("verdict") == "false_positive",
            "incident-response: the verdict is in the outputs", str(run.get("outputs")))
    reqs = st.llm_asked(asked, fp)
    prompt = json.dumps(reqs[0]["body"]) if reqs else ""
    s.check(len(reqs) == 1 and "HighErrorRate" in prompt and "startsAt" in prompt
            and reqs[0]["headers"].get("authorization") == "Bearer " + LLM_KEY,
            "incident-response: the model is asked once, with the whole alert and the key",
            prompt[:300])
    got = calls(target)
    s.check(got == [("POST", "/hooks/notes", {
        "fingerprint": fp, "alert": "HighErrorRate", "status": "closed",
        "note": "False positive: %s. Nothing was changed." % IR_FP_REASON, "run": run.get("id")})],
        "incident-response: a false positive is closed with a note and nothing else is touched",
        json.dumps(got))
    s.check(not os.path.exists(os.path.join(s.path("diag"), fp + ".txt")),
            "incident-response: no SSH diagnosis for a false positive")
    status = steps_status(run)
    s.check(status.get("approve") == "skipped" and status.get("remediate") == "skipped",
            "incident-response: no approval is asked for a false positive", str(status))


def ir_start_real(s, st, name, fault, fp, **more):
    """A real alert, up to its approval; returns (scenario, run, target)."""
    target = st.target()
    target.fault(fault)
    ir_triage(st, "real", IR_REASON, fp)
    sc = Scenario(s, name, IR_SECRETS)
    run = sc.start("incident-response", dict(ir_inputs(st, target, fp), **more))
    item = run.gate("approve")
    s.check("Scale checkout from 2 to 4 replicas?" in item.get("prompt", "")
            and IR_REASON in item.get("prompt", ""),
            "incident-response: the approval says what will change and why", item.get("prompt", ""))
    snap = os.path.join(s.path("diag"), fp + ".txt")
    text = open(snap).read() if os.path.exists(snap) else ""
    s.check(text.startswith("host ") and "HikariPool" not in text
            and "upstream timeout after 5000ms" in text,
            "incident-response: the SSH diagnosis read the service's log on its host", text[:400])
    before = calls(target)
    s.check([(m, p) for m, p, _ in before] == [("GET", "/metrics")],
            "incident-response: nothing is changed before the approval", json.dumps(before))
    return sc, run, target


def ir_fixed(s, st):
    fp = "fa15e0000000a002"
    fault = {"name": "error_rate", "cured_by": ["scale"], "recover_after": 2}
    sc, r, target = ir_start_real(s, st, "ir-fixed", fault, fp)
    sc.decide("approve", r, "approve", "oncall-ann", "go")
    run = r.wait()
    s.check(r.returncode == 0 and run.get("status") == "succeeded",
            "incident-response: approved, scaled and verified", r.stderr[-1500:] + str(run.get("error")))
    got = [(m, p, b) for m, p, b in calls(target)]
    want = [("GET", "/metrics"), ("POST", "/actions/scale", {"replicas": 4}),
            ("GET", "/health"), ("GET", "/health"), ("GET", "/health"), ("POST", "/hooks/notes")]
    s.check([c[:2] if c[1] != "/actions/scale" else c for c in got] == want,
            "incident-response: scale-out, polling until healthy, then a note, in that order",
            json.dumps(got))
    s.check(target.state()["replicas"] == 4, "incident-response: the service runs 4 replicas")
    note = hooks(target, "notes")
    s.check(len(note) == 1 and note[0]["status"] == "resolved"
            and "approved by oncall-ann" in note[0]["note"] and "after 3 health checks" in note[0]["note"],
            "incident-response: the note says who approved and how many checks it took", json.dumps(note))
    out = run.get("outputs", {})
    s.check(out.get("replicas_before") == 2 and out.get("replicas_after") == 4
            and out.get("approved_by") == ["oncall-ann"] and out.get("health_checks") == 3
            and "upstream timeout" in (out.get("diagnostics") or ""),
            "incident-response: the outputs tell the story", json.dumps(out)[:500])
    s.check(not hooks(target, "pagerduty"), "incident-response: nobody is paged when it worked")


def ir_verification_fails(s, st):
    fp = "fa15e0000000a003"
    fault = {"name": "error_rate", "cured_by": ["restart"]}   # scaling will not help
    sc, r, target = ir_start_real(s, st, "ir-unfixed", fault, fp)
    sc.decide("approve", r, "approve", "oncall-bo")
    run = r.wait()
    err = run.get("error") or {}
    s.check(r.returncode == 1 and err.get("step") == "verify" and err.get("kind") == "until",
            "incident-response: a service that stays sick fails verification", str(err))
    got = calls(target)
    shape = [(m, p) for m, p, _ in got]
    want = ([("GET", "/metrics"), ("POST", "/actions/scale")] + [("GET", "/health")] * 6 +
            [("POST", "/actions/scale"), ("POST", "/hooks/pagerduty"), ("POST", "/hooks/notes")])
    s.check(shape == want, "incident-response: six health checks, then the rollback, then the page",
            json.dumps(shape))
    scales = [b for m, p, b in got if p == "/actions/scale"]
    s.check(scales == [{"replicas": 4}, {"replicas": 2}] and target.state()["replicas"] == 2,
            "incident-response: the rollback scales back to 2 replicas", json.dumps(scales))
    page = hooks(target, "pagerduty")
    ev = page[0] if page else {}
    s.check(ev.get("routing_key") == PAGERDUTY_KEY and ev.get("dedup_key") == fp
            and ev.get("event_action") == "trigger"
            and ev.get("payload", {}).get("severity") == "critical"
            and "automatic remediation failed at verify (until); rolled back"
            in ev.get("payload", {}).get("summary", ""),
            "incident-response: the page names the alert, the failure and the rollback",
            json.dumps(ev)[:500])
    details = ev.get("payload", {}).get("custom_details", {})
    s.check("upstream timeout" in (details.get("diagnostics") or ""),
            "incident-response: the page carries the SSH diagnosis", json.dumps(details)[:300])
    note = hooks(target, "notes")
    s.check(len(note) == 1 and note[0]["status"] == "escalated",
            "incident-response: the note says it was escalated", json.dumps(note))


def ir_rejected(s, st):
    fp = "fa15e0000000a004"
    fault = {"name": "error_rate", "cured_by": ["scale"]}
    sc, r, target = ir_start_real(s, st, "ir-rejected", fault, fp)
    p = sc.cli("approve", r.id, "approve", "--as", "mallory")
    s.check(p.returncode == 2, "incident-response: only the named approvers may decide", p.stderr)
    sc.decide("reject", r, "approve", "oncall-ann", "not during the sale")
    run = r.wait()
    s.check(r.returncode == 1 and (run.get("error") or {}).get("kind") == "rejected",
            "incident-response: a rejection fails the run", str(run.get("error")))
    shape = [(m, p) for m, p, _ in calls(target)]
    s.check(shape == [("GET", "/metrics"), ("POST", "/hooks/notes")],
            "incident-response: after a rejection nothing is changed and nobody is paged",
            json.dumps(shape))
    note = hooks(target, "notes")
    s.check(note and note[0]["status"] == "rejected" and "not during the sale" in note[0]["note"],
            "incident-response: the note carries the operator's reason", json.dumps(note))


# ---- db-pool-exhaustion --------------------------------------------------------------

DB_SECRETS = {"LLM_API_KEY": LLM_KEY, "PAGERDUTY_ROUTING_KEY": PAGERDUTY_KEY}
DB_LOOKS = [("GET", "/health"), ("GET", "/logs"), ("GET", "/metrics")]


def db_run(s, st, name, fault, remediations, provider="openai"):
    target = st.target()
    if fault:
        target.fault(fault)
    st.llm.script([{"when": "connection pool is exhausted", "reply": json.dumps(
        {"cause": "connection_leak", "explanation": "connections are held across requests",
         "remediations": remediations})}])
    asked = len(st.llm.requests())
    sc = Scenario(s, name, DB_SECRETS)
    inputs = dict(st.llm_inputs(provider), service_url=target.url(),
                  pagerduty_url=target.url("/hooks/pagerduty"))
    r, run = sc.run("db-pool-exhaustion", inputs)
    got = calls(target)
    return sc, r, run, target, got, st.llm_asked(asked, "connection pool is exhausted")


def children(sc, run):
    return [c for c in sorted(sc.runs(), key=lambda c: c["created_at"])
            if c.get("parent") == run.get("id")]


def db_healthy(s, st):
    sc, r, run, target, got, asked = db_run(s, st, "db-healthy", None, ["restart"])
    s.check(r.returncode == 0 and run["outputs"]["detected"] is False
            and run["outputs"]["pool"] == {"active": 3, "max": 20, "waiting": 0},
            "db-pool-exhaustion: a healthy pool is read and left alone", json.dumps(run.get("outputs")))
    s.check(sorted((m, p) for m, p, _ in got) == DB_LOOKS and not asked and not children(sc, run),
            "db-pool-exhaustion: no pattern, no model, no action", json.dumps(got))


def db_first_fix_works(s, st):
    fault = {"name": "pool_exhausted", "cured_by": ["scale-pool"], "recover_after": 1}
    sc, r, run, target, got, asked = db_run(s, st, "db-first", fault, ["scale-pool", "restart"])
    out = run.get("outputs") or {}
    s.check(r.returncode == 0 and out.get("detected") is True and out.get("fixed_by") == "scale-pool"
            and out.get("tried") == 1 and out.get("plan") == ["scale-pool", "restart"],
            "db-pool-exhaustion: detected, diagnosed, fixed by the first remediation",
            r.stderr[-800:] + json.dumps(out))
    s.check(out.get("pool") == {"active": 20, "max": 20, "waiting": 37} and out.get("log_hits") == 3,
            "db-pool-exhaustion: the pattern comes from the metrics and the log (PCRE2)", json.dumps(out))
    prompt = json.dumps(asked[0]["body"]) if asked else ""
    s.check(len(asked) == 1 and "Connection is not available" in prompt and '\\"waiting\\":37' in prompt,
            "db-pool-exhaustion: the model sees the gauges and the matching log lines", prompt[:600])
    s.check(sorted(got[:3]) == [(m, p, None) for m, p in DB_LOOKS] and got[3:] == [
        ("POST", "/actions/scale-pool", {"size": 40}), ("GET", "/health", None), ("GET", "/health", None)],
        "db-pool-exhaustion: look first, then scale the pool, then poll until healthy", json.dumps(got))
    kids = children(sc, run)
    s.check([k["workflow"] for k in kids] == ["db-pool-remediate"] and kids[0]["status"] == "succeeded",
            "db-pool-exhaustion: the remediation ran as a child workflow", json.dumps(kids))
    s.check(target.state()["pool_max"] == 40, "db-pool-exhaustion: the pool was doubled")


def db_second_fix(s, st):
    """With Anthropic's wire format, to show the provider is an input."""
    fault = {"name": "pool_exhausted", "cured_by": ["scale-pool"]}
    sc, r, run, target, got, asked = db_run(s, st, "db-second", fault, ["restart"], "anthropic")
    s.check(len(asked) == 1 and asked[0]["path"] == "/v1/messages"
            and asked[0]["headers"].get("x-api-key") == LLM_KEY,
            "db-pool-exhaustion: the model is asked in Anthropic's format when told to",
            json.dumps(asked)[:300])
    out = run.get("outputs") or {}
    s.check(r.returncode == 0 and out.get("tried") == 2 and out.get("fixed_by") == "scale-pool"
            and out.get("plan") == ["restart", "scale-pool"],
            "db-pool-exhaustion: when the first remediation does not verify, the next is tried",
            r.stderr[-800:] + json.dumps(out))
    acts = [(p, b) for m, p, b in got if p.startswith("/actions/")]
    s.check(acts == [("/actions/restart", {}), ("/actions/scale-pool", {"size": 40})],
            "db-pool-exhaustion: restart first, then scale-pool", json.dumps(acts))
    shape = [p for m, p, b in got[3:]]
    s.check(shape == ["/actions/restart"] + ["/health"] * 5 + ["/actions/scale-pool", "/health"],
            "db-pool-exhaustion: five health checks fail the restart before the pool is scaled",
            json.dumps(shape))
    kids = children(sc, run)
    shown = [sc.cli("show", k["id"], "--json") for k in kids]
    outs = [json.loads(p.stdout).get("outputs") for p in shown if p.returncode == 0]
    s.check([(o["remediation"], o["verified"]) for o in outs] == [("restart", False), ("scale-pool", True)],
            "db-pool-exhaustion: one child per remediation, the first unverified", json.dumps(outs))
    s.check(not hooks(target, "pagerduty"), "db-pool-exhaustion: nobody is paged when the second works")


def db_nothing_works(s, st):
    fault = {"name": "pool_exhausted", "cured_by": ["a-new-release"]}
    sc, r, run, target, got, asked = db_run(s, st, "db-none", fault, ["restart", "scale-pool"])
    err = run.get("error") or {}
    s.check(r.returncode == 1 and err.get("step") == "fix" and err.get("kind") == "until",
            "db-pool-exhaustion: when no remediation verifies the run fails", json.dumps(err))
    acts = [p for m, p, b in got if p.startswith("/actions/")]
    page = hooks(target, "pagerduty")
    summary = page[0].get("payload", {}).get("summary", "") if page else ""
    s.check(acts == ["/actions/restart", "/actions/scale-pool"] and len(page) == 1
            and got[-1][1] == "/hooks/pagerduty" and "not fixed by restart, scale-pool" in summary,
            "db-pool-exhaustion: both tried, then the on-call engineer is paged", json.dumps(page)[:400])


# ---- approval-runbook ------------------------------------------------------------------

GATES = ["approve_drain", "approve_resize", "approve_restart"]


def ap_start(s, st, name):
    target = st.target()
    sc = Scenario(s, name, {})
    run = sc.start("approval-runbook", {
        "service_url": target.url(), "pool_size": 50, "approvers": ["op-ann", "op-bo"],
        "chat_url": target.url("/hooks/chat"), "ticket": "CHG0042"})
    return sc, run, target


def ap_gate(s, st, run, target, gate, done):
    """Wait for `gate` and its announcement; check that only `done` actions
    happened before it."""
    item = run.gate(gate)
    wait_for(lambda: len(hooks(target, "chat")) == GATES.index(gate) + 1, "the announcement of " + gate)
    chat = hooks(target, "chat")[-1]
    s.check(chat.get("step") == gate and "cairn approve %s %s --as NAME" % (run.id, gate) in chat["text"],
            "approval-runbook: %s is announced with the command to approve it" % gate, json.dumps(chat))
    acts = [p for m, p, b in calls(target) if p.startswith("/actions/")]
    s.check(acts == done, "approval-runbook: before %s only %s happened" % (gate, done or "nothing"),
            json.dumps(acts))
    return item


def ap_all_approved(s, st):
    sc, r, target = ap_start(s, st, "ap-ok")
    item = ap_gate(s, st, r, target, "approve_drain", [])
    s.check(item["prompt"] == "CHG0042 Take checkout out of the load balancer?",
            "approval-runbook: the prompt quotes the ticket", item["prompt"])
    sc.decide("approve", r, "approve_drain", "op-ann")
    item = ap_gate(s, st, r, target, "approve_resize", ["/actions/drain"])
    s.check("from 20 to 50" in item["prompt"], "approval-runbook: the resize prompt names both sizes",
            item["prompt"])
    sc.decide("approve", r, "approve_resize", "op-bo", "pool is too small for the sale")
    ap_gate(s, st, r, target, "approve_restart", ["/actions/drain", "/actions/scale-pool"])
    sc.decide("approve", r, "approve_restart", "op-ann")
    run = r.wait()
    s.check(r.returncode == 0 and run.get("status") == "succeeded", "approval-runbook: all approved, all done",
            r.stderr[-800:])
    got = [(p, b) for m, p, b in calls(target) if not p.startswith("/hooks/")]
    s.check(got == [("/metrics", None), ("/actions/drain", {}), ("/actions/scale-pool", {"size": 50}),
                    ("/actions/restart", {}), ("/actions/undrain", {}), ("/health", None)],
            "approval-runbook: each change in order, then back in the balancer and healthy", json.dumps(got))
    state = target.state()
    s.check(state["pool_max"] == 50 and not state["drained"] and state["restarts"] == 1,
            "approval-runbook: the service ends resized, restarted and serving", json.dumps(state)[:300])
    out = run.get("outputs") or {}
    s.check(out.get("pool_before") == 20 and out.get("pool_after") == 50 and out.get("decisions") == [
        {"by": ["op-ann"], "comment": None}, {"by": ["op-bo"], "comment": "pool is too small for the sale"},
        {"by": ["op-ann"], "comment": None}], "approval-runbook: who decided what is in the outputs",
        json.dumps(out))


def ap_rejected(s, st):
    sc, r, target = ap_start(s, st, "ap-rejected")
    ap_gate(s, st, r, target, "approve_drain", [])
    sc.decide("approve", r, "approve_drain", "op-ann")
    ap_gate(s, st, r, target, "approve_resize", ["/actions/drain"])
    sc.decide("approve", r, "approve_resize", "op-ann")
    ap_gate(s, st, r, target, "approve_restart", ["/actions/drain", "/actions/scale-pool"])
    sc.decide("reject", r, "approve_restart", "op-bo", "not before the backup")
    run = r.wait()
    err = run.get("error") or {}
    s.check(r.returncode == 1 and err.get("kind") == "rejected" and err.get("step") == "approve_restart"
            and "not before the backup" in err.get("message", ""),
            "approval-runbook: a rejection fails the run with the operator's reason", json.dumps(err))
    acts = [(p, b) for m, p, b in calls(target) if p.startswith("/actions/")]
    s.check(acts == [("/actions/drain", {}), ("/actions/scale-pool", {"size": 50}),
                     ("/actions/scale-pool", {"size": 20}), ("/actions/undrain", {})],
            "approval-runbook: the rejection rolls back, newest first, and restarts nothing",
            json.dumps(acts))
    state = target.state()
    s.check(state["pool_max"] == 20 and not state["drained"] and state["restarts"] == 0,
            "approval-runbook: the service is as it was", json.dumps(state)[:300])


def ap_engine_killed(s, st):
    """kill -9 while an approval waits; the decision is taken with no engine
    running; `cairn resume` carries on and no action happens twice."""
    sc, r, target = ap_start(s, st, "ap-killed")
    ap_gate(s, st, r, target, "approve_drain", [])
    sc.decide("approve", r, "approve_drain", "op-ann")
    ap_gate(s, st, r, target, "approve_resize", ["/actions/drain"])
    r.proc.send_signal(signal.SIGKILL)
    r.proc.communicate(timeout=30)
    sc.decide("approve", r, "approve_resize", "op-bo")
    resumed = sc.resume()
    resumed.id = r.id
    ap_gate(s, st, resumed, target, "approve_restart", ["/actions/drain", "/actions/scale-pool"])
    sc.decide("approve", resumed, "approve_restart", "op-ann")
    resumed.wait()
    shown = json.loads(sc.cli("show", r.id, "--json").stdout or "{}")
    s.check(resumed.returncode == 0 and shown.get("status") == "succeeded",
            "approval-runbook: killed while waiting, resumed, finished", resumed.stderr[-800:])
    acts = [p for m, p, b in calls(target) if p.startswith("/actions/")]
    s.check(acts == ["/actions/drain", "/actions/scale-pool", "/actions/restart", "/actions/undrain"],
            "approval-runbook: after the crash no action ran twice", json.dumps(acts))

def ap_rejected_first(s, st):
    sc, r, target = ap_start(s, st, "ap-rejected-first")
    ap_gate(s, st, r, target, "approve_drain", [])
    p = sc.cli("approve", r.id, "approve_drain", "--as", "mallory")
    s.check(p.returncode == 2, "approval-runbook: only the named approvers may decide", p.stderr)
    sc.decide("reject", r, "approve_drain", "op-bo")
    run = r.wait()
    s.check(r.returncode == 1 and [p for m, p, b in calls(target)] == ["/metrics", "/hooks/chat"],
            "approval-runbook: rejected at the first gate, nothing is touched",
            json.dumps(calls(target)) + str(run.get("error")))


# ---- onboarding ---------------------------------------------------------------------------

OB_TOKEN = "prov-token-4d8e1a6c"
OB_SECRETS = {"HR_DB_PASSWORD": "cairn-pw", "PROVISION_TOKEN": OB_TOKEN}
SYSTEMS = ["directory", "github", "slack"]


def ob_setup(st):
    pg = st.pg()
    if not pg.psql("SELECT to_regclass('employees') IS NOT NULL")[0][0] == "t":
        pg.psql("""
            CREATE TABLE employees (
              id serial PRIMARY KEY, employee_id text UNIQUE NOT NULL, first_name text NOT NULL,
              last_name text NOT NULL, department text, title text, manager_email text NOT NULL,
              start_date date, email text UNIQUE);
            GRANT SELECT, INSERT, UPDATE, DELETE ON employees TO cairn;
            GRANT USAGE ON SEQUENCE employees_id_seq TO cairn;
            INSERT INTO employees (employee_id, first_name, last_name, manager_email, email)
              VALUES ('E0001', 'Ann', 'Lee', 'cto@example.com', 'ann.lee@example.com');""")
    return pg


def ob_run(s, st, name, hire, fault=None):
    pg = ob_setup(st)
    target = st.target()
    if fault:
        target.fault(fault)
    mails = len(st.smtp.messages())
    sc = Scenario(s, name, OB_SECRETS)
    r, run = sc.run("onboarding", {
        "hire": hire, "hr_dsn": pg.dsn(user="cairn"), "domain": "example.com",
        "provision_url": target.url("/provision"), "smtp_url": st.smtp.url,
        "mail_from": "IT <it@example.com>", "helpdesk_email": "helpdesk@example.com"})
    return sc, pg, target, r, run, st.smtp.messages()[mails:]


def hire(employee_id, first, last):
    return {"employee_id": employee_id, "first_name": first, "last_name": last,
            "department": "Payments", "title": "SRE", "manager_email": "mgr.kim@example.com",
            "start_date": "2027-01-04"}


def ob_happy(s, st):
    sc, pg, target, r, run, mails = ob_run(s, st, "ob-ok", hire("E0102", "Ann", "Lee"))
    s.check(r.returncode == 0 and run.get("status") == "succeeded", "onboarding: a new hire is onboarded",
            r.stderr[-1500:] + str(run.get("error")))
    rows = pg.psql("SELECT id, first_name, last_name, department, start_date, email FROM employees "
                   "WHERE employee_id = 'E0102'")
    s.check(rows == [["2", "Ann", "Lee", "Payments", "2027-01-04", "ann.lee.2@example.com"]],
            "onboarding: the employee is in the database, with a free address (ann.lee was taken)",
            str(rows))
    login = "ann.lee.2"
    accounts = target.state()["accounts"]
    s.check({k: list(v) for k, v in accounts.items()} == {k: [login] for k in SYSTEMS},
            "onboarding: one account in each system", json.dumps(accounts))
    posts = [q for q in target.requests() if q["method"] == "POST"]
    s.check(len(posts) == 3 and all(p["headers"].get("authorization") == "Bearer " + OB_TOKEN
                                    and json.loads(p["body"]) == {
                                        "login": login, "email": login + "@example.com", "name": "Ann Lee",
                                        "department": "Payments", "manager": "mgr.kim@example.com"}
                                    for p in posts),
            "onboarding: each system got the account, with the token", json.dumps(posts)[:600])
    ev = sc.first_events(run["id"])
    starts = [ev.get(("step_started", k)) for k in SYSTEMS]
    ends = [ev.get(("step_succeeded", k)) for k in SYSTEMS]
    s.check(None not in starts + ends and max(starts) < min(ends),
            "onboarding: the three accounts are opened in parallel", "starts %s ends %s" % (starts, ends))
    s.check(len(mails) == 1 and mails[0]["rcpt_to"] == ["mgr.kim@example.com"]
            and "Address: ann.lee.2@example.com" in mails[0]["data"]
            and "GitHub account: github-1" in mails[0]["data"]
            and "Ann Lee starts on 2027-01-04" in mails[0]["data"],
            "onboarding: the manager gets the address and the accounts", json.dumps(mails)[:600])
    out = run.get("outputs") or {}
    s.check(out.get("email") == "ann.lee.2@example.com"
            and out.get("accounts") == {k: k + "-1" for k in SYSTEMS},
            "onboarding: the outputs name the address and the accounts", json.dumps(out))


def ob_provisioning_fails(s, st):
    fault = {"fail_systems": {"slack": 503}}
    sc, pg, target, r, run, mails = ob_run(s, st, "ob-fail", hire("E0103", "Bo", "Park"), fault)
    err = run.get("error") or {}
    s.check(r.returncode == 1 and err.get("step") == "slack" and err.get("kind") == "status",
            "onboarding: a system that refuses fails the run", json.dumps(err))
    got = [(m, p) for m, p, _ in calls(target)]
    for system in ("directory", "github"):
        opened = ("POST", "/provision/%s/users" % system)
        closed = ("DELETE", "/provision/%s/users/bo.park" % system)
        s.check(opened in got and closed in got and got.index(opened) < got.index(closed),
                "onboarding: the %s account opened is closed again" % system, json.dumps(got))
    s.check(("POST", "/provision/slack/users") in got and not any(
        m == "DELETE" and "slack" in p for m, p in got),
        "onboarding: the system that failed is not asked to undo anything", json.dumps(got))
    accounts = target.state()["accounts"]
    s.check(all(not v for v in accounts.values()), "onboarding: no account is left open",
            json.dumps(accounts))
    rows = pg.psql("SELECT count(*) FROM employees WHERE employee_id = 'E0103'")
    s.check(rows == [["0"]], "onboarding: the employee row is deleted", str(rows))
    s.check(len(mails) == 1 and mails[0]["rcpt_to"] == ["helpdesk@example.com"]
            and "failed at slack" in mails[0]["data"],
            "onboarding: the help desk is told, the manager is not", json.dumps(mails)[:500])


# ---- servicenow-sre ------------------------------------------------------------------------

SN_TOKEN = "sn-oauth-9b3e5d7f1a"
SN_SECRETS = {"SERVICENOW_TOKEN": SN_TOKEN, "LLM_API_KEY": LLM_KEY}
SN_SYS_ID = "9d385017c611228701d22104cc95c371"
SN_HYPOTHESES = [
    {"check": "error_rate", "cause": "the payment provider times out", "confidence": 0.35},
    {"check": "pool_exhausted", "cause": "connections leak under load", "confidence": 0.8},
    {"check": "disk_full", "cause": "logs filled the disk", "confidence": 0.1}]


def sn_run(s, st, name, fault):
    target = st.target(token=SN_TOKEN)
    target.fault(fault)
    target.incident({"sys_id": SN_SYS_ID, "number": "INC0010042", "state": "2", "urgency": "1",
                     "short_description": "Checkout times out for many customers",
                     "description": "Orders fail with 'could not get a database connection'",
                     "cmdb_ci": "checkout"})
    st.llm.script([
        {"when": "You analyse ServiceNow incidents", "reply": json.dumps(
            {"summary": "checkout cannot reach its database", "symptom": "orders time out",
             "impact": "high"})},
        {"when": "Propose hypotheses", "reply": json.dumps({"hypotheses": SN_HYPOTHESES})}])
    asked = len(st.llm.requests())
    sc = Scenario(s, name, SN_SECRETS)
    inputs = dict(st.ssh_inputs(), **st.llm_inputs(), instance_url=target.url(), sys_id=SN_SYS_ID,
                  service_url=target.url(), log_path=target.log_file, min_confidence=0.2)
    r, run = sc.run("servicenow-sre", inputs)
    return sc, target, r, run, st.llm.requests()[asked:]


def sn_common(s, target, asked):
    """What both branches do: read the ticket, ask the model twice, check two hypotheses."""
    reqs = target.requests()
    table = [q for q in reqs if q["path"].startswith("/api/now/table/incident/")]
    s.check(table and all(q["headers"].get("authorization") == "Bearer " + SN_TOKEN for q in table),
            "servicenow-sre: every Table API call carries the token", json.dumps(table)[:300])
    s.check(table and table[0]["method"] == "GET", "servicenow-sre: the ticket is read first")
    prompts = [json.dumps(a["body"]) for a in asked]
    s.check(len(asked) == 2 and "INC0010042" in prompts[0] and "could not get a database connection" in
            prompts[0] and "checkout cannot reach its database" in prompts[1],
            "servicenow-sre: analysis from the ticket, hypotheses from the analysis", str(prompts)[:600])


def sn_resolved(s, st):
    fault = {"name": "pool_exhausted", "cured_by": ["scale-pool"], "recover_after": 1}
    sc, target, r, run, asked = sn_run(s, st, "sn-ok", fault)
    s.check(r.returncode == 0 and run.get("status") == "succeeded", "servicenow-sre: the incident is worked",
            r.stderr[-1500:] + str(run.get("error")))
    sn_common(s, target, asked)
    out = run.get("outputs") or {}
    hyps = {h["check"]: h for h in out.get("hypotheses") or []}
    s.check(sorted(hyps) == ["disk_full", "error_rate", "pool_exhausted"]
            and hyps["pool_exhausted"]["confidence"] == 0.8
            and hyps["pool_exhausted"]["verdict"] == "confirmed"
            and hyps["error_rate"]["verdict"] == "ruled_out"
            and hyps["disk_full"]["verdict"] == "not_checked",
            "servicenow-sre: every hypothesis is kept, with its confidence and verdict",
            json.dumps(out.get("hypotheses"))[:800])
    log = target.log_file
    want_cmds = ["grep -c -i -E connection\\ is\\ not\\ available\\|pool\\ exhausted " + log,
                 "grep -c -E upstream\\ timeout\\|answered\\ 5\\[0-9\\]\\[0-9\\] " + log]
    s.check(out.get("commands") == want_cmds and hyps["pool_exhausted"]["commands"] == want_cmds[:1],
            "servicenow-sre: every command run over SSH is kept", json.dumps(out.get("commands")))
    s.check(out.get("confirmed") == "pool_exhausted" and out.get("verified") is True,
            "servicenow-sre: the confirmed cause is remediated and verified", json.dumps(out)[:300])
    shape = [(m, p) for m, p, _ in calls(target)]
    s.check(shape == [("GET", "/api/now/table/incident/" + SN_SYS_ID), ("POST", "/actions/scale-pool"),
                      ("GET", "/health"), ("GET", "/health"),
                      ("PATCH", "/api/now/table/incident/" + SN_SYS_ID)],
            "servicenow-sre: read, remediate, verify, then write back, in that order", json.dumps(shape))
    inc = target.state()["incidents"][SN_SYS_ID]
    notes = inc["work_notes_history"]
    note = notes[0] if notes else ""
    s.check(inc["state"] == "6" and inc.get("close_code") == "Solved (Permanently)"
            and "connections leak under load" in inc.get("close_notes", ""),
            "servicenow-sre: the ticket is resolved", json.dumps(inc)[:400])
    s.check(len(notes) == 1 and "- pool_exhausted (confidence 0.8): connections leak under load -> confirmed"
            in note and "- error_rate (confidence 0.35)" in note and "-> not_checked" in note
            and "$ " + want_cmds[0] in note and "healthy after 2 health checks" in note
            and note == out.get("work_note"),
            "servicenow-sre: one work note with hypotheses, confidences, commands and the fix", note)


def sn_not_verified(s, st):
    fault = {"name": "pool_exhausted", "cured_by": ["restart"]}
    sc, target, r, run, asked = sn_run(s, st, "sn-unfixed", fault)
    err = run.get("error") or {}
    s.check(r.returncode == 1 and err.get("step") == "verify",
            "servicenow-sre: a fix that does not verify fails the run", json.dumps(err))
    sn_common(s, target, asked)
    shape = [(m, p) for m, p, _ in calls(target)]
    s.check(shape[-1] == ("PATCH", "/api/now/table/incident/" + SN_SYS_ID) and
            shape.count(("GET", "/health")) == 6,
            "servicenow-sre: after six failed health checks the ticket is written to", json.dumps(shape))
    inc = target.state()["incidents"][SN_SYS_ID]
    notes = inc["work_notes_history"]
    note = notes[0] if notes else ""
    s.check(inc["state"] == "2" and "close_code" not in inc,
            "servicenow-sre: the ticket stays open", json.dumps(inc)[:400])
    s.check(len(notes) == 1 and "stopped at verify" in note
            and "- pool_exhausted (confidence 0.8): connections leak under load" in note
            and "$ grep -c -i -E" in note and "stays open" in note,
            "servicenow-sre: the work note says where it stopped, with hypotheses and commands", note)


def ir_unanswered(s, st):
    fp = "fa15e0000000a005"
    fault = {"name": "error_rate", "cured_by": ["scale"]}
    sc, r, target = ir_start_real(s, st, "ir-unanswered", fault, fp, approval_timeout="2s")
    run = r.wait()
    err = run.get("error") or {}
    s.check(r.returncode == 1 and err.get("kind") == "rejected" and "time-out" in err.get("message", ""),
            "incident-response: an approval nobody answers stops the run", json.dumps(err))
    shape = [(m, p) for m, p, _ in calls(target)]
    s.check(shape == [("GET", "/metrics"), ("POST", "/hooks/pagerduty"), ("POST", "/hooks/notes")],
            "incident-response: nothing changed, and the on-call engineer is paged", json.dumps(shape))
    note = hooks(target, "notes")
    s.check(note and note[0]["status"] == "escalated", "incident-response: the note says escalated",
            json.dumps(note))


INCIDENT_RESPONSE = [ir_false_positive, ir_fixed, ir_verification_fails, ir_rejected, ir_unanswered]

CHILDREN = {"db-pool-exhaustion": ["db-pool-remediate"]}

RUNBOOKS = {
    "incident-response": INCIDENT_RESPONSE,
    "db-pool-exhaustion": [db_healthy, db_first_fix_works, db_second_fix, db_nothing_works],
    "approval-runbook": [ap_all_approved, ap_rejected, ap_rejected_first, ap_engine_killed],
    "onboarding": [ob_happy, ob_provisioning_fails],
    "servicenow-sre": [sn_resolved, sn_not_verified],
}


def main():
    names = sys.argv[1:] or list(RUNBOOKS)
    s = Suite("runbooks")
    check_cairn_check(s, names + [c for n in names for c in CHILDREN.get(n, ())])
    for name in names:
        check_documented(s, name, CHILDREN.get(name, ()))
    try:
        with Servers(s.path("servers")) as sv:
            st = Stand(s, sv)
            for name in names:
                for t in RUNBOOKS[name]:
                    try:
                        t(s, st)
                    except Exception as e:  # one broken scenario is a failure, not the end
                        s.check(False, t.__name__, repr(e))
            check_journals(s)
    except Exception as e:  # servers that would not start, or not stop
        s.check(False, "servers", repr(e))
    s.finish()


if __name__ == "__main__":
    main()
