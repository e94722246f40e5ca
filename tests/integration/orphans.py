"""Orphans after a crash: kill -9 the engine while a shell step runs, and
check that what the attempt started does not outlive the crash beside its
next attempt.
  - the step's leader dies with the engine (PR_SET_PDEATHSIG), before any
    resume; its own child (the `sleep`) outlives it, as the kernel allows;
  - resume kills what is left of the recorded process group before the
    attempt runs again (on_crash retry, ask, fail; foreach items too), and
    the journal says so; the step's effect happens exactly once;
  - a pid reused by an unrelated process since the crash is not killed.
Processes are watched through /proc; every wait has a deadline."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, journal_exists, Suite, cairn, cairn_json, wait_for, write  # noqa: E402

LEADER_DIES_S = 1.5   # PR_SET_PDEATHSIG acts at once; the step would run for seconds more


def stat(pid):
    """(state, pgrp, start) of a process from /proc/PID/stat, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[2]), int(fields[19])


def live(pid):
    st = stat(pid)
    return st is not None and st[0] != "Z"


def members(pgid):
    """Live (not zombie) processes of process group pgid."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = stat(int(name))
            if st and st[1] == pgid and st[0] != "Z":
                found.append(int(name))
    return found


def run_id_of(db):
    p = cairn("runs", "--json", db=db)
    if p.returncode != 0 or not p.stdout.strip():
        return None
    runs = json.loads(p.stdout.strip().splitlines()[-1])
    return runs[0]["id"] if runs else None


def events(db, run_id, type_):
    p = cairn("journal", run_id, "--json", db=db)
    if p.returncode != 0 or not p.stdout.strip():
        return []
    return [e for e in json.loads(p.stdout.strip().splitlines()[-1]) if e["type"] == type_]


def start_run(wf, db):
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    return proc, wait_for(lambda: journal_exists(db) and run_id_of(db), "the run to start")


def spawned_groups(db, run_id, n):
    """Wait until n process groups are journaled and each has a leader and a
    child running; returns their step_spawned events."""
    def ready():
        evs = events(db, run_id, "step_spawned")
        return evs if len(evs) == n and all(len(members(e["data"]["pgid"])) >= 2 for e in evs) else None
    return wait_for(ready, "%d step_spawned events and their processes" % n)


def crash(s, proc, groups, what):
    """kill -9 the engine; its leaders die with it, their children do not."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    leaders = [e["data"]["pgid"] for e in groups]
    try:
        wait_for(lambda: not any(live(p) for p in leaders), "the leaders to die", LEADER_DIES_S)
        gone = True
    except AssertionError:
        gone = False
    s.check(gone, "%s: the step's leader died with the engine" % what,
            str([p for p in leaders if live(p)]))
    s.check(all(members(p) for p in leaders),
            "%s: the leader's child outlived it (what recovery is for)" % what)


