"""The cairn command end to end: run, show, runs, journal, check, graph,
cancel, SIGTERM and resume, and the refusals of bad input."""
import json
import os
import pty
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import (CAIRN, PG, ROOT, Suite, cairn, cairn_json, journal_exists,  # noqa: E402
                        journal_sql, wait_for, write)





# three errors: a name, an unknown action, an unknown step
BAD = """cairn: 1
name: Bad Name
steps:
  - id: a
    uses: sett
    with: {}
  - id: b
    needs: [zz]
    run: true
"""


def kill_once_started(db, wf, flag):
    """Run wf and kill -9 its engine once the file flag exists."""
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(flag), "the step to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_run_show_runs_journal(s):
    wf = write(s, "hello.yaml", """cairn: 1
name: hello
inputs:
  who: { type: string, required: true }
  count: { type: integer, default: 2 }
  tags: { type: array, default: [] }
outputs:
  greeting: ${{ .steps.greet.output.stdout }}
  count: ${{ .inputs.count }}
steps:
  - id: greet
    run: echo hello ${{ .inputs.who }} | tr -d '\\n'
  - id: shape
    uses: set
    with: { n: "${{ .inputs.count }}", tags: "${{ .inputs.tags }}" }
""")
    db = s.path("a.db")
    run, p = cairn_json("run", wf, "--input", "who=ops team", "--input", "count=5",
                        "--input", 'tags=["a","b"]', db=db)
    s.check(p.returncode == 0, "run exits 0 when the run succeeds", p.stderr)
    s.check(run["status"] == "succeeded", "run --json: last line is the run")
    s.check(run["outputs"] == {"greeting": "hello ops team", "count": 5}, "outputs rendered",
            str(run["outputs"]))
    s.check(run["steps"]["shape"]["output"] == {"n": 5, "tags": ["a", "b"]},
            "--input values take the declared types", str(run["steps"]["shape"]))
    s.check("step_started" in p.stdout and "greet" in p.stdout, "a line per transition")
    shown, _ = cairn_json("show", run["id"], db=db)
    s.check(shown == run, "show --json equals run --json's last line")
    runs, _ = cairn_json("runs", db=db)
    s.check(len(runs) == 1 and runs[0]["id"] == run["id"] and runs[0]["workflow"] == "hello"
            and runs[0]["status"] == "succeeded" and "created_at" in runs[0], "runs lists it")
    events, _ = cairn_json("journal", run["id"], db=db)
    # a shell step still running after 20 ms has its process group journaled
    # (step_spawned): whether it does depends on the machine's load
    types = [e["type"] for e in events if e["type"] != "step_spawned"]
    s.check(types == ["run_created", "step_started", "step_succeeded", "step_started",
                      "step_succeeded", "run_succeeded"], "journal lists every event", str(types))
    s.check([e["seq"] for e in events] == list(range(1, len(events) + 1)),
            "journal seqs are 1..n")
    v = cairn("verify", db=db)
    s.check(v.returncode == 0 and " ok " in v.stdout, "verify passes", v.stdout + v.stderr)
    text = cairn("show", run["id"], db=db)
    s.check(text.returncode == 0 and "succeeded" in text.stdout, "show prints a summary")
    env_db = s.path("env.db")
    p = cairn("run", wf, "--input", "who=x", env={"CAIRN_DB": env_db})
    s.check(p.returncode == 0 and journal_exists(env_db), "CAIRN_DB names the journal")


