"""Approval gates end to end: the run parks, people decide from other
processes (or with no engine running), approvers, quorum, self-approval,
time-outs with escalation, and on_crash: ask."""
import json
import os
import pwd
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, Suite, cairn, cairn_json, wait_for, write  # noqa: E402






ME = pwd.getpwuid(os.getuid()).pw_name   # who starts every run here


def start(wf, db, env=None):
    return subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env or os.environ)


def one_gate(s, name, env=None):
    """Start a run of one approval gate (anyone may decide); returns its
    journal, its engine and its id once the approval is open."""
    wf = write(s, name + ".yaml", """cairn: 1
name: %s
steps:
  - id: gate
    uses: approval
    with: { prompt: "Go?" }
""" % name)
    db = s.path(name + ".db")
    proc = start(wf, db, env)
    return db, proc, wait_for(lambda: pending(db), "the approval")[0]["run"]


def pending(db):
    p = cairn("approvals", "--json", db=db)
    return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else []


def events(db, run_id):
    return cairn_json("journal", run_id, db=db)[0]


def test_quorum_and_approvers(s):
    log = s.path("q.log")
    wf = write(s, "gate.yaml", """cairn: 1
name: gated
steps:
  - id: gate
    uses: approval
    with: { prompt: "Restart nginx?", approvers: [alice, bob], quorum: 2 }
  - id: act
    run: echo acted >> %s
""" % log)
    db = s.path("q.db")
    proc = start(wf, db)
    items = wait_for(lambda: pending(db), "the approval to open")
    run_id = items[0]["run"]
    s.check(items[0]["step"] == "gate" and items[0]["prompt"] == "Restart nginx?",
            "approvals lists the pending gate")
    shown, _ = cairn_json("show", run_id, db=db)
    s.check(shown["status"] == "waiting", "the run is waiting", shown["status"])
    before = len(events(db, run_id))
    p = cairn("approve", run_id, "gate", "--as", "mallory", db=db)
    s.check(p.returncode == 2 and "may not decide" in p.stderr, "someone not on the list is refused",
            p.stderr)
    s.check(len(events(db, run_id)) == before, "and nothing is recorded")
    p = cairn("approve", run_id, "gate", "--as", "alice", "--comment", "ok", db=db)
    s.check(p.returncode == 0 and "taken" in p.stdout, "alice approves", p.stdout + p.stderr)
    p = cairn("approve", run_id, "gate", "--as", "alice", db=db)
    s.check(p.returncode == 2 and "already approved" in p.stderr, "one vote each", p.stderr)
    s.check(not os.path.exists(log), "one approval of a quorum of two starts nothing")
    p = cairn("approve", run_id, "gate", "--as", "bob", db=db)
    s.check(p.returncode == 0, "bob approves", p.stderr)
    proc.wait(timeout=30)
    shown, _ = cairn_json("show", run_id, db=db)
    s.check(proc.returncode == 0 and shown["status"] == "succeeded", "the run goes on and succeeds")
    out = shown["steps"]["gate"]["output"]
    s.check(out["decision"] == "approved" and out["by"] == ["alice", "bob"], "output names the approvers",
            str(out))
    said = [(d["by"], d["comment"]) for d in out.get("decisions", [])]
    s.check(said == [("alice", "ok"), ("bob", None)], "output carries each approver's comment",
            str(out))
    p = cairn("reject", run_id, "gate", "--as", "bob", db=db)
    s.check(p.returncode == 2 and "already ended" in p.stderr, "deciding a finished run is refused",
            p.stderr)
    p = cairn("approve", run_id, "nope", "--as", "bob", db=db)
    s.check(p.returncode == 2, "deciding a step that does not exist is refused")


