"""cairn migrate: a journal moved from SQLite into PostgreSQL and back,
with its chains (verify --heads taken before passes after), its id, key,
definitions, runs, and the commands waiting in it; a target that holds
anything, one under another key, and a source an engine holds are refused."""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, Suite, cairn, cairn_json, journal_sql, wait_for, write  # noqa: E402
import servers  # noqa: E402

WORKFLOWS = {
    "ok.yaml": "cairn: 1\nname: ok\nsteps:\n  - id: a\n    run: echo hello\n"
               "  - id: b\n    needs: [a]\n    uses: set\n    with: { v: 1 }\n",
    "bad.yaml": "cairn: 1\nname: bad\nsteps:\n  - id: a\n    run: exit 3\n",
    "gate.yaml": "cairn: 1\nname: gate\nsteps:\n  - id: gate\n    uses: approval\n"
                 "    with: { prompt: \"Go?\" }\n  - id: after\n    needs: [gate]\n    run: echo done\n",
    "slow.yaml": "cairn: 1\nname: slow\nsteps:\n  - id: nap\n    run: sleep 30\n",
}


def pending(db, env):
    p = cairn("approvals", "--json", db=db, env=env)
    return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else []


def what_it_shows(db, env):
    """Every run as `show --json` prints it, by id, and the approvals open."""
    runs, _ = cairn_json("runs", db=db, env=env)
    return {r["id"]: cairn_json("show", r["id"], db=db, env=env)[0] for r in runs}, pending(db, env)


