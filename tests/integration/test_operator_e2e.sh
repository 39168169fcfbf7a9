#!/bin/bash
# test_operator_e2e.sh -- the operator end to end with real servers: a Repository on Ceph
# radosgw (S3) validated by the operator, a Backup of a real PostgreSQL database whose Job's
# command is run here as the pod would run it (the pod's mounts mapped into the work
# directory, its Secret-derived environment set), the Backup ending Completed with the
# snapshot id, and a Restore from that Backup bringing the data back under a new name.
# The API is the test API server (tests/k8s-api): no kubelet runs Jobs here.
# Layer: integration test. Ports: API 49095, radosgw 47620 (mon 47629), PostgreSQL 43370.
. "$(dirname "$0")/lib.sh"
require_coffer
need_cmd node npm openssl curl python3 radosgw ceph-mon psql
PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/initdb" ] || skip "PostgreSQL 15 server not installed (scripts/install-deps.sh test)"
[ "$(id -u)" = 0 ] || skip "needs root to run the server as user postgres"
command -v kubectl >/dev/null 2>&1 || fail "kubectl is missing (scripts/install-deps.sh test)"
. "$ROOT/tests/servers/k8s-api.sh"
SERVERS=$ROOT/tests/servers
export COFFER_KDF="argon2id:ops=1,mem=8192"
export PGPASSWORD=pgpass PGUSER=postgres PGHOST=127.0.0.1
PGP=43370
S3=127.0.0.1:47620
URL="s3://$S3/e2e-bkt/repo"
q() { psql -X -q -At -p $PGP -d "$1" -c "$2"; }
digest() { q "$1" "select count(*), md5(string_agg(aid||':'||abalance, ',' order by aid)) from pgbench_accounts"; }

step "servers: radosgw, PostgreSQL, the API"
"$SERVERS/rgw.sh" start "$WORK/rgw" 47620 47629 >rgw.log 2>&1 || { cat rgw.log; fail "radosgw did not start"; }
for n in rgw osd mon; do track_pid "$(cat "$WORK/rgw/pids/$n.pid")"; done
pid=$("$SERVERS/postgres.sh" start "$WORK/pg" $PGP | tail -1)
track_pid "$pid"
createdb -p $PGP app
pgbench -p $PGP -i -s 2 -q app >/dev/null 2>&1
before=$(digest app)
k8s_api_start 49095 "" --bookmark-ms 500
export KUBECONFIG=$WORK/kubeconfig
k8s_kubeconfig "$KUBECONFIG"
K8S_NS=db # for jpath and phase_is (tests/servers/k8s-api.sh)

step "the repository on radosgw (created like an admin would, then declared)"
AWS_ACCESS_KEY_ID=CIKEY AWS_SECRET_ACCESS_KEY=CISECRET COFFER_PASSWORD=e2e-repo-pw \
    "$COFFER" -q -r "$URL" -o s3.create-bucket=true init || fail "init on radosgw"
kubectl kustomize "$ROOT/deploy/crds" | ka -f - >/dev/null
ka -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: db}
---
apiVersion: v1
kind: Secret
metadata: {name: repo-pw, namespace: db}
stringData: {password: e2e-repo-pw}
---
apiVersion: v1
kind: Secret
metadata: {name: s3-creds, namespace: db}
stringData: {AWS_ACCESS_KEY_ID: CIKEY, AWS_SECRET_ACCESS_KEY: CISECRET}
---
apiVersion: v1
kind: Secret
metadata: {name: pg-pw, namespace: db}
stringData: {password: pgpass}
---
apiVersion: coffer.dev/v1alpha1
kind: Repository
metadata: {name: s3, namespace: db}
spec:
  url: $URL
  passwordSecretRef: {name: repo-pw, key: password}
  credentialsSecretRef: {name: s3-creds}
---
apiVersion: coffer.dev/v1alpha1
kind: Backup
metadata: {name: app-1, namespace: db}
spec:
  target:
    type: postgres
    postgres: {host: 127.0.0.1, port: $PGP, user: postgres, databases: [app],
               passwordSecretRef: {name: pg-pw, key: password}}
  repositories: [s3]
