#!/bin/bash
# s3rver.sh -- s3rver 3.7.1 (npm; a lenient S3 server that checks no signature) on 127.0.0.1.
#
# Usage: tests/servers/s3rver.sh start DIR PORT   |   tests/servers/s3rver.sh stop DIR
#
# Installs the locked npm packages of tests/servers/npm (package.json + package-lock.json) with
# `npm ci` into $COFFER_NPM_DIR (default: ~/.cache/coffer-test-npm) once, then runs s3rver with
# data under DIR, keys S3RVER/S3RVER, pid in DIR/s3rver.pid. NODE_OPTIONS=
# --openssl-legacy-provider is required: without it any truncated listing answers 500.
set -euo pipefail
cmd=${1:-}
D=${2:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "$cmd" ] || [ -z "$D" ]; then
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
fi
if [ "$cmd" = stop ]; then
    p=$(cat "$D/s3rver.pid" 2>/dev/null) || exit 0
    kill "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || exit 0; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    exit 0
fi
PORT=${3:?PORT}
command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "s3rver.sh: node and npm are needed (scripts/install-deps.sh test)" >&2; exit 3; }
NPM_DIR=${COFFER_NPM_DIR:-$HOME/.cache/coffer-test-npm}
if ! cmp -s "$here/npm/package-lock.json" "$NPM_DIR/package-lock.json" ||
    [ ! -x "$NPM_DIR/node_modules/.bin/s3rver" ]; then
    mkdir -p "$NPM_DIR"
    cp "$here/npm/package.json" "$here/npm/package-lock.json" "$NPM_DIR/"
    (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
rm -rf "$D"
mkdir -p "$D/data"
NODE_OPTIONS=--openssl-legacy-provider "$NPM_DIR/node_modules/.bin/s3rver" -d "$D/data" \
    -a 127.0.0.1 -p "$PORT" --no-vhost-buckets --silent >"$D/s3rver.log" 2>&1 &
echo $! >"$D/s3rver.pid"
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
curl -s -o /dev/null "http://127.0.0.1:$PORT/" || { echo "s3rver did not come up" >&2; exit 1; }
echo "s3rver ready on http://127.0.0.1:$PORT (pid $(cat "$D/s3rver.pid"))"
