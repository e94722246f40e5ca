"""Fail-over on `cairn serve` nodes sharing one PostgreSQL journal (leases of
1.5 s): run families, and a run that cannot be resumed.

Families.

A family is a run and the child runs its `uses: workflow` steps started,
and theirs: here `fam` starts `mid` and a `leaf`, and `mid` starts another
`leaf`; every leaf waits in a shell step for a gate file.  Node A holds
every family when it is killed (-9).  The two other nodes take them over,
and each family must land whole on one node: a parent on one node and its
child on another would never learn of the child's end (a parent hears of
it from the engine that ran the child).

The split is forced rather than hoped for: while A's lease lapses, a
transaction of the test's holds the rows of every child run locked, so a
take-over that claimed runs one by one would take the parents (SKIP LOCKED
passes over the children) and leave the children to whichever node looks
next.  Checked: while any run of a family is locked, both nodes look for
lapsed runs (each renews its lease twice after A's lapsed) and claim none
of that family; once the lock goes, each family is claimed by one node;
with the gate open every run ends succeeded, no step journaled as finished
ran twice (each appends to a file), and verify passes.

A run that cannot be resumed (its definition, which the other nodes do not
serve, was edited in the database: every node refuses it) is not held for
ever by the node that claimed it: that node lets it go (no owner) and
never claims it again, the next node does the same, and then no node takes
it, however long they look (each node tries a run once).  Once the
definition is mended, a node started afterwards resumes it and it ends,
its finished step not run again.

A child run held apart from its parent (resumed on its own by `cairn
resume CHILD` while the parent's row was locked, so that a node then took
the parent alone): when the child ends, the node holding the parent is
told through the journal (a "child" command) and the parent goes on to its
end."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402
from cairn_test import CAIRN, Suite, wait_for  # noqa: E402
from cluster import (KEY, LEASE_MS, Cluster, check_verifies, db_now, kill,  # noqa: E402
                     lease_until)
from serve import wfdir  # noqa: E402

FAMILIES = 3

FAM = """cairn: 1
name: fam
inputs:
  n: { type: string }
steps:
  - id: first
    run: echo "first-${{ .inputs.n }}" >> %(log)s
  - id: mid
    needs: [first]
    uses: workflow
    with: { name: mid, inputs: { n: "${{ .inputs.n }}" } }
  - id: leaf
    needs: [first]
    uses: workflow
    with: { name: leaf, inputs: { n: "${{ .inputs.n }}", k: fam } }
  - id: last
    needs: [mid, leaf]
    run: echo "last-${{ .inputs.n }}" >> %(log)s
"""

MID = """cairn: 1
name: mid
inputs:
  n: { type: string }
steps:
  - id: leaf
    uses: workflow
    with: { name: leaf, inputs: { n: "${{ .inputs.n }}", k: mid } }
  - id: after
    needs: [leaf]
    run: echo "mid-${{ .inputs.n }}" >> %(log)s
"""

LEAF = """cairn: 1
name: leaf
inputs:
  n: { type: string }
  k: { type: string }
steps:
  - id: wait
    run: |
      while [ ! -e %(gate)s ]; do sleep 0.05; done
      echo "leaf-${{ .inputs.n }}-${{ .inputs.k }}" >> %(log)s
