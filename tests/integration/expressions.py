"""A runaway expression through the cairn command: SIGTERM stops the engine
within the expression's time bound, what was done before it stays done, and
`cairn check` never evaluates an expression."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, Suite, cairn, cairn_json, wait_for, write  # noqa: E402

BOUND_S = 3


def cpu_seconds(pid):
    """User and system CPU time of a live process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runaway_workflow(s, log):
    return write(s, "runaway.yaml", """cairn: 1
name: runaway
limits: { expression_time: %ds }
steps:
  - id: first
    run: echo first >> %s
  - id: stuck
    uses: set
    with: { v: "${{ .steps.first.output.stdout as $x | def f: f; f }}" }
""" % (BOUND_S, log))


def test_check_does_not_evaluate(s, wf):
    p = cairn("check", wf, timeout=60)
    s.check(p.returncode == 0, "check accepts a runaway expression: it compiles, never runs",
            p.stdout + p.stderr)


def test_sigterm_during_a_runaway_expression(s, wf, log):
    db = s.path("term.db")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # the orchestrator spinning in the expression is what we wait for
        wait_for(lambda: os.path.exists(log) and cpu_seconds(proc.pid) > 0.3,
                 "the expression to be running")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=BOUND_S + 30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    s.check(took < BOUND_S + 30, "cairn run exits after SIGTERM within the bound (%.1fs)" % took)
    s.check(proc.returncode == 1, "the run failed", "exit %d: %s" % (proc.returncode, err))
    runs, _ = cairn_json("runs", db=db)
    shown, _ = cairn_json("show", runs[0]["id"], db=db)
    s.check(shown["steps"]["first"]["status"] == "succeeded", "the step before it is journaled",
            str(shown["steps"]["first"]))
    error = shown["steps"]["stuck"]["error"] or {}
    s.check(error.get("kind") == "expression" and "time bound of 3000 ms" in error.get("message", ""),
            "the runaway step failed with kind expression", str(error))
    p = cairn("resume", db=db, timeout=60)
    s.check(p.returncode == 0 and open(log).read().count("first") == 1,
            "resume has nothing to re-run", p.stderr)


def main():
    s = Suite("expressions")
    log = s.path("runaway.log")
    wf = runaway_workflow(s, log)
    for t, args in [(test_check_does_not_evaluate, (s, wf)),
                    (test_sigterm_during_a_runaway_expression, (s, wf, log))]:
        try:
            t(*args)
        except Exception as e:  # a crash in one test is a failure, not the end
            s.check(False, t.__name__, repr(e))
    s.finish()


if __name__ == "__main__":
    main()
