#!/bin/sh
# The demo: a disk-pressure runbook on this machine, the engine killed with
# kill -9 halfway through, then resumed from its journal.
set -eu
cd "$(dirname "$0")/.."
CAIRN=./cairn
TMP=$(mktemp -d /tmp/cairn-demo-XXXXXX)
DB=$TMP/demo.db
SPOOL=$TMP/spool
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "A spool of rotated logs fills the disk (in $SPOOL)"
for svc in api worker web; do
    mkdir -p "$SPOOL/$svc"
    for n in 1 2 3; do
        head -c 600000 /dev/zero > "$SPOOL/$svc/$svc.log.$n"
        touch -d '30 days ago' "$SPOOL/$svc/$svc.log.$n"
    done
    echo "live" > "$SPOOL/$svc/$svc.log"
done
du -sh "$SPOOL"

say "Start the runbook: cairn run workflows/disk-pressure.yaml"
$CAIRN --db "$DB" run workflows/disk-pressure.yaml --input spool="$SPOOL" &
PID=$!

# wait until the run is inside its foreach step, then pull the plug
i=0
RUN=""
while [ $i -lt 400 ]; do
    RUN=$($CAIRN --db "$DB" runs --json 2>/dev/null | sed -n 's/.*"id":"\([a-z0-9]*\)".*/\1/p')
    [ -n "$RUN" ] && $CAIRN --db "$DB" journal "$RUN" 2>/dev/null | grep -q 'step_started *inspect' && break
    i=$((i + 1))
    sleep 0.05
done
say "kill -9 the engine (pid $PID) in the middle of the run"
kill -9 $PID 2>/dev/null || true
wait $PID 2>/dev/null || true

say "What the journal says survived: cairn show $RUN"
$CAIRN --db "$DB" show "$RUN"

say "cairn resume: finished steps are not run again; in-flight ones follow on_crash"
$CAIRN --db "$DB" resume

say "The finished run"
$CAIRN --db "$DB" show "$RUN"
du -sh "$SPOOL"

say "cairn verify: every event is in an unbroken HMAC chain"
$CAIRN --db "$DB" verify "$RUN"
rm -rf "$TMP"
