#!/bin/bash
# bench/run.sh -- coffer, restic and borg side by side on the benchmark corpus
#
# Usage:  bench/run.sh BUILD_DIR [all|report]        (`make bench` runs `bench/run.sh build`)
#   BUILD_DIR/coffer is the binary measured.  `report` only rebuilds summary.md from raw.tsv.
#   env:  RUNS=3                      runs; the summary shows medians
#         TOOLS="coffer restic borg"  tools to run (any subset, any order)
#         WORKLOADS="src db big"      workloads to run (any subset)
#         BASELINES=1                 with src: also time cat and tar|zstd -3 -T2 over src (0: off)
#         BENCH_DIR=/tmp/bench        corpus in $BENCH_DIR/corpus (../shared/bench/make-corpus.sh);
#                                     work/, repos/, restore/, state/, results/ are created there
#
# Workloads (each tool starts every workload with a fresh, empty repository):
#   src  src-initial   back up work/src (a cp -a copy of corpus/src, made once)
#        src-unchanged back it up again, nothing changed
#        src-1pct      append a line to each file of src-touch-list.txt (1 %), back up again
#        src-restore   restore the latest snapshot, compare with diff -r; then the touched files
#                      are copied back from the corpus, so work/src is pristine for the next tool
#   db   db-day1 / db-day2   db-day1.sql, then db-day2.sql, copied to the same path work/db.sql
#        db-restore          restore the latest (day 2) snapshot, compare with cmp
#   big  big-day1 / big-day2 / big-restore   the same with the 2 GiB images (work/big.img)
# Every measured command runs under /usr/bin/time (wall, user and system CPU, peak RSS of the
# largest process).  Before each workload the input is read with cat (warm page cache; a cold
# cache cannot be controlled on a VM); `sync` runs before each measurement.  The order of the
# tools rotates from run to run.  Settings compared: coffer defaults (zstd 3, threads = CPUs),
# restic defaults (compression auto), borg --compression zstd,3 with repokey-blake2.
#
# Output in $BENCH_DIR/results (an existing one is moved to results.<time> first):
#   raw.tsv      one row per measured command and run
#   summary.md   medians per workload step and tool, coffer-vs-restic/borg ratios, machine facts
#   machine.md   nproc, CPU model, kernel, memory, tool versions, coffer commit, date
#   logs/        stdout+stderr of every command
# Exit status: 0 when every command succeeded and every restore compared equal, 1 otherwise.
set -uo pipefail
export LC_ALL=C

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in -h | --help) usage ;; esac
BUILD_DIR=$1
MODE=${2:-all}

BENCH_DIR=${BENCH_DIR:-/tmp/bench}
CORPUS=$BENCH_DIR/corpus
WORK=$BENCH_DIR/work
REPOS=$BENCH_DIR/repos
RESTORE=$BENCH_DIR/restore
STATES=$BENCH_DIR/state
OUT=$BENCH_DIR/results
LOGS=$OUT/logs
RAW=$OUT/raw.tsv
TOOLS=${TOOLS:-coffer restic borg}
WORKLOADS=${WORKLOADS:-src db big}
RUNS=${RUNS:-3}
BASELINES=${BASELINES:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { echo "bench/run.sh: $*" >&2; exit 2; }

# ============================================================== report (python: medians)
report() {
    [ -f "$RAW" ] || die "no $RAW"
    "$PYTHON" - "$RAW" "$OUT/machine.md" > "$OUT/summary.md" <<'PYEOF'
import sys, csv, statistics, collections
raw, machine = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(raw), delimiter='\t'))
order = ['cat-src', 'tar-zstd3-src',
         'src-initial', 'src-unchanged', 'src-1pct', 'src-restore',
         'db-day1', 'db-day2', 'db-restore', 'big-day1', 'big-day2', 'big-restore']
tools_order = ['baseline', 'coffer', 'restic', 'borg']
g = collections.OrderedDict()
for r in rows:
    g.setdefault((r['step'], r['tool']), []).append(r)
def key(k):
    s, t = k
    return (order.index(s) if s in order else 99, s,
            tools_order.index(t) if t in tools_order else 99, t)
def num(x):
    try: return float(x)
    except ValueError: return None
def med(rs, f):
    xs = [v for v in (f(r) for r in rs) if v is not None]
    return statistics.median(xs) if xs else None
