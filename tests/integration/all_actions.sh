#!/bin/sh
exec python3 "$(dirname "$0")/all_actions.py"
