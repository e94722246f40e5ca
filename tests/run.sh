#!/bin/sh
# Run every test: the unit binary, then each tests/integration/*.sh.
# Each integration script prints "name: N passed, N failed" as its last line.
# Ends with one summary line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
# Every run a test leaves behind is replayed before its folder goes
# (tests/lib/cairn_test.py, and the unit tests' engine harness: free_h);
# unset for a quicker one-off run.
export CAIRN_TEST_REPLAY=${CAIRN_TEST_REPLAY-1}
passed=0; failed=0
log=$(mktemp)

tally() { # name, command...
    name=$1; shift
    "$@" >"$log" 2>&1
    rc=$?
    line=$(grep -oE '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    p=$(echo "$line" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1/p')
    f=$(echo "$line" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\2/p')
    [ -z "$p" ] && { p=0; f=1; }
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    if [ "$f" -ne 0 ]; then
        echo "---- $name failed (exit $rc):"; grep -v '^ok ' "$log" | tail -n 60
    fi
    echo "$name: $p passed, $f failed"
    passed=$((passed + p)); failed=$((failed + f))
}

tally unit "$BUILD/unit"
for t in tests/integration/*.sh; do
    [ -f "$t" ] || continue
    tally "$(basename "$t" .sh)" sh "$t"
done
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
