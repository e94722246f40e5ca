#!/bin/sh
# The replay suite again, its journals in PostgreSQL (tests/lib/cairn_test.py).
CAIRN_TEST_JOURNAL=postgres
export CAIRN_TEST_JOURNAL
exec python3 "$(dirname "$0")/replay.py"
