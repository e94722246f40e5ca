"""The documentation against the binary: every action and `with` field of
`cairn actions --json` in docs/actions.md, every command of `cairn help` in
docs/cli.md, every YAML example in README.md and docs/ accepted by `cairn
check`, README's example run as shown, and the help commands."""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from cairn_test import ROOT, Suite, cairn, cairn_json, write  # noqa: E402

DOCS = os.path.join(ROOT, "docs")


def read(path):
    with open(path) as f:
        return f.read()


def sections(text, level):
    """Heading text -> its section's text, for headings of exactly `level` #s."""
    out = {}
    parts = re.split(r"^(%s [^\n]*)$" % ("#" * level), text, flags=re.M)
    for i in range(1, len(parts), 2):
        out[parts[i][level + 1:].strip()] = parts[i + 1]
    return out


def yaml_blocks(text):
    """The ```yaml blocks of a Markdown text, but those marked `# fragment`."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, flags=re.M | re.S)
    return [b for b in blocks if not b.lstrip().startswith("# fragment")]


def help_commands(text):
    """The commands a `cairn help` text lists: the first word of each entry
    line, and of each alternative after ' | '."""
    names = []
    for line in text.splitlines():
        if not re.match(r"^  [a-z]", line):
            continue
        for part in line.strip().split(" | "):
            word = part.split()[0]
            if re.fullmatch(r"[a-z]+(-[a-z]+)*", word) and word not in names:
                names.append(word)
    return names


def test_actions_documented(s):
    actions, p = cairn_json("actions")
    s.check(p.returncode == 0 and len(actions) >= 12, "actions --json lists the actions")
    by_heading = sections(read(os.path.join(DOCS, "actions.md")), 2)
    for a in actions:
        body = by_heading.get(a["name"])
        if not s.check(body is not None, "docs/actions.md has a section '## %s'" % a["name"]):
            continue
        missing = [f["name"] for f in a["fields"] if "`%s`" % f["name"] not in body]
        s.check(not missing, "docs/actions.md, %s: every with field named" % a["name"],
                str(missing))
        s.check(re.search(r"[Ff]ailure\s+kinds|fails", body),
                "docs/actions.md, %s: says how it fails" % a["name"])


def test_help(s):
    p = cairn("help")
    q = cairn("--help")
    s.check(p.returncode == 0 and q.returncode == 0, "help and --help exit 0", p.stderr)
    s.check(p.stdout == q.stdout and p.stdout, "help and --help print the same list")
    listed = help_commands(p.stdout)
    src = read(os.path.join(ROOT, "cli", "main.c"))
    dispatched = re.findall(r'\{"([a-z]+(?:-[a-z]+)*)", cmd_[a-z_]+\}', src) + ["help"]
    s.check(sorted(set(listed)) == sorted(set(dispatched)),
            "help lists exactly the commands main.c dispatches",
            "listed %s, dispatched %s" % (sorted(listed), sorted(dispatched)))
    for c in listed:
        h = cairn("help", c)
        s.check(h.returncode == 0 and h.stdout.startswith("usage: cairn " + c),
                "cairn help %s: its usage, exit 0" % c, h.stdout + h.stderr)
        h2 = cairn(c, "--help")
        s.check(h2.returncode == 0 and h2.stdout == h.stdout,
                "cairn %s --help: the same usage, exit 0" % c, h2.stdout + h2.stderr)
    bad = cairn("help", "nosuch")
    s.check(bad.returncode == 2 and "nosuch" in bad.stderr, "help of an unknown command: exit 2")
    bad = cairn("nosuch", "--help")
    s.check(bad.returncode == 2, "an unknown command with --help: exit 2")


def test_cli_documented(s):
    text = read(os.path.join(DOCS, "cli.md"))
    documented = set()
    for heading in sections(text, 3):
        documented.update(w.strip() for w in heading.split(","))
    listed = help_commands(cairn("help").stdout)
    s.check(len(listed) >= 16, "cairn help lists the commands", str(listed))
    missing = [c for c in listed if c not in documented]
    s.check(not missing, "docs/cli.md has a '### ' heading for every command", str(missing))
    extra = sorted(documented - set(listed))
    s.check(not extra, "docs/cli.md documents no command cairn lacks", str(extra))
    for name in ["CAIRN_DB", "CAIRN_SYNC", "CAIRN_GRACE_MS", "CAIRN_JOURNAL_KEY",
                 "CAIRN_CLOG_ACCEPT_DAMAGE", "CAIRN_SECRETS", "CAIRN_SECRET_KEY_FILE",
                 "CAIRN_SECRET_KEY"]:
        s.check("`%s`" % name in text, "docs/cli.md names %s" % name)
    codes = re.findall(r'EXIT_[A-Z]+ = (\d)', read(os.path.join(ROOT, "cli", "cli.h")))
    table = sections(text, 2).get("Exit codes", "")
    s.check(codes and all(re.search(r"^\| %s \|" % c, table, re.M) for c in codes),
            "docs/cli.md's exit-code table has every code of cli.h", str(codes))


def test_examples_check(s):
    files = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(DOCS, "*.md")))
    total = 0
    for path in files:
        for i, block in enumerate(yaml_blocks(read(path))):
            total += 1
            # each in a folder of its own: check loads the workflows beside a file
            folder = "example-%s-%d" % (os.path.basename(path), i)
            os.makedirs(s.path(folder))
            wf = write(s, os.path.join(folder, "example.yaml"), block)
            p = cairn("check", wf)
            s.check(p.returncode == 0, "%s, yaml example %d passes cairn check"
                    % (os.path.relpath(path, ROOT), i + 1), p.stdout + p.stderr)
    s.check(total >= 5, "the docs hold YAML examples", str(total))


def test_links_resolve(s):
    files = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(DOCS, "*.md")))
    for path in files:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", read(path)):
            full = os.path.join(os.path.dirname(path), target)
            s.check(os.path.exists(full), "%s links to %s, which exists"
                    % (os.path.relpath(path, ROOT), target))
    schema = json.loads(read(os.path.join(ROOT, "schema", "workflow.schema.json")))
    s.check("docs/language.md" in schema["description"],
            "the schema's description points at docs/language.md")


def test_readme_example_runs(s):
    blocks = yaml_blocks(read(os.path.join(ROOT, "README.md")))
    if not s.check(len(blocks) >= 1, "README has a YAML example"):
        return
    os.makedirs(s.path("readme"))   # alone: `run` loads the workflows beside it
    wf = write(s, os.path.join("readme", "readme.yaml"), blocks[0])
    spool = s.path("spool")
    for d in ("a", "b"):
        os.makedirs(os.path.join(spool, d))
        write(s, os.path.join("spool", d, "x.log.1"), "old\n" * 100)
    run, p = cairn_json("run", wf, "--input", "spool=" + spool, db=s.path("readme.db"))
    if not s.check(p.returncode == 0 and run["status"] == "succeeded",
                   "README's example runs on a spool folder", p.stdout[-2000:] + p.stderr):
        return
    steps = run["steps"]
    s.check(int(steps["measure"]["output"]["stdout"]) > 0, "measure reads the spool's size",
            str(steps["measure"]))
    items = steps["inspect"]["output"] or []
    s.check(len(items) == 2 and all(os.path.join(spool, d) in it["stdout"]
                                    for it, d in zip(items, ("a", "b"))),
            "inspect runs once for each folder of the spool", str(items))
    s.check(steps["clean"]["status"] == "skipped", "clean is skipped under its threshold",
            str(steps["clean"]))


def main():
    s = Suite("docs")
    s.run_all([test_actions_documented, test_help, test_cli_documented, test_examples_check,
               test_links_resolve, test_readme_example_runs])
    s.finish()


if __name__ == "__main__":
    main()
