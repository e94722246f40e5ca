"""`cairn fork RUN --from STEP`: a new run that runs STEP and what needs it
for real and carries the recorded results of the rest.  Every shell step
appends a line to a log, so "not run again" is read from outside the
journal; the journal is read for the links both ways and for the carried
results' origin events."""
import hashlib
import hmac
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, Suite, cairn, cairn_json, sqlite_only, wait_for, write  # noqa: E402


def chain(s, name, body=None):
    """A folder with a workflow: prep -> build -> ship, and side -> after_side
    beside them.  build fails until the file `ok` exists, once after_side
    has ended (so a failing run has always run the other branch)."""
    d = s.path(name)
    os.makedirs(d)
    wf = write(s, os.path.join(name, "chain.yaml"), body or """cairn: 1
name: chain
inputs:
  who: {{ type: string, default: first }}
  n: {{ type: integer, default: 1 }}
steps:
  - id: prep
    run: echo prep >> {d}/log; printf prepared
  - id: side
    needs: []
    run: echo side >> {d}/log
  - id: build
    needs: [prep]
    run: |
      for i in $(seq 1000); do [ -e {d}/after_done ] && break; sleep 0.01; done
      echo "build ${{{{ .inputs.who }}}} ${{{{ .inputs.n }}}}" >> {d}/log; test -e {d}/ok
  - id: ship
    needs: [build]
    run: echo "ship ${{{{ .steps.prep.output.stdout }}}}" >> {d}/log
  - id: after_side
    needs: [side]
    run: echo after_side >> {d}/log; touch {d}/after_done
""".format(d=d))
    return d, wf, os.path.join(d, "j.db")


def log(d):
    p = os.path.join(d, "log")
    return open(p).read().splitlines() if os.path.exists(p) else []


def show(db, run_id):
    return cairn_json("show", run_id, db=db)[0]


def run_ids(db):
    return [r["id"] for r in cairn_json("runs", db=db)[0]]


def first_run(s, d, wf, db, want):
    p = cairn("run", wf, db=db)
    s.check(p.returncode == want, "the first run exits %d" % want, p.stderr[-300:])
    return run_ids(db)[0]


def fork(db, run_id, step, *more):
    p = cairn("fork", run_id, "--from", step, "--json", *more, db=db, timeout=120)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    return p, (json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None)


def carried(run):
    return sorted(k for k, v in run["steps"].items() if "carried" in v)


def test_fork_of_a_failed_run_from_the_failed_step(s):
    d, wf, db = chain(s, "failed")
    old = first_run(s, d, wf, db, 1)
    s.check(sorted(log(d)) == sorted(["prep", "side", "build first 1", "after_side"]),
            "the first run fails at build", str(log(d)))
    open(os.path.join(d, "ok"), "w").close()
    before = len(log(d))
    f = write(s, "failed/in.json", '{"n": 5, "who": "not this"}')
    p, new = fork(db, old, "build", "--inputs-file", f, "--input", "who=second")
    s.check(p.returncode == 0 and new and new["status"] == "succeeded",
            "the fork from the failed step ends succeeded", p.stderr[-400:])
    again = log(d)[before:]
    s.check(sorted(again) == ["build second 5", "ship prepared"],
            "only build and what needs it ran again; ship read prep's carried output", str(again))
    s.check(carried(new) == ["after_side", "prep", "side"], "the other steps are carried",
            str(carried(new)))
    s.check(new["inputs"] == {"who": "second", "n": 5}, "new inputs replace the old ones",
            str(new["inputs"]))


