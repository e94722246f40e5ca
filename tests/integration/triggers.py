"""`cairn trigger --dry-run` and `cairn token`, through the binary.

The vendor payloads of tests/fixtures/hooks go through the webhook
normalizers and the matcher against the workflows beside them; the token
commands make, list and remove tokens in a file that must stay 0600 and
never hold a token's text."""
import json
import os
import shutil
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import ROOT, Suite, cairn, write  # noqa: E402

HOOKS = os.path.join(ROOT, "tests", "fixtures", "hooks")
WFS = os.path.join(HOOKS, "workflows")


def dry_run(source, fixture, *extra, workflows=WFS):
    return cairn("trigger", source, "--payload", os.path.join(HOOKS, fixture), "--dry-run",
                 "--workflows", workflows, *extra)


def test_dry_run_text(s):
    p = dry_run("alertmanager", "alertmanager_group.json")
    s.check(p.returncode == 0, "trigger --dry-run of a group: exit 0", p.stderr)
    s.check(p.stdout.startswith("2 events from alertmanager, 4 workflows: 2 would start, 0 resolve,"
                                " 0 refused, 0 unmatched\n"), "the summary line", p.stdout)
    s.check("start     on-alert[0]  event 1 HighErrorRate firing  dedupe 0d94b1e27a6f3c58" in p.stdout,
            "each alert of the group is a run with its fingerprint as key", p.stdout)
    s.check('          instance = "api-2:8080"' in p.stdout, "inputs shown one a line", p.stdout)


def test_dry_run_json(s):
    p = dry_run("pagerduty", "pagerduty_triggered.json", "--json")
    a = json.loads(p.stdout)
    s.check(p.returncode == 0 and sorted(a) == ["events", "refused", "resolve", "source", "start",
                                                "unmatched"], "--json: the whole answer", p.stdout)
    start = a["start"][0]
    s.check(start["workflow"] == "pd-page" and start["dedupe"] == "pd-Q2K7UR3CT8E6VJ" and
            start["inputs"]["title"] == "DBPoolExhausted on orders-db (P1)" and
            start["inputs"]["team"] == "checkout", "--json: inputs with defaults, the key", str(start))
    s.check(a["events"][0]["raw"]["event"]["id"] == "01DEN7LE8PXVDUQ2PAHVV7P5KH",
            "--json: the normalized events keep the payload as raw")
    p = dry_run("pagerduty", "pagerduty_resolved.json", "--json")
    a = json.loads(p.stdout)
    s.check(a["start"] == [] and a["resolve"][0]["dedupe"] == "pd-Q2K7UR3CT8E6VJ",
            "a resolved incident starts nothing and names the live run's key", p.stdout)
    with open(os.path.join(HOOKS, "datadog_triggered.json")) as f:
        p = cairn("trigger", "datadog", "--payload", "-", "--dry-run", "--workflows", WFS,
                  "--json", input=f.read())
    a = json.loads(p.stdout)
    s.check(p.returncode == 0 and [u["alertname"] for u in a["unmatched"]] ==
            ["Postgres connections near max_connections"], "--payload - reads stdin", p.stdout)


def test_refused_matches_exit_2(s):
    p = dry_run("generic", "generic_list.json")
    s.check(p.returncode == 2, "a refused match: exit 2", p.stdout + p.stderr)
    s.check("inputs: input 'count': expected an integer, got a string" in p.stdout,
            "the refusal names the input", p.stdout)


def test_bad_usage_and_payloads(s):
    p = dry_run("alertmanager", "alertmanager_group.json", workflows=s.path("nosuch"))
    s.check(p.returncode == 2 and "not a folder" in p.stderr, "--workflows that is no folder: exit 2",
            p.stderr)
    p = cairn("trigger", "nagios", "--payload", os.path.join(HOOKS, "generic_list.json"), "--dry-run")
    s.check(p.returncode == 2 and "no webhook source 'nagios'" in p.stderr, "unknown source", p.stderr)
    bad = write(s, "bad.json", '{"version": "4", "alerts": [{"labels": {"alertname": "A"}}]}')
    p = cairn("trigger", "alertmanager", "--payload", bad, "--dry-run", "--workflows", WFS)
    s.check(p.returncode == 2 and "alerts[0].status: missing" in p.stderr and p.stdout == "",
            "a payload missing a field: exit 2, nothing printed", p.stderr)
    deep = write(s, "deep.json", "[" * 100000 + "]" * 100000)
    p = cairn("trigger", "generic", "--payload", deep, "--dry-run", "--workflows", WFS)
    s.check(p.returncode == 2 and "nested too deeply" in p.stderr, "JSON 100,000 deep: exit 2", p.stderr)
    with open(s.path("latin1.json"), "wb") as f:
        f.write(b'{"alertname": "caf\xe9"}')
    p = cairn("trigger", "generic", "--payload", s.path("latin1.json"), "--dry-run", "--workflows", WFS)
    s.check(p.returncode == 2 and "invalid UTF-8 at byte 18" in p.stderr, "invalid UTF-8: exit 2", p.stderr)
    with open(s.path("big.json"), "w") as f:
        f.write(" " * (1 << 20) + "{}")
    p = cairn("trigger", "generic", "--payload", s.path("big.json"), "--dry-run", "--workflows", WFS)
    s.check(p.returncode == 2 and "larger than 1048576 bytes" in p.stderr, "a body too large: exit 2", p.stderr)


