#!/bin/sh
# make bench: run the benchmarks on this disk (bench/out/), print the table.
# BENCH_ONLY=PREFIX runs only the engine's benchmarks of that name (bench.c);
# BENCH_ONLY=hooks only the webhooks' (hooks.sh).
# W1 and W2 run again on PostgreSQL (lines "pg ..."): a server of the
# bench's own on this disk, with its durable defaults (fsync and
# synchronous_commit on), reached over its Unix socket.
# On that server, W2 also runs through one, two and three `cairn serve`
# nodes (bench/cluster.py, lines "pg cluster ..."); BENCH_ONLY=cluster runs
# only those.
set -eu
cd "$(dirname "$0")/.."
mkdir -p bench/out
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -srm)"
rc=0
pgdir=$(mktemp -d /tmp/cairn-bench-pg-XXXXXX)
if [ "${BENCH_ONLY:-}" != hooks ] && port=$(PG_DURABLE=1 sh tests/servers/pg.sh start "$pgdir" $$) &&
    psql -X -q -h "$pgdir/sock" -p "$port" -U postgres -d postgres -c "CREATE DATABASE bench"; then
    BENCH_PG_URL="postgresql://postgres@$(echo "$pgdir/sock" | sed 's|/|%2F|g'):$port/bench"
    BENCH_PG_RESET="psql -X -q -h '$pgdir/sock' -p $port -U postgres -d bench -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' >/dev/null 2>&1"
    CAIRN_FILES=$PWD/bench/out/pg   # the PostgreSQL journal's key file
    export BENCH_PG_URL BENCH_PG_RESET CAIRN_FILES
elif [ "${BENCH_ONLY:-}" != hooks ]; then
    echo "bench: no PostgreSQL server: its lines are left out" >&2
fi
case ${BENCH_ONLY:-} in
    hooks | cluster) ;;
    *) BENCH_DIR=bench/out build/tools/bench || rc=1 ;;
esac
if [ -n "${BENCH_PG_URL:-}" ] && { [ -z "${BENCH_ONLY:-}" ] || [ "$BENCH_ONLY" = cluster ]; }; then
    mkdir -p bench/out/cluster
    python3 bench/cluster.py "$pgdir/sock" "$port" bench bench/out/cluster 2>bench/out/cluster.json || {
        cat bench/out/cluster.json >&2
        rc=1
    }
fi
if [ -z "${BENCH_ONLY:-}" ] || [ "${BENCH_ONLY}" = hooks ]; then
    BENCH_DIR=bench/out sh bench/hooks.sh || rc=1
fi
sh tests/servers/pg.sh stop "$pgdir"
rm -rf bench/out
exit $rc