def fmt(x, d=2):
    return '-' if x is None else f'{x:.{d}f}'
def mb(x):
    return '-' if x is None else f'{x / 1e6:.1f}'
wall = lambda r: num(r['wall_s'])
cpu = lambda r: (num(r['user_s']) or 0) + (num(r['sys_s']) or 0) if num(r['wall_s']) is not None else None
try:
    print(open(machine).read().rstrip() + '\n')
except FileNotFoundError:
    pass
print('## Medians per step and tool\n')
print('| step | tool | runs | wall s | wall min-max | CPU s (user+sys) | MB/s | peak RSS MiB '
      '| repo MB after | added MB | cache MB | status |')
print('|---|---|---|---|---|---|---|---|---|---|---|---|')
summ = {}
for k in sorted(g, key=key):
    s, t = k
    rs = g[k]
    w = med(rs, wall)
    ws = [x for x in map(wall, rs) if x is not None]
    c = med(rs, cpu)
    inb = num(rs[0]['in_bytes'])
    rss = med(rs, lambda r: num(r['maxrss_kb']))
    repo = med(rs, lambda r: num(r['repo_bytes']))
    added = med(rs, lambda r: num(r['added_bytes']))
    cache = med(rs, lambda r: num(r['cache_bytes']))
    bad = [r for r in rs if r['rc'] != '0' or r['verify'] not in ('-', 'ok')]
    status = 'ok' if not bad else ' '.join(sorted({f"rc={r['rc']}/{r['verify']}" for r in bad}))
    if all(r['verify'] == 'ok' for r in rs) and not bad:
        status = 'ok, verified'
    rate = inb / 1e6 / w if (inb and w) else None
    print(f"| {s} | {t} | {len(rs)} | {fmt(w)} | {fmt(min(ws) if ws else None)}-{fmt(max(ws) if ws else None)} "
          f"| {fmt(c)} | {fmt(rate, 0)} | {fmt(rss / 1024 if rss else None, 0)} | {mb(repo)} | {mb(added)} "
          f"| {mb(cache)} | {status} |")
    summ[k] = (w, c, added, bad)
steps = sorted({s for s, t in g if t == 'coffer'}, key=lambda s: (order.index(s) if s in order else 99, s))
if steps and any((s, 'restic') in g or (s, 'borg') in g for s in steps):
    print('\n## coffer against restic and borg (median wall time)\n')
    print('restic/coffer > 1: coffer is that many times faster than restic; < 1: slower. '
          'coffer/restic is its inverse (share of restic\'s time coffer needs).\n')
    print('| step | coffer s | restic s | borg s | coffer/restic | restic/coffer (x faster) '
          '| borg/coffer (x faster) | CPU coffer/restic | added MB coffer / restic / borg |')
    print('|---|---|---|---|---|---|---|---|---|')
    for s in steps:
        cw, cc, ca, _ = summ[(s, 'coffer')]
        rw, rc_, ra, _ = summ.get((s, 'restic'), (None, None, None, None))
        bw, bc, ba, _ = summ.get((s, 'borg'), (None, None, None, None))
        ratio = lambda a, b: fmt(a / b) if (a and b) else '-'
        added = ' / '.join(mb(x) for x in (ca, ra, ba)) if not s.endswith('restore') else '-'
        print(f"| {s} | {fmt(cw)} | {fmt(rw)} | {fmt(bw)} | {ratio(cw, rw)} | {ratio(rw, cw)} "
              f"| {ratio(bw, cw)} | {ratio(cc, rc_)} | {added} |")
PYEOF
}

if [ "$MODE" = report ]; then report && cat "$OUT/summary.md"; exit $?; fi
[ "$MODE" = all ] || usage

# ============================================================== checks
COFFER=$(cd "$BUILD_DIR" 2>/dev/null && pwd)/coffer
[ -x "$COFFER" ] || die "no coffer binary at $BUILD_DIR/coffer (build first: make build)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install -y time"
case "$RUNS" in '' | *[!0-9]* | 0) die "RUNS must be a positive integer" ;; esac
for t in $TOOLS; do
    case $t in coffer) ;; restic | borg) command -v "$t" > /dev/null || die "$t is not installed" ;;
    *) die "unknown tool '$t' (coffer restic borg)" ;; esac
