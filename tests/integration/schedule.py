"""Schedule triggers fired by a real `cairn serve`, its clock moved by the
test (CAIRN_SCHEDULE_CLOCK names a file holding the time): one run per
slot, time zones, the run's trigger, a kill -9 right after a fire was
claimed, a claim whose run never started, catch_up true and false, two
servers on one journal, and SIGHUP adding, changing and removing
schedules.  Every wait polls for a condition with a deadline."""
import os
import random
import signal
import socket
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import Suite, cairn_json, wait_for, write  # noqa: E402
from serve import Server, metric, wfdir  # noqa: E402


def every(name, cron, extra=""):
    return """cairn: 1
name: %s
inputs:
  at: { type: string, default: "" }
triggers:
  - schedule: "%s"
%s    inputs: { at: "${{ .at }}" }
steps:
  - id: say
    run: echo "slot ${{ .inputs.at }}"
""" % (name, cron, extra)


def set_clock(path, when):
    """Move the servers' clock: written aside, then renamed over."""
    with open(path + ".tmp", "w") as f:
        f.write(when + "\n")
    os.replace(path + ".tmp", path)


def query(db, sql, *args):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def fires(db, wf):
    """{slot: run id} of the workflow's schedule claims whose run exists."""
    rows = query(db, "SELECT c.key, c.value FROM claims c WHERE c.space LIKE ? AND c.key != "
                 "'considered'", "schedule/%s/%%" % wf)
    runs = {r[0] for r in query(db, "SELECT id FROM runs WHERE workflow = ?", wf)}
    return {k: v.split()[0] for k, v in rows if v.split()[0] in runs}


def runs_of(db, wf):
    return [r[0] for r in query(db, "SELECT id FROM runs WHERE workflow = ?", wf)]


def wait_fired(db, wf, slot):
    """The run of wf's slot once it is in the journal."""
    return wait_for(lambda: fires(db, wf).get(slot), "%s to fire for %s" % (wf, slot))


def trigger_of(db, run):
    events = cairn_json("journal", run, db=db)[0]
    return events[0]["data"]["trigger"], events[0]["data"]["inputs"]


def serve(s, name, d, clock, db=None, schedules=1):
    """A server whose schedules have all been settled (each has logged its
    next fire), so that moving the clock from here on is seen as time
    passing, not as the time the schedules started from."""
    srv = Server(s, name, d, env={"CAIRN_SCHEDULE_CLOCK": clock}, db=db)
    wait_for(lambda: srv.stderr().split("cairn: serving")[-1].count("next fire at") >= schedules,
             "%s's schedules to be settled" % name)
    return srv


# ---- tests ------------------------------------------------------------------------------------

