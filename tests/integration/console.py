"""The web console of `cairn serve`: its assets through plain HTTP (types,
Content-Security-Policy, nosniff, ETag and 304, unknown paths 404 while /v1
routes win, the graph and identity routes it reads), then end to end in
headless Chromium (Debian's chromium and chromedriver, through selenium):
a run stops at an approval, the console shows it pending, a click approves
it and the run's timeline shows who approved; a viewer's click is refused
by the server and the console says so; attacker-controlled text (inputs,
outputs, errors, prompts, comments) renders as text."""
import hashlib
import http.client
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cairn_test import CAIRN, ROOT, Suite, wait_for  # noqa: E402
from serve import Server, journal_counts, wfdir  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CONSOLE = os.path.join(ROOT, "server", "console")
WAIT_S = 30

GATE = """cairn: 1
name: gate
steps:
  - id: prep
    run: echo prepared
  - id: ok
    needs: [prep]
    uses: approval
    with: { prompt: "Restart the service?", approvers: [alice] }
  - id: after
    needs: [ok]
    run: echo done
"""

HELLO = """cairn: 1
name: hello
inputs:
  fail: { type: boolean, default: false }
steps:
  - id: greet
    run: test ${{ .inputs.fail }} = false
"""

# Every field a stranger may fill: an input, a step's output, the prompt,
# the run's error; a comment is added when deciding.
PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
XSS = """cairn: 1
name: xss
inputs:
  note: { type: string, required: true }
steps:
  - id: shown
    uses: set
    with: { note: "${{ .inputs.note }}" }
  - id: ask
    needs: [shown]
    uses: approval
    with: { prompt: "${{ .inputs.note }}" }
  - id: boom
    needs: [ask]
    uses: fail
    with: { message: "${{ .inputs.note }}" }
"""

# Every file of server/console/ is served under its name, "/" is the index;
# a file of a kind not listed here fails the test until its type is.
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
         ".svg": "image/svg+xml"}
ASSETS = {"/" + f: (f, TYPES.get(os.path.splitext(f)[1], "a type of its kind"))
          for f in sorted(os.listdir(CONSOLE))}
ASSETS["/"] = ("index.html", "text/html")


def source(name):
    with open(os.path.join(CONSOLE, name), "rb") as f:
        return f.read()