def test_failures_and_exit_codes(s):
    wf = write(s, "fails.yaml", """cairn: 1
name: fails
steps:
  - id: each
    foreach: [1]
    uses: set
    with: { n: "${{ .item }}" }
  - id: boom
    run: echo broken >&2; exit 4
""")
    db = s.path("f.db")
    run, p = cairn_json("run", wf, db=db)
    s.check(p.returncode == 1, "a failed run exits 1", str(p.returncode))
    lines = p.stdout.splitlines()
    s.check(any("each[0]" in l and "step_succeeded" in l for l in lines),
            "the live view names a foreach item by its index", p.stdout)
    s.check(any("boom" in l and "step_failed" in l and "exit: " in l for l in lines),
            "the live view gives a failure's kind and message", p.stdout)
    s.check(run["status"] == "failed" and run["error"]["kind"] == "exit"
            and run["error"]["step"] == "boom", "the run's error names kind and step",
            str(run["error"]))
    s.check("broken" in run["steps"]["boom"]["error"]["message"], "stderr is in the message")


def test_bad_inputs_are_refused_before_journaling(s):
    wf = write(s, "typed.yaml", """cairn: 1
name: typed
inputs:
  host: { type: string, required: true, pattern: "^[a-z0-9.-]+$" }
  port: { type: integer, default: 22 }
steps:
  - id: a
    uses: set
    with: { h: "${{ .inputs.host }}" }
""")
    db = s.path("typed.db")
    cases = [([], "host"), (["--input", "host=BAD HOST"], "host"),
             (["--input", "host=ok", "--input", "port=eighty"], "port"),
             (["--input", "host=ok", "--input", "nope=1"], "nope")]
    for args, name in cases:
        p = cairn("run", wf, *args, db=db)
        s.check(p.returncode == 2 and name in p.stderr, "bad input refused: %s" % args,
                p.stderr)
    runs = cairn("runs", "--json", db=db)
    s.check(runs.returncode != 0 or json.loads(runs.stdout or "[]") == [],
            "nothing was journaled for refused inputs", runs.stdout)


def test_shell_injection_stays_data(s):
    canary = s.path("canary")
    wf = write(s, "alert.yaml", """cairn: 1
name: alert
inputs:
  alert: { type: object, required: true }
steps:
  - id: echo
    run: echo ${{ .inputs.alert.labels.instance }}
""")
    alert = {"labels": {"instance": "; touch %s; echo pwned" % canary}}
    alert_file = write(s, "alert.json", json.dumps({"alert": alert}))
    run, p = cairn_json("run", wf, "--inputs-file", alert_file, db=s.path("inj.db"))
    s.check(p.returncode == 0, "the alert workflow runs", p.stderr)
    s.check(not os.path.exists(canary), "an alert label holding '; touch ...' ran nothing")
    s.check(run["steps"]["echo"]["output"]["stdout"] == alert["labels"]["instance"] + "\n",
            "the label was printed as data", run["steps"]["echo"]["output"]["stdout"])


def test_inputs_file_is_bounded(s):
    wf = write(s, "takes.yaml", """cairn: 1
name: takes
inputs:
  note: { type: string, required: true }
steps:
  - id: echo
    run: echo ok
""")
    limit = 1 << 20   # CAIRN_INPUTS_FILE_MAX
    pad = '{"note": "%s"}'
    at = write(s, "at.json", pad % ("x" * (limit - len(pad % ""))))
    past = write(s, "past.json", pad % ("x" * (limit - len(pad % "") + 1)))
    db = s.path("bounded.db")
    p = cairn("--db", db, "run", wf, "--inputs-file", s.path("nosuch.json"))
    s.check(p.returncode == 2 and "cannot open" in p.stderr, "a missing inputs file: exit 2", p.stderr)
    p = cairn("--db", db, "run", wf, "--inputs-file", past)
    s.check(p.returncode == 2 and "larger than %d bytes" % limit in p.stderr,
            "an inputs file one byte past the limit: exit 2", p.stderr)
    s.check(not journal_exists(db), "the refused inputs files journaled nothing")
    p = cairn("--db", db, "run", wf, "--inputs-file", at)
    s.check(p.returncode == 0, "an inputs file of exactly the limit runs", p.stderr[-300:])