done
for w in $WORKLOADS; do
    case $w in
    src) need=(src src-touch-list.txt) ;;
    db) need=(db-day1.sql db-day2.sql) ;;
    big) need=(big-day1.img big-day2.img) ;;
    *) die "unknown workload '$w' (src db big)" ;;
    esac
    for n in "${need[@]}"; do
        [ -e "$CORPUS/$n" ] || die "missing $CORPUS/$n: build the corpus with ../shared/bench/make-corpus.sh"
    done
done
case " $WORKLOADS " in *" src "*) command -v zstd > /dev/null || die "zstd is not installed" ;; esac

# ============================================================== tools
# Each tool: <tool>_init REPO; <tool>_backup REPO PATH NAME; <tool>_restore REPO NAME DEST.
# They run in a child bash under /usr/bin/time; $STATE is the tool's local cache directory for
# this workload (fresh per run, its size is reported as "cache").  The restored data lands at
# DEST/<basename PATH> (coffer) or DEST/<PATH without the leading /> (restic, borg).
export PW=coffer-bench-password
export COFFER RESTIC_PASSWORD=$PW BORG_PASSPHRASE=$PW COFFER_PASSWORD=$PW
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO

coffer_init() { "$COFFER" -r "$1" init -q; }
coffer_backup() { "$COFFER" -q -r "$1" backup "$2" --host bench; }
coffer_restore() { "$COFFER" -q -r "$1" restore latest --target "$3"; }

restic_init() { RESTIC_CACHE_DIR=$STATE restic -r "$1" init; }
restic_backup() { RESTIC_CACHE_DIR=$STATE restic -q -r "$1" backup --host bench "$2"; }
restic_restore() { RESTIC_CACHE_DIR=$STATE restic -q -r "$1" restore latest --host bench --target "$3"; }

borg_init() { BORG_BASE_DIR=$STATE borg init -e repokey-blake2 "$1"; }
borg_backup() { BORG_BASE_DIR=$STATE borg create --compression zstd,3 "$1::$3" "$2"; }
borg_restore() { cd "$3" && BORG_BASE_DIR=$STATE borg extract "$1::$2"; }

export -f coffer_init coffer_backup coffer_restore restic_init restic_backup restic_restore \
    borg_init borg_backup borg_restore

# ============================================================== helpers
dsize() { if [ -e "$1" ]; then du -sb "$1" | cut -f1; else echo 0; fi; }
bytes_of() {
    if [ -d "$1" ]; then find "$1" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d\n", s}'
    else stat -c %s "$1"; fi
}
warm() { find "$@" -type f -print0 | xargs -0 cat > /dev/null; }
restored_path() { # DEST PATH: where a tool put PATH under DEST
    local p
    for p in "$1/${2#/}" "$1/$(basename "$2")"; do [ -e "$p" ] && { echo "$p"; return; }; done
    echo "$1/$(basename "$2")"
}

FAILED=0
ROW=
# measure TOOL STEP IN_BYTES REPO CMD... : runs CMD under /usr/bin/time after sync; sets ROW
# (all columns but verify).  REPO may be empty (baselines); then repo/added/cache are "-".
measure() {
    local tool=$1 step=$2 inb=$3 repo=$4
    shift 4
    local lg=$LOGS/run$RUN-$tool-$step.log tf=$OUT/.time before=- after=- added=- cache=-
    [ -n "$repo" ] && before=$(dsize "$repo")
    sync
    /usr/bin/time -o "$tf" -f '%e %U %S %M' bash -c '"$@"' _ "$@" > "$lg" 2>&1
    local rc=$?
    local wall user sys rss
    read -r wall user sys rss < <(tail -n 1 "$tf")
    case "$wall" in [0-9]*) ;; *) wall=- user=- sys=- rss=- ;; esac
    if [ -n "$repo" ]; then
        after=$(dsize "$repo")
        added=$((after - before))
        cache=$(dsize "$STATE")
    fi
    local cpu=-
    [ "$wall" != - ] && cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')
    [ $rc -eq 0 ] || { FAILED=1; log "  $tool $step FAILED rc=$rc (log: $lg)"; tail -n 5 "$lg" | sed 's/^/    /' >&2; }
    log "  $tool $step: wall=${wall}s cpu=${cpu}s rss=${rss}KB repo=$after added=$added rc=$rc"
    ROW="$RUN	$tool	$CUR_WL	$step	$wall	$user	$sys	$cpu	$rss	$inb	$after	$added	$cache	$rc"
}
emit() { # emit [VERIFY]
    local v=${1:--}
    case $v in - | ok) ;; *) FAILED=1 ;; esac
    printf '%s\t%s\n' "$ROW" "$v" >> "$RAW"
}

