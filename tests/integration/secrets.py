"""Secrets: sealed in a file, read by expressions, never written anywhere.

A secret is planted through `cairn secret set` and another through the
environment; a workflow hands them to actions (which must receive the real
values) and tries to leak them through outputs, stderr and error messages.
Then every byte the engine wrote (journal files, stdout, stderr, show,
journal) is searched for the values: none may appear.  A second workflow
plants the value in every other spelling masking promises to catch
(engine/secrets.h), through expressions and a shell step's stdout."""
import base64
import glob
import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import Suite, cairn  # noqa: E402

FILE_SECRET = "s3cr3t-planted-7f9a-file"
ENV_SECRET = "s3cr3t-planted-4c2e-env"
# Mixed case, a space, and characters JSON and URLs escape.
SPELLED = 'Pa55 W/rd+"Qx"~!'

# Each field plants one spelling of .secrets.SPELLED; `set` stores them all.
SPELLINGS_WF = r"""cairn: 1
name: spellings
steps:
  - id: spell
    uses: set
    with:
      upper: '${{ .secrets.SPELLED | ascii_upcase }}'
      lower: '${{ .secrets.SPELLED | ascii_downcase }}'
      json: '${{ {token: .secrets.SPELLED} | tojson }}'
      uri: "https://example.invalid/?t=${{ .secrets.SPELLED | @uri }}&x=1"
      uri_lower: '${{ .secrets.SPELLED | @uri | gsub("%(?<h>[0-9A-F]{2})"; "%" + (.h | ascii_downcase)) }}'
      form: '${{ .secrets.SPELLED | @uri | gsub("%20"; "+") }}'
      base64: '${{ .secrets.SPELLED | @base64 }}'
      base64_at_1: '${{ "B" + .secrets.SPELLED + "tail" | @base64 }}'
      base64_at_2: '${{ "Be" + .secrets.SPELLED + "tail" | @base64 }}'
      base64url: '${{ "Bearer " + .secrets.SPELLED | @base64 | gsub("\\+"; "-") | gsub("/"; "_") | rtrimstr("=") }}'
      hex: '${{ .secrets.SPELLED | explode | map(. as $c | "0123456789abcdef" as $h | $h[($c / 16 | floor):($c / 16 | floor) + 1] + $h[($c % 16):($c % 16) + 1]) | add }}'
      list: ["${{ .secrets.SPELLED }}", [["${{ .secrets.SPELLED | ascii_upcase }}"]]]
  - id: dump
    run: printf '%s' ${{ .secrets.SPELLED }} | od -An -tx1 | tr -d ' \n' | tr a-f A-F; echo; printf '%s' ${{ .secrets.SPELLED }} | basenc --base64url
"""


def spellings(v):
    """Every spelling of v planted above, computed here independently."""
    b = v.encode()
    out = {"upper": v.upper(), "lower": v.lower(), "json": json.dumps(v)[1:-1],
           "hex": b.hex(), "HEX": b.hex().upper()}
    for safe in ("", "~!*'()"):   # RFC 3986's choice, and jq 1.6 @uri's
        q = urllib.parse.quote(v, safe=safe)
        out["uri " + safe] = q
        out["uri lower " + safe] = q.lower()
        out["form " + safe] = q.replace("%20", "+")
    for prefix in (b"", b"B", b"Be", b"Bearer "):
        for name, enc in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = enc(prefix + b + b"tail").decode()
            first, end = -(-len(prefix) // 3), (len(prefix) + len(b)) // 3
            out["%s at %d" % (name, len(prefix))] = text[4 * first:4 * end]
    return out


def check_spellings(s, db):
    wf = s.path("spellings.yaml")
    with open(wf, "w") as f:
        f.write(SPELLINGS_WF)
    p = cairn("run", wf, "--json", db=db, env={"CAIRN_SECRET_SPELLED": SPELLED})
    s.check(p.returncode == 0, "the spellings run succeeds", p.stderr)
    run = json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][-1])
    stored = run["steps"]["spell"]["output"]
    masked = [k for k, v in stored.items() if "***" in json.dumps(v)]
    s.check(len(masked) == len(stored), "every planted spelling is stored as ***",
            json.dumps(stored))
    written = [p.stdout, p.stderr]
    for cmd in (["show", run["id"], "--json"], ["journal", run["id"], "--json"]):
        q = cairn(*cmd, db=db)
        written += [q.stdout, q.stderr]
    for path in glob.glob(db + "*"):
        if not (path.endswith(".secrets") or path.endswith(".key")):
            with open(path, "rb") as f:
                written.append(f.read().decode("latin-1"))
    leaked = [name for name, text in spellings(SPELLED).items()   # as is, or in JSON text
              if any(t in w for w in written for t in (text, json.dumps(text)[1:-1]))]
    s.check(not leaked, "no byte the engine wrote holds the secret in another spelling",
            ", ".join(leaked))