def test_one_run_per_slot(s):
    listing = """cairn: 1
name: listing
inputs:
  seen: { type: array, default: [] }
triggers:
  - schedule: "0 * * * *"
    inputs: { seen: ["${{ .schedule }}", { at: "${{ .at }}" }, 7] }
steps:
  - id: a
    run: echo ok
"""
    d = wfdir(s, "once", {"tick.yaml": every("tick", "*/5 * * * *"), "listing.yaml": listing,
                          "berlin.yaml": every("berlin", "0 9 * * *",
                                               "    timezone: Europe/Berlin\n")})
    clock = s.path("once.clock")
    set_clock(clock, "2026-12-07T07:58:30Z")
    srv = serve(s, "once", d, clock, schedules=3)
    try:
        set_clock(clock, "2026-12-07T08:00:01Z")
        first = wait_fired(srv.db, "tick", "2026-12-07T08:00:00.000Z")
        b = wait_fired(srv.db, "berlin", "2026-12-07T08:00:00.000Z")   # 09:00 CET
        for t in ("08:01:00", "08:03:59", "08:04:59"):
            set_clock(clock, "2026-12-07T%sZ" % t)
        set_clock(clock, "2026-12-07T08:05:00Z")
        second = wait_fired(srv.db, "tick", "2026-12-07T08:05:00.000Z")
        set_clock(clock, "2026-12-07T08:10:30Z")
        wait_fired(srv.db, "tick", "2026-12-07T08:10:00.000Z")
        s.check(len(runs_of(srv.db, "tick")) == 3 and len(set(fires(srv.db, "tick").values())) == 3,
                "one run per slot, however often the clock is read within it",
                (runs_of(srv.db, "tick"), fires(srv.db, "tick")))
        s.check(len(runs_of(srv.db, "berlin")) == 1, "a daily schedule fires once a day",
                runs_of(srv.db, "berlin"))
        set_clock(clock, "2026-12-07T08:00:30Z")   # the wall clock set back, then on again
        set_clock(clock, "2026-12-07T08:15:00Z")
        wait_fired(srv.db, "tick", "2026-12-07T08:15:00.000Z")
        s.check(sorted(fires(srv.db, "tick")) == ["2026-12-07T08:%02d:00.000Z" % m
                                                   for m in (0, 5, 10, 15)] and
                len(runs_of(srv.db, "tick")) == 4,
                "a clock set back fires no slot twice", fires(srv.db, "tick"))
        trig, inputs = trigger_of(srv.db, first)
        s.check(trig == {"source": "schedule", "user": "schedule", "workflow": "tick",
                         "trigger": 0, "schedule": "*/5 * * * *", "timezone": "UTC",
                         "at": "2026-12-07T08:00:00.000Z", "caught_up": False},
                ".run.trigger says which schedule fired and for when", trig)
        s.check(inputs == {"at": "2026-12-07T08:00:00.000Z"},
                "the trigger's inputs are rendered over the fire", inputs)
        trig, _ = trigger_of(srv.db, b)
        s.check(trig["timezone"] == "Europe/Berlin", "a zone's schedule names its zone", trig)
        _, inputs = trigger_of(srv.db, wait_fired(srv.db, "listing", "2026-12-07T08:00:00.000Z"))
        s.check(inputs == {"seen": ["0 * * * *", {"at": "2026-12-07T08:00:00.000Z"}, 7]},
                "expressions in lists and maps of the inputs are rendered", inputs)
        run = srv.request("GET", "/v1/runs/" + second)[2]
        s.check(run["steps"]["say"]["output"]["stdout"] == "slot 2026-12-07T08:05:00.000Z\n",
                "the run ran", run)
        text = srv.request("GET", "/metrics")[2]
        s.check(metric(text, 'cairn_schedule_fires_total{workflow="tick",result="started"}') == 4,
                "metrics count the fires", text)
    finally:
        srv.stop()


def test_daylight_saving_time(s):
    """New York, 2026: 02:30 does not exist on March 8 (it fires at 03:00
    EDT, 07:00 UTC), and 01:30 happens twice on November 1 (it fires at
    the first, 05:30 UTC, not at the second, 06:30 UTC)."""
    ny = "    timezone: America/New_York\n"
    d = wfdir(s, "dst", {"gap.yaml": every("gap", "30 2 * * *", ny),
                         "rep.yaml": every("rep", "30 1 * * *", ny)})
    clock = s.path("dst.clock")
    set_clock(clock, "2026-03-08T04:00:00Z")
    srv = serve(s, "dst", d, clock, schedules=2)
    try:
        set_clock(clock, "2026-03-08T07:00:00Z")
        wait_fired(srv.db, "gap", "2026-03-08T07:00:00.000Z")
        set_clock(clock, "2026-03-09T06:30:00Z")
        wait_fired(srv.db, "gap", "2026-03-09T06:30:00.000Z")
        s.check(sorted(fires(srv.db, "gap")) == ["2026-03-08T07:00:00.000Z",
                                                  "2026-03-09T06:30:00.000Z"],
                "a time the clock skips fires at the end of the gap, once", fires(srv.db, "gap"))
        for t in ("2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z"):
            set_clock(clock, t)
        wait_fired(srv.db, "rep", "2026-11-01T05:30:00.000Z")
        for t in ("2026-11-01T06:30:00Z", "2026-11-01T06:31:00Z", "2026-11-02T06:30:00Z"):
            set_clock(clock, t)
        wait_fired(srv.db, "rep", "2026-11-02T06:30:00.000Z")
        s.check(sorted(fires(srv.db, "rep")) == ["2026-11-01T05:30:00.000Z",
                                                  "2026-11-02T06:30:00.000Z"],
                "a time the clock shows twice fires once", fires(srv.db, "rep"))
    finally:
        srv.stop()


