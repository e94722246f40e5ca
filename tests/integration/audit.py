"""A run told, carried out and brought back: timeline, export, import.

One run with a shell step, a step that fails once and is retried, and an
approval decided from another process with a comment.  `timeline` must
tell each (steps in the order they began, the failed attempt and the retry,
who approved, when and their comment), with a bar and colour on a terminal,
no colour under NO_COLOR, neither through a pipe.  `export` (jsonl and
json) must carry every event with its hash, the pinned definition's exact
source and the chain head; `import` must take it into another journal of
the same key, where `verify --heads` checks it and `timeline` tells the
same story.  An export edited, cut short, of another key, with its
definition edited, or imported twice is refused, exit 2, and the target
journal's files are not touched."""
import hashlib
import json
import os
import pty
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import (CAIRN, PG, Suite, cairn, cairn_json, journal_exists,  # noqa: E402
                        journal_sql, wait_for, write)

FLOW = """cairn: 1
name: audited
steps:
  - id: build
    run: echo built
  - id: flaky
    run: test -f FLAG || { touch FLAG; echo first try fails >&2; exit 1; }
    retry: { max_attempts: 3, backoff: constant, delay: 50ms }
  - id: gate
    uses: approval
    with: { prompt: ship it?, approvers: [alice] }
  - id: ship
    run: echo shipped
  - id: fan
    foreach: [1, 2, 3]
    uses: set
    with: { v: "${{ .item }}" }
"""


def waiting(db):
    p = cairn("approvals", "--json", db=db)
    if p.returncode != 0 or not p.stdout.strip():
        return None
    pending = json.loads(p.stdout)
    return pending[0]["run"] if pending else None


def finished_run(s):
    db = s.path("a.db")
    src = FLOW.replace("FLAG", s.path("flag"))
    wf = write(s, "audited.yaml", src)
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    run_id = wait_for(lambda: waiting(db), "the run to wait for its approval")
    p = cairn("approve", run_id, "gate", "--as", "alice", "--comment", "canary is green", db=db)
    s.check(p.returncode == 0, "the approval is recorded", p.stderr)
    _, err = proc.communicate(timeout=60)
    s.check(proc.returncode == 0, "the run succeeds", err[-300:])
    return db, run_id, src


def on_tty(args, env=None):
    """cairn's stdout on a pseudo-terminal."""
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    master, slave = pty.openpty()
    p = subprocess.Popen([CAIRN] + args, stdout=slave, stderr=subprocess.PIPE, env=e)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait()
    os.close(master)
    return out.decode()


def timeline_piped(s, db, run_id):
    p = cairn("timeline", run_id, db=db)
    out = p.stdout
    s.check(p.returncode == 0, "timeline exits 0", p.stderr)
    steps = [l.split()[0] for l in out.splitlines() if re.match(r"^  [a-z]", l)]
    s.check(steps == ["build", "flaky", "gate", "ship", "fan"],
            "timeline: the steps in the order they began", out)
    s.check(re.search(r"^  fan +succeeded .* 3 items, 0 failed$", out, re.M) is not None,
            "timeline: a foreach's items", out)
    s.check(re.search(r"^run %s: audited, succeeded, started \d{4}-\d\d-\d\dT.*took " % run_id,
                      out, re.M) is not None, "timeline: the run's line", out)
    s.check(re.search(r"^  flaky +succeeded .* 2 attempts$", out, re.M) and
            "attempt 1 failed after" in out and "retry at +" in out and
            "attempt 2 succeeded after" in out, "timeline: the failed attempt and its retry", out)
    s.check(re.search(r'approved by alice at \d{4}-\d\d-\d\dT[\d:.]+Z \(\+[\d.]+s\): "canary is green"',
                      out) is not None and "approval requested" in out and "ship it?" in out,
            "timeline: who approved, when, and the comment", out)
    s.check("\033" not in out and "\u2588" not in out, "timeline through a pipe: no colour, no bar")
    return out


def timeline_tty(s, db, run_id):
    out = on_tty(["--db", db, "timeline", run_id])
    bars = [l for l in out.splitlines() if "\u2588" in l]
    s.check(len(bars) == 5, "timeline on a terminal: a bar per step", out)
    s.check("\033[32m" in out, "timeline on a terminal: colour", out)
    out = on_tty(["--db", db, "timeline", run_id], {"NO_COLOR": "1"})
    s.check("\u2588" in out and "\033[" not in out, "timeline under NO_COLOR: the bars, no colour",
            out)


def export(s, db, run_id, src):
    p = cairn("export", run_id, db=db)
    s.check(p.returncode == 0, "export exits 0", p.stderr)
    lines = p.stdout.splitlines()
    head = json.loads(lines[0])
    events = [json.loads(l) for l in lines[1:]]
    journal, _ = cairn_json("journal", run_id, db=db)
    s.check(head["definition"]["source"] == src and head["definition"]["name"] == "audited" and
            head["definition"]["hash"] == hashlib.sha256(src.encode()).hexdigest(),
            "export: the pinned definition's exact source and hash")
    s.check([(e["seq"], e["type"], e["hash"]) for e in events] ==
            [(e["seq"], e["type"], e["hash"]) for e in journal],
            "export: every event, with its hash, as the journal holds it")
    s.check(head["heads"] == [{"run": run_id, "events": len(events), "head": events[-1]["hash"]}],
            "export: the run's chain head", str(head["heads"]))
    s.check(re.fullmatch(r"[0-9a-f]{64}", head["key_check"]) is not None and head["run"] == run_id,
            "export: the key check value and the run")
    whole = cairn("export", run_id, "--format", "json", db=db)
    obj = json.loads(whole.stdout)
    s.check(obj["events"] == events and {k: obj[k] for k in head} == head,
            "export --format json: the same header and events in one object")
    path = write(s, "run.jsonl", p.stdout)
    write(s, "run.json", whole.stdout)
    return path, p.stdout


