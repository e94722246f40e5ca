"""make bench, cluster: W2 through one, two and three `cairn serve` nodes on
one PostgreSQL journal (bench/run.sh's server: fsync and synchronous_commit
on, reached over its Unix socket).

    python3 bench/cluster.py SOCKET_DIR PORT DATABASE OUT_DIR

For each node count the schema is emptied, the nodes start, and RUNS
(BENCH_CLUSTER_RUNS, 1,000) runs of W2's workflow (100 `set` steps, each
reading the one before it) are started through the API from 16 client
threads; the time runs from the first request to the last run's end
(polled in the runs table).  With two nodes or more, three ways
(BENCH_CLUSTER_WAYS picks some):

- "every": through every node's API in turn, each node placing the runs
  it receives (`--placement spread`, the default);
- "one": all through the first node's API, which places them;
- "local": through every node's API in turn, each run held by the node
  that received it (`--placement local`).

Beside it, in the same run:

- the raw fsync rate of the server's disk (pwrite + fdatasync of 4 KiB,
  back to back, for half a second in its folder, before each measurement);
- PostgreSQL's WAL syncs and commits a second (pg_stat_wal.wal_sync and
  pg_stat_database.xact_commit, before and after);
- the CPU seconds the nodes, the server's processes (a backend that came
  and went meanwhile is missed) and this client spent (/proc's utime +
  stime), and what every other process on the machine took (/proc/stat's
  busy time less those): what a node does with a core of its own can be
  told from what the shared machine's two cores allowed.

Prints one line per node count; exits non-zero when a run does not end
succeeded within the time-out.  Python 3 standard library only.
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAIRN = os.path.join(ROOT, "cairn")
RUNS = int(os.environ.get("BENCH_CLUSTER_RUNS", "1000"))
STEPS = 100
CLIENTS = 16
END_TIMEOUT_S = 600
KEY = "b3" * 32
TICK = os.sysconf("SC_CLK_TCK")


def workflow():
    lines = ["cairn: 1", "name: w2", "steps:", "  - id: s0", "    uses: set", "    with: { n: 0 }"]
    for i in range(1, STEPS):
        lines += ["  - id: s%d" % i, "    uses: set",
                  "    with: { n: %d, prev: \"${{ .steps.s%d.output.n }}\" }" % (i, i - 1)]
    return "\n".join(lines) + "\n"


class Pg:
    def __init__(self, sock, port, db):
        self.sock, self.port, self.db = sock, port, db
        self.url = "postgresql://postgres@%s:%s/%s" % (sock.replace("/", "%2F"), port, db)

    def sql(self, q):
        p = subprocess.run(["psql", "-X", "-q", "-At", "-h", self.sock, "-p", self.port, "-U",
                            "postgres", "-d", self.db, "-c", q], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("psql: %s" % p.stderr)
        return p.stdout.strip()

    def counters(self):
        syncs = self.sql("SELECT wal_sync FROM pg_stat_wal")
        commits = self.sql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return int(syncs), int(commits)


def cpu_of(pids):
    """{pid: CPU seconds so far} of those still there."""
    out = {}
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / TICK
        except (OSError, IndexError, ValueError):
            pass
    return out


def cpu_since(before, pids):
    """CPU seconds pids spent since before (cpu_of's); a process started
    meanwhile (a backend for a new connection) counts from 0."""
    now = cpu_of(pids)
    return sum(v - before.get(p, 0.0) for p, v in now.items())


def machine_busy():
    """CPU seconds every process on the machine has spent (not idle, not
    waiting for I/O), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / TICK


def postgres_pids():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/comm" % d) as f:
                    if f.read().startswith("postgres"):
                        out.append(int(d))
            except OSError:
                pass
    return out


def fsync_rate(folder, seconds=0.5):
    path = os.path.join(folder, "fsync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    block, n = b"\0" * 4096, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        os.pwrite(fd, block, 0)
        os.fdatasync(fd)
        n += 1
    os.close(fd)
    os.unlink(path)
    return n / seconds


class Node:
    def __init__(self, pg, wf, out, i, placement):
        self.port_file = os.path.join(out, "n%d.port" % i)
        env = dict(os.environ, CAIRN_JOURNAL_KEY=KEY, CAIRN_FILES=os.path.join(out, "n%d" % i),
                   CAIRN_SERVE_RATE_PER_S="1000000", CAIRN_SERVE_RATE_BURST="1000000")
        self.err = open(os.path.join(out, "n%d.err" % i), "w")
        self.proc = subprocess.Popen([CAIRN, "--db", pg.url, "serve", "--workflows", wf, "--listen",
                                      "127.0.0.1:0", "--port-file", self.port_file,
                                      "--placement", placement],
                                     stdout=subprocess.DEVNULL, stderr=self.err, env=env)
        end = time.monotonic() + 30
        while not (os.path.exists(self.port_file) and open(self.port_file).read().strip()):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("a node did not start: see %s" % self.err.name)
            time.sleep(0.02)
        self.port = int(open(self.port_file).read())

    def start_run(self, conn):
        conn.request("POST", "/v1/workflows/w2/runs", body='{"inputs":{}}',
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read()
        if r.status not in (200, 201):
            raise RuntimeError("start: %d %s" % (r.status, body[:200]))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)
        self.err.close()
        os.unlink(self.port_file)


def start_all(nodes):
    """RUNS starts from CLIENTS threads, each on one kept-alive connection
    to one of nodes, in turn."""
    counts = [RUNS // CLIENTS + (1 if c < RUNS % CLIENTS else 0) for c in range(CLIENTS)]
    errors = []

    def client(c):
        node = nodes[c % len(nodes)]
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=120)
        try:
            for _ in range(counts[c]):
                node.start_run(conn)
        except Exception as e:   # reported below: a bench with failed starts says so
            errors.append(e)
        finally:
            conn.close()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("starting runs: %r" % errors[0])


# way: (the nodes' --placement, whether the runs enter through the first node only)
WAYS = {"every": ("spread", False), "one": ("spread", True), "local": ("local", False)}


def measure(pg, wf, out, n, way):
    pg.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    placement, one_entry = WAYS[way]
    nodes = [Node(pg, wf, out, i, placement) for i in range(n)]
    try:
        disk = fsync_rate(os.path.dirname(pg.sock))   # the server's folder: its disk
        syncs0, commits0 = pg.counters()
        pids = [x.proc.pid for x in nodes]
        cpu_nodes0, cpu_pg0 = cpu_of(pids), cpu_of(postgres_pids())
        busy0, me0 = machine_busy(), sum(os.times()[:2])
        t0 = time.monotonic()
        start_all(nodes[:1] if one_entry else nodes)
        while True:
            done = int(pg.sql("SELECT count(*) FROM runs WHERE status IN ('succeeded','failed','cancelled')"))
            if done >= RUNS or time.monotonic() - t0 > END_TIMEOUT_S:
                break
            time.sleep(0.05)
        secs = time.monotonic() - t0
        cpu_nodes = cpu_since(cpu_nodes0, pids)
        cpu_pg = cpu_since(cpu_pg0, postgres_pids())
        busy, me = machine_busy() - busy0, sum(os.times()[:2]) - me0
        syncs1, commits1 = pg.counters()
        ok = int(pg.sql("SELECT count(*) FROM runs WHERE status = 'succeeded'"))
        held = sorted(int(x) for x in pg.sql("SELECT count(*) FROM runs GROUP BY owner").split())
    finally:
        for x in nodes:
            x.stop()
    steps = RUNS * STEPS
    return {"nodes": n, "way": way, "held": held, "steps_s": steps / secs, "secs": secs,
            "ok": ok == RUNS,
            "node_cpu_s": cpu_nodes, "pg_cpu_s": cpu_pg, "client_cpu_s": me,
            "others_cpu_s": max(0.0, busy - cpu_nodes - cpu_pg - me),
            "steps_per_node_cpu_s": steps / cpu_nodes if cpu_nodes else 0,
            "wal_syncs_s": (syncs1 - syncs0) / secs, "commits_s": (commits1 - commits0) / secs,
            "disk_fsync_s": disk}


def main():
    sock, port, db, out = sys.argv[1:5]
    pg = Pg(sock, port, db)
    wf = os.path.join(out, "wf")
    os.makedirs(wf, exist_ok=True)
    with open(os.path.join(wf, "w2.yaml"), "w") as f:
        f.write(workflow())
    counts = [int(x) for x in os.environ.get("BENCH_CLUSTER_NODES", "1 2 3").split()]
    ways = os.environ.get("BENCH_CLUSTER_WAYS", "every one local").split()
    rc, one = 0, None
    for n, way in [(n, w) for n in counts for w in (ways[:1] if n == 1 else ways)]:
        m = measure(pg, wf, out, n, way)
        one = one or m["steps_s"]
        sec = m["secs"]
        print("%-46s %7.0f steps/s x%.2f | runs a node %s | cores: nodes %.2f pg %.2f client %.2f"
              " others %.2f | %s steps a node CPU-s | WAL syncs %.0f/s commits %.0f/s |"
              " disk fsync %.0f/s" %
              ("pg cluster W2 %dx%d, %d node%s%s" % (RUNS, STEPS, n, "" if n == 1 else "s",
                                                    "" if n == 1 else ", " + way),
               m["steps_s"], m["steps_s"] / one, "/".join(str(h) for h in m["held"]),
               m["node_cpu_s"] / sec, m["pg_cpu_s"] / sec,
               m["client_cpu_s"] / sec, m["others_cpu_s"] / sec,
               format(int(m["steps_per_node_cpu_s"]), ","), m["wal_syncs_s"], m["commits_s"],
               m["disk_fsync_s"]))
        print(json.dumps(m), file=sys.stderr)
        if not m["ok"]:
            print("bench: not every run of %d node(s) ended succeeded" % n, file=sys.stderr)
            rc = 1
    sys.exit(rc)


if __name__ == "__main__":
    main()
