#!/bin/sh
# Run families across a fail-over: three cairn serve nodes on one
# PostgreSQL, the node holding parents and their children killed; each
# family is taken over whole by one node (failover_family.py).
exec python3 "$(dirname "$0")/failover_family.py"
