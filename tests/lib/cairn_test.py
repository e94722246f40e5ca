"""Helpers shared by the integration tests: run the cairn binary, count results.

Each test script builds a Suite, calls check() for every assertion, and ends
with suite.finish(), which prints "NAME: N passed, N failed" and exits non-zero
on any failure.

With CAIRN_TEST_REPLAY set (tests/run.sh sets it), finish() first replays
every run of every journal the test left in its folder (`cairn replay`): a
run whose journal the engine's decisions do not reproduce fails the test.
A test that damages a journal on purpose names it with no_replay().
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# CAIRN_BIN runs another build of cairn (make tsan runs build-tsan/cairn).
CAIRN = os.environ.get("CAIRN_BIN") or os.path.join(ROOT, "cairn")


class Suite:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.tmp = tempfile.mkdtemp(prefix="cairn-%s-" % name)
        self.unreplayed = set()

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print("ok - %s" % what)
        else:
            self.failed += 1
            print("not ok - %s %s" % (what, detail))
        return cond

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def run_all(self, tests):
        """Call each test(suite); an exception fails that test, not the rest."""
        for t in tests:
            try:
                t(self)
            except Exception as e:
                self.check(False, t.__name__, repr(e))

    def no_replay(self, db):
        """Leave the journal at db out of finish()'s replay: the test edited
        it behind the engine's back, so its runs are not the engine's."""
        self.unreplayed.add(os.path.realpath(db))

    def replay_journals(self):
        """Replay every run of every journal (*.db) in the test's folder."""
        runs, began = 0, time.monotonic()
        for root, _dirs, files in os.walk(self.tmp):
            for f in sorted(files):
                db = os.path.join(root, f)
                if not f.endswith(".db") or os.path.realpath(db) in self.unreplayed:
                    continue
                p = cairn("replay", "--json", db=db)
                if p.returncode == 3 and ("not a Cairn journal" in p.stderr or
                                          "no journal here yet" in p.stderr):
                    continue   # a database a workflow wrote, or a run killed before its journal
                lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
                runs += len(lines)
                bad = [l for l in lines if l["verdict"] == "diverged"]
                self.check(p.returncode == 0 and not bad,
                           "every run of %s replays consistent" % os.path.relpath(db, self.tmp),
                           (json.dumps(bad[0]) if bad else "") + p.stderr)
        print("replayed %d runs in %.2f s" % (runs, time.monotonic() - began))

    def finish(self):
        if os.environ.get("CAIRN_TEST_REPLAY"):
            self.replay_journals()
        if self.failed == 0:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("kept %s for inspection" % self.tmp)
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def cairn(*args, db=None, env=None, input=None, timeout=300):
    """Run cairn; returns CompletedProcess with text stdout/stderr."""
    cmd = [CAIRN] + (["--db", db] if db else []) + list(args)
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run(cmd, capture_output=True, text=True, env=e, input=input,
                          timeout=timeout)


def cairn_json(*args, db=None, env=None):
    p = cairn(*args, "--json", db=db, env=env)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    if not lines:
        raise RuntimeError("no JSON from cairn %s: %s" % (" ".join(args), p.stderr))
    return json.loads(lines[-1]), p


def wait_for(cond, what, timeout=30.0):
    """Poll cond() until it is truthy and return its value; a deadline, not a
    guess: past it the test fails loudly naming what it waited for."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def write(suite, name, text):
    """Write text to a file in the suite's folder; returns its path."""
    p = suite.path(name)
    with open(p, "w") as f:
        f.write(text)
    return p
