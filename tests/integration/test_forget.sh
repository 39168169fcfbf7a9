#!/bin/bash
# test_forget.sh -- `coffer forget`: policies per group (host + paths + job), --dry-run,
# --keep-tag, --group-by, explicit ids (all resolved before anything is removed), failed
# snapshots, usage errors, --json output, and a restore of a kept snapshot after --prune
# (skipped while `coffer prune` is not built).
. "$(dirname "$0")/lib.sh"

need_cmd python3
require_coffer
export COFFER_KDF="argon2id:ops=1,mem=8192"
cd "$WORK"

c() {
    "$COFFER" -r "$WORK/repo" "$@"
}

# ids [python filter on snapshot s]: full ids of the matching snapshots, oldest first
ids() {
    c --json snapshots | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if eval(sys.argv[1]):
        print(s["id"])' "${1:-True}"
}

count() {
    ids "${1:-True}" | wc -l
}

backup() {
    echo "$RANDOM $*" >>data/file.txt
    c -q backup data "$@"
}

mkdir data
echo one >data/file.txt
mkdir data/sub && echo two >data/sub/b.txt

step "init and 7 snapshots in two groups"
c init >/dev/null
backup --tag x
backup
backup
backup
backup --host other
backup --host other
backup --host other
assert_eq "$(count)" 7 "snapshots"
host=$(c --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["host"])')
[ "$host" != other ] || fail "this machine is called \"other\": the test needs another name"

step "usage errors: no policy and no ids, ids and a policy, bad counts and durations"
assert_exit 2 c forget
assert_exit 2 c forget --keep-last 1 abcd
assert_exit 2 c forget --keep-last x
assert_exit 2 c forget --keep-daily -2
assert_exit 2 c forget --keep-within 7
assert_exit 2 c forget --keep-within 7q
assert_exit 2 c forget --group-by hosts --keep-last 1
assert_eq "$(count)" 7 "snapshots after usage errors"

step "--dry-run removes nothing"
c forget --keep-last 2 --dry-run >out.txt
cat out.txt
grep -q "would remove 3 snapshots" out.txt || fail "dry run does not announce 3 removals"
assert_eq "$(count)" 7 "snapshots after --dry-run"

step "--json plan: one object per group, reasons for kept snapshots, tagged kept by --keep-tag"
c --json forget --keep-last 2 --keep-tag x --dry-run >plan.json
tagged=$(ids '"x" in s["tags"]')
python3 - "$tagged" plan.json <<'EOF'
import json, sys
tagged = sys.argv[1]
groups = json.load(open(sys.argv[2]))
assert len(groups) == 2, groups
by = {g["group"].split(" ")[0]: g for g in groups}
assert "host=other" in by, by.keys()
mine = [g for k, g in by.items() if k != "host=other"][0]
assert len(mine["keep"]) == 3 and len(mine["remove"]) == 1, mine
assert tagged in mine["keep"] and mine["reasons"][tagged] == ["tag"], mine
assert all(g["group"].endswith(" job=") and " paths=" in g["group"] for g in groups)
other = by["host=other"]
assert len(other["keep"]) == 2 and len(other["remove"]) == 1, other
for g in groups:
    assert set(g["reasons"]) == set(g["keep"]), g
    assert not set(g["keep"]) & set(g["remove"]), g
EOF
assert_eq "$(count)" 7 "snapshots after a --json dry run"

step "--group-by '' makes one group"
c --json forget --keep-last 2 --group-by '' --dry-run >one.json
python3 -c '
import json, sys
g = json.load(open("one.json"))
assert len(g) == 1 and g[0]["group"] == "" and len(g[0]["keep"]) == 2, g'

