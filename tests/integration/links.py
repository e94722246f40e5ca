"""Group approvers and approval links through a real `cairn serve` with a
tokens file: a group member's approval counts under the token's name, an
outsider and the run's starter are refused, the CLI brings no groups; an
approval's notify e-mail (a real SMTP sink) carries one signed link per
named approver, the link's page shows the approval (escaped), its form
decides once under the link's name and the run goes on, and a used, altered
or expired link is refused and decides nothing, also after a restart."""
import email
import json
import os
import pwd
import re
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cairn_test import CAIRN, Suite, cairn, wait_for  # noqa: E402
from servers import Servers  # noqa: E402
from serve import Server, wfdir  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

PUBLIC = "https://cairn.example.test/"

GATE = """cairn: 1
name: gate
inputs:
  note: { type: string, default: "" }
steps:
  - id: ok
    uses: approval
    with:
      prompt: "Restart nginx? ${{ .inputs.note }}"
      approvers: [alice, erin, "group:oncall"]
      quorum: 2
      timeout: 1h
      notify:
        channel: email
        smtp_url: SMTP_URL
        from: cairn@example.test
        to: oncall@example.test
        subject: "Approval needed: ${{ .run.id }}"
        body: |
          run: ${{ .run.id }}
          named: ${{ .approval.links | keys | join(",") }}
          alice: ${{ .approval.links.alice // "none" }}
          erin: ${{ .approval.links.erin // "none" }}
          expires: ${{ .approval.expires_at }}
  - id: after
    needs: [ok]
    run: echo done
"""

TOKENS = (("op1", "operator", []), ("alice", "operator", []), ("bob", "operator", ["oncall"]),
          ("carol", "operator", ["oncall", "web"]), ("dave", "operator", ["dba"]),
          ("viewer1", "viewer", ["oncall"]))


class Env:
    """A server with tokens and a public URL, an SMTP sink for the notify."""

    def __init__(self, s, sv):
        self.s = s
        self.smtp = sv.smtp()
        self.dir = wfdir(s, "wf", {"gate.yaml": GATE.replace("SMTP_URL", self.smtp.url)})
        self.tokens = s.path("tokens")
        self.tok = {}
        for name, role, groups in TOKENS:
            args = [CAIRN, "token", "add", name, "--role", role, "--tokens", self.tokens]
            for g in groups:
                args += ["--group", g]
            p = subprocess.run(args, capture_output=True, text=True, timeout=30)
            assert p.returncode == 0, p.stderr
            self.tok[name] = p.stdout.strip()
        self.db = s.path("links.db")
        self.srv = None
        self.start()

    def start(self, public=PUBLIC):
        extra = ["--tokens", self.tokens] + (["--public-url", public] if public else [])
        self.srv = Server(self.s, "links", self.dir, db=self.db, extra=extra)

    def stop(self):
        self.srv.stop()

    def auth(self, name):
        return {"Authorization": "Bearer " + self.tok[name]}

    def start_run(self, as_who, note=""):
        st, _, body = self.srv.request("POST", "/v1/workflows/gate/runs",
                                       {"inputs": {"note": note}}, self.auth(as_who))
        assert st == 201, body
        wait_for(lambda: self.run(body["id"])["steps"]["ok"]["status"] == "waiting",
                 "the approval to open")
        return body["id"]

    def run(self, run_id):
        return self.srv.request("GET", "/v1/runs/" + run_id, headers=self.auth("viewer1"))[2]

    def decisions(self, run_id):
        evs = self.srv.request("GET", "/v1/runs/%s/events" % run_id,
                               headers=self.auth("viewer1"))[2]["events"]
        return [e["data"] for e in evs if e["type"] == "approval_decided"]

    def decide(self, run_id, who, decision="approve"):
        return self.srv.request("POST", "/v1/runs/%s/steps/ok/approval" % run_id,
                                {"decision": decision}, self.auth(who))

    def mail_of(self, run_id):
        """The notify e-mail of run_id as {field: value}, waited for."""
        def find():
            for m in self.smtp.messages():
                msg = email.message_from_string(m["data"])
                body = msg.get_payload(decode=True).decode()
                fields = dict(line.split(": ", 1) for line in body.splitlines() if ": " in line)
                if fields.get("run") == run_id:
                    return fields
            return None
        return wait_for(find, "the notify e-mail of " + run_id)

    def page(self, url, method="GET", form=None, headers=None):
        """(status, response, text) of a link's URL on this server."""
        path = urllib.parse.urlsplit(url).path
        if form is None:
            return self.srv.request(method, path, raw=True, headers=headers)
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        return self.srv.request(method, path, urllib.parse.urlencode(form), h, raw=True)


