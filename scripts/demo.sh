#!/bin/bash
# demo.sh -- a first run of coffer: back a small directory up into a local repository,
# list the snapshot, restore it elsewhere and show that the restore is identical.
#
# Usage: scripts/demo.sh [BUILD_DIR]     (default: build; `make demo` builds and runs this)
#
# Everything happens in demo-work/ at the top of the source tree (git-ignored), which is
# recreated on each run. Uses only the command-line contract of DESIGN.md section 9: the
# repository is given with -r, the password through COFFER_PASSWORD.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
[ -d "$build" ] || build=$root/$build
coffer=$(cd "$build" 2>/dev/null && pwd)/coffer
if [ ! -x "$coffer" ]; then
    echo "demo: no coffer binary in $build; run 'make build' first" >&2
    exit 1
fi

work=$root/demo-work
repo=$work/repo
sample=$work/sample
target=$work/restore
export COFFER_PASSWORD=demo-password-not-a-secret
unset COFFER_REPOSITORY COFFER_PASSWORD_FILE

run() {
    echo
    echo "\$ coffer $*"
    "$coffer" "$@"
}

chmod -R u+rwX "$work" 2>/dev/null || true
rm -rf "$work"
mkdir -p "$sample"

echo "demo: creating a sample directory in $sample"
mkdir -p "$sample/docs/notes" "$sample/data" "$sample/empty-dir"
printf 'coffer demo\n\nThis directory was backed up and restored by coffer.\n' >"$sample/README"
printf 'first note\n' >"$sample/docs/notes/one.txt"
printf 'second note\n' >"$sample/docs/notes/two.txt"
: >"$sample/docs/empty-file"
head -c 3000000 /dev/urandom >"$sample/data/random.bin"
for i in $(seq 1 20000); do echo "line $i of a compressible log file"; done >"$sample/data/app.log"
cp "$sample/data/random.bin" "$sample/data/random-copy.bin" # deduplicated in the repository
ln -s docs/notes/one.txt "$sample/link-to-note"
chmod 0750 "$sample/data"
chmod 0600 "$sample/docs/notes/two.txt"
touch -d '2020-02-29 12:34:56.123456789' "$sample/README"

run -r "$repo" init
run -r "$repo" backup "$sample" --tag demo
run -r "$repo" snapshots
run -r "$repo" restore latest --target "$target"

# Where the restored copy of $sample lands: under its full path (as restic does) or by name.
restored=
for cand in "$target$sample" "$target/$(basename "$sample")" "$target"; do
    if [ -f "$cand/README" ] && [ -d "$cand/docs/notes" ]; then
        restored=$cand
        break
    fi
done
if [ -z "$restored" ]; then
    echo "demo: FAILED: cannot find the restored sample under $target" >&2
    find "$target" -maxdepth 4 >&2 || true
    exit 1
fi

echo
echo "\$ diff -r --no-dereference sample restored"
diff -r --no-dereference "$sample" "$restored"
echo "\$ treecmp.py sample restored"
# Reading files for the backup may move their atimes (relatime), so those are not compared.
python3 "$root/tests/tools/treecmp.py" --no-atime "$sample" "$restored"

echo
echo "demo OK: restore is identical"
