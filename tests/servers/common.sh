# common.sh -- helpers for the test server scripts in tests/servers/ (sourced, not run).
#
# Invariants: servers listen on 127.0.0.1 only; every server is stopped by its own pid (never
# pkill/killall); data lives under the directory the caller gives, which the server's user must
# be able to reach: grant_access makes the caller's private test directories (under $TMPDIR)
# traversable, and nothing outside $TMPDIR is touched.

stop_pidfile() {
    local f=$1 p i
    [ -f "$f" ] || return 0
    p=$(head -1 "$f")
    [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null || return 0
    for i in $(seq 200); do
        kill -0 "$p" 2>/dev/null || return 0
        # a zombie child of the caller counts as stopped
        [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" = Z ] && return 0
        sleep 0.1
    done
    echo "pid $p did not stop; killing it" >&2
    kill -9 "$p" 2>/dev/null || true
}

# grant_access USER DIR: make DIR usable by USER (chown) and its ancestors below $TMPDIR
# traversable (o+x), so a server running as USER can use it.
grant_access() {
    local user=$1 dir=$2 d tmp
    chown -R "$user:$user" "$dir"
    tmp=$(cd "${TMPDIR:-/tmp}" && pwd -P)
    d=$(cd "$dir" && pwd -P)
    while [ "$d" != / ]; do
        d=$(dirname "$d")
        case "$d/" in
        "$tmp"/*) chmod o+x "$d" ;;
        esac
        [ "$d" = "$tmp" ] && break
    done
    if ! setpriv --reuid="$user" --regid="$user" --clear-groups test -w "$dir"; then
        echo "user $user cannot write $dir: a parent directory is not traversable" >&2
        return 1
    fi
}

wait_for() {
    local what=$1 i
    shift
    for i in $(seq 300); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$what did not come up" >&2
    return 1
}
