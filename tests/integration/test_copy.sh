#!/bin/bash
# test_copy.sh -- `coffer copy`: snapshots move between repositories with different keys and
# come out byte-identical; a second copy skips what the target has and reads only new data;
# a copy killed at each put resumes without uploading again what landed; selection by id and
# tag; a copy of a copy keeps the original id; bad input (no --to, same repository, wrong
# target password, missing target) gives the documented exit codes.
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd python3
cd "$WORK"
export COFFER_KDF="argon2id:ops=1,mem=8192"
export COFFER_PASSWORD=source-pw COFFER_TO_PASSWORD=target-pw
jget() { python3 -c 'import json,sys; print(eval(sys.argv[1], {"d": [json.loads(l) for l in sys.stdin if l.strip()]}))' "$1"; }
summary() { jget '[x for x in d if x.get("message_type")=="summary"][0]'"$1"; }
first_id() { COFFER_PASSWORD=$2 "$COFFER" -r "$1" --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'; }
nsnap() { COFFER_PASSWORD=$2 "$COFFER" -r "$1" --json snapshots | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

python3 "$MKTREE" --seed 7 src >/dev/null
head -c 6000000 /dev/urandom >src/big.bin

"$COFFER" -q -r A init --pack-size 1
COFFER_PASSWORD=target-pw "$COFFER" -q -r B init --pack-size 1
"$COFFER" -q -r A backup src --tag one
echo change >>src/big.bin
"$COFFER" -q -r A backup src --tag two

step "first copy: every snapshot, identical restores, target checks"
"$COFFER" -r A --json copy --to B >c1.json
assert_eq "$(summary '["snapshots_copied"]' <c1.json)" 2 "snapshots copied"
assert_eq "$(nsnap B target-pw)" 2 "snapshots in the target"
COFFER_PASSWORD=target-pw "$COFFER" -r B check --read-data >check.out 2>&1 || fail "check of the target: $(cat check.out)"
COFFER_PASSWORD=target-pw "$COFFER" -q -r B restore latest --target outB
python3 "$TREECMP" --no-atime src outB/src || fail "restore from the target differs from the source tree"
# the first snapshot of the target has the first snapshot's content (the unchanged big.bin)
COFFER_PASSWORD=target-pw "$COFFER" -r B --json snapshots >snapsB.json
first=$(python3 -c 'import json; print(json.load(open("snapsB.json"))[0]["id"])')
"$COFFER" -q -r A restore "$(first_id A source-pw)" --target outA1
COFFER_PASSWORD=target-pw "$COFFER" -q -r B restore "$first" --target outB1
cmp outA1/src/big.bin outB1/src/big.bin || fail "the first copied snapshot has the wrong content"
orig=$(python3 -c 'import json; print(json.load(open("snapsB.json"))[0]["original"])')
assert_eq "$orig" "$(first_id A source-pw)" "original id of the first copy"

step "second copy: nothing to do"
"$COFFER" -r A --json copy --to B >c2.json
assert_eq "$(summary '["snapshots_copied"]' <c2.json)" 0 "snapshots copied again"
assert_eq "$(summary '["snapshots_skipped"]' <c2.json)" 2 "snapshots skipped"

step "incremental: a new snapshot reads only the new data from the source"
echo new-file >src/new.txt
"$COFFER" -q -r A backup src --tag three
"$COFFER" -r A --json copy --to B >c3.json
assert_eq "$(summary '["snapshots_copied"]' <c3.json)" 1 "snapshots copied"
read_blobs=$(summary '["blobs_read"]' <c3.json)
[ "$read_blobs" -le 2 ] || fail "the incremental copy read $read_blobs blobs from the source (expected only the new file's)"
COFFER_PASSWORD=target-pw "$COFFER" -q -r B restore latest --target outB3
python3 "$TREECMP" --no-atime src outB3/src || fail "incremental copy differs"

step "selection: by id and by tag; a copy of a copy keeps the original id"
COFFER_PASSWORD=target-pw "$COFFER" -q -r C init
sid=$(first_id A source-pw | cut -c1-8)
"$COFFER" -q -r A copy --to C "$sid"
assert_eq "$(nsnap C target-pw)" 1 "snapshots after copying one id"
"$COFFER" -q -r A copy --to C --tag two
assert_eq "$(nsnap C target-pw)" 2 "snapshots after copying tag two"
# B -> D, then A -> D: the copies in D carry A's ids as original, so A's copy skips them
COFFER_PASSWORD=other-pw "$COFFER" -q -r D init
COFFER_PASSWORD=target-pw COFFER_TO_PASSWORD=other-pw "$COFFER" -q -r B copy --to D
COFFER_TO_PASSWORD=other-pw "$COFFER" -r A --json copy --to D >c4.json
assert_eq "$(summary '["snapshots_copied"]' <c4.json)" 0 "snapshots copied A->D after B->D"
assert_eq "$(summary '["snapshots_skipped"]' <c4.json)" 3 "snapshots skipped A->D after B->D"

step "a copy killed at each put in turn resumes and uploads nothing twice"
total=$(summary '["bytes_stored"]' <c1.json)
n=0
while :; do
    n=$((n + 3))
    [ "$n" -le 60 ] || fail "the copy never completed under kill-at-put"
    T=$WORK/k$n
    COFFER_PASSWORD=target-pw "$COFFER" -q -r "$T" init --pack-size 1
    rc=0
    "$COFFER" -q -r A copy --to "fault:kill-at-put=$n:$T" >/dev/null 2>&1 || rc=$?
    [ "$rc" = 0 ] && break
    assert_eq "$rc" 137 "exit status of a copy killed at put $n"
    COFFER_PASSWORD=target-pw "$COFFER" -r "$T" check >check.out 2>&1 || fail "check after kill at put $n: $(cat check.out)"
    "$COFFER" -r A --json copy --to "$T" >rerun.json || fail "copy after kill at put $n"
    stored=$(summary '["bytes_stored"]' <rerun.json)
    if [ "$n" -ge 9 ]; then
        [ "$stored" -lt "$total" ] || fail "rerun after kill at put $n uploaded everything again ($stored >= $total)"
    fi
    COFFER_PASSWORD=target-pw "$COFFER" -r "$T" check --read-data >check.out 2>&1 || fail "check --read-data after rerun ($n)"
    assert_eq "$(nsnap "$T" target-pw)" 3 "snapshots after the rerun ($n)"
done

step "bad input"
assert_exit 2 "$COFFER" -r A copy
assert_exit 2 "$COFFER" -r A copy --to A
rc=0
COFFER_TO_PASSWORD=wrong "$COFFER" -r A copy --to B >out.txt 2>&1 || rc=$?
assert_eq "$rc" 12 "exit status with a wrong target password"
grep -q COFFER_TO_PASSWORD out.txt || fail "the error does not say which password: $(cat out.txt)"
grep -q wrong out.txt && ! grep -q 'target-pw\|source-pw' out.txt || fail "message: $(cat out.txt)"
assert_exit 10 "$COFFER" -r A copy --to "$WORK/nothing-here"
# the same repository under another name is refused by id
ln -s A A-link
rc=0
COFFER_TO_PASSWORD=source-pw "$COFFER" -r A copy --to A-link >out.txt 2>&1 || rc=$?
assert_eq "$rc" 1 "exit status copying a repository onto itself"
grep -q "same repository" out.txt || fail "message: $(cat out.txt)"
echo "copy tests passed"
