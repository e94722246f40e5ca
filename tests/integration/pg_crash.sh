#!/bin/sh
# The crash suite again, its journals in PostgreSQL (tests/lib/cairn_test.py).
CAIRN_TEST_JOURNAL=postgres
export CAIRN_TEST_JOURNAL
CRASH_TRIALS=${CRASH_TRIALS:-20}   # of the 50 the SQLite run does
export CRASH_TRIALS
exec python3 "$(dirname "$0")/crash.py"
