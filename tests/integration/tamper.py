"""Tampering with the journal behind the engine's back is evident.

Each case runs a workflow, then edits the journal directly with SQL, as
someone with write access to the SQLite file (or, run by pg_tamper.sh, to
the PostgreSQL database) could: an event's data edited, an event deleted,
two events swapped, one inserted (in a run still in SQLite's unindexed
tail and in one the event index covers; in PostgreSQL, in a run with
another after it), two runs' events swapped, runs.status edited,
definitions.source edited, a run's row or all its events deleted, the
journal's key file replaced.  `cairn verify` must exit 1 naming the run
and the event (or the column, or the hashes), and its one pass over runs
that ran side by side must say what it says of each alone; `show` must refuse a run whose events or definition do not check
out, rather than display forged values; `resume` must refuse to run an
edited definition.  What a chain cannot see (events cut off a run's end,
the runs row made to agree; a whole run deleted) `verify --heads` must
catch against heads exported before, naming the run and the first event
missing.  And an event forged in the commit log (its checksum made good
again, as anyone can) is caught when a reader applies the log."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import (CAIRN, PG, Suite, cairn, cairn_json, journal_sql, sqlite_only,  # noqa: E402
                        wait_for, write)

SIMPLE = """cairn: 1
name: simple
steps:
  - id: a
    uses: set
    with: { v: genuine }
  - id: b
    uses: set
    with: { v: "${{ .steps.a.output.v }}" }
"""

GATED = """cairn: 1
name: gated
steps:
  - id: first
    run: echo first >> LOG
  - id: gate
    uses: approval
    with: { prompt: go on? }
  - id: last
    run: echo last >> LOG