step "--keep-last 2 leaves exactly the 2 newest of each group"
newest_mine=$(ids 's["host"] != "other"' | tail -2 | sort)
newest_other=$(ids 's["host"] == "other"' | tail -2 | sort)
c forget --keep-last 2 >out.txt
cat out.txt
grep -q "removed 3 snapshots" out.txt || fail "forget does not report 3 removals"
assert_eq "$(count 's["host"] != "other"')" 2 "snapshots of this host"
assert_eq "$(count 's["host"] == "other"')" 2 "snapshots of host other"
assert_eq "$(ids 's["host"] != "other"' | sort)" "$newest_mine" "kept snapshots of this host"
assert_eq "$(ids 's["host"] == "other"' | sort)" "$newest_other" "kept snapshots of host other"
step "the same policy again removes nothing"
c forget --keep-last 2 >/dev/null
assert_eq "$(count)" 4 "snapshots after a second forget"

step "forget ID removes that snapshot only; a bad id among good ones removes nothing"
victim=$(ids 's["host"] == "other"' | sed -n 1p)
keeper=$(ids 's["host"] == "other"' | tail -1)
assert_exit 1 c forget "${victim:0:8}" ffffffffffff
assert_eq "$(count)" 4 "snapshots after a forget with a bad id"
c forget "${victim:0:8}" >/dev/null
assert_eq "$(count)" 3 "snapshots after forget ID"
[ -z "$(ids "s['id'] == '$victim'")" ] || fail "snapshot $victim still listed"
[ -n "$(ids "s['id'] == '$keeper'")" ] || fail "snapshot $keeper was removed too"

step "--keep-tag keeps tagged snapshots; --host/--tag filters limit what is considered"
backup --tag keepme
backup --tag keepme
backup
backup
assert_eq "$(count 's["host"] != "other"')" 6 "snapshots of this host"
c forget --keep-last 1 --keep-tag keepme --host "$host" >/dev/null
assert_eq "$(count 's["host"] != "other"')" 3 "snapshots of this host after --keep-tag"
assert_eq "$(count '"keepme" in s["tags"]')" 2 "tagged snapshots"
assert_eq "$(count 's["host"] == "other"')" 1 "snapshots of host other (filtered out)"
c forget --keep-last 1 --tag keepme >/dev/null
assert_eq "$(count '"keepme" in s["tags"]')" 1 "tagged snapshots after forget --tag"
assert_eq "$(count)" 3 "snapshots after forget --tag"

step "a failed snapshot stays while it is the newest run, and goes once a good run exists"
c -q backup --job db --stdin-from-command --name db.sql -- sh -c 'echo good' >/dev/null
assert_exit 1 c -q backup --job db --stdin-from-command --name db.sql -- sh -c 'echo bad; exit 1'
assert_eq "$(count 's.get("job") == "db" and s["status"] == "failed"')" 1 "failed snapshots"
c forget --keep-last 1 >out.txt
grep -q failed-latest out.txt || fail "the failed latest run is not listed as kept"
assert_eq "$(count 's.get("job") == "db"')" 2 "db snapshots (good + failed latest)"
c -q backup --job db --stdin-from-command --name db.sql -- sh -c 'echo good again' >/dev/null
c forget --keep-last 1 >/dev/null
assert_eq "$(count 's.get("job") == "db"')" 1 "db snapshots after a good run"
assert_eq "$(count 's.get("job") == "db" and s["status"] == "failed"')" 0 "failed snapshots"

step "restore of a kept snapshot after forget --prune"
if ! "$COFFER" prune --help >/dev/null 2>&1; then
    echo "NOTE: \`coffer prune --help\` fails (prune not built yet): --prune part skipped"
else
    kept=$(ids 's["host"] != "other" and s.get("job") is None' | tail -1)
    c forget --keep-last 1 --prune
    [ -n "$(ids "s['id'] == '$kept'")" ] || fail "the newest snapshot was removed"
    c restore "${kept:0:12}" --target restored >/dev/null
    diff -r data restored/data || fail "restored tree differs from the source"
fi
echo "forget: all checks passed"
