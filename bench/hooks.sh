#!/bin/sh
# make bench, webhooks: CLIENTS (32) clients post new Alertmanager alerts to
# a `cairn serve` for SECONDS (10); then the journal is checked: every
# accepted webhook has exactly one run.  The rate limit is raised for the
# load, which comes from one address (docs/api.md, limits).
set -eu
cd "$(dirname "$0")/.."
out=${BENCH_DIR:-bench/out}/hooks
rm -rf "$out"
mkdir -p "$out/wf"
cat > "$out/wf/bench-alert.yaml" <<'YAML'
cairn: 1
name: bench-alert
inputs:
  instance: { type: string, required: true }
triggers:
  - webhook: alertmanager
    match: { alertname: "^BenchAlert$" }
    dedupe: ${{ .fingerprint }}
    inputs: { instance: "${{ .labels.instance }}" }
steps:
  - id: note
    uses: set
    with: { instance: "${{ .inputs.instance }}" }
YAML
CAIRN_SERVE_RATE_PER_S=1000000 CAIRN_SERVE_RATE_BURST=1000000 \
    ./cairn --db "$out/j.db" serve --workflows "$out/wf" --listen 127.0.0.1:0 \
    --port-file "$out/port" 2>"$out/serve.err" &
pid=$!
i=0
while [ ! -s "$out/port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
rc=0
build/tools/hookbench load "$(cat "$out/port")" "${HOOK_CLIENTS:-32}" "${HOOK_SECONDS:-10}" \
    "$out/pairs" || rc=1
kill -TERM $pid
wait $pid || rc=1
build/tools/hookbench verify "$out/j.db" "$out/pairs" bench-alert || rc=1
exit $rc
