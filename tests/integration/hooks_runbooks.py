"""The seed runbooks started from their triggers: each of incident-response,
db-pool-exhaustion, servicenow-sre and onboarding is served by a `cairn
serve`, and the test posts the webhook its monitoring would send
(Alertmanager, ServiceNow, an HR system's generic event).  The run must
start with the inputs its trigger maps, and end with the side effects the
stand-ins record, as runbooks.py checks them for a run started by hand.

The workflows are served from a copy of workflows/ with the site's
settings (the model's address, the SSH key, the database...) as the
inputs' defaults, as an operator's copy would have them; the trigger
blocks are the files' own."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cairn_test import Suite, wait_for  # noqa: E402
from runbooks import (IR_REASON, IR_SECRETS, DB_SECRETS, OB_SECRETS, OB_TOKEN, SN_HYPOTHESES,  # noqa: E402
                      SN_SECRETS, SN_SYS_ID, SN_TOKEN, SYSTEMS, Stand, alertmanager_alert, hire,
                      ir_triage, ob_setup)
from runbooks_lib import WORKFLOWS, calls, hooks  # noqa: E402
from serve import Server  # noqa: E402
from servers import Servers  # noqa: E402

JSON = {"Content-Type": "application/json"}


def site_default(text, name, value):
    """text with input `name`'s default set to value (JSON, which YAML
    reads), in place of its default or of `required: true`."""
    v = json.dumps(value)
    one = re.compile(r"^(  %s: \{.*?)(default: (?:\"[^\"]*\"|\[[^\]]*\]|[^,}]+)|required: true)"
                     % re.escape(name), re.M)
    if one.search(text):
        return one.sub(lambda m: m.group(1) + "default: " + v, text, count=1)
    block = re.compile(r"^(  %s:\n(?:    .*\n)*?)    (?:default: .*|required: true)\n" % re.escape(name), re.M)
    out, n = block.subn(lambda m: m.group(1) + "    default: " + v + "\n", text, count=1)
    assert n == 1, "no input %s to give a default" % name
    return out


def site(s, name, defaults, also=()):
    """A folder with the runbook (and `also`) given the site's defaults."""
    d = s.path("site-" + name)
    os.makedirs(d, exist_ok=True)
    for wf in (name,) + tuple(also):
        with open(os.path.join(WORKFLOWS, wf + ".yaml")) as f:
            text = f.read()
        if wf == name:
            for k, v in defaults.items():
                text = site_default(text, k, v)
        with open(os.path.join(d, wf + ".yaml"), "w") as f:
            f.write(text)
    return d


def serve(s, name, d, secrets):
    return Server(s, name, d, env={"CAIRN_SECRET_" + k: v for k, v in secrets.items()})


def post(srv, source, body):
    return srv.request("POST", "/v1/hooks/" + source, json.dumps(body), JSON)


def created(srv, run_id):
    evs = srv.request("GET", "/v1/runs/%s/events?limit=1" % run_id)[2]["events"]
    return evs[0]["data"]


def ended(srv, run_id, timeout=90):
    def done():
        run = srv.request("GET", "/v1/runs/" + run_id)[2]
        return run if run.get("status") in ("succeeded", "failed", "cancelled") else None
    return wait_for(done, "run %s to end" % run_id, timeout)


def site_llm(st):
    return {"llm_provider": "openai", "llm_base_url": st.llm.base_url, "llm_model": "gpt-4o-mini"}


def site_ssh(st):
    return {"ssh_port": st.sshd.port, "ssh_user": st.sshd.user, "ssh_key_file": st.sshd.key_file,
            "known_hosts": st.sshd.known_hosts}


def started_run(s, what, st_code, answer):
    ok = st_code == 201 and len(answer.get("started", [])) == 1
    s.check(ok, "%s: the webhook starts one run: 201" % what, answer)
    return answer["started"][0]["run"] if ok else None


# ---- incident-response: an Alertmanager alert ------------------------------------------------

