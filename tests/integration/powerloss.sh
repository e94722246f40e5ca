#!/bin/sh
# Rebuild the journal's files at many simulated power losses; see powerloss.py.
exec python3 "$(dirname "$0")/powerloss.py"
