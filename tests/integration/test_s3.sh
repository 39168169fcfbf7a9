#!/bin/bash
# test_s3.sh -- the s3 driver against two real S3 servers on 127.0.0.1: Ceph radosgw (checks
# SigV4 and payload hashes, honours If-None-Match, enforces multipart rules) and s3rver (lenient,
# ignores If-None-Match: exercises the HEAD+PUT fallback). On each: the storage conformance
# suite, then init / backup / restore (compared with treecmp) / check --read-data / forget
# --prune / check, with multipart uploads forced by a 5 MiB threshold. Then bad input on
# radosgw (wrong secret, unknown key, missing bucket, unreachable host, plain http to a
# non-loopback host, missing credentials, an init whose writes all fail leaves nothing), and a
# fault test: backup and restore through tests/servers/faultproxy.py (dropped connections, 500,
# 503 SlowDown, stalls, truncated bodies) either complete or fail with a clear error, and check
# --read-data straight against radosgw passes afterwards. Secrets never appear in any output.
# Ports: radosgw 47480 (mon 47489), s3rver 47450, fault proxy 47460/47461.
. "$(dirname "$0")/lib.sh"

require_coffer
for b in radosgw ceph-mon ceph-osd node npm curl /usr/bin/python3; do
    command -v "$b" >/dev/null 2>&1 || skip "$b is not installed: run scripts/install-deps.sh test"
done
cd "$WORK"
export COFFER_KDF="argon2id:ops=1,mem=8192"
export COFFER_STORAGE_RETRY_BASE_MS=50
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL \
    AWS_ACCESS_KEY_ID_FILE AWS_SECRET_ACCESS_KEY_FILE AWS_DEFAULT_REGION AWS_REGION
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
SERVERS=$ROOT/tests/servers
CONFORMANCE=$(dirname "$COFFER")/tests/unit/test_storage_conformance
[ -x "$CONFORMANCE" ] || fail "conformance test binary not found at $CONFORMANCE"
RGW=127.0.0.1:47480
S3RVER=127.0.0.1:47450
MP=(-o s3.multipart-threshold=5MiB -o s3.part-size=5MiB)

sstep() { step "[${SECONDS}s] $*"; }
track_pid_file() { local p; p=$(cat "$1" 2>/dev/null) && track_pid "$p"; }

sstep "start radosgw and s3rver"
"$SERVERS/rgw.sh" start "$WORK/rgw" 47480 47489 >rgw-start.log 2>&1 &
rgw_starter=$!
"$SERVERS/s3rver.sh" start "$WORK/s3rver" 47450 || fail "s3rver did not start"
track_pid_file "$WORK/s3rver/s3rver.pid"
wait "$rgw_starter" || { cat rgw-start.log; fail "radosgw did not start"; }
for n in rgw osd mon; do track_pid_file "$WORK/rgw/pids/$n.pid"; done

out_log=$WORK/all-output.log
c() { "$COFFER" "$@" 2>&1 | tee -a "$out_log"; return "${PIPESTATUS[0]}"; }

# count_keys HOST BUCKET PREFIX: keys under PREFIX (curl's own SigV4; sorted, encoded query)
count_keys() {
    curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        "http://$1/$2?list-type=2&prefix=$(printf %s "$3" | sed 's|/|%2F|g')" |
        grep -o '<Key>' | wc -l
}

python3 "$MKTREE" src --seed 11 >/dev/null
head -c 12000000 /dev/urandom >src/big-random # > 5 MiB in one pack: a multipart upload
owner=()
[ "$(id -u)" = 0 ] || owner=(--no-owner)

