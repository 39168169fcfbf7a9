#!/bin/bash
# test_svc_redis.sh -- `coffer backup/restore --redis` against real Redis servers on 127.0.0.1
# (tests/servers/redis.sh, ports 43330-43332): strings, hashes, lists and keys with TTLs behind
# a password; two days of backups (RDB through `redis-cli --rdb -`); each snapshot restored as
# dump.rdb into a fresh data directory, a server started on it, and compared with DEBUG DIGEST
# and the TTLs; failures (wrong password, server down, redis-cli missing, a bad target, a
# snapshot of another kind) give clear errors and no snapshot.
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd redis-server redis-cli python3
SERVERS=$ROOT/tests/servers
cd "$WORK"
export COFFER_KDF="argon2id:ops=1,mem=8192"
export REDIS_TEST_PASSWORD=redispw
REPO=$WORK/repo
P1=43330 P2=43331
c() { "$COFFER" -r "$REPO" "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
nsnaps() { c --json snapshots | jget 'len(d)'; }
r() { local p=$1; shift; REDISCLI_AUTH=redispw redis-cli --no-auth-warning -p "$p" "$@"; }

step "start the server and load keys with TTLs"
pid=$("$SERVERS/redis.sh" start "$WORK/r1" $P1 | tail -1)
track_pid "$pid"
r $P1 debug populate 20000 key 100 >/dev/null
for i in $(seq 1 50); do
    r $P1 set "ttl:$i" "value $i zażółć ✓" EX $((3600 + i)) >/dev/null
    r $P1 hset "hash:$i" f1 "$i" f2 "x$i" >/dev/null
    r $P1 rpush "list:$i" a b c "$i" >/dev/null
done
r $P1 set "bin" "$(printf 'a\tb\001c')" >/dev/null
dig1=$(r $P1 debug digest)
n1=$(r $P1 dbsize)

step "day 1 backup"
c init >/dev/null
REDISCLI_AUTH=redispw c --json backup --redis --server 127.0.0.1 --port $P1 >day1.json
assert_eq "$(jget '(d["kind"], d["server"], d["database"], d["status"], d["paths"][0])' <day1.json)" \
    "('redis', '127.0.0.1:$P1', 'all', 'complete', '/redis/127.0.0.1_$P1/dump.rdb')" "day 1 snapshot"
s1=$(jget 'd["id"]' <day1.json)
c --json snapshots | grep -q redispw && fail "the password is recorded in a snapshot"

step "change the keys, day 2 backup (password from REDISCLI_AUTH_FILE)"
r $P1 del key:1 key:2 key:3 >/dev/null
r $P1 set newkey "day 2" EX 7200 >/dev/null
r $P1 hset "hash:1" f3 new >/dev/null
dig2=$(r $P1 debug digest)
n2=$(r $P1 dbsize)
[ "$dig1" != "$dig2" ] || fail "the data did not change"
printf 'redispw\n' >pw.txt
REDISCLI_AUTH_FILE=$WORK/pw.txt c --json backup --redis --server 127.0.0.1 --port $P1 >day2.json
s2=$(jget 'd["id"]' <day2.json)
assert_eq "$(jget 'd["parent"]' <day2.json)" "$s1" "parent of day 2"

step "restore each snapshot into a fresh data directory and start a server on it"
restore_check() { # SNAP DIGEST DBSIZE
    rm -rf "$WORK/r2"
    mkdir -p "$WORK/r2"
    c restore "$1" --redis --target "$WORK/r2" >rr.txt
    grep -q "into $WORK/r2/dump.rdb" rr.txt || fail "restore output: $(cat rr.txt)"
    [ -z "$(ls -A "$WORK/r2" | grep -v '^dump.rdb$')" ] || fail "temporary files left: $(ls -A "$WORK/r2")"
    pid2=$("$SERVERS/redis.sh" start "$WORK/r2" $P2 | tail -1)
    track_pid "$pid2"
    assert_eq "$(r $P2 dbsize)" "$3" "keys after restoring $1"
    assert_eq "$(r $P2 debug digest)" "$2" "digest after restoring $1"
    ttl=$(r $P2 ttl ttl:7)
    [ "$ttl" -gt 3000 ] || fail "TTL lost: $ttl"
    "$SERVERS/redis.sh" stop "$WORK/r2"
}
restore_check "${s1:0:8}" "$dig1" "$n1"
restore_check latest "$dig2" "$n2"

n0=$(nsnaps)
step "wrong password, server down, redis-cli missing: clear errors, no snapshot"
rc=0
REDISCLI_AUTH=wrong "$COFFER" -r "$REPO" backup --redis --server 127.0.0.1 --port $P1 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with a wrong password"
grep -q "redis: the server at 127.0.0.1:$P1 answered .*\(NOAUTH\|WRONGPASS\).*check the password" err.txt \
    || fail "message: $(cat err.txt)"
rc=0
c backup --redis --server 127.0.0.1 --port 43339 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with the server down"
grep -q "redis: .*127.0.0.1:43339" err.txt || fail "message: $(cat err.txt)"
grep -qi "refused" err.txt || fail "message: $(cat err.txt)"
mkdir emptybin
rc=0
PATH=$WORK/emptybin "$COFFER" -r "$REPO" backup --redis --port $P1 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code without redis-cli"
grep -q "redis: redis-cli not found in PATH: install redis-tools" err.txt || fail "message: $(cat err.txt)"
assert_eq "$(nsnaps)" "$n0" "snapshots after the failed attempts"

step "bad restore targets"
rc=0
c restore latest --redis --target "$WORK/nowhere" 2>err.txt || rc=$?
assert_eq "$rc" 1 "restore into a missing directory"
grep -q "is not a directory" err.txt || fail "message: $(cat err.txt)"
echo data >f.txt
c backup --stdin-from-command --name f.txt -- cat f.txt >/dev/null
rc=0
c restore "$(c --json snapshots | jget 'd[-1]["id"]' | cut -c1-8)" --redis --target "$WORK" 2>err.txt || rc=$?
assert_eq "$rc" 1 "restore of a command snapshot as redis"
grep -q "is a command snapshot, not redis" err.txt || fail "message: $(cat err.txt)"
assert_exit 2 "$COFFER" -r "$REPO" restore latest --redis
assert_exit 2 "$COFFER" -r "$REPO" backup --redis --database x

"$SERVERS/redis.sh" stop "$WORK/r1"
echo "svc redis ok"