def test_kill_right_after_a_claim(s):
    d = wfdir(s, "kill", {"tick.yaml": every("tick", "* * * * *")})
    clock = s.path("kill.clock")
    set_clock(clock, "2026-12-07T10:00:30Z")
    srv = serve(s, "kill", d, clock)
    set_clock(clock, "2026-12-07T10:01:00Z")
    wait_for(lambda: query(srv.db, "SELECT 1 FROM claims WHERE key = '2026-12-07T10:01:00.000Z'"),
             "the fire to be claimed", timeout=30)
    srv.stop(signal.SIGKILL)
    srv = serve(s, "kill", d, clock)
    try:
        run = wait_fired(srv.db, "tick", "2026-12-07T10:01:00.000Z")
        set_clock(clock, "2026-12-07T10:02:00Z")
        wait_fired(srv.db, "tick", "2026-12-07T10:02:00.000Z")
        s.check(len(runs_of(srv.db, "tick")) == 2 and run in runs_of(srv.db, "tick"),
                "kill -9 after a claim: the slot has exactly one run after the restart",
                runs_of(srv.db, "tick"))
    finally:
        srv.stop()


def dead_owner():
    """An owner string of this host whose process is not alive."""
    return "%s:4194302:1" % socket.gethostname()


def new_run_id():
    return "01" + "".join(random.choice("0123456789abcdefghijklmnopqrstuv") for _ in range(14))


def test_claim_without_run_is_started(s):
    """The state a crash between the claim and the run's first durable
    event leaves: the claim names a run that does not exist and an owner
    that is dead.  The fire is journaled, so it is not lost, even when
    catch_up is false and the slot is long past."""
    d = wfdir(s, "lost", {"tick.yaml": every("tick", "*/5 * * * *")})
    clock = s.path("lost.clock")
    set_clock(clock, "2026-12-07T10:03:00Z")
    srv = serve(s, "lost", d, clock)
    set_clock(clock, "2026-12-07T10:05:00Z")
    wait_fired(srv.db, "tick", "2026-12-07T10:05:00.000Z")
    srv.stop()
    lost = new_run_id()
    con = sqlite3.connect(srv.db)
    con.execute("INSERT INTO claims(space, key, value, created_at, updated_at) VALUES "
                "('schedule/tick/0', '2026-12-07T10:10:00.000Z', ?, 0, 0)",
                ("%s %s" % (lost, dead_owner()),))
    con.commit()
    con.close()
    set_clock(clock, "2026-12-07T10:27:00Z")   # 10:15, 10:20 missed; 10:25 late, not missed
    srv = serve(s, "lost", d, clock)
    try:
        wait_for(lambda: lost in runs_of(srv.db, "tick"), "the claimed run to start")
        late = wait_fired(srv.db, "tick", "2026-12-07T10:25:00.000Z")
        trig, _ = trigger_of(srv.db, lost)
        s.check(trig["at"] == "2026-12-07T10:10:00.000Z",
                "a claim whose run never started starts that same run id on restart", trig)
        s.check("which died before its run started" in srv.stderr(), "and says so", srv.stderr())
        s.check(sorted(fires(srv.db, "tick")) == ["2026-12-07T10:05:00.000Z",
                                                   "2026-12-07T10:10:00.000Z",
                                                   "2026-12-07T10:25:00.000Z"],
                "the slots after it were missed: skipped, no run", fires(srv.db, "tick"))
        s.check("missed fires from 2026-12-07T10:15:00.000Z to 2026-12-07T10:20:00.000Z"
                in srv.stderr(), "the skipped slots are named", srv.stderr())
        s.check(trigger_of(srv.db, late)[0]["caught_up"] is False,
                "a slot under five minutes old at start is on time, late")
    finally:
        srv.stop()


