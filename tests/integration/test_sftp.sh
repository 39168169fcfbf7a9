#!/bin/bash
# test_sftp.sh -- the sftp storage driver against a real OpenSSH sshd on 127.0.0.1
# (tests/servers/sshd.sh; ports 47500-47549): the storage conformance suite; a full init,
# backup, restore (treecmp), check --read-data, forget --prune round trip; password login;
# host key policy (unknown refused with its fingerprint, accepted with
# sftp.accept-new-host-key=yes, changed always refused); a wrong key, a wrong password, a path
# without permission, a missing repository, an unreachable port; connections dropped in the
# middle of a backup (session processes killed, then the whole server restarted): the run
# reconnects or fails with a clear error, and check passes after a rerun.
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd python3 ssh-keygen ssh-keyscan
[ -x /usr/sbin/sshd ] || skip "/usr/sbin/sshd missing (scripts/install-deps.sh test installs it)"
cd "$WORK"

SSHD=$ROOT/tests/servers/sshd.sh
BUILD=$(cd "$(dirname "$COFFER")" && pwd)
PORT=47501
PW_PORT=47502
export COFFER_KDF="argon2id:ops=1,mem=8192"
export HOME=$WORK/home # no stray ~/.ssh keys or known_hosts of this machine
mkdir -p "$HOME"
unset COFFER_SFTP_KEY_FILE COFFER_SFTP_PASSWORD COFFER_SFTP_PASSWORD_FILE \
    COFFER_SFTP_KEY_PASSPHRASE COFFER_SFTP_KEY_PASSPHRASE_FILE COFFER_SFTP_KNOWN_HOSTS

