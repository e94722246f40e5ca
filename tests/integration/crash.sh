#!/bin/sh
# kill -9 the engine at random moments; see crash.py.
exec python3 "$(dirname "$0")/crash.py"
