"""cairn migrate: a journal moved from SQLite into PostgreSQL and back,
with its chains (verify --heads taken before passes after), its id, key,
definitions, runs, and the commands waiting in it; a target that holds
anything, one under another key, and a source an engine holds are refused.
The copy is one transaction on the target: a target that refuses a row
half-way (a trigger, in either store) and a cairn killed with SIGKILL
half-way (PostgreSQL, its copy held at a lock) leave it empty, and the
next try copies the whole journal."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, ROOT, Suite, cairn, cairn_json, journal_sql, wait_for, write  # noqa: E402
import servers  # noqa: E402

# The copy is refused (or held) at this event: past the first run's, so a
# copy that committed run by run would leave that run behind.
HALF_WAY = 12

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
    p = cairn("migrate", "--from", url, "--to", back, env=pgenv)
    s.check(p.returncode == 3 and "holds a journal already" in p.stderr and
            "nothing was copied" in p.stderr, "a second copy into the SQLite file is refused",
            p.stderr)
    s.check(what_it_shows(back, None) == what_it_shows(url, pgenv), "and changed nothing there")
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
    for source, to, name in ((db, pg.url("busy"), "SQLite"),
                             (pg.url("busysource"), s.path("busy.db"), "PostgreSQL")):
        env = {"CAIRN_FILES": s.path("busy")}
        proc = subprocess.Popen([CAIRN, "--db", source, "run", s.path("slow.yaml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, **env))
        wait_for(lambda: "slow" in cairn("runs", db=source, env=env).stdout, "the slow run")
        p = cairn("migrate", "--from", source, "--to", to, env=env)
        s.check(p.returncode == 3 and "held by a running engine" in p.stderr and
                "nothing was copied" in p.stderr,
                "a source in %s an engine holds is refused" % name, p.stderr)
        p = cairn("runs", db=to, env=env)
        s.check(p.returncode == 3 and "no journal here" in p.stderr,
                "and the target was not even made a journal", p.stderr)
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


def schema(name):
    """The text of schema/NAME and the version its first line names."""
    with open(os.path.join(ROOT, "schema", name)) as f:
        text = f.read()
    return text, int(re.search(r"version (\d+)", text.splitlines()[0]).group(1))


def empty_sqlite_journal(path, trigger):
    """A SQLite journal with no rows (the schema cairn makes) and trigger."""
    text, version = schema("journal.sql")
    app = int(re.search(r"application_id = (0x[0-9A-Fa-f]+)", text).group(1), 16)
    con = sqlite3.connect(path)
    con.executescript("PRAGMA application_id = %d; PRAGMA user_version = %d;" % (app, version) +
                      text + trigger)
    con.close()


def empty_pg_journal(pg, name, trigger):
    """A PostgreSQL journal with no rows (the schema cairn makes) and trigger."""
    text, version = schema("journal_pg.sql")
    url = pg.url(name)
    pg.sql(name, text + "INSERT INTO cairn_journal(one, app, version) VALUES (1, 'cairn', %d);"
           % version + trigger)
    return url


SQLITE_REFUSES = ("CREATE TRIGGER refuse BEFORE INSERT ON events"
                  " WHEN (SELECT count(*) FROM events) >= %d"
                  " BEGIN SELECT RAISE(ABORT, 'refused half-way'); END;" % HALF_WAY)


def pg_trigger(body):
    """A trigger on PostgreSQL's events that runs body at the HALF_WAY-th."""
    return ("CREATE FUNCTION half_way() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF (SELECT count(*) FROM events) = %d THEN %s END IF; RETURN NEW; END $$;"
            " CREATE TRIGGER half_way BEFORE INSERT ON events FOR EACH ROW"
            " EXECUTE FUNCTION half_way();" % (HALF_WAY - 1, body))


def rows_in(count):
    """Every table of a journal but meta: what a failed copy must not leave."""
    return {t: count("SELECT count(*) FROM %s" % t)
            for t in ("events", "runs", "definitions", "definition_steps", "commands", "claims")}


def copy_again(s, db, to, heads, env, name):
    """The next try copies the whole journal: verify --heads passes there."""
    p = cairn("migrate", "--from", db, "--to", to, env=env)
    s.check(p.returncode == 0 and "copied 3 runs" in p.stderr, name + ": the next try copies it all",
            p.stderr)
    p = cairn("verify", "--heads", heads, db=to, env=env)
    s.check(p.returncode == 0 and p.stdout.count(" ok ") == 3,
            name + ": and verify --heads passes there", p.stdout + p.stderr)


