#!/bin/bash
# test_svc_postgres.sh -- `coffer backup/restore --postgres` against real PostgreSQL 15 servers
# on 127.0.0.1 (tests/servers/postgres.sh, ports 43310-43311): pgbench data plus a table with
# bytea blobs, unicode and NULLs; two days of backups (one snapshot per database, globals,
# deduplication, parent); each snapshot restored (under new names, with --jobs, --clean, plain
# format, into a fresh TLS server with its roles, sslmode verify-full) and compared by md5 over
# ordered rows; failures (wrong password, server down, unknown database, pg_dump missing or
# older than the server, a certificate from another CA, pg_dump killed, SIGTERM, repository full)
# each give a clear error and a snapshot that is failed or absent, and retention and
# `restore latest` never take a failed snapshot for a good one.
. "$(dirname "$0")/lib.sh"

require_coffer
PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/initdb" ] || skip "PostgreSQL 15 server not installed (scripts/install-deps.sh test)"
need_cmd psql pg_dump pg_restore pgbench setpriv python3 openssl
[ "$(id -u)" = 0 ] || skip "needs root to run the server as user postgres"
SERVERS=$ROOT/tests/servers
cd "$WORK"
export COFFER_KDF="argon2id:ops=1,mem=8192"
export PGPASSWORD=pgpass PGUSER=postgres PGHOST=127.0.0.1
REPO=$WORK/repo
P1=43310 P2=43311
c() { "$COFFER" -r "$REPO" "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
nsnaps() { c --json snapshots | jget 'len(d)'; }
q() { psql -X -q -At -p "$1" -d "$2" -c "$3"; }
# content digest of a database: ordered rows of every table we load
digest() {
    q "$1" "$2" "select md5(string_agg(aid||':'||bid||':'||abalance||':'||filler, ',' order by aid)) from pgbench_accounts" \
        | tr '\n' ' '
    q "$1" "$2" "select md5(string_agg(tid||':'||tbalance, ',' order by tid)) from pgbench_tellers" | tr '\n' ' '
    q "$1" "$2" "select count(*), md5(string_agg(coalesce(md5(data),'N')||coalesce(note,'N')||coalesce(n::text,'N'), ',' order by id)) from blobs"
}

step "start the server"
pid=$("$SERVERS/postgres.sh" start "$WORK/pg1" $P1 | tail -1)
track_pid "$pid"

step "load data: pgbench scale 5, blobs with unicode and NULLs"
createdb -p $P1 app
createdb -p $P1 other
pgbench -p $P1 -i -s 5 -q app >/dev/null 2>&1
q $P1 app "create table blobs(id int primary key, data bytea, note text, n numeric);
  insert into blobs select i, case when i % 7 = 0 then null else decode(md5(i::text) || repeat('00ff', i % 300), 'hex') end,
    case when i % 5 = 0 then null else 'zażółć gęślą jaźń ' || i || ' 日本語 ✓' end,
    case when i % 3 = 0 then null else i * 1.5 end from generate_series(1, 3000) i;
  create role appuser login password 'apppw';"
q $P1 other "create table t(x int); insert into t select generate_series(1,100)"
d1=$(digest $P1 app)

step "day 1: back up app and the globals"
c init >/dev/null
c --json backup --postgres --server 127.0.0.1 --port $P1 --user postgres --database app --globals \
    --tag nightly >day1.json
assert_eq "$(wc -l <day1.json)" 2 "snapshots written on day 1"
c --json snapshots >snaps.json
jget '[(s["kind"], s["server"], s["database"], s["status"]) for s in d]' <snaps.json >kinds.txt
grep -q "('postgres', '127.0.0.1:$P1', 'app', 'complete')" kinds.txt || fail "app snapshot: $(cat kinds.txt)"
grep -q "('postgres', '127.0.0.1:$P1', '_globals', 'complete')" kinds.txt || fail "globals snapshot"
jget '[s["paths"] for s in d]' <snaps.json | grep -q "/postgres/127.0.0.1_$P1/app.dump" \
    || fail "stable dump path missing"
jget '[s["tags"] for s in d]' <snaps.json | grep -q "nightly" || fail "user tag missing"
s1=$(jget '[s["id"] for s in d if s["database"] == "app"][0]' <snaps.json)
c ls "$s1" | grep -q "/postgres/127.0.0.1_$P1/app.dump" || fail "ls does not show the dump"

step "change the data, day 2 backup deduplicates against day 1 and names it as parent"
pgbench -p $P1 -c 1 -t 10 app >/dev/null 2>&1
q $P1 app "update blobs set note = 'changed ✓' where id % 100 = 1; delete from blobs where id > 2900"
d2=$(digest $P1 app)
[ "$d1" != "$d2" ] || fail "the data did not change"
c --json backup --postgres --server 127.0.0.1 --port $P1 --user postgres --all-databases \
    --exclude-database other --exclude-database postgres >day2.json
assert_eq "$(jget 'd["database"]' <day2.json)" app "--all-databases minus --exclude-database"
s2=$(jget 'd["id"]' <day2.json)
assert_eq "$(jget 'd["parent"]' <day2.json)" "$s1" "parent of day 2"
read_b=$(jget 'd["summary"]["bytes_read"]' <day2.json)
added=$(jget 'd["summary"]["bytes_added"]' <day2.json)
[ "$added" -lt $((read_b / 2)) ] || fail "day 2 added $added of $read_b bytes: no deduplication"

step "restore each snapshot under a new name and compare"
c restore "${s1:0:8}" --postgres --server 127.0.0.1 --port $P1 --user postgres --as app_day1 >r1.txt
grep -q "into app_day1" r1.txt || fail "restore output: $(cat r1.txt)"
assert_eq "$(digest $P1 app_day1)" "$d1" "day 1 restored"
c restore latest --postgres --database app --server 127.0.0.1 --port $P1 --user postgres \
    --as app_day2 --jobs 2 >/dev/null
assert_eq "$(digest $P1 app_day2)" "$d2" "day 2 restored with --jobs 2"
step "--clean restores over an existing database"
q $P1 app_day2 "delete from blobs; insert into pgbench_tellers values (9999, 1, 0, null)"
c restore "${s2:0:8}" --postgres --server 127.0.0.1 --port $P1 --user postgres --as app_day2 \
    --clean >/dev/null
assert_eq "$(digest $P1 app_day2)" "$d2" "day 2 restored with --clean"

step "plain format"
c --json backup --postgres --server 127.0.0.1 --port $P1 --user postgres --database app \
    --format plain >plain.json
jget 'd["paths"][0]' <plain.json | grep -q 'app.sql$' || fail "plain dump path"
c restore "$(jget 'd["id"]' <plain.json | cut -c1-8)" --postgres --server 127.0.0.1 --port $P1 \
    --user postgres --as app_plain >/dev/null
assert_eq "$(digest $P1 app_plain)" "$d2" "plain dump restored"

step "a fresh server with TLS: roles from _globals, then the database (created by the restore)"
mkdir tls
(
    cd tls
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
        -out ca.crt -days 2 -subj /CN=coffer-test-ca
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
        -out server.csr -subj /CN=127.0.0.1
    printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
        -days 2 -extfile san.ext
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout other.key \
        -out other-ca.crt -days 2 -subj /CN=another-ca
) >/dev/null 2>&1 || fail "cannot make test certificates"
pid2=$(PG_TEST_SSL_DIR=$WORK/tls "$SERVERS/postgres.sh" start "$WORK/pg2" $P2 | tail -1)
track_pid "$pid2"
tlsopts=(--server 127.0.0.1 --port $P2 --user postgres --sslmode verify-full --sslrootcert "$WORK/tls/ca.crt")
c restore latest --postgres --database _globals "${tlsopts[@]}" >/dev/null
assert_eq "$(q $P2 postgres "select count(*) from pg_roles where rolname = 'appuser'")" 1 "role restored"
c restore latest --postgres --database app "${tlsopts[@]}" >/dev/null
assert_eq "$(digest $P2 app)" "$d2" "app restored into the fresh server over TLS"
c --json backup --postgres "${tlsopts[@]}" --database app >tls.json
assert_eq "$(jget 'd["status"]' <tls.json)" complete "backup over TLS (verify-full)"
rc=0
c backup --postgres --server 127.0.0.1 --port $P2 --user postgres --sslmode verify-full \
    --sslrootcert "$WORK/tls/other-ca.crt" --database app 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with a certificate from another CA"
grep -q "postgres: connecting to the server at 127.0.0.1:$P2.*certificate verify failed" err.txt \
    || fail "message: $(cat err.txt)"
assert_eq "$(PGPASSWORD=apppw psql -X -At -p $P2 -U appuser -d app -c 'select 1')" 1 "role password restored"
"$SERVERS/postgres.sh" stop "$WORK/pg2"

n0=$(nsnaps)
step "wrong password: clear error, no snapshot"
rc=0
PGPASSWORD=wrong "$COFFER" -r "$REPO" backup --postgres --server 127.0.0.1 --port $P1 --user postgres \
    --database app 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with a wrong password"
grep -q "postgres: .*password authentication failed" err.txt || fail "message: $(cat err.txt)"
grep -q wrong err.txt && fail "the password appears in the message"
step "password from PGPASSWORD_FILE works"
printf 'pgpass\n' >pw.txt
env -u PGPASSWORD PGPASSWORD_FILE=$WORK/pw.txt "$COFFER" -r "$REPO" -q backup --postgres \
    --server 127.0.0.1 --port $P1 --user postgres --database other
n0=$((n0 + 1))

step "server down, unknown database, pg_dump missing: clear errors, no snapshot"
rc=0
c backup --postgres --server 127.0.0.1 --port 43319 --user postgres --database app 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with the server down"
grep -q "postgres: connecting to the server at 127.0.0.1:43319.*refused" err.txt || fail "message: $(cat err.txt)"
rc=0
c backup --postgres --server 127.0.0.1 --port $P1 --user postgres --database nosuchdb 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with an unknown database"
grep -q 'database "nosuchdb" does not exist on 127.0.0.1:'$P1 err.txt || fail "message: $(cat err.txt)"
mkdir emptybin
rc=0
PATH=$WORK/emptybin "$COFFER" -r "$REPO" backup --postgres --server 127.0.0.1 --port $P1 \
    --database app 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code without pg_dump"
grep -q "postgres: pg_dump not found in PATH: install postgresql-client" err.txt || fail "message: $(cat err.txt)"
step "a server newer than pg_dump: refused before dumping"
# a pg_dump that reports major version 14 (it stands for an old postgresql-client; the server
# is the real PostgreSQL 15)
mkdir oldbin
printf '#!/bin/sh\n[ "$1" = --version ] && { echo "pg_dump (PostgreSQL) 14.10"; exit 0; }\nexec %s "$@"\n' \
    "$(command -v pg_dump)" >oldbin/pg_dump
chmod +x oldbin/pg_dump
rc=0
PATH=$WORK/oldbin:$PATH "$COFFER" -r "$REPO" backup --postgres --server 127.0.0.1 --port $P1 \
    --user postgres --database app 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with pg_dump older than the server"
grep -q "postgres: pg_dump 14 is older than the server at 127.0.0.1:$P1 (PostgreSQL 15).*install postgresql-client-15" \
    err.txt || fail "message: $(cat err.txt)"
assert_eq "$(nsnaps)" "$n0" "snapshots after the failed attempts"

step "pg_dump killed midway: the snapshot is marked failed"
mkfifo lockfifo
psql -X -q -p $P1 -d app <lockfifo >/dev/null 2>&1 &
lockpid=$!
track_pid "$lockpid"
exec 7>lockfifo
echo "begin; lock table blobs in access exclusive mode;" >&7
for i in $(seq 100); do
    [ "$(q $P1 app "select count(*) from pg_locks where relation = 'blobs'::regclass and mode = 'AccessExclusiveLock' and granted")" = 1 ] && break
    sleep 0.1
done
rc=0
"$COFFER" -r "$REPO" backup --postgres --server 127.0.0.1 --port $P1 --user postgres \
    --database app 2>err.txt &
bpid=$!
dump=
for i in $(seq 100); do
    for cp in $(pgrep -P "$bpid" 2>/dev/null || true) ; do
        for gp in $cp $(pgrep -P "$cp" 2>/dev/null || true); do
            # the dump itself (coffer also runs `pg_dump --version` first)
            tr '\0' ' ' </proc/$gp/cmdline 2>/dev/null | grep -q 'pg_dump.*--format=custom' && dump=$gp
        done
    done
    [ -n "$dump" ] && break
    sleep 0.1
done
[ -n "$dump" ] || fail "pg_dump did not start"
sleep 0.5
kill -9 "$dump"
wait "$bpid" || rc=$?
echo "rollback;" >&7
exec 7>&-
wait "$lockpid" || true
assert_eq "$rc" 1 "exit code when pg_dump is killed"
grep -q "postgres: dump of app on 127.0.0.1:$P1 was killed by signal 9.*marked failed" err.txt \
    || fail "message: $(cat err.txt)"
c --json snapshots >snaps.json
assert_eq "$(jget '[s["status"] for s in d if s["database"] == "app"][-1]' <snaps.json)" failed \
    "status of the killed dump"
failed_id=$(jget '[s["id"] for s in d if s["database"] == "app"][-1]' <snaps.json)

step "SIGTERM to coffer while pg_dump waits for a lock: exit 130, the dump ends, no snapshot"
n0=$(nsnaps)
mkfifo lockfifo2
psql -X -q -p $P1 -d app <lockfifo2 >/dev/null 2>&1 &
lockpid=$!
track_pid "$lockpid"
exec 7>lockfifo2
echo "begin; lock table blobs in access exclusive mode;" >&7
for i in $(seq 100); do
    [ "$(q $P1 app "select count(*) from pg_locks where relation = 'blobs'::regclass and mode = 'AccessExclusiveLock' and granted")" = 1 ] && break
    sleep 0.1
done
"$COFFER" -r "$REPO" backup --postgres --server 127.0.0.1 --port $P1 --user postgres \
    --database app 2>err.txt &
bpid=$!
for i in $(seq 100); do
    [ "$(q $P1 app "select count(*) from pg_locks where relation = 'blobs'::regclass and not granted")" -ge 1 ] && break
    sleep 0.1
done
kill -TERM "$bpid"
rc=0
wait "$bpid" || rc=$?
echo "rollback;" >&7
exec 7>&-
wait "$lockpid" || true
assert_eq "$rc" 130 "exit code after SIGTERM"
grep -q "postgres: dump of app interrupted: no snapshot was written" err.txt || fail "message: $(cat err.txt)"
assert_eq "$(nsnaps)" "$n0" "snapshots after the interrupted backup"

step "a failed snapshot is not restored by default, not 'latest', not a parent"
rc=0
c restore "${failed_id:0:8}" --postgres --server 127.0.0.1 --port $P1 --as x 2>err.txt || rc=$?
assert_eq "$rc" 1 "restoring a failed snapshot"
grep -q "status failed" err.txt || fail "message: $(cat err.txt)"
c restore latest --postgres --database app --tag server=127.0.0.1:$P1 --server 127.0.0.1 \
    --port $P1 --user postgres --as app_latest >r.txt
grep -q "snapshot $(jget 'd["id"]' <plain.json | cut -c1-8)" r.txt \
    || grep -q "snapshot ${s2:0:8}" r.txt || fail "latest picked: $(cat r.txt)"
c --json backup --postgres --server 127.0.0.1 --port $P1 --user postgres --database app >day3.json
[ "$(jget 'd["parent"]' <day3.json)" != "$failed_id" ] || fail "the failed snapshot became a parent"

step "retention never counts the failed snapshot"
c --json backup --postgres --server 127.0.0.1 --port $P1 --user postgres --database app >/dev/null
# make the newest app snapshot a failed one again (pg_dump fails: a bad extra argument)
rc=0
c backup --postgres --server 127.0.0.1 --port $P1 --user postgres --database app \
    --extra-arg=--no-such-option 2>/dev/null || rc=$?
assert_eq "$rc" 1 "exit code of a failing pg_dump"
c forget --keep-last 1 >/dev/null
c --json snapshots >snaps.json
appst=$(jget '[s["status"] for s in d if s["paths"][0] == "/postgres/127.0.0.1_'$P1'/app.dump"]' <snaps.json)
assert_eq "$appst" "['complete', 'failed']" "app custom-format snapshots after forget --keep-last 1"
# retention is per server and database: the other server's snapshot of app has its own group
assert_eq "$(jget '[s["status"] for s in d if s["server"] == "127.0.0.1:'$P2'"]' <snaps.json)" \
    "['complete']" "the other server's snapshot after forget --keep-last 1"

step "repository disk full while storing: clear error, no snapshot"
n0=$(nsnaps)
rc=0
COFFER_FAULT=enospc-put=2 "$COFFER" -r "$REPO" backup --postgres --server 127.0.0.1 --port $P1 \
    --user postgres --database app --extra-arg=--compress=1 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with the repository full"
grep -qi "no space\|full" err.txt || fail "message: $(cat err.txt)"
grep -q "no snapshot was written" err.txt || fail "message: $(cat err.txt)"
assert_eq "$(nsnaps)" "$n0" "snapshots after the disk-full attempt"
c check >/dev/null || fail "check after the failures"

step "the same through the job configuration: coffer job run / job restore (doc/config.md)"
cat >job.yaml <<EOF
repositories:
  r: {url: "$REPO", password: "\${COFFER_PASSWORD}"}
jobs:
  - name: pgjob
    type: postgres
    options: {server: 127.0.0.1, port: $P1, user: postgres, database: [app]}
    repositories: [r]
    retention: {keep_last: 3}
EOF
"$COFFER" --json job run pgjob --config job.yaml >job.json 2>job.err || fail "job run: $(cat job.err)"
grep -q '"status":"success"' job.json || fail "job result: $(cat job.json)"
c --json snapshots >snaps.json
assert_eq "$(jget '[s["database"] for s in d if s.get("job") == "pgjob"]' <snaps.json)" "['app']" "the job's snapshot"
"$COFFER" job restore pgjob --config job.yaml -- --as app_from_job >jr.txt 2>&1 || fail "job restore: $(cat jr.txt)"
assert_eq "$(digest $P1 app_from_job)" "$(digest $P1 app)" "app restored through the job"

"$SERVERS/postgres.sh" stop "$WORK/pg1"
echo "svc postgres ok"