def test_fork_from_the_middle_of_a_succeeded_run(s):
    d, wf, db = chain(s, "middle")
    open(os.path.join(d, "ok"), "w").close()
    old = first_run(s, d, wf, db, 0)
    before = len(log(d))
    p, new = fork(db, old, "ship")
    again = log(d)[before:]
    s.check(p.returncode == 0 and again == ["ship prepared"],
            "a fork from the last step runs that step alone", str(again) + p.stderr[-300:])
    s.check(carried(new) == ["after_side", "build", "prep", "side"],
            "every step ship does not depend on is carried, the other branch too", str(carried(new)))
    p, new = fork(db, old, "side", "--input", "n=7")
    again = log(d)[len(log(d)) - 2:] if p.returncode == 0 else []
    s.check(p.returncode == 0 and sorted(again) == ["after_side", "side"] and
            carried(new) == ["build", "prep", "ship"],
            "a fork from an independent branch re-runs that branch only", str(again) + str(carried(new)))
    s.check(new["inputs"] == {"who": "first", "n": 7}, "an input not given keeps its old value",
            str(new["inputs"]))
    s.check(any("build is carried: it reads .inputs" in l for l in p.stderr.splitlines()),
            "a carried step that reads changed inputs is named", p.stderr[-400:])


def test_dry_run_says_what_a_fork_would_do_and_writes_nothing(s):
    d, wf, db = chain(s, "dry")
    old = first_run(s, d, wf, db, 1)
    runs, before = run_ids(db), len(log(d))
    plan, p = cairn_json("fork", old, "--from", "ship", "--dry-run", "--input", "n=3", db=db)
    acts = {x["step"]: x["action"] for x in plan["steps"]}
    s.check(p.returncode == 0 and acts == {"prep": "carry", "side": "carry", "after_side": "carry",
                                            "build": "run", "ship": "run"},
            "the dry run names what is carried and what runs", str(plan) + p.stderr)
    why = {x["step"]: x.get("why") for x in plan["steps"]}
    s.check(why["ship"] == "the step forked from" and why["build"] == "it failed there" and
            plan["inputs"] == {"who": "first", "n": 3}, "and why, with the inputs it would take",
            str(why) + str(plan["inputs"]))
    s.check(run_ids(db) == runs and len(log(d)) == before and "forks" not in show(db, old),
            "a dry run journals nothing and runs nothing")
    text = cairn("fork", old, "--from", "ship", "--dry-run", db=db).stdout
    s.check("prep" in text and "carried  succeeded at event" in text and "runs     it failed there" in text,
            "the dry run's text names each step", text)
    _, new = fork(db, old, "ship")
    s.check(carried(new) == sorted(k for k, v in acts.items() if v == "carry"),
            "the fork carries what its dry run said", str(carried(new)))


def test_the_link_both_ways(s):
    d, wf, db = chain(s, "link")
    old = first_run(s, d, wf, db, 1)
    open(os.path.join(d, "ok"), "w").close()
    _, one = fork(db, old, "build")
    _, two = fork(db, old, "ship")
    s.check(one["fork"] == {"run": old, "step": "build"} and two["fork"] == {"run": old, "step": "ship"},
            "each fork's run_created names the run and step it came from", str(one.get("fork")))
    forks = show(db, old)["forks"]
    s.check(forks == [{"run": one["id"], "step": "build"}, {"run": two["id"], "step": "ship"}],
            "the old run names its forks, in order", str(forks))
    text = cairn("show", old, db=db).stdout
    s.check(one["id"] in text and "forks" in text, "show lists the forks", text)
    old_events = cairn_json("journal", old, db=db)[0]
    origin = {e["seq"]: e for e in old_events}
    evs = [e for e in cairn_json("journal", one["id"], db=db)[0] if e["type"] == "step_carried"]
    s.check([e["seq"] for e in evs] == list(range(2, 2 + len(evs))) and len(evs) == 3,
            "the carried results come right after run_created", str([e["seq"] for e in evs]))
    ok = all(e["data"]["from_run"] == old and origin[e["data"]["from_seq"]]["step"] == e["step"] and
             origin[e["data"]["from_seq"]]["type"] == "step_succeeded" for e in evs)
    s.check(ok, "each carried result names the old run's event that ended its step", str(evs)[:400])
    tl = cairn("timeline", one["id"], db=db).stdout
    s.check("forked from run %s at step build" % old in tl and "carried from run %s event" % old in tl,
            "timeline shows the fork and where each carried result comes from", tl)
    x = cairn("export", one["id"], db=db)
    s.check(x.returncode == 0 and '"type":"step_carried"' in x.stdout.replace(" ", ""),
            "export holds the carried results", x.stderr[-200:])
    v = cairn("verify", db=db)
    s.check(v.returncode == 0, "the journal verifies with forks in it", v.stdout[-300:])