def ir_from_alert(s, st):
    fp = "a1e47000000000c1"
    target = st.target()
    target.fault({"name": "error_rate", "cured_by": ["scale"], "recover_after": 2})
    ir_triage(st, "real", IR_REASON, fp)
    d = site(s, "incident-response", dict(site_llm(st), **site_ssh(st),
             pagerduty_url=target.url("/hooks/pagerduty"), diag_dir=s.path("diag"),
             approvers=["oncall-ann", "oncall-bo"]))
    srv = serve(s, "ir-hook", d, IR_SECRETS)
    try:
        alert = alertmanager_alert(fp)
        alert["annotations"].update({"service_url": target.url(), "notes_url": target.url("/hooks/notes"),
                                     "log_path": target.log_file, "ssh_host": "127.0.0.1"})
        body = {"version": "4", "groupKey": "{}:{alertname=\"HighErrorRate\"}", "truncatedAlerts": 0,
                "status": "firing", "receiver": "cairn", "groupLabels": {"alertname": "HighErrorRate"},
                "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
                "commonAnnotations": {}, "externalURL": "http://alertmanager.example:9093",
                "alerts": [alert]}
        code, _, a = post(srv, "alertmanager", body)
        run_id = started_run(s, "incident-response", code, a)
        inputs = created(srv, run_id)["inputs"]
        s.check(inputs["alert"] == alert and inputs["service_url"] == target.url() and
                inputs["ssh_host"] == "127.0.0.1" and inputs["log_path"] == target.log_file and
                inputs["ssh_port"] == st.sshd.port,
                "incident-response: the run's inputs are the alert's, the rest the site's", inputs)
        code, _, again = post(srv, "alertmanager", body)
        s.check(code == 200 and [e["run"] for e in again["existed"]] == [run_id],
                "incident-response: the alert re-sent while the run lives starts nothing", again)
        gate = wait_for(lambda: [g for g in srv.request("GET", "/v1/approvals")[2]["approvals"]
                                 if g["run"] == run_id], "the approval to open", 60)
        s.check(gate[0]["step"] == "approve", "incident-response: the run waits for its approval", gate)
        code, _, b = srv.request("POST", "/v1/runs/%s/steps/approve/approval" % run_id,
                                 {"decision": "approve", "by": "oncall-ann"})
        s.check(code == 200, "incident-response: approved through the API", b)
        run = ended(srv, run_id)
        s.check(run["status"] == "succeeded", "incident-response: from the alert to a verified fix",
                run.get("error"))
        got = [(m, p) for m, p, _ in calls(target)]
        s.check(got == [("GET", "/metrics"), ("POST", "/actions/scale"), ("GET", "/health"),
                        ("GET", "/health"), ("GET", "/health"), ("POST", "/hooks/notes")] and
                target.state()["replicas"] == 4,
                "incident-response: scaled out, verified, the note posted", json.dumps(got))
        note = hooks(target, "notes")
        s.check(note and note[0]["fingerprint"] == fp and "approved by oncall-ann" in note[0]["note"],
                "incident-response: the note names the alert and who approved", json.dumps(note))
    finally:
        s.check(srv.stop() == 0, "incident-response: the server stops cleanly", srv.stderr())


# ---- db-pool-exhaustion: an Alertmanager alert ------------------------------------------------

