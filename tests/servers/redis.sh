#!/bin/bash
# redis.sh -- start or stop a throw-away Redis server on 127.0.0.1 for tests.
#
# Usage: tests/servers/redis.sh start DIR PORT    (prints the server pid)
#        tests/servers/redis.sh stop DIR
# Data directory DIR (a dump.rdb already there is loaded: that is how a restore is tested),
# no persistence on its own (save "", appendonly no), DEBUG enabled for DEBUG DIGEST, and
# repl-diskless-sync-delay 0 so `redis-cli --rdb` does not wait 5 s. With $REDIS_TEST_PASSWORD
# set, the server requires it (written to DIR/redis.conf, not argv).
set -euo pipefail
. "$(dirname "$0")/common.sh"
cmd=$1 dir=$2
case "$cmd" in
start)
    port=$3
    mkdir -p "$dir"
    {
        echo "port $port"
        echo "bind 127.0.0.1"
        echo "dir $dir"
        echo "save \"\""
        echo "appendonly no"
        echo "daemonize no"
        echo "logfile $dir/redis.log"
        echo "enable-debug-command local"
        echo "repl-diskless-sync-delay 0"
        [ -z "${REDIS_TEST_PASSWORD:-}" ] || echo "requirepass $REDIS_TEST_PASSWORD"
    } >"$dir/redis.conf"
    chmod 600 "$dir/redis.conf"
    redis-server "$dir/redis.conf" >/dev/null 2>&1 &
    echo $! >"$dir/pid"
    trap '[ $? -eq 0 ] || stop_pidfile "$dir/pid"' EXIT # a failed start leaves nothing running
    wait_for "redis on port $port" bash -c "redis-cli -p $port ping 2>&1 | grep -q 'PONG\|NOAUTH'"
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
