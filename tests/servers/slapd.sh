#!/bin/bash
# slapd.sh -- OpenLDAP slapd for tests, on 127.0.0.1, running as user openldap.
#
# Usage: tests/servers/slapd.sh config DIR            (writes DIR/slapd.conf and DIR/db only)
#        tests/servers/slapd.sh start DIR PORT        (config if missing, then start; prints pid)
#        tests/servers/slapd.sh stop DIR
# Suffix dc=example,dc=org, rootdn cn=admin,dc=example,dc=org with the password in
# $LDAP_TEST_PASSWORD (default "secret", stored hashed), back_mdb in DIR/db, schemas core,
# cosine, nis, inetorgperson. slapd runs in the foreground (-d 0) so its pid is the server's.
set -euo pipefail
. "$(dirname "$0")/common.sh"
cmd=$1 dir=$2

write_config() {
    mkdir -p "$dir/db" "$dir/run"
    local hash
    hash=$(slappasswd -s "${LDAP_TEST_PASSWORD:-secret}")
    cat >"$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $dir/run/slapd.pid
argsfile $dir/run/slapd.args
database mdb
maxsize 104857600
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw $hash
directory $dir/db
index objectClass eq
index uid eq
CONF
    grant_access openldap "$dir"
    chmod 600 "$dir/slapd.conf"
    chown openldap:openldap "$dir/slapd.conf"
}

case "$cmd" in
config)
    write_config
    ;;
start)
    port=$3
    [ -f "$dir/slapd.conf" ] || write_config
    grant_access openldap "$dir"
    setpriv --reuid=openldap --regid=openldap --init-groups /usr/sbin/slapd -d 0 \
        -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/" >"$dir/slapd.log" 2>&1 &
    echo $! >"$dir/pid"
    trap '[ $? -eq 0 ] || stop_pidfile "$dir/pid"' EXIT # a failed start leaves nothing running
    wait_for "slapd on port $port" ldapsearch -x -H "ldap://127.0.0.1:$port" -s base -b '' namingContexts
    cat "$dir/pid"
    ;;
stop)
    stop_pidfile "$dir/pid"
    ;;
*)
    echo "usage: $0 config DIR | start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
