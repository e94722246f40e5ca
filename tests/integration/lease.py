"""Two `cairn serve` nodes on one PostgreSQL journal, leases of 1.5 s.
Node A holds runs mid-shell-step when it is stopped (SIGSTOP) for longer
than its lease: node B takes them over (their in-flight step again, A's
left-over shell killed) and finishes them; A, continued (SIGCONT), finds
them taken: what it still meant to write is refused and it drops them.
No step journaled as finished ran twice (each step appends to a file),
every run ends, and verify passes."""
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cairn_test import Suite, cairn, wait_for  # noqa: E402
from serve import Server, wfdir  # noqa: E402

RUNS = 4
LEASE = {"CAIRN_LEASE_MS": "1500"}

STEPS = """cairn: 1
name: steps
inputs:
  n: { type: string }
steps:
  - id: a
    run: echo "a-${{ .inputs.n }}" >> %(log)s
  - id: b
    needs: [a]
    run: |
      while [ ! -e %(gate)s ]; do sleep 0.05; done
      echo "b-${{ .inputs.n }}" >> %(log)s
  - id: c
    needs: [b]
    run: echo "c-${{ .inputs.n }}" >> %(log)s
"""


def events(srv, run):
    st, _, body = srv.request("GET", "/v1/runs/%s/events" % run)
    return body["events"] if st == 200 else []


def spawned_b(srv, run):
    """b's shell is running and journaled with its process group (so that
    the node taking the run over can kill what is left of it)."""
    return any(e["type"] == "step_spawned" and e.get("step") == "b" for e in events(srv, run))


def status(srv, run):
    st, _, body = srv.request("GET", "/v1/runs/%s" % run)
    return body.get("status") if st == 200 else None


def healthy(srv):
    st, _, _ = srv.request("GET", "/healthz")
    return st == 200


def test_takeover_and_fencing(s):
    log, gate = s.path("steps.log"), s.path("gate")
    d = wfdir(s, "wf", {"steps.yaml": STEPS % {"log": log, "gate": gate}})
    db = s.path("lease.db")
    a = Server(s, "a", d, db=db, env=LEASE, extra=["--placement", "local"])   # A holds its runs
    b = Server(s, "b", d, db=db, extra=["--lease-ms", "1500"])
    try:
        runs = [a.start_run("steps", {"n": str(i)}) for i in range(RUNS)]
        wait_for(lambda: all(spawned_b(a, r) for r in runs), "A's runs to be in step b", 60)
        a.proc.send_signal(signal.SIGSTOP)
        took = wait_for(lambda: all("run %s: taken over" % r in b.stderr() for r in runs),
                        "B to take over A's runs", 60)
        s.check(took, "B takes over every run of the stopped node once its lease lapsed")
        a.proc.send_signal(signal.SIGCONT)
        dropped = wait_for(lambda: all("run %s: held by another engine now" % r in a.stderr()
                                       for r in runs), "A to drop its runs", 60)
        s.check(dropped, "A, continued, drops every run B holds now", a.stderr())
        s.check(wait_for(lambda: healthy(a), "A to be healthy again", 30),
                "A renews its lease and says so in /healthz")
        with open(gate, "w"):
            pass
        ended = wait_for(lambda: all(status(b, r) == "succeeded" for r in runs),
                         "B to finish the runs", 60)
        s.check(ended, "B finishes every run")
        with open(log) as f:
            lines = f.read().split()
        for step in "abc":
            counts = [lines.count("%s-%d" % (step, i)) for i in range(RUNS)]
            s.check(counts == [1] * RUNS, "step %s ran once in every run" % step, counts)
        s.check("nothing of this batch was written" not in a.stderr(),
                "A's late writes were refused by the fence, not failed into the journal",
                a.stderr())
        s.check(healthy(a) and healthy(b), "both nodes stay healthy")
    finally:
        a.proc.send_signal(signal.SIGCONT)
        s.check(a.stop() == 0, "A stops cleanly", a.stderr())
        s.check(b.stop() == 0, "B stops cleanly", b.stderr())
    v = cairn("verify", db=db)
    s.check(v.returncode == 0, "verify passes", v.stdout + v.stderr)


if __name__ == "__main__":
    suite = Suite("lease")
    suite.run_all([test_takeover_and_fencing])
    suite.finish()
