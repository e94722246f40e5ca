"""cairn replay end to end: real runs (a wait, retries, `until`, foreach, a
child workflow, approvals, a rollback) replay consistent; an edited runbook
replayed with --definition shows the first event it would have decided
differently; a journal edited behind the engine's back is caught at the
edited event; a run cut short by kill -9 is judged as far as it goes."""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, Suite, cairn, cairn_json, journal_sql, wait_for, write  # noqa: E402

OPS = """cairn: 1
name: ops
steps:
  - id: prep
    uses: set
    with: { hosts: [alpha, bravo] }
    compensate: { run: echo undo prep >> %(dir)s/log }
  - id: nap
    needs: [prep]
    uses: wait
    with: { duration: 20ms }
  - id: poll
    needs: [nap]
    run: n=$(cat %(dir)s/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > %(dir)s/count; echo $n
    retry: { max_attempts: 5, delay: 5ms, until: "${{ .output.stdout | test(\\"3\\") }}" }
    compensate: { run: echo undo poll >> %(dir)s/log }
  - id: each
    needs: [poll]
    foreach: ${{ .steps.prep.output.hosts }}
    run: echo ${{ .item }} >> %(dir)s/hosts
  - id: sub
    needs: [each]
    uses: workflow
    with: { name: sub, inputs: { n: "${{ .steps.poll.attempts }}" } }
  - id: flaky
    needs: [sub]
    uses: fail
    with: { kind: timeout, message: slow }
    retry: { max_attempts: 2, delay: 10ms, backoff: exponential, on: "^timeout" }
"""

SUB = """cairn: 1
name: sub
inputs:
  n: { type: integer }
  unit: { type: string, default: tries }
steps:
  - id: say
    uses: set
    with: { said: "${{ .inputs.n }} ${{ .inputs.unit }}" }
outputs:
  said: ${{ .steps.say.output.said }}
"""

GATE = """cairn: 1
name: gate
steps:
  - id: first
    uses: set
    with: { v: 1 }
    compensate: { uses: set, with: { undo: 1 } }
  - id: ask
    needs: [first]
    uses: approval
    with: { prompt: "Go on?", approvers: [alice, bob], quorum: 2 }
  - id: act
    needs: [ask]
    uses: set
    with: { by: "${{ .steps.ask.output.by }}" }
"""


def listed(what, db):
    """cairn WHAT --json as a list; [] while the journal is not there yet."""
    p = cairn(what, "--json", db=db)
    return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else []


def events(db, run_id):
    return cairn_json("journal", run_id, db=db)[0]


def seq_of(evs, type_, step):
    return next(e["seq"] for e in evs if e["type"] == type_ and e["step"] == step)


def run_ops(s, name):
    """A run of OPS in folder name (it fails in `flaky` and rolls back); its
    journal, its id and the workflow file."""
    d = s.path(name)
    os.makedirs(d, exist_ok=True)
    wf = write(s, name + "/ops.yaml", OPS % {"dir": d})
    write(s, name + "/sub.yaml", SUB)
    db = s.path(name + ".db")
    p = cairn("run", wf, db=db)
    s.check(p.returncode == 1, "the ops run fails in flaky and rolls back", p.stdout[-400:] + p.stderr)
    run_id = cairn_json("runs", db=db)[0][-1]["id"]
    return db, run_id, wf


def test_real_runs_replay_consistent(s):
    db, run_id, _ = run_ops(s, "real")
    evs = events(db, run_id)
    kinds = {e["type"] for e in evs}
    s.check({"step_waiting", "step_retrying", "step_expanded", "child_started",
             "run_compensating"} <= kinds,
            "the run waited, retried, expanded a foreach, started a child and rolled back", str(kinds))
    p = cairn("replay", "--json", db=db)
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    s.check(p.returncode == 0 and len(lines) == 2, "both runs (parent and child) replay", p.stdout + p.stderr)
    parent = next(l for l in lines if l["run"] == run_id)
    s.check(parent["verdict"] == "consistent" and parent["status"] == "failed" and
            parent["events"] == len(evs), "the parent is consistent through its last event", str(parent))
    s.check(parent["decisions"] >= 20, "and its decisions were re-taken", str(parent))
    p = cairn("replay", run_id, db=db)
    s.check(p.returncode == 0 and p.stdout.startswith(run_id + " consistent: %d events" % len(evs)),
            "the text says consistent", p.stdout)