"""

# every line the families write, each once
LINES = sorted(["first-%d" % i for i in range(FAMILIES)] + ["last-%d" % i for i in range(FAMILIES)] +
               ["mid-%d" % i for i in range(FAMILIES)] +
               ["leaf-%d-%s" % (i, k) for i in range(FAMILIES) for k in ("fam", "mid")])


class RowLock:
    """A psql session holding the rows a query selects FOR UPDATE, until
    release()."""

    def __init__(self, c, where):
        self.p = subprocess.Popen(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
             str(c.pg.port), "-U", "postgres", "-d", c.name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.p.stdin.write("BEGIN;\nSELECT count(*) FROM (SELECT id FROM runs WHERE %s FOR UPDATE)"
                           " AS l;\n" % where)
        self.p.stdin.flush()
        self.count = int(self.p.stdout.readline())   # answered once the locks are had

    def release(self):
        self.p.communicate("COMMIT;\n", timeout=30)


def family_rows(c):
    """{run id: (parent id, owner, status)}."""
    return {r[0]: (r[1] or None, r[2], r[3]) for r in c.sql(
        "SELECT id, coalesce(parent_id, ''), coalesce(owner, ''), status FROM runs")}


def root_of(rows, run):
    while rows[run][0]:
        run = rows[run][0]
    return run


def spawned(node, run, step):
    st, _, body = node.request("GET", "/v1/runs/%s/events" % run)
    return st == 200 and any(e["type"] == "step_spawned" and e.get("step") == step
                             for e in body["events"])


def test_family_moves_whole(s, pg):
    log, gate = s.path("family.log"), s.path("gate")
    files = {n + ".yaml": t % {"log": log, "gate": gate} for n, t in
             (("fam", FAM), ("mid", MID), ("leaf", LEAF))}
    c = Cluster(s, pg, "family", files)
    lock = None
    try:
        a = c.start_node()   # alone: every family starts on it
        parents = [a.start_run("fam", {"n": str(i)}) for i in range(FAMILIES)]
        leaves = lambda: [r for r, (p, _o, _s) in family_rows(c).items()
                          if p and r not in parents and spawned(a, r, "wait")]
        wait_for(lambda: len(leaves()) == 2 * FAMILIES, "every leaf to be in its shell step", 60)
        rows = family_rows(c)
        s.check(len(rows) == 4 * FAMILIES and len({o for _p, o, _s in rows.values()}) == 1,
                "every run of every family is held by the node that started them", rows)
        b, d = c.start_node(), c.start_node()
        lock = RowLock(c, "parent_id IS NOT NULL")
        s.check(lock.count == 3 * FAMILIES, "the children's rows are locked", lock.count)
        kill(c, a)
        lapse = lease_until(c, a)
        looked = wait_for(lambda: all(lease_until(c, n) > lapse + 2 * LEASE_MS for n in (b, d)),
                          "both nodes to renew twice after the dead node's lease lapsed", 60)
        s.check(looked, "both live nodes looked for lapsed runs while the children were locked")
        rows = family_rows(c)
        moved = {r: o for r, (_p, o, _s) in rows.items() if a.owner not in o}
        s.check(not moved, "no run of a family with a locked member was claimed", moved)
        lock.release()
        lock = None
        wait_for(lambda: all(a.owner not in o for _p, o, _s in family_rows(c).values()),
                 "every family to be claimed", 60)
        rows = family_rows(c)
        owners = {}
        for r, (_p, o, _s) in rows.items():
            owners.setdefault(root_of(rows, r), set()).add(o)
        s.check(all(len(o) == 1 for o in owners.values()),
                "each family is claimed whole by one node", owners)
        with open(gate, "w"):
            pass
        ended = wait_for(lambda: all(st == "succeeded" for _p, _o, st in family_rows(c).values()),
                         "every run of every family to succeed", 60)
        s.check(ended, "every run of every family ends succeeded", family_rows(c))
        with open(log) as f:
            lines = sorted(f.read().split())
        s.check(lines == LINES, "every step ran once (none journaled as finished ran again)",
                lines)
    finally:
        if lock:
            lock.release()
        c.stop()
    check_verifies(s, c, "verify passes")


LONE = """cairn: 1
name: lone
steps:
  - id: one
    run: echo one >> %(log)s
  - id: two
    needs: [one]
    run: |
      while [ ! -e %(gate)s ]; do sleep 0.05; done
      echo two >> %(log)s