# sshd_pid DIR: the listener's pid
sshd_pid() { cat "$1/sshd.pid.launcher"; }
start_sshd() { # DIR PORT [password]
    "$SSHD" start "$@" >"$1.out" || fail "sshd did not start: $(cat "$1.out")"
    track_pid "$(sshd_pid "$1")"
}
# children DIR: pids of the per-connection sshd processes
children() {
    local p f rest
    p=$(sshd_pid "$1")
    for f in /proc/[0-9]*/stat; do # field 4 is the parent pid (the name in () has no ')' here)
        read -r rest <"$f" 2>/dev/null || continue
        rest=${rest##*) }
        set -- $rest
        [ "${2:-}" = "$p" ] && echo "${f//[^0-9]/}"
    done
    return 0
}

S=$WORK/sshd
start_sshd "$S" $PORT
USER_NAME=$(sed -n 's/^user=//p' "$S.out")
if [ "$(id -u)" = 0 ]; then
    home=$(getent passwd "$USER_NAME" | cut -d: -f6)
    for d in "$home"/coffer-test-*; do # left by failed runs whose process is gone
        [ -d "$d" ] && ! kill -0 "${d##*-}" 2>/dev/null && rm -rf "$d"
    done
    BASE=$home/coffer-test-$$
    install -d -m 700 -o "$USER_NAME" "$BASE"
else
    BASE=$WORK/remote
    mkdir -p "$BASE"
fi
URL=sftp://$USER_NAME@127.0.0.1:$PORT$BASE
export COFFER_SFTP_KEY_FILE=$S/client_key
export COFFER_SFTP_KNOWN_HOSTS=$S/known_hosts
c() { "$COFFER" -r "$URL/repo" "$@"; }
# err_of CMD...: run, expect exit 1, print stderr
expect_fail() {
    local want=$1 rc=0
    shift
    "$@" >out.txt 2>err.txt || rc=$?
    [ "$rc" -eq "$want" ] || fail "expected exit $want from '$*', got $rc: $(cat err.txt)"
    [ "$(wc -l <err.txt)" -le 2 ] || fail "error is not one line: $(cat err.txt)"
    cat err.txt
}

step "storage conformance suite over SFTP"
COFFER_TEST_LOCATIONS=$URL/conformance "$BUILD/tests/unit/test_storage_conformance" \
    >conformance.log 2>&1 || { cat conformance.log; fail "conformance suite failed over sftp"; }
grep -q "external target: sftp://" conformance.log || fail "the sftp target did not run"
# the driver warns when a server lacks posix-rename (overwrites then are not atomic)
grep -q "posix-rename" conformance.log && fail "OpenSSH's posix-rename was not used: $(grep posix-rename conformance.log)"

step "init, backup, restore, check --read-data over SFTP"
python3 "$MKTREE" src --seed 11 >/dev/null
owner=()
[ "$(id -u)" = 0 ] || owner=(--no-owner)
c init >/dev/null
c --json backup src --tag first >b1.json
c restore latest --target out1 >/dev/null
python3 "$TREECMP" src out1/src --no-atime "${owner[@]}" || fail "restored tree differs"
c check --read-data >check.txt || fail "check failed: $(cat check.txt)"
[ -z "$(find "$BASE/repo" -name '.tmp-*' 2>/dev/null)" ] || fail "temp files left in the repo"

step "forget and prune over SFTP (prune also removes temp files older than 30 minutes)"
echo junk >"$BASE/repo/data/.tmp-0123456789abcdef"
echo junk >"$BASE/repo/.tmp-fedcba9876543210"
echo junk >"$BASE/repo/.tmp-young"
touch -d '2 hours ago' "$BASE/repo/data/.tmp-0123456789abcdef" "$BASE/repo/.tmp-fedcba9876543210"
echo "second" >src/new-file
c backup src >/dev/null
c backup src --tag third >/dev/null
# one connection: listings must not hold it while their callbacks call back into the storage
c -o sftp.connections=1 forget --keep-last 1 --prune >forget.txt || fail "forget --prune failed"
assert_eq "$(c --json snapshots | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1 \
    "snapshots after forget"
c check --read-data >/dev/null || fail "check after prune failed"
[ ! -e "$BASE/repo/data/.tmp-0123456789abcdef" ] && [ ! -e "$BASE/repo/.tmp-fedcba9876543210" ] ||
    fail "prune left old temp files"
[ -e "$BASE/repo/.tmp-young" ] || fail "prune removed a young temp file"
rm "$BASE/repo/.tmp-young"
c restore latest --target out2 >/dev/null
python3 "$TREECMP" src out2/src --no-atime "${owner[@]}" || fail "restore after prune differs"

if [ "$(id -u)" = 0 ]; then
    step "a path relative to the login directory (/~/...)"
    "$COFFER" -r "sftp://$USER_NAME@127.0.0.1:$PORT/~/${BASE##*/}/rel" init >/dev/null
    [ -f "$BASE/rel/config" ] || fail "/~/ did not resolve to the login directory"
    "$COFFER" -r "sftp://$USER_NAME@127.0.0.1:$PORT/~/${BASE##*/}/rel" snapshots >/dev/null
fi

step "missing repository: exit 10"
msg=$(expect_fail 10 "$COFFER" -r "$URL/nothing-here" snapshots)
echo "$msg" | grep -q "run coffer init" || fail "missing repo message: $msg"

step "unknown host key refused, with its fingerprint; accepted with the option"
fp=$(ssh-keygen -lf "$S/host_ed25519.pub" | awk '{print $2}')
: >"$WORK/empty_known_hosts"
msg=$(COFFER_SFTP_KNOWN_HOSTS=$WORK/empty_known_hosts expect_fail 1 c snapshots)
echo "$msg" | grep -q "host key of \[127.0.0.1\]:$PORT is unknown" || fail "unknown key message: $msg"
echo "$msg" | grep -qF "$fp" || fail "fingerprint $fp not shown: $msg"
echo "$msg" | grep -q "sftp.accept-new-host-key=yes" || fail "no hint how to accept: $msg"
COFFER_SFTP_KNOWN_HOSTS=$WORK/new_known_hosts c -o sftp.accept-new-host-key=yes snapshots >/dev/null ||
    fail "accept-new-host-key did not connect"
grep -q "^\[127.0.0.1\]:$PORT ssh-ed25519 " "$WORK/new_known_hosts" || fail "key not added"
COFFER_SFTP_KNOWN_HOSTS=$WORK/new_known_hosts c snapshots >/dev/null || fail "added key not used"
# the default file is ~/.ssh/known_hosts; a hashed entry (ssh-keygen -H) matches too
mkdir -p "$HOME/.ssh"
cp "$S/known_hosts" "$HOME/.ssh/known_hosts"
ssh-keygen -q -H -f "$HOME/.ssh/known_hosts" >/dev/null 2>&1
grep -q '^|1|' "$HOME/.ssh/known_hosts" || fail "ssh-keygen -H did not hash"
COFFER_SFTP_KNOWN_HOSTS= c snapshots >/dev/null || fail "hashed ~/.ssh/known_hosts not matched"

step "changed host key refused, even with accept-new"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/other_host"
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$WORK/other_host.pub")" >"$WORK/changed_known_hosts"
msg=$(COFFER_SFTP_KNOWN_HOSTS=$WORK/changed_known_hosts expect_fail 1 c -o \
    sftp.accept-new-host-key=yes snapshots)
echo "$msg" | grep -q "has CHANGED" || fail "changed key message: $msg"
echo "$msg" | grep -qF "$fp" || fail "new fingerprint not shown: $msg"
assert_eq "$(wc -l <"$WORK/changed_known_hosts")" 1 "known_hosts lines after a refused change"

step "wrong key, unreadable key, no credentials"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/wrong_key"
msg=$(COFFER_SFTP_KEY_FILE=$WORK/wrong_key expect_fail 1 c snapshots)
echo "$msg" | grep -q "authentication as $USER_NAME@127.0.0.1 failed: check the key file or password" ||
    fail "wrong key message: $msg"
msg=$(expect_fail 1 c -o sftp.key-file=$WORK/no-such-key snapshots)
echo "$msg" | grep -q "cannot read the key file $WORK/no-such-key" || fail "missing key: $msg"
msg=$(COFFER_SFTP_KEY_FILE= expect_fail 1 c snapshots)
echo "$msg" | grep -q "no credentials" || fail "no credentials message: $msg"
ssh-keygen -q -t ed25519 -N 'right-phrase' -f "$WORK/locked_key"
msg=$(COFFER_SFTP_KEY_FILE=$WORK/locked_key COFFER_SFTP_KEY_PASSPHRASE=wrong-phrase \
    expect_fail 1 c snapshots)
echo "$msg" | grep -q "passphrase" || fail "wrong passphrase message: $msg"
echo "$msg" | grep -q "wrong-phrase" && fail "the passphrase was printed: $msg"

step "permission denied on a path"
if [ "$(id -u)" = 0 ]; then
    install -d -m 755 -o root "$BASE/../coffer-denied-$$"
    denied=$(cd "$BASE/.." && pwd)/coffer-denied-$$
    msg=$(expect_fail 1 "$COFFER" -r "sftp://$USER_NAME@127.0.0.1:$PORT$denied/repo" init)
    rmdir "$denied"
else
    mkdir -m 500 "$BASE/ro"
    msg=$(expect_fail 1 "$COFFER" -r "$URL/ro/repo" init)
fi
echo "$msg" | grep -qi "permission denied" || fail "permission message: $msg"

step "unreachable port"
msg=$(expect_fail 1 "$COFFER" -r "sftp://$USER_NAME@127.0.0.1:47549$BASE/repo" snapshots)
echo "$msg" | grep -q "cannot connect to 127.0.0.1 port 47549" || fail "unreachable message: $msg"

if [ "$(id -u)" = 0 ]; then
    step "password login (second sshd with PasswordAuthentication yes)"
    P=$WORK/sshd-pw
    COFFER_SFTP_PASSWORD='pw-for-Test-1' start_sshd "$P" $PW_PORT password
    cp "$S/known_hosts" "$WORK/pw_known_hosts"
    sed "s/:$PORT /:$PW_PORT /" "$P/known_hosts" >>"$WORK/pw_known_hosts"
    PURL=sftp://$USER_NAME@127.0.0.1:$PW_PORT$BASE/repo
    echo 'pw-for-Test-1' >"$WORK/pwfile"
    COFFER_SFTP_KEY_FILE= COFFER_SFTP_KNOWN_HOSTS=$WORK/pw_known_hosts \
        COFFER_SFTP_PASSWORD_FILE=$WORK/pwfile "$COFFER" -r "$PURL" snapshots >pw.txt ||
        fail "password login failed"
    grep -q "1 snapshot" pw.txt || fail "password login listed: $(cat pw.txt)"
    COFFER_SFTP_KEY_FILE= COFFER_SFTP_KNOWN_HOSTS=$WORK/pw_known_hosts \
        COFFER_SFTP_PASSWORD='pw-for-Test-1' "$COFFER" -r "$PURL" restore latest \
        --target out-pw >/dev/null || fail "restore with a password failed"
    msg=$(COFFER_SFTP_KEY_FILE= COFFER_SFTP_KNOWN_HOSTS=$WORK/pw_known_hosts \
        COFFER_SFTP_PASSWORD='not-the-password' expect_fail 1 "$COFFER" -r "$PURL" snapshots)
    echo "$msg" | grep -q "authentication as $USER_NAME@127.0.0.1 failed" || fail "wrong pw: $msg"
    echo "$msg" | grep -q "not-the-password" && fail "the password was printed: $msg"
    "$SSHD" stop "$P"
fi

step "connections dropped in the middle of a backup"
mkdir big
for i in 1 2 3 4 5 6; do head -c $((24 << 20)) /dev/urandom >big/f$i; done
npacks=$(find "$BASE/repo/data" -type f | wc -l)
c -o sftp.connections=3 backup big >drop1.txt 2>drop1.err &
bpid=$!
track_pid $bpid
killed=0
for _ in $(seq 1 200); do # kill the session processes once a few packs have landed
    kids=$(children "$S")
    if [ -n "$kids" ] && [ "$(find "$BASE/repo/data" -type f | wc -l)" -ge $((npacks + 2)) ]; then
        kill $kids 2>/dev/null && killed=1
        break
    fi
    sleep 0.1
done
rc=0
wait $bpid || rc=$?
[ $killed = 1 ] || fail "found no session to kill"
echo "backup with dropped sessions: exit $rc: $(tail -2 drop1.err)"
# the operations on the dead sessions are retried on new ones: the backup completes
[ $rc -eq 0 ] || fail "backup did not survive dropped sessions (exit $rc): $(tail -5 drop1.err)"
grep -q "snapshot .* saved" drop1.txt || fail "no snapshot after the drop: $(cat drop1.txt)"
c backup big >drop2.txt || fail "rerun after the drop failed"
c check --read-data >/dev/null || fail "check after the drop failed"

step "the whole server restarted in the middle of a backup"
for i in 1 2 3 4 5 6; do head -c $((24 << 20)) /dev/urandom >big/f$i; done
COFFER_STORAGE_RETRY_BASE_MS=200 c backup big >drop3.txt 2>drop3.err &
bpid=$!
track_pid $bpid
for _ in $(seq 1 100); do
    [ -n "$(children "$S")" ] && break
    sleep 0.05
done
sleep 0.5
kids=$(children "$S")
"$SSHD" stop "$S"
kill $kids 2>/dev/null || true
sleep 0.3
start_sshd "$S" $PORT
rc=0
wait $bpid || rc=$?
echo "backup across a restart: exit $rc: $(tail -2 drop3.err)"
# reconnects, or (if the server stayed away longer than the retries) a clear error, exit 1
case $rc in
0) ;;
1) grep -q "sftp: " drop3.err || fail "unclear error after a restart: $(tail -5 drop3.err)" ;;
*) fail "backup across a restart crashed (exit $rc): $(tail -5 drop3.err)" ;;
esac
c backup big >/dev/null || fail "rerun after the restart failed"
c check --read-data >/dev/null || fail "check after the restart failed"
c restore latest --target out3 >/dev/null
cmp out3/big/f1 big/f1 || fail "restore after the restart differs"

rm -rf "$BASE"
echo "sftp ok"
