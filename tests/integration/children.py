"""Child workflows: `uses: workflow` starts a journaled child run linked to
its parent; the parent waits without a thread, takes the child's outputs,
fails when it fails, survives a crash in the middle, and cancelling the
parent cancels the child."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, Suite, cairn, cairn_json, wait_for, write  # noqa: E402




def setup(s, name, child_steps):
    d = s.path(name)
    os.makedirs(d)
    with open(os.path.join(d, "parent.yaml"), "w") as f:
        f.write("""cairn: 1
name: parent-%s
outputs:
  doubled: ${{ .steps.sub.output.doubled }}
steps:
  - id: sub
    uses: workflow
    with: { name: child-%s, inputs: { n: 21 } }
  - id: after
    uses: set
    with: { saw: "${{ .steps.sub.output.doubled }}" }
""" % (name, name))
    with open(os.path.join(d, "child.yaml"), "w") as f:
        f.write("""cairn: 1
name: child-%s
inputs:
  n: { type: integer, required: true }
outputs:
  doubled: ${{ .steps.double.output.v }}
steps:
%s
  - id: double
    uses: set
    with: { v: "${{ .inputs.n * 2 }}" }
""" % (name, child_steps))
    return os.path.join(d, "parent.yaml"), os.path.join(d, "child.yaml")


def runs_of(db):
    p = cairn("runs", "--json", db=db)
    return cairn_json("runs", db=db)[0] if p.returncode == 0 else []


def test_outputs_flow_to_the_parent(s):
    parent, _ = setup(s, "ok", "  - id: hello\n    run: echo hi")
    db = s.path("ok.db")
    run, p = cairn_json("run", parent, db=db)
    s.check(p.returncode == 0 and run["outputs"] == {"doubled": 42}, "the parent takes the child's outputs",
            str(run.get("outputs")) + p.stderr)
    runs = runs_of(db)
    child = [r for r in runs if r["workflow"] == "child-ok"]
    s.check(len(child) == 1 and child[0].get("parent") == run["id"] and child[0]["status"] == "succeeded",
            "the child run is journaled and linked to its parent", str(runs))
    s.check(run["steps"]["sub"].get("child") == child[0]["id"], "show names the child")


def test_a_failed_child_fails_the_step(s):
    parent, _ = setup(s, "bad", "  - id: broken\n    uses: fail\n    with: { message: no disk }")
    db = s.path("bad.db")
    run, p = cairn_json("run", parent, db=db)
    err = run["steps"]["sub"]["error"]
    s.check(p.returncode == 1 and run["status"] == "failed" and err["kind"] == "child"
            and "no disk" in err["message"], "a failed child fails the parent's step", str(err))


def test_crash_while_the_child_runs(s):
    marker, log = s.path("c.marker"), s.path("c.log")
    parent, _ = setup(s, "crash", "  - id: slow\n    run: echo $CAIRN_ATTEMPT >> %s; "
                      "[ $CAIRN_ATTEMPT -gt 1 ] || { touch %s; sleep 60; }" % (log, marker))
    db = s.path("crash.db")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", parent], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(marker), "the child's slow step")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = cairn("resume", db=db)
    s.check(p.returncode == 0 and "resuming 2 runs" in p.stderr, "resume takes parent and child",
            p.stderr)
    runs = runs_of(db)
    parent_run = [r for r in runs if r["workflow"] == "parent-crash"][0]
    shown, _ = cairn_json("show", parent_run["id"], db=db)
    s.check(shown["status"] == "succeeded" and shown["outputs"] == {"doubled": 42},
            "both finish after the crash", str(shown["status"]))
    s.check(len(runs) == 2, "no second child was started", str(runs))


def test_cancelling_the_parent_cancels_the_child(s):
    marker = s.path("k.marker")
    parent, _ = setup(s, "cancel", "  - id: slow\n    run: touch %s; sleep 60" % marker)
    db = s.path("cancel.db")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", parent], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(marker), "the child's slow step")
    parent_id = [r for r in runs_of(db) if r["workflow"] == "parent-cancel"][0]["id"]
    p = cairn("cancel", parent_id, db=db)
    proc.wait(timeout=30)
    statuses = {r["workflow"]: r["status"] for r in runs_of(db)}
    s.check(statuses == {"parent-cancel": "cancelled", "child-cancel": "cancelled"},
            "cancelling the parent cancels its child", str(statuses) + p.stderr)


def write_pair(s, name, parent_step, child_body):
    d = s.path(name)
    os.makedirs(d)
    with open(os.path.join(d, "parent.yaml"), "w") as f:
        f.write("cairn: 1\nname: parent-%s\nsteps:\n%s" % (name, parent_step))
    with open(os.path.join(d, "child.yaml"), "w") as f:
        f.write("cairn: 1\nname: child-%s\n%s" % (name, child_body))
    return os.path.join(d, "parent.yaml")


def test_retry_until_asks_another_child(s):
    """retry.until holds a child's outputs to account, and each new child is
    an attempt of its own: .step.attempt grows, and max_attempts bounds it."""
    child = """inputs:
  n: { type: integer, required: true }
outputs:
  ok: ${{ .inputs.n >= 2 }}
  n: ${{ .inputs.n }}
steps:
  - id: s
    uses: set
    with: { n: "${{ .inputs.n }}" }
"""
    parent = write_pair(s, "until", """  - id: fix
    uses: workflow
    with: { name: child-until, inputs: { n: "${{ .step.attempt }}" } }
    retry: { max_attempts: 3, delay: 0s, until: "${{ .output.ok }}" }
""", child)
    db = s.path("until.db")
    run, p = cairn_json("run", parent, db=db)
    step = run["steps"]["fix"]
    s.check(p.returncode == 0 and step["attempts"] == 2 and step["output"] == {"ok": True, "n": 2},
            "a child whose outputs fail `until` is retried, attempt numbered", str(step) + p.stderr)
    kids = [r for r in runs_of(db) if r["workflow"] == "child-until"]
    s.check(len(kids) == 2, "one child run per attempt", str(kids))

    parent = write_pair(s, "spent", """  - id: fix
    uses: workflow
    with: { name: child-spent, inputs: { n: 0 } }
    retry: { max_attempts: 3, delay: 0s }
""", """inputs:
  n: { type: integer, required: true }
steps:
  - id: broken
    uses: fail
    with: { message: still broken }
""")
    db = s.path("spent.db")
    run, p = cairn_json("run", parent, db=db)
    step = run["steps"]["fix"]
    kids = [r for r in runs_of(db) if r["workflow"] == "child-spent"]
    s.check(p.returncode == 1 and step["attempts"] == 3 and step["error"]["kind"] == "child"
            and len(kids) == 3, "a failed child is retried until max_attempts, then fails the step",
            "%s, %d children" % (step, len(kids)))


def main():
    s = Suite("children")
    for t in [test_outputs_flow_to_the_parent, test_a_failed_child_fails_the_step,
              test_crash_while_the_child_runs, test_cancelling_the_parent_cancels_the_child,
              test_retry_until_asks_another_child]:
        try:
            t(s)
        except Exception as e:
            s.check(False, t.__name__, repr(e))
    s.finish()


if __name__ == "__main__":
    main()