def main():
    s = Suite("secrets")
    db = s.path("s.db")
    p = cairn("secret", "set", "API_TOKEN", db=db, input=FILE_SECRET + "\n")
    s.check(p.returncode == 0, "secret set stores a secret", p.stderr)
    p = cairn("secret", "set", "bad-name", db=db, input="x")
    s.check(p.returncode == 2 and "bad-name" in p.stderr, "a bad secret name is refused")
    p = cairn("secret", "list", db=db)
    s.check(p.stdout.split() == ["API_TOKEN"], "secret list shows names only", p.stdout)
    with open(db + ".secrets", "rb") as f:
        s.check(FILE_SECRET.encode() not in f.read(), "the secrets file holds no plaintext")
    s.check(oct(os.stat(db + ".secrets.key").st_mode & 0o777) == "0o600", "the key file is 0600")

    received = s.path("received")
    wf = s.path("leaky.yaml")
    with open(wf, "w") as f:
        f.write("""cairn: 1
name: leaky
outputs:
  leaked: ${{ .secrets.API_TOKEN }}
  header: ${{ .steps.shape.output.auth }}
steps:
  - id: use
    run: printf '%s %s' ${{ .secrets.API_TOKEN }} ${{ .secrets.ENVTOKEN }} > RECEIVED; echo ${{ .secrets.API_TOKEN }}; echo ${{ .secrets.ENVTOKEN }} >&2
  - id: shape
    uses: set
    with: { auth: "Bearer ${{ .secrets.API_TOKEN }}", env: "${{ .secrets.ENVTOKEN }}" }
  - id: broken
    run: echo "cannot reach with ${{ .secrets.API_TOKEN }}" >&2; exit 7
    continue_on_error: true
  - id: fails
    uses: fail
    with: { message: "token was ${{ .secrets.ENVTOKEN }}" }
""".replace("RECEIVED", received))
    p = cairn("run", wf, "--json", db=db, env={"CAIRN_SECRET_ENVTOKEN": ENV_SECRET})
    s.check(p.returncode == 1, "the run fails at its last step as written", p.stderr)
    with open(received) as f:
        s.check(f.read() == FILE_SECRET + " " + ENV_SECRET, "actions receive the real values")
    run_id = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
    run_id = __import__("json").loads(run_id)["id"]
    written = [p.stdout, p.stderr]
    for cmd in (["show", run_id], ["show", run_id, "--json"], ["journal", run_id],
                ["journal", run_id, "--json"], ["runs"]):
        q = cairn(*cmd, db=db)
        written += [q.stdout, q.stderr]
    s.check("***" in p.stdout, "the stored copies show ***")
    for path in glob.glob(db + "*"):
        if path.endswith(".secrets") or path.endswith(".key"):
            continue
        with open(path, "rb") as f:
            written.append(f.read().decode("latin-1"))
    for secret in (FILE_SECRET, ENV_SECRET):
        leaks = sum(secret in w for w in written)
        s.check(leaks == 0, "no byte the engine wrote holds the %s secret" %
                ("file" if secret == FILE_SECRET else "environment"), "%d places" % leaks)

    check_spellings(s, db)
    check_missing_secrets(s)

    os.environ_backup = None
    bad = cairn("run", wf, db=db, env={"CAIRN_SECRET_KEY": "00" * 32})
    s.check(bad.returncode != 0 and "does not open" in bad.stderr,
            "a wrong key is refused clearly", bad.stderr)
    s.finish()


def check_missing_secrets(s):
    """A run reading a secret that neither the store nor the environment
    holds, itself or in a child it starts, is refused before the journal
    exists, naming the secret where it is read; once each is set (either
    way) the same file runs."""
    os.makedirs(s.path("missing"))
    db, wf = s.path("missing", "m.db"), s.path("missing", "needs.yaml")
    child = s.path("missing", "child.yaml")
    with open(wf, "w") as f:
        f.write("""cairn: 1
name: needs-secrets
steps:
  - id: a
    uses: set
    with: { t: "${{ .secrets.NOT_SET }}", u: "${{ .secrets[\\"ALSO_NOT\\"] }}" }
  - { id: b, uses: workflow, with: { name: needs-child } }
""")
    with open(child, "w") as f:
        f.write("""cairn: 1
name: needs-child
steps:
  - { id: c, uses: set, with: { v: "${{ .secrets.CHILD_ONLY }}" } }
""")
    p = cairn("run", wf, db=db)
    s.check(p.returncode == 2, "a run reading an unset secret exits 2", p.stderr)
    for name, col in (("NOT_SET", 17), ("ALSO_NOT", 46)):
        s.check("%s:6:%d: error: secret '%s' is not set" % (wf, col, name) in p.stderr,
                "the refusal names %s where it is read" % name, p.stderr)
    s.check("%s:4:37: error: secret 'CHILD_ONLY' is not set" % child in p.stderr,
            "and names one a child it starts reads, in the child's file", p.stderr)
    s.check(not os.path.exists(db), "nothing is journaled (no journal is made)")
    p = cairn("secret", "set", "NOT_SET", db=db, input="from-the-store\n")
    p = cairn("run", wf, db=db, env={"CAIRN_SECRET_ALSO_NOT": "from-the-environment",
                                     "CAIRN_SECRET_CHILD_ONLY": "child's"})
    s.check(p.returncode == 0, "with one in the store and one in the environment it runs",
            p.stderr)


if __name__ == "__main__":
    main()
