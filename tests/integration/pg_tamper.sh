#!/bin/sh
# The tamper suite again, its journals in PostgreSQL and edited there with
# SQL (tests/lib/cairn_test.py).
CAIRN_TEST_JOURNAL=postgres
export CAIRN_TEST_JOURNAL
exec python3 "$(dirname "$0")/tamper.py"
