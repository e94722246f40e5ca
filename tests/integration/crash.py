"""Crash safety: kill -9 the engine at a random moment, resume, check the
durability contract of DSL.md.

A workflow of 200 shell steps, each appending "<id> <attempt>" to a log file.
Each trial: start `cairn run`, let it go for a random time, read what `show`
reports as succeeded, kill -9 the engine, `cairn resume`, then check:
  - every step's line is in the log;
  - no step that show reported succeeded before the kill ran again;
  - the run's final outputs equal those of an uninterrupted run;
  - the journal's hash chains verify.
CRASH_TRIALS sets the number of trials (default 50).
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, journal_exists, Suite, cairn, cairn_json  # noqa: E402

STEPS = 200
TRIALS = int(os.environ.get("CRASH_TRIALS", "50"))


def write_workflow(path):
    lines = [
        "cairn: 1",
        "name: crash-200",
        "inputs:",
        "  log: { type: string, required: true }",
        "outputs:",
        "  succeeded: ${{ [.steps[] | select(.status == \"succeeded\")] | length }}",
        "  last: ${{ .steps.s199.output.stdout }}",
        "  ids: ${{ [.steps[] | .output.stdout] | join(\"\") }}",
        "steps:",
    ]
    for i in range(STEPS):
        lines.append("  - id: s%03d" % i)
        lines.append("    run: echo s%03d; echo \"s%03d $CAIRN_ATTEMPT\" >> ${{ .inputs.log }}" % (i, i))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def log_lines(path):
    counts = {}
    if not os.path.exists(path):
        return counts
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts:
                counts[parts[0]] = counts.get(parts[0], 0) + 1
    return counts


def run_id_of(db):
    """The run's id, or None while the journal is not there yet."""
    p = cairn("runs", "--json", db=db)
    if p.returncode != 0:
        return None
    runs = json.loads(p.stdout.strip().splitlines()[-1])
    return runs[0]["id"] if runs else None


def succeeded_steps(db, run_id):
    p = cairn("show", run_id, "--json", db=db)
    if p.returncode != 0 or not p.stdout.strip():
        return set()
    run = json.loads(p.stdout.strip().splitlines()[-1])
    return {k for k, v in run["steps"].items() if v["status"] == "succeeded"}


def trial(s, wf, n, reference, duration):
    db = s.path("t%d.db" % n)
    log = s.path("t%d.log" % n)
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf, "--input", "log=" + log],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.uniform(0.0, 0.6 * duration))   # a random moment within the run
    run_id = run_id_of(db) if journal_exists(db) else None
    before = succeeded_steps(db, run_id) if run_id else set()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if run_id is None:
        run_id = run_id_of(db)
        if run_id is None:   # killed before the run was journaled: nothing to resume
            return s.check(not os.path.exists(log), "trial %d: no run, no side effect" % n)
    p = cairn("resume", db=db)
    ok = s.check(p.returncode == 0, "trial %d: resume exits 0" % n, p.stderr[-500:])
    counts = log_lines(log)
    missing = [("s%03d" % i) for i in range(STEPS) if ("s%03d" % i) not in counts]
    ok &= s.check(not missing, "trial %d: every step ran" % n, "missing %s" % missing[:5])
    again = sorted(k for k in before if counts.get(k, 0) != 1)
    ok &= s.check(not again, "trial %d: no succeeded step ran again (%d were done)" % (n, len(before)),
                  "ran again: %s" % again[:5])
    run, _ = cairn_json("show", run_id, db=db)
    ok &= s.check(run["status"] == "succeeded" and run["outputs"] == reference,
                  "trial %d: outputs equal an uninterrupted run's" % n,
                  "%s %s" % (run["status"], run["outputs"]))
    v = cairn("verify", db=db)
    ok &= s.check(v.returncode == 0, "trial %d: journal verifies" % n, v.stdout[-300:])
    return ok


def main():
    s = Suite("crash")
    random.seed(os.environ.get("CRASH_SEED", str(os.getpid())))
    wf = s.path("crash.yaml")
    write_workflow(wf)
    t0 = time.monotonic()
    run, p = cairn_json("run", wf, "--input", "log=" + s.path("ref.log"), db=s.path("ref.db"))
    duration = time.monotonic() - t0
    s.check(p.returncode == 0 and run["status"] == "succeeded", "uninterrupted run succeeds",
            p.stderr[-500:])
    reference = run["outputs"]
    s.check(reference.get("succeeded") == STEPS, "reference outputs count every step")
    for n in range(TRIALS):
        trial(s, wf, n, reference, duration)
    s.finish()


if __name__ == "__main__":
    main()
