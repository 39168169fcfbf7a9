#!/bin/bash
# run.sh -- run every coffer test against one build directory and summarize.
#
# Usage: tests/run.sh BUILD_DIR
#
# Runs, in order, each counted as one test:
#   unit/NAME         every meson unit test (one cmocka executable each), via `meson test`
#                     so its environment and timeout come from tests/unit/meson.build
#   integration/NAME  every tests/integration/test_*.sh, with COFFER=<BUILD_DIR>/coffer, a
#                     fresh TMPDIR and a 600 s timeout; exit 77 means skipped (not counted)
#   fuzz/NAME         when BUILD_DIR/tests/fuzz exists: each fuzz target run once over every
#                     file of its seed corpus tests/fuzz/corpus/NAME/ (or NAME without a
#                     leading "fuzz_"); a target without a corpus fails
# Prints "PASS name" or "FAIL name (see LOG)" per test and ends with exactly the line
# "N passed, N failed". Logs stay in BUILD_DIR/test-logs/; the TMPDIR of a failed
# integration test stays in BUILD_DIR/test-tmp/ for inspection. Exit status 1 if any failed.
# Does not build: run `ninja -C BUILD_DIR` (or `make test`) first.
#
# Environment: ASAN_OPTIONS/UBSAN_OPTIONS default to leak detection and abort on the first
# error; TEST_FILTER=REGEX runs only the tests whose name matches.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: tests/run.sh BUILD_DIR   (a configured meson build directory)" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
logs=$build/test-logs
tmp_base=$build/test-tmp
filter=${TEST_FILTER:-}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

rm -rf "$logs" "$tmp_base"
mkdir -p "$logs" "$tmp_base"

# The test servers listen on fixed ports in 43300-49199, inside Linux's ephemeral range, so a
# busy machine's outgoing connections can hold one of them ("Address already in use"). Reserve
# the test ranges from ephemeral use where we may (root on a throwaway CI machine).
reserve=/proc/sys/net/ipv4/ip_local_reserved_ports
test_ports=43300-43399,47400-47699,48000-48099,49000-49199
if [ -w "$reserve" ]; then
    cur=$(cat "$reserve" 2>/dev/null || true)
    case ",$cur," in
    *",43300-43399,"*) ;;
    *) echo "${cur:+$cur,}$test_ports" >"$reserve" 2>/dev/null ||
        echo "note: could not reserve the test ports $test_ports" ;;
    esac
fi

passed=0
failed=0
skipped=0

# log_name NAME -> a file name for NAME's log ("unit/source/fsmeta" -> unit-source-fsmeta.log)
log_name() {
    local n=${1//\//-}
    printf '%s/%s.log' "$logs" "${n// /_}"
}

# report NAME RC LOG [NOTE]
report() {
    local name=$1 rc=$2 log=$3 note=${4:-}
    if [ "$rc" -eq 0 ]; then
        echo "PASS $name"
        passed=$((passed + 1))
    elif [ "$rc" -eq 77 ]; then
        echo "SKIP $name (see $log)"
        skipped=$((skipped + 1))
    else
        echo "FAIL $name (${note:+$note; }see $log)"
        failed=$((failed + 1))
    fi
}

wanted() {
    [ -z "$filter" ] || [[ $1 =~ $filter ]]
}

# ---- unit tests ----------------------------------------------------------------------------

unit_list=$(meson introspect "$build" --tests 2>"$logs/introspect.log" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    print(t["name"])
')
if [ $? -ne 0 ]; then
    report "unit/(list)" 1 "$logs/introspect.log" "meson introspect failed"
    unit_list=
fi
while IFS= read -r t; do
    [ -n "$t" ] || continue
    name="unit/$t"
    wanted "$name" || continue
    log=$(log_name "$name")
    meson test -C "$build" --no-rebuild --verbose "$t" >"$log" 2>&1
    rc=$?
    # meson reports a skipped test (exit 77) as success; tell it apart for the summary.
    if [ $rc -eq 0 ] && grep -qE '^ *Skipped: *[1-9]' "$log"; then
        rc=77
    fi
    report "$name" $rc "$log"
done <<<"$unit_list"

# ---- integration tests ---------------------------------------------------------------------

coffer_bin=$build/coffer
for script in "$root"/tests/integration/test_*.sh; do
    [ -e "$script" ] || continue
    base=$(basename "$script" .sh)
    name="integration/$base"
    wanted "$name" || continue
    log=$(log_name "$name")
    t=$tmp_base/$base
    mkdir -p "$t"
    note=
    (cd "$t" && COFFER="$coffer_bin" TMPDIR="$t" COFFER_ROOT="$root" \
        timeout -k 10 600 bash "$script") </dev/null >"$log" 2>&1
    rc=$?
    [ $rc -eq 124 ] || [ $rc -eq 137 ] && note="timed out after 600 s"
    if [ $rc -eq 0 ] || [ $rc -eq 77 ]; then
        chmod -R u+rwX "$t" 2>/dev/null
        rm -rf "$t"
    fi
    report "$name" $rc "$log" "$note"
done

# ---- fuzz corpus replay --------------------------------------------------------------------

if [ -d "$build/tests/fuzz" ]; then
    for bin in "$build"/tests/fuzz/fuzz_*; do
        [ -f "$bin" ] && [ -x "$bin" ] || continue
        target=$(basename "$bin")
        name="fuzz/$target"
        wanted "$name" || continue
        log=$(log_name "$name")
        corpus=$root/tests/fuzz/corpus/$target
        [ -d "$corpus" ] || corpus=$root/tests/fuzz/corpus/${target#fuzz_}
        if [ ! -d "$corpus" ] || [ -z "$(find "$corpus" -type f -print -quit)" ]; then
            echo "no seed corpus: add files to tests/fuzz/corpus/$target/" >"$log"
            report "$name" 1 "$log" "no seed corpus"
            continue
        fi
        # libFuzzer runs each file given as an argument once and exits; xargs splits huge
        # corpora over several runs and fails if any run fails.
        (cd "$corpus" && find . -type f -print0 | sort -z |
            xargs -0 -n 1000 timeout -k 10 600 "$bin" -rss_limit_mb=2048) >"$log" 2>&1
        report "$name" $? "$log"
    done
fi

if [ $skipped -gt 0 ]; then
    echo "($skipped skipped)"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
