"""Power loss: rebuild the journal's files as a power loss at many moments
would leave them, and check that recovery keeps every acknowledged step and
runs nothing finished again.

A run of a workflow of STAGES stages, each a foreach of ITEMS shell items at
once (their results arrive in bursts, so the writer writes records while
earlier ones sync), is traced by an LD_PRELOAD library (tests/shim/
powerloss.c): every write, sync, truncate, unlink and rename of the
journal's files, and each item's side effect (a line "STEP.INDEX ATTEMPT"
appended to a mark file).  Syncs are slowed (SLOW_SYNC_US) as on a slow
disk.  The engine is killed with -9 early, and `cairn resume` (traced too)
recovers and finishes the run; so the trace holds a running engine, the log
started over (when the resume takes it, and when it shuts down), SQLite's
checkpoint at the last close, and recovery itself.

A crash point is a place in the trace.  The files there are what was synced
(a sync counts once it returned; writes it covered are still unsynced while
it runs), metadata (create, truncate, unlink, rename) as it happened, and a
random subset of the unsynced writes, each dropped, kept or torn at 512-byte
sectors.  The mark file holds the side effects made before the point.  Each
state is checked:
  - every item whose side effect happened has its step_started in the
    journal (invariant 1), read before anything resumes;
  - `cairn resume` finishes the run; it succeeds; `cairn verify` passes;
  - every item ran; no acknowledged item ran again (an item is acknowledged
    once an item of the next stage made its side effect: that stage started
    only after every item before it was durably done).
A third of the crash points fall where they matter most: in a log restart,
a checkpoint, recovery, and where log records were unsynced side by side (a
torn record then may precede a whole one: still a crash, not damage).
CAIRN_POWERLOSS_STATES sets how many states (default 200); CAIRN_POWERLOSS_SEED
the random seed.  A damaged log, seen through the CLI, is checked last.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, ROOT, Suite, wait_for  # noqa: E402

SHIM = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tools", "powerloss.so")
STAGES = 3
ITEMS = 12   # a stage is a foreach of this many items at once: results arrive while syncing
STATES = int(os.environ.get("CAIRN_POWERLOSS_STATES", "200"))
SECTOR = 512
TRACES = 5
SLOW_SYNC_US = 2000   # syncs as on a slow disk: the writer writes while the syncer syncs


def workflow():
    lines = ["cairn: 1", "name: powerloss", "inputs:", "  mark: { type: string, required: true }",
             "steps:"]
    for i in range(STAGES):
        lines += ["  - id: f%d" % i,
                  "    foreach: ${{ [range(%d)] }}" % ITEMS,
                  # dash's echo writes through write(), which the library sees;
                  # bash's goes through stdio, which it does not
                  "    run: sh -c 'echo \"$0 $1\" >> \"$2\"' f%d.${{ .index }} \"$CAIRN_ATTEMPT\""
                  " ${{ .inputs.mark }}; sleep 0.01" % i]
    return "\n".join(lines) + "\n"


def items(i):
    return {"f%d.%d" % (i, k) for k in range(ITEMS)}


def cairn_in(d, *args, env=None, timeout=120):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([CAIRN, "--db", "j.db"] + list(args), cwd=d, env=e, text=True,
                          capture_output=True, timeout=timeout)


def marks(text):
    return [tuple(l.split()) for l in text.splitlines() if l.strip()]


# ---- tracing ----------------------------------------------------------------

def trace_run(s, n):
    d = s.path("traced%d" % n)
    os.makedirs(d)
    with open(os.path.join(d, "wf.yaml"), "w") as f:
        f.write(workflow())
    env = dict(os.environ, LD_PRELOAD=SHIM, CAIRN_PL_TRACE=os.path.join(d, "trace"),
               CAIRN_PL_DB=os.path.join(d, "j.db"), CAIRN_PL_MARK="mark",
               CAIRN_PL_SYNC_US=str(SLOW_SYNC_US))
    p = subprocess.Popen([CAIRN, "--db", "j.db", "run", "wf.yaml", "--input", "mark=mark"],
                         cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    half = "f1.0"   # early: most of the run is left to recovery

    def halfway():
        try:
            with open(os.path.join(d, "mark")) as f:
                return half in f.read()
        except FileNotFoundError:
            return False
    wait_for(halfway, "the traced run to reach " + half)
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = subprocess.run([CAIRN, "--db", "j.db", "resume"], cwd=d, env=env, text=True,
                       capture_output=True, timeout=120)
    s.check(r.returncode == 0, "the traced resume finishes", r.stderr[-300:])
    runs = json.loads(cairn_in(d, "runs", "--json").stdout)
    s.check(len(runs) == 1 and runs[0]["status"] == "succeeded", "the traced run succeeds")
    return d, runs[0]["id"]


def read_trace(d):
    ops = []
    with open(os.path.join(d, "trace")) as f:
        for line in f:
            parts = line.split()
            ops.append((int(parts[0]), parts[1], parts[2:]))
    return ops


# ---- the files as a power loss leaves them -----------------------------------

class Disk:
    """What the trace did so far: per file, what is durable and what is not."""

    def __init__(self, base):
        self.base = base
        self.files = {}       # name -> bytearray, durable
        self.pending = {}     # name -> [(seq, off, bytes)] written, not yet synced
        self.syncs = {}       # sync id -> (name, last seq it covers)
        self.mark = b""
        self.seq = 0

    def name(self, path):
        return os.path.basename(path)

    def apply(self, op):
        _, kind, a = op
        if kind == "M":
            self.mark += bytes.fromhex(a[0])
            return
        n = self.name(a[0])
        if kind == "O":
            if n not in self.files or a[1] == "1":
                self.files[n] = bytearray()
                self.pending[n] = []
        elif kind == "W":
            off, length = int(a[1]), int(a[2])
            data = bytes(length) if a[3] == "z" else bytes.fromhex(a[3])
            self.seq += 1
            self.pending.setdefault(n, []).append((self.seq, off, data))
            self.files.setdefault(n, bytearray())
        elif kind == "S+":
            self.syncs[a[1]] = (n, self.seq)
        elif kind == "S-":
            name, upto = self.syncs.pop(a[1])
            keep = []
            for seq, off, data in self.pending.get(name, []):
                if seq <= upto:
                    put(self.files[name], off, data)
                else:
                    keep.append((seq, off, data))
            self.pending[name] = keep
        elif kind == "T":
            length = int(a[1])
            f = self.files.setdefault(n, bytearray())
            del f[length:]
            f.extend(bytes(max(0, length - len(f))))
        elif kind == "U":
            self.files.pop(n, None)
            self.pending.pop(n, None)
        elif kind == "R":
            m = self.name(a[1])
            self.files[m] = self.files.pop(n, bytearray())
            self.pending[m] = self.pending.pop(n, [])

    def write_state(self, d, rng, unsynced):
        """The files into d: durable, plus unsynced writes as chosen."""
        os.makedirs(d)
        for n, image in self.files.items():
            img = bytearray(image)
            for _, off, data in self.pending.get(n, []) if unsynced else []:
                fate = rng.random()
                if fate < 0.4:
                    continue
                if fate < 0.7:
                    put(img, off, data)
                    continue
                for start in range(off - off % SECTOR, off + len(data), SECTOR):
                    lo, hi = max(start, off), min(start + SECTOR, off + len(data))
                    if rng.random() < 0.5:
                        put(img, lo, data[lo - off:hi - off])
            write_sparse(os.path.join(d, n), img)
        with open(os.path.join(d, "mark"), "wb") as f:
            f.write(self.mark)


def put(image, off, data):
    if len(image) < off:
        image.extend(bytes(off - len(image)))
    image[off:off + len(data)] = data


def write_sparse(path, image, block=65536):
    zero = bytes(block)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        for at in range(0, len(image), block):
            chunk = image[at:at + block]
            if chunk != zero[:len(chunk)]:
                f.seek(at)
                f.write(chunk)
        f.truncate(len(image))


# ---- one state --------------------------------------------------------------

def check_state(s, d, run_id, label):
    before = marks(open(os.path.join(d, "mark")).read())
    done = {m[0] for m in before}
    acked = set()
    for i in range(1, STAGES):
        if items(i) & done:
            acked |= items(i - 1)
    j = cairn_in(d, "journal", run_id, "--json")
    if j.returncode != 0 and ("no run" in j.stderr or "no journal" in j.stderr):
        # the run never became durable: nothing may have run
        return s.check(not before, "%s: no run, no side effect" % label, j.stderr[-300:])
    if not s.check(j.returncode == 0, "%s: the journal opens" % label, j.stderr[-300:]):
        return False
    events = json.loads(j.stdout)
    started = {"%s.%d" % (e["step"], e["data"]["index"]) for e in events
               if e["type"] == "step_started"}
    ok = s.check(done <= started, "%s: every step that acted had started durably" % label,
                 "acted without step_started: %s" % sorted(done - started))
    r = cairn_in(d, "resume")
    ok &= s.check(r.returncode == 0, "%s: resume exits 0" % label, r.stderr[-400:])
    show = cairn_in(d, "show", run_id, "--json")
    status = json.loads(show.stdout)["status"] if show.returncode == 0 else show.stderr
    ok &= s.check(status == "succeeded", "%s: the run succeeds" % label, str(status)[-300:])
    after = marks(open(os.path.join(d, "mark")).read())[len(before):]
    ran = {m[0] for m in before} | {m[0] for m in after}
    missing = sorted(set().union(*(items(i) for i in range(STAGES))) - ran)
    ok &= s.check(not missing, "%s: every step ran" % label, "missing %s" % missing[:5])
    again = sorted({m[0] for m in after} & acked)
    ok &= s.check(not again, "%s: no acknowledged step ran again (%d acknowledged)"
                  % (label, len(acked)), "ran again: %s" % again)
    v = cairn_in(d, "verify")
    ok &= s.check(v.returncode == 0, "%s: the journal verifies" % label, v.stdout[-300:])
    return ok


def kinds_of(ops):
    """Which crash points are inside a log restart, a checkpoint, recovery."""
    resume_pid = None
    first_pid = ops[0][0]
    kinds = [{"overlap"} if o else set() for o in overlapping(ops)]
    for i, (pid, kind, a) in enumerate(ops):
        if kind == "W" and a[0].endswith("-clog") and a[1] == "0":
            for k in range(max(0, i - 3), min(len(ops), i + 4)):
                kinds[k].add("restart")
        if kind == "W" and a[0].endswith("j.db"):
            kinds[i].add("checkpoint")
        if pid != first_pid and kind != "M" and resume_pid is None:
            resume_pid = pid
        if pid == resume_pid:
            kinds[i].add("recovery")
    return kinds


def overlapping(ops):
    """For each point, whether two log records or more are unsynced there:
    a torn record may then precede a whole one, which is still a crash."""
    pending, syncs, seq, out = [], {}, 0, []
    for _, kind, a in ops:
        if kind == "W" and a[0].endswith("-clog") and int(a[1]) >= 4096 and a[3] != "z":
            seq += 1
            pending.append(seq)
        elif kind == "S+" and a[0].endswith("-clog"):
            syncs[a[1]] = seq
        elif kind == "S-" and a[0].endswith("-clog"):
            upto = syncs.pop(a[1])
            pending = [x for x in pending if x > upto]
        out.append(len(pending) >= 2)
    return out


def damaged_log(s, d, run_id, at):
    """A state whose log holds records SQLite lacks, damaged in its first:
    every command refuses the journal (exit 3) and changes no file; with the
    damage accepted, the run finishes."""
    files = ["j.db", "j.db-wal", "j.db-clog", "j.db.key"]
    clog = os.path.join(d, "j.db-clog")
    with open(clog, "r+b") as f:
        f.seek(at + 40)
        c = f.read(1)
        f.seek(at + 40)
        f.write(bytes([c[0] ^ 0x10]))
    cairn_in(d, "journal", "nothing")   # a first reader makes SQLite's empty -wal if none
    before = {n: (open(os.path.join(d, n), "rb").read(), os.stat(os.path.join(d, n)).st_mtime_ns)
              for n in files if os.path.exists(os.path.join(d, n))}
    r = cairn_in(d, "show", run_id)
    s.check(r.returncode == 3 and ("j.db-clog: damaged at offset %d" % at) in r.stderr,
            "a damaged log: show exits 3 naming the file and offset", r.stderr[-400:])
    r = cairn_in(d, "resume")
    s.check(r.returncode == 3 and ("CAIRN_CLOG_ACCEPT_DAMAGE=%d" % at) in r.stderr,
            "a damaged log: resume exits 3 saying what to do", r.stderr[-400:])
    after = {n: (open(os.path.join(d, n), "rb").read(), os.stat(os.path.join(d, n)).st_mtime_ns)
             for n in files if os.path.exists(os.path.join(d, n))}
    s.check(before == after, "a damaged log: the refusals changed no file of the journal",
            "changed: %s" % [n for n in files if before.get(n) != after.get(n)])
    r = cairn_in(d, "resume", env={"CAIRN_CLOG_ACCEPT_DAMAGE": str(at)})
    show = cairn_in(d, "show", run_id, "--json")
    # the dropped records may have held the run's start: then there is no run
    status = json.loads(show.stdout)["status"] if show.returncode == 0 else "none"
    s.check(r.returncode == 0 and status in ("succeeded", "none") and
            cairn_in(d, "verify").returncode == 0,
            "a damaged log, accepted: what is left resumes, finishes and verifies",
            r.stderr[-400:] + status)


def unapplied_point(ops):
    """A point where the log holds synced records of the killed engine that
    nothing has written to SQLite since, one of them written after the first
    was synced (so damage to the first is told from a torn tail): (the trace
    position just past that one's sync, the first one's offset)."""
    first_pid = ops[0][0]
    since, syncs, seq, durable = [], {}, 0, 0   # since: (offset, seq, written once the first was synced)
    for i, (pid, kind, a) in enumerate(ops):
        if kind == "M":
            continue
        if pid != first_pid:
            break
        if kind == "W" and (a[0].endswith("-wal") or (a[0].endswith("-clog") and a[1] == "0")):
            since = []
        elif kind == "W" and a[0].endswith("-clog") and a[3] != "z" and int(a[1]) >= 4096:
            seq += 1
            since.append((int(a[1]), seq, bool(since) and since[0][1] <= durable))
        elif kind == "S+" and a[0].endswith("-clog"):
            syncs[a[1]] = seq
        elif kind == "S-" and a[0].endswith("-clog"):
            durable = max(durable, syncs.pop(a[1]))
            if any(proof and n <= durable for _, n, proof in since):
                return i + 1, since[0][0]
    return None, None


def main():
    s = Suite("powerloss")
    seed = os.environ.get("CAIRN_POWERLOSS_SEED", str(os.getpid()))
    print("seed %s" % seed)
    rng = random.Random(seed)
    if not s.check(os.path.exists(SHIM), "the tracing library is built", SHIM):
        s.finish()
    # records unsynced side by side, and synced records not yet applied to
    # SQLite when the engine was killed, depend on timing: trace again (a few
    # times at most) when the trace lacks either
    for n in range(TRACES):
        traced, run_id = trace_run(s, n)
        ops = read_trace(traced)
        kinds = kinds_of(ops)
        if any("overlap" in k for k in kinds) and unapplied_point(ops)[0] is not None:
            break
    print("%d operations traced" % len(ops))
    traced_marks = {m[0] for op in ops if op[1] == "M"
                    for m in marks(bytes.fromhex(op[2][0]).decode())}
    everything = set().union(*(items(i) for i in range(STAGES)))
    s.check(traced_marks == everything, "the trace holds every item's side effect",
            "missing %s" % sorted(everything - traced_marks)[:5])
    # two thirds anywhere, a third in the moments that matter most
    special = ("restart", "checkpoint", "recovery", "overlap")
    points = [rng.randrange(len(ops) + 1) for _ in range(STATES * 2 // 3)]
    for n, kind in enumerate(special):
        where = [i for i in range(len(ops)) if kind in kinds[i]] or list(range(len(ops)))
        share = (STATES - len(points)) // (len(special) - n)
        points += [rng.choice(where) + 1 for _ in range(share)]
    points.sort()
    # the states need no durability of their own: memory, where syncs cost nothing
    states = tempfile.mkdtemp(prefix="cairn-powerloss-", dir="/dev/shm") \
        if os.path.isdir("/dev/shm") else s.path("states")
    disk = Disk(traced)
    at, covered, failed = 0, {"restart": 0, "checkpoint": 0, "recovery": 0, "overlap": 0}, 0
    t0 = time.monotonic()
    for n, point in enumerate(points):
        while at < point:
            disk.apply(ops[at])
            at += 1
        for k in kinds[point - 1] if point else ():
            covered[k] += 1
        d = os.path.join(states, "state%d" % n)
        disk.write_state(d, rng, unsynced=n % 4 != 0)
        if check_state(s, d, run_id, "state %d (op %d of %d)" % (n, point, len(ops))):
            shutil.rmtree(d)
        else:
            failed += 1
    if not failed:
        shutil.rmtree(states, ignore_errors=True)
    else:
        print("kept the failed states in %s" % states)
    print("%d states in %.1f s; crash points in a log restart %d, a checkpoint %d,"
          " recovery %d, with log records unsynced side by side %d"
          % (len(points), time.monotonic() - t0, covered["restart"], covered["checkpoint"],
             covered["recovery"], covered["overlap"]))
    s.check(covered["restart"] and covered["checkpoint"] and covered["recovery"],
            "crash points fell in a log restart, a checkpoint and recovery", str(covered))
    point, at = unapplied_point(ops)
    if s.check(point is not None, "the trace has a point with unapplied records in the log"):
        disk = Disk(traced)
        for op in ops[:point]:
            disk.apply(op)
        d = s.path("damaged")
        disk.write_state(d, rng, unsynced=False)
        damaged_log(s, d, run_id, at)
    s.finish()


if __name__ == "__main__":
    main()