def test_reject_and_self_approval(s):
    wf = write(s, "self.yaml", """cairn: 1
name: selfish
steps:
  - id: gate
    uses: approval
    with: { prompt: "Go?", approvers: [%s, alice] }
  - id: act
    run: "true"
""" % ME)
    db = s.path("self.db")
    # $USER says alice; the run is started by the process's real user all the same
    proc = start(wf, db, env=dict(os.environ, USER="alice"))
    run_id = wait_for(lambda: pending(db), "the approval")[0]["run"]
    p = cairn("approve", run_id, "gate", "--as", ME, db=db)
    s.check(p.returncode == 2 and "started this run" in p.stderr,
            "no self-approval by default, whatever $USER says", p.stderr)
    p = cairn("reject", run_id, "gate", "--as", ME, "--comment", "not today", db=db)
    s.check(p.returncode == 0, "rejecting is allowed", p.stderr)
    proc.wait(timeout=30)
    shown, _ = cairn_json("show", run_id, db=db)
    err = shown["steps"]["gate"]["error"]
    s.check(shown["status"] == "failed" and err["kind"] == "rejected" and "not today" in err["message"],
            "a rejection fails the step with kind rejected", str(err))
    s.check(shown["steps"]["act"]["status"] == "skipped", "the step it guarded ends skipped",
            shown["steps"]["act"]["status"])


def test_decision_with_no_engine_running(s):
    db, proc, run_id = one_gate(s, "later")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = cairn("approve", run_id, "gate", "--as", "dave", db=db)
    s.check(p.returncode == 0 and "recorded" in p.stdout, "a decision with no engine is recorded",
            p.stdout + p.stderr)
    p = cairn("resume", db=db)
    shown, _ = cairn_json("show", run_id, db=db)
    s.check(shown["status"] == "succeeded", "the next resume picks it up", shown["status"])


