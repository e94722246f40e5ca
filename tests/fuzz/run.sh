#!/bin/sh
# Run every fuzz target built in $FUZZ_BUILD/fuzz for FUZZ_SECONDS each (60
# by default), each from a seed corpus made from the tests' own inputs, kept
# between runs in $FUZZ_BUILD/corpus/<target>.  A target that finds a crash
# leaves it in $FUZZ_BUILD/findings/<target>/ and fails the run.
set -u
cd "$(dirname "$0")/../.."
B=${FUZZ_BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
failed=0

seed() { # target, files...
    t=$1; shift
    mkdir -p "$B/corpus/$t"
    for f in "$@"; do [ -f "$f" ] && cp "$f" "$B/corpus/$t/seed-$(basename "$f")"; done
}

seed fuzz_workflow workflows/*.yaml tests/fixtures/dsl/*.yaml
seed fuzz_shlex tests/fuzz/seeds/shlex/*
seed fuzz_expr tests/fuzz/seeds/expr/*
seed fuzz_clog tests/fuzz/seeds/clog/*
seed fuzz_hook tests/fixtures/hooks/*.json
seed fuzz_hookauth tests/fuzz/seeds/hookauth/*
seed fuzz_tz /usr/share/zoneinfo/Europe/Berlin /usr/share/zoneinfo/America/New_York \
    /usr/share/zoneinfo/Australia/Sydney /usr/share/zoneinfo/Asia/Kolkata /usr/share/zoneinfo/UTC

for bin in "$B"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    t=$(basename "$bin")
    mkdir -p "$B/findings/$t"
    echo "fuzz: $t for ${SECONDS_EACH}s"
    "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$B/findings/$t/" -print_final_stats=1 "$B/corpus/$t" \
        >"$B/findings/$t.log" 2>&1
    rc=$?
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$B/findings/$t.log" |
        tr '\n' ' '
    echo
    if [ $rc -ne 0 ]; then
        echo "fuzz: $t FOUND A PROBLEM (exit $rc):"
        grep -E "ERROR|SUMMARY|Test unit written" "$B/findings/$t.log" | head -n 10
        failed=$((failed + 1))
    fi
done
echo "fuzz: $failed target(s) failed"
[ "$failed" -eq 0 ]
