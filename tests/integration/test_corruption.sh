#!/bin/bash
# test_corruption.sh -- `coffer check` detects every kind of damage injected into a repository
# (bit flip, truncation, missing pack, damaged index segment, snapshot and key slot, wrong
# password), names the damaged object and the snapshots it affects, and what is undamaged
# still lists and restores.
#
# Builds one repository with three snapshots of different trees (files > 1 MiB, so several
# blobs), records which packs each backup wrote, then damages a fresh copy (cp -a) per case.
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd python3 cp diff truncate
export COFFER_KDF="argon2id:ops=1,mem=8192"
cd "$WORK" || exit 1

# coffer REPO ARGS...: run the binary against a repository
cf() {
    local repo=$1
    shift
    "$COFFER" -r "$repo" "$@"
}

# run_rc OUT CMD...: run CMD with stdout+stderr into OUT; print its exit status
run_rc() {
    local out=$1 rc=0
    shift
    "$@" >"$out" 2>&1 || rc=$?
    echo "$rc"
}

# expect OUT PATTERN WHAT: OUT must contain PATTERN (fixed string)
expect() {
    grep -qF -- "$2" "$1" || {
        cat "$1" >&2
        fail "$3: output does not mention '$2'"
    }
}

# refute OUT PATTERN WHAT: OUT must not contain PATTERN
refute() {
    if grep -qF -- "$2" "$1"; then
        cat "$1" >&2
        fail "$3: output mentions '$2'"
    fi
}

# flip_bit FILE [OFFSET]: invert one bit (default: in the middle of the file)
flip_bit() {
    chmod u+w "$1"
    python3 - "$1" "${2:-}" <<'EOF'
import os, sys
path, off = sys.argv[1], sys.argv[2]
size = os.path.getsize(path)
off = int(off) if off else size // 2
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x10]))
EOF
}

# mkfiles DIR SEED: a small tree with a few small files and two random files > 1 MiB
mkfiles() {
    python3 - "$1" "$2" <<'EOF'
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
os.makedirs(os.path.join(root, "sub", "deeper"))
for i in range(5):
    with open(os.path.join(root, "small-%d.txt" % i), "w") as f:
        f.write("seed %d file %d\n" % (seed, i) * (i * 50 + 1))
with open(os.path.join(root, "sub", "big.bin"), "wb") as f:
    f.write(rnd.randbytes(3 * 1024 * 1024 + 12345))
with open(os.path.join(root, "sub", "deeper", "big2.bin"), "wb") as f:
    f.write(rnd.randbytes(1536 * 1024))
with open(os.path.join(root, "sub", "deeper", "text.txt"), "w") as f:
    f.write("".join("line %d of tree %d\n" % (i, seed) for i in range(20000)))
EOF
}

packs() {
    (cd "$1" && find data -type f | sort)
}

# snapshot id (full hex) of the backup of path P, from `snapshots --json`
snap_of() {
    cf "$1" snapshots --json | python3 -c '
import json, sys
want = sys.argv[1]
for s in json.load(sys.stdin):
    if any(p.rstrip("/").endswith("/" + want) for p in s["paths"]):
        print(s["id"])
' "$2"
}

# restore_ok REPO SNAP SRC: restoring SNAP reproduces directory SRC
restore_ok() {
    local t
    t=$(mktemp -d "$WORK/restore.XXXXXX")
    cf "$1" restore "$2" --target "$t" >"$t.log" 2>&1 || {
        cat "$t.log" >&2
        fail "restore of $2 from $1 failed"
    }
    diff -r "$3" "$t/$(basename "$3")" >/dev/null || fail "restore of $2 differs from $3"
    rm -rf "$t" "$t.log"
}

# fresh NAME: a pristine copy of the repository
fresh() {
    rm -rf "$1"
    cp -a repo "$1"
}

step "a repository with three snapshots of different trees"
mkfiles src1 1
mkfiles src2 2
mkfiles src3 3
cf repo init >/dev/null
cf repo backup "$WORK/src1" --tag one >/dev/null
packs repo >p1.txt
cf repo backup "$WORK/src2" --tag two >/dev/null
packs repo >p12.txt
cf repo backup "$WORK/src3" --tag three >/dev/null
packs repo >p123.txt
comm -13 p1.txt p12.txt >new2.txt
comm -13 p12.txt p123.txt >new3.txt
[ -s new2.txt ] && [ -s new3.txt ] || fail "backups 2 and 3 wrote no new packs"
S1=$(snap_of repo src1)
S2=$(snap_of repo src2)
S3=$(snap_of repo src3)
[ -n "$S1" ] && [ -n "$S2" ] && [ -n "$S3" ] || fail "cannot find the three snapshots"
# the largest pack a backup wrote holds its data blobs
largest() {
    (cd repo && xargs -d '\n' ls -S <"../$1" | head -1)
}
P2=$(largest new2.txt)
P3=$(largest new3.txt)
[ "$(stat -c %s "repo/$P3")" -gt $((1024 * 1024)) ] || fail "no data pack > 1 MiB in backup 3"

step "an undamaged repository passes check and check --read-data"
assert_eq "$(run_rc out.txt cf repo check)" 0 "check exit"
expect out.txt "no errors were found" "check"
assert_eq "$(run_rc out.txt cf repo check --read-data)" 0 "check --read-data exit"
expect out.txt "no errors were found" "check --read-data"
expect out.txt "read $(wc -l <p123.txt) pack" "check --read-data"
assert_eq "$(run_rc out.txt cf repo check --read-data-subset 50%)" 0 "subset 50% exit"
assert_eq "$(run_rc out.txt cf repo check --read-data-subset 2/3)" 0 "subset 2/3 exit"
assert_eq "$(run_rc out.txt cf repo --json check)" 0 "check --json exit"
python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
s = [l for l in lines if l.get("message_type") == "summary"]
assert len(s) == 1 and s[0]["ok"] is True and s[0]["errors"] == 0 and s[0]["snapshots"] == 3, s
' out.txt || fail "check --json: no summary object saying ok"
assert_exit 2 cf repo check --read-data-subset 0%
assert_exit 2 cf repo check --read-data-subset 4/3