def test_check_and_graph(s):
    bad = write(s, "bad.yaml", BAD)
    p = cairn("check", bad)
    s.check(p.returncode == 2, "check exits 2 on errors (bad input)", str(p.returncode))
    lines = [l for l in p.stderr.splitlines() if "bad.yaml:" in l]
    s.check(len(lines) >= 3, "check reports every error, not only the first", p.stderr)
    s.check(all(l.startswith(bad + ":") for l in lines), "errors are file:line:col", p.stderr)
    s.check("set" in p.stderr, "an unknown action gets a did-you-mean", p.stderr)
    good = os.path.join(ROOT, "workflows", "disk-pressure.yaml")
    p = cairn("check", good)
    s.check(p.returncode == 0, "check exits 0 on a good workflow", p.stderr)
    g = cairn("graph", good, "--format", "dot")
    s.check(g.returncode == 0 and "digraph" in g.stdout and "measure" in g.stdout, "graph dot")
    p = cairn("graph", bad)
    s.check(p.returncode == 2, "graph of a file that does not load exits 2", str(p.returncode))
    m = cairn("graph", good, "--format", "mermaid")
    s.check(m.returncode == 0 and "flowchart" in m.stdout or "graph" in m.stdout, "graph mermaid")


def family(s, folder, child_name):
    """A parent starting child_name, and a child (in a .yml file) beside it."""
    os.makedirs(s.path(folder))
    parent = write(s, os.path.join(folder, "parent.yaml"), """cairn: 1
name: parent
outputs:
  said: ${{ .steps.kid.output.said }}
steps:
  - id: kid
    uses: workflow
    with: { name: %s }
""" % child_name)
    write(s, os.path.join(folder, "child.yml"), """cairn: 1
name: child
outputs:
  said: ${{ .steps.say.output.word }}
steps:
  - { id: say, uses: set, with: { word: hi } }
""")
    return parent


def test_check_and_run_load_the_workflows_beside(s):
    parent = family(s, "fam", "child")
    write(s, os.path.join("fam", "broken.yaml"), "cairn: 1\nname: broken\nsteps: 3\n")
    p = cairn("check", parent)
    s.check(p.returncode == 0 and "parent.yaml: ok" in p.stdout,
            "check finds a child in a .yml file beside", p.stdout + p.stderr)
    s.check("broken.yaml:3:8: warning: not loaded" in p.stderr,
            "a file beside that does not load is a warning, not a failure", p.stderr)
    run, r = cairn_json("run", parent, db=s.path("fam.db"))
    s.check(r.returncode == 0 and run["outputs"] == {"said": "hi"},
            "run starts the same child by name", r.stdout + r.stderr)

    parent = family(s, "typo", "chlid")
    p = cairn("check", parent)
    s.check(p.returncode == 2 and "%s:8:19: error: with.name: no workflow named 'chlid'" % parent
            in p.stderr and "did you mean 'child'?" in p.stderr,
            "a child name that names no workflow is refused at its place", p.stderr)
    r = cairn("run", parent, db=s.path("typo.db"))
    s.check(r.returncode == 2 and r.stderr == p.stderr and not journal_exists(s.path("typo.db")),
            "and run refuses it as check does, before journaling", r.stderr)

    parent = family(s, "twins", "child")
    write(s, os.path.join("twins", "child-copy.yaml"), "cairn: 1\nname: child\nsteps:\n"
          "  - { id: a, uses: set }\n")
    p = cairn("check", parent)
    s.check(p.returncode == 2 and "error: name: 'child' is also the name of" in p.stderr
            and "child.yml" in p.stderr and "child-copy.yaml" in p.stderr,
            "two workflows of the name a step starts: an error naming both files", p.stderr)