"""


def finished_run(s, name):
    db = s.path(name + ".db")
    s.no_replay(db)   # edited behind the engine's back: not the engine's runs
    run, p = cairn_json("run", write(s, name + ".yaml", SIMPLE), db=db)
    s.check(p.returncode == 0, name + ": the run succeeds", p.stderr[-300:])
    ok = cairn("verify", db=db)
    s.check(ok.returncode == 0 and " ok " in ok.stdout, name + ": verify passes untouched", ok.stdout)
    return db, run["id"]


def lit(v):
    """v as an SQL literal (either store's dialect)."""
    return str(v) if isinstance(v, int) else "'%s'" % str(v).replace("'", "''")


def edit(db, *statements):
    """Run each statement on the journal, as whoever can write to it could."""
    for sql in statements:
        journal_sql(db, sql)


def seq_of(db, run_id, type_, step):
    rows = journal_sql(db, "SELECT seq FROM events WHERE run_id = %s AND type = %s AND step = %s"
                       % (lit(run_id), lit(type_), lit(step)))
    return int(rows[0][0])


def expect_verify_fails(s, db, run_id, name, *words):
    """Each of words is a string the FAILED line must hold, or a tuple of
    strings one of which it must hold."""
    p = cairn("verify", db=db)
    bad = [l for l in p.stdout.splitlines() if "FAILED" in l]
    has = lambda w: any(x in bad[0] for x in w) if isinstance(w, tuple) else w in bad[0]
    s.check(p.returncode == 1 and bad and run_id in bad[0] and all(has(w) for w in words),
            "%s: verify exits 1 naming the run and %s" % (name, ", ".join(map(str, words))),
            "exit %d: %s" % (p.returncode, p.stdout[-400:]))


def expect_show_refuses(s, db, run_id, name, forged=None):
    p = cairn("show", run_id, "--json", db=db)
    s.check(p.returncode == 3 and run_id in p.stderr and (forged is None or forged not in p.stdout),
            "%s: show refuses the run" % name, "exit %d: %s %s" % (p.returncode, p.stdout[-200:],
                                                                   p.stderr[-300:]))


def edit_data(db, run_id, k):
    edit(db, "UPDATE events SET data = replace(data, 'genuine', 'forged')"
             " WHERE run_id = %s AND seq = %d" % (lit(run_id), k))


def shift(run_id, after, by):
    """Statements moving the seq of every event of run_id past after by by,
    through negative seqs: (run_id, seq) is unique, and PostgreSQL checks
    that row by row."""
    return ("UPDATE events SET seq = -seq WHERE run_id = %s AND seq > %d" % (lit(run_id), after),
            "UPDATE events SET seq = -seq + %d WHERE run_id = %s AND seq < 0" % (by, lit(run_id)))


def delete(db, run_id, k):
    edit(db, "DELETE FROM events WHERE run_id = %s AND seq = %d" % (lit(run_id), k),
         *shift(run_id, k, -1))


def swap(db, run_id, k):
    """Everything but id and seq swapped between events k and k + 1."""
    edit(db, "UPDATE events SET time = o.time, type = o.type, step = o.step, attempt = o.attempt,"
             " data = o.data, hash = o.hash FROM events AS o WHERE o.run_id = events.run_id"
             " AND events.run_id = %s AND ((events.seq = %d AND o.seq = %d)"
             " OR (events.seq = %d AND o.seq = %d))" % (lit(run_id), k, k + 1, k + 1, k))


def insert(db, run_id, k):
    """A copy of event k, its data forged, inserted after it."""
    edit(db, *shift(run_id, k, 1))
    edit(db, "INSERT INTO events(run_id, seq, time, type, step, attempt, data, hash)"
             " SELECT run_id, seq + 1, time, type, step, attempt, replace(data, 'genuine', 'forged'),"
             " hash FROM events WHERE run_id = %s AND seq = %d" % (lit(run_id), k))


def edit_row(db, run_id, sql):
    edit(db, sql % lit(run_id))


# name, the event k is found by, the edit, the words verify's line must hold
# (a tuple: one of them), a forged value show must not display
EVENT_CASES = [
    ("an edited event", "step_succeeded", "a", edit_data, lambda k: ["event %d " % k], "forged"),
    ("a deleted event", "step_started", "b", delete, lambda k: ["event %d " % k], None),
    ("two events swapped", "step_succeeded", "a", swap, lambda k: ["event %d " % k], None),
    # the first event out of place: the one inserted, or (read in the order
    # of their ids) the one it displaced
    ("an inserted event", "step_succeeded", "a", insert,
     lambda k: [("event %d " % (k + 1), "event %d " % (k + 2))], "forged"),
]


def tampered(s, name, type_, step, tamper, words, forged, refused=True, indexed=False):
    db, run_id = finished_run(s, name.replace(" ", "-"))
    if indexed:
        index_everything(s, db)
    k = seq_of(db, run_id, type_, step) if type_ else 0
    tamper(db, run_id, k)
    expect_verify_fails(s, db, run_id, name, *words(k))
    if refused:
        expect_show_refuses(s, db, run_id, name, forged)


def index_everything(s, db):
    """Another run in the journal: the engine that starts it indexes every
    event before it (store_sqlite_index.c), so the run tampered with is read
    through the event index rather than found in the tail.  PostgreSQL has
    no such index: there the run is one with another's events after it."""
    p = cairn("run", write(s, "other.yaml", SIMPLE), db=db)
    s.check(p.returncode == 0, "a second run succeeds", p.stderr[-300:])
    if not PG:
        rows = int(journal_sql(db, "SELECT count(*) FROM event_index")[0][0])
        s.check(rows > 0, "the first run's events are indexed")


def edited_events(s):
    for case in EVENT_CASES:
        tampered(s, *case)
        tampered(s, case[0] + " indexed", *case[1:], indexed=True)


def edited_runs_row(s):
    """The runs row is a projection: show reads the events and is right."""
    tampered(s, "runs.status edited", None, None,
             lambda db, run_id, k: edit_row(db, run_id, "UPDATE runs SET status = 'failed' WHERE id = %s"),
             lambda k: ["status = failed", "succeeded"], None, refused=False)
    tampered(s, "runs.updated_at edited", None, None,
             lambda db, run_id, k: edit_row(db, run_id, "UPDATE runs SET updated_at = updated_at + 1"
                                            " WHERE id = %s"),
             lambda k: ["updated_at"], None, refused=False)


def deleted_rows(s):
    tampered(s, "runs row deleted", None, None,
             lambda db, run_id, k: edit_row(db, run_id, "DELETE FROM runs WHERE id = %s"),
             lambda k: ["runs row", "deleted"], None, refused=False)
    tampered(s, "every event deleted", None, None,
             lambda db, run_id, k: edit_row(db, run_id, "DELETE FROM events WHERE run_id = %s"),
             lambda k: ["event 1 "], None)


def swapped_runs(s):
    """Two runs of one workflow trade their events: each chain is under its
    own run's id, so each breaks at its first event."""
    db, one = finished_run(s, "swapped-runs")
    run, p = cairn_json("run", s.path("swapped-runs.yaml"), db=db)
    two = run["id"]
    edit(db, "UPDATE events SET run_id = 'swapping' WHERE run_id = %s" % lit(one),
         "UPDATE events SET run_id = %s WHERE run_id = %s" % (lit(one), lit(two)),
         "UPDATE events SET run_id = %s WHERE run_id = 'swapping'" % lit(two))
    p = cairn("verify", db=db)
    bad = [l for l in p.stdout.splitlines() if "FAILED" in l]
    for run_id in (one, two):
        s.check(p.returncode == 1 and any(l.startswith(run_id) and "event 1 " in l for l in bad),
                "two runs' events swapped: verify names run %s and its event 1" % run_id,
                "exit %d: %s" % (p.returncode, p.stdout[-400:]))


def wrong_key(s):
    """The key file replaced (the journal is checked under another key):
    verify refuses to read that as every chain broken, and says why."""
    db, run_id = finished_run(s, "wrong-key")
    s.check(os.path.exists(db + ".key"), "wrong key: the journal's key file is beside it")
    with open(db + ".key", "wb") as f:
        f.write(b"w" * 32)
    p = cairn("verify", db=db)
    s.check(p.returncode == 3 and "does not match" in p.stderr and " ok " not in p.stdout,
            "wrong key: verify exits 3 saying the key does not match the journal",
            "exit %d: %s %s" % (p.returncode, p.stdout[-300:], p.stderr[-300:]))


FANNED = "cairn: 1\nname: fanned\nsteps:\n" + "".join(
    "  - id: c%d\n    needs: []\n    uses: workflow\n    with: { name: leaf, inputs: { n: %d } }\n" % (i, i)
    for i in range(6))

# SIMPLE as a child taking an input, after a shell step (which the other
# children pass while it runs)
LEAF = SIMPLE.replace("name: simple\nsteps:\n", "name: leaf\ninputs:\n  n: { type: integer,"
                      " required: true }\nsteps:\n  - id: s\n    run: \"true\"\n")


def interleaved_runs(s):
    """Child runs that ran side by side, their events interleaved in the
    order they were appended: verify's one pass over them says of each run
    what `verify RUN` says of it alone, failing exactly the three edited
    (an event's data, the runs row, an event added after the last)."""
    folder = s.path("fanned")
    os.makedirs(folder)
    write(s, "fanned/leaf.yaml", LEAF)
    db = s.path("fanned.db")
    s.no_replay(db)
    p = cairn("run", write(s, "fanned/fanned.yaml", FANNED), db=db)
    s.check(p.returncode == 0, "interleaved: the runs succeed", p.stderr[-300:])
    kids = [r[0] for r in journal_sql(db, "SELECT id FROM runs WHERE workflow = 'leaf' ORDER BY id")]
    spread = journal_sql(db, "SELECT max(id) - min(id) + 1, count(*) FROM events WHERE run_id = %s"
                         % lit(kids[0]))[0]
    s.check(len(kids) == 6 and int(spread[0]) > int(spread[1]),
            "interleaved: six children whose events interleave with others'", str(spread))
    edit_data(db, kids[0], seq_of(db, kids[0], "step_succeeded", "a"))
    edit_row(db, kids[1], "UPDATE runs SET status = 'failed' WHERE id = %s")
    edit(db, "INSERT INTO events(run_id, seq, time, type, step, attempt, data, hash) SELECT run_id,"
             " seq + 1, time, type, step, attempt, data, hash FROM events WHERE run_id = %s"
             " AND seq = (SELECT max(seq) FROM events WHERE run_id = %s)"
             % (lit(kids[2]), lit(kids[2])))
    p = cairn("verify", db=db)
    lines = sorted(l for l in p.stdout.splitlines() if l.strip())
    alone = sorted(l for r in journal_sql(db, "SELECT id FROM runs")
                   for l in cairn("verify", r[0], db=db).stdout.splitlines() if l.strip())
    s.check(p.returncode == 1 and lines == alone and len(lines) == 7,
            "interleaved: the pass says of every run what verify RUN says", "\n".join(lines + alone))
    failed = sorted(l.split()[0] for l in lines if "FAILED" in l)
    s.check(failed == sorted(kids[:3]), "interleaved: exactly the three edited runs fail",
            "\n".join(lines))


def export_heads(s, db, name):
    heads = s.path(name + ".heads")
    p = cairn("verify", "--export-heads", heads, db=db)
    s.check(p.returncode == 0 and os.path.exists(heads), name + ": heads exported", p.stderr)
    with open(heads) as f:
        lines = f.read().splitlines()
    s.check(lines[0] == "cairn-heads 1" and lines[1].startswith("journal ") and
            lines[2].startswith("key_check ") and len(lines) == 4 and lines[3].startswith("run "),
            name + ": the heads file holds its header and one line for the run", "\n".join(lines))
    return heads


def expect_heads_fail(s, db, heads, run_id, name, words):
    p = cairn("verify", db=db)
    s.check(p.returncode == 0, name + ": the chain alone sees nothing", p.stdout[-300:])
    p = cairn("verify", "--heads", heads, db=db)
    bad = [l for l in p.stdout.splitlines() if "FAILED" in l]
    s.check(p.returncode == 1 and bad and bad[0].startswith(run_id) and
            all(w in bad[0] for w in words),
            "%s: verify --heads exits 1 naming the run and %s" % (name, ", ".join(words)),
            "exit %d: %s" % (p.returncode, p.stdout[-400:]))


def cut_tail(s):
    """The last three events deleted and the runs row made to agree with
    what is left: the chain and the row check out; only the heads know."""
    db, run_id = finished_run(s, "cut-tail")
    heads = export_heads(s, db, "cut-tail")
    edit(db, "DELETE FROM events WHERE run_id = %s AND seq > 3" % lit(run_id),
         "UPDATE runs SET status = 'running', updated_at = created_at WHERE id = %s" % lit(run_id))
    expect_heads_fail(s, db, heads, run_id, "tail cut off", ["event 4 ", "ends at event 3"])


def whole_run_deleted(s):
    db, run_id = finished_run(s, "run-deleted")
    heads = export_heads(s, db, "run-deleted")
    edit(db, "DELETE FROM events WHERE run_id = %s" % lit(run_id),
         "DELETE FROM runs WHERE id = %s" % lit(run_id))
    expect_heads_fail(s, db, heads, run_id, "whole run deleted", ["gone", "event 1 "])


def heads_of_another_key(s):
    db, run_id = finished_run(s, "heads-key")
    heads = export_heads(s, db, "heads-key")
    with open(heads) as f:
        text = f.read()
    lines = [l if not l.startswith("key_check ") else "key_check " + "0" * 64
             for l in text.splitlines()]
    with open(heads, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = cairn("verify", "--heads", heads, db=db)
    s.check(p.returncode == 3 and "another journal key" in p.stderr,
            "heads taken under another key are refused, exit 3", p.stderr[-300:])


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def forge_clog(path, old, new):
    """Replace old by new (same length) in the commit log record that holds
    it (engine/clog.h) and make the record's checksum good again.  True when
    a record held it."""
    import struct
    with open(path, "r+b") as f:
        log = bytearray(f.read())
        at = 4096
        while at + 32 <= len(log):
            magic, length = struct.unpack_from("<II", log, at)
            if magic != 0x32524C43:
                break
            payload = log[at + 32:at + 32 + length]
            if old in payload:
                payload = payload.replace(old, new)
                log[at + 32:at + 32 + length] = payload
                struct.pack_into("<I", log, at + 28, crc32c(bytes(log[at:at + 28]) + bytes(payload)))
                f.seek(0)
                f.write(log)
                return True
            at += 32 + length
    return False


@sqlite_only
def forged_commit_log(s):
    """An engine killed while its run waits leaves its records in the commit
    log; the journal lost the last events (as if the engine died before it
    applied them), and the log's copy of one was forged.  The next reader
    applies the log: verify must name the forged event."""
    log = s.path("clog.log")
    wf = write(s, "clog.yaml", GATED.replace("LOG", log))
    db = s.path("clog.db")
    s.no_replay(db)
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    run_id = wait_for(lambda: waiting_run(db, log), "the run to wait at its gate")
    proc.kill()
    proc.wait()
    k = seq_of(db, run_id, "approval_requested", "gate")
    edit(db, "DELETE FROM events WHERE run_id = %s AND seq >= %d" % (lit(run_id), k))
    s.check(forge_clog(db + "-clog", b"go on?", b"go no?"),
            "commit log: the approval's prompt is in a record")
    p = cairn("verify", db=db)
    bad = [l for l in p.stdout.splitlines() if "FAILED" in l]
    s.check(p.returncode == 1 and bad and run_id in bad[0] and ("event %d " % k) in bad[0],
            "commit log: verify exits 1 naming the run and the forged event %d" % k,
            "exit %d: %s %s" % (p.returncode, p.stdout[-300:], p.stderr[-300:]))


def waiting_run(db, log):
    if not os.path.exists(log):
        return None
    runs, _ = cairn_json("runs", db=db)
    if not runs:   # the step ran; its run is not in the journal's tables yet
        return None
    run, _ = cairn_json("show", runs[0]["id"], db=db)
    return run["id"] if run["status"] == "waiting" else None


def edited_definition(s):
    log = s.path("gated.log")
    wf = write(s, "gated.yaml", GATED.replace("LOG", log))
    db = s.path("gated.db")
    s.no_replay(db)
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    run_id = wait_for(lambda: waiting_run(db, log), "the run to wait at its gate")
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    p = cairn("approve", run_id, "gate", "--as", "someone-else", db=db)
    s.check(p.returncode == 0, "definition: the approval is recorded for the next resume", p.stderr)
    pwned = s.path("PWNED")
    pinned = journal_sql(db, "SELECT def_hash FROM runs WHERE id = %s" % lit(run_id))[0][0]
    # the source's bytes as text, replaced, and back (each store's words for it)
    text = "convert_from(source, 'UTF8')" if PG else "CAST(source AS TEXT)"
    back = "convert_to(%s, 'UTF8')" if PG else "CAST(%s AS BLOB)"
    edit(db, "UPDATE definitions SET source = %s WHERE hash = %s"
         % (back % ("replace(%s, %s, %s)" % (text, lit("echo last >> " + log), lit("touch " + pwned))),
            lit(pinned)))
    s.check(journal_sql(db, "SELECT count(*) FROM definitions WHERE hash = %s AND %s LIKE %s"
                        % (lit(pinned), text, lit("%touch " + pwned + "%")))[0][0] == "1",
            "definition: its source is edited in the journal")
    expect_verify_fails(s, db, run_id, "definitions.source edited", pinned)
    expect_show_refuses(s, db, run_id, "definitions.source edited")
    p = cairn("resume", run_id, db=db, timeout=60)
    s.check(p.returncode != 0 and run_id in p.stderr and pinned in p.stderr,
            "definition: resume refuses the run, naming it and the pinned hash", p.stderr[-400:])
    s.check(not os.path.exists(pwned), "definition: the edited command never ran")
    with open(log) as f:
        s.check(f.read() == "first\n", "definition: nothing after the gate ran")


def main():
    s = Suite("tamper")
    edited_events(s)
    edited_runs_row(s)
    deleted_rows(s)
    swapped_runs(s)
    interleaved_runs(s)
    wrong_key(s)
    cut_tail(s)
    whole_run_deleted(s)
    heads_of_another_key(s)
    edited_definition(s)
    forged_commit_log(s)
    s.finish()


main()
