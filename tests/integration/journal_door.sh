#!/bin/sh
# One door to the journal (engine/journal.h): outside the store's own files
# no source file calls SQLite or libpq, opens a store or touches the commit
# log.  actions/db_sqlite.c and actions/db_pg.c are the `db` action's
# clients for users' databases, not the journal.
cd "$(dirname "$0")/../.."
store='^(engine/(journal|store|clog)[a-z_]*\.[ch]|actions/db_(sqlite|pg)\.c)$'
pattern='sqlite3_[a-z_]+ *\(|PQ[a-zA-Z]+ *\(|cairn_store_(open|check)[a-z_]*\(|cairn_clog_[a-z_]+\(|cairn_journal_(key|key_check|id)\('
found=$(for f in $(ls common/*.[ch] dsl/*.[ch] engine/*.[ch] actions/*.[ch] cli/*.[ch] \
                      server/*.[ch] 2>/dev/null); do
            echo "$f" | grep -qE "$store" && continue
            grep -nE "$pattern" "$f" | sed "s|^|$f:|"
        done)
if [ -z "$found" ]; then
    echo "journal_door: 1 passed, 0 failed"
else
    echo "reaches the journal past engine/journal.h:"
    echo "$found"
    echo "journal_door: 0 passed, 1 failed"
    exit 1
fi
