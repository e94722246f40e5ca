#!/usr/bin/env python3
"""Keep schema/workflow.schema.json's `with_<action>` definitions in step with
the actions' own signatures (`cairn actions --json`).

  scripts/schema_sync.py --check   exit 1 and name every field missing from the schema
  scripts/schema_sync.py --write   add the missing fields (typed, expressions allowed)
"""
import json
import subprocess
import sys

SCHEMA = "schema/workflow.schema.json"
TYPES = {"string": {"type": "string"}, "number": {"type": "number"},
         "integer": {"type": "integer"}, "boolean": {"type": "boolean"},
         "object": {"type": "object"}, "array": {"type": "array"},
         "string|array": {"type": ["string", "array"]},
         "duration": {"$ref": "#/definitions/duration"}, "pattern": {"type": "string"},
         "any": {}}


def property_for(field):
    t = TYPES[field["type"]]
    if not t:
        return {"description": "See `cairn actions`."}
    if field["type"] in ("string", "pattern"):
        return dict(t, description="See `cairn actions`.")
    return {"anyOf": [t, {"$ref": "#/definitions/expression"}],
            "description": "See `cairn actions`."}


def main():
    actions = json.loads(subprocess.run(["./cairn", "actions", "--json"], check=True,
                                        capture_output=True, text=True).stdout)
    with open(SCHEMA) as f:
        schema = json.load(f)
    defs = schema["definitions"]
    missing = []
    for a in actions:
        d = defs.get("with_" + a["name"])
        if d is None:
            missing.append("with_%s (the whole action)" % a["name"])
            continue
        if a["open"]:
            continue
        props = d.setdefault("properties", {})
        for fld in a["fields"]:
            if fld["name"] not in props:
                missing.append("with_%s.%s" % (a["name"], fld["name"]))
                props[fld["name"]] = property_for(fld)
    if "--write" in sys.argv:
        with open(SCHEMA, "w") as f:
            json.dump(schema, f, indent=2)
            f.write("\n")
        print("added %d field(s)" % len(missing))
        return 0
    for m in missing:
        print("schema lacks " + m)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
