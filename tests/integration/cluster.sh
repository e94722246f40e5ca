#!/bin/sh
# Three cairn serve nodes on one PostgreSQL: commands, streams, webhooks and
# schedules across nodes, and fail-over when a node is killed or stopped
# (cluster.py; CAIRN_CLUSTER_RUNS, CAIRN_CLUSTER_TRIALS for more).
exec python3 "$(dirname "$0")/cluster.py"
