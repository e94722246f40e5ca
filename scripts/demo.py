"""make demo: the incident drill, on this machine, in under a minute.

A checkout service breaks; Alertmanager's webhook reaches `cairn serve`,
which starts the incident-response runbook (workflows/); a stand-in model
triages the alert, the host is diagnosed over SSH, an operator approves the
scale-out; the server is killed with kill -9 while the fix is verified, and
started again, it resumes the run from its journal; the timeline and
`cairn verify` end it.  Every stand-in listens on 127.0.0.1 (tests/servers,
tests/lib/servers.py; sshd needs root, as the tests do)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from servers import Servers  # noqa: E402
from hooks_runbooks import site_default  # noqa: E402

CAIRN = os.path.join(ROOT, "cairn")
KEY = "sk-demo-0d5e"
FP = "c4ec0a7f9b1e2d30"
REASON = "checkout answers 503 to 7% of requests: its replicas are saturated"
DEADLINE_S = 60


def say(text):
    print("\n\033[1m== %s\033[0m" % text, flush=True)


def indent(text, lines=None):
    rows = text.rstrip("\n").splitlines()
    for row in rows if lines is None else rows[:lines]:
        print("   " + row)
    sys.stdout.flush()


def until(what, cond):
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit("demo: gave up waiting for " + what)


def http(method, url, body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Serve:
    """`cairn serve` on the drill's journal."""

    def __init__(self, tmp, wf, env):
        self.tmp, self.wf, self.env = tmp, wf, env
        self.db = os.path.join(tmp, "journal.db")

    def start(self):
        port_file = os.path.join(self.tmp, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.err = open(os.path.join(self.tmp, "serve.log"), "a")
        self.proc = subprocess.Popen([CAIRN, "--db", self.db, "serve", "--workflows", self.wf,
                                      "--listen", "127.0.0.1:0", "--port-file", port_file],
                                     stdout=subprocess.DEVNULL, stderr=self.err,
                                     env=dict(os.environ, **self.env))
        port = until("cairn serve to listen", lambda: open(port_file).read().strip()
                     if os.path.exists(port_file) and os.path.getsize(port_file) else None)
        self.url = "http://127.0.0.1:%s" % port
        return self.proc.pid

    def cli(self, *args):
        p = subprocess.run([CAIRN, "--db", self.db] + list(args), capture_output=True, text=True,
                           env=dict(os.environ, **self.env), timeout=60)
        return p.stdout + p.stderr

    def events(self, run):
        p = subprocess.run([CAIRN, "--db", self.db, "journal", run, "--json"], capture_output=True,
                           text=True, timeout=60)
        return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else []


def site(tmp, llm, sshd, target):
    """workflows/incident-response.yaml with this machine's settings as its defaults."""
    with open(os.path.join(ROOT, "workflows", "incident-response.yaml")) as f:
        text = f.read()
    for k, v in {"llm_base_url": llm.base_url, "ssh_port": sshd.port, "ssh_user": sshd.user,
                 "ssh_key_file": sshd.key_file, "known_hosts": sshd.known_hosts,
                 "pagerduty_url": target.url("/hooks/pagerduty"), "diag_dir": os.path.join(tmp, "diag"),
                 "approvers": ["oncall-ann"]}.items():
        text = site_default(text, k, v)
    d = os.path.join(tmp, "workflows")
    os.makedirs(d)
    with open(os.path.join(d, "incident-response.yaml"), "w") as f:
        f.write(text)
    return d


def alert(target):
    return {"version": "4", "status": "firing", "receiver": "cairn",
            "groupKey": "{}:{alertname=\"HighErrorRate\"}",
            "groupLabels": {"alertname": "HighErrorRate"}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager.example:9093",
            "alerts": [{"status": "firing", "fingerprint": FP,
                        "labels": {"alertname": "HighErrorRate", "severity": "critical",
                                   "service": "checkout", "instance": "127.0.0.1:8080"},
                        "annotations": {"summary": "5xx above 5% on checkout for 10 minutes",
                                        "service_url": target.url(),
                                        "notes_url": target.url("/hooks/notes"),
                                        "log_path": target.log_file},
                        "startsAt": "2026-12-07T06:58:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://prometheus.example/graph"}]}


def drill(tmp, sv):
    say("Stand-ins on 127.0.0.1: the checkout service, an OpenAI-compatible model, an SSH server")
    llm, sshd, target = sv.llm(api_key=KEY), sv.sshd(), sv.target("checkout")
    print("   checkout %s   model %s   sshd port %d" % (target.url(), llm.base_url, sshd.port))
    target.fault({"name": "error_rate", "cured_by": ["scale"], "recover_after": 4})
    llm.script([{"when": FP, "reply": json.dumps({"verdict": "real", "reason": REASON})}])
    say("Break checkout: its health check fails until it is scaled out")
    print("   GET /health -> %d" % http("GET", target.url("/health"))[0])

    srv = Serve(tmp, site(tmp, llm, sshd, target), {"CAIRN_SECRET_LLM_API_KEY": KEY,
                                                    "CAIRN_SECRET_PAGERDUTY_ROUTING_KEY": "demo"})
    say("cairn serve: the runbooks of workflows/, a SQLite journal (%s)" % srv.db)
    srv.start()
    print("   listening on %s" % srv.url)

    say("Alertmanager posts HighErrorRate to %s/v1/hooks/alertmanager" % srv.url)
    code, body = http("POST", srv.url + "/v1/hooks/alertmanager", alert(target))
    answer = json.loads(body)
    run = answer["started"][0]["run"]
    print("   %d: started %s run %s (dedupe key %s)" % (code, answer["started"][0]["workflow"], run, FP))
    code, body = http("POST", srv.url + "/v1/hooks/alertmanager", alert(target))
    print("   the same alert again: %d, existed: %s" % (code, [e["run"] for e in json.loads(body)["existed"]]))

    say("The model triages it as real, SSH takes a snapshot of the host; an operator is asked")
    gate = until("the approval", lambda: [g for g in json.loads(http("GET", srv.url + "/v1/approvals")[1])
                                          ["approvals"] if g["run"] == run])
    indent(gate[0]["prompt"], 6)
    say("oncall-ann approves: cairn approve %s approve --as oncall-ann" % run)
    indent(srv.cli("approve", run, "approve", "--as", "oncall-ann", "--comment", "scale it"))

    until("verification to start polling", lambda: any(
        e["type"] == "step_retrying" and e.get("step") == "verify" for e in srv.events(run)))
    say("kill -9 cairn serve (pid %d) while the fix is being verified" % srv.proc.pid)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    print("   the journal's last events (cairn journal %s):" % run)
    for e in srv.events(run)[-4:]:
        print("   %4d %-16s %-10s attempt %d %s" % (e["seq"], e["type"], e.get("step") or "", e["attempt"],
                                                 (e["data"].get("error") or {}).get("message", "")))
    print("   an unfinished run, its next health check a durable timer: nothing is lost")

    say("cairn serve again: it takes the unfinished run back from its journal and carries on")
    srv.start()
    indent("\n".join(l for l in open(os.path.join(tmp, "serve.log")).read().splitlines()
                     if "resumed" in l).splitlines()[-1])
    until("the run to end", lambda: json.loads(http("GET", srv.url + "/v1/runs/" + run)[1])
          .get("status") in ("succeeded", "failed", "cancelled"))
    print("   checkout: %d replicas, GET /health -> %d" % (target.state()["replicas"],
                                                          http("GET", target.url("/health"))[0]))
    say("cairn timeline %s" % run)
    indent(srv.cli("timeline", run))
    say("cairn verify: every event in an unbroken HMAC chain, the runs table agreeing")
    indent(srv.cli("verify"))
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=30)


def main():
    tmp = tempfile.mkdtemp(prefix="cairn-drill-")
    t0 = time.monotonic()
    with Servers(os.path.join(tmp, "servers")) as sv:
        drill(tmp, sv)
    print("\n(%.0f s; the journal and logs are in %s)" % (time.monotonic() - t0, tmp))


if __name__ == "__main__":
    main()
