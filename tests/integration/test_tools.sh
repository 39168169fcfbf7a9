#!/bin/bash
# test_tools.sh -- the test tools themselves: mktree.py is deterministic and treecmp.py accepts
# identical trees and catches each kind of difference a broken restore could make.
#
# Needs no coffer binary. Root adds the device node and owner checks.
. "$(dirname "$0")/lib.sh"

need_cmd python3 cp
cd "$WORK"

treecmp() {
    python3 "$TREECMP" "$@"
}

# expect_diff PATTERN [TREECMP ARGS...]: treecmp must exit 1 and print a line matching PATTERN.
expect_diff() {
    local pattern=$1 rc=0
    shift
    treecmp "$@" >out.txt 2>&1 || rc=$?
    cat out.txt
    [ "$rc" -eq 1 ] || fail "treecmp $* exited $rc, expected 1 (a difference)"
    grep -qE -- "$pattern" out.txt || fail "treecmp output does not match '$pattern'"
}

# fresh_copy: C becomes an exact copy of A (cp -a keeps owners, modes, times, xattrs, ACLs,
# hardlinks; it does not keep A's atimes, hence --no-atime when comparing with C).
fresh_copy() {
    chmod -R u+rwX C 2>/dev/null || true
    rm -rf C
    cp -a A C
}

step "mktree is deterministic: two trees from one seed compare equal, atimes included"
python3 "$MKTREE" A --seed 3
python3 "$MKTREE" B --seed 3
treecmp A B
treecmp A B # comparing must not disturb what it compares
[ -p A/special/fifo ] || fail "no fifo"
[ -S A/special/socket ] || fail "no socket"
[ -L A/links/dangling ] || fail "no dangling symlink"
[ "$(stat -c %i A/files/hardlink-a)" = "$(stat -c %i A/links/hardlink-b)" ] ||
    fail "no hardlink across directories"
alloc=$(($(stat -c %b A/files/sparse-64m) * 512))
[ "$alloc" -lt $((4 * 1024 * 1024)) ] || fail "sparse file takes $alloc bytes"
TZ=UTC stat -c %y A/times/nanos | grep -q '^2009-02-13 23:31:30\.987654321 ' ||
    fail "times/nanos has mtime $(stat -c %y A/times/nanos), expected ns precision"
if [ "$(id -u)" = 0 ]; then
    [ -c A/special/null ] || fail "no char device as root"
    assert_eq "$(stat -c %u:%g A/owners/foreign)" 1234:5678 "owner of owners/foreign"
fi

step "atimes of regular files are compared unless --no-atime"
touch -a -d @1000000000 B/files/empty
expect_diff '^files/empty: atime_ns differs' A B
[ "$(wc -l <out.txt)" -eq 2 ] || fail "more than the one atime differs"
treecmp --no-atime A B

step "a different seed gives a different tree"
python3 "$MKTREE" D --seed 4
expect_diff 'content|mtime_ns' A D

step "mktree refuses a non-empty directory"
assert_exit 2 python3 "$MKTREE" A --seed 3

step "cp -a copy compares equal (without atimes)"
fresh_copy
treecmp --no-atime A C

step "each kind of difference is caught"
fresh_copy
chmod 0644 C/files/text.txt
expect_diff '^files/text.txt: mode differs: A=0600 B=0644' --no-atime A C

fresh_copy
printf 'X' | dd of=C/files/random-3m bs=1 seek=1000 conv=notrunc status=none
touch -r A/files/random-3m C/files/random-3m
expect_diff '^files/random-3m: content \(sha256\) differs' --no-atime A C

fresh_copy
printf 'extra' >>C/files/one-byte
touch -r A/files/one-byte C/files/one-byte
expect_diff '^files/one-byte: size differs' --no-atime A C

fresh_copy
touch -h -d "@$(stat -c %Y C/links/rel).000000001" C/links/rel
expect_diff '^links/rel: mtime_ns differs' --no-atime A C

fresh_copy
ln -sfn ../files/empty C/links/rel
touch -h -r A/links/rel C/links/rel
touch -r A/links C/links
expect_diff '^links/rel: symlink target differs' --no-atime A C

fresh_copy
setfattr -n user.comment -v changed C/files/100k 2>/dev/null ||
    python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.comment", b"changed")' \
        C/files/100k
expect_diff '^files/100k: xattr user.comment differs' --no-atime A C

fresh_copy
cp -p C/links/hardlink-b C/links/hardlink-b.tmp
mv C/links/hardlink-b.tmp C/links/hardlink-b
touch -r A/links C/links
expect_diff '^hardlinks: names sharing an inode in A do not in B' --no-atime A C

fresh_copy
cp --sparse=never -p A/files/sparse-64m C/files/sparse-64m
expect_diff '^files/sparse-64m: sparseness' --no-atime A C

fresh_copy
rm C/names/with\ space
touch -r A/names C/names
expect_diff '^names/with space: only in A' --no-atime A C

fresh_copy
mkfifo C/files/extra-fifo
touch -r A/files C/files
expect_diff '^files/extra-fifo: only in B' --no-atime A C

fresh_copy
rm C/special/fifo
touch C/special/fifo
touch -r A/special/fifo C/special/fifo
chmod --reference=A/special/fifo C/special/fifo
touch -r A/special C/special
expect_diff '^special/fifo: type differs: A=fifo B=file' --no-atime A C

if [ "$(id -u)" = 0 ]; then
    step "owners and device numbers (root)"
    fresh_copy
    chown -h 1:1 C/owners/link
    expect_diff '^owners/link: owner differs: A=4321:8765 B=1:1' --no-atime A C
    treecmp --no-atime --no-owner A C
    fresh_copy
    rm C/special/null
    mknod C/special/null c 1 5
    chmod 0666 C/special/null
    touch -r A/special/null C/special/null
    touch -r A/special C/special
    expect_diff '^special/null: device differs: A=1,3 B=1,5' --no-atime A C
fi

step "usage errors exit 2"
assert_exit 2 python3 "$TREECMP" A no-such-dir
echo "test_tools: OK"