def test_catch_up(s):
    d = wfdir(s, "late", {"yes.yaml": every("yes", "*/5 * * * *", "    catch_up: true\n"),
                          "no.yaml": every("no", "*/5 * * * *", "    catch_up: false\n")})
    clock = s.path("late.clock")
    set_clock(clock, "2026-12-07T10:03:00Z")
    srv = serve(s, "late", d, clock, schedules=2)
    set_clock(clock, "2026-12-07T10:05:00Z")
    wait_fired(srv.db, "yes", "2026-12-07T10:05:00.000Z")
    wait_fired(srv.db, "no", "2026-12-07T10:05:00.000Z")
    srv.stop()
    set_clock(clock, "2026-12-07T10:31:30Z")   # 10:10 .. 10:25 missed; 10:30 late, not missed
    srv = serve(s, "late", d, clock, schedules=2)
    try:
        late = wait_fired(srv.db, "yes", "2026-12-07T10:25:00.000Z")
        wait_fired(srv.db, "yes", "2026-12-07T10:30:00.000Z")
        wait_fired(srv.db, "no", "2026-12-07T10:30:00.000Z")
        s.check(len(runs_of(srv.db, "yes")) == 3,
                "catch_up: true runs one missed fire on start, not four", runs_of(srv.db, "yes"))
        s.check(trigger_of(srv.db, late)[0]["caught_up"] is True,
                "its trigger says it was caught up")
        s.check(len(runs_of(srv.db, "no")) == 2, "catch_up: false runs none of them",
                runs_of(srv.db, "no"))
        s.check("no[0] \"*/5 * * * *\" UTC: missed fires from 2026-12-07T10:10:00.000Z to "
                "2026-12-07T10:25:00.000Z while no server looked: skipped (catch_up is false)"
                in srv.stderr(), "and logs what it skipped", srv.stderr())
        text = srv.request("GET", "/metrics")[2]
        s.check(metric(text, 'cairn_schedule_fires_total{workflow="no",result="skipped"}') == 1 and
                metric(text, 'cairn_schedule_fires_total{workflow="yes",result="caught_up"}') == 1,
                "metrics count the skip and the catch-up", text)
        set_clock(clock, "2026-12-07T10:35:00Z")
        wait_fired(srv.db, "yes", "2026-12-07T10:35:00.000Z")
        wait_fired(srv.db, "no", "2026-12-07T10:35:00.000Z")
        s.check(len(runs_of(srv.db, "yes")) == 4 and len(runs_of(srv.db, "no")) == 3,
                "then both fire on time again", (runs_of(srv.db, "yes"), runs_of(srv.db, "no")))
        set_clock(clock, "2026-12-07T11:03:00Z")   # the clock jumps: 10:40 .. 10:55 missed
        wait_fired(srv.db, "yes", "2026-12-07T10:55:00.000Z")
        wait_fired(srv.db, "yes", "2026-12-07T11:00:00.000Z")
        wait_fired(srv.db, "no", "2026-12-07T11:00:00.000Z")
        s.check(len(runs_of(srv.db, "yes")) == 6 and len(runs_of(srv.db, "no")) == 4,
                "a running server whose clock jumps forward treats the slots it jumped as missed",
                (fires(srv.db, "yes"), fires(srv.db, "no")))
    finally:
        srv.stop()


def test_two_servers_one_journal(s):
    d = wfdir(s, "two", {"tick.yaml": every("tick", "* * * * *")})
    clock = s.path("two.clock")
    set_clock(clock, "2026-12-07T10:00:30Z")
    a = serve(s, "two-a", d, clock, db=s.path("two.db"))
    b = serve(s, "two-b", d, clock, db=s.path("two.db"))
    try:
        for m in range(1, 9):
            set_clock(clock, "2026-12-07T10:%02d:00Z" % m)
            wait_fired(a.db, "tick", "2026-12-07T10:%02d:00.000Z" % m)
        s.check(len(runs_of(a.db, "tick")) == 8,
                "two servers on one journal: each slot fires once", runs_of(a.db, "tick"))
        both = "started run" in a.stderr() and "started run" in b.stderr()
        s.check(len(set(fires(a.db, "tick").values())) == 8,
                "one run per slot" + (", fired by both servers in turn" if both else ""),
                fires(a.db, "tick"))
    finally:
        a.stop()
        b.stop()


