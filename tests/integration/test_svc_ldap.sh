#!/bin/bash
# test_svc_ldap.sh -- `coffer backup/restore --ldap` against real OpenLDAP slapd servers on
# 127.0.0.1 (tests/servers/slapd.sh, ports 43340-43342): 500 entries (unicode, base64
# values); an online export (ldapsearch with operational attributes) and a slapcat export;
# changes, a second day; day 1 restored through slapadd into a new database directory (a
# server started on it exports exactly what the original exported that day, entryUUID and
# timestamps included); day 2 restored through ldapadd into an empty running server (same
# entries and user attributes); failures (wrong password, server down, unknown suffix,
# ldapsearch missing) give clear errors and no snapshot.
. "$(dirname "$0")/lib.sh"

require_coffer
need_cmd slapd slapadd slapcat ldapsearch ldapadd ldapmodify slappasswd setpriv python3
[ "$(id -u)" = 0 ] || skip "needs root to run slapd as user openldap"
SERVERS=$ROOT/tests/servers
cd "$WORK"
export COFFER_KDF="argon2id:ops=1,mem=8192"
export LDAP_PASSWORD=secret
REPO=$WORK/repo
P1=43340 P2=43341 P3=43342
BASE=dc=example,dc=org
ADMIN=cn=admin,$BASE
c() { "$COFFER" -r "$REPO" "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
nsnaps() { c --json snapshots | jget 'len(d)'; }
B() { echo -x -H "ldap://127.0.0.1:$1" -D "$ADMIN" -w secret; }
# export PORT [ATTRS...]: every entry, attributes and entries sorted (dynamic ones left out)
export_sorted() {
    local p=$1
    shift
    ldapsearch $(B "$p") -LLL -o ldif-wrap=no -b "$BASE" '(objectClass=*)' "$@" | /usr/bin/python3 -c '
import sys
entries = [e for e in sys.stdin.read().split("\n\n") if e.strip()]
skip = ("entryDN:", "subschemaSubentry:", "hasSubordinates:")
out = []
for e in entries:
    lines = [l for l in e.strip().split("\n") if not l.startswith(skip)]
    out.append("\n".join([lines[0]] + sorted(lines[1:])))
print("\n\n".join(sorted(out)))'
}

step "start slapd and load 500 entries"
pid=$("$SERVERS/slapd.sh" start "$WORK/l1" $P1 | tail -1)
track_pid "$pid"
/usr/bin/python3 - >data.ldif <<'EOF'
import base64
print("dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n")
print("dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n")
for i in range(498):
    cn = "Użytkownik Żółć %d ✓" % i
    print("dn: uid=u%d,ou=people,dc=example,dc=org" % i)
    print("objectClass: inetOrgPerson")
    print("uid: u%d" % i)
    print("cn:: " + base64.b64encode(cn.encode()).decode())
    print("sn: Surname%d" % i)
    print("mail: u%d@example.org" % i)
    print("description: line one of %d" % i)
    print("")
EOF
ldapadd $(B $P1) -f data.ldif >/dev/null
assert_eq "$(ldapsearch $(B $P1) -LLL -b "$BASE" '(objectClass=*)' 1.1 | grep -c '^dn:')" 500 "entries loaded"
day1=$(export_sorted $P1 '*' '+')
user1=$(export_sorted $P1 '*')

step "day 1: online export and slapcat export"
c init >/dev/null
c --json backup --ldap --uri ldap://127.0.0.1:$P1 --bind-dn "$ADMIN" --base "$BASE" >day1.json
assert_eq "$(jget '(d["kind"], d["server"], d["database"], d["status"])' <day1.json)" \
    "('ldap', '127.0.0.1:$P1', '$BASE', 'complete')" "day 1 snapshot"
s1=$(jget 'd["id"]' <day1.json)
c --json snapshots | grep -q '"secret"\|secret' && fail "the password is recorded in a snapshot"
c --json backup --ldap --slapcat --slapd-conf "$WORK/l1/slapd.conf" --base "$BASE" >cat1.json
assert_eq "$(jget '(d["kind"], d["server"], d["status"])' <cat1.json)" "('ldap', 'local', 'complete')" "slapcat snapshot"
c dump "$(jget 'd["id"]' <cat1.json | cut -c1-8)" "/ldap/local/$BASE.ldif" | grep -c '^dn:' >n.txt
assert_eq "$(cat n.txt)" 500 "entries in the slapcat export"

step "changes, day 2 (password from LDAP_PASSWORD_FILE)"
ldapmodify $(B $P1) >/dev/null <<'EOF'
dn: uid=u1,ou=people,dc=example,dc=org
changetype: modify
replace: description
description: changed on day 2

dn: uid=u2,ou=people,dc=example,dc=org
changetype: delete

dn: uid=new,ou=people,dc=example,dc=org
changetype: add
objectClass: inetOrgPerson
uid: new
cn: New
sn: Person
EOF
day2=$(export_sorted $P1 '*' '+')
user2=$(export_sorted $P1 '*')
[ "$user1" != "$user2" ] || fail "the directory did not change"
printf 'secret\n' >pw.txt
env -u LDAP_PASSWORD LDAP_PASSWORD_FILE=$WORK/pw.txt "$COFFER" -r "$REPO" --json backup --ldap \
    --uri ldap://127.0.0.1:$P1 --bind-dn "$ADMIN" --base "$BASE" >day2.json
s2=$(jget 'd["id"]' <day2.json)
assert_eq "$(jget 'd["parent"]' <day2.json)" "$s1" "parent of day 2"

step "day 1 through slapadd into a new database directory, then a server on it"
"$SERVERS/slapd.sh" config "$WORK/l2"
c restore "${s1:0:8}" --ldap --slapadd --slapd-conf "$WORK/l2/slapd.conf" >/dev/null
chown -R openldap:openldap "$WORK/l2/db" # slapadd ran as root (doc/services.md)
pid2=$("$SERVERS/slapd.sh" start "$WORK/l2" $P2 | tail -1)
track_pid "$pid2"
[ "$(export_sorted $P2 '*' '+')" = "$day1" ] || fail "slapadd restore differs from the day 1 export"
"$SERVERS/slapd.sh" stop "$WORK/l2"

step "day 2 through ldapadd into an empty running server"
pid3=$("$SERVERS/slapd.sh" start "$WORK/l3" $P3 | tail -1)
track_pid "$pid3"
c restore latest --ldap --uri ldap://127.0.0.1:$P3 --bind-dn "$ADMIN" >r3.txt
grep -q "snapshot ${s2:0:8}" r3.txt || fail "latest picked: $(cat r3.txt)"
[ "$(export_sorted $P3 '*')" = "$user2" ] || fail "ldapadd restore differs from the day 2 entries"
"$SERVERS/slapd.sh" stop "$WORK/l3"

n0=$(nsnaps)
step "wrong password, server down, unknown suffix, ldapsearch missing: clear errors, no snapshot"
rc=0
LDAP_PASSWORD=wrong "$COFFER" -r "$REPO" backup --ldap --uri ldap://127.0.0.1:$P1 --bind-dn "$ADMIN" \
    --base "$BASE" 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with a wrong password"
grep -q "ldap: reading $BASE on ldap://127.0.0.1:$P1 failed (exit 49).*Invalid credentials" err.txt \
    || fail "message: $(cat err.txt)"
rc=0
c backup --ldap --uri ldap://127.0.0.1:43349 --bind-dn "$ADMIN" --base "$BASE" 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with the server down"
grep -q "ldap: reading $BASE on ldap://127.0.0.1:43349 failed.*contact LDAP server" err.txt \
    || fail "message: $(cat err.txt)"
rc=0
c backup --ldap --uri ldap://127.0.0.1:$P1 --bind-dn "$ADMIN" --base dc=nowhere 2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code with an unknown suffix"
grep -q "ldap: reading dc=nowhere .*failed (exit 32)" err.txt || fail "message: $(cat err.txt)"
mkdir emptybin
rc=0
PATH=$WORK/emptybin "$COFFER" -r "$REPO" backup --ldap --uri ldap://127.0.0.1:$P1 --base "$BASE" \
    2>err.txt || rc=$?
assert_eq "$rc" 1 "exit code without ldapsearch"
grep -q "ldap: ldapsearch not found in PATH: install ldap-utils" err.txt || fail "message: $(cat err.txt)"
assert_eq "$(nsnaps)" "$n0" "snapshots after the failed attempts"

"$SERVERS/slapd.sh" stop "$WORK/l1"
echo "svc ldap ok"
