#!/bin/bash
# test_golden.sh -- repositories written by earlier format versions (tests/golden/) still open,
# pass `check --read-data`, restore byte for byte, and accept new backups.
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd sha256sum
cd "$WORK"
export COFFER_PASSWORD=golden-v1

step "v1: copy the golden repository (the tree stays untouched)"
cp -a "$ROOT/tests/golden/v1/repo" v1
c() { "$COFFER" -r "$WORK/v1" "$@"; }

step "v1: check --read-data"
c check --read-data >check.log 2>&1 || fail "check of the v1 golden repository: $(cat check.log)"

step "v1: the latest files snapshot restores byte for byte"
c restore latest --host golden --tag golden --target out >/dev/null
(cd out/data && find . -type f | sort | xargs sha256sum) >got.sha256
cmp -s got.sha256 "$ROOT/tests/golden/v1/latest-data.sha256" || fail "v1 restore differs"
[ "$(readlink out/data/link)" = hello.txt ] || fail "v1 symlink"

step "v1: the first snapshot has the old content and its mtime"
first=$(c --json snapshots --host golden | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
c dump "${first:0:8}" /data/hello.txt >hello
assert_eq "$(cat hello)" "hello coffer" "v1 first snapshot content"
c restore "${first:0:8}" --target old >/dev/null
assert_eq "$(stat -c %Y old/data/hello.txt)" 1577934245 "v1 mtime (2020-01-02 03:04:05 UTC)"

step "v1: the command snapshot dumps what the command printed"
c dump latest /dump.sql >dump.sql
seq 1 1000 | cmp -s - dump.sql || fail "v1 dump.sql differs"

step "v1: a new backup into the old repository works and checks"
mkdir -p new && echo new >new/f
c -q backup new >/dev/null
c check --read-data >/dev/null 2>&1 || fail "check after a new backup into v1"
echo "golden ok"
