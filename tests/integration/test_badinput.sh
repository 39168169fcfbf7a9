#!/bin/bash
# test_badinput.sh -- bad input gets a clear error, a documented exit code, and loses
# nothing: unreadable and vanishing source files (exit 3, snapshot saved as partial and naming
# them), a repository of a newer format version, a damaged config, a missing password, a bad
# snapshot id, a non-zero dump command (snapshot marked failed, never used as parent).
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd python3 setpriv
cd "$WORK"
export COFFER_KDF="argon2id:ops=1,mem=8192"
REPO=$WORK/repo
c() { "$COFFER" -r "$REPO" "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

mkdir -p src/sub
echo one >src/a
echo two >src/sub/b
echo secret >src/locked
c init >/dev/null

step "an unreadable file: exit 3, snapshot saved as partial, the file named"
if [ "$(id -u)" = 0 ]; then
    # root reads everything: run coffer as nobody on a copy it owns
    chown -R 65534:65534 "$WORK"
    chmod 000 src/locked
    rc=0
    setpriv --reuid 65534 --regid 65534 --clear-groups env COFFER_PASSWORD="$COFFER_PASSWORD" \
        "$COFFER" -r "$REPO" --json backup src >partial.json 2>partial.err || rc=$?
else
    chmod 000 src/locked
    rc=0
    c --json backup src >partial.json 2>partial.err || rc=$?
fi
assert_eq "$rc" 3 "exit status with an unreadable file"
grep -q "locked" partial.err || fail "the unreadable file is not named: $(cat partial.err)"
assert_eq "$(jget 'd["status"]' <partial.json)" partial "snapshot status"
assert_eq "$(jget 'd["summary"]["errors"]' <partial.json)" 1 "errors recorded"
chmod 644 src/locked
chown -R 0:0 "$WORK" 2>/dev/null || true
c restore latest --target out >/dev/null || true
[ -f out/src/a ] && [ -f out/src/sub/b ] || fail "readable files of a partial snapshot do not restore"

step "a file that changes while it is read is reported (exit 3) or read consistently (exit 0)"
head -c 40000000 /dev/urandom >src/growing
( for i in $(seq 1 400); do echo "$i" >>src/growing; sleep 0.005; done ) &
writer=$!
track_pid $writer
rc=0
c --json backup src --threads 1 >changing.json 2>changing.err || rc=$?
kill $writer 2>/dev/null || true
case "$rc" in
0) ;;
3) assert_eq "$(jget 'd["status"]' <changing.json)" partial "status when a file changed"
   grep -q "changed while" changing.err || fail "change not reported: $(cat changing.err)" ;;
*) fail "unexpected exit $rc: $(cat changing.err)" ;;
esac

step "a newer repository format version: exit 1, says to upgrade, changes nothing"
cp -a "$REPO" newer
python3 - newer/config <<'PY'
import json, sys
p = sys.argv[1]; d = json.load(open(p)); d["version"] = 2
open(p, "w").write(json.dumps(d))
PY
rc=0
"$COFFER" -r newer snapshots >/dev/null 2>newer.err || rc=$?
assert_eq "$rc" 1 "exit status on a newer format"
grep -qi "upgrade" newer.err || fail "no upgrade hint: $(cat newer.err)"

step "a damaged config: clear error naming it"
cp -a "$REPO" badcfg
echo "garbage" >badcfg/config
rc=0
"$COFFER" -r badcfg snapshots >/dev/null 2>badcfg.err || rc=$?
assert_eq "$rc" 1 "exit status on a damaged config"
grep -q "config" badcfg.err || fail "config not named: $(cat badcfg.err)"

step "no password at all: a clear message, no prompt without a terminal"
rc=0
env -u COFFER_PASSWORD "$COFFER" -r "$REPO" snapshots </dev/null >/dev/null 2>nopw.err || rc=$?
[ "$rc" != 0 ] || fail "ran without a password"
grep -q "COFFER_PASSWORD" nopw.err || fail "no hint on how to give the password"

step "password from a file works; the password never shows in the process list"
printf '%s\n' "$COFFER_PASSWORD" >pwfile
env -u COFFER_PASSWORD COFFER_PASSWORD_FILE=pwfile "$COFFER" -r "$REPO" snapshots >/dev/null

step "a failing dump command: snapshot marked failed, exit 1, not used as parent"
rc=0
c --json backup --stdin-from-command --name dump.sql -- sh -c 'echo partial; exit 3' \
    >failed.json 2>failed.err || rc=$?
assert_eq "$rc" 1 "exit status when the command fails"
assert_eq "$(jget 'd["status"]' <failed.json)" failed "snapshot status"
assert_eq "$(jget 'd["exit_status"]' <failed.json)" 3 "recorded exit status"
grep -q "status 3" failed.err || fail "exit status not in the message: $(cat failed.err)"
c --json backup --stdin-from-command --name dump.sql -- sh -c 'echo good' >good.json
assert_eq "$(jget 'd["status"]' <good.json)" complete "status of a good dump"
c dump latest /dump.sql >dumped
assert_eq "$(cat dumped)" good "latest skips the failed snapshot"
rc=0
c backup --stdin-from-command --name x -- /nonexistent/program >/dev/null 2>noprog.err || rc=$?
assert_eq "$rc" 1 "exit status for a missing program"
grep -q "nonexistent" noprog.err || fail "missing program not named"

step "a dump program never sees the repository passwords"
c backup -q --stdin-from-command --name env.txt -- sh -c 'echo "n=$(env | grep -c "^COFFER_.*PASSWORD" || true)"'
assert_eq "$(c dump latest /env.txt)" "n=0" "password variables seen by the program"

step "an init whose config cannot be written leaves no key slot behind"
rc=0
COFFER_FAULT=fail-put=2 "$COFFER" -r "$WORK/half" init >half.err 2>&1 || rc=$?
assert_eq "$rc" 1 "exit status of an init whose config write fails"
[ -z "$(find "$WORK/half" -type f 2>/dev/null)" ] || fail "init left objects behind: $(find "$WORK/half" -type f)"
"$COFFER" -q -r "$WORK/half" init || fail "init after a failed init"
assert_eq "$(find "$WORK/half/keys" -type f | wc -l)" 1 "key slots after a failed then a good init"

step "the repository is still sound"
c check >/dev/null 2>&1 || fail "check after the bad-input tests"
echo "bad input ok"
