#!/bin/sh
# make demo: the incident drill (scripts/demo.py): an Alertmanager webhook
# starts incident-response in `cairn serve`, an operator approves the fix,
# the server is killed with kill -9 mid-run and resumes it; the timeline and
# `cairn verify` end it.  Stand-ins on 127.0.0.1; sshd needs root.
set -eu
cd "$(dirname "$0")/.."
exec python3 scripts/demo.py
