#!/bin/bash
# rgw.sh -- a throw-away Ceph radosgw (S3) on 127.0.0.1 for the integration tests and bench.
#
# Usage: tests/servers/rgw.sh start DIR S3PORT MONPORT   |   tests/servers/rgw.sh stop DIR
#
# A one-node Ceph 16.2 cluster (ceph-mon + one memstore OSD in RAM, auth none, no mgr) and
# radosgw (beast) listening on 127.0.0.1:S3PORT; everything lives under DIR. Creates the S3 user
# with access key $RGW_AK (default CIKEY) and secret $RGW_SK (default CISECRET). Daemons run in
# the foreground (-f) as background jobs; their pids go to DIR/pids/*.pid and `stop` kills
# exactly those pids. Start takes ~12 s. Needs Debian's radosgw ceph-mon ceph-osd ceph-common.
# Pitfalls handled (see the project's test-server notes): monmaptool must add a v1 address
# (msgr2 off), and ceph-osd sometimes dies racing the fresh mon, so it is retried.
set -euo pipefail
cmd=${1:-}
C=${2:-}
if [ -z "$cmd" ] || [ -z "$C" ]; then
    echo "usage: $0 start DIR S3PORT MONPORT | stop DIR" >&2
    exit 2
fi
stop_pid() {
    local p
    p=$(cat "$1" 2>/dev/null) || return 0
    kill "$p" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$p" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -9 "$p" 2>/dev/null || true
}
if [ "$cmd" = stop ]; then
    for n in rgw osd mon; do stop_pid "$C/pids/$n.pid"; done
    exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start DIR S3PORT MONPORT | stop DIR" >&2; exit 2; }
S3PORT=${3:?S3PORT}
MONPORT=${4:?MONPORT}
for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do
    command -v "$b" >/dev/null || { echo "rgw.sh: $b is not installed (scripts/install-deps.sh test)" >&2; exit 3; }
done
rm -rf "$C"
mkdir -p "$C"/{mon,osd0,run,log,rgw,pids}
FSID=$(cat /proc/sys/kernel/random/uuid)
cat >"$C/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MONPORT
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = ${RGW_MEM_BYTES:-1073741824}
run dir = $C/run
admin socket = $C/run/\$name.asok
log file = $C/log/\$name.log
keyring = $C/keyring
[mon.a]
mon data = $C/mon
mon addr = v1:127.0.0.1:$MONPORT
[osd.0]
osd data = $C/osd0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$S3PORT
rgw data = $C/rgw
rgw enable ops log = false
CONF
cd "$C"
touch keyring
monmaptool --create --addv a "[v1:127.0.0.1:$MONPORT]" --fsid "$FSID" monmap >/dev/null
ceph-mon -c ceph.conf --mkfs -i a --monmap monmap
ceph-mon -f -c ceph.conf -i a >log/mon.out 2>&1 &
echo $! >pids/mon.pid
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
timeout 60 ceph -c ceph.conf --connect-timeout 30 osd create "$OSD_UUID" >/dev/null
ceph-osd -c ceph.conf -i 0 --mkfs --osd-uuid "$OSD_UUID" >log/osd-mkfs.out 2>&1
for try in 1 2 3 4 5 6; do
    ceph-osd -f -c ceph.conf -i 0 >>log/osd.out 2>&1 &
    echo $! >pids/osd.pid
    for _ in $(seq 100); do
        kill -0 "$(cat pids/osd.pid)" 2>/dev/null || break
        ceph -c ceph.conf osd stat 2>/dev/null | grep -q '1 up' && break 2
        sleep 0.2
    done
    [ "$try" = 6 ] && { echo "ceph-osd did not come up" >&2; exit 1; }
    kill "$(cat pids/osd.pid)" 2>/dev/null || true
    sleep 1
done
radosgw -f -c ceph.conf -n client.rgw.a >log/rgw.out 2>&1 &
echo $! >pids/rgw.pid
for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" && break; sleep 0.1; done
curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" || { echo "radosgw did not come up" >&2; exit 1; }
radosgw-admin -c ceph.conf user create --uid ci --display-name CI \
    --access-key "${RGW_AK:-CIKEY}" --secret "${RGW_SK:-CISECRET}" >/dev/null 2>&1
echo "rgw ready on http://127.0.0.1:$S3PORT (pids: mon $(cat pids/mon.pid) osd $(cat pids/osd.pid) rgw $(cat pids/rgw.pid))"
