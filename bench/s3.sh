#!/bin/bash
# bench/s3.sh -- coffer against restic on S3: Ceph radosgw on loopback, one run of each tool
# per round, the benchmark corpus's source tree and 2 GiB image.
#
# Usage:  bench/s3.sh BUILD_DIR            (BUILD_DIR/coffer is measured)
#   env:  RUNS=3                 rounds; the summary shows medians
#         WORKLOADS="src big"    src: corpus/src; big: corpus/big-day1.img
#         BENCH_DIR=/tmp/bench   corpus in $BENCH_DIR/corpus (../shared/bench/make-corpus.sh);
#                                s3-work/, s3-results/ and the radosgw under s3-rgw/ go there
#         RGW_MEMSTORE_GB=8      RAM the memstore OSD may use (each bucket is purged after use)
#
# Steps per tool and workload, each with a fresh bucket: `<w>-backup` (init is not timed) and
# `<w>-restore` (then compared with diff -r / cmp). Measured: wall time and CPU (/usr/bin/time),
# the requests the tool sent to radosgw by method (counted in radosgw's access log, which logs
# every request), and the bytes stored in the bucket. Requests per GiB are per GiB of input.
# Output: $BENCH_DIR/s3-results/raw.tsv and summary.md (medians, coffer/restic ratios).
# Exit status 0 when every command succeeded and every restore compared equal.
set -uo pipefail
export LC_ALL=C
[ $# -ge 1 ] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
BUILD_DIR=$(cd "$1" && pwd)
COFFER_BIN=$BUILD_DIR/coffer
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/bench}
CORPUS=$BENCH_DIR/corpus
WORK=$BENCH_DIR/s3-work
OUT=$BENCH_DIR/s3-results
RGW=$BENCH_DIR/s3-rgw
RUNS=${RUNS:-3}
WORKLOADS=${WORKLOADS:-src big}
S3PORT=${S3PORT:-47680}
MONPORT=${MONPORT:-47689}
PYTHON=/usr/bin/python3
ENDPOINT=127.0.0.1:$S3PORT
export AWS_ACCESS_KEY_ID=CIKEY AWS_SECRET_ACCESS_KEY=CISECRET AWS_DEFAULT_REGION=us-east-1
export COFFER_PASSWORD=bench RESTIC_PASSWORD=bench
RGWLOG=$RGW/log/client.rgw.a.log

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { echo "bench/s3.sh: $*" >&2; exit 2; }
[ -x "$COFFER_BIN" ] || die "no $COFFER_BIN: build first (make build)"
command -v restic >/dev/null || die "restic missing: scripts/install-deps.sh bench"
[ -d "$CORPUS/src" ] || die "no corpus in $CORPUS: run ../shared/bench/make-corpus.sh"

rm -rf "$WORK" "$OUT"
mkdir -p "$WORK" "$OUT/logs"
RGW_MEM_BYTES=$(( ${RGW_MEMSTORE_GB:-8} << 30 )) "$ROOT/tests/servers/rgw.sh" start "$RGW" \
    "$S3PORT" "$MONPORT" >"$OUT/logs/rgw-start.log" 2>&1 || die "radosgw did not start: $OUT/logs/rgw-start.log"
trap '"$ROOT/tests/servers/rgw.sh" stop "$RGW" >/dev/null 2>&1' EXIT

bucket_make() {
    curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X PUT "http://$ENDPOINT/$1" >/dev/null
}
bucket_purge() {
    radosgw-admin -c "$RGW/ceph.conf" bucket rm --bucket="$1" --purge-objects >/dev/null 2>&1
}
bucket_bytes() {
    radosgw-admin -c "$RGW/ceph.conf" bucket stats --bucket="$1" 2>/dev/null |
        "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(sum(v.get("size_actual", v.get("size", 0)) for v in d.get("usage", {}).values()))'
}
# Requests in radosgw's access log since line $1, as "total PUT GET HEAD POST DELETE".
requests_since() {
    tail -n +"$(($1 + 1))" "$RGWLOG" | grep ' beast: ' |
        "$PYTHON" -c '
import sys, collections
c = collections.Counter()
for l in sys.stdin:
    try: c[l.split("\"")[1].split()[0]] += 1
    except IndexError: pass
print(sum(c.values()), *(c[m] for m in ("PUT", "GET", "HEAD", "POST", "DELETE")))'
}
loglines() { wc -l <"$RGWLOG"; }

printf 'run\tstep\ttool\tin_bytes\twall_s\tuser_s\tsys_s\trc\tverify\trequests\tput\tget\thead\tpost\tdelete\tstored_bytes\n' >"$OUT/raw.tsv"

# measure RUN STEP TOOL IN_BYTES BUCKET VERIFY_CMD -- CMD...
measure() {
    local run=$1 step=$2 tool=$3 inb=$4 bucket=$5 verify=$6 w u s
    shift 7
    local tf=$OUT/logs/$step-$tool-$run.time lf=$OUT/logs/$step-$tool-$run.log
    sync
    local before
    before=$(loglines)
    /usr/bin/time -f '%e %U %S' -o "$tf" "$@" >"$lf" 2>&1
    local rc=$?
    sleep 1 # radosgw writes its access log line after the reply
    local reqs
    reqs=$(requests_since "$before")
    local v=-
    if [ -n "$verify" ]; then
        if bash -c "$verify" >>"$lf" 2>&1; then v=ok; else v=DIFF; fi
    fi
    read -r w u s < <(tail -1 "$tf")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$step" "$tool" "$inb" "$w" "$u" "$s" \
        "$rc" "$v" "$(echo "$reqs" | tr ' ' '\t')" "$(bucket_bytes "$bucket")" >>"$OUT/raw.tsv"
    log "$step $tool run $run: ${w}s rc=$rc verify=$v requests=${reqs%% *}"
}

