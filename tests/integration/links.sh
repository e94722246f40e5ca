#!/bin/sh
# Debian's python3: python3-selenium is installed for it (scripts/deps.sh).
exec /usr/bin/python3 "$(dirname "$0")/links.py"
