#!/bin/sh
# Validate schema/workflow.schema.json itself, then every workflows/*.yaml and
# tests/fixtures/dsl/good/*.yaml against it; and check that it rejects a few
# of the bad fixtures (so it is not vacuous).  Needs python3-jsonschema and
# python3-yaml (scripts/deps.sh).  The last line is "schema: N passed, N failed".
#
# YAML is read with the YAML 1.2 core schema, as Cairn's loader reads it:
# PyYAML's default (YAML 1.1) would turn a `retry.on:` key into true.
set -u
cd "$(dirname "$0")/../.."

python3 - <<'EOF'
import glob, json, re, sys

passed = failed = 0

def result(ok, name, why=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: {why}")

try:
    import jsonschema
    import yaml
except ImportError as e:
    print(f"schema: cannot import {e.name}: install python3-jsonschema and python3-yaml")
    print("schema: 0 passed, 1 failed")
    sys.exit(1)

class Core12Loader(yaml.SafeLoader):
    """YAML 1.2 core schema for plain scalars; no timestamps, no sexagesimals."""

Core12Loader.yaml_implicit_resolvers = {}
for tag, pattern, first in [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", list("~nN") + [""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     list("-+0123456789.")),
]:
    Core12Loader.add_implicit_resolver(tag, re.compile(pattern), first)

def construct_int(loader, node):
    s = loader.construct_scalar(node)
    if s.startswith("0o"):
        return int(s[2:], 8)
    if s.startswith("0x"):
        return int(s[2:], 16)
    return int(s, 10)

Core12Loader.add_constructor("tag:yaml.org,2002:int", construct_int)

def jsonish(v):
    """Map keys as text, as the loader reads them."""
    if isinstance(v, dict):
        return {str(k): jsonish(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonish(x) for x in v]
    return v

with open("schema/workflow.schema.json") as f:
    schema = json.load(f)
cls = jsonschema.validators.validator_for(schema)
try:
    cls.check_schema(schema)
    result(True, "schema/workflow.schema.json")
except jsonschema.SchemaError as e:
    result(False, "schema/workflow.schema.json", e.message)
    print(f"schema: {passed} passed, {failed} failed")
    sys.exit(1)
validator = cls(schema)

def load(path):
    with open(path, encoding="utf-8") as f:
        return jsonish(yaml.load(f, Loader=Core12Loader))

def errors(path):
    doc = load(path)
    return sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))

good = sorted(glob.glob("workflows/*.yaml")) + sorted(glob.glob("tests/fixtures/dsl/good/*.yaml"))
for path in good:
    try:
        errs = errors(path)
        where = lambda e: "/".join(map(str, e.absolute_path)) or "(top)"
        result(not errs, path, "; ".join(f"{where(e)}: {e.message[:200]}" for e in errs[:5]))
    except Exception as e:  # a file that does not even parse
        result(False, path, repr(e))

# Bad fixtures whose mistakes a schema can see: each must be rejected.
for name in ["unknown_keys", "document_keys", "retry", "expressions", "triggers",
             "compensate", "step_ids", "durations", "inputs", "actions", "with_fields",
             "env_outputs", "needs"]:
    path = f"tests/fixtures/dsl/{name}.yaml"
    try:
        result(bool(errors(path)), path, "accepted by the schema, but the loader refuses it")
    except Exception as e:
        result(False, path, repr(e))

print(f"schema: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
EOF
