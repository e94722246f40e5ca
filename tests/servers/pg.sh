#!/bin/sh
# A throwaway PostgreSQL server for tests, on 127.0.0.1 only.
#
#   pg.sh start DIR [OWNER_PID]   start a server in DIR (created if absent; it
#                                 must not hold a data folder), print its port
#   pg.sh stop DIR                stop the server (immediate) and remove DIR
#
# Tests run it with fsync, synchronous_commit and full_page_writes off (what
# they check does not need the disk); PG_DURABLE=1 keeps PostgreSQL's
# defaults, for measuring (make bench).
#
# PostgreSQL refuses to run as root, so initdb and pg_ctl run as the
# `postgres` user on a data folder that user owns.  The server listens on a
# free loopback port and on a Unix socket in DIR/sock; DIR/port holds the port.
#
# Authentication (pg_hba.conf): the superuser `postgres` is trusted (socket and
# TCP); every other role must give its password over TCP (scram-sha-256).
# The role `cairn` with password `cairn-pw` exists for such tests.
#
# With OWNER_PID, a detached watchdog stops the server and removes DIR once
# that process has exited, so a test runner that shares one server among its
# tests leaves nothing behind.
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
START_TRIES=5                       # ports tried before giving up
READY_TIMEOUT_S=30                  # pg_ctl -w and pg_isready wait at most this long

as_pg() { runuser -u postgres -- "$@"; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

init_cluster() { # dir
    mkdir -p "$1/sock"
    chown -R postgres: "$1"
    chmod 700 "$1"
    as_pg "$PGBIN/initdb" -D "$1/data" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >"$1/initdb.log" 2>&1 ||
        { cat "$1/initdb.log" >&2; exit 1; }
    cat >"$1/data/pg_hba.conf" <<EOF
local all all                trust
host  all postgres 127.0.0.1/32 trust
host  all all      127.0.0.1/32 scram-sha-256
EOF
    chown postgres: "$1/data/pg_hba.conf"
}

fast_options() {
    [ "${PG_DURABLE:-}" = 1 ] || echo "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
}

# Start on a free port; another process may take the port between our probe
# and the bind, so a failed start is retried on a fresh one.
start_server() { # dir
    i=0
    while [ "$i" -lt "$START_TRIES" ]; do
        port=$(free_port)
        if as_pg "$PGBIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t "$READY_TIMEOUT_S" \
            -o "-k $1/sock -h 127.0.0.1 -p $port $(fast_options)" \
            start >/dev/null 2>&1; then
            echo "$port"
            return 0
        fi
        i=$((i + 1))
    done
    cat "$1/server.log" >&2 || true
    return 1
}

wait_ready() { # dir port
    end=$(($(date +%s) + READY_TIMEOUT_S))
    until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$2"; do
        [ "$(date +%s)" -lt "$end" ] || { echo "pg.sh: server not ready" >&2; return 1; }
        sleep 0.05
    done
}

start() { # dir [owner]
    dir=$1
    [ ! -e "$dir/data" ] || { echo "pg.sh: $dir/data already exists" >&2; exit 1; }
    init_cluster "$dir"
    port=$(start_server "$dir") || { rm -rf "$dir"; exit 1; }
    wait_ready "$dir" "$port" || { stop "$dir"; exit 1; }
    as_pg "$PGBIN/psql" -q -h "$dir/sock" -p "$port" -U postgres -d postgres \
        -c "CREATE ROLE cairn LOGIN PASSWORD 'cairn-pw'" >/dev/null
    echo "$port" >"$dir/port"
    if [ -n "${2:-}" ]; then
        self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
        setsid sh "$self" watch "$dir" "$2" </dev/null >/dev/null 2>&1 &
    fi
    echo "$port"
}

stop() { # dir
    [ -d "$1/data" ] && as_pg "$PGBIN/pg_ctl" -D "$1/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$1"
}

watch() { # dir owner
    tail --pid="$2" -f /dev/null
    stop "$1"
}

case "${1:-}" in
    start) start "$2" "${3:-}" ;;
    stop)  stop "$2" ;;
    watch) watch "$2" "$3" ;;
    *) echo "usage: pg.sh start DIR [OWNER_PID] | stop DIR" >&2; exit 2 ;;
esac