def test_sigterm_interrupts_and_resume_finishes(s):
    log = s.path("term.log")
    wf = write(s, "slow.yaml", """cairn: 1
name: slow
steps:
  - id: first
    run: echo first >> %s
  - id: long
    run: echo start >> %s; sleep 30; echo end >> %s
  - id: last
    run: echo last >> %s
""" % (log, log, log, log))
    db = s.path("term.db")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, CAIRN_GRACE_MS="300"))
    wait_for(lambda: os.path.exists(log) and "start" in open(log).read(), "the long step")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    s.check(proc.returncode != 0, "the interrupted run does not exit 0")
    runs, _ = cairn_json("runs", db=db)
    run_id = runs[0]["id"]
    events, _ = cairn_json("journal", run_id, db=db)
    s.check(any(e["type"] == "step_interrupted" and e["step"] == "long" for e in events),
            "SIGTERM journals the interrupted attempt", str([e["type"] for e in events]))
    s.check(runs[0]["status"] == "running", "the run is left running for resume")
    p = cairn("resume", db=db, env={"CAIRN_GRACE_MS": "300"})
    s.check(p.returncode == 0, "resume exits 0", p.stderr)
    shown, _ = cairn_json("show", run_id, db=db)
    s.check(shown["status"] == "succeeded", "resume finishes the run", shown["status"])
    s.check(shown["steps"]["long"]["attempts"] == 2, "the interrupted step ran again",
            str(shown["steps"]["long"]))
    s.check(open(log).read().count("first") == 1, "the finished step did not run again")


def test_cancel_from_another_process(s):
    log = s.path("cancel.log")
    wf = write(s, "cancel.yaml", """cairn: 1
name: cancellable
steps:
  - id: prep
    run: echo prepared >> %s
    compensate:
      run: echo undone >> %s
  - id: wait
    run: echo waiting >> %s; sleep 60
  - id: after
    run: echo after >> %s
""" % (log, log, log, log))
    db = s.path("cancel.db")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(log) and "waiting" in open(log).read(), "the step to start")
    run_id = wait_for(lambda: cairn_json("runs", db=db)[0], "the run to show")[0]["id"]
    c = cairn("cancel", run_id, db=db)
    s.check(c.returncode == 0 and "cancelled" in c.stdout, "cancel waits for the engine",
            c.stdout + c.stderr)
    proc.wait(timeout=30)
    s.check(proc.returncode == 1, "the cancelled run's engine exits 1")
    shown, _ = cairn_json("show", run_id, db=db)
    s.check(shown["status"] == "cancelled", "the run ends cancelled", shown["status"])
    s.check(shown["steps"]["after"]["status"] == "cancelled", "later steps never start")
    s.check("after" not in open(log).read(), "nothing ran after the cancel")
    s.check(open(log).read().count("undone") == 1, "the cancel rolled back the finished step",
            open(log).read())
    again = cairn("cancel", run_id, db=db)
    s.check(again.returncode == 2 and "already ended" in again.stderr,
            "cancelling a finished run is refused", again.stderr)


def test_cancel_with_no_engine_running(s):
    log = s.path("orphan.log")
    wf = write(s, "orphan.yaml", """cairn: 1
name: orphan
steps:
  - id: one
    run: echo one >> %s; sleep 60
  - id: two
    run: echo two >> %s
""" % (log, log))
    db = s.path("orphan.db")
    kill_once_started(db, wf, log)
    runs, _ = cairn_json("runs", db=db)
    c = cairn("cancel", runs[0]["id"], db=db)
    s.check(c.returncode == 0, "cancel of an orphaned run carries it out", c.stderr)
    shown, _ = cairn_json("show", runs[0]["id"], db=db)
    s.check(shown["status"] == "cancelled", "the orphaned run ends cancelled", shown["status"])
    s.check("two" not in open(log).read(), "no step started after the cancel")


def run_in_background(wf, db, flag):
    """Run wf on an engine of its own; returns it and the run's id once the
    file flag exists (its first step made it)."""
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(flag), "the first step to start")
    return proc, wait_for(lambda: cairn_json("runs", db=db)[0], "the run to show")[0]["id"]