def test_approvals_replay_consistent(s):
    wf = write(s, "gate.yaml", GATE)
    db = s.path("gate.db")
    ids = []
    for decide in (["approve", "alice"], ["reject", "bob"]):
        proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        item = wait_for(lambda: [a for a in listed("approvals", db) if a["run"] not in ids],
                        "the approval to open")[0]
        ids.append(item["run"])
        cairn(decide[0], item["run"], "ask", "--as", decide[1], db=db)
        if decide[0] == "approve":
            cairn("approve", item["run"], "ask", "--as", "bob", db=db)
        proc.wait(timeout=60)
    p = cairn("replay", "--json", *ids, db=db)
    got = [json.loads(l) for l in p.stdout.splitlines()]
    s.check(p.returncode == 0 and [g["status"] for g in got] == ["succeeded", "failed"],
            "an approved run and a rejected one (rolled back)", p.stdout + p.stderr)
    s.check(all(g["verdict"] == "consistent" for g in got), "both replay consistent", p.stdout)


def test_edited_runbook_shows_first_difference(s):
    db, run_id, wf = run_ops(s, "edited")
    evs = events(db, run_id)
    with open(wf) as f:
        src = f.read()
    edited = write(s, "edited/edited.yaml", src.replace("max_attempts: 2, delay: 10ms",
                                                     "max_attempts: 2, delay: 1s"))
    p = cairn("replay", run_id, "--definition", edited, db=db)
    at = seq_of(evs, "step_retrying", "flaky")
    s.check(p.returncode == 1, "the edited runbook diverges: exit 1", p.stdout + p.stderr)
    s.check(("%s diverges at event %d (step_retrying, step flaky, attempt 1): backoff" % (run_id, at))
            in p.stdout, "at flaky's retry, the back-off", p.stdout)
    s.check("journal: flaky: retry after" in p.stdout and "replay:  back-off of 1000 ms" in p.stdout,
            "with what the journal says and what the edit decides", p.stdout)
    edited = write(s, "edited/edited2.yaml", src.replace("echo ${{ .item }}", "echo host ${{ .item }}"))
    p = cairn("replay", run_id, "--definition", edited, "--json", db=db)
    d = json.loads(p.stdout)["divergence"] if p.returncode == 1 else {}
    s.check(d.get("seq") == seq_of(evs, "step_started", "each") and d.get("index") == 0 and
            d.get("decision") == "input", "a changed command shows at the first item's input",
            p.stdout + p.stderr)
    edited = write(s, "edited/edited3.yaml", src.replace("id: each", "id: every")
                   .replace("needs: [each]", "needs: [every]"))
    p = cairn("replay", run_id, "--definition", edited, db=db)
    s.check(p.returncode == 1 and ("diverges at event %d (step_expanded, step each, attempt 0): journal"
                                   % seq_of(evs, "step_expanded", "each")) in p.stdout and
            "replay:  this definition has no step each" in p.stdout,
            "a renamed step shows where the journal names the old one", p.stdout + p.stderr)
    p = cairn("replay", run_id, "--definition", wf, db=db)
    s.check(p.returncode == 0 and "consistent" in p.stdout, "the same file replays consistent",
            p.stdout + p.stderr)


