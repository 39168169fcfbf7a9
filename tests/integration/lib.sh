# lib.sh -- common setup and helpers for tests/integration/test_*.sh (sourced, not run).
#
# Usage, at the top of a test script:
#     . "$(dirname "$0")/lib.sh"
#
# Gives: `set -euo pipefail`; $WORK, an empty per-script work directory (under $TMPDIR, which
# tests/run.sh makes fresh for each script), removed on success and kept on failure;
# $COFFER, the binary under test (from the environment; default build/coffer); $ROOT,
# $MKTREE, $TREECMP; COFFER_PASSWORD exported; background processes recorded with track_pid
# are killed on exit, whatever the outcome.
#
# Helpers:
#   fail MSG...               print "FAIL: MSG" and exit 1
#   skip MSG...               print "SKIP: MSG" and exit 77 (run.sh reports it as skipped)
#   assert_eq ACTUAL EXPECTED [WHAT]
#   assert_exit CODE CMD...   run CMD, fail unless it exits with CODE (output goes to the log)
#   track_pid PID...          kill PID (and wait for it) when the script exits
#   step MSG...               print a progress line to the log
#   need_cmd NAME...          skip unless every NAME is on PATH
#   require_coffer            fail unless $COFFER is an executable

set -euo pipefail

ROOT=${COFFER_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MKTREE=$ROOT/tests/tools/mktree.py
TREECMP=$ROOT/tests/tools/treecmp.py
COFFER=${COFFER:-$ROOT/build/coffer}
export COFFER_PASSWORD=test-password-123
unset COFFER_REPOSITORY COFFER_PASSWORD_FILE

TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$TEST_NAME.XXXXXX")
_lib_pids=()

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

skip() {
    echo "SKIP: $*" >&2
    exit 77
}

step() {
    echo "--- $*"
}

assert_eq() {
    local actual=$1 expected=$2 what=${3:-value}
    [ "$actual" = "$expected" ] || fail "$what: expected '$expected', got '$actual'"
}

assert_exit() {
    local want=$1 rc=0
    shift
    "$@" || rc=$?
    [ "$rc" -eq "$want" ] || fail "expected exit $want from '$*', got $rc"
}

track_pid() {
    _lib_pids+=("$@")
}

need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
    done
}

require_coffer() {
    [ -x "$COFFER" ] || fail "coffer binary not found at $COFFER (set COFFER or build first)"
}

_lib_cleanup() {
    local rc=$? p
    set +e
    for p in "${_lib_pids[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then
        chmod -R u+rwX "$WORK" 2>/dev/null
        rm -rf "$WORK"
    else
        echo "$TEST_NAME: failed (exit $rc); work directory kept: $WORK" >&2
    fi
    exit "$rc"
}
trap _lib_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
