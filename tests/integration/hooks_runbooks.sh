#!/bin/sh
exec python3 "$(dirname "$0")/hooks_runbooks.py" "$@"
