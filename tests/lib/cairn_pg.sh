#!/bin/sh
# cairn with its journal in PostgreSQL, for running a suite against that
# store (tests/lib/cairn_test.py, CAIRN_TEST_JOURNAL=postgres).  Each
# journal path a test names (--db PATH, --db=PATH, CAIRN_DB, else
# ./cairn.db) becomes a database of its own on the suite's server, named
# from the path and created the first time, and CAIRN_FILES=PATH keeps the
# journal's key, secrets, tokens and socket where the SQLite journal's
# would be.  A postgres:// URL is left as it is.  The last step is exec:
# the process the test starts (and kills) is cairn itself.
#
# Environment (set by cairn_test.py): CAIRN_TEST_PG_CAIRN (the real binary),
# CAIRN_TEST_PG_SOCK (the server's socket folder), CAIRN_TEST_PG_PORT.
set -u

url() { # path -> URL of its database (created once; PATH.pgdb marks it)
    case $1 in postgres://* | postgresql://*) echo "$1"; return ;; esac
    name=cairn_$(printf %s "$1" | md5sum | cut -c1-20)
    if [ ! -e "$1.pgdb" ]; then
        psql -X -q -h "$CAIRN_TEST_PG_SOCK" -p "$CAIRN_TEST_PG_PORT" -U postgres -d postgres \
            -c "CREATE DATABASE $name" >/dev/null 2>&1 || true
        : >"$1.pgdb" 2>/dev/null || true
    fi
    sock=$(printf %s "$CAIRN_TEST_PG_SOCK" | sed 's|/|%2F|g')
    echo "postgresql://postgres@$sock:$CAIRN_TEST_PG_PORT/$name"
}

files=
db_env=${CAIRN_DB:-}
case $db_env in
    postgres://* | postgresql://*) ;;
    "") files=$PWD/cairn.db; CAIRN_DB=$(url "$files"); export CAIRN_DB ;;
    *) files=$db_env; CAIRN_DB=$(url "$db_env"); export CAIRN_DB ;;
esac

n=$#
i=0
while [ "$i" -lt "$n" ]; do
    a=$1
    shift
    i=$((i + 1))
    case $a in
        --db)
            if [ "$i" -lt "$n" ]; then
                files=$1
                set -- "$@" --db "$(url "$1")"
                shift
                i=$((i + 1))
            else
                set -- "$@" --db
            fi ;;
        --db=*) files=${a#--db=}; set -- "$@" "--db=$(url "$files")" ;;
        *) set -- "$@" "$a" ;;
    esac
done
case $files in
    postgres://* | postgresql://*) ;;
    *) CAIRN_FILES=$files; export CAIRN_FILES ;;
esac
exec "$CAIRN_TEST_PG_CAIRN" "$@"