"""


def test_unresumable_run_let_go(s, pg):
    log, gate = s.path("lone.log"), s.path("lone-gate")
    c = Cluster(s, pg, "lone", {"fam.yaml": FAM % {"log": log, "gate": gate}})
    try:
        a = c.start_node(wfdir(s, "lone-a-wf", {"lone.yaml": LONE % {"log": log, "gate": gate}}),
                         "lone-a")
        run = a.start_run("lone")
        wait_for(lambda: spawned(a, run, "two"), "the run to be in its second step", 60)
        b, d = c.start_node(), c.start_node()   # they serve fam only
        c.sql("UPDATE definitions SET source = source || '\\x0a'::bytea WHERE name = 'lone'")
        kill(c, a)
        line = "run %s: let go" % run
        let_go = wait_for(lambda: all(line in n.stderr() for n in (b, d)),
                          "both nodes to try the run and let it go", 60)
        s.check(let_go, "each node that could not resume the run let it go",
                b.stderr()[-600:] + d.stderr()[-600:])
        since = db_now(c)
        wait_for(lambda: all(lease_until(c, n) > since + 2 * LEASE_MS for n in (b, d)),
                 "both nodes to renew twice more", 60)
        rows = c.sql("SELECT coalesce(owner, ''), epoch, status FROM runs WHERE id = '%s'" % run)
        s.check(rows == [("", "2", "running")], "then no node holds it and none claims it again"
                " (claimed twice, once by each node)", rows)
        s.check([n.stderr().count(line) for n in (b, d)] == [1, 1],
                "each node tried the run once", [n.stderr().count(line) for n in (b, d)])
        s.check("not taken over" in b.stderr() + d.stderr() and
                "does not match the hash" in b.stderr() + d.stderr(),
                "the log says why the run could not be resumed", b.stderr()[-600:])
        c.sql("UPDATE definitions SET source = substring(source FROM 1 FOR length(source) - 1)"
              " WHERE name = 'lone'")
        e = c.start_node()   # a node that can: it takes the run at its start
        with open(gate, "w"):
            pass
        ended = wait_for(lambda: c.sql("SELECT status FROM runs WHERE id = '%s'" % run) ==
                         [("succeeded",)], "the mended run to succeed", 60)
        s.check(ended, "once its definition is mended, a new node resumes the run to its end",
                e.stderr()[-600:])
        with open(log) as f:
            s.check(f.read().split() == ["one", "two"], "its finished step did not run again")
    finally:
        c.stop()
    check_verifies(s, c, "verify passes")


UP = """cairn: 1
name: up
steps:
  - id: kid
    uses: workflow
    with: { name: down }
  - id: after
    needs: [kid]
    run: echo up >> %(log)s
"""

DOWN = """cairn: 1
name: down
steps:
  - id: wait
    run: |
      while [ ! -e %(gate)s ]; do sleep 0.05; done
      echo down >> %(log)s
"""


def test_child_apart_tells_its_parent(s, pg):
    log, gate = s.path("apart.log"), s.path("apart-gate")
    c = Cluster(s, pg, "apart", {n + ".yaml": w % {"log": log, "gate": gate}
                                 for n, w in (("up", UP), ("down", DOWN))})
    lock, resumer = None, None
    try:
        a = c.start_node()
        parent = a.start_run("up")
        kids = lambda: [r for r, (p, _o, _s) in family_rows(c).items() if p == parent]
        wait_for(lambda: kids() and spawned(a, kids()[0], "wait"), "the child to be in its step", 60)
        kid = kids()[0]
        b = c.start_node()
        lock = RowLock(c, "id = '%s'" % parent)
        kill(c, a)
        lapse = lease_until(c, a)
        wait_for(lambda: db_now(c) > lapse, "the dead node's lease to lapse", 60)
        env = dict(os.environ, CAIRN_JOURNAL_KEY=KEY, CAIRN_FILES=s.path("resumer"))
        err = open(s.path("resumer.err"), "w")
        resumer = subprocess.Popen([CAIRN, "--db", c.url, "resume", kid], stdout=subprocess.DEVNULL,
                                   stderr=err, env=env)
        wait_for(lambda: ":%d:" % resumer.pid in family_rows(c)[kid][1],
                 "`cairn resume` to hold the child", 60)
        lock.release()
        lock = None
        wait_for(lambda: b.owner in family_rows(c)[parent][1], "the node to take the parent", 60)
        s.check(b.owner not in family_rows(c)[kid][1], "the parent and its child are held apart",
                family_rows(c))
        with open(gate, "w"):
            pass
        s.check(resumer.wait(60) == 0, "`cairn resume` runs the child to its end")
        err.close()
        ended = wait_for(lambda: family_rows(c)[parent][2] == "succeeded",
                         "the parent to succeed", 60)
        s.check(ended, "the node holding the parent is told of the child's end; the parent ends",
                (family_rows(c), b.stderr()[-600:]))
        with open(log) as f:
            s.check(sorted(f.read().split()) == ["down", "up"], "every step ran once")
        s.check(c.sql("SELECT count(*) FROM commands") == [("0",)],
                "no command is left behind")
    finally:
        if lock:
            lock.release()
        if resumer and resumer.poll() is None:
            resumer.kill()
            resumer.wait()
        c.stop()
    check_verifies(s, c, "verify passes")


def main():
    s = Suite("failover_family")
    pg = servers.Postgres()
    try:
        for t in (test_family_moves_whole, test_unresumable_run_let_go,
                  test_child_apart_tells_its_parent):
            try:
                t(s, pg)
            except Exception as e:
                s.check(False, t.__name__, repr(e))
    finally:
        pg.stop()
    s.finish()


if __name__ == "__main__":
    main()