def test_pause_holds_new_steps_and_survives_a_restart(s):
    go, started, log = s.path("go"), s.path("started"), s.path("pause.log")
    wf = write(s, "pause.yaml", """cairn: 1
name: pausable
steps:
  - id: first
    run: touch %s; for i in $(seq 1 600); do [ -e %s ] && break; sleep 0.05; done; echo first >> %s
  - id: second
    run: echo second >> %s
""" % (started, go, log, log))
    db = s.path("pause.db")
    proc, run_id = run_in_background(wf, db, started)
    p = cairn("pause", run_id, db=db)
    s.check(p.returncode == 0 and "paused" in p.stdout, "pause is taken by the running engine",
            p.stdout + p.stderr)
    open(go, "w").close()

    def first_done():
        events, _ = cairn_json("journal", run_id, db=db)
        return any(e["type"] == "step_succeeded" and e["step"] == "first" for e in events)
    wait_for(first_done, "the first step to finish")
    events, _ = cairn_json("journal", run_id, db=db)
    s.check(not any(e["step"] == "second" for e in events),
            "a paused run starts no new step", str([e["type"] for e in events]))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    shown, _ = cairn_json("show", run_id, db=db)
    s.check(shown["paused"] is True, "the pause is journaled and survives the engine")
    p = cairn("unpause", run_id, db=db)
    s.check(p.returncode == 0 and "recorded" in p.stdout, "unpause with no engine is recorded",
            p.stdout + p.stderr)
    p = cairn("resume", db=db)
    shown, _ = cairn_json("show", run_id, db=db)
    s.check(shown["status"] == "succeeded" and shown["paused"] is False,
            "resume picks the unpause up and finishes", str(shown["status"]))
    s.check(open(log).read() == "first\nsecond\n", "each step ran once", open(log).read())


def status_everywhere(db, run_id):
    """The run's status as runs (text, JSON) and show (text, JSON) give it."""
    listed = cairn("runs", db=db).stdout.split()
    row = listed[listed.index(run_id):][:3]
    runs, _ = cairn_json("runs", db=db)
    shown, _ = cairn_json("show", run_id, db=db)
    text = re.search(r"^status +(\S+)", cairn("show", run_id, db=db).stdout, re.M)
    return [row[2] if len(row) == 3 else None, runs[0]["status"], shown["status"],
            text.group(1) if text else None]


def test_paused_reads_paused_until_unpaused(s):
    first, go = s.path("first2"), s.path("go2")
    second, release = s.path("second2"), s.path("release2")
    wf = write(s, "pause2.yaml", """cairn: 1
name: pausable2
steps:
  - id: first
    run: touch %s; for i in $(seq 1 600); do [ -e %s ] && break; sleep 0.05; done
  - id: second
    run: touch %s; for i in $(seq 1 600); do [ -e %s ] && break; sleep 0.05; done
""" % (first, go, second, release))
    db = s.path("pause2.db")
    proc, run_id = run_in_background(wf, db, first)
    p = cairn("pause", run_id, db=db)
    s.check(p.returncode == 0, "pause is taken", p.stdout + p.stderr)
    got = status_everywhere(db, run_id)
    s.check(got == ["paused"] * 4, "a paused run reads paused in runs and show, text and JSON",
            str(got))
    p = cairn("verify", run_id, db=db)
    s.check(p.returncode == 0, "verify agrees with the runs table while paused", p.stdout + p.stderr)
    p = cairn("unpause", run_id, db=db)
    s.check(p.returncode == 0, "unpause is taken", p.stdout + p.stderr)
    got = status_everywhere(db, run_id)
    s.check(got == ["running"] * 4, "unpaused, it reads running again", str(got))
    open(go, "w").close()
    wait_for(lambda: os.path.exists(second), "the second step to start")
    p = cairn("verify", run_id, db=db)
    s.check(p.returncode == 0, "verify agrees after the unpause", p.stdout + p.stderr)
    open(release, "w").close()
    proc.wait(timeout=60)
    s.check(proc.returncode == 0, "the run then finishes")