def build_source(s, db):
    for name, text in WORKFLOWS.items():
        write(s, name, text)
    s.check(cairn("run", s.path("ok.yaml"), db=db).returncode == 0, "a run that succeeds")
    s.check(cairn("run", s.path("bad.yaml"), db=db).returncode == 1, "a run that fails")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", s.path("gate.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gate = wait_for(lambda: pending(db, None), "the approval")[0]["run"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = cairn("approve", gate, "gate", "--as", "alice", db=db)
    s.check(p.returncode == 0, "a decision waits in the journal, no engine running", p.stderr)
    return gate


def test_there_and_back(s, pg):
    db = s.path("a.db")
    gate = build_source(s, db)
    heads = s.path("a.heads")
    s.check(cairn("verify", "--export-heads", heads, db=db).returncode == 0, "heads exported")
    before = what_it_shows(db, None)
    url = pg.url("there")
    pgenv = {"CAIRN_FILES": s.path("pgfiles")}
    p = cairn("migrate", "--from", db, "--to", url, env=pgenv)
    s.check(p.returncode == 0 and "copied 3 runs" in p.stderr and "1 commands" in p.stderr,
            "migrate into PostgreSQL", p.stderr)
    p = cairn("verify", "--heads", heads, db=url, env=pgenv)
    s.check(p.returncode == 0 and p.stdout.count(" ok ") == 3,
            "verify --heads, taken from SQLite, passes in PostgreSQL", p.stdout + p.stderr)
    s.check(what_it_shows(url, pgenv) == before, "every run shows the same, and the approval")
    with open(db + ".key", "rb") as a, open(s.path("pgfiles.key"), "rb") as b:
        s.check(a.read() == b.read(), "the target is under the source's key")
    p = cairn("migrate", "--from", db, "--to", url, env=pgenv)
    s.check(p.returncode == 3 and "holds a journal already" in p.stderr,
            "a second copy into it is refused", p.stderr)
    s.check(what_it_shows(url, pgenv) == before, "and changed nothing")
    # the decision made in SQLite is carried out in PostgreSQL
    p = cairn("resume", db=url, env=pgenv)
    s.check(p.returncode == 0, "resume in PostgreSQL", p.stderr[-300:])
    run, _ = cairn_json("show", gate, db=url, env=pgenv)
    s.check(run["status"] == "succeeded", "the approved run finishes there", str(run["status"]))
    back_heads = s.path("pg.heads")
    cairn("verify", "--export-heads", back_heads, db=url, env=pgenv)
    back = s.path("back.db")
    p = cairn("migrate", "--from", url, "--to", back, env=pgenv)
    s.check(p.returncode == 0, "migrate back into SQLite", p.stderr)
    p = cairn("verify", "--heads", back_heads, db=back)
    s.check(p.returncode == 0 and p.stdout.count(" ok ") == 3,
            "verify --heads, taken from PostgreSQL, passes in SQLite", p.stdout + p.stderr)
    s.check(what_it_shows(back, None) == what_it_shows(url, pgenv), "and shows the same")
    ids = [journal_sql(path, "SELECT value FROM meta WHERE key = 'journal_id'") for path in (db, back)]
    s.check(ids[0] == ids[1] and len(ids[0][0][0]) == 32, "the journal's id went there and back",
            str(ids))


def test_refusals(s, pg):
    db = s.path("r.db")
    write(s, "ok.yaml", WORKFLOWS["ok.yaml"])
    cairn("run", s.path("ok.yaml"), db=db)
    other = s.path("other.db")
    with open(other + ".key", "wb") as f:
        f.write(b"k" * 32)
    os.chmod(other + ".key", 0o600)
    p = cairn("migrate", "--from", db, "--to", other)
    s.check(p.returncode == 3 and "does not match" in p.stderr,
            "a target under another key is refused", p.stderr)
    s.check(cairn("runs", db=other).stdout.count("ok") == 0, "and nothing was copied")
    write(s, "slow.yaml", WORKFLOWS["slow.yaml"])
    proc = subprocess.Popen([CAIRN, "--db", db, "run", s.path("slow.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: "slow" in cairn("runs", db=db).stdout, "the slow run")
    p = cairn("migrate", "--from", db, "--to", pg.url("busy"), env={"CAIRN_FILES": s.path("busy")})
    s.check(p.returncode == 3 and "held by a running engine" in p.stderr,
            "a source an engine holds is refused", p.stderr)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = cairn("migrate", "--to", db)
    s.check(p.returncode == 2, "migrate needs --from and --to", p.stderr)


def test_an_edit_in_the_database_is_caught(s, pg):
    """The chain's key is not in the database: whoever edits its rows is found
    out, and a copy carries the edit as it is, to be found out there too."""
    db = s.path("e.db")
    write(s, "ok.yaml", WORKFLOWS["ok.yaml"])
    run, _ = cairn_json("run", s.path("ok.yaml"), db=db)
    url = pg.url("edited")
    env = {"CAIRN_FILES": s.path("edited")}
    s.check(cairn("migrate", "--from", db, "--to", url, env=env).returncode == 0, "copied")
    pg.sql("edited", "UPDATE events SET data = replace(data, 'hello', 'HELLO') WHERE seq = 3")
    p = cairn("verify", db=url, env=env)
    s.check(p.returncode == 1 and "event 3 " in p.stdout + p.stderr,
            "an event edited in PostgreSQL fails verify, named", p.stdout + p.stderr)
    p = cairn("show", run["id"], db=url, env=env)
    s.check(p.returncode == 3, "and show refuses the run", p.stderr)
    back = s.path("e2.db")
    s.no_replay(back)   # edited behind the engine's back: not the engine's runs
    s.check(cairn("migrate", "--from", url, "--to", back, env=env).returncode == 0,
            "the edited journal copies back")
    p = cairn("verify", db=back)
    s.check(p.returncode == 1 and "event 3 " in p.stdout + p.stderr,
            "and the edit is found there too", p.stdout + p.stderr)


class Server:
    def __init__(self):
        self.pg = servers.Postgres()
        self.made = set()

    def sql(self, name, sql):
        p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                            str(self.pg.port), "-U", "postgres", "-d", name, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)

    def url(self, name):
        if name not in self.made:
            self.pg.psql("CREATE DATABASE %s" % name)
            self.made.add(name)
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.pg.port, name)


def main():
    s = Suite("migrate")
    pg = Server()
    try:
        for t in (test_there_and_back, test_refusals, test_an_edit_in_the_database_is_caught):
            try:
                t(s, pg)
            except Exception as e:
                s.check(False, t.__name__, repr(e))
    finally:
        pg.pg.stop()
    s.finish()


main()
