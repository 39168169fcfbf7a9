#!/bin/bash
# test_inspect.sh -- the commands that look into a repository: ls, diff, stats, dump, and the
# key slot commands (list, add, remove, passwd) with the exit codes they promise.
#
# Two backups of a small tree with known changes between them; every check compares against
# exact expected output (paths, change letters, bytes of dumped files).
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd python3 cmp
cd "$WORK"
export COFFER_KDF="argon2id:ops=1,mem=8192"
REPO=$WORK/repo
c() { "$COFFER" -r "$REPO" "$@"; }

# json_lines FILE: every line of FILE parses as a JSON object
json_lines() {
    python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    assert isinstance(json.loads(line), dict), line
    n += 1
assert n > 0, "no output"
' "$1" || fail "$1 is not JSON lines: $(head -c 400 "$1")"
}

step "a tree and two backups with known changes"
mkdir -p data/sub/deep
echo "alpha" >data/a.txt
head -c 2500000 /dev/urandom >data/big
echo "bravo" >data/sub/b.txt
echo "charlie" >data/sub/deep/c.txt
echo "to be removed" >data/gone.txt
ln -s a.txt data/link
# sparse: a hole, data, a hole at the end
truncate -s 3M data/sparse
printf 'in the middle' | dd of=data/sparse bs=1 seek=1048576 conv=notrunc status=none
touch -d @1600000000 data
cp data/a.txt a-v1.txt

