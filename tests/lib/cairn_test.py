"""Helpers shared by the integration tests: run the cairn binary, count results.

Each test script builds a Suite, calls check() for every assertion, and ends
with suite.finish(), which prints "NAME: N passed, N failed" and exits non-zero
on any failure.

With CAIRN_TEST_REPLAY set (tests/run.sh sets it), finish() first replays
every run of every journal the test left in its folder (`cairn replay`): a
run whose journal the engine's decisions do not reproduce fails the test.
A test that damages a journal on purpose names it with no_replay().
"""
import hashlib
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

# CAIRN_TEST_JOURNAL=postgres runs the suite with its journals in PostgreSQL:
# one server for the suite (tests/servers/pg.sh, stopped when this process
# ends), and CAIRN is tests/lib/cairn_pg.sh, which gives each journal path a
# database of its own (see there).  PG says which store a suite runs on,
# for the few checks that look at the SQLite file itself.
PG = os.environ.get("CAIRN_TEST_JOURNAL") == "postgres"
if PG:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import servers as _servers
    _pg = _servers.Postgres()
    os.environ["CAIRN_TEST_PG_CAIRN"] = CAIRN
    os.environ["CAIRN_TEST_PG_SOCK"] = os.path.join(_pg.dir, "sock")
    os.environ["CAIRN_TEST_PG_PORT"] = str(_pg.port)
    CAIRN = os.path.join(ROOT, "tests", "lib", "cairn_pg.sh")


def pg_database(db):
    """The name of the database cairn_pg.sh gives the journal path db."""
    return "cairn_" + hashlib.md5(db.encode()).hexdigest()[:20]


def journal_sql(db, sql):
    """Run sql on the journal at db where the suite stores it (SQLite's file,
    or its PostgreSQL database), as an operator with the database's password
    could, behind cairn's back.  Its rows, as tuples of text."""
    if not PG:
        import sqlite3
        con = sqlite3.connect(db)
        try:
            rows = [tuple(None if v is None else str(v) for v in r) for r in con.execute(sql)]
            con.commit()
        finally:
            con.close()
        return rows
    p = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                        "-h", os.environ["CAIRN_TEST_PG_SOCK"], "-p", os.environ["CAIRN_TEST_PG_PORT"],
                        "-U", "postgres", "-d", pg_database(db), "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("psql %r: %s" % (sql, p.stderr))
    return [tuple(l.split("\t")) for l in p.stdout.splitlines()]


def journal_exists(db):
    """Whether there is a journal at db, in the suite's store."""
    if not PG:
        return os.path.exists(db)
    return subprocess.run([CAIRN, "--db", db, "runs"], capture_output=True).returncode == 0


def sqlite_only(test):
    """A test of the SQLite file itself (its bytes, its -wal, a direct
    edit): skipped, and said so, when the suite runs on PostgreSQL."""
    def run(suite):
        if PG:
            print("skip - %s (SQLite's file)" % test.__name__)
            return
        test(suite)
    run.__name__ = test.__name__
    return run


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
                if PG:   # a journal path cairn_pg.sh gave a database marks it PATH.pgdb
                    f = f[:-len(".pgdb")] if f.endswith(".db.pgdb") else ""
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
