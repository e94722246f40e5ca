#!/bin/sh
exec python3 "$(dirname "$0")/crash_control.py"