def test_forked_run_replays_consistent(s):
    wf = write(s, "chain.yaml", """cairn: 1
name: chain
steps:
  - id: a
    uses: set
    with: { v: 7 }
  - id: b
    needs: [a]
    uses: set
    with: { w: "${{ .steps.a.output.v + 1 }}" }
  - id: c
    needs: [b]
    uses: set
    with: { sum: "${{ .steps.a.output.v + .steps.b.output.w }}" }
""")
    db = s.path("chain.db")
    run, p = cairn_json("run", wf, db=db)
    fork, p = cairn_json("fork", run["id"], "--from", "b", db=db)
    evs = events(db, fork["id"])
    carried = [e["step"] for e in evs if e["type"] == "step_carried"]
    s.check(p.returncode == 0 and carried == ["a"], "the fork carries a and runs b and c again",
            "%s %s" % (carried, p.stderr[-300:]))
    got = cairn("replay", fork["id"], db=db)
    s.check(got.returncode == 0 and got.stdout.startswith(fork["id"] + " consistent"),
            "the forked run replays consistent, c's input read from a's carried output",
            got.stdout + got.stderr)
    with open(wf) as f:
        edited = write(s, "chain2.yaml", f.read().replace("v + 1", "v + 2"))
    got = cairn("replay", fork["id"], "--definition", edited, db=db)
    s.check(got.returncode == 1 and ("diverges at event %d (step_started, step b, attempt 1): input"
                                     % seq_of(evs, "step_started", "b")) in got.stdout,
            "an edit to b shows at the fork's first start of b", got.stdout + got.stderr)


def test_edited_journal_caught_at_its_event(s):
    db, run_id, _ = run_ops(s, "tampered")
    s.no_replay(db)   # edited here, behind the engine's back
    evs = events(db, run_id)
    comp = [e for e in evs if e["type"] == "step_started" and e["step"].endswith("#compensate")]
    s.check([e["step"] for e in comp] == ["poll#compensate", "prep#compensate"],
            "the rollback undid poll, then prep (latest completion first)", str(comp))
    a, b = comp[0]["seq"], comp[1]["seq"]
    journal_sql(db, "UPDATE events SET step = CASE step WHEN 'poll#compensate' THEN"
                " 'prep#compensate' ELSE 'poll#compensate' END WHERE run_id = '%s'"
                " AND seq IN (%d, %d, %d, %d)" % (run_id, a, a + 1, b, b + 1))
    p = cairn("replay", run_id, db=db)
    s.check(p.returncode == 1 and ("diverges at event %d (step_started, step prep#compensate" % a)
            in p.stdout and "rollback" in p.stdout and "poll#compensate is next" in p.stdout,
            "a rollback in the wrong order is caught where it began", p.stdout + p.stderr)


def test_run_cut_short_is_judged_so_far(s):
    wf = write(s, "slow.yaml", """cairn: 1
name: slow
steps:
  - id: a
    uses: set
    with: { v: 1 }
  - id: b
    needs: [a]
    run: sleep 60
""")
    db = s.path("slow.db")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    run_id = wait_for(lambda: [r["id"] for r in listed("runs", db)
                               if any(e["type"] == "step_spawned" for e in events(db, r["id"]))],
                      "b to start its process")[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    spawned = next(e for e in events(db, run_id) if e["type"] == "step_spawned")
    os.killpg(spawned["data"]["pgid"], signal.SIGKILL)   # what the engine left running
    p = cairn("replay", run_id, db=db)
    s.check(p.returncode == 0 and "consistent so far: the run has not ended (running)" in p.stdout,
            "a crash mid-attempt is consistent so far, not a divergence", p.stdout + p.stderr)


def test_bad_usage(s):
    db, run_id, _ = run_ops(s, "usage")
    p = cairn("replay", "nosuchrun", db=db)
    s.check(p.returncode == 2 and "nosuchrun" in p.stderr, "an unknown run: exit 2", p.stderr)
    bad = write(s, "bad.yaml", "cairn: 1\nname: x\nsteps: [\n")
    p = cairn("replay", run_id, "--definition", bad, db=db)
    s.check(p.returncode == 2 and "bad.yaml" in p.stderr, "a definition that does not load: exit 2",
            p.stderr)
    p = cairn("replay", run_id, db=s.path("none.db"))
    s.check(p.returncode == 3, "no journal: exit 3", p.stderr)
    p = cairn("replay", "--frobnicate", db=db)
    s.check(p.returncode == 2 and "usage: cairn replay" in p.stderr, "an unknown option: usage", p.stderr)


if __name__ == "__main__":
    s = Suite("replay")
    s.run_all([test_real_runs_replay_consistent, test_approvals_replay_consistent,
               test_edited_runbook_shows_first_difference, test_forked_run_replays_consistent,
               test_edited_journal_caught_at_its_event,
               test_run_cut_short_is_judged_so_far, test_bad_usage])
    s.finish()