def test_reload_adds_changes_removes(s):
    d = wfdir(s, "hup", {"a.yaml": every("a", "*/5 * * * *"), "c.yaml": every("c", "*/5 * * * *")})
    clock = s.path("hup.clock")
    set_clock(clock, "2026-12-07T10:03:00Z")
    srv = serve(s, "hup", d, clock, schedules=2)
    try:
        set_clock(clock, "2026-12-07T10:05:00Z")
        wait_fired(srv.db, "a", "2026-12-07T10:05:00.000Z")
        wait_fired(srv.db, "c", "2026-12-07T10:05:00.000Z")
        write(s, "hup/a.yaml", every("a", "*/15 * * * *"))
        os.unlink(os.path.join(d, "c.yaml"))
        write(s, "hup/b.yaml", every("b", "*/10 * * * *"))
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in srv.stderr() and
                 srv.stderr().split("reloaded")[1].count("2 schedules served") == 1,
                 "the reload to serve two schedules")
        set_clock(clock, "2026-12-07T10:10:00Z")
        wait_fired(srv.db, "b", "2026-12-07T10:10:00.000Z")
        set_clock(clock, "2026-12-07T10:15:00Z")
        wait_fired(srv.db, "a", "2026-12-07T10:15:00.000Z")
        s.check(sorted(fires(srv.db, "a")) == ["2026-12-07T10:05:00.000Z",
                                                "2026-12-07T10:15:00.000Z"],
                "a changed schedule fires by its new cron (not at 10:10)", fires(srv.db, "a"))
        s.check(sorted(fires(srv.db, "b")) == ["2026-12-07T10:10:00.000Z"],
                "an added schedule fires", fires(srv.db, "b"))
        s.check(sorted(fires(srv.db, "c")) == ["2026-12-07T10:05:00.000Z"],
                "a removed schedule fires no more", fires(srv.db, "c"))
    finally:
        srv.stop()


def test_refused_inputs(s):
    d = wfdir(s, "refuse", {"num.yaml": """cairn: 1
name: num
inputs:
  n: { type: integer, default: 0 }
triggers:
  - schedule: "*/5 * * * *"
    inputs: { n: "${{ .at }}" }
steps:
  - id: a
    run: echo ${{ .inputs.n }}
"""})
    clock = s.path("refuse.clock")
    set_clock(clock, "2026-12-07T10:03:00Z")
    srv = serve(s, "refuse", d, clock)
    try:
        set_clock(clock, "2026-12-07T10:05:00Z")
        key = "2026-12-07T10:05:00.000Z"
        wait_for(lambda: query(srv.db, "SELECT value FROM claims WHERE key = ? AND value LIKE "
                               "'refused %'", key), "the fire to be marked refused")
        s.check(runs_of(srv.db, "num") == [], "inputs the workflow refuses start no run")
        s.check("refused: input 'n': expected an integer" in srv.stderr(), "the log says why",
                srv.stderr())
        text = srv.request("GET", "/metrics")[2]
        s.check(metric(text, 'cairn_schedule_fires_total{workflow="num",result="refused"}') == 1,
                "and metrics count it", text)
    finally:
        srv.stop()
    # as if the server had died before moving "considered" past the slot
    con = sqlite3.connect(srv.db)
    con.execute("UPDATE claims SET value = '2026-12-07T10:03:00.000Z' WHERE key = 'considered'")
    con.commit()
    con.close()
    srv = serve(s, "refuse", d, clock)   # a restart does not try it again
    try:
        s.check(runs_of(srv.db, "num") == [] and "refused" not in srv.stderr().split(
            "cairn: serving")[-1], "a refused fire is decided: a restart leaves it", srv.stderr())
    finally:
        srv.stop()


def test_bad_clock_refused(s):
    d = wfdir(s, "badclock", {"tick.yaml": every("tick", "* * * * *")})
    clock = write(s, "bad.clock", "not a time\n")
    try:
        serve(s, "badclock", d, clock)
        s.check(False, "a clock file without a time is refused")
    except AssertionError as e:
        s.check("CAIRN_SCHEDULE_CLOCK" in str(e), "a clock file without a time is refused", e)


if __name__ == "__main__":
    suite = Suite("schedule")
    tests = [test_one_run_per_slot, test_daylight_saving_time, test_kill_right_after_a_claim,
             test_claim_without_run_is_started, test_catch_up, test_two_servers_one_journal,
             test_reload_adds_changes_removes, test_refused_inputs, test_bad_clock_refused]
    suite.run_all([t for t in tests if not sys.argv[1:] or t.__name__ in sys.argv[1:]])
    suite.finish()