def raw(srv, method, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def make_tokens(s, file, names):
    """The path of a new 0600 tokens file, and {name: token} for its (name,
    role) pairs."""
    path = s.path(file)
    tok = {}
    for name, role in names:
        p = subprocess.run([CAIRN, "token", "add", name, "--role", role, "--tokens", path],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise AssertionError("cairn token add: " + p.stderr)
        tok[name] = p.stdout.strip()
    return path, tok


# ---- plain HTTP ---------------------------------------------------------------------------

def test_assets(s):
    d = wfdir(s, "wa", {"gate.yaml": GATE})
    srv = Server(s, "wa", d)
    try:
        for path, (name, ctype) in ASSETS.items():
            r, body = raw(srv, "GET", path)
            want = '"%s"' % hashlib.sha256(source(name)).hexdigest()[:16]
            csp = r.getheader("Content-Security-Policy") or ""
            s.check(r.status == 200 and body == source(name), "%s: the compiled %s" % (path, name),
                    (r.status, body[:80]))
            s.check((r.getheader("Content-Type") or "").startswith(ctype),
                    "%s: Content-Type %s" % (path, ctype), r.getheader("Content-Type"))
            s.check("default-src 'self'" in csp and "frame-ancestors 'none'" in csp and
                    "unsafe" not in csp, "%s: a strict Content-Security-Policy" % path, csp)
            s.check(r.getheader("X-Content-Type-Options") == "nosniff", "%s: nosniff" % path)
            s.check(r.getheader("ETag") == want, "%s: the ETag is the asset's hash" % path,
                    (r.getheader("ETag"), want))
            r2, body2 = raw(srv, "GET", path, {"If-None-Match": want})
            s.check(r2.status == 304 and body2 == b"" and r2.getheader("ETag") == want,
                    "%s: If-None-Match with its tag: 304" % path, r2.status)
            r3, _ = raw(srv, "GET", path, {"If-None-Match": '"0000000000000000"'})
            s.check(r3.status == 200, "%s: another tag: 200" % path, r3.status)
            r4, body4 = raw(srv, "HEAD", path)
            s.check(r4.status == 200 and body4 == b"" and r4.getheader("ETag") == want,
                    "%s: HEAD" % path, r4.status)
        for path in ("/nope", "/app.js/x", "/index.htm", "/console/app.js", "/%2e%2e/app.js",
                     "/..%2fapp.js", "/v1/nope", "/v1/runs/x/y/z"):
            r, body = raw(srv, "GET", path)
            s.check(r.status == 404 and b"route_not_found" in body and b"<!doctype" not in body,
                    "%s: 404, not the index" % path, (r.status, body[:80]))
        r, body = raw(srv, "POST", "/")
        s.check(r.status in (404, 405) and b"<!doctype" not in body, "POST /: not the index",
                (r.status, body[:80]))
        st, r, body = srv.request("GET", "/v1/runs")
        s.check(st == 200 and "runs" in body and r.getheader("Content-Security-Policy") is None,
                "/v1 routes are the API's", body)
        st, _, body = srv.request("GET", "/v1/me")
        s.check(st == 200 and body == {"tokens": False, "name": None, "role": None},
                "GET /v1/me with no tokens file", body)
        run = srv.start_run("gate")
        st, _, g = srv.request("GET", "/v1/runs/%s/graph" % run)
        s.check(st == 200 and [(x["id"], x["uses"], x["needs"]) for x in g["steps"]] ==
                [("prep", "shell", []), ("ok", "approval", ["prep"]), ("after", "shell", ["ok"])]
                and g["workflow"] == "gate", "GET /v1/runs/ID/graph: the steps and their needs", g)
        st, _, body = srv.request("GET", "/v1/runs/zzzzzzzzzzzzzzzz/graph")
        s.check(st == 404 and body["error"]["code"] == "not_found", "the graph of no run: 404", body)
    finally:
        srv.stop()


def test_other_sites_pages(s):
    """What a page of another site can make a browser here send: refused."""
    d = wfdir(s, "wo", {"gate.yaml": GATE})
    srv = Server(s, "wo", d)
    own = "127.0.0.1:%d" % srv.port
    try:
        run = srv.start_run("gate")
        wait_for(lambda: srv.request("GET", "/v1/runs/" + run)[2]["status"] == "waiting",
                 "the run to wait for its approval")
        before = journal_counts(srv.db)
        for origin in ("http://evil.example", "http://evil.example:%d" % srv.port, "null",
                       "http://%s.evil.example" % own, "file://"):
            st, _, body = srv.request("POST", "/v1/workflows/gate/runs", {},
                                      {"Origin": origin})
            s.check(st == 403 and body["error"]["code"] == "forbidden",
                    "a start from a page of %s: 403" % origin, (st, body))
        # a form needs no preflight: text/plain, no body
        st, _, body = srv.request("POST", "/v1/runs/%s/cancel" % run, "",
                                  {"Origin": "http://evil.example", "Content-Type": "text/plain"})
        s.check(st == 403, "a cancel posted by another site's form: 403", (st, body))
        s.check(journal_counts(srv.db) == before, "they changed nothing in the journal")
        st, _, body = srv.request("GET", "/v1/runs", headers={"Host": "evil.example:%d" % srv.port})
        s.check(st == 403 and "loopback" in body["error"]["message"],
                "loopback mode: a name rebound to 127.0.0.1 is refused", (st, body))
        st, _, body = srv.request("GET", "/", headers={"Host": "evil.example"}, raw=True)
        s.check(st == 403, "... the console's page too", st)
        for host in ("localhost:%d" % srv.port, own, "[::1]:%d" % srv.port, "127.0.0.1"):
            st, _, body = srv.request("GET", "/v1/runs", headers={"Host": host})
            s.check(st == 200, "Host %s: answered" % host, (st, body))
        st, _, body = srv.request("POST", "/v1/runs/%s/steps/ok/approval" % run,
                                  {"decision": "approve", "by": "alice"}, {"Origin": "http://" + own})
        s.check(st == 200, "a decision from the console's own page: taken", (st, body))
    finally:
        srv.stop()
    path, tok = make_tokens(s, "tokens0", [("op1", "operator")])
    srv = Server(s, "wo2", d, extra=["--tokens", path])
    auth = {"Authorization": "Bearer " + tok["op1"]}
    try:
        st, _, body = srv.request("GET", "/v1/runs", headers=dict(auth, Host="cairn.example"))
        s.check(st == 200, "with tokens any Host is answered", (st, body))
        st, _, body = srv.request("POST", "/v1/workflows/gate/runs", {},
                                  dict(auth, Origin="http://evil.example"))
        s.check(st == 403, "with tokens too, another site's Origin: 403", (st, body))
    finally:
        srv.stop()


def test_assets_need_no_token(s):
    d = wfdir(s, "wt", {"gate.yaml": GATE})
    path, tok = make_tokens(s, "tokens1", [("viewer1", "viewer")])
    srv = Server(s, "wt", d, extra=["--tokens", path])
    try:
        r, body = raw(srv, "GET", "/")
        s.check(r.status == 200 and body == source("index.html"),
                "the console's page needs no token (it holds no data)", r.status)
        st, _, body = srv.request("GET", "/v1/me")
        s.check(st == 401, "GET /v1/me without a token: 401", body)
        st, _, body = srv.request("GET", "/v1/me",
                                  headers={"Authorization": "Bearer " + tok["viewer1"]})
        s.check(st == 200 and body == {"tokens": True, "name": "viewer1", "role": "viewer"},
                "GET /v1/me: the token's name and role", body)
    finally:
        srv.stop()


# ---- the browser ----------------------------------------------------------------------------

def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--no-first-run", "--disable-extensions", "--window-size=1280,1000",
              "--proxy-server=direct://", "--proxy-bypass-list=*"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def until(drv, cond, what):
    """Poll cond(driver) until truthy (WebDriverWait), naming what on failure."""
    return WebDriverWait(drv, WAIT_S, poll_frequency=0.05,
                         ignored_exceptions=(Exception,)).until(cond, "waiting for " + what)


def text_of(drv, css):
    """The text shown by the first element css selects (read in one step,
    so a view redrawn meanwhile is no stale element), or "" if none."""
    return drv.execute_script("const e = document.querySelector(arguments[0]);"
                              "return e ? e.innerText : ''", css)


def approval_row(drv, run, step):
    return drv.find_element(By.CSS_SELECTOR, '#approvals tr[data-run="%s"][data-step="%s"]' %
                            (run, step))


def click(drv, run, step, which):
    press(drv, '#approvals tr[data-run="%s"][data-step="%s"] button.%s' % (run, step, which))


def press(drv, css):
    """Click css once it is there (a list redrawn meanwhile is tried again)."""
    until(drv, lambda d: d.find_element(By.CSS_SELECTOR, css).click() or True, "to click " + css)


def said(drv, run, step):
    return text_of(drv, '#approvals tr[data-run="%s"][data-step="%s"] .said' % (run, step))


def sign_in(drv, base, token):
    drv.get(base + "/#/approvals")
    until(drv, lambda d: d.find_element(By.ID, "token"), "the sign-in form")
    drv.find_element(By.ID, "token").send_keys(token)
    press(drv, "#signin-button")


def no_script_ran(s, drv, where):
    s.check(drv.execute_script("return window.__xss === undefined"), "%s: no script ran" % where)
    made = drv.execute_script("return document.querySelectorAll('img, script:not([src])').length")
    s.check(made == 0, "%s: no element was made from the payload" % where, made)


def approve_and_finish(s, drv, base, run, who="alice"):
    """Click Approve on the approvals page, then open the run and see it
    finish live, its timeline naming who approved."""
    click(drv, run, "ok", "approve")
    until(drv, lambda d: said(d, run, "ok") == "Approved.", "the approval to be taken")
    drv.get(base + "/#/run/" + run)
    until(drv, lambda d: "succeeded" in text_of(d, "#run-status"), "the run to succeed")
    until(drv, lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline svg rect.bar-succeeded"),
          "the timeline's bars")
    dec = until(drv, lambda d: text_of(d, "#timeline li.decision"), "the decision on the timeline")
    s.check("approved by " + who in dec, "the timeline says who approved", dec)
    bars = drv.execute_script("return [...document.querySelectorAll('#timeline rect')]"
                              ".map(r => r.dataset.step)")
    s.check(sorted(set(bars)) == ["after", "ok", "prep"], "a bar for every step's attempt", bars)
    nodes = drv.execute_script("return [...document.querySelectorAll('#graph g.step')]"
                               ".map(g => g.dataset.step + ':' + g.dataset.status)")
    edges = drv.execute_script("return [...document.querySelectorAll('#graph path.edge')]"
                               ".map(p => p.dataset.from + '>' + p.dataset.to)")
    s.check(sorted(nodes) == ["after:succeeded", "ok:succeeded", "prep:succeeded"] and
            sorted(edges) == ["ok>after", "prep>ok"], "the step graph: steps and needs", (nodes, edges))


def test_loopback_approve(s, drv):
    d = wfdir(s, "wb", {"gate.yaml": GATE})
    srv = Server(s, "wb", d)
    base = "http://127.0.0.1:%d" % srv.port
    try:
        run = srv.start_run("gate")
        drv.get(base + "/#/runs")
        until(drv, lambda d: d.find_element(By.CSS_SELECTOR, '#runs tr[data-run="%s"]' % run),
              "the run in the list")
        s.check("gate" in text_of(drv, '#runs tr[data-run="%s"]' % run), "the list names the workflow")
        s.check("loopback" in text_of(drv, "#whoami"), "the console says it needs no token")
        drv.get(base + "/#/approvals")
        until(drv, lambda d: approval_row(d, run, "ok"), "the approval to be listed")
        s.check("Restart the service?" in text_of(drv, '#approvals tr[data-run="%s"]' % run),
                "the prompt is shown")
        click(drv, run, "ok", "approve")
        until(drv, lambda d: "Name who decides" in said(d, run, "ok"),
              "asking who decides in loopback mode")
        drv.find_element(By.ID, "decide-as").send_keys("alice")
        approve_and_finish(s, drv, base, run)
    finally:
        srv.stop()


def listed(drv):
    return drv.execute_script("return [...document.querySelectorAll('#runs tbody tr[data-run]')]"
                              ".map(r => r.dataset.run)")


def test_runs_filters_and_pages(s, drv):
    d = wfdir(s, "wp", {"hello.yaml": HELLO, "gate.yaml": GATE})
    srv = Server(s, "wp", d)
    base = "http://127.0.0.1:%d" % srv.port
    try:
        ok = [srv.start_run("hello") for _ in range(52)]
        bad = [srv.start_run("hello", {"fail": True}) for _ in range(3)]
        gate = srv.start_run("gate")
        for r in ok + bad:
            srv.stream(r)   # each to its end
        drv.get(base + "/#/runs?workflow=hello")
        until(drv, lambda d: len(listed(d)) == 50, "the first page of hello's runs")
        first = listed(drv)
        s.check(gate not in first and set(first) <= set(ok + bad), "filtered by workflow")
        # the last three started come first (two started in one millisecond in either order)
        s.check(set(first[:3]) == set(bad), "newest first", (first[:3], bad))
        press(drv, "#page-next")
        until(drv, lambda d: len(listed(d)) == 5, "the second page, by the API's cursor")
        second = listed(drv)
        s.check(set(first) | set(second) == set(ok + bad) and not set(first) & set(second),
                "the pages hold every run once", second)
        s.check(not drv.find_elements(By.ID, "page-next"), "no page after the last")
        press(drv, "#page-first")
        until(drv, lambda d: listed(d) == first, "back to the newest")
        Select(drv.find_element(By.ID, "filter-status")).select_by_value("failed")
        until(drv, lambda d: sorted(listed(d)) == sorted(bad), "the failed runs only")
        s.check("status=failed" in drv.current_url and "workflow=hello" in drv.current_url,
                "the filters are in the page's address")
        Select(drv.find_element(By.ID, "filter-workflow")).select_by_value("gate")
        until(drv, lambda d: not listed(d) and "No runs" in text_of(d, "#runs"),
              "no failed gate runs")
        Select(drv.find_element(By.ID, "filter-status")).select_by_value("running")
        until(drv, lambda d: listed(d) == [gate], "the running gate run")
        row = text_of(drv, '#runs tr[data-run="%s"]' % gate)
        s.check("gate" in row and "running" in row, "a row: workflow and status", row)
    finally:
        srv.stop()


def test_tokens_viewer_refused(s, drv):
    # the viewer is an approver too: only the role keeps it from deciding
    d = wfdir(s, "wc", {"gate.yaml": GATE.replace("approvers: [alice]", "approvers: [alice, viewer1]")})
    path, tok = make_tokens(s, "tokens2", [("viewer1", "viewer"), ("alice", "operator"),
                                         ("op1", "operator")])
    srv = Server(s, "wc", d, extra=["--tokens", path])
    base = "http://127.0.0.1:%d" % srv.port
    op = {"Authorization": "Bearer " + tok["op1"]}   # starts the run: alice may approve it
    try:
        st, _, body = srv.request("POST", "/v1/workflows/gate/runs", {}, op)
        run = body["id"]
        drv.get(base + "/")
        drv.execute_script("sessionStorage.clear()")
        sign_in(drv, base, "cairn_not_a_token")
        until(drv, lambda d: "refused" in text_of(d, "#signin-error"), "a wrong token refused")
        sign_in(drv, base, tok["viewer1"])
        until(drv, lambda d: text_of(d, "#whoami") == "viewer1 (viewer)", "who am I: the viewer")
        until(drv, lambda d: approval_row(d, run, "ok"), "the viewer sees the approval")
        click(drv, run, "ok", "approve")
        msg = until(drv, lambda d: "403" in said(d, run, "ok") and said(d, run, "ok"),
                    "the refusal")
        s.check("Refused" in msg and "viewer1 is a viewer" in msg,
                "a viewer's click: refused for its role, and said", msg)
        s.check("refused" in text_of(drv, "#notice"), "the notice says the server refused",
                text_of(drv, "#notice"))
        st, _, r = srv.request("GET", "/v1/runs/" + run, headers=op)
        s.check(r["status"] == "waiting", "the viewer's click decided nothing", r["status"])
        s.check(tok["viewer1"] not in drv.current_url, "the token is in no URL")
        drv.get(base + "/#/run/" + run)
        until(drv, lambda d: text_of(d, "#live") == "live", "the run's event stream, with the token")
        s.check("waiting" in text_of(drv, "#run-status") and
                drv.find_elements(By.CSS_SELECTOR, "#timeline circle.marker-request"),
                "the run page: waiting, the approval asked on the timeline")
        press(drv, "#signout")
        sign_in(drv, base, tok["alice"])
        until(drv, lambda d: text_of(d, "#whoami") == "alice (operator)", "who am I: alice")
        until(drv, lambda d: approval_row(d, run, "ok"), "alice sees the approval")
        approve_and_finish(s, drv, base, run)
    finally:
        srv.stop()


def test_payload_is_text(s, drv):
    d = wfdir(s, "wx", {"xss.yaml": XSS})
    srv = Server(s, "wx", d)
    base = "http://127.0.0.1:%d" % srv.port
    try:
        run = srv.start_run("xss", {"note": PAYLOAD})
        drv.get(base + "/#/approvals")
        row = until(drv, lambda d: text_of(d, '#approvals tr[data-run="%s"]' % run),
                    "the payload's approval")
        s.check(PAYLOAD in row, "the prompt shows the payload as text", row)
        no_script_ran(s, drv, "approvals")
        drv.get(base + "/#/run/" + run)
        until(drv, lambda d: PAYLOAD in text_of(d, "#run-approvals"), "the run's pending approval")
        as_json = json.dumps(PAYLOAD)   # inputs and outputs are shown as JSON
        inputs = text_of(drv, "#run-inputs")
        s.check(as_json in inputs, "the inputs show the payload as text", inputs)
        out = text_of(drv, '#steps tr[data-step="shown"] td.output')
        s.check(as_json in out, "the output shows the payload as text", out)
        no_script_ran(s, drv, "the waiting run")
        st, _, body = srv.request("POST", "/v1/runs/%s/steps/ask/approval" % run,
                                  {"decision": "approve", "by": "carol", "comment": PAYLOAD})
        s.check(st == 200, "approved with the payload as the comment", body)
        until(drv, lambda d: "failed" in text_of(d, "#run-status"), "the run to fail, live")
        err = text_of(drv, "#run-error")
        s.check(PAYLOAD in err, "the run's error shows the payload as text", err)
        dec = until(drv, lambda d: text_of(d, "#timeline li.decision"), "the decision")
        s.check(PAYLOAD in dec and "approved by carol" in dec, "the comment is text", dec)
        no_script_ran(s, drv, "the failed run")
    finally:
        srv.stop()


def in_browser(tests):
    """Each test with one headless Chromium, quit at the end."""
    def run(s):
        drv = browser()
        try:
            for t in tests:
                try:
                    t(s, drv)
                except Exception as e:
                    s.check(False, t.__name__, "%s %s" % (type(e).__name__, str(e).strip()))
        finally:
            drv.quit()
    return run


if __name__ == "__main__":
    suite = Suite("console")
    suite.run_all([test_assets, test_other_sites_pages, test_assets_need_no_token,
                   in_browser([test_loopback_approve, test_runs_filters_and_pages,
                               test_tokens_viewer_refused,
                               test_payload_is_text])])
    suite.finish()