def rewrite(db, run_id, seq, edit):
    """Edit event seq's data with the journal's own key, re-hashing the run's
    chain from there: what someone holding the key could do; the chain
    alone cannot see it."""
    with open(db + ".key", "rb") as f:
        key = f.read()
    con = sqlite3.connect(db)
    prev = bytes(32)
    rows = con.execute("SELECT seq, time, type, step, attempt, data FROM events WHERE run_id = ?"
                       " ORDER BY seq", (run_id,)).fetchall()
    for sq, t, ty, step, attempt, data in rows:
        if sq == seq:
            data = edit(data)
        parts = [run_id, str(sq), str(t), ty, step or "", str(attempt), data]
        h = hmac.new(key, prev + b"".join(x.encode() + b"\0" for x in parts), hashlib.sha256).digest()
        con.execute("UPDATE events SET data = ?, hash = ? WHERE run_id = ? AND seq = ?",
                    (data, h, run_id, sq))
        prev = h
    con.commit()
    con.close()


@sqlite_only   # forges rows of SQLite's file, re-hashed
def test_verify_checks_carried_results_against_their_origin(s):
    d, wf, db = chain(s, "forged")
    old = first_run(s, d, wf, db, 1)
    open(os.path.join(d, "ok"), "w").close()
    _, new = fork(db, old, "build")
    s.check(cairn("verify", db=db).returncode == 0, "a genuine fork verifies")
    evs = [e for e in cairn_json("journal", new["id"], db=db)[0] if e["step"] == "prep"]
    if hasattr(s, "no_replay"):   # edited behind the engine's back: not the engine's runs
        s.no_replay(db)
    rewrite(db, new["id"], evs[0]["seq"], lambda t: t.replace("prepared", "tampered"))
    s.check(show(db, new["id"])["steps"]["prep"]["output"]["stdout"] == "tampered",
            "the forged carried result passes the chain")
    v = cairn("verify", db=db)
    s.check(v.returncode == 1 and "step prep carries a result that event %d of run %s did not record"
            % (evs[0]["data"]["from_seq"], old) in v.stdout,
            "verify finds a carried result that differs from its origin", v.stdout[-400:])


