"""foreach: linear in its items, its list journaled once, and the same list
after a crash.

  - The foreach expression is rendered once however many items there are:
    counted, not timed, by a shim (tests/lib/jq_count.c) that counts libjq's
    evaluations, at 2,000 and 20,000 items.
  - The journal grows linearly: its bytes at 3,000 items are about ten times
    those at 300, and step_expanded holds the list once.
  - kill -9 mid-foreach, then resume with the document changed (the secret
    the list is made from): the items are the ones journaled when the step
    expanded, not a list rendered again.
  - `show` gives each item's index, status, attempts and error, and after a
    kill -9 the items that were in flight."""
import json
import re
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, ROOT, Suite, cairn, cairn_json, wait_for, write  # noqa: E402

COUNTED = """cairn: 1
name: counted
inputs:
  n: { type: integer, required: true }
steps:
  - id: each
    foreach: ${{ [range(.inputs.n)] }}
    uses: set
    with: { v: "${{ .item }}", i: "${{ .index }}" }
"""


def build_shim(s):
    so = s.path("jq_count.so")
    p = subprocess.run(["cc", "-shared", "-fPIC", "-o", so,
                        os.path.join(ROOT, "tests", "lib", "jq_count.c"), "-ldl"],
                       capture_output=True, text=True)
    s.check(p.returncode == 0, "the counting shim builds", p.stderr)
    return so


def counted_run(s, so, wf, n):
    db = s.path("count-%d.db" % n)
    out = s.path("count-%d" % n)
    p = cairn("run", wf, "--input", "n=%d" % n, "--json", db=db,
              env={"LD_PRELOAD": so, "JQ_COUNT_FILE": out})
    run = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
    outs = run.get("steps", {}).get("each", {}).get("output") or []
    s.check(p.returncode == 0 and len(outs) == n and outs[-1] == {"v": n - 1, "i": n - 1},
            "%d items run, each with its own element" % n, p.stderr[-300:])
    with open(out) as f:
        return int(f.read())


def journal_bytes(s, wf, n):
    db = s.path("bytes-%d.db" % n)
    p = cairn("run", wf, "--input", "n=%d" % n, "--json", db=db)
    run_id = json.loads(p.stdout.strip().splitlines()[-1])["id"]
    events, _ = cairn_json("journal", run_id, db=db)
    expanded = [e for e in events if e["type"] == "step_expanded"]
    s.check(len(expanded) == 1 and expanded[0]["data"]["items"] == list(range(n)),
            "%d items: step_expanded journals the list once" % n)
    return sum(len(json.dumps(e["data"])) for e in events)


def linear(s):
    wf = write(s, "counted.yaml", COUNTED)
    so = build_shim(s)
    small, large = counted_run(s, so, wf, 2000), counted_run(s, so, wf, 20000)
    s.check(small == large and small <= 2,
            "the foreach list is rendered once, at any size (jq evaluations: %d at 2,000 items,"
            " %d at 20,000)" % (small, large))
    small, large = journal_bytes(s, wf, 300), journal_bytes(s, wf, 3000)
    s.check(large < 13 * small, "the journal grows linearly: %d bytes at 300 items, %d at 3,000"
            % (small, large))


CRASHY = """cairn: 1
name: crashy
steps:
  - id: each
    foreach: ${{ .secrets.HOSTS | split(",") }}
    concurrency: 1
    run: echo ${{ .item }} | tee -a OUT; if [ ${{ .index }} = 1 ] && [ ! -e RELEASE ]; then sleep 60; fi
"""


def resume_same_list(s):
    out, release = s.path("out"), s.path("release")
    wf = write(s, "crashy.yaml", CRASHY.replace("OUT", out).replace("RELEASE", release))
    db = s.path("crash.db")
    env = dict(os.environ, CAIRN_SECRET_HOSTS="alpha,bravo,charlie")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    wait_for(lambda: os.path.exists(out) and open(out).read().count("\n") == 2,
             "the second item to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    open(release, "w").close()
    p = cairn("resume", db=db, env={"CAIRN_SECRET_HOSTS": "xray,yankee,zulu,whiskey"})
    s.check(p.returncode == 0, "resume finishes the foreach", p.stderr[-300:])
    runs, _ = cairn_json("runs", db=db)
    run, _ = cairn_json("show", runs[0]["id"], db=db)
    got = [o["stdout"].strip() for o in run["steps"]["each"]["output"] or []]
    s.check(got == ["alpha", "bravo", "charlie"],
            "after a crash the items are the journaled list, not a list rendered again", str(got))
    with open(out) as f:
        seen = f.read().split()
    s.check(seen[:2] == ["alpha", "bravo"] and "xray" not in seen, "no item ran with a new element",
            str(seen))


ITEMS = """cairn: 1
name: items
steps:
  - id: each
    foreach: ${{ [0, 1, 2, 3] }}
    concurrency: 2
    retry: { max_attempts: 2, delay: 0s }
    run: >-
      echo ${{ .index }} $CAIRN_ATTEMPT >> OUT;
      if [ ${{ .index }} = 0 ] && [ $CAIRN_ATTEMPT = 1 ]; then exit 3; fi;
      if [ ${{ .index }} -ge 2 ]; then while [ ! -e RELEASE ]; do sleep 0.05; done; fi
"""


def items_of(db, run_id):
    run, _ = cairn_json("show", run_id, db=db)
    return [(i["index"], i["status"], i["attempts"], i["in_flight"])
            for i in run["steps"]["each"].get("items", [])]


def show_items(s):
    out, release = s.path("items.out"), s.path("items.release")
    wf = write(s, "items.yaml", ITEMS.replace("OUT", out).replace("RELEASE", release))
    db = s.path("items.db")
    proc = subprocess.Popen([CAIRN, "--db", db, "run", wf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: os.path.exists(out) and {"2 1", "3 1"} <= set(open(out).read().splitlines()),
             "items 2 and 3 to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_id = cairn_json("runs", db=db)[0][0]["id"]
    got = items_of(db, run_id)
    s.check(got == [(0, "succeeded", 2, False), (1, "succeeded", 1, False),
                    (2, "running", 1, True), (3, "running", 1, True)],
            "show --json gives each item's attempts, and the items in flight at the kill", str(got))
    run, _ = cairn_json("show", run_id, db=db)
    s.check(all("error" in i for i in run["steps"]["each"]["items"]), "each item has its error")
    text = cairn("show", run_id, db=db).stdout
    lines = [l.split() for l in text.splitlines() if re.match(r"^\s+\[\d+\]", l)]
    s.check([l[:3] for l in lines] == [["[0]", "succeeded", "2"], ["[1]", "succeeded", "1"],
                                       ["[2]", "running", "1"], ["[3]", "running", "1"]]
            and all("in flight" in " ".join(l) for l in lines[2:]),
            "show lists the items with their attempts, those in flight marked", text)
    open(release, "w").close()
    p = cairn("resume", db=db)
    got = items_of(db, run_id)
    s.check(p.returncode == 0 and [g[1] for g in got] == ["succeeded"] * 4 and got[2][2] == 2,
            "resume runs the items in flight again and finishes", str(got))


def main():
    s = Suite("foreach")
    linear(s)
    resume_same_list(s)
    show_items(s)
    s.finish()


main()