for run in $(seq 1 "$RUNS"); do
    tools="coffer restic"
    [ $((run % 2)) -eq 0 ] && tools="restic coffer"
    for w in $WORKLOADS; do
        case $w in
        src) input=$CORPUS/src; inb=$(du -sb "$input" | cut -f1) ;;
        big) input=$CORPUS/big-day1.img; inb=$(stat -c %s "$input") ;;
        *) die "unknown workload $w" ;;
        esac
        cat "$input" >/dev/null 2>&1 || tar -cf - -C "$(dirname "$input")" "$(basename "$input")" >/dev/null
        for t in $tools; do
            b=bench-$w-$t-$run
            bucket_make "$b" || die "cannot create bucket $b"
            r=$WORK/restore-$t
            rm -rf "$r"
            # coffer restores a root entry by its base name, restic by its full path
            if [ "$t" = coffer ]; then got=$r/$(basename "$input"); else got=$r$input; fi
            if [ "$w" = src ]; then vcmd="diff -r '$input' '$got' >/dev/null"; else vcmd="cmp '$input' '$got'"; fi
            if [ "$t" = coffer ]; then
                repo="s3://$ENDPOINT/$b/repo"
                "$COFFER_BIN" -q -r "$repo" init --skip-location-check >"$OUT/logs/init-$w-$t-$run.log" 2>&1
                measure "$run" "$w-backup" coffer "$inb" "$b" "" -- "$COFFER_BIN" -q -r "$repo" backup "$input"
                measure "$run" "$w-restore" coffer "$inb" "$b" "$vcmd" -- "$COFFER_BIN" -q -r "$repo" restore latest --target "$r"
            else
                repo="s3:http://$ENDPOINT/$b/repo"
                restic -q -r "$repo" init >"$OUT/logs/init-$w-$t-$run.log" 2>&1
                measure "$run" "$w-backup" restic "$inb" "$b" "" -- restic -q -r "$repo" backup "$input"
                measure "$run" "$w-restore" restic "$inb" "$b" "$vcmd" -- restic -q -r "$repo" restore latest --target "$r"
            fi
            rm -rf "$r"
            bucket_purge "$b"
        done
    done
done

"$PYTHON" - "$OUT/raw.tsv" >"$OUT/summary.md" <<'PYEOF'
import sys, csv, statistics, collections, subprocess, datetime, os
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
g = collections.OrderedDict()
for r in rows:
    g.setdefault((r['step'], r['tool']), []).append(r)
f = lambda x: float(x) if x not in ('', '-') else None
med = lambda rs, k: statistics.median([f(r[k]) for r in rs if f(r[k]) is not None]) if rs else None
cpu = os.popen("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").read().strip()
print(f"# coffer vs restic on S3 (Ceph radosgw 16.2, memstore, loopback)\n")
print(f"date {datetime.date.today()}, {os.cpu_count()} CPUs ({cpu}), restic "
      f"{os.popen('restic version').read().split()[1]}, runs {max(int(r['run']) for r in rows)}\n")
print('| step | tool | wall s (median) | MB/s | CPU s | requests | req/GiB | PUT | GET | HEAD | POST | DELETE | stored MB | status |')
print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
summ = {}
for (s, t), rs in g.items():
    w = med(rs, 'wall_s'); inb = f(rs[0]['in_bytes'])
    c = statistics.median([f(r['user_s']) + f(r['sys_s']) for r in rs])
    req = med(rs, 'requests')
    bad = [r for r in rs if r['rc'] != '0' or r['verify'] not in ('-', 'ok')]
    summ[(s, t)] = (w, req)
    print(f"| {s} | {t} | {w:.2f} | {inb/1e6/w:.0f} | {c:.1f} | {req:.0f} | {req/(inb/2**30):.0f} | "
          + ' | '.join(f"{med(rs, k):.0f}" for k in ('put', 'get', 'head', 'post', 'delete'))
          + f" | {med(rs, 'stored_bytes')/1e6:.1f} | {'ok' if not bad else 'FAILED ' + str(len(bad))} |")
print('\n| step | restic/coffer wall (x faster) | coffer/restic requests |')
print('|---|---|---|')
for s in dict.fromkeys(s for s, _ in g):
    if (s, 'coffer') in summ and (s, 'restic') in summ:
        (cw, cr), (rw, rr) = summ[(s, 'coffer')], summ[(s, 'restic')]
        print(f"| {s} | {rw/cw:.2f} | {cr/rr:.2f} |")
PYEOF
cat "$OUT/summary.md"
! awk -F'\t' 'NR>1 && ($8 != "0" || ($9 != "-" && $9 != "ok"))' "$OUT/raw.tsv" | grep -q .
