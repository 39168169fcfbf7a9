#!/bin/bash
# test_roundtrip.sh -- restore(backup(x)) == x for content and metadata, on a generated tree
# with every file type (mktree.py), then incremental behaviour: an unchanged re-backup reads
# nothing and yields the same root tree (determinism), a changed file is read again, and
# --include restores a subset.
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd python3
cd "$WORK"
export COFFER_KDF="argon2id:ops=1,mem=8192"
REPO=$WORK/repo
c() { "$COFFER" -r "$REPO" "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

step "generate a tree with every file type"
python3 "$MKTREE" src --seed 7 >/dev/null
owner=()
[ "$(id -u)" = 0 ] || owner=(--no-owner)

step "init and first backup"
c init >/dev/null
c --json backup src --tag first >b1.json
s1=$(jget 'd["id"]' <b1.json)
[ "$(jget 'd["summary"]["files_unchanged"]' <b1.json)" = 0 ] || fail "first backup reused files"

step "restore and compare content and metadata"
c restore latest --target out1 >/dev/null
python3 "$TREECMP" src out1/src --no-atime "${owner[@]}" || fail "restored tree differs"

step "unchanged re-backup reads nothing and gives the same tree (determinism)"
c --json backup src >b2.json
assert_eq "$(jget 'd["summary"]["bytes_read"]' <b2.json)" 0 "bytes read on unchanged re-backup"
assert_eq "$(jget 'd["summary"]["files_new"]+d["summary"]["files_changed"]' <b2.json)" 0 \
    "files read on unchanged re-backup"
assert_eq "$(jget 'd["tree"]' <b2.json)" "$(jget 'd["tree"]' <b1.json)" "root tree id"
assert_eq "$(jget 'd["summary"]["bytes_added"]' <b2.json)" 0 "bytes added"

step "a fresh repository gives other ids; --force re-reads but stores nothing new"
c --json backup --force src >b3.json
assert_eq "$(jget 'd["summary"]["bytes_added"]' <b3.json)" 0 "bytes added with --force"
assert_eq "$(jget 'd["tree"]' <b3.json)" "$(jget 'd["tree"]' <b1.json)" "tree id with --force"

step "change one file: only it is read"
find src -type f -name 'compressible*' | head -1 >changed.txt
f=$(cat changed.txt)
[ -n "$f" ] || f=$(find src -type f -size +10k | head -1)
echo "appended" >>"$f"
c --json backup src >b4.json
assert_eq "$(jget 'd["summary"]["files_changed"]' <b4.json)" 1 "changed files"
c restore latest --target out4 >/dev/null
python3 "$TREECMP" src out4/src --no-atime "${owner[@]}" || fail "restore after change differs"

step "the first snapshot still restores as it was"
c restore "${s1:0:8}" --target out1b >/dev/null
cmp -s "out1b/$f" "$f" && fail "old snapshot shows the new content of $f"

step "--include restores a subset"
sub=$(ls src | head -1)
c restore latest --target out5 --include "/src/$sub" >/dev/null
[ -e "out5/src/$sub" ] || fail "included path missing"
n=$(ls out5/src | wc -l)
assert_eq "$n" 1 "entries restored with --include"

step "dump one file to stdout"
rel=${f#src/}
c dump latest "/src/$rel" >dumped
cmp dumped "$f" || fail "dump differs from the file"

step "exit codes: missing repository 10, wrong password 12, unknown snapshot 1"
assert_exit 10 "$COFFER" -r "$WORK/nothing" snapshots
COFFER_PASSWORD=wrong assert_exit 12 "$COFFER" -r "$REPO" snapshots
assert_exit 1 "$COFFER" -r "$REPO" restore ffffffff --target x
assert_exit 2 "$COFFER" -r "$REPO" backup
echo "roundtrip ok"