def test_groups(s, env):
    r = env.start_run("bob")
    st, _, body = env.decide(r, "bob")
    s.check(st == 403 and "started this run" in body["error"]["message"],
            "the starter, a member of the group, may not approve (self-approval)", body)
    st, _, body = env.decide(r, "dave")
    s.check(st == 403 and "dave may not decide" in body["error"]["message"] and
            "group" in body["error"]["message"], "a token in no named group: 403, said why", body)
    st, _, body = env.decide(r, "viewer1")
    s.check(st == 403 and "viewer" in body["error"]["message"],
            "a viewer in the group is refused by its role", body)
    st, _, body = env.decide(r, "carol")
    s.check(st == 200, "a member of group:oncall approves", body)
    s.check(env.run(r)["steps"]["ok"]["status"] == "waiting", "one approval of two: still waiting")
    st, _, body = env.decide(r, "carol")
    s.check(st == 409, "the same person again does not count twice", body)
    s.check(env.decide(r, "alice")[0] == 200, "a named approver makes the quorum")
    wait_for(lambda: env.run(r)["status"] == "succeeded", "the run to finish")
    d = env.decisions(r)
    s.check([(x["by"], x.get("as"), x.get("via")) for x in d] ==
            [("carol", "group:oncall", "api"), ("alice", None, "api")],
            "recorded under the tokens' names; the group's member as group:oncall", d)
    out = env.run(r)["steps"]["ok"]["output"]
    s.check(out["by"] == ["carol", "alice"], "the step's output names both", out)


def test_cli_brings_no_groups(s, env):
    r = env.start_run("op1")
    p = cairn("approve", r, "ok", "--as", "carol", db=env.db)
    s.check(p.returncode == 2 and "carol may not decide" in p.stderr,
            "cairn approve --as a group member: refused (the CLI brings no groups)", p.stderr)
    p = cairn("approve", r, "ok", "--as", "group:oncall", db=env.db)
    s.check(p.returncode == 2 and "may not decide" in p.stderr,
            "cairn approve --as group:oncall: a group's entry is no name", p.stderr)
    me = pwd.getpwuid(os.getuid()).pw_name
    p = cairn("reject", r, "ok", db=env.db)
    s.check(p.returncode == 2 and ("%s may not decide" % me) in p.stderr,
            "cairn reject with no --as decides as the Unix user", p.stderr)
    p = cairn("approve", r, "ok", "--as", "erin", db=env.db)
    s.check(p.returncode == 0, "cairn approve --as a named approver counts", p.stderr)
    d = env.decisions(r)
    s.check([(x["by"], x.get("via")) for x in d] == [("erin", "cli")], "recorded via the CLI", d)