def test_retry_runs_the_step_once(s):
    out = s.path("F")
    wf = write(s, "once.yaml", """cairn: 1
name: once
steps:
  - id: slow
    run: sleep 3; echo done >> %s
""" % out)
    db = s.path("once.db")
    proc, run_id = start_run(wf, db)
    groups = spawned_groups(db, run_id, 1)
    pgid = groups[0]["data"]["pgid"]
    crash(s, proc, groups, "retry")
    resume = subprocess.Popen([CAIRN, "--db", db, "resume"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    crashed = wait_for(lambda: events(db, run_id, "step_crashed"), "recovery of the step")
    s.check(members(pgid) == [], "the orphan is gone once the attempt is taken back",
            str(members(pgid)))
    s.check(crashed[0]["data"].get("orphan") == "killed", "the journal says it was killed",
            str(crashed[0]["data"]))
    _, err = resume.communicate(timeout=60)
    s.check(resume.returncode == 0, "resume exits 0", err[-300:])
    with open(out) as f:
        text = f.read()
    s.check(text == "done\n", "done appears exactly once", repr(text))
    run, _ = cairn_json("show", run_id, db=db)
    s.check(run["status"] == "succeeded" and run["steps"]["slow"]["attempts"] == 2,
            "the second attempt finished the run", str(run["steps"]["slow"]))
    v = cairn("verify", db=db)
    s.check(v.returncode == 0, "the journal verifies", v.stdout[-300:])


def test_ask_and_foreach_items(s):
    wf = write(s, "many.yaml", """cairn: 1
name: many
steps:
  - id: asked
    needs: []
    on_crash: ask
    run: '[ $CAIRN_ATTEMPT -gt 1 ] || sleep 60; echo asked'
  - id: each
    needs: []
    foreach: ${{ [1, 2] }}
    run: '[ $CAIRN_ATTEMPT -gt 1 ] || sleep 60; echo item'
""")
    db = s.path("many.db")
    proc, run_id = start_run(wf, db)
    groups = spawned_groups(db, run_id, 3)
    crash(s, proc, groups, "ask and foreach")
    resume = subprocess.Popen([CAIRN, "--db", db, "resume"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    crashed = wait_for(lambda: (lambda c: c if len(c) == 3 else None)(events(db, run_id, "step_crashed")),
                       "recovery of the three attempts")
    left = {e["data"]["pgid"]: members(e["data"]["pgid"]) for e in groups}
    s.check(not any(left.values()), "no orphan is left beside the question or the items",
            str(left))
    found = sorted((e["step"], e["data"].get("index", -1), e["data"].get("orphan")) for e in crashed)
    s.check(found == [("asked", -1, "killed"), ("each", 0, "killed"), ("each", 1, "killed")],
            "each attempt's group was killed, items by index", str(found))
    wait_for(lambda: cairn("approvals", "--json", db=db).stdout.count("run it again"), "the question")
    p = cairn("approve", run_id, "asked", "--as", "oncall", db=db)
    s.check(p.returncode == 0, "the crash question is answered", p.stderr[-300:])
    _, err = resume.communicate(timeout=60)
    run, _ = cairn_json("show", run_id, db=db)
    s.check(run["status"] == "succeeded", "the run finishes after the answer",
            str(run["status"]) + err[-300:])


def take_pid(pid):
    """Start an unrelated process (a session and group of its own) with this
    exact pid, through /proc/sys/kernel/ns_last_pid; None when other
    processes keep taking it first."""
    for _ in range(2000):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        p = subprocess.Popen(["sleep", "60"], start_new_session=True)
        if p.pid == pid:
            return p
        p.kill()
        p.wait()
    return None


def test_reused_pid_is_spared(s):
    wf = write(s, "reuse.yaml", """cairn: 1
name: reuse
steps:
  - id: hold
    on_crash: fail
    run: sleep 60; echo late
""")
    db = s.path("reuse.db")
    proc, run_id = start_run(wf, db)
    groups = spawned_groups(db, run_id, 1)
    pgid, start = groups[0]["data"]["pgid"], groups[0]["data"]["start"]
    crash(s, proc, groups, "reuse")
    os.killpg(pgid, signal.SIGKILL)          # the group is gone: its pid may be given again
    wait_for(lambda: not members(pgid) and stat(pgid) is None, "the group to be gone")
    impostor = take_pid(pgid)
    if not s.check(impostor is not None, "an unrelated process took the recorded pid"):
        return
    try:
        wait_for(lambda: stat(pgid) and stat(pgid)[2] != start, "the impostor's own start time")
        p = cairn("resume", db=db)
        s.check(impostor.poll() is None and live(pgid), "the process now at that pid was not killed",
                p.stderr[-300:])
        crashed = events(db, run_id, "step_crashed")
        s.check(crashed and crashed[0]["data"].get("orphan") == "reused",
                "the journal says the pid was reused", str(crashed))
        run, _ = cairn_json("show", run_id, db=db)
        s.check(run["steps"]["hold"]["error"]["kind"] == "crash", "on_crash: fail fails the step",
                str(run["steps"]["hold"]))
    finally:
        impostor.kill()
        impostor.wait()


def main():
    s = Suite("orphans")
    s.run_all([test_retry_runs_the_step_once, test_ask_and_foreach_items, test_reused_pid_is_spared])
    s.finish()


if __name__ == "__main__":
    main()
