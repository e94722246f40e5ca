"""Crash safety of durable control flow: kill -9 the engine at random moments
of a run that retries with back-off, waits on a timer, runs a child
workflow, then fails and rolls back (compensations, on_failure); resume;
check the durability contract after every trial:
  - the run ends failed, at the step meant to fail, after a full rollback;
  - every succeeded step's compensation took effect exactly once (its
    effect, mkdir, is idempotent under the step's idempotency key), and no
    compensation that show reported succeeded before the kill ran again;
  - on_failure ran; the child run finished; the journal verifies.
CRASH_CONTROL_TRIALS sets the number of trials (default 20)."""
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, journal_exists, Suite, cairn, cairn_json  # noqa: E402

TRIALS = int(os.environ.get("CRASH_CONTROL_TRIALS", "20"))
DONE = ["flaky", "nap", "sub", "shape"]   # the steps that succeed, each with a compensation


def write_workflows(d, work):
    with open(os.path.join(d, "control.yaml"), "w") as f:
        f.write("""cairn: 1
name: control
steps:
  - id: flaky
    retry: {{ max_attempts: 3, backoff: exponential, delay: 100ms }}
    run: echo flaky $CAIRN_ATTEMPT >> {w}/log; [ $CAIRN_ATTEMPT -ge 3 ]
    compensate:
      run: echo undo flaky >> {w}/log; mkdir -p {w}/undone/flaky
  - id: nap
    uses: wait
    with: {{ duration: 150ms }}
    compensate:
      run: echo undo nap >> {w}/log; mkdir -p {w}/undone/nap
  - id: sub
    uses: workflow
    with: {{ name: control-child }}
    compensate:
      run: echo undo sub >> {w}/log; mkdir -p {w}/undone/sub
  - id: shape
    uses: set
    with: {{ child: "${{{{ .steps.sub.output.ok }}}}" }}
    compensate:
      run: echo undo shape >> {w}/log; sleep 0.1; mkdir -p {w}/undone/shape
  - id: boom
    run: echo boom >> {w}/log; exit 5
on_failure:
  - id: tell
    run: echo tell ${{{{ .error.step }}}} >> {w}/log; mkdir -p {w}/told
""".format(w=work))
    with open(os.path.join(d, "child.yaml"), "w") as f:
        f.write("""cairn: 1
name: control-child
outputs:
  ok: ${{ .steps.work.output.stdout }}
steps:
  - id: work
    run: sleep 0.2; echo yes
""")


def lines(path, prefix):
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for l in f if l.startswith(prefix))


def compensations_done(db, run_id):
    p = cairn("show", run_id, "--json", db=db)
    if p.returncode != 0 or not p.stdout.strip():
        return set()
    steps = json.loads(p.stdout.strip().splitlines()[-1])["steps"]
    return {k.split("#")[0] for k, v in steps.items() if k.endswith("#compensate")
            and v["status"] == "succeeded"}


def parent_id(db):
    p = cairn("runs", "--json", db=db)
    if p.returncode != 0:
        return None
    runs = [r for r in json.loads(p.stdout.strip().splitlines()[-1]) if r["workflow"] == "control"]
    return runs[0]["id"] if runs else None


def trial(s, n, duration):
    d = s.path("t%d" % n)
    work = os.path.join(d, "work")
    os.makedirs(work)
    write_workflows(d, work)
    db = os.path.join(d, "j.db")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", os.path.join(d, "control.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.uniform(0.0, duration))
    run_id = parent_id(db) if journal_exists(db) else None
    before = compensations_done(db, run_id) if run_id else set()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_id = run_id or parent_id(db)
    if run_id is None:
        return s.check(not os.path.exists(os.path.join(work, "log")), "trial %d: no run, no effect" % n)
    ended = cairn_json("show", run_id, db=db)[0]["status"] in ("succeeded", "failed", "cancelled")
    p = cairn("resume", db=db)
    # the run fails at boom as written: resume exits 1 when it is what ends it
    s.check(p.returncode == (0 if ended else 1), "trial %d: resume exits %d" % (n, 0 if ended else 1),
            p.stderr[-300:])
    run, _ = cairn_json("show", run_id, db=db)
    log = os.path.join(work, "log")
    s.check(run["status"] == "failed" and run["error"].get("step") == "boom",
            "trial %d: the run fails at boom" % n, str(run["status"]) + str(run["error"]))
    undone = sorted(os.listdir(os.path.join(work, "undone"))) if os.path.isdir(os.path.join(work, "undone")) else []
    s.check(undone == sorted(DONE), "trial %d: every succeeded step was compensated" % n, str(undone))
    again = [k for k in before if lines(log, "undo " + k) != 1]
    s.check(not again, "trial %d: no finished compensation ran again (%d were done)" % (n, len(before)),
            str(again))
    order = [l.split()[1] for l in open(log) if l.startswith("undo ")]
    firsts = [x for i, x in enumerate(order) if x not in order[:i]]
    s.check(firsts == ["shape", "sub", "nap", "flaky"], "trial %d: reverse order of completion" % n,
            str(order))
    s.check(os.path.isdir(os.path.join(work, "told")), "trial %d: on_failure ran" % n)
    children = [r for r in cairn_json("runs", db=db)[0] if r["workflow"] == "control-child"]
    s.check(len(children) == 1 and children[0]["status"] == "succeeded",
            "trial %d: one child run, finished" % n, str(children))
    v = cairn("verify", db=db)
    s.check(v.returncode == 0, "trial %d: the journal verifies" % n, v.stdout[-300:])


def main():
    s = Suite("crash_control")
    random.seed(os.environ.get("CRASH_SEED", str(os.getpid())))
    d = s.path("ref")
    work = os.path.join(d, "work")
    os.makedirs(work)
    write_workflows(d, work)
    t0 = time.monotonic()
    p = cairn("--db", os.path.join(d, "j.db"), "run", os.path.join(d, "control.yaml"))
    duration = time.monotonic() - t0
    s.check(p.returncode == 1 and lines(os.path.join(work, "log"), "undo ") == 4,
            "an uninterrupted run fails at boom and compensates four steps", p.stderr[-300:])
    for n in range(TRIALS):
        try:
            trial(s, n, duration)
        except Exception as e:
            s.check(False, "trial %d" % n, repr(e))
    s.finish()


if __name__ == "__main__":
    main()