def test_link_decides_once(s, env):
    note = "<script>alert('x')</script> & \"q\""
    r = env.start_run("op1", note)
    mail = env.mail_of(r)
    s.check(mail.get("named") == "alice,erin",
            "links for the persons named, none for group:oncall", mail)
    alice, erin = mail.get("alice", ""), mail.get("erin", "")
    s.check(alice.startswith(PUBLIC + "approve/") and erin.startswith(PUBLIC + "approve/") and
            alice != erin, "each link is under --public-url, one per approver", mail)
    deadline = env.run(r)["steps"]["ok"]["approval"]["deadline"]
    s.check(mail.get("expires") == deadline, "the links expire with the approval's timeout",
            "%s vs %s" % (mail.get("expires"), deadline))

    st, resp, text = env.page(erin)
    s.check(st == 200 and resp.getheader("Content-Type").startswith("text/html"),
            "the link's page opens", text[:300])
    s.check("Restart nginx?" in text and r in text and "erin" in text,
            "the page shows the prompt, the run and who decides", text[:500])
    s.check("<script>" not in text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp;"
            in text, "the prompt from the inputs is HTML-escaped", text)
    s.check('value="approve"' in text and 'value="reject"' in text and '<form method="post"'
            in text, "Approve and Reject buttons in a form that posts", text)
    s.check(resp.getheader("X-Frame-Options") == "DENY" and
            "frame-ancestors 'none'" in (resp.getheader("Content-Security-Policy") or "") and
            resp.getheader("Referrer-Policy") == "no-referrer",
            "the page may not be framed and sends no referrer")
    s.check(env.decisions(r) == [], "opening the page decides nothing")
    evs = env.srv.request("GET", "/v1/runs/%s/events" % r, headers=env.auth("viewer1"))[2]
    s.check("/approve/" not in json.dumps(evs), "no journaled event holds a link")

    token = urllib.parse.urlsplit(erin).path.rsplit("/", 1)[1]
    i = 10
    altered = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    for name, bad in (("altered", altered), ("cut short", token[:-3])):
        st, _, text = env.page(PUBLIC + "approve/" + bad, "POST", {"decision": "approve"})
        s.check(st == 403 and "not a valid approval link" in text,
                "a link %s is refused (403)" % name, "%d %s" % (st, text[:200]))
    s.check(env.decisions(r) == [], "the refused links decided nothing")

    # as a browser posts the page's form: no-referrer makes its Origin "null", and a proxy in
    # front may give another Host than the public URL's
    st, _, text = env.page(erin, "POST", {"decision": "approve", "comment": "looks fine"},
                           {"Origin": "null", "Host": "cairn.example.test"})
    s.check(st == 200 and "Recorded under <strong>erin</strong>" in text,
            "Approve on the page, posted as a browser does, records the decision", text)
    d = env.decisions(r)
    s.check([(x["by"], x.get("via"), x.get("comment")) for x in d] ==
            [("erin", "link", "looks fine")], "under the link's name, via the link", d)
    st, _, text = env.page(erin, "POST", {"decision": "reject"})
    s.check(st == 410 and "used already" in text, "the same link again: 410", text[:300])
    st, _, text = env.page(erin)
    s.check(st == 410, "and its page too: 410", text[:300])
    s.check(len(env.decisions(r)) == 1, "the used link decided nothing more")

    env.stop()
    env.start()
    st, _, text = env.page(erin, "POST", {"decision": "approve"})
    s.check(st == 410, "a used link stays used after a restart", "%d %s" % (st, text[:200]))
    st, _, text = env.page(alice, "POST", {"decision": "approve"})
    s.check(st == 200, "the other approver's link makes the quorum", text[:300])
    wait_for(lambda: env.run(r)["status"] == "succeeded", "the run to go on and finish")
    s.check(env.run(r)["steps"]["ok"]["output"]["by"] == ["erin", "alice"],
            "the step's output names both link holders")


def test_link_opened_on_another_server(s, env):
    r = env.start_run("op1")
    erin = env.mail_of(r)["erin"]
    other = Server(s, "links-b", env.dir, db=env.db,
                   extra=["--tokens", env.tokens, "--public-url", PUBLIC])
    try:
        path = urllib.parse.urlsplit(erin).path
        st, _, text = other.request("GET", path, raw=True)
        s.check(st == 200 and r in text, "a second server on the journal shows the link's page",
                text[:300])
        st, _, text = other.request("POST", path, urllib.parse.urlencode({"decision": "approve"}),
                                    {"Content-Type": "application/x-www-form-urlencoded"},
                                    raw=True)
        s.check(st == 200 and "This link is now spent" in text,
                "a decision there is carried out by the server holding the run", text[-300:])
        d = wait_for(lambda: env.decisions(r), "the server holding the run to take the decision")
    finally:
        other.stop()
    s.check([(x["by"], x.get("via")) for x in d] == [("erin", "link")],
            "the server holding the run took it, under the link's name", d)
    st, _, text = env.page(erin, "POST", {"decision": "approve"})
    s.check(st == 410, "and the link is spent for the first server too", text[:200])


def browser():
    """Headless Chromium, as tests/integration/console.py drives it."""
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--no-first-run", "--disable-extensions", "--proxy-server=direct://",
              "--proxy-bypass-list=*"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def test_link_in_a_browser(s, env):
    r = env.start_run("op1")
    path = urllib.parse.urlsplit(env.mail_of(r)["alice"]).path
    drv = browser()
    try:
        drv.get("http://127.0.0.1:%d%s" % (env.srv.port, path))
        s.check("Restart nginx?" in drv.page_source, "Chromium shows the link's page")
        drv.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        wait_for(lambda: "Recorded under" in drv.page_source, "the page to say it was recorded")
        d = env.decisions(r)
        s.check([(x["by"], x.get("via")) for x in d] == [("alice", "link")],
                "a click on Approve decides under the link's name", d)
        drv.get("http://127.0.0.1:%d%s" % (env.srv.port, path))
        s.check("used already" in drv.page_source, "opened again, the link says it was used")
    finally:
        drv.quit()