def test_quorum_decided_with_no_engine_running(s):
    wf = write(s, "later2.yaml", """cairn: 1
name: later2
steps:
  - id: gate
    uses: approval
    with: { prompt: "Go?", approvers: [ann, bob, cy], quorum: 2 }
""")
    db = s.path("later2.db")
    proc = start(wf, db)
    run_id = wait_for(lambda: pending(db), "the approval")[0]["run"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = cairn("approve", run_id, "gate", "--as", "ann", "--comment", "looks fine", db=db)
    s.check(p.returncode == 0 and "recorded" in p.stdout, "ann's approval is recorded", p.stderr)
    p = cairn("approvals", db=db)
    s.check("1/2, 1 awaiting resume" in p.stdout, "approvals counts a decision awaiting resume",
            p.stdout)
    waiting = pending(db)[0].get("awaiting_resume", [])
    s.check([(d["by"], d["decision"]) for d in waiting] == [("ann", "approve")],
            "approvals --json lists it", str(waiting))
    p = cairn("approve", run_id, "gate", "--as", "ann", db=db)
    s.check(p.returncode == 2 and "already decided" in p.stderr,
            "a second approval by the same name is refused with no engine too", p.stdout + p.stderr)
    p = cairn("approve", run_id, "gate", "--as", "bob", "--comment", "ok by me", db=db)
    s.check(p.returncode == 0, "bob's approval is recorded", p.stderr)
    p = cairn("resume", db=db)
    shown, _ = cairn_json("show", run_id, db=db)
    out = shown["steps"]["gate"]["output"] or {}
    s.check(shown["status"] == "succeeded" and out.get("by") == ["ann", "bob"],
            "resume carries both out, once each", str(out))
    said = [(d["by"], d["comment"]) for d in out.get("decisions", [])]
    s.check(said == [("ann", "looks fine"), ("bob", "ok by me")] and out.get("comment") == "ok by me",
            "each decider's comment is in the output", str(out))


def test_timeout_escalates(s):
    wf = write(s, "esc.yaml", """cairn: 1
name: escalating
steps:
  - id: gate
    uses: approval
    with: { prompt: "Anyone?", approvers: [oncall], timeout: 1s, on_timeout: escalate,
            escalate_to: [boss] }
""")
    db = s.path("esc.db")
    proc = start(wf, db)
    run_id = wait_for(lambda: pending(db), "the approval")[0]["run"]
    wait_for(lambda: [a for a in pending(db) if a.get("approvers") == ["boss"]], "the escalation")
    p = cairn("approve", run_id, "gate", "--as", "oncall", db=db)
    s.check(p.returncode == 2, "after escalation the first approvers may not decide", p.stderr)
    p = cairn("approve", run_id, "gate", "--as", "boss", db=db)
    proc.wait(timeout=30)
    shown, _ = cairn_json("show", run_id, db=db)
    s.check(shown["status"] == "succeeded", "the escalated approver decides", shown["status"])
    types = [e["type"] for e in events(db, run_id)]
    s.check(types.count("approval_escalated") == 1, "escalated once, journaled", str(types))


def test_timeout_rejects_by_default(s):
    wf = write(s, "late.yaml", """cairn: 1
name: late
steps:
  - id: gate
    uses: approval
    with: { prompt: "Quick?", timeout: 200ms }
""")
    db = s.path("late.db")
    run, p = cairn_json("run", wf, db=db)
    s.check(run["status"] == "failed" and run["steps"]["gate"]["error"]["kind"] == "rejected",
            "an unanswered approval is rejected at its time-out", str(run["steps"]["gate"]))


def test_on_crash_ask(s):
    marker, log = s.path("ask.marker"), s.path("ask.log")
    wf = write(s, "ask.yaml", """cairn: 1
name: asking
steps:
  - id: risky
    on_crash: ask
    run: echo attempt $CAIRN_ATTEMPT >> %s; [ $CAIRN_ATTEMPT -gt 1 ] || { touch %s; sleep 60; }
""" % (log, marker))
    db = s.path("ask.db")
    proc = start(wf, db)
    wait_for(lambda: os.path.exists(marker), "the risky step")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resume = subprocess.Popen([CAIRN, "--db", db, "resume"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    items = wait_for(lambda: pending(db), "the crash question")
    s.check("run it again" in items[0]["prompt"], "on_crash: ask opens an approval", str(items[0]))
    s.check(open(log).read().count("attempt") == 1, "nothing ran again before the decision")
    p = cairn("approve", items[0]["run"], "risky", "--as", "oncall", db=db)
    resume.wait(timeout=30)
    shown, _ = cairn_json("show", items[0]["run"], db=db)
    s.check(shown["status"] == "succeeded" and shown["steps"]["risky"]["attempts"] == 2,
            "approving runs it again", str(shown["steps"]["risky"]))


def test_notify_when_the_approval_opens(s):
    import http.server
    import threading
    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wf = write(s, "notified.yaml", """cairn: 1
name: notified
steps:
  - id: gate
    uses: approval
    with:
      prompt: "Deploy?"
      notify: { channel: webhook, url: "http://127.0.0.1:%d/hook", json: { text: "approve ${{ .run.id }} ${{ .step.id }}" } }
""" % server.server_address[1])
        db = s.path("notified.db")
        proc = start(wf, db)
        run_id = wait_for(lambda: pending(db), "the approval")[0]["run"]
        wait_for(lambda: received, "the notification")
        s.check(received[0] == {"text": "approve %s gate" % run_id},
                "the approval's notify is sent, naming its step (.step)",
                str(received))
        wait_for(lambda: any(e["type"] == "approval_notified" for e in events(db, run_id)),
                 "the notification to be journaled")
        ev = [e for e in events(db, run_id) if e["type"] == "approval_notified"][0]
        s.check(ev["data"]["output"]["delivered"] is True, "its delivery is journaled", str(ev))
        cairn("approve", run_id, "gate", "--as", "dave", db=db)
        proc.wait(timeout=30)
        s.check(proc.returncode == 0, "the run then finishes")
    finally:
        server.shutdown()


def test_self_approval_without_USER(s):
    env = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME")}
    db, proc, run_id = one_gate(s, "nouser", env)
    p = cairn("approve", run_id, "gate", "--as", ME, db=db)
    s.check(p.returncode == 2 and "started this run" in p.stderr,
            "with $USER unset the starter is still known: no self-approval", p.stderr)
    p = cairn("cancel", run_id, db=db)
    proc.wait(timeout=30)


def main():
    s = Suite("approvals")
    for t in [test_quorum_and_approvers, test_reject_and_self_approval,
              test_decision_with_no_engine_running, test_quorum_decided_with_no_engine_running,
              test_timeout_escalates,
              test_timeout_rejects_by_default, test_on_crash_ask,
              test_notify_when_the_approval_opens, test_self_approval_without_USER]:
        try:
            t(s)
        except Exception as e:
            s.check(False, t.__name__, repr(e))
    s.finish()


if __name__ == "__main__":
    main()