def test_journal_refusals(s):
    notdb = write(s, "notes.txt", "not a database at all\n")
    if PG:   # a database that holds another program's tables
        cairn("runs", db=notdb)
        journal_sql(notdb, "CREATE TABLE notes(line text)")
    wf = os.path.join(ROOT, "workflows", "disk-pressure.yaml")
    p = cairn("run", wf, "--input", "spool=/nonexistent", db=notdb)
    s.check(p.returncode == 3 and "not a Cairn journal" in p.stderr, "a foreign file is refused",
            p.stderr)
    s.check(open(notdb).read() == "not a database at all\n", "and left untouched")
    p = cairn("show", "nope", db=s.path("missing.db"))
    s.check(p.returncode == 3 and "no journal" in p.stderr, "show on a missing journal", p.stderr)


def test_exit_code_table(s):
    """0 ok, 1 a run failed or was cancelled, 2 bad usage, input or not found,
    3 the journal cannot be used: the same for every command."""
    missing = s.path("nowhere.db")
    per_run = [["show", "r"], ["journal", "r"], ["cancel", "r"], ["pause", "r"],
               ["unpause", "r"], ["approve", "r", "s", "--as", "a"],
               ["reject", "r", "s", "--as", "a"], ["verify", "r"], ["timeline", "r"],
               ["export", "r"]]
    for args in per_run + [["runs"], ["approvals"], ["verify"], ["resume"], ["resume", "r"]]:
        p = cairn(*args, db=missing)
        s.check(p.returncode == 3 and "no journal" in p.stderr,
                "%s on a missing journal exits 3" % args[0], "exit %d: %s" % (p.returncode, p.stderr))
    s.check(not journal_exists(missing), "no command but run makes a journal")
    wf = write(s, "ok.yaml", "cairn: 1\nname: ok\nsteps:\n  - id: a\n    uses: set\n    with: {}\n")
    db = s.path("codes.db")
    p = cairn("run", wf, db=db)
    s.check(p.returncode == 0, "a run that succeeds exits 0", p.stderr)
    for args in per_run + [["resume", "r"]]:
        p = cairn(*(a.replace("r", "no-such-run") if a == "r" else a for a in args), db=db)
        s.check(p.returncode == 2, "%s of a run that is not there exits 2" % args[0],
                "exit %d: %s" % (p.returncode, p.stderr))
    p = cairn("secret", "rm", "NO_SUCH", db=db)
    s.check(p.returncode == 2, "secret rm of a secret that is not there exits 2",
            "exit %d: %s" % (p.returncode, p.stderr))
    for args in (["no-such-command"], ["runs", "--bogus"], ["run"]):
        p = cairn(*args, db=db)
        s.check(p.returncode == 2, "bad usage exits 2: %s" % args, str(p.returncode))


def test_resume_exits_1_when_a_run_it_finished_failed(s):
    mark = s.path("mark")
    wf = write(s, "second.yaml", """cairn: 1
name: second-time-fails
steps:
  - id: one
    run: if [ -e %s ]; then exit 3; fi; touch %s; sleep 60
""" % (mark, mark))
    db = s.path("resume-fail.db")
    kill_once_started(db, wf, mark)
    p = cairn("resume", db=db)
    runs, _ = cairn_json("runs", db=db)
    s.check(runs[0]["status"] == "failed", "the resumed run fails", runs[0]["status"])
    s.check(p.returncode == 1, "resume exits 1 when a run it finished failed",
            "exit %d: %s" % (p.returncode, p.stderr))
    p = cairn("resume", db=db)
    s.check(p.returncode == 0, "resume with nothing to do exits 0", p.stderr)


def key_check(db):
    rows = journal_sql(db, "SELECT value FROM meta WHERE key = 'key_check'")
    return rows[0][0] if rows else None


