#!/bin/sh
# The engine's files call each other in circles of at most five files
# (engine/engine.h says who owns what; scripts/call_cycles.py measures).
cd "$(dirname "$0")/../.."
if python3 scripts/call_cycles.py --build "${BUILD:-build}" --max 5 -q; then
    echo "call_cycles: 1 passed, 0 failed"
else
    echo "call_cycles: 0 passed, 1 failed"
    exit 1
fi
