"""Tampering with the journal behind the engine's back is evident.

Each case runs a workflow, then edits the SQLite journal directly, as
someone with write access to the file could: an event's data edited, an
event deleted, two events swapped, one inserted (in a run still in the
unindexed tail and in one the event index covers), runs.status edited,
definitions.source edited, a run's row or all its events deleted.  `cairn
verify` must exit 1 naming the run and the event (or the column, or the
hashes); `show` must refuse a run whose events or definition do not check
out, rather than display forged values; `resume` must refuse to run an
edited definition.  What a chain cannot see (events cut off a run's end,
the runs row made to agree; a whole run deleted) `verify --heads` must
catch against heads exported before, naming the run and the first event
missing.  And an event forged in the commit log (its checksum made good
again, as anyone can) is caught when a reader applies the log."""
import os
import signal
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, Suite, cairn, cairn_json, wait_for, write  # noqa: E402

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


def seq_of(db, run_id, type_, step):
    con = sqlite3.connect(db)
    row = con.execute("SELECT seq FROM events WHERE run_id = ? AND type = ? AND step = ?",
                      (run_id, type_, step)).fetchone()
    con.close()
    return row[0]


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


COLUMNS = "time, type, step, attempt, data, hash"


def event_row(con, run_id, seq):
    return con.execute("SELECT %s FROM events WHERE run_id = ? AND seq = ?" % COLUMNS,
                       (run_id, seq)).fetchone()


def edit_data(con, run_id, k):
    con.execute("UPDATE events SET data = replace(data, 'genuine', 'forged')"
                " WHERE run_id = ? AND seq = ?", (run_id, k))


def delete(con, run_id, k):
    con.execute("DELETE FROM events WHERE run_id = ? AND seq = ?", (run_id, k))
    con.execute("UPDATE events SET seq = seq - 1 WHERE run_id = ? AND seq > ?", (run_id, k))


def swap(con, run_id, k):
    one, two = event_row(con, run_id, k), event_row(con, run_id, k + 1)
    sets = ", ".join("%s = ?" % c.strip() for c in COLUMNS.split(","))
    for row, seq in ((two, k), (one, k + 1)):
        con.execute("UPDATE events SET %s WHERE run_id = ? AND seq = ?" % sets, row + (run_id, seq))


def insert(con, run_id, k):
    row = event_row(con, run_id, k)
    con.execute("UPDATE events SET seq = seq + 1 WHERE run_id = ? AND seq > ?", (run_id, k))
    con.execute("INSERT INTO events(run_id, seq, %s) VALUES (?,?,?,?,?,?,?,?)" % COLUMNS,
                (run_id, k + 1) + row[:4] + (row[4].replace("genuine", "forged"), row[5]))


def edit_row(con, run_id, sql):
    con.execute(sql, (run_id,))


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
    con = sqlite3.connect(db)
    tamper(con, run_id, k)
    con.commit()
    con.close()
    expect_verify_fails(s, db, run_id, name, *words(k))
    if refused:
        expect_show_refuses(s, db, run_id, name, forged)


def index_everything(s, db):
    """Another run in the journal: the engine that starts it indexes every
    event before it (store_sqlite_index.c), so the run tampered with is read
    through the event index rather than found in the tail."""
    p = cairn("run", write(s, "other.yaml", SIMPLE), db=db)
    s.check(p.returncode == 0, "a second run succeeds", p.stderr[-300:])
    con = sqlite3.connect(db)
    rows = con.execute("SELECT count(*) FROM event_index").fetchone()[0]
    con.close()
    s.check(rows > 0, "the first run's events are indexed")


def edited_events(s):
    for case in EVENT_CASES:
        tampered(s, *case)
        tampered(s, case[0] + " indexed", *case[1:], indexed=True)


def edited_runs_row(s):
    """The runs row is a projection: show reads the events and is right."""
    tampered(s, "runs.status edited", None, None,
             lambda con, run_id, k: edit_row(con, run_id, "UPDATE runs SET status = 'failed' WHERE id = ?"),
             lambda k: ["status = failed", "succeeded"], None, refused=False)
    tampered(s, "runs.updated_at edited", None, None,
             lambda con, run_id, k: edit_row(con, run_id, "UPDATE runs SET updated_at = updated_at + 1"
                                             " WHERE id = ?"),
             lambda k: ["updated_at"], None, refused=False)


def deleted_rows(s):
    tampered(s, "runs row deleted", None, None,
             lambda con, run_id, k: edit_row(con, run_id, "DELETE FROM runs WHERE id = ?"),
             lambda k: ["runs row", "deleted"], None, refused=False)
    tampered(s, "every event deleted", None, None,
             lambda con, run_id, k: edit_row(con, run_id, "DELETE FROM events WHERE run_id = ?"),
             lambda k: ["event 1 "], None)


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
    con = sqlite3.connect(db)
    con.execute("DELETE FROM events WHERE run_id = ? AND seq > 3", (run_id,))
    con.execute("UPDATE runs SET status = 'running', updated_at = created_at WHERE id = ?", (run_id,))
    con.commit()
    con.close()
    expect_heads_fail(s, db, heads, run_id, "tail cut off", ["event 4 ", "ends at event 3"])


def whole_run_deleted(s):
    db, run_id = finished_run(s, "run-deleted")
    heads = export_heads(s, db, "run-deleted")
    con = sqlite3.connect(db)
    con.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
    con.execute("DELETE FROM runs WHERE id = ?", (run_id,))
    con.commit()
    con.close()
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
    con = sqlite3.connect(db)
    con.execute("DELETE FROM events WHERE run_id = ? AND seq >= ?", (run_id, k))
    con.commit()
    con.close()
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
    con = sqlite3.connect(db)
    pinned = con.execute("SELECT def_hash FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    src = con.execute("SELECT source FROM definitions WHERE hash = ?", (pinned,)).fetchone()[0]
    src = src.decode() if isinstance(src, bytes) else src
    con.execute("UPDATE definitions SET source = ? WHERE hash = ?",
                (src.replace("echo last >> " + log, "touch " + pwned), pinned))
    con.commit()
    con.close()
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
    cut_tail(s)
    whole_run_deleted(s)
    heads_of_another_key(s)
    edited_definition(s)
    forged_commit_log(s)
    s.finish()


main()
