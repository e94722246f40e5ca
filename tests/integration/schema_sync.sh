#!/bin/sh
# The editor schema must describe every field the actions accept.
cd "$(dirname "$0")/../.."
if python3 scripts/schema_sync.py --check; then
    echo "schema_sync: 1 passed, 0 failed"
else
    echo "run scripts/schema_sync.py --write to add them"
    echo "schema_sync: 0 passed, 1 failed"
    exit 1
fi
