#!/bin/bash
# postgres.sh -- start or stop a throw-away PostgreSQL 15 server on 127.0.0.1 for tests.
#
# Usage: tests/servers/postgres.sh start DIR PORT     (prints the postmaster pid)
#        tests/servers/postgres.sh stop DIR
# The cluster is initialized in DIR/data (trust authentication for local sockets, scram for
# 127.0.0.1 so passwords are really checked), runs as user postgres (setpriv: no fork, so the
# pid is the postmaster's), socket in DIR/sock, log in DIR/server.log. Superuser "postgres"
# has the password in $PG_TEST_PASSWORD (default "pgpass"). With $PG_TEST_SSL_DIR holding
# server.crt and server.key, the server also speaks TLS (ssl=on).
set -euo pipefail
. "$(dirname "$0")/common.sh"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=$1 dir=$2
case "$cmd" in
start)
    port=$3
    mkdir -p "$dir/sock"
    grant_access postgres "$dir"
    as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
    pwfile=$dir/pw
    printf '%s\n' "${PG_TEST_PASSWORD:-pgpass}" >"$pwfile"
    chown postgres "$pwfile"
    "${as_pg[@]}" "$PGBIN/initdb" -D "$dir/data" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
    rm -f "$pwfile"
    ssl=()
    if [ -n "${PG_TEST_SSL_DIR:-}" ]; then
        install -o postgres -m 600 "$PG_TEST_SSL_DIR/server.key" "$dir/server.key"
        install -o postgres -m 644 "$PG_TEST_SSL_DIR/server.crt" "$dir/server.crt"
        ssl=(-c ssl=on -c ssl_cert_file="$dir/server.crt" -c ssl_key_file="$dir/server.key")
    fi
    "${as_pg[@]}" "$PGBIN/postgres" -D "$dir/data" -p "$port" -k "$dir/sock" \
        -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "${ssl[@]}" \
        >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    trap '[ $? -eq 0 ] || stop_pidfile "$dir/pid"' EXIT # a failed start leaves nothing running
    wait_for "postgres on port $port" "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port"
    cat "$dir/pid"
    ;;
stop)
    stop_pidfile "$dir/pid"
    ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