round_trip() { # round_trip LABEL REPO CONDITIONAL_WRITES(if-none-match|emulated)
    local label=$1 repo=$2
    sstep "$label: init (creating the bucket), backup, restore, check"
    c -r "$repo" -o s3.create-bucket=true "${MP[@]}" init >/dev/null || fail "$label: init"
    sstep "$label: location check"
    "$COFFER" -r "$repo" "${MP[@]}" --json check --location >"loc-$label.json" 2>>"$out_log" ||
        fail "$label: check --location failed: $(cat "loc-$label.json")"
    python3 - "loc-$label.json" "$3" <<'PY' || fail "$label: location report: $(cat "loc-$label.json")"
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
want_cw = sys.argv[2]
steps = {s["step"]: s["result"] for s in d["steps"]}
assert d["ok"], d
assert d["server"]["conditional_writes"] == want_cw, d["server"]
assert steps["create-only write"] == ("ok" if want_cw == "if-none-match" else "warning"), steps
assert steps["large upload"] == "ok" and steps["ranged read"] == "ok" and steps["list"] == "ok"
PY
    c -r "$repo" "${MP[@]}" backup src >/dev/null || fail "$label: backup"
    c -r "$repo" "${MP[@]}" backup src >/dev/null || fail "$label: second backup"
    c -r "$repo" restore latest --target "out-$label" >/dev/null || fail "$label: restore"
    python3 "$TREECMP" src "out-$label/src" --no-atime "${owner[@]}" ||
        fail "$label: restored tree differs"
    c -r "$repo" check --read-data >/dev/null || fail "$label: check --read-data"
    sstep "$label: forget --prune, check, restore again"
    echo changed >>src/small-change
    c -r "$repo" backup src >/dev/null || fail "$label: third backup"
    c -r "$repo" forget --keep-last 1 --prune >/dev/null || fail "$label: forget --prune"
    assert_eq "$(c -r "$repo" --json snapshots | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1 \
        "$label: snapshots after forget"
    c -r "$repo" check --read-data >/dev/null || fail "$label: check after prune"
    rm -rf "out-$label"
    c -r "$repo" restore latest --target "out-$label" >/dev/null || fail "$label: restore after prune"
    python3 "$TREECMP" src "out-$label/src" --no-atime "${owner[@]}" ||
        fail "$label: restored tree differs after prune"
    rm -f src/small-change
}

# ---- radosgw ---------------------------------------------------------------------------------
export AWS_ACCESS_KEY_ID=CIKEY AWS_SECRET_ACCESS_KEY=CISECRET
round_trip rgw "s3://$RGW/rgw-bkt/repo" if-none-match
sstep "rgw: conditional writes detected as If-None-Match"
COFFER_DEBUG=1 "$COFFER" -r "s3://$RGW/rgw-bkt/probe" init >probe.log 2>&1 || fail "rgw: init probe"
grep -q "If-None-Match: \* honoured" probe.log || fail "rgw: If-None-Match not detected"
sstep "rgw: storage conformance suite"
COFFER_TEST_LOCATIONS="s3://$RGW/rgw-bkt/conformance" "$CONFORMANCE" >conf-rgw.log 2>&1 ||
    { cat conf-rgw.log; fail "rgw: conformance suite"; }
grep -q "external target" conf-rgw.log || fail "rgw: conformance did not run the S3 target"

# ---- s3rver, credentials from files ----------------------------------------------------------
sstep "s3rver: credentials from *_FILE variables"
printf 'S3RVER\n' >ak
printf 'S3RVER\n' >sk
export AWS_ACCESS_KEY_ID_FILE=$WORK/ak AWS_SECRET_ACCESS_KEY_FILE=$WORK/sk
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
round_trip s3rver "s3://$S3RVER/s3rver-bkt/repo" emulated
COFFER_DEBUG=1 "$COFFER" -r "s3://$S3RVER/s3rver-bkt/probe" init >probe2.log 2>&1 ||
    fail "s3rver: init probe"
grep -q "emulated with HEAD then PUT" probe2.log || fail "s3rver: fallback not detected"
sstep "s3rver: storage conformance suite"
COFFER_TEST_LOCATIONS="s3://$S3RVER/s3rver-bkt/conformance" "$CONFORMANCE" >conf-s3rver.log 2>&1 ||
    { cat conf-s3rver.log; fail "s3rver: conformance suite"; }
unset AWS_ACCESS_KEY_ID_FILE AWS_SECRET_ACCESS_KEY_FILE

# ---- bad input (radosgw) ---------------------------------------------------------------------
export AWS_ACCESS_KEY_ID=CIKEY AWS_SECRET_ACCESS_KEY=CISECRET
expect_err() { # expect_err CODE PATTERN ARGS...
    local code=$1 pat=$2 rc=0
    shift 2
    "$COFFER" "$@" >err.out 2>&1 || rc=$?
    cat err.out >>"$out_log"
    [ "$rc" = "$code" ] || { cat err.out; fail "expected exit $code from coffer $*, got $rc"; }
    grep -q -- "$pat" err.out || { cat err.out; fail "no '$pat' in the error of coffer $*"; }
    [ "$(grep -c 'coffer: error:' err.out)" = 1 ] || { cat err.out; fail "not one error line"; }
}
sstep "bad input: wrong secret, unknown key, missing bucket, unreachable, http, no credentials"
AWS_SECRET_ACCESS_KEY=wrong-secret expect_err 1 "check the secret access key" \
    -r "s3://$RGW/rgw-bkt/bad" init
