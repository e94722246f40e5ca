#!/bin/sh
# The crash_control suite again, its journals in PostgreSQL (tests/lib/cairn_test.py).
CAIRN_TEST_JOURNAL=postgres
export CAIRN_TEST_JOURNAL
CRASH_CONTROL_TRIALS=${CRASH_CONTROL_TRIALS:-10}   # of the 20 the SQLite run does
export CRASH_CONTROL_TRIALS
exec python3 "$(dirname "$0")/crash_control.py"