# ---- work/src: a cp -a copy of corpus/src, made once and kept pristine between runs
TOUCHED=$WORK/.src-touched
untouch_src() {
    [ -e "$TOUCHED" ] || return 0
    local f
    while IFS= read -r f; do
        cp -p --reflink=never "$CORPUS/src/$f" "$WORK/src/$f"
    done < "$CORPUS/src-touch-list.txt"
    rm -f "$TOUCHED"
}
touch_src() {
    local f
    : > "$TOUCHED"
    while IFS= read -r f; do
        printf '/* coffer-bench: modified */\n' >> "$WORK/src/$f"
    done < "$CORPUS/src-touch-list.txt"
}
prepare_src() {
    mkdir -p "$WORK"
    untouch_src
    if [ ! -e "$WORK/.src-ready" ] || [ "$(bytes_of "$WORK/src")" != "$(bytes_of "$CORPUS/src")" ]; then
        log "copying $CORPUS/src to $WORK/src (once)"
        rm -rf "$WORK/src" "$WORK/.src-ready"
        cp -a --reflink=never "$CORPUS/src" "$WORK/src" && : > "$WORK/.src-ready" || die "cp -a src failed"
    fi
}
trap 'untouch_src' EXIT
trap 'exit 130' INT TERM

# ============================================================== workloads
baselines() {
    local nb=$1 sz=$OUT/.tarzstd-size
    CUR_WL=src STATE=
    warm "$WORK/src"
    measure baseline cat-src "$nb" "" bash -c 'find "$1" -type f -print0 | xargs -0 cat > /dev/null' _ "$WORK/src"
    emit
    # the compressed size is counted with wc -c (it replaces > /dev/null) and shown as "repo MB"
    measure baseline tar-zstd3-src "$nb" "" bash -c 'tar -C "$1" -cf - src | zstd -q -3 -T2 | wc -c > "$2"' _ "$WORK" "$sz"
    local out
    out=$(cat "$sz" 2> /dev/null || echo -)
    ROW=$(printf '%s' "$ROW" | awk -F'\t' -v OFS='\t' -v o="$out" '{$11 = o; print}')
    emit
}

wl_src() { # TOOL REPO DEST
    local t=$1 repo=$2 dest=$3 nb
    warm "$WORK/src"
    nb=$SRC_BYTES
    measure "$t" src-initial "$nb" "$repo" "${t}_backup" "$repo" "$WORK/src" src-1; emit
    measure "$t" src-unchanged "$nb" "$repo" "${t}_backup" "$repo" "$WORK/src" src-2; emit
    touch_src
    nb=$(bytes_of "$WORK/src")
    measure "$t" src-1pct "$nb" "$repo" "${t}_backup" "$repo" "$WORK/src" src-3; emit
    measure "$t" src-restore "$nb" "$repo" "${t}_restore" "$repo" src-3 "$dest"
    local rp v=ok
    rp=$(restored_path "$dest" "$WORK/src")
    if ! diff -r -q --no-dereference "$WORK/src" "$rp" > "$LOGS/run$RUN-$t-src-diff.log" 2>&1; then
        v=DIFF
        log "  $t src restore differs (see $LOGS/run$RUN-$t-src-diff.log)"
    fi
    emit $v
    untouch_src
}

wl_file() { # TOOL REPO DEST WORKLOAD
    local t=$1 repo=$2 dest=$3 wl=$4 d1 d2 f
    case $wl in
    db) d1=$CORPUS/db-day1.sql d2=$CORPUS/db-day2.sql f=$WORK/db.sql ;;
    big) d1=$CORPUS/big-day1.img d2=$CORPUS/big-day2.img f=$WORK/big.img ;;
    esac
    cp --reflink=never --sparse=never "$d1" "$f" || die "cp $d1 failed"
    warm "$f"
    measure "$t" "$wl-day1" "$(bytes_of "$f")" "$repo" "${t}_backup" "$repo" "$f" "$wl-1"; emit
    cp --reflink=never --sparse=never "$d2" "$f" || die "cp $d2 failed"
    warm "$f"
    measure "$t" "$wl-day2" "$(bytes_of "$f")" "$repo" "${t}_backup" "$repo" "$f" "$wl-2"; emit
    measure "$t" "$wl-restore" "$(bytes_of "$f")" "$repo" "${t}_restore" "$repo" "$wl-2" "$dest"
    local rp v=ok
    rp=$(restored_path "$dest" "$f")
    if ! cmp -s "$rp" "$f"; then
        v=MISMATCH
        log "  $t $wl restore does not match $f ($rp)"
    fi
    emit $v
    rm -f "$f"
}