EOF
"$COFFER" operator --namespace db --resync 2 --identity e2e --image coffer:test \
    >operator.log 2>&1 &
track_pid $!
wait_for "Repository Available on radosgw" 60 phase_is repository s3 Available
wait_for "the Backup's Job" 30 kc -n db get job coffer-backup-app-1

# run_like_pod JOB: the Job's command here, mounts mapped into $WORK/pod, the Secret-derived
# environment (envFrom the credentials Secret, PGPASSWORD from secretKeyRef) set
run_like_pod() {
    local job=$1 cm
    cm=$(jpath job "$job" '[v["configMap"]["name"] for v in d["spec"]["template"]["spec"]["volumes"] if "configMap" in v][0]')
    kc -n db get configmap "$cm" -o json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["config.yaml"])' |
        sed -e "s#/etc/coffer/secrets#$WORK/pod/secrets#g" >"$WORK/pod/config.yaml"
    jpath job "$job" 'json.dumps(d["spec"]["template"]["spec"]["containers"][0]["env"])' >"$WORK/pod/env.json"
    python3 -c 'import json,sys; print(*[e["valueFrom"]["secretKeyRef"]["name"] for e in json.load(open(sys.argv[1])) if e["name"]=="PGPASSWORD"])' "$WORK/pod/env.json" | grep -q pg-pw ||
        fail "PGPASSWORD does not come from the pg-pw Secret"
    mapfile -t a < <(jpath job "$job" '"\n".join(d["spec"]["template"]["spec"]["containers"][0]["args"])')
    local i
    for i in "${!a[@]}"; do
        a[$i]=${a[$i]//\/etc\/coffer\/config\/config.yaml/$WORK/pod/config.yaml}
    done
    (unset COFFER_PASSWORD; export AWS_ACCESS_KEY_ID=CIKEY AWS_SECRET_ACCESS_KEY=CISECRET \
        PGPASSWORD=pgpass POD_NAME=$job-pod; "$COFFER" "${a[@]}")
}
mkdir -p "$WORK/pod/secrets/s3"
printf 'e2e-repo-pw' >"$WORK/pod/secrets/s3/password"

step "the Backup's pod command: dump to radosgw, status Completed with the snapshot"
run_like_pod coffer-backup-app-1 >run1.out 2>&1 || fail "the backup pod's command failed: $(cat run1.out)"
assert_eq "$(jpath backup app-1 'd["status"]["phase"]')" Completed "Backup phase"
snap=$(jpath backup app-1 'd["status"]["snapshotID"]')
AWS_ACCESS_KEY_ID=CIKEY AWS_SECRET_ACCESS_KEY=CISECRET COFFER_PASSWORD=e2e-repo-pw \
    "$COFFER" -r "$URL" --json snapshots >snaps.json
python3 -c 'import json,sys; d=json.load(open("snaps.json")); s=[x for x in d if x["id"]==sys.argv[1]]; assert s and s[0]["kind"]=="postgres" and s[0]["status"]=="complete", d' "$snap" ||
    fail "snapshot $snap is not a complete postgres snapshot in the S3 repository"

step "a Restore from the Backup brings the data back under a new name"
ka -f - >/dev/null <<EOF
apiVersion: coffer.dev/v1alpha1
kind: Restore
metadata: {name: app-back, namespace: db}
spec:
  backupRef: app-1
  target:
    postgres: {host: 127.0.0.1, port: $PGP, user: postgres, database: app_restored,
               passwordSecretRef: {name: pg-pw, key: password}}
EOF
wait_for "the Restore's Job" 30 kc -n db get job coffer-restore-app-back
run_like_pod coffer-restore-app-back >run2.out 2>&1 || fail "the restore pod's command failed: $(cat run2.out)"
assert_eq "$(jpath restore app-back 'd["status"]["phase"]')" Completed "Restore phase"
assert_eq "$(digest app_restored)" "$before" "restored database content"
grep -q 'e2e-repo-pw\|CISECRET' operator.log && fail "a secret in the operator's log"
"$SERVERS/postgres.sh" stop "$WORK/pg"
echo "operator e2e ok"