def test_bad_workflow_is_skipped(s):
    d = s.path("wfs")
    os.mkdir(d)
    shutil.copy(os.path.join(WFS, "on-alert.yaml"), d)
    write(s, "wfs/broken.yaml", "cairn: 1\nname: broken\ntriggers:\n  - webhook: nagios\nsteps: []\n")
    p = dry_run("alertmanager", "alertmanager_group.json", workflows=d)
    s.check(p.returncode == 0 and "2 would start" in p.stdout, "the good workflow still matches", p.stdout)
    s.check("unknown source 'nagios'" in p.stderr and "broken.yaml is skipped" in p.stderr,
            "the bad one is reported and skipped", p.stderr)


def test_limits_documented(s):
    """Every limit the server's headers name is in docs/api.md and README's table."""
    import glob
    import re
    names = set()
    for h in glob.glob(os.path.join(ROOT, "server", "*.h")):
        with open(h) as f:
            names.update(re.findall(r"^#define (CAIRN_\w+_(?:MAX|MIN|LIMIT|S)) ", f.read(), re.M))
    with open(os.path.join(ROOT, "docs", "api.md")) as f:
        api = f.read()
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    s.check(len(names) >= 14, "the server's headers name their limits", str(sorted(names)))
    missing = sorted(n for n in names if "`%s`" % n not in api or "`%s`" % n not in readme)
    s.check(not missing, "every limit of server/*.h is in docs/api.md and README.md", str(missing))


def test_tokens(s):
    db = s.path("cairn.db")
    p = cairn("token", "add", "alice", "--role", "operator", "--group", "dba", db=db)
    token = p.stdout.strip()
    s.check(p.returncode == 0 and token.startswith("cairn_") and len(token) == 49,
            "token add prints the token, alone on stdout", p.stdout + p.stderr)
    path = db + ".tokens"
    s.check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "the file beside the journal is 0600")
    with open(path) as f:
        s.check(token not in f.read(), "the file does not hold the token")
    p = cairn("token", "add", "alice", "--role", "viewer", db=db)
    s.check(p.returncode == 2 and "exists" in p.stderr, "a name twice: exit 2", p.stderr)
    other = s.path("other.tokens")
    p = cairn("token", "add", "bot", "--role", "viewer", "--tokens", other)
    s.check(p.returncode == 0 and os.path.exists(other), "--tokens FILE")
    p = cairn("token", "list", "--tokens", other, env={"CAIRN_TOKENS": path})
    s.check(p.stdout.startswith("bot "), "--tokens wins over $CAIRN_TOKENS", p.stdout)
    p = cairn("token", "list", "--json", env={"CAIRN_TOKENS": path})
    rows = json.loads(p.stdout)
    s.check([(r["name"], r["role"], r["groups"]) for r in rows] == [("alice", "operator", ["dba"])],
            "token list --json, from $CAIRN_TOKENS", p.stdout)
    os.chmod(path, 0o644)
    p = cairn("token", "list", db=db)
    s.check(p.returncode == 3 and "chmod 600" in p.stderr, "a file others may read: exit 3", p.stderr)
    os.chmod(path, 0o600)
    p = cairn("token", "rm", "alice", db=db)
    s.check(p.returncode == 0, "token rm", p.stderr)
    p = cairn("token", "rm", "alice", db=db)
    s.check(p.returncode == 2 and "no token named 'alice'" in p.stderr, "rm of no such token: exit 2")
    p = cairn("token", "add", "x", "--role", "root", db=db)
    s.check(p.returncode == 2 and "expected viewer, operator or admin" in p.stderr, "a bad role: exit 2")


if __name__ == "__main__":
    suite = Suite("triggers")
    suite.run_all([test_dry_run_text, test_dry_run_json, test_refused_matches_exit_2,
                   test_bad_usage_and_payloads, test_bad_workflow_is_skipped,
                   test_limits_documented, test_tokens])
    suite.finish()