def test_a_wrong_journal_key_is_named(s):
    wf = write(s, "keyed.yaml", "cairn: 1\nname: keyed\nsteps:\n  - id: a\n    uses: set\n"
                                "    with: {}\n")
    db = s.path("keyed.db")
    run, p = cairn_json("run", wf, db=db)
    s.check(p.returncode == 0 and key_check(db), "a new journal keeps a key check value", p.stderr)
    wrong = {"CAIRN_JOURNAL_KEY": "ab" * 32}
    for args in (["show", run["id"]], ["verify"], ["timeline", run["id"]], ["export", run["id"]],
                 ["resume"], ["run", wf]):
        p = cairn(*args, db=db, env=wrong)
        s.check(p.returncode == 3 and "the journal key does not match this journal" in p.stderr
                and "CAIRN_JOURNAL_KEY" in p.stderr and "edited" not in p.stdout + p.stderr,
                "%s with another key: the key does not match" % args[0],
                "exit %d: %s %s" % (p.returncode, p.stdout, p.stderr))
    os.rename(db + ".key", db + ".key.real")
    with open(db + ".key", "wb") as f:
        f.write(b"k" * 32)
    os.chmod(db + ".key", 0o600)
    p = cairn("verify", db=db)
    s.check(p.returncode == 3 and "does not match this journal (the key is %s.key)" % db in p.stderr,
            "a wrong key file is named", p.stderr)
    os.rename(db + ".key.real", db + ".key")
    # a journal made before the check value: recorded by the first writer,
    # and never from a wrong key
    journal_sql(db, "DELETE FROM meta WHERE key = 'key_check'")
    p = cairn("resume", db=db, env=wrong)
    s.check(p.returncode == 3 and "does not match this journal" in p.stderr and not key_check(db),
            "an older journal: a wrong key is refused and not recorded", p.stderr)
    p = cairn("resume", db=db)
    s.check(p.returncode == 0 and key_check(db), "an older journal: the right key is recorded",
            p.stderr)
    p = cairn("verify", db=db)
    s.check(p.returncode == 0, "and verify passes with it", p.stdout + p.stderr)


def test_an_unknown_sync_mode_is_refused(s):
    wf = write(s, "sync.yaml", "cairn: 1\nname: sync\nsteps:\n  - id: a\n    uses: set\n"
                               "    with: {}\n")
    db = s.path("sync.db")
    p = cairn("run", wf, db=db, env={"CAIRN_SYNC": "off"})
    s.check(p.returncode == 2 and "CAIRN_SYNC" in p.stderr and "'off'" in p.stderr,
            "CAIRN_SYNC=off is refused", "exit %d: %s" % (p.returncode, p.stderr))
    s.check(not journal_exists(db), "and nothing was written")
    for mode in ("normal", "full", ""):
        p = cairn("run", wf, db=db, env={"CAIRN_SYNC": mode})
        s.check(p.returncode == 0, "CAIRN_SYNC=%r is accepted" % mode, p.stderr)


def test_run_reports_a_bad_file_as_check_does(s):
    bad = write(s, "carets.yaml", BAD)
    db = s.path("carets.db")
    c, r = cairn("check", bad), cairn("run", bad, db=db)
    s.check(r.returncode == 2 and r.stderr == c.stderr, "run prints check's errors, lines and carets",
            "run:\n%s\ncheck:\n%s" % (r.stderr, c.stderr))
    s.check("^" in r.stderr and "uses: sett" in r.stderr, "with the source line and a caret",
            r.stderr)
    s.check(not journal_exists(db), "and writes nothing")