def db_from_alert(s, st):
    target = st.target()
    target.fault({"name": "pool_exhausted", "cured_by": ["scale-pool"], "recover_after": 1})
    st.llm.script([{"when": "connection pool is exhausted", "reply": json.dumps(
        {"cause": "connection_leak", "explanation": "connections are held across requests",
         "remediations": ["scale-pool", "restart"]})}])
    d = site(s, "db-pool-exhaustion", dict(site_llm(st), pagerduty_url=target.url("/hooks/pagerduty")),
             also=("db-pool-remediate",))
    srv = serve(s, "db-hook", d, DB_SECRETS)
    try:
        alert = {"status": "firing", "labels": {"alertname": "DBPoolExhausted", "service": "orders",
                                                "severity": "warning", "instance": "orders-1:8080"},
                 "annotations": {"summary": "orders: every pool connection in use",
                                 "service_url": target.url()},
                 "startsAt": "2026-12-07T07:10:00Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "http://prometheus.example/graph", "fingerprint": "db9001000000a001"}
        code, _, a = post(srv, "alertmanager", {"version": "4", "status": "firing", "receiver": "cairn",
                                                "groupLabels": {}, "commonLabels": {},
                                                "alerts": [alert]})
        run_id = started_run(s, "db-pool-exhaustion", code, a)
        inputs = created(srv, run_id)["inputs"]
        s.check(inputs["service_url"] == target.url() and inputs["service"] == "orders" and
                inputs["llm_base_url"] == st.llm.base_url,
                "db-pool-exhaustion: the run's inputs come from the alert", inputs)
        run = ended(srv, run_id)
        out = run.get("outputs") or {}
        s.check(run["status"] == "succeeded" and out.get("detected") is True and
                out.get("fixed_by") == "scale-pool" and target.state()["pool_max"] == 40,
                "db-pool-exhaustion: detected, fixed by scaling the pool, verified", json.dumps(out))
        acts = [(p, b) for m, p, b in calls(target) if p.startswith("/actions/")]
        s.check(acts == [("/actions/scale-pool", {"size": 40})] and not hooks(target, "pagerduty"),
                "db-pool-exhaustion: one remediation, nobody paged", json.dumps(acts))
    finally:
        s.check(srv.stop() == 0, "db-pool-exhaustion: the server stops cleanly", srv.stderr())


# ---- servicenow-sre: a ServiceNow business rule's post ---------------------------------------------

def sn_from_incident(s, st):
    target = st.target(token=SN_TOKEN)
    target.fault({"name": "pool_exhausted", "cured_by": ["scale-pool"], "recover_after": 1})
    record = {"sys_id": SN_SYS_ID, "number": "INC0010042", "state": "2", "urgency": "1",
              "short_description": "Checkout times out for many customers",
              "description": "Orders fail with 'could not get a database connection'",
              "cmdb_ci": "checkout"}
    target.incident(record)
    st.llm.script([
        {"when": "You analyse ServiceNow incidents", "reply": json.dumps(
            {"summary": "checkout cannot reach its database", "symptom": "orders time out",
             "impact": "high"})},
        {"when": "Propose hypotheses", "reply": json.dumps({"hypotheses": SN_HYPOTHESES})}])
    d = site(s, "servicenow-sre", dict(site_llm(st), **site_ssh(st)))
    srv = serve(s, "sn-hook", d, SN_SECRETS)
    try:
        body = {"result": dict(record, priority="1 - Critical", u_instance_url=target.url() + "/",
                               u_service_url=target.url(), u_log_path=target.log_file,
                               u_host="127.0.0.1")}
        code, _, a = post(srv, "servicenow", body)
        run_id = started_run(s, "servicenow-sre", code, a)
        inputs = created(srv, run_id)["inputs"]
        s.check(inputs["sys_id"] == SN_SYS_ID and inputs["instance_url"] == target.url() and
                inputs["ssh_host"] == "127.0.0.1", "servicenow-sre: the run's inputs come from the record",
                inputs)
        run = ended(srv, run_id)
        out = run.get("outputs") or {}
        s.check(run["status"] == "succeeded" and out.get("confirmed") == "pool_exhausted" and
                out.get("verified") is True, "servicenow-sre: the incident is worked and verified",
                json.dumps(out)[:600])
        writes = [q for q in target.requests() if q["path"] == "/api/now/table/incident/" + SN_SYS_ID and
                  q["method"] in ("PATCH", "PUT")]
        s.check(writes and "pool_exhausted" in writes[-1]["body"],
                "servicenow-sre: the work note goes back to the ticket", json.dumps(writes)[:400])
    finally:
        s.check(srv.stop() == 0, "servicenow-sre: the server stops cleanly", srv.stderr())


# ---- onboarding: an HR system's generic event ------------------------------------------------------

def ob_from_hr(s, st):
    pg = ob_setup(st)
    target = st.target()
    mails = len(st.smtp.messages())
    d = site(s, "onboarding", {"hr_dsn": pg.dsn(user="cairn"), "domain": "example.com",
                               "provision_url": target.url("/provision"), "smtp_url": st.smtp.url})
    srv = serve(s, "ob-hook", d, OB_SECRETS)
    try:
        h = hire("E0201", "Cy", "Moss")
        code, _, a = post(srv, "generic", {"alertname": "employee.hired",
                                           "labels": {"employee_id": "E0201"}, "hire": h})
        run_id = started_run(s, "onboarding", code, a)
        inputs = created(srv, run_id)["inputs"]
        s.check(inputs["hire"] == h and inputs["domain"] == "example.com",
                "onboarding: the run's hire is the event's", inputs)
        run = ended(srv, run_id)
        s.check(run["status"] == "succeeded", "onboarding: the hire is onboarded", run.get("error"))
        rows = pg.psql("SELECT first_name, last_name, email FROM employees WHERE employee_id = 'E0201'")
        s.check(rows == [["Cy", "Moss", "cy.moss@example.com"]], "onboarding: the employee row", str(rows))
        accounts = target.state()["accounts"]
        s.check({k: list(v) for k, v in accounts.items()} == {k: ["cy.moss"] for k in SYSTEMS},
                "onboarding: one account in each system", json.dumps(accounts))
        posts = [q for q in target.requests() if q["method"] == "POST"]
        s.check(len(posts) == 3 and all(p["headers"].get("authorization") == "Bearer " + OB_TOKEN
                                        for p in posts), "onboarding: provisioned with the token")
        got = st.smtp.messages()[mails:]
        s.check(len(got) == 1 and got[0]["rcpt_to"] == ["mgr.kim@example.com"] and
                "Address: cy.moss@example.com" in got[0]["data"],
                "onboarding: the manager is told", json.dumps(got)[:400])
    finally:
        s.check(srv.stop() == 0, "onboarding: the server stops cleanly", srv.stderr())


def main():
    s = Suite("hooks_runbooks")
    only = sys.argv[1:]
    tests = [ir_from_alert, db_from_alert, sn_from_incident, ob_from_hr]
    try:
        with Servers(s.path("servers")) as sv:
            st = Stand(s, sv)
            for t in tests:
                if only and t.__name__ not in only:
                    continue
                try:
                    t(s, st)
                except Exception as e:  # one broken scenario is a failure, not the end
                    s.check(False, t.__name__, repr(e))
    except Exception as e:
        s.check(False, "servers", repr(e))
    s.finish()


if __name__ == "__main__":
    main()
