#!/bin/sh
# make bench: run the benchmarks on this disk (bench/out/), print the table.
set -eu
cd "$(dirname "$0")/.."
mkdir -p bench/out
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -srm)"
BENCH_DIR=bench/out build/tools/bench
rm -rf bench/out