AWS_ACCESS_KEY_ID=NOSUCHKEY expect_err 1 "does not know the access key id" \
    -r "s3://$RGW/rgw-bkt/bad" init
assert_eq "$(count_keys "$RGW" rgw-bkt bad/)" 0 "objects under bad/ after failed inits"
expect_err 10 "bucket 'no-such-bkt' does not exist" -r "s3://$RGW/no-such-bkt/repo" snapshots
expect_err 10 "bucket 'no-such-bkt' does not exist" -r "s3://$RGW/no-such-bkt/repo" init
expect_err 1 "cannot connect to the S3 endpoint" -r "s3://127.0.0.1:47499/bkt/repo" snapshots
expect_err 1 "refusing plain http" -o s3.scheme=http -r "s3://192.0.2.1:9000/bkt/repo" init
expect_err 10 "no repository" -r "s3://$RGW/rgw-bkt/empty-prefix" snapshots
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    expect_err 1 "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" -r "s3://$RGW/rgw-bkt/x" init)
expect_err 1 "unknown storage option 's3.regoin'" -o s3.regoin=x -r "s3://$RGW/rgw-bkt/x" init

sstep "an init whose writes all fail leaves nothing behind"
/usr/bin/python3 "$SERVERS/faultproxy.py" 47461 "$RGW" --err500 1 --after 1 >proxy1.log 2>&1 &
p1=$!
track_pid "$p1"
for _ in $(seq 50); do grep -q ready proxy1.log && break; sleep 0.1; done
expect_err 1 "gave up after" -r "s3://127.0.0.1:47461/rgw-bkt/half" init
kill "$p1"
assert_eq "$(count_keys "$RGW" rgw-bkt half/)" 0 "objects under half/ after a failed init"

# ---- faults between coffer and radosgw -------------------------------------------------------
sstep "fault proxy: backup and restore complete or fail clearly; check passes afterwards"
/usr/bin/python3 "$SERVERS/faultproxy.py" 47460 "$RGW" --drop 0.05 --err500 0.05 --slowdown 0.04 \
    --stall 0.02 --stall-seconds 3 --truncate 0.05 --seed 7 --stats "$WORK/proxy.stats" \
    >proxy.log 2>&1 &
p2=$!
track_pid "$p2"
for _ in $(seq 50); do grep -q ready proxy.log && break; sleep 0.1; done
FR="s3://127.0.0.1:47460/rgw-bkt/faulty"
FO=(-o s3.timeout=2 "${MP[@]}")
c -r "s3://$RGW/rgw-bkt/faulty" init >/dev/null || fail "fault: init (direct)"
for i in 1 2; do
    echo "run $i" >>src/small-change
    rc=0
    "$COFFER" -r "$FR" "${FO[@]}" backup src >fb.out 2>&1 || rc=$?
    cat fb.out >>"$out_log"
    if [ $rc -ne 0 ]; then
        [ $rc = 1 ] && grep -q "coffer: error:" fb.out || { cat fb.out; fail "fault: backup exit $rc"; }
        echo "backup $i failed cleanly: $(grep 'coffer: error:' fb.out)"
    fi
    rc=0
    rm -rf out-fault
    "$COFFER" -r "$FR" "${FO[@]}" restore latest --target out-fault >fr.out 2>&1 || rc=$?
    cat fr.out >>"$out_log"
    if [ $rc -eq 0 ]; then
        [ -f out-fault/src/big-random ] && cmp -s out-fault/src/big-random src/big-random ||
            fail "fault: restore $i reported success but big-random differs"
    else
        [ $rc = 1 ] && grep -q "coffer: error:" fr.out || { cat fr.out; fail "fault: restore exit $rc"; }
        echo "restore $i failed cleanly: $(grep 'coffer: error:' fr.out)"
    fi
done
kill "$p2"
cat proxy.stats
faults=$(awk '$1 ~ /drop|err500|slowdown|stall|truncate/ {s += $2} END {print s}' proxy.stats)
[ "$faults" -gt 5 ] || fail "the fault proxy injected only $faults faults"
c -r "s3://$RGW/rgw-bkt/faulty" check --read-data >/dev/null || fail "fault: check after faults"
rm -f src/small-change

sstep "no secret in any output"
if grep -q "CISECRET\|wrong-secret" "$out_log" probe.log conf-rgw.log; then
    fail "a secret appeared in coffer's output"
fi
"$SERVERS/rgw.sh" stop "$WORK/rgw"
"$SERVERS/s3rver.sh" stop "$WORK/s3rver"
echo "PASS"
