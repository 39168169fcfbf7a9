#!/bin/bash
# mariadb.sh -- start or stop a throw-away MariaDB server on 127.0.0.1 for tests.
#
# Usage: tests/servers/mariadb.sh start DIR PORT     (prints the server pid)
#        tests/servers/mariadb.sh stop DIR
# --no-defaults everywhere (the system /etc/mysql config points at /var/lib/mysql); runs as
# user mysql; socket DIR/mysqld.sock, log DIR/error.log. root@localhost (socket) has no
# password; root@127.0.0.1 is created with the password in $MARIADB_TEST_PASSWORD
# (default "mypass"), so TCP clients must really authenticate. $MARIADB_TEST_ARGS replaces the
# default --skip-log-bin (e.g. "--log-bin --server-id=1" for a replication primary).
set -euo pipefail
. "$(dirname "$0")/common.sh"
cmd=$1 dir=$2
unset MYSQL_PWD MYSQL_HOST MYSQL_TCP_PORT
case "$cmd" in
start)
    port=$3
    mkdir -p "$dir/tmp"
    grant_access mysql "$dir"
    mariadb-install-db --no-defaults --datadir="$dir/data" --user=mysql --tmpdir="$dir/tmp" \
        --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
        { tail -20 "$dir/install.log" >&2; exit 1; }
    mariadbd --no-defaults --datadir="$dir/data" --user=mysql --port="$port" --tmpdir="$dir/tmp" \
        --bind-address=127.0.0.1 --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" \
        --log-error="$dir/error.log" --skip-name-resolve --innodb-buffer-pool-size=64M \
        --innodb-log-file-size=48M ${MARIADB_TEST_ARGS:---skip-log-bin} >/dev/null 2>&1 &
    echo $! >"$dir/pid"
    trap '[ $? -eq 0 ] || stop_pidfile "$dir/pid"' EXIT # a failed start leaves nothing running
    wait_for "mariadb on port $port" mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -uroot ping
    pw=${MARIADB_TEST_PASSWORD:-mypass}
    mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot -e \
        "create or replace user 'root'@'127.0.0.1' identified by '$pw'; grant all on *.* to 'root'@'127.0.0.1' with grant option;"
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
