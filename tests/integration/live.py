"""The terminal view of `cairn run`, under a real pseudo-terminal: progress
counts, step durations, the approve and reject commands (run as printed),
who decided and what they said, child runs' prefixes, the outputs; NO_COLOR;
and `--json` and pipes keeping their line per transition."""
import json
import os
import re
import select
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import CAIRN, ROOT, Suite, cairn, cairn_json, wait_for, write  # noqa: E402

PARENT = """cairn: 1
name: deploy
outputs:
  doubled: ${{ .steps.sub.output.doubled }}
  greeting: ${{ .steps.hello.output.stdout }}
steps:
  - id: hello
    run: echo hi
  - id: sub
    needs: hello
    uses: workflow
    with: { name: builder, inputs: { n: 21 } }
  - id: gate
    needs: sub
    uses: approval
    with: { prompt: "Ship it?", approvers: %s }
  - id: ship
    needs: gate
    run: sleep 0.3; echo shipped
  - id: last
    needs: ship
    uses: set
    with: { done: true }
on_failure:
  - id: tell
    run: echo failed
"""

CHILD = """cairn: 1
name: builder
inputs:
  n: { type: integer, required: true }
outputs:
  doubled: ${{ .steps.double.output.v }}
steps:
  - id: compile
    run: echo compiled
  - id: double
    needs: compile
    uses: set
    with: { v: "${{ .inputs.n * 2 }}" }
"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")


OPEN = []


class Tty:
    """cairn under a pseudo-terminal; read() gathers what it printed."""

    def __init__(self, args, cwd, env=None):
        self.master, slave = os.openpty()
        e = dict(os.environ)
        e.pop("NO_COLOR", None)
        e.update(env or {})
        self.proc = subprocess.Popen([CAIRN] + args, stdin=slave, stdout=slave, stderr=slave,
                                     cwd=cwd, env=e, close_fds=True)
        os.close(slave)
        self.raw = b""
        OPEN.append(self)

    def read(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:   # the terminal closed: cairn has exited
            data = b""
        self.raw += data
        return bool(data)

    def wait(self, pattern, what, timeout=30.0):
        """Read until pattern matches the finished lines; returns the match."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, "\n".join(self.lines()), re.M)
            if m:
                return m
            if not self.read(0.05) and self.proc.poll() is not None:
                break
        raise AssertionError("timed out waiting for %s; got %r" % (what, self.text()))

    def close(self):
        """Stop cairn if a failed check left it waiting; close the terminal."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def status(self):
        """The status line showing now: what follows the last newline and erase."""
        return ANSI.sub("", self.text().split("\n")[-1].split("\r\x1b[K")[-1])

    def wait_status(self, want, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.status() != want:
            if not self.read(0.05) and self.proc.poll() is not None:
                break
        return self.status()

    def finish(self, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end and (self.read(0.05) or self.proc.poll() is None):
            pass
        rc = self.proc.wait(timeout=5)
        self.close()
        return rc

    def text(self):
        return self.raw.decode("utf-8", "replace")

    def lines(self):
        """The finished lines: what follows the last status-line erase on each."""
        out = []
        for line in self.text().split("\n"):
            line = line.rstrip("\r").split("\r\x1b[K")[-1]
            out.append(ANSI.sub("", line))
        return out


def setup(s, name, approvers):
    d = s.path(name)
    os.makedirs(d)
    write(s, os.path.join(name, "parent.yaml"), PARENT % approvers)
    write(s, os.path.join(name, "child.yaml"), CHILD)
    return d


def shell(cmd, cwd):
    """Run a command line as a user would type it, cairn on the PATH."""
    env = dict(os.environ, PATH=ROOT + os.pathsep + os.environ["PATH"])
    return subprocess.run(cmd, shell=True, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


def step_lines(lines, prefix=""):
    """(done, total, word, step, seconds or None) of each step line, in order."""
    pat = re.compile(r"^  %s(\d+)/(\d+)\s+(ok|failed|skipped)\s+(\S+)(?:\s+(\d+\.\d)s)?"
                     % re.escape(prefix))
    out = []
    for line in lines:
        m = pat.match(line)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), m.group(3), m.group(4),
                        float(m.group(5)) if m.group(5) else None))
    return out


def test_the_view(s):
    d = setup(s, "view", "[alice]")
    db = s.path("view", "ops' journal.db")   # the command must quote it
    t = Tty(["--db", db, "run", os.path.join(d, "parent.yaml")], cwd=d)
    m = t.wait(r"^      approve: (cairn .*)$", "the approve command")
    cmd = m.group(1)
    run_id = re.search(r"^run (\S+): deploy, 5 steps$", "\n".join(t.lines()), re.M)
    s.check(run_id is not None, "the header names the run, its workflow and its 5 steps",
            repr(t.lines()[:3]))
    want = ["cairn", "--db", os.path.realpath(db), "approve", run_id.group(1) if run_id else "?",
            "gate", "--as", "alice"]
    s.check(shlex.split(cmd) == want,
            "the approve command names the journal (quoted), the run, the step and the approver",
            "%r != %r" % (cmd, want))
    rej = t.wait(r"^      reject:  (.*)$", "the reject command").group(1)
    s.check(rej == cmd.replace(" approve ", " reject ") + " --comment 'why'",
            "the reject form is printed too", rej)
    status = t.wait_status("2/5 awaiting approval gate")
    s.check(status == "2/5 awaiting approval gate",
            "the status line shows progress and the open approval", repr(status))
    elsewhere = s.path()   # typed in another folder: --db makes it work there
    p = shell(cmd + " --comment 'ship it'", elsewhere)
    if not s.check(p.returncode == 0, "the approve command works as printed", p.stdout + p.stderr):
        return   # the run still waits: closed below
    rc = t.finish()
    lines = t.lines()
    s.check(rc == 0, "the run succeeds", str(rc))
    top = step_lines(lines)
    s.check([(x[0], x[1], x[3]) for x in top] ==
            [(1, 5, "hello"), (2, 5, "sub"), (3, 5, "gate"), (4, 5, "ship"), (5, 5, "last")],
            "each finished step has its line and the right count of 5", repr(top))
    ship = [x for x in top if x[3] == "ship"]
    s.check(ship and ship[0][4] is not None and ship[0][4] >= 0.3,
            "a step's duration covers its work (ship sleeps 0.3 s)", repr(ship))
    s.check(all(x[4] is not None for x in top), "every finished step shows its duration", repr(top))
    child = step_lines(lines, "builder: ")
    s.check([(x[0], x[1], x[3]) for x in child] == [(1, 2, "compile"), (2, 2, "double")],
            "a child run's steps carry its workflow's name and their own count", repr(child))
    s.check(any(re.match(r"^  builder: run succeeded in \d", l) for l in lines),
            "the child run's end is prefixed too", repr(lines))
    s.check('  gate approved by alice: "ship it"' in lines, "who decided, and the comment",
            repr(lines))
    tail = lines[lines.index("outputs:"):] if "outputs:" in lines else []
    s.check(tail[1:3] == ["  doubled: 42", '  greeting: "hi\\n"'], "the outputs at the end",
            repr(tail))
    s.check(any(re.match(r"^run succeeded in \d+\.\ds \(5/5 steps succeeded\)$", l) for l in lines),
            "the run's end with its count", repr(lines))
    s.check("\x1b[32m" in t.text(), "outcomes are coloured on a terminal")
    erases = t.text().count("\x1b[K")
    s.check(erases <= 2 * len([l for l in lines if l]), "the status line is redrawn only when it changes",
            "%d erases for %d lines" % (erases, len(lines)))
    s.check(not t.text().rstrip("\r\n").endswith("5/5"), "no status line is left behind")


def test_reject_with_the_default_journal(s):
    d = setup(s, "reject", "[alice, bob]")
    t = Tty(["run", "parent.yaml"], cwd=d, env={"NO_COLOR": "1", "CAIRN_DB": ""})
    cmd = t.wait(r"^      reject:  (cairn .*)$", "the reject command").group(1)
    t.wait(r"^  gate awaits approval", "the ask")
    s.check(re.match(r"^cairn reject \S+ gate --as NAME --comment 'why'$", cmd) is not None,
            "with ./cairn.db there is no --db; with two approvers the name is NAME", cmd)
    s.check("  gate awaits approval (1 needed; approvers alice, bob): Ship it?" in t.lines(),
            "the ask names the approvers and the prompt", repr(t.lines()))
    p = shell(cmd.replace("NAME", "bob"), d)
    if not s.check(p.returncode == 0, "the reject command works as printed", p.stdout + p.stderr):
        return
    rc = t.finish()
    lines = t.lines()
    s.check(rc == 1, "a rejected run exits 1", str(rc))
    s.check("  gate rejected by bob: \"why\"" in lines, "who rejected, and why", repr(lines))
    s.check(any(re.match(r"^run failed in \S+ \(2/5 steps succeeded\)", l) for l in lines),
            "the failed run counts the steps that succeeded", repr(lines))
    s.check(any(re.match(r"^  3/5\s+failed\s+gate\s", l) for l in lines),
            "the rejected gate is the third step done, failed", repr(lines))
    s.check(any(re.match(r"^  -\s+ok\s+tell\s", l) for l in lines),
            "an on_failure step is not counted among the workflow's steps", repr(lines))
    s.check(re.search(r"\x1b\[\d+m", t.text()) is None, "NO_COLOR: no colour", repr(t.text()[:200]))
    s.check("\r\x1b[K" in t.text(), "NO_COLOR keeps the status line")


def test_resume_shows_the_open_approval(s):
    d = setup(s, "resume", "[alice]")
    db = s.path("resume", "r.db")
    first = subprocess.Popen([CAIRN, "--db", db, "run", "parent.yaml"], cwd=d,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: json.loads(cairn("approvals", "--json", db=db).stdout or "[]"), "the approval")
    finally:
        first.terminate()
        first.wait(timeout=60)
    t = Tty(["--db", db, "resume"], cwd=d)
    cmd = t.wait(r"^      approve: (cairn .*)$", "the approve command after resume").group(1)
    head = re.search(r"^run (\S+): deploy, resumed at 2/5 steps$", "\n".join(t.lines()), re.M)
    s.check(head is not None, "resume says where the run stands", repr(t.lines()))
    s.check(head is not None and cmd == "cairn --db %s approve %s gate --as alice"
            % (os.path.realpath(db), head.group(1)),
            "resume prints the command for the approval opened before it", cmd)
    p = shell(cmd, s.path())
    if not s.check(p.returncode == 0, "that command works as printed", p.stdout + p.stderr):
        return
    rc = t.finish()
    top = step_lines(t.lines())
    s.check(rc == 0 and [(x[0], x[3]) for x in top] == [(3, "gate"), (4, "ship"), (5, "last")],
            "resume counts on from where the run stood", repr(top))
    s.check(top and top[0][4] is None and top[1][4] is not None,
            "a step begun before resume shows no made-up duration", repr(top))
    s.check("  doubled: 42" in t.lines(), "resume shows the outputs at the end", repr(t.lines()))


def test_resume_shows_only_runs_it_took(s):
    d = setup(s, "held", "[alice]")
    db = s.path("held", "h.db")
    engines = []

    def waiting():
        return [a["run"] for a in json.loads(cairn("approvals", "--json", db=db).stdout or "[]")]

    def start():
        engines.append(subprocess.Popen([CAIRN, "--db", db, "run", "parent.yaml"], cwd=d,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    try:
        start()
        held = wait_for(waiting, "the first approval")[0]   # its engine lives on and holds it
        start()
        gone = wait_for(lambda: [r for r in waiting() if r != held], "the second approval")[0]
        engines[1].terminate()
        engines[1].wait(timeout=60)
        t = Tty(["--db", db, "resume"], cwd=d)
        t.wait(r"^      approve: .* %s gate" % gone, "the approve command of the run taken")
        p = shell("cairn --db '%s' approve %s gate --as alice" % (db, gone), d)
        rc = t.finish()
        s.check(rc == 0 and p.returncode == 0, "resume finishes the run it took", t.text()[-200:])
        s.check(held not in t.text(), "resume shows nothing of a run another engine holds",
                repr(t.lines()))
        shell("cairn --db '%s' approve %s gate --as alice" % (db, held), d)
        engines[0].wait(timeout=60)
    finally:
        for e in engines:
            if e.poll() is None:
                e.kill()
                e.wait()


def test_json_and_pipes_keep_lines(s):
    d = setup(s, "json", "[alice]")
    wf = write(s, os.path.join("json", "parent.yaml"), PARENT.replace(
        "uses: approval\n    with: { prompt: \"Ship it?\", approvers: %s }", "uses: set\n    with: { ok: 1 }"))
    t = Tty(["--db", s.path("json", "j.db"), "run", wf, "--json"], cwd=d)
    rc = t.finish()
    lines = [l for l in t.lines() if l.strip()]
    s.check(rc == 0 and "\x1b[K" not in t.text(), "--json on a terminal prints no view", t.text()[-300:])
    try:
        run = json.loads(lines[-1])
    except (ValueError, IndexError):
        run = {}
    s.check(run.get("outputs") == {"doubled": 42, "greeting": "hi\n"},
            "--json on a terminal: the last line is the run", repr(lines[-1:]))
    event = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}  \S+\s+[a-z_]+\s*")
    s.check(all(event.match(l) for l in lines[:-1]), "--json keeps a line per transition",
            repr(lines[:3]))
    run, p = cairn_json("run", wf, db=s.path("json", "pipe.db"))
    piped = [l for l in p.stdout.splitlines()[:-1] if l.strip()]
    s.check(piped and all(event.match(l) for l in piped) and "\x1b" not in p.stdout,
            "through a pipe: a line per transition, no escapes", repr(piped[:3]))


s = Suite("live")
try:
    s.run_all([test_the_view, test_reject_with_the_default_journal, test_resume_shows_the_open_approval,
               test_resume_shows_only_runs_it_took,
               test_json_and_pipes_keep_lines])
finally:
    for t in OPEN:
        t.close()
s.finish()