def fingerprint(db):
    """The journal's bytes, or in PostgreSQL its rows."""
    if PG:
        return rows(db) if journal_exists(db) else None
    out = {}
    for suffix in ("", "-wal", "-shm", "-clog"):
        if os.path.exists(db + suffix):
            with open(db + suffix, "rb") as f:
                out[suffix] = hashlib.sha256(f.read()).hexdigest()
    return out


def import_good(s, db, run_id, path, story):
    other = s.path("b.db")
    shutil.copy(db + ".key", other + ".key")
    p = cairn("import", path, db=other)
    s.check(p.returncode == 0 and run_id in p.stdout, "import into a journal of the same key", p.stderr)
    p = cairn("verify", "--heads", path, db=other)
    s.check(p.returncode == 0 and (run_id + " ok ") in p.stdout,
            "verify --heads checks the imported run against the export", p.stdout + p.stderr)
    p = cairn("timeline", run_id, db=other)
    s.check(p.stdout == story, "the imported run tells the same timeline", p.stdout)
    runs, _ = cairn_json("runs", db=other)
    s.check([r["status"] for r in runs] == ["succeeded"], "the imported run is listed, succeeded")
    third = s.path("c.db")
    shutil.copy(db + ".key", third + ".key")
    p = cairn("import", s.path("run.json"), db=third)
    s.check(p.returncode == 0, "import of the json format", p.stderr)
    before = rows(other)
    p = cairn("import", path, db=other)
    s.check(p.returncode == 2 and "already" in p.stderr and rows(other) == before,
            "a second import of the run is refused, no row written", p.stderr)


def rows(db):
    return [journal_sql(db, "SELECT * FROM %s ORDER BY 1" % t)
            for t in ("events", "runs", "definitions", "meta")]


def refused(s, name, text, words, key_from=None):
    """Import of text into a journal of the export's key (or key_from's) is
    refused, exit 2, naming words, and the journal's files are untouched."""
    path = write(s, name.replace(" ", "-") + ".jsonl", text)
    target = s.path("refuse.db")
    before = fingerprint(target)
    env = {"CAIRN_JOURNAL_KEY": key_from} if key_from else None
    p = cairn("import", path, db=target, env=env)
    s.check(p.returncode == 2 and all(w in p.stderr for w in words) and fingerprint(target) == before,
            "%s: import refuses it, exit 2, naming %s; nothing written" % (name, ", ".join(words)),
            "exit %d: %s" % (p.returncode, p.stderr[-400:]))


def bad_exports(s, db, run_id, text):
    target = s.path("refuse.db")
    shutil.copy(db + ".key", target + ".key")
    p = cairn("run", write(s, "other.yaml", "cairn: 1\nname: other\nsteps:\n  - id: a\n    uses: set\n"
                          "    with: { v: 1 }\n"), db=target)
    s.check(p.returncode == 0, "the target journal has a run of its own", p.stderr)
    lines = text.splitlines(True)
    decided = next(i for i, l in enumerate(lines) if "approval_decided" in l)
    seq = json.loads(lines[decided])["seq"]
    refused(s, "an edited event", text.replace("canary is green", "canary is red!!"),
            ["event %d " % seq, "edited"])
    refused(s, "an export cut at a line", "".join(lines[:decided]),
            ["event %d is missing" % seq, "cut short"])
    refused(s, "an export cut mid-line", text[:len(text) - 40], [":%d:" % len(lines), "not JSON"])
    head = json.loads(lines[0])
    head["definition"]["source"] = head["definition"]["source"].replace("echo shipped", "echo pwned!")
    refused(s, "an edited definition", json.dumps(head) + "\n" + "".join(lines[1:]),
            ["definition hashes to", "edited"])
    refused(s, "another key", text, ["another journal key"], key_from="ab" * 32)
    bad = write(s, "bad.heads", "cairn-heads 1\nrun %s seven %s\n" % (run_id, "0" * 64))
    p = cairn("verify", "--heads", bad, db=db)
    s.check(p.returncode == 2 and (bad + ":2:1:") in p.stderr,
            "verify --heads of a malformed heads file: exit 2 naming its line", p.stderr)
    nokey = s.path("nokey.db")
    p = cairn("import", s.path("run.jsonl"), db=nokey)
    s.check(p.returncode == 3 and not journal_exists(nokey),
            "import with no journal key is refused, exit 3, and makes no journal", p.stderr)


def main():
    s = Suite("audit")
    db, run_id, src = finished_run(s)
    story = timeline_piped(s, db, run_id)
    timeline_tty(s, db, run_id)
    path, text = export(s, db, run_id, src)
    import_good(s, db, run_id, path, story)
    bad_exports(s, db, run_id, text)
    s.finish()


main()