run_workload() { # TOOL WORKLOAD
    local t=$1 wl=$2 repo=$REPOS/$1-$2 dest=$RESTORE/$1-$2
    export STATE=$STATES/$t-$wl
    CUR_WL=$wl
    rm -rf "$repo" "$dest" "$STATE"
    mkdir -p "$STATE" "$dest" "$REPOS"
    if ! "${t}_init" "$repo" > "$LOGS/run$RUN-$t-$wl-init.log" 2>&1; then
        FAILED=1
        log "  $t init failed:"; tail -n 5 "$LOGS/run$RUN-$t-$wl-init.log" | sed 's/^/    /' >&2
        return
    fi
    case $wl in
    src) wl_src "$t" "$repo" "$dest" ;;
    db | big) wl_file "$t" "$repo" "$dest" "$wl" ;;
    esac
    rm -rf "$dest"
    # keep the last run's repositories for inspection; earlier ones only cost disk
    [ "$RUN" = "$RUNS" ] || rm -rf "$repo" "$STATE"
}

machine_facts() {
    {
        echo "# coffer benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        echo
        echo "- host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)"
        echo "- kernel: $(uname -srm); filesystem of $BENCH_DIR: $(df -PT "$BENCH_DIR" | awk 'NR == 2 {print $2}')"
        echo "- coffer: $("$COFFER" --version 2>&1 | head -n 1) ($COFFER, commit $(git -C "$HERE/.." rev-parse --short HEAD 2> /dev/null || echo '?')$(git -C "$HERE/.." diff --quiet HEAD 2> /dev/null || echo ', tree modified'))"
        echo "- restic: $(restic version 2>&1 | head -n 1)"
        echo "- borg: $(borg --version 2>&1 | head -n 1) (--compression zstd,3, -e repokey-blake2)"
        echo "- zstd: $(zstd --version 2>&1 | head -n 1); tar: $(tar --version | head -n 1)"
        echo "- settings: RUNS=$RUNS TOOLS=\"$TOOLS\" WORKLOADS=\"$WORKLOADS\" BASELINES=$BASELINES; warm page cache"
        echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    } > "$OUT/machine.md"
}

# ============================================================== main
if [ -e "$OUT" ]; then
    mv "$OUT" "$OUT.$(date +%Y%m%d-%H%M%S)" || die "cannot move the old $OUT away"
fi
mkdir -p "$LOGS" "$WORK"
printf 'run\ttool\tworkload\tstep\twall_s\tuser_s\tsys_s\tcpu_s\tmaxrss_kb\tin_bytes\trepo_bytes\tadded_bytes\tcache_bytes\trc\tverify\n' > "$RAW"
machine_facts
cat "$OUT/machine.md" >&2

SRC_BYTES=
case " $WORKLOADS " in *" src "*) prepare_src; SRC_BYTES=$(bytes_of "$WORK/src") ;; esac
read -r -a tool_list <<< "$TOOLS"
ntools=${#tool_list[@]}
for RUN in $(seq 1 "$RUNS"); do
    for wl in $WORKLOADS; do
        log "run $RUN/$RUNS workload $wl"
        if [ "$wl" = src ] && [ "$BASELINES" = 1 ]; then baselines "$SRC_BYTES"; fi
        for i in $(seq 0 $((ntools - 1))); do
            t=${tool_list[$(((i + RUN - 1) % ntools))]}
            log " $t"
            run_workload "$t" "$wl"
        done
    done
done
rm -f "$OUT/.time" "$OUT/.tarzstd-size"

report
echo
cat "$OUT/summary.md"
echo
echo "raw rows: $RAW; logs: $LOGS; repositories of the last run: $REPOS"
[ "$FAILED" = 0 ] || { echo "SOME COMMANDS FAILED OR RESTORES DIFFERED (see status column and logs)"; exit 1; }
