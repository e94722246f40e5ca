#!/bin/sh
# Two `cairn serve` nodes on one PostgreSQL journal: a node stopped longer
# than its lease loses its runs to the other, whose writes go on; its own
# late writes are refused (tests/integration/lease.py).
CAIRN_TEST_JOURNAL=postgres
export CAIRN_TEST_JOURNAL
exec python3 "$(dirname "$0")/lease.py"