def source_and_heads(s, name):
    """A source journal, its heads, and the environment of its copies."""
    db = s.path(name + ".db")
    build_source(s, db)
    heads = s.path(name + ".heads")
    s.check(cairn("verify", "--export-heads", heads, db=db).returncode == 0, name + ": heads")
    return db, heads, {"CAIRN_FILES": s.path(name + "-files")}


def test_refused_half_way(s, pg):
    """A target that refuses an event half-way (a trigger): exit 3 naming
    the refusal, nothing copied, and the next try (the trigger dropped)
    copies the whole journal."""
    db, heads, env = source_and_heads(s, "refused")
    url = empty_pg_journal(pg, "halfway", pg_trigger("RAISE EXCEPTION 'refused half-way';"))
    target = s.path("h-target.db")
    empty_sqlite_journal(target, SQLITE_REFUSES)
    count_pg = lambda sql: int(pg.rows("halfway", sql)[0][0])
    count_sq = lambda sql: int(journal_sql(target, sql)[0][0])
    for to, count, drop, name in ((url, count_pg, lambda: pg.sql("halfway", "DROP TRIGGER half_way"
                                                                  " ON events"), "PostgreSQL"),
                                  (target, count_sq, lambda: journal_sql(target, "DROP TRIGGER"
                                                                         " refuse"), "SQLite")):
        p = cairn("migrate", "--from", db, "--to", to, env=env)
        s.check(p.returncode == 3 and "refused half-way" in p.stderr and
                "nothing was copied" in p.stderr, name + ": a copy refused half-way fails, exit 3",
                p.stderr)
        left = rows_in(count)
        s.check(not any(left.values()), name + ": and leaves nothing in the target", str(left))
        drop()
        copy_again(s, db, to, heads, env, name)


def test_killed_half_way(s, pg):
    """cairn migrate killed (SIGKILL) while its copy into PostgreSQL waits
    half-way: once its session is gone the target holds nothing, and the
    next try copies the whole journal."""
    db, heads, env = source_and_heads(s, "killed")
    sessions = ("SELECT count(*) FROM pg_stat_activity WHERE datname = 'killed'"
                " AND application_name = 'cairn'")
    url = empty_pg_journal(pg, "killed", pg_trigger("PERFORM pg_advisory_lock(4242);"))
    holder = subprocess.Popen(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.pg.port), "-U",
                               "postgres", "-d", "killed"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    holder.stdin.write("SELECT pg_advisory_lock(4242);\n")
    holder.stdin.flush()
    wait_for(lambda: pg.rows("killed", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                             " AND objid = 4242 AND granted")[0][0] == "1", "the lock held")
    proc = subprocess.Popen([CAIRN, "migrate", "--from", db, "--to", url], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, **env))
    try:
        wait_for(lambda: pg.rows("killed", sessions + " AND wait_event = 'advisory'")[0][0] == "1",
                 "the copy to wait half-way")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        holder.stdin.close()
        holder.wait()
    wait_for(lambda: pg.rows("killed", sessions)[0][0] == "0", "the killed copy's session to end")
    left = rows_in(lambda sql: int(pg.rows("killed", sql)[0][0]))
    s.check(not any(left.values()), "killed half-way: the target holds nothing", str(left))
    pg.sql("killed", "DROP TRIGGER half_way ON events")
    copy_again(s, db, url, heads, env, "killed half-way")


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

    def rows(self, name, sql):
        """Rows of sql on database name, fields split on '|'."""
        p = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(self.pg.port), "-U", "postgres", "-d", name, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)
        return [l.split("|") for l in p.stdout.splitlines()]

    def url(self, name):
        if name not in self.made:
            self.pg.psql("CREATE DATABASE %s" % name)
            self.made.add(name)
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.pg.port, name)


def main():
    s = Suite("migrate")
    pg = Server()
    try:
        for t in (test_there_and_back, test_refusals, test_an_edit_in_the_database_is_caught,
                  test_refused_half_way, test_killed_half_way):
            try:
                t(s, pg)
            except Exception as e:
                s.check(False, t.__name__, repr(e))
    finally:
        pg.pg.stop()
    s.finish()


main()