c init >init.log
c backup data >backup1.log
S1=$(c --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')

echo "more" >>data/a.txt
rm data/gone.txt
mkdir data/new
echo "new file" >data/new/f.txt
chmod 600 data/big
touch -d @1700000000 data
c backup data >backup2.log
S2=$(c --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
[ "$S1" != "$S2" ] || fail "the second backup made no new snapshot"

step "ls lists every path, -l shows modes and link targets"
c ls latest >ls2.txt
cat >ls2.want <<'EOF'
/data
/data/a.txt
/data/big
/data/link
/data/new
/data/new/f.txt
/data/sparse
/data/sub
/data/sub/b.txt
/data/sub/deep
/data/sub/deep/c.txt
EOF
diff -u ls2.want ls2.txt || fail "ls latest"
c ls "${S1:0:8}" >ls1.txt
grep -qx /data/gone.txt ls1.txt || fail "ls of the first snapshot lacks /data/gone.txt"
c ls -l latest >ll.txt
grep -qE '^-rw------- .* 2500000 .* /data/big$' ll.txt || fail "ls -l: big: $(grep big ll.txt)"
grep -qE '^lrwxrwxrwx .* /data/link -> a\.txt$' ll.txt || fail "ls -l: link: $(grep link ll.txt)"
grep -qE '^drwx.* /data/sub$' ll.txt || fail "ls -l: sub"
c ls latest /data/sub >sub.txt
printf '/data/sub\n/data/sub/b.txt\n/data/sub/deep\n/data/sub/deep/c.txt\n' >sub.want
diff -u sub.want sub.txt || fail "ls latest /data/sub"
c ls --no-recursive latest /data/sub >subn.txt
printf '/data/sub\n/data/sub/b.txt\n/data/sub/deep\n' >subn.want
diff -u subn.want subn.txt || fail "ls --no-recursive latest /data/sub"
assert_exit 1 c ls latest /data/nothing
assert_exit 1 c ls ffffffffff
assert_exit 2 c ls

step "ls --json: one object per node"
c --json ls latest >ls.json
json_lines ls.json
python3 - ls.json <<'EOF' || fail "ls --json content"
import json, sys
nodes = {o["path"]: o for o in map(json.loads, open(sys.argv[1]))}
assert len(nodes) == 11, len(nodes)
big = nodes["/data/big"]
assert big["type"] == "file" and big["size"] == 2500000 and big["mode"] == 0o600, big
for k in ("uid", "gid", "user", "group", "mtime"):
    assert k in big, k
assert nodes["/data/link"]["type"] == "symlink"
assert nodes["/data/link"]["link_target"] == "a.txt"
assert nodes["/data/sub"]["type"] == "dir"
assert "link_target" not in big
EOF

step "diff shows exactly what changed"
c diff "$S1" "$S2" >diff.txt
cat diff.txt
cat >diff.want <<'EOF'
U /data
M /data/a.txt
U /data/big
- /data/gone.txt
+ /data/new
+ /data/new/f.txt
EOF
head -n -1 diff.txt >diff.lines
diff -u diff.want diff.lines || fail "diff lines"
tail -n 1 diff.txt | grep -q '^2 added, 1 removed, 1 modified, 2 metadata only, 0 type changed;' ||
    fail "diff summary: $(tail -n 1 diff.txt)"
c --json diff "$S1" "$S2" >diff.json
json_lines diff.json
python3 - diff.json <<'EOF' || fail "diff --json content"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
changes = [(o["path"], o["change"]) for o in lines[:-1]]
assert changes == [("/data", "metadata"), ("/data/a.txt", "modified"), ("/data/big", "metadata"),
                   ("/data/gone.txt", "removed"), ("/data/new", "added"),
                   ("/data/new/f.txt", "added")], changes
s = lines[-1]
assert (s["added"], s["removed"], s["modified"], s["metadata"], s["type_changed"]) == \
    (2, 1, 1, 2, 0), s
assert s["bytes_added"] == len("alpha\nmore\n") + len("new file\n"), s
assert s["bytes_removed"] == len("alpha\n") + len("to be removed\n"), s
EOF
c diff "$S2" "$S2" >same.txt
assert_eq "$(cat same.txt)" \
    "0 added, 0 removed, 0 modified, 0 metadata only, 0 type changed; 0 B added, 0 B removed" \
    "diff of a snapshot with itself"
c diff "$S2" "$S1" >rev.txt
grep -qx '+ /data/gone.txt' rev.txt || fail "reverse diff lacks + /data/gone.txt"
grep -qx -- '- /data/new/f.txt' rev.txt || fail "reverse diff lacks - /data/new/f.txt"

step "stats: repository totals and per snapshot"
c stats >stats.txt
cat stats.txt
grep -qE 'snapshots: +2$' stats.txt || fail "stats: snapshot count"
c --json stats >stats.json
json_lines stats.json
python3 - stats.json <<'EOF' || fail "stats --json content"
import json, sys
s = json.load(open(sys.argv[1]))
one = 6 + 2500000 + 6 + 8 + 14 + 3 * 1048576    # a, big, b, c, gone, sparse
two = 11 + 2500000 + 6 + 8 + 9 + 3 * 1048576    # a, big, b, c, f, sparse
assert s["snapshots"] == 2 and s["restore_size"] == one + two, s
assert s["packs"] >= 2 and s["stored_bytes"] > 2500000, s
assert s["data_blobs"] >= 7 and s["tree_blobs"] >= 4, s
assert s["dedup_ratio"] > 1.5, s
EOF
c stats latest >stats2.txt
grep -qE 'files: +6$' stats2.txt || fail "stats latest: $(cat stats2.txt)"
c --json stats --mode raw-data "$S1" "$S2" latest >raw.json
json_lines raw.json
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert len(s["snapshots"]) == 2 and "restore_size" not in s and s["raw_bytes"] > 2500000, s
' raw.json || fail "stats --mode raw-data"
c --json stats --mode restore-size >rs.json
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["files"] == 12 and "raw_bytes" not in s, s
' rs.json || fail "stats --mode restore-size"
assert_exit 2 c stats --mode bogus

step "dump writes a file byte for byte"
c dump latest /data/big >big.out
cmp big.out data/big
c dump latest /data/sparse >sparse.out
cmp sparse.out data/sparse
c dump "$S1" /data/a.txt >a1.out
cmp a1.out a-v1.txt
c dump latest /a.txt >a2.out # one root entry: its name may be left out
cmp a2.out data/a.txt
c dump latest /data/sub/deep/c.txt | grep -qx charlie || fail "dump c.txt"
rc=0
c dump latest /data/sub >dir.out 2>dir.err || rc=$?
assert_eq "$rc" 1 "exit code of dump of a directory"
grep -q 'coffer restore' dir.err || fail "dump of a directory does not suggest restore"
rc=0
c dump latest /data/missing >miss.out 2>miss.err || rc=$?
assert_eq "$rc" 1 "exit code of dump of a missing path"
grep -q '/data/missing' miss.err || fail "dump of a missing path does not name it"
[ ! -s miss.out ] || fail "dump of a missing path wrote to stdout"

step "key add: both passwords open the repository"
c key list >keys.txt
assert_eq "$(grep -c '^\*' keys.txt)" 1 "current markers in key list"
COFFER_NEW_PASSWORD=second-pw c key add >add.txt
c snapshots >/dev/null
COFFER_PASSWORD=second-pw c snapshots >/dev/null
c --json key list >keys.json
python3 -c '
import json, sys
k = json.load(open(sys.argv[1]))
assert len(k) == 2 and sum(x["current"] for x in k) == 1, k
assert all(x["kdf"] == "argon2id" and len(x["short_id"]) == 8 for x in k), k
' keys.json || fail "key list --json"
FIRST=$(python3 -c 'import json,sys; print([x["id"] for x in json.load(open(sys.argv[1])) if x["current"]][0])' keys.json)

step "the key in use cannot be removed; another one can"
rc=0
c key remove "${FIRST:0:8}" 2>rm.err || rc=$?
assert_eq "$rc" 1 "exit code removing the current key"
grep -q 'another password' rm.err || fail "refusal does not say to open with another password"
assert_exit 2 c key remove ab
assert_exit 1 c key remove 0000000
COFFER_PASSWORD=second-pw c key remove "${FIRST:0:8}"
assert_exit 12 c snapshots
COFFER_PASSWORD=second-pw c key list >keys2.txt
grep -qE '^1 key slot' keys2.txt || fail "after remove: $(cat keys2.txt)"

step "key passwd leaves exactly one working password"
COFFER_PASSWORD=second-pw COFFER_NEW_PASSWORD=third-pw c key passwd >passwd.txt
grep -q 'password changed' passwd.txt || fail "key passwd output: $(cat passwd.txt)"
COFFER_PASSWORD=third-pw c snapshots >/dev/null
assert_exit 12 env COFFER_PASSWORD=second-pw "$COFFER" -r "$REPO" snapshots
assert_exit 12 c snapshots
COFFER_PASSWORD=third-pw c key list >keys3.txt
grep -qE '^1 key slot' keys3.txt || fail "after passwd: $(cat keys3.txt)"
rc=0
COFFER_PASSWORD=third-pw c key remove "$(grep '^\*' keys3.txt | awk '{print $2}')" || rc=$?
assert_eq "$rc" 1 "exit code removing the last key"

step "wrong password exits 12 for every inspecting command"
export COFFER_PASSWORD=wrong-password
for cmd in "ls latest" "diff $S1 $S2" "stats" "dump latest /data/a.txt" "key list"; do
    # shellcheck disable=SC2086
    assert_exit 12 c $cmd
done
echo "all inspect checks passed"
