#!/bin/bash
# test_crash.sh -- crash safety: the fault-injecting storage wrapper (COFFER_FAULT) fails or
# kills the backup at each write step in turn; afterwards `check` passes, the next backup
# completes, and what had landed is not uploaded again. Also a full disk (ENOSPC) during a
# pack write, and SIGINT during a backup (exit 130, no snapshot, progress kept).
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd python3
cd "$WORK"
export COFFER_KDF="argon2id:ops=1,mem=8192"
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

mkdir -p src/d
for i in 1 2 3 4 5 6; do head -c 700000 /dev/urandom >src/d/f$i; done
echo small >src/small
total=$(du -sb src | cut -f1)

nsnap() { "$COFFER" -r "$1" --json snapshots | jget 'len(d)'; }

step "kill the process at each put in turn (packs are 1 MiB, so there are many puts)"
n=0
while :; do
    n=$((n + 1))
    [ "$n" -le 50 ] || fail "the backup never completed under kill-at-put"
    R=$WORK/r$n
    "$COFFER" -r "$R" init --pack-size 1 >/dev/null
    rc=0
    COFFER_FAULT="kill-at-put=$n" "$COFFER" -q -r "$R" backup src >/dev/null 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
        # every put happened before the nth: the write sequence is exhausted
        [ "$n" -ge 6 ] || fail "only $((n - 1)) puts in a backup of several packs?"
        break
    fi
    assert_eq "$rc" 137 "exit status of a backup killed at put $n"
    "$COFFER" -r "$R" check >check.out 2>&1 || fail "check after kill at put $n: $(cat check.out)"
    assert_eq "$(nsnap "$R")" 0 "snapshots after a kill"
    "$COFFER" -r "$R" --json backup src >b.json || fail "backup after kill at put $n"
    added=$(jget 'd["summary"]["bytes_added"]' <b.json)
    if [ "$n" -ge 4 ]; then
        # at least two whole packs had landed: they must be reused, not uploaded again
        [ "$added" -lt "$total" ] || fail "rerun after kill at put $n uploaded everything again"
    fi
    "$COFFER" -r "$R" check --read-data >check.out 2>&1 || fail "check --read-data after rerun ($n)"
    "$COFFER" -r "$R" restore latest --target "out$n" >/dev/null
    diff -r src "out$n/src" || fail "restore after kill at put $n differs"
done

step "a failing put (I/O error, then a full disk) fails the backup cleanly"
for spec in fail-put=3 enospc-put=2 crash-after-put=2; do
    R=$WORK/f-${spec%%=*}
    "$COFFER" -r "$R" init --pack-size 1 >/dev/null
    rc=0
    COFFER_FAULT="$spec" "$COFFER" -q -r "$R" backup src >err.txt 2>&1 || rc=$?
    assert_eq "$rc" 1 "exit status with $spec"
    grep -q "error" err.txt || fail "no error message with $spec"
    "$COFFER" -r "$R" check >/dev/null 2>&1 || fail "check after $spec"
    "$COFFER" -q -r "$R" backup src >/dev/null || fail "backup after $spec"
    "$COFFER" -r "$R" check --read-data >/dev/null 2>&1 || fail "check --read-data after $spec"
done
grep -qi "full\|space" <(COFFER_FAULT=enospc-put=1 "$COFFER" -r "$WORK/f-enospc-put" backup src 2>&1) \
    || fail "a full disk is not named in the error"

step "SIGINT during a backup: exit 130, no snapshot, next run completes"
R=$WORK/sigint
"$COFFER" -r "$R" init --pack-size 1 >/dev/null
mkdir -p big
for i in $(seq 1 60); do head -c 2000000 /dev/urandom >big/f$i; done
"$COFFER" -q -r "$R" backup --threads 1 big >/dev/null 2>&1 &
pid=$!
sleep 0.2
kill -INT $pid 2>/dev/null || true
rc=0
wait $pid || rc=$?
if [ "$rc" = 0 ]; then
    echo "backup finished before SIGINT arrived; not a failure"
else
    assert_eq "$rc" 130 "exit status after SIGINT"
    assert_eq "$(nsnap "$R")" 0 "snapshots after SIGINT"
fi
"$COFFER" -r "$R" check >/dev/null 2>&1 || fail "check after SIGINT"
"$COFFER" -q -r "$R" backup big >/dev/null || fail "backup after SIGINT"
"$COFFER" -r "$R" check --read-data >/dev/null 2>&1 || fail "check --read-data after SIGINT"
echo "crash ok"