def on_a_terminal(args, env):
    """Run cairn with stdout on a pseudo-terminal; returns what it printed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([CAIRN] + args, stdout=slave, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, **env))
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:   # EIO: the other side closed
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=60)
    os.close(master)
    return out.decode(errors="replace")


def test_no_color(s):
    wf = write(s, "colour.yaml", "cairn: 1\nname: colour\nsteps:\n  - id: a\n    uses: set\n"
                                 "    with: {}\n")
    db = s.path("colour.db")
    sgr = re.compile(r"\033\[[0-9;]*m")   # colour; the terminal view also erases its status line
    step = re.compile(r"(^|\033\[K)  1/1\s+(\033\[[0-9;]*m)?ok\b", re.M)
    out = on_a_terminal(["--db", db, "run", wf], {"NO_COLOR": ""})
    s.check("\033[32m" in out and step.search(out),
            "on a terminal the run is coloured (NO_COLOR empty counts as unset)", repr(out))
    for value in ("1", "0", "no"):
        out = on_a_terminal(["--db", db, "run", wf], {"NO_COLOR": value})
        s.check(not sgr.search(out) and step.search(out),
                "NO_COLOR=%s turns colour off" % value, repr(out))


RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TIME_KEYS = ("created_at", "updated_at", "time", "deadline", "at")


def times_in(v, where=""):
    """Every (path, value) under a time key in v; a journal event's data is
    the event as journaled and is left out."""
    found = []
    if isinstance(v, dict):
        for k, x in v.items():
            if k in TIME_KEYS and not isinstance(x, (dict, list)):
                found.append((where + "." + k, x))
            elif k != "data":
                found += times_in(x, where + "." + k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            found += times_in(x, "%s[%d]" % (where, i))
    return found


def test_one_time_format(s):
    wf = write(s, "timed.yaml", """cairn: 1
name: timed
steps:
  - id: first
    uses: set
    with: {}
  - id: gate
    uses: approval
    with: { prompt: "Go?", timeout: 1h }
""")
    db = s.path("timed.db")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pending = wait_for(lambda: json.loads(cairn("approvals", "--json", db=db).stdout or "[]"),
                       "the approval")
    run_id = pending[0]["run"]
    outputs = {"approvals": pending, "runs": cairn_json("runs", db=db)[0],
               "show": cairn_json("show", run_id, db=db)[0],
               "journal": cairn_json("journal", run_id, db=db)[0]}
    for name, v in outputs.items():
        found = times_in(v)
        bad = [(k, x) for k, x in found if x is not None and not RFC3339_MS.match(str(x))]
        s.check(found and not bad, "%s --json: every time is RFC 3339, UTC, milliseconds" % name,
                "%s %s" % (bad, found))
    s.check(RFC3339_MS.match(str(pending[0]["deadline"])), "an approval's deadline is a time",
            str(pending[0]))
    s.check(outputs["show"]["steps"]["gate"]["approval"]["deadline"] == pending[0]["deadline"],
            "show gives the same deadline", str(outputs["show"]["steps"]["gate"]))
    text = cairn("journal", run_id, db=db).stdout.splitlines()
    hashes = [e["hash"] for e in outputs["journal"]]
    s.check(len(text) == len(hashes) and all(h in l for h, l in zip(hashes, text)),
            "journal text shows each event's hash", "\n".join(text))
    cairn("cancel", run_id, db=db)
    proc.wait(timeout=30)


def main():
    s = Suite("cli")
    for t in [test_inputs_file_is_bounded, test_run_show_runs_journal, test_failures_and_exit_codes,
              test_bad_inputs_are_refused_before_journaling, test_shell_injection_stays_data,
              test_check_and_graph, test_check_and_run_load_the_workflows_beside,
              test_sigterm_interrupts_and_resume_finishes,
              test_cancel_from_another_process, test_cancel_with_no_engine_running,
              test_pause_holds_new_steps_and_survives_a_restart,
              test_paused_reads_paused_until_unpaused,
              test_journal_refusals, test_exit_code_table,
              test_resume_exits_1_when_a_run_it_finished_failed,
              test_a_wrong_journal_key_is_named, test_an_unknown_sync_mode_is_refused,
              test_run_reports_a_bad_file_as_check_does, test_no_color,
              test_one_time_format]:
        try:
            t(s)
        except Exception as e:  # a crash in one test is a failure, not the end
            s.check(False, t.__name__, repr(e))
    s.finish()


if __name__ == "__main__":
    main()