step "(a) a flipped bit in the middle of a pack"
fresh ra
flip_bit "ra/$P3"
rc=$(run_rc out.txt cf ra check)
[ "$rc" = 0 ] || expect out.txt "$P3" "(a) structure check"
assert_eq "$(run_rc out.txt cf ra check --read-data)" 1 "(a) check --read-data exit"
expect out.txt "error: pack $P3 is damaged" "(a) check --read-data"
expect out.txt "${S3:0:8}" "(a) affected snapshot"
refute out.txt "${S1:0:8}" "(a) unaffected snapshot"
expect out.txt "1 error" "(a) summary"
assert_eq "$(run_rc out.txt cf ra check --read-data-subset 100%)" 1 "(a) subset 100% exit"
expect out.txt "$P3" "(a) subset 100%"
assert_eq "$(run_rc out.txt cf ra --json check --read-data)" 1 "(a) --json exit"
python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
f = [l for l in lines if l.get("message_type") == "finding" and l["severity"] == "error"]
assert len(f) == 1 and f[0]["object"] == sys.argv[2] and sys.argv[3] in f[0]["snapshots"], f
' out.txt "$P3" "$S3" || fail "(a) --json finding does not name the pack and snapshot"
restore_ok ra "$S1" src1

step "(b) a truncated pack"
fresh rb
chmod u+w "rb/$P2"
truncate -s $(($(stat -c %s "rb/$P2") / 2)) "rb/$P2"
assert_eq "$(run_rc out.txt cf rb check)" 1 "(b) check exit"
expect out.txt "error: pack $P2 is damaged: it is truncated" "(b) check"
expect out.txt "${S2:0:8}" "(b) affected snapshot"
assert_eq "$(run_rc out.txt cf rb check --read-data)" 1 "(b) check --read-data exit"
expect out.txt "$P2" "(b) check --read-data"
restore_ok rb "$S1" src1

step "(c) a deleted pack"
fresh rc
rm -f "rc/$P3"
assert_eq "$(run_rc out.txt cf rc check)" 1 "(c) check exit"
expect out.txt "error: pack $P3 is missing" "(c) check"
expect out.txt "${S3:0:8}" "(c) affected snapshot"
refute out.txt "${S1:0:8}" "(c) unaffected snapshot"
restore_ok rc "$S1" src1
restore_ok rc "$S2" src2

step "(d) a flipped bit in an index segment"
fresh rd
SEG=$(cd rd && find index -type f | head -1)
flip_bit "rd/$SEG"
assert_eq "$(run_rc out.txt cf rd check)" 1 "(d) check exit"
expect out.txt "error: $SEG is damaged" "(d) check"

step "(e) a flipped bit in a snapshot object"
fresh re
flip_bit "re/snapshots/$S2"
assert_eq "$(run_rc out.txt cf re check)" 1 "(e) check exit"
expect out.txt "error: snapshots/$S2 is damaged" "(e) check"
expect out.txt "${S2:0:8}" "(e) the snapshot is named as affected"
rc=$(run_rc out.txt cf re snapshots)
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "(e) snapshots exited $rc"
expect out.txt "${S1:0:8}" "(e) snapshots"
expect out.txt "${S3:0:8}" "(e) snapshots"
restore_ok re "$S1" src1
restore_ok re "$S3" src3

step "(f) damaged key slots"
fresh rf
ls rf/keys >keys1.txt
rc=$(COFFER_NEW_PASSWORD=second-password run_rc out.txt cf rf key add)
if [ "$rc" = 0 ] && [ "$(ls rf/keys | wc -l)" = 2 ]; then
    FIRST=$(cat keys1.txt)
    flip_bit "rf/keys/$FIRST" 10
    COFFER_PASSWORD=second-password cf rf snapshots >out.txt 2>&1 ||
        fail "(f) opening with the undamaged slot failed: $(cat out.txt)"
    expect out.txt "${S1:0:8}" "(f) snapshots with the second key"
    assert_eq "$(COFFER_PASSWORD=second-password run_rc out.txt cf rf check)" 1 "(f) check exit"
    expect out.txt "error: key slot keys/$FIRST is damaged" "(f) check"
else
    echo "NOTE: \`coffer key add\` is not available (exit $rc): two-slot case skipped"
fi
fresh rf1
flip_bit "rf1/keys/$(ls rf1/keys | head -1)" 10
rc=$(run_rc out.txt cf rf1 snapshots)
[ "$rc" != 0 ] || fail "(f) a repository whose only key slot is damaged opened"
grep -qiE 'key slot.*damaged|damaged.*key' out.txt || {
    cat out.txt >&2
    fail "(f) the error for a damaged only key slot does not say so"
}

step "(g) a wrong password"
assert_eq "$(COFFER_PASSWORD=not-the-password run_rc out.txt cf repo check)" 12 \
    "(g) wrong password exit"
grep -qi password out.txt || fail "(g) the error does not mention the password: $(cat out.txt)"

step "the undamaged repository still passes"
assert_eq "$(run_rc out.txt cf repo check --read-data)" 0 "final check exit"