def test_kill_during_the_fork_then_resume(s):
    d = s.path("kill")
    os.makedirs(d)
    wf = write(s, "kill/k.yaml", """cairn: 1
name: k
steps:
  - id: prep
    run: echo prep >> {d}/log
  - id: build
    run: echo build >> {d}/log; touch {d}/started; if [ ! -e {d}/once ]; then touch {d}/once; sleep 60; fi; test -e {d}/ok
  - id: ship
    run: echo ship >> {d}/log
""".format(d=d))
    db = os.path.join(d, "j.db")
    open(os.path.join(d, "once"), "w").close()
    old = first_run(s, d, wf, db, 1)
    os.remove(os.path.join(d, "once"))
    os.remove(os.path.join(d, "started"))
    open(os.path.join(d, "ok"), "w").close()
    proc = subprocess.Popen([CAIRN, "--db", db, "fork", old, "--from", "build"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(os.path.join(d, "started")), "the fork's build to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    new = [r for r in run_ids(db) if r != old][0]
    s.check(show(db, new)["status"] == "running", "the fork is left running by the kill")
    p = cairn("resume", db=db)
    s.check(p.returncode == 0, "resume finishes the fork", p.stderr[-300:])
    run = show(db, new)
    s.check(run["status"] == "succeeded" and carried(run) == ["prep"], "the fork ends succeeded",
            str(run["status"]) + str(carried(run)))
    s.check(log(d).count("prep") == 1, "the carried step never ran again", str(log(d)))
    s.check(log(d).count("build") == 3 and log(d).count("ship") == 1,
            "the real step cut short ran again and the rest went on", str(log(d)))


def test_kill_at_random_moments_of_forks(s):
    """FORK_TRIALS times: kill -9 a fork at a random moment, resume, and
    check that the carried steps never ran again, the fork ended
    succeeded, and the old run names it exactly when its run exists."""
    d, wf, db = chain(s, "random")
    old = first_run(s, d, wf, db, 1)
    open(os.path.join(d, "ok"), "w").close()
    base = log(d)
    for n in range(int(os.environ.get("FORK_TRIALS", "8"))):
        proc = subprocess.Popen([CAIRN, "--db", db, "fork", old, "--from", "build"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        p = cairn("resume", db=db)
        forks = [r for r in cairn_json("runs", db=db)[0] if r["id"] != old]
        named = [f["run"] for f in show(db, old).get("forks", [])]
        s.check(p.returncode == 0 and all(r["status"] == "succeeded" for r in forks),
                "trial %d: every fork ends succeeded after resume" % n, str(forks) + p.stderr[-200:])
        s.check(sorted(named) == sorted(r["id"] for r in forks),
                "trial %d: the old run names exactly the forks that exist" % n, str(named))
        s.check(log(d)[:len(base)] == base and
                all(l not in ("prep", "side", "after_side") for l in log(d)[len(base):]),
                "trial %d: no carried step ran again" % n, str(log(d)[len(base):]))
    v = cairn("verify", db=db)
    s.check(v.returncode == 0, "the journal verifies after the kills", v.stdout[-300:])


def test_foreach_approval_and_child_are_carried(s):
    d = s.path("kinds")
    os.makedirs(d)
    wf = write(s, "kinds/parent.yaml", """cairn: 1
name: kinds
steps:
  - id: each
    foreach: [1, 2, 3]
    run: echo item ${{{{ .item }}}} >> {d}/log; printf %s ${{{{ .item }}}}
  - id: gate
    uses: approval
    with: {{ prompt: "Go?" }}
  - id: sub
    uses: workflow
    with: {{ name: kinds-child }}
  - id: last
    run: echo "last ${{{{ .steps.each.output | map(.stdout) | join("") }}}} ${{{{ .steps.sub.output.said }}}}" >> {d}/log
""".format(d=d))
    write(s, "kinds/child.yaml", """cairn: 1
name: kinds-child
outputs:
  said: ${{{{ .steps.say.output.stdout }}}}
steps:
  - id: say
    run: echo child >> {d}/log; printf hi
""".format(d=d))
    db = os.path.join(d, "j.db")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    def pending():
        p = cairn("approvals", "--json", db=db)
        return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else []
    old = wait_for(pending, "the approval")[0]["run"]
    a = cairn("approve", old, "gate", "--as", "alice", "--comment", "fine", db=db)
    s.check(a.returncode == 0, "alice approves", a.stderr)
    s.check(proc.wait(timeout=60) == 0, "the first run succeeds")
    children = [r for r in cairn_json("runs", db=db)[0] if r["workflow"] == "kinds-child"]
    before = len(log(d))
    p, new = fork(db, old, "last")
    s.check(p.returncode == 0 and log(d)[before:] == ["last 123 hi"],
            "only the last step ran again, reading the carried items' and child's outputs",
            str(log(d)[before:]) + p.stderr[-300:])
    gate = new["steps"]["gate"]
    decided = gate.get("approval", {}).get("decisions", [])
    s.check("carried" in gate and [x["by"] for x in decided] == ["alice"],
            "the carried approval keeps who decided, marked carried", str(gate))
    s.check(new["steps"]["sub"].get("child") == children[0]["id"] and "carried" in new["steps"]["sub"],
            "the carried child step keeps its child run", str(new["steps"]["sub"]))
    now = [r for r in cairn_json("runs", db=db)[0] if r["workflow"] == "kinds-child"]
    s.check(len(now) == len(children) == 1, "no child run started again", str(now))
    tl = cairn("timeline", new["id"], db=db).stdout
    s.check("approved by alice" in tl and "carried: decided in run %s" % old in tl,
            "timeline marks the carried decision", tl)


def test_compensated_steps_run_again_and_secrets_come_from_the_store(s):
    d = s.path("undo")
    os.makedirs(d)
    wf = write(s, "undo/u.yaml", """cairn: 1
name: undo
inputs:
  password: {{ type: string }}
steps:
  - id: made
    run: echo made >> {d}/log
    compensate:
      run: echo unmade >> {d}/log
  - id: kept
    needs: []
    run: echo kept >> {d}/log
  - id: use
    needs: [made, kept]
    run: echo "${{{{ .secrets.TOKEN }}}} ${{{{ .inputs.password }}}}" > {d}/seen; echo use >> {d}/log; test -e {d}/ok
""".format(d=d))
    db = os.path.join(d, "j.db")
    env = {"CAIRN_SECRET_TOKEN": "s3cr3t-value-xyz"}
    p = cairn("run", wf, "--input", "password=s3cr3t-value-xyz", db=db, env=env)
    s.check(p.returncode == 1 and "unmade" in log(d), "the first run fails and compensates made",
            str(log(d)))
    old = run_ids(db)[0]
    s.check(show(db, old)["inputs"]["password"] == "***", "the journal holds the input masked")
    open(os.path.join(d, "ok"), "w").close()
    runs = run_ids(db)
    p = cairn("fork", old, "--from", "use", db=db, env=env)
    s.check(p.returncode == 2 and "input 'password'" in p.stderr and run_ids(db) == runs,
            "an input journaled masked is not carried as if real: it must be given again", p.stderr)
    p = cairn("fork", old, "--from", "made#compensate", "--input", "password=x", db=db, env=env)
    s.check(p.returncode == 2 and "runs only in a rollback" in p.stderr and run_ids(db) == runs,
            "a compensate body is no step to fork from", p.stderr)
    p = cairn("fork", old, "--from", "use", "--input", "password=given-again", db=db, env=env)
    s.check(p.returncode == 0, "the fork succeeds", p.stderr[-300:])
    s.check(log(d).count("made") == 2 and "step made runs again: its compensate body ran" in p.stderr,
            "a step whose compensation ran is not carried: it runs again", str(log(d)) + p.stderr)
    s.check(log(d).count("kept") == 1, "a step whose effect stands is carried", str(log(d)))
    seen = open(os.path.join(d, "seen")).read().strip()
    s.check(seen == "s3cr3t-value-xyz given-again", "the step run again reads the secret from the store",
            seen)


def test_failed_with_continue_on_error_and_skipped_steps_are_carried(s):
    d = s.path("soft")
    os.makedirs(d)
    wf = write(s, "soft/soft.yaml", """cairn: 1
name: soft
steps:
  - id: flaky
    continue_on_error: true
    run: echo flaky >> {d}/log; exit 3
  - id: never
    if: ${{{{ .steps.flaky.status == "succeeded" }}}}
    run: echo never >> {d}/log
  - id: last
    run: echo "last ${{{{ .steps.flaky.status }}}} ${{{{ .steps.never.status }}}}" >> {d}/log
""".format(d=d))
    db = os.path.join(d, "j.db")
    old = first_run(s, d, wf, db, 0)
    p, new = fork(db, old, "last")
    s.check(p.returncode == 0 and log(d) == ["flaky", "last failed skipped", "last failed skipped"],
            "a step failed with continue_on_error and one skipped by its if are carried as such",
            str(log(d)) + p.stderr[-300:])
    s.check(new["steps"]["flaky"]["status"] == "failed" and "carried" in new["steps"]["flaky"] and
            new["steps"]["never"]["status"] == "skipped" and "carried" in new["steps"]["never"],
            "show marks them carried with their old status", str(new["steps"]))


def test_bad_input_is_refused_before_anything_is_journaled(s):
    d, wf, db = chain(s, "bad")
    old = first_run(s, d, wf, db, 1)

    def refused(what, args, words):
        runs = run_ids(db)
        p = cairn("fork", *args, db=db)
        s.check(p.returncode == 2 and all(w in p.stderr for w in words) and run_ids(db) == runs,
                "refused, nothing journaled: " + what, "%d %s" % (p.returncode, p.stderr[-300:]))

    refused("an unknown run", ["nosuchrun", "--from", "build"], ["nosuchrun"])
    refused("an unknown step", [old, "--from", "biuld"], ["no step 'biuld'", "did you mean 'build'"])
    refused("no --from", [old], ["usage"])
    refused("an input of the wrong type", [old, "--from", "build", "--input", "n=many"], ["n"])
    refused("an unknown input", [old, "--from", "build", "--input", "nope=1"], ["nope"])
    refused("an input without =", [old, "--from", "build", "--input", "who"], ["name=value"])
    s.check("forks" not in show(db, old), "no fork is named after refusals")
    # a run that has not ended: killed while its step sleeps
    slow = write(s, "bad/slow.yaml", """cairn: 1
name: slow
steps:
  - id: nap
    run: touch {d}/napping; sleep 60
""".format(d=d))
    proc = subprocess.Popen([CAIRN, "--db", db, "run", slow], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(os.path.join(d, "napping")), "the slow step")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    running = run_ids(db)[0]
    refused("a run that has not ended", [running, "--from", "nap"], ["has ended", running])


def test_fork_beside_a_server_holding_the_journal(s):
    d, wf, db = chain(s, "served")
    old = first_run(s, d, wf, db, 1)
    port_file = os.path.join(d, "port")
    srv = subprocess.Popen([CAIRN, "--db", db, "serve", "--workflows", d, "--listen", "127.0.0.1:0",
                            "--port-file", port_file], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), "the server")
        open(os.path.join(d, "ok"), "w").close()
        p, new = fork(db, old, "build")
        s.check(p.returncode == 0 and new["status"] == "succeeded" and
                carried(new) == ["after_side", "prep", "side"],
                "a fork beside a server runs here to its end", p.stderr[-300:])
        port = open(port_file).read().strip()
        body = subprocess.run(["curl", "-s", "http://127.0.0.1:%s/v1/runs/%s" % (port, new["id"])],
                              capture_output=True, text=True, timeout=30).stdout
        got = json.loads(body) if body.startswith("{") else {}
        s.check(got.get("status") == "succeeded" and got.get("fork", {}).get("run") == old,
                "the server sees the fork in the journal", body[:300])
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=60)


def main():
    s = Suite("fork")
    random.seed(os.environ.get("CRASH_SEED", str(os.getpid())))
    s.run_all([test_fork_of_a_failed_run_from_the_failed_step,
               test_fork_from_the_middle_of_a_succeeded_run,
               test_dry_run_says_what_a_fork_would_do_and_writes_nothing, test_the_link_both_ways,
               test_verify_checks_carried_results_against_their_origin,
               test_kill_during_the_fork_then_resume, test_kill_at_random_moments_of_forks,
               test_foreach_approval_and_child_are_carried,
               test_compensated_steps_run_again_and_secrets_come_from_the_store,
               test_failed_with_continue_on_error_and_skipped_steps_are_carried,
               test_bad_input_is_refused_before_anything_is_journaled,
               test_fork_beside_a_server_holding_the_journal])
    s.finish()


if __name__ == "__main__":
    main()
