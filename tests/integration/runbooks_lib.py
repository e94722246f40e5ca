"""What the runbook tests share: a journal per scenario, runs started with the
real CLI (in the background when an operator must decide), approvals found
by polling `cairn approvals`, and the target service's record of calls.

    rb = Runbooks(suite, servers)
    sc = rb.scenario("fp")                 # a fresh journal
    run = sc.start("incident-response", inputs)
    run.gate("approve"); sc.approve(run, "approve", "oncall-ann")
    shown = run.wait()                     # the run as `show --json`
"""
import json
import os
import re
import subprocess

from cairn_test import CAIRN, ROOT, cairn, wait_for

WORKFLOWS = os.path.join(ROOT, "workflows")
RUN_TIMEOUT_S = 90          # a run ends within this, or the test fails
GATE_TIMEOUT_S = 60         # an approval opens within this

LLM_KEY = "sk-standin-7c1d9e3b5a"
PAGERDUTY_KEY = "R0UTING-7f2a9c4e1b"


def workflow(name):
    return os.path.join(WORKFLOWS, name + ".yaml")


class Run:
    """One `cairn run` in the background."""

    def __init__(self, scenario, name, proc, prints_run=True):
        self.sc = scenario
        self.name = name
        self.proc = proc
        self.prints_run = prints_run      # `run --json` does; `resume` does not
        self.id = None

    def gate(self, step):
        """Wait for this run's approval `step` to open; returns the entry."""
        def open_gate():
            for item in self.sc.approvals():
                if item["step"] == step and (self.id is None or item["run"] == self.id):
                    return item
            if self.proc.poll() is not None:
                raise AssertionError("the run ended (%d) before %s opened:\n%s" % (
                    self.proc.returncode, step, self.proc.stdout.read()[-3000:]))
            return None
        item = wait_for(open_gate, "approval %s of %s" % (step, self.name), GATE_TIMEOUT_S)
        self.id = item["run"]
        return item

    def wait(self):
        """Wait for the run to end; returns it as `show --json` prints it."""
        out, err = self.proc.communicate(timeout=RUN_TIMEOUT_S)
        self.returncode = self.proc.returncode
        self.stderr = err
        lines = [l for l in out.splitlines() if l.startswith("{")]
        run = json.loads(lines[-1]) if lines else {}
        if not run and self.prints_run:
            print("cairn run %s printed no run:\n%s\n%s" % (self.name, out[-3000:], err[-3000:]))
        self.id = run.get("id", self.id)
        return run


SCENARIOS = []              # every one made, for the journal checks at the end


class Scenario:
    """A journal of its own, secrets in the environment."""

    def __init__(self, suite, name, secrets):
        self.s = suite
        self.name = name
        self.db = suite.path(name + ".db")
        self.secrets = dict(secrets)
        self.env = {"CAIRN_SECRET_" + k: v for k, v in secrets.items()}
        SCENARIOS.append(self)

    def cli(self, *args, **kw):
        return cairn(*args, db=self.db, env=self.env, **kw)

    def start(self, name, inputs):
        path = self.s.path("%s-%s.inputs.json" % (self.name, name))
        with open(path, "w") as f:
            json.dump(inputs, f)
        env = dict(os.environ, **self.env)
        proc = subprocess.Popen([CAIRN, "--db", self.db, "run", workflow(name), "--inputs-file",
                                 path, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        return Run(self, name, proc)

    def resume(self):
        """`cairn resume` in the background, as a Run to wait on."""
        proc = subprocess.Popen([CAIRN, "--db", self.db, "resume"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=dict(os.environ, **self.env))
        return Run(self, "resume", proc, prints_run=False)

    def run(self, name, inputs):
        r = self.start(name, inputs)
        return r, r.wait()

    def approvals(self):
        p = self.cli("approvals", "--json")
        return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else []

    def decide(self, verb, run, step, who, comment=None):
        args = [verb, run.id, step, "--as", who] + (["--comment", comment] if comment else [])
        p = self.cli(*args)
        self.s.check(p.returncode == 0, "%s %s of %s as %s" % (verb, step, run.name, who),
                     p.stdout + p.stderr)

    def journal(self, run_id):
        p = self.cli("journal", run_id, "--json")
        return json.loads(p.stdout) if p.returncode == 0 else []

    def first_events(self, run_id):
        """(type, step) -> the seq of the run's first such event."""
        first = {}
        for e in self.journal(run_id):
            first.setdefault((e["type"], e.get("step")), e["seq"])
        return first

    def runs(self):
        p = self.cli("runs", "--json")
        return json.loads(p.stdout) if p.returncode == 0 else []


def check_journals(s):
    """Every scenario's journal verifies, and holds none of its secrets."""
    for sc in SCENARIOS:
        p = sc.cli("verify")
        s.check(p.returncode == 0, "%s: cairn verify passes" % sc.name, p.stdout + p.stderr)
        blob = b""
        for suffix in ("", "-wal", "-clog"):
            if os.path.exists(sc.db + suffix):
                with open(sc.db + suffix, "rb") as f:
                    blob += f.read()
        leaked = [k for k, v in sc.secrets.items() if v.encode() in blob]
        s.check(blob and not leaked, "%s: no secret reaches the journal" % sc.name, str(leaked))


def calls(target, since=0):
    """The target's recorded requests after the first `since`, as
    (METHOD, path, body) with JSON bodies parsed."""
    out = []
    for r in target.requests()[since:]:
        body = r["body"]
        try:
            body = json.loads(body) if body else None
        except ValueError:
            pass
        out.append((r["method"], r["path"], body))
    return out


def hooks(target, name, since=0):
    return [b for m, p, b in calls(target, since) if p == "/hooks/" + name]


def steps_status(run):
    return {k: v["status"] for k, v in (run.get("steps") or {}).items()}


def declared(name):
    """(input names, secret names) a workflow file declares and reads."""
    with open(workflow(name)) as f:
        text = f.read()
    block = re.search(r"^inputs:\n((?:  .*\n|\n)*)", text, flags=re.M)
    inputs = re.findall(r"^  ([A-Za-z_][A-Za-z0-9_-]*):", block.group(1), flags=re.M) if block else []
    return inputs, sorted(set(re.findall(r"\.secrets\.([A-Za-z_][A-Za-z0-9_]*)", text)))


def check_documented(s, name, also=()):
    """docs/runbooks.md's section on the runbook names each of its inputs
    and secrets (and those of the workflows in `also`, its children)."""
    with open(os.path.join(ROOT, "docs", "runbooks.md")) as f:
        doc = f.read()
    parts = re.split(r"^## ([^\n]*)$", doc, flags=re.M)
    section = dict(zip(parts[1::2], parts[2::2])).get(name, "")
    names = []
    for n in (name,) + tuple(also):
        inputs, secrets = declared(n)
        names += [i for i in inputs if not i.startswith("llm_") and not i.startswith("ssh_")
                  and i != "known_hosts"] + secrets
    missing = [n for n in names if "`%s`" % n not in section]
    s.check(section and not missing, "docs/runbooks.md describes %s: its inputs and secrets" % name,
            "missing %s" % missing)
    with open(os.path.join(ROOT, "README.md")) as f:
        s.check("`%s`" % name in f.read(), "README lists " + name)


def check_cairn_check(s, names):
    p = cairn("check", *[workflow(n) for n in names])
    s.check(p.returncode == 0, "cairn check accepts " + ", ".join(names), p.stdout + p.stderr)