def test_expired_and_refused_links(s, env):
    r = env.start_run("alice")
    mail = env.mail_of(r)
    alice = mail["alice"]
    st, _, text = env.page(alice, "POST", {"decision": "approve"})
    s.check(st == 403 and "started this run" in text,
            "the starter's own link may not approve (self-approval)", text[:300])
    s.check(env.page(alice)[0] == 200, "and the refusal did not spend it")

    p = cairn("approval-link", r, "ok", "--as", "erin", "--url", PUBLIC, "--expires-at",
              "2020-01-01T00:00:00Z", db=env.db)
    s.check(p.returncode == 0 and p.stdout.startswith(PUBLIC + "approve/"),
            "cairn approval-link signs a link with a past expiry", p.stderr)
    old = p.stdout.strip()
    for method in ("GET", "POST"):
        st, _, text = env.page(old, method, {"decision": "approve"} if method == "POST" else None)
        s.check(st == 410 and "expired" in text, "an expired link: %s answers 410" % method, text[:300])
    s.check(env.decisions(r) == [], "the expired link decided nothing")

    for who, why in (("carol", "a group member (links are for persons)"),
                     ("group:oncall", "a group"), ("mallory", "a stranger")):
        p = cairn("approval-link", r, "ok", "--as", who, "--url", PUBLIC, db=env.db)
        s.check(p.returncode == 2, "no link for %s" % why, p.stderr)

    p = cairn("approval-link", r, "ok", "--as", "erin", "--url", PUBLIC, db=env.db)
    fresh = p.stdout.strip()
    st, _, text = env.page(fresh, "POST", {"decision": "maybe"})
    s.check(st == 400, "a form without approve or reject: 400", text[:200])
    path = urllib.parse.urlsplit(fresh).path
    st, _, text = env.srv.request("POST", path, {"decision": "approve"}, raw=True)
    s.check(st == 415, "a JSON body instead of the form: 415", text[:200])
    st, _, text = env.srv.request("PUT", path, raw=True)
    s.check(st == 405, "another method: 405", text[:200])
    st, _, text = env.page(fresh, "POST", {"decision": "reject", "comment": "x" * 5000})
    s.check(st == 413, "a comment past CAIRN_LINKPAGE_COMMENT_MAX: 413", text[:200])
    s.check(env.decisions(r) == [] and env.page(fresh)[0] == 200,
            "none of these decided or spent the link")
    st, _, text = env.page(fresh, "POST", {"decision": "reject", "comment": "not now"})
    s.check(st == 200 and "Rejected" in text, "a re-issued link rejects", text[:300])
    wait_for(lambda: env.run(r)["status"] == "failed", "the rejected run to fail")
    st, _, text = env.page(alice)
    s.check(st == 409 and "has already ended (failed)" in text,
            "a link to a decided approval shows why (409)", "%d %s" % (st, text[-400:]))


def test_no_public_url_no_links(s, env):
    p = cairn("serve", "--workflows", env.dir, "--listen", "127.0.0.1:0", "--public-url",
              "ftp://cairn.example.test/", db=s.path("other.db"), timeout=30)
    s.check(p.returncode == 2 and "--public-url" in p.stderr and
            not os.path.exists(s.path("other.db")), "a bad --public-url: exit 2, no journal made",
            p.stderr)
    env.stop()
    env.start(public=None)
    s.check("no --public-url" in env.srv.stderr(), "the server says it makes no links")
    r = env.start_run("op1")
    mail = env.mail_of(r)
    s.check(mail.get("named") == "" and mail.get("alice") == "none",
            "without --public-url the message carries no link", mail)


def main():
    s = Suite("links")
    with Servers(s.path("servers")) as sv:
        env = Env(s, sv)
        try:
            s.run_all([lambda x, t=t: t(x, env) for t in
                       (test_groups, test_cli_brings_no_groups, test_link_decides_once,
                        test_link_opened_on_another_server, test_link_in_a_browser,
                        test_expired_and_refused_links,
                        test_no_public_url_no_links)])
        finally:
            env.stop()
    s.finish()


if __name__ == "__main__":
    main()
