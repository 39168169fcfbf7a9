#!/bin/bash
# test_concurrency.sh -- backups take no lock: three backups and a prune (after a forget) run
# at the same time, several rounds; afterwards `check --read-data` passes and every remaining
# snapshot restores to exactly the content it was taken from (tags name the expected content).
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd python3 sha256sum
cd "$WORK"
export COFFER_KDF="argon2id:ops=1,mem=8192"
REPO=$WORK/repo
c() { "$COFFER" -r "$REPO" "$@"; }
c init --pack-size 1 >/dev/null

# make_dir DIR ROUND: deterministic content for (dir, round); shared part dedups across dirs
make_dir() {
    local d=$1 r=$2
    rm -rf "$d"
    mkdir -p "$d/sub"
    python3 - "$d" "$r" <<'PY'
import os, sys, random
d, r = sys.argv[1], int(sys.argv[2])
shared = random.Random(1).randbytes(1500000)
own = random.Random(hash((d, r)) & 0xffffffff).randbytes(900000)
open(os.path.join(d, "shared.bin"), "wb").write(shared)
open(os.path.join(d, "own.bin"), "wb").write(own)
open(os.path.join(d, "sub", "note.txt"), "w").write(f"{d} round {r}\n" * 100)
PY
    (cd "$d" && find . -type f | sort | xargs sha256sum) >"sums-$d-$r"
}

rounds=3
for r in $(seq 1 $rounds); do
    step "round $r: 3 backups + forget + prune at once"
    for d in a b c; do make_dir "$d" "$r"; done
    pids=()
    for d in a b c; do
        c -q backup "$d" --tag "$d-$r" >"bk-$d-$r.log" 2>&1 &
        pids+=($!)
    done
    (c -q forget --keep-last 2 >/dev/null 2>&1; c -q prune >"prune-$r.log" 2>&1) &
    pids+=($!)
    for p in "${pids[@]}"; do
        wait "$p" || fail "a concurrent command failed (round $r): $(cat bk-*-$r.log prune-$r.log 2>/dev/null)"
    done
done

step "one more prune with nothing running: sweeps what waited"
c -q prune >/dev/null || fail "final prune"

step "check --read-data"
c check --read-data >check.log 2>&1 || fail "check --read-data: $(cat check.log)"

step "every snapshot restores to the content it was taken from"
c --json snapshots >snaps.json
python3 -c '
import json
for s in json.load(open("snaps.json")):
    print(s["id"], s["tags"][0] if s["tags"] else "-")
' >list.txt
n=$(wc -l <list.txt)
[ "$n" -ge 2 ] || fail "expected snapshots to remain, found $n"
while read -r id tag; do
    [ "$tag" != "-" ] || continue
    d=${tag%-*}
    rnd=${tag#*-}
    rm -rf "out"
    c restore "$id" --target out >/dev/null || fail "restore of $id ($tag)"
    (cd "out/$d" && find . -type f | sort | xargs sha256sum) >got.sums
    cmp -s got.sums "sums-$d-$rnd" || fail "snapshot $id ($tag) restored the wrong content"
done <list.txt
echo "concurrency ok ($n snapshots verified)"
