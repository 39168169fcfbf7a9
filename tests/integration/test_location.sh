#!/bin/bash
# test_location.sh -- `coffer check --location` on local locations and through the fault
# wrapper: a healthy location passes every step and keeps nothing; a failing write, a bit
# flipped on read, a short read and a failing delete are each reported on the right step with
# exit 1; a missing location is exit 10. (S3 and SFTP servers are probed in their own tests.)
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd python3
cd "$WORK"
unset COFFER_PASSWORD # the location check needs none
jv() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(eval(sys.argv[1]))' "$1"; }

step "a healthy local location"
mkdir loc
"$COFFER" -r loc check --location >out.txt || fail "check --location failed: $(cat out.txt)"
for s in write read "ranged read" stat list "create-only write" overwrite "large upload" delete clock; do
    grep -q "^  $s  *ok " out.txt || fail "step '$s' not ok: $(cat out.txt)"
done
[ -z "$(find loc -type f)" ] || fail "the check left objects behind: $(find loc -type f)"
"$COFFER" -r loc --json check --location >out.json
assert_eq "$(jv 'd["ok"]' <out.json)" True "JSON ok"
assert_eq "$(jv 'len(d["steps"])' <out.json)" 10 "JSON steps"

step "faults are reported on their step"
probe_fault() { # SPEC STEP -> the step's result word
    local rc=0
    "$COFFER" -r "fault:$1:$WORK/loc" check --location >f.txt 2>&1 || rc=$?
    assert_eq "$rc" 1 "exit status with $1"
    grep -q "^  $2  *FAILED " f.txt || fail "with $1, step '$2' is not FAILED: $(cat f.txt)"
    grep -q "cannot hold a coffer repository" f.txt || fail "no verdict with $1"
}
probe_fault fail-put=1 write
grep -q "^  read  *skipped " f.txt || fail "steps after a failed write are not skipped"
probe_fault flip-get=1 read
probe_fault short-get=2 "ranged read"
probe_fault fail-list=1 list
probe_fault fail-remove=1 delete
[ -z "$(find loc -type f)" ] || fail "a failed check left objects behind: $(find loc -type f)"

step "a missing location"
assert_exit 10 "$COFFER" -r "$WORK/missing" check --location
assert_exit 2 "$COFFER" -r loc check --location --read-data
echo "location tests passed"
