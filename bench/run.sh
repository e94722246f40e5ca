#!/bin/sh
# make bench: run the benchmarks on this disk (bench/out/), print the table.
# BENCH_ONLY=PREFIX runs only the engine's benchmarks of that name (bench.c);
# BENCH_ONLY=hooks only the webhooks' (hooks.sh).
set -eu
cd "$(dirname "$0")/.."
mkdir -p bench/out
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -srm)"
rc=0
[ "${BENCH_ONLY:-}" = hooks ] || BENCH_DIR=bench/out build/tools/bench || rc=1
if [ -z "${BENCH_ONLY:-}" ] || [ "${BENCH_ONLY}" = hooks ]; then
    BENCH_DIR=bench/out sh bench/hooks.sh || rc=1
fi
rm -rf bench/out
exit $rc
