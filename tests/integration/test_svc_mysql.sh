#!/bin/bash
# test_svc_mysql.sh -- `coffer backup/restore --mysql` against real MariaDB servers on
# 127.0.0.1 (tests/servers/mariadb.sh, ports 43320-43321): a table with blobs, unicode and
# NULLs plus a procedure, a trigger and an event; two days of backups (one snapshot per
# database); each snapshot restored into a fresh server under another name and compared with
# CHECKSUM TABLE, row counts and the routines; failures (wrong password, server down, unknown
# database, the dump tool missing, the dump killed midway) give a clear error and a snapshot
# that is failed or absent; --replica-pause on a real replica (port 43322) stops the SQL thread
# during the dump and starts it again, also after a dump that was killed.
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd mariadbd mariadb-install-db mariadb mariadb-dump setpriv python3
[ "$(id -u)" = 0 ] || skip "needs root to run the server as user mysql"
SERVERS=$ROOT/tests/servers
cd "$WORK"
export COFFER_KDF="argon2id:ops=1,mem=8192"
export MYSQL_PWD=mypass
REPO=$WORK/repo
P1=43320 P2=43321
c() { "$COFFER" -r "$REPO" "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
nsnaps() { c --json snapshots | jget 'len(d)'; }
m() { mariadb --no-defaults -h127.0.0.1 -P"$1" -uroot -N -B -e "$2"; }
# checksum, row count and routines of database $2 on port $1
digest() {
    m "$1" "checksum table \`$2\`.t extended" | cut -f2
    m "$1" "select count(*), sum(b is null), sum(u is null) from \`$2\`.t"
    m "$1" "select routine_name from information_schema.routines where routine_schema = '$2'"
    m "$1" "select trigger_name from information_schema.triggers where trigger_schema = '$2'"
    m "$1" "select event_name from information_schema.events where event_schema = '$2'"
}
opts=(--server 127.0.0.1 --port $P1 --user root)

step "start the server and load data"
pid=$(MARIADB_TEST_ARGS="--log-bin --server-id=1" "$SERVERS/mariadb.sh" start "$WORK/my1" $P1 | tail -1)
track_pid "$pid"
m $P1 "create database app; use app;
  create table t(id int primary key, name varchar(40), v double, b blob, u text) default charset utf8mb4;
  insert into t select seq, concat('name-', seq), seq * 1.5,
    if(seq % 7 = 0, null, unhex(concat(md5(seq), repeat('00ff', seq % 200)))),
    if(seq % 5 = 0, null, concat('zażółć gęślą jaźń ', seq, ' 日本語 ✓')) from seq_1_to_30000;
  create procedure p() select count(*) from t;
  create trigger tr before insert on t for each row set new.v = coalesce(new.v, 0);
  create event ev on schedule every 1 day do delete from t where id < 0;
  create database other; create table other.x(i int); insert into other.x values (1)"
d1=$(digest $P1 app)

step "day 1 and day 2 backups"
c init >/dev/null
c --json backup --mysql "${opts[@]}" --database app >day1.json
s1=$(jget 'd["id"]' <day1.json)
assert_eq "$(jget '(d["kind"], d["server"], d["database"], d["status"])' <day1.json)" \
    "('mysql', '127.0.0.1:$P1', 'app', 'complete')" "day 1 snapshot"
c dump "${s1:0:8}" "/mysql/127.0.0.1_$P1/app.sql" >app.sql
grep -qi '^USE \|CREATE DATABASE' app.sql && fail "the dump names its database"
grep -q 'CREATE.*PROCEDURE' app.sql || fail "routines missing from the dump"
m $P1 "use app; update t set u = 'changed ✓' where id % 1000 = 0; delete from t where id > 29000;
  insert into t (id, name) values (40000, 'new')"
d2=$(digest $P1 app)
[ "$d1" != "$d2" ] || fail "the data did not change"
c --json backup --mysql "${opts[@]}" --all-databases --exclude-database other \
    --replica-pause >day2.json 2>day2.err
assert_eq "$(jget 'd["database"]' <day2.json)" app "--all-databases leaves out system schemas and excludes"
grep -q "not a replica" day2.err || fail "--replica-pause on a primary: $(cat day2.err)"
s2=$(jget 'd["id"]' <day2.json)
assert_eq "$(jget 'd["parent"]' <day2.json)" "$s1" "parent of day 2"

step "restore each snapshot into a fresh server under new names"
pid2=$("$SERVERS/mariadb.sh" start "$WORK/my2" $P2 | tail -1)
track_pid "$pid2"
c restore "${s1:0:8}" --mysql --server 127.0.0.1 --port $P2 --user root --as 'app day1' >r1.txt
grep -q "into app day1" r1.txt || fail "restore output: $(cat r1.txt)"
assert_eq "$(digest $P2 'app day1' | sed 's/app day1/app/')" "$d1" "day 1 restored"
c restore latest --mysql --database app --server 127.0.0.1 --port $P2 --user root >/dev/null
assert_eq "$(digest $P2 app)" "$d2" "day 2 restored under its own name"
"$SERVERS/mariadb.sh" stop "$WORK/my2"

n0=$(nsnaps)
step "wrong password, server down, unknown database, no dump tool: clear errors, no snapshot"
rc=0
MYSQL_PWD=wrong "$COFFER" -r "$REPO" backup --mysql "${opts[@]}" --database app 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with a wrong password"
grep -q "mysql: connecting to the server at 127.0.0.1:$P1.*Access denied" err.txt || fail "message: $(cat err.txt)"
rc=0
c backup --mysql --server 127.0.0.1 --port 43329 --user root --database app 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with the server down"
grep -q "mysql: connecting to the server at 127.0.0.1:43329.*Can't connect" err.txt || fail "message: $(cat err.txt)"
rc=0
c backup --mysql "${opts[@]}" --database nosuchdb 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with an unknown database"
grep -q 'mysql: database "nosuchdb" does not exist' err.txt || fail "message: $(cat err.txt)"
mkdir emptybin
rc=0
PATH=$WORK/emptybin "$COFFER" -r "$REPO" backup --mysql "${opts[@]}" --database app 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code without the dump tool"
grep -q "mysql: neither mariadb-dump nor mysqldump found in PATH: install mariadb-client" err.txt \
    || fail "message: $(cat err.txt)"
assert_eq "$(nsnaps)" "$n0" "snapshots after the failed attempts"
printf 'mypass\n' >pw.txt
env -u MYSQL_PWD MYSQL_PWD_FILE=$WORK/pw.txt "$COFFER" -r "$REPO" -q backup --mysql "${opts[@]}" \
    --database other || fail "password from MYSQL_PWD_FILE"

step "the dump killed midway: the snapshot is marked failed, latest skips it"
mkfifo lockfifo
mariadb --no-defaults -h127.0.0.1 -P$P1 -uroot <lockfifo >/dev/null 2>&1 &
lockpid=$!
track_pid "$lockpid"
exec 7>lockfifo
echo "lock tables app.t write; select sleep(60);" >&7
for i in $(seq 100); do
    [ "$(m $P1 "select count(*) from information_schema.processlist where info like 'select sleep%'")" = 1 ] && break
    sleep 0.1
done
"$COFFER" -r "$REPO" backup --mysql "${opts[@]}" --database app 2>err.txt &
bpid=$!
dump=
for i in $(seq 100); do
    for cp in $(pgrep -P "$bpid" 2>/dev/null || true); do
        tr '\0' ' ' </proc/$cp/cmdline 2>/dev/null | grep -q 'single-transaction' && dump=$cp
    done
    [ -n "$dump" ] && break
    sleep 0.1
done
[ -n "$dump" ] || fail "the dump did not start"
sleep 0.5
kill -9 "$dump"
rc=0
wait "$bpid" || rc=$?
kill "$lockpid" 2>/dev/null || true
exec 7>&-
wait "$lockpid" 2>/dev/null || true
assert_eq "$rc" 1 "exit code when the dump is killed"
grep -q "mysql: dump of app on 127.0.0.1:$P1 was killed by signal 9.*marked failed" err.txt \
    || fail "message: $(cat err.txt)"
c --json snapshots >snaps.json
assert_eq "$(jget '[s["status"] for s in d if s["database"] == "app"][-1]' <snaps.json)" failed "killed dump"
c restore latest --mysql --database app "${opts[@]}" --as app_latest >r.txt
grep -q "snapshot ${s2:0:8}" r.txt || fail "latest picked: $(cat r.txt)"
assert_eq "$(digest $P1 app_latest | sed 's/app_latest/app/')" "$(digest $P1 app)" "latest restored"

step "--replica-pause on a real replica: SQL thread stopped during the dump, restarted after a failed one"
P3=43322
sqlrun() { mariadb --no-defaults -h127.0.0.1 -P$P3 -uroot -e 'show replica status\G' | awk '/Slave_SQL_Running:/ {print $2}'; }
pid3=$(MARIADB_TEST_ARGS="--server-id=2 --skip-log-bin" "$SERVERS/mariadb.sh" start "$WORK/my3" $P3 | tail -1)
track_pid "$pid3"
m $P3 "change master to master_host='127.0.0.1', master_port=$P1, master_user='root',
  master_password='mypass', master_use_gtid=no; start replica"
want=$(m $P1 "select count(*) from app.t")
for i in $(seq 200); do
    [ "$(m $P3 "select count(*) from app.t" 2>/dev/null)" = "$want" ] && break
    sleep 0.1
done
assert_eq "$(m $P3 "select count(*) from app.t")" "$want" "rows replicated"
assert_eq "$(sqlrun)" Yes "SQL thread before the backup"
c --json backup --mysql --server 127.0.0.1 --port $P3 --user root --database app --replica-pause >rep.json
assert_eq "$(jget 'd["status"]' <rep.json)" complete "backup of the replica"
assert_eq "$(sqlrun)" Yes "SQL thread after a good backup"
mkfifo lockfifo3
mariadb --no-defaults -h127.0.0.1 -P$P3 -uroot <lockfifo3 >/dev/null 2>&1 &
lockpid=$!
track_pid "$lockpid"
exec 7>lockfifo3
echo "lock tables app.t write; select sleep(60);" >&7
for i in $(seq 100); do
    [ "$(m $P3 "select count(*) from information_schema.processlist where info like 'select sleep%'")" = 1 ] && break
    sleep 0.1
done
"$COFFER" -r "$REPO" backup --mysql --server 127.0.0.1 --port $P3 --user root --database app \
    --replica-pause 2>err.txt &
bpid=$!
dump=
for i in $(seq 100); do
    for cp in $(pgrep -P "$bpid" 2>/dev/null || true); do
        tr '\0' ' ' </proc/$cp/cmdline 2>/dev/null | grep -q 'single-transaction' && dump=$cp
    done
    [ -n "$dump" ] && break
    sleep 0.1
done
[ -n "$dump" ] || fail "the dump did not start"
assert_eq "$(sqlrun)" No "SQL thread while the dump runs"
kill -9 "$dump"
rc=0
wait "$bpid" || rc=$?
kill "$lockpid" 2>/dev/null || true
exec 7>&-
wait "$lockpid" 2>/dev/null || true
assert_eq "$rc" 1 "exit code when the dump of the replica is killed"
assert_eq "$(sqlrun)" Yes "SQL thread restarted after the failed dump"
"$SERVERS/mariadb.sh" stop "$WORK/my3"

"$SERVERS/mariadb.sh" stop "$WORK/my1"
echo "svc mysql ok"
