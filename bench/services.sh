#!/bin/bash
# bench/services.sh -- service backups over consecutive "days": repository growth per day of
# coffer against restic storing the same dumps, and wall time of coffer's dump-plus-backup
# against pg_dump alone and `pg_dump | gzip > file` (how coffer's models do it).
#
# Usage:  bench/services.sh BUILD_DIR          (as root: the servers run as postgres / mysql)
#   env:  DAYS=7        days to simulate
#         SCALE=50      pgbench scale (50 = 5 M accounts rows, a ~600 MB custom dump)
#         TX=2000       pgbench transactions (2 clients) between two days
#         MYROWS=1000000 rows of the MariaDB table; MYCHG=2000 rows changed per day
#         SERVICES="postgres mysql"
#         BENCH_DIR=/tmp/bench-svc   work directory (servers, dumps, repositories)
#
# Per day and service: transactions; then, each under /usr/bin/time: the plain dump to
# /dev/null (the floor), the dump piped through gzip to a file (the models' way), coffer's
# service backup (dump + chunk + compress + encrypt + store, overlapped), and restic 0.14
# backing up that day's dump file (--stdin) — the same bytes coffer stored. After each day the
# size of both repositories (du) is recorded. Servers on 127.0.0.1 ports 43350/43351, started
# and stopped by their pids (tests/servers/). Output: $BENCH_DIR/services.tsv and a markdown
# summary on stdout.
set -euo pipefail
export LC_ALL=C
[ $# -eq 1 ] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COFFER=$BUILD/coffer
DAYS=${DAYS:-7} SCALE=${SCALE:-50} TX=${TX:-2000} MYROWS=${MYROWS:-1000000} MYCHG=${MYCHG:-2000}
SERVICES=${SERVICES:-postgres mysql}
B=${BENCH_DIR:-/tmp/bench-svc}
PGP=43350 MYP=43351
rm -rf "$B"
mkdir -p "$B"
chmod 755 "$B"
export TMPDIR=$B COFFER_PASSWORD=bench COFFER_KDF="argon2id:ops=1,mem=8192"
export RESTIC_PASSWORD=bench PGPASSWORD=pgpass PGUSER=postgres PGHOST=127.0.0.1 MYSQL_PWD=mypass
TSV=$B/services.tsv
printf 'service\tday\tstep\twall_s\tuser_s\tsys_s\tbytes\n' >"$TSV"
cleanup() {
    "$ROOT/tests/servers/postgres.sh" stop "$B/pg" 2>/dev/null || true
    "$ROOT/tests/servers/mariadb.sh" stop "$B/my" 2>/dev/null || true
}
trap cleanup EXIT

# measure SERVICE DAY STEP CMD...: run under /usr/bin/time, append a row
measure() {
    local svc=$1 day=$2 step=$3
    shift 3
    sync
    /usr/bin/time -f '%e %U %S' -o "$B/time.txt" "$@"
    read -r wall user sys <"$B/time.txt"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t\n' "$svc" "$day" "$step" "$wall" "$user" "$sys" >>"$TSV"
}
size_row() {
    printf '%s\t%s\t%s\t\t\t\t%s\n' "$1" "$2" "$3" "$(du -sb "$4" | cut -f1)" >>"$TSV"
}

run_service() {
    local svc=$1 day
    "$COFFER" -r "$B/coffer-$svc" init >/dev/null
    restic -r "$B/restic-$svc" init >/dev/null
    for day in $(seq 1 "$DAYS"); do
        if [ "$day" -gt 1 ]; then
            if [ "$svc" = postgres ]; then
                pgbench -p $PGP -c 2 -t $((TX / 2)) bench >/dev/null 2>&1
            else
                mariadb --no-defaults -h127.0.0.1 -P$MYP -uroot bench -e \
                    "update t set v = v + 1, note = concat('day $day ', id) where id % $((MYROWS / MYCHG)) = $day;
                     insert into t select $MYROWS + $day * 100000 + seq, 'new', 0, null from seq_1_to_$((MYCHG / 10));"
            fi
        fi
        if [ "$svc" = postgres ]; then
            measure $svc $day dump-only sh -c "pg_dump -p $PGP -Fc -Z0 bench >/dev/null"
            measure $svc $day dump-gzip sh -c "pg_dump -p $PGP -Fp bench | gzip >$B/day.sql.gz"
            measure $svc $day coffer "$COFFER" -q -r "$B/coffer-$svc" backup --postgres --server 127.0.0.1 \
                --port $PGP --user postgres --database bench
            pg_dump -p $PGP -Fc -Z0 bench >"$B/day.dump"
        else
            local my=(--no-defaults -h127.0.0.1 -P$MYP -uroot --single-transaction --routines --events
                --triggers --hex-blob --skip-dump-date bench)
            measure $svc $day dump-only sh -c "mariadb-dump ${my[*]} >/dev/null"
            measure $svc $day dump-gzip sh -c "mariadb-dump ${my[*]} | gzip >$B/day.sql.gz"
            measure $svc $day coffer "$COFFER" -q -r "$B/coffer-$svc" backup --mysql --server 127.0.0.1 \
                --port $MYP --user root --database bench
            mariadb-dump "${my[@]}" >"$B/day.dump"
        fi
        size_row $svc $day dump-bytes "$B/day.dump"
        size_row $svc $day gzip-bytes "$B/day.sql.gz"
        measure $svc $day restic sh -c "restic -q -r $B/restic-$svc backup --stdin --stdin-filename bench.dump <$B/day.dump"
        size_row $svc $day coffer-repo "$B/coffer-$svc"
        size_row $svc $day restic-repo "$B/restic-$svc"
        echo "$svc day $day done" >&2
    done
}

for svc in $SERVICES; do
    case $svc in
    postgres)
        "$ROOT/tests/servers/postgres.sh" start "$B/pg" $PGP >/dev/null
        createdb -p $PGP bench
        pgbench -p $PGP -i -s "$SCALE" -q bench >/dev/null 2>&1
        ;;
    mysql)
        "$ROOT/tests/servers/mariadb.sh" start "$B/my" $MYP >/dev/null
        mariadb --no-defaults -h127.0.0.1 -P$MYP -uroot -e "create database bench; use bench;
            create table t(id int primary key, note varchar(80), v double, b blob);
            insert into t select seq, concat('row ', seq), seq * 1.5, if(seq % 10 = 0, unhex(md5(seq)), null)
            from seq_1_to_$MYROWS;"
        ;;
    esac
    run_service "$svc"
done

/usr/bin/python3 - "$TSV" <<'EOF'
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = collections.defaultdict(dict)
for r in rows:
    key = (r["service"], int(r["day"]))
    by[key][r["step"]] = r
for svc in sorted({k[0] for k in by}):
    days = sorted(d for s, d in by if s == svc)
    print(f"\n### {svc}\n")
    print("| day | dump MB | pg_dump/dump alone s | dump\\|gzip s | coffer dump+backup s | coffer/dump alone | coffer repo MB (+day) | restic repo MB (+day) |")
    print("|---|---|---|---|---|---|---|---|")
    prev_c = prev_r = 0
    for d in days:
        x = by[(svc, d)]
        mb = lambda s: int(x[s]["bytes"]) / 1e6
        c, r = mb("coffer-repo"), mb("restic-repo")
        w = lambda s: float(x[s]["wall_s"])
        print(f"| {d} | {mb('dump-bytes'):.0f} | {w('dump-only'):.2f} | {w('dump-gzip'):.2f} | {w('coffer'):.2f} "
              f"| {w('coffer') / w('dump-only'):.2f} | {c:.1f} (+{c - prev_c:.1f}) | {r:.1f} (+{r - prev_r:.1f}) |")
        prev_c, prev_r = c, r
EOF
