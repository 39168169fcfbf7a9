#!/bin/bash
# test_operator.sh -- `coffer operator` against the test Kubernetes API server: the CRDs
# install; a Repository is validated (status Available with size and snapshot count); a
# BackupSchedule becomes a CronJob and a ConfigMap (and a bad schedule a Ready=False condition
# and an Event); a Backup becomes a Job, whose command is then run here as the pod would run it
# (paths of the pod's mounts mapped into the work directory), and the Backup's status ends
# Completed with the snapshot id; a Restore from that Backup brings the files back; a Backup
# naming a missing Repository fails with a clear condition; a Job that fails, a run past its
# deadline (the watchdog) and a Backup deleted while its Job exists (finalizer: no orphaned
# Job); leader election between two operators, with a takeover when the leader stops.
# The API server validates every object created against the Kubernetes schemas
# (kubernetes-models), so the Jobs and CronJobs are checked by creating them.
# Layer: integration test. Ports 49090-49093.
. "$(dirname "$0")/lib.sh"
require_coffer
need_cmd node npm openssl curl python3
command -v kubectl >/dev/null 2>&1 || fail "kubectl is missing (scripts/install-deps.sh test installs kubernetes-client)"
. "$ROOT/tests/servers/k8s-api.sh"
export COFFER_KDF="argon2id:ops=1,mem=8192"

k8s_api_start 49090 "" --bookmark-ms 500
export KUBECONFIG=$WORK/kubeconfig
k8s_kubeconfig "$KUBECONFIG"
K8S_NS=apps # for jpath and phase_is (tests/servers/k8s-api.sh)

step "CRDs and the namespace's objects"
kubectl kustomize "$ROOT/deploy/crds" | ka -f - >/dev/null
# (kubectl's create generators send protobuf, which the test server does not speak: YAML)
ka -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: Secret
metadata: {name: repo-pw, namespace: apps}
stringData: {password: repo-secret-pw}
EOF
mkdir -p "$WORK/data/sub"
echo "hello from the volume" >"$WORK/data/a.txt"
head -c 300000 /dev/urandom >"$WORK/data/sub/b.bin"
COFFER_PASSWORD=repo-secret-pw "$COFFER" -q -r "$WORK/repo" init
cat >"$WORK/objects.yaml" <<EOF
apiVersion: coffer.dev/v1alpha1
kind: Repository
metadata: {name: local, namespace: apps}
spec:
  url: $WORK/repo
  passwordSecretRef: {name: repo-pw, key: password}
  validationInterval: 1h
---
apiVersion: coffer.dev/v1alpha1
kind: BackupSchedule
metadata: {name: nightly, namespace: apps}
spec:
  schedule: "30 2 * * *"
  timeZone: Europe/Berlin
  target: {type: files, files: {pvc: app-data}}
  repositories: [local]
  retention: {keepDaily: 7, keepWeekly: 4, keepMonthly: 6}
---
apiVersion: coffer.dev/v1alpha1
kind: BackupSchedule
metadata: {name: broken, namespace: apps}
spec:
  schedule: "61 * * * *"
  target: {type: files, files: {pvc: app-data}}
  repositories: [local]
EOF
ka -f "$WORK/objects.yaml" >/dev/null

step "start the operator"
OPLOG=$WORK/operator.log
"$COFFER" operator --namespace apps --resync 2 --lease-duration 4 --identity op-a \
    --metrics-addr 127.0.0.1:49091 --image coffer:test --watchdog-grace 1 >"$OPLOG" 2>&1 &
OP_A=$!
track_pid "$OP_A"
wait_for "the operator's /healthz" 20 curl -sf http://127.0.0.1:49091/healthz
wait_for "leadership" 20 grep -q 'became the leader' "$OPLOG"

step "Repository validated"
wait_for "Repository Available" 30 phase_is repository local Available
assert_eq "$(jpath repository local 'd["status"]["snapshots"]')" 0 "snapshots in the Repository status"
grep -q repo-secret-pw "$OPLOG" && fail "the password appears in the operator's log"

step "BackupSchedule -> CronJob and ConfigMap"
wait_for "the CronJob" 20 kc -n apps get cronjob coffer-schedule-nightly
assert_eq "$(jpath cronjob coffer-schedule-nightly 'd["spec"]["schedule"]')" "30 2 * * *" "CronJob schedule"
assert_eq "$(jpath cronjob coffer-schedule-nightly 'd["spec"]["timeZone"]')" "Europe/Berlin" "CronJob time zone"
assert_eq "$(jpath cronjob coffer-schedule-nightly 'd["spec"]["concurrencyPolicy"]')" Forbid "concurrency policy"
assert_eq "$(jpath cronjob coffer-schedule-nightly 'd["metadata"]["ownerReferences"][0]["kind"]')" BackupSchedule "owner"
args=$(jpath cronjob coffer-schedule-nightly '" ".join(d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"])')
case "$args" in *"job run nightly --config /etc/coffer/config/config.yaml"*) ;; *) fail "CronJob args: $args" ;; esac
wait_for "Ready=True on the schedule" 20 sh -c "kubectl -n apps get backupschedule nightly -o json | grep -q CronJobReady"
kc -n apps get configmap coffer-schedule-nightly -o json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["config.yaml"])' >"$WORK/nightly.yaml"
grep -q '"keep_daily": 7' "$WORK/nightly.yaml" || fail "retention not rendered: $(cat "$WORK/nightly.yaml")"
grep -q repo-secret-pw "$WORK/nightly.yaml" && fail "a password in the ConfigMap"

step "a bad schedule: condition and event, no CronJob"
wait_for "InvalidSchedule condition" 20 sh -c "kubectl -n apps get backupschedule broken -o json | grep -q InvalidSchedule"
kc -n apps get cronjob coffer-schedule-broken >/dev/null 2>&1 && fail "a CronJob for an invalid schedule"
wait_for "an InvalidSchedule event" 10 sh -c "kubectl -n apps get events -o json | grep -q InvalidSchedule"

# run_like_pod JOB: run the Job's container command here, with its mounts mapped into $WORK
run_like_pod() {
    local job=$1 cm
    cm=$(jpath job "$job" '[v["configMap"]["name"] for v in d["spec"]["template"]["spec"]["volumes"] if "configMap" in v][0]')
    kc -n apps get configmap "$cm" -o json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["config.yaml"])' |
        sed -e "s#/etc/coffer/secrets#$WORK/pod/secrets#g" -e "s#\"/data#\"$WORK/pod/data#g" >"$WORK/pod/config.yaml"
    mapfile -t a < <(jpath job "$job" '"\n".join(d["spec"]["template"]["spec"]["containers"][0]["args"])')
    local i
    for i in "${!a[@]}"; do
        a[$i]=${a[$i]//\/etc\/coffer\/config\/config.yaml/$WORK/pod/config.yaml}
        a[$i]=${a[$i]/#\/data/$WORK/pod/data}
    done
    (unset COFFER_PASSWORD; POD_NAME=$job-pod "$COFFER" "${a[@]}")
}
mkdir -p "$WORK/pod/secrets/local"
printf 'repo-secret-pw' >"$WORK/pod/secrets/local/password"
ln -s "$WORK/data" "$WORK/pod/data"

step "Backup -> Job; the pod's command reports Completed with the snapshot"
cat <<EOF | ka -f - >/dev/null
apiVersion: coffer.dev/v1alpha1
kind: Backup
metadata: {name: manual-1, namespace: apps}
spec: {scheduleRef: nightly}
EOF
wait_for "the Job of manual-1" 20 kc -n apps get job coffer-backup-manual-1
wait_for "phase New" 20 phase_is backup manual-1 New
assert_eq "$(jpath backup manual-1 'd["status"]["jobName"]')" coffer-backup-manual-1 "jobName"
assert_eq "$(jpath job coffer-backup-manual-1 'd["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"]')" False "restricted security context"
run_like_pod coffer-backup-manual-1 >"$WORK/run1.out" 2>&1 || fail "the pod's command failed: $(cat "$WORK/run1.out")"
assert_eq "$(jpath backup manual-1 'd["status"]["phase"]')" Completed "phase after the run"
assert_eq "$(jpath backup manual-1 'd["status"]["filesNew"]')" 2 "files counted in the status"
[ "$(jpath backup manual-1 'd["status"]["bytesRead"]')" -ge 300000 ] || fail "bytesRead in the status"
snap=$(jpath backup manual-1 'd["status"]["snapshotID"]')
[ ${#snap} -ge 8 ] || fail "no snapshot id in the status"
assert_eq "$(jpath backup manual-1 '[c["reason"] for c in d["status"]["conditions"] if c["type"]=="Succeeded"][0]')" BackupSucceeded "Succeeded condition"
COFFER_PASSWORD=repo-secret-pw "$COFFER" -r "$WORK/repo" --json snapshots | grep -q "$snap" || fail "snapshot $snap not in the repository"
sleep 3 # the next resync re-validates nothing (interval 1h) but keeps the phase terminal
assert_eq "$(jpath backup manual-1 'd["status"]["phase"]')" Completed "phase stays Completed"

step "Restore from the Backup"
cat <<EOF | ka -f - >/dev/null
apiVersion: coffer.dev/v1alpha1
kind: Restore
metadata: {name: back, namespace: apps}
spec: {backupRef: manual-1, target: {pvc: restore-data, path: out}}
EOF
wait_for "the Job of the Restore" 20 kc -n apps get job coffer-restore-back
rm "$WORK/pod/data"
mkdir -p "$WORK/pod/data"
run_like_pod coffer-restore-back >"$WORK/run2.out" 2>&1 || fail "the restore pod's command failed: $(cat "$WORK/run2.out")"
assert_eq "$(jpath restore back 'd["status"]["phase"]')" Completed "Restore phase"
found=$(find "$WORK/pod/data/out" -name a.txt | head -1)
[ -n "$found" ] && cmp "$found" "$WORK/data/a.txt" || fail "restored file missing or different"

step "edits and deletes: a changed schedule updates the CronJob; a deleted schedule takes it along"
kc -n apps patch backupschedule nightly --type=merge -p '{"spec":{"schedule":"45 3 * * 1","paused":true}}' >/dev/null
wait_for "the CronJob follows the edit" 20 sh -c '[ "$(kubectl -n apps get cronjob coffer-schedule-nightly -o jsonpath={.spec.schedule})" = "45 3 * * 1" ]'
assert_eq "$(jpath cronjob coffer-schedule-nightly 'd["spec"]["suspend"]')" True "paused schedule suspends the CronJob"
ka -f - >/dev/null <<EOF
apiVersion: coffer.dev/v1alpha1
kind: BackupSchedule
metadata: {name: shortlived, namespace: apps}
spec: {schedule: "@daily", target: {type: files, files: {pvc: app-data}}, repositories: [local]}
EOF
wait_for "the CronJob of shortlived" 20 kc -n apps get cronjob coffer-schedule-shortlived
kc -n apps delete backupschedule shortlived --wait=false >/dev/null
wait_for "shortlived gone" 20 sh -c '! kubectl -n apps get backupschedule shortlived'
wait_for "the CronJob gone with its schedule" 20 sh -c '! kubectl -n apps get cronjob coffer-schedule-shortlived'
wait_for "the ConfigMap gone with its schedule" 20 sh -c '! kubectl -n apps get configmap coffer-schedule-shortlived'

step "objects whose owner vanished while the operator was not looking are removed"
ka -f - >/dev/null <<EOF
apiVersion: batch/v1
kind: CronJob
metadata:
  name: coffer-schedule-ghost
  namespace: apps
  labels: {app.kubernetes.io/managed-by: coffer-operator, coffer.dev/owner-kind: BackupSchedule, coffer.dev/owner-name: ghost}
spec:
  schedule: "@daily"
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: coffer:test}]}}}}
EOF
wait_for "the orphaned CronJob removed" 20 sh -c '! kubectl -n apps get cronjob coffer-schedule-ghost'


step "bad Repositories: a missing Secret, an unreachable location"
ka -f - >/dev/null <<EOF
apiVersion: coffer.dev/v1alpha1
kind: Repository
metadata: {name: nosecret, namespace: apps}
spec: {url: $WORK/repo, passwordSecretRef: {name: does-not-exist, key: password}}
---
apiVersion: coffer.dev/v1alpha1
kind: Repository
metadata: {name: unreachable, namespace: apps}
spec: {url: "s3://127.0.0.1:1/bucket/repo", passwordSecretRef: {name: repo-pw, key: password}}
EOF
wait_for "nosecret Unavailable" 30 phase_is repository nosecret Unavailable
jpath repository nosecret '[c for c in d["status"]["conditions"] if c["type"]=="Ready"][0]["reason"]' | grep -q SecretMissing ||
    fail "nosecret reason: $(jpath repository nosecret 'd["status"]')"
wait_for "unreachable Unavailable" 60 phase_is repository unreachable Unavailable
jpath repository unreachable 'd["status"]["message"]' | grep -qi 'reach\|connect\|credentials' ||
    fail "unreachable message: $(jpath repository unreachable 'd["status"]["message"]')"

step "volumes of a running pod: the Job runs on the pod's node and mounts its claim"
ka -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: apps
  labels: {app: web}
  annotations: {coffer.dev/backup-volumes: "data"}
spec:
  nodeName: node-7
  containers: [{name: web, image: nginx, volumeMounts: [{name: data, mountPath: /srv}]}]
  volumes:
    - {name: data, persistentVolumeClaim: {claimName: web-data}}
    - {name: cache, emptyDir: {}}
---
apiVersion: v1
kind: Pod
metadata:
  name: tmp-0
  namespace: apps
  labels: {app: tmp}
  annotations: {coffer.dev/backup-volumes: "cache"}
spec:
  nodeName: node-7
  containers: [{name: c, image: busybox}]
  volumes: [{name: cache, emptyDir: {}}]
---
apiVersion: coffer.dev/v1alpha1
kind: Backup
metadata: {name: pods-1, namespace: apps}
spec:
  target: {type: files, files: {podSelector: {matchLabels: {app: web}}}}
  repositories: [local]
---
apiVersion: coffer.dev/v1alpha1
kind: Backup
metadata: {name: pods-bad, namespace: apps}
spec:
  target: {type: files, files: {podSelector: {matchLabels: {app: tmp}}}}
  repositories: [local]
EOF
wait_for "the Job of pods-1" 20 kc -n apps get job coffer-backup-pods-1
assert_eq "$(jpath job coffer-backup-pods-1 'd["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"]')" node-7 "Job pinned to the pod's node"
assert_eq "$(jpath job coffer-backup-pods-1 '[v["persistentVolumeClaim"]["claimName"] for v in d["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v]')" "['web-data']" "claims mounted"
rm -rf "$WORK/pod/data"
mkdir -p "$WORK/pod/data/web-0/data"
echo "pod volume content" >"$WORK/pod/data/web-0/data/page.html"
run_like_pod coffer-backup-pods-1 >"$WORK/run3.out" 2>&1 || fail "the pod-volume run failed: $(cat "$WORK/run3.out")"
assert_eq "$(jpath backup pods-1 'd["status"]["phase"]')" Completed "pod-volume Backup phase"
wait_for "pods-bad Failed" 20 phase_is backup pods-bad Failed
jpath backup pods-bad 'd["status"]["message"]' | grep -q VolumeNotAClaim || fail "message: $(jpath backup pods-bad 'd["status"]["message"]')"

step "a Backup naming a missing Repository fails clearly"
cat <<EOF | ka -f - >/dev/null
apiVersion: coffer.dev/v1alpha1
kind: Backup
metadata: {name: no-repo, namespace: apps}
spec: {target: {type: files, files: {pvc: x}}, repositories: [nowhere]}
EOF
wait_for "no-repo Failed" 20 phase_is backup no-repo Failed
jpath backup no-repo 'd["status"]["message"]' | grep -q 'RepositoryNotFound' || fail "message: $(jpath backup no-repo 'd["status"]["message"]')"
kc -n apps get job coffer-backup-no-repo >/dev/null 2>&1 && fail "a Job was created for an invalid Backup"

step "a Job that fails before reporting"
cat <<EOF | ka -f - >/dev/null
apiVersion: coffer.dev/v1alpha1
kind: Backup
metadata: {name: crash, namespace: apps}
spec: {scheduleRef: nightly}
EOF
wait_for "the Job of crash" 20 kc -n apps get job coffer-backup-crash
kc -n apps patch job coffer-backup-crash --subresource=status --type=merge \
    -p '{"status":{"failed":1,"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}]}}' >/dev/null
wait_for "crash Failed" 20 phase_is backup crash Failed
jpath backup crash 'd["status"]["message"]' | grep -q BackoffLimitExceeded || fail "the Job's reason is not in the message"

step "the watchdog fails a run past its deadline and deletes its Job"
cat <<EOF | ka -f - >/dev/null
apiVersion: coffer.dev/v1alpha1
kind: Backup
metadata: {name: stuck, namespace: apps}
spec: {target: {type: files, files: {pvc: app-data}}, repositories: [local], activeDeadlineSeconds: 1}
EOF
wait_for "stuck Failed by the watchdog" 30 phase_is backup stuck Failed
jpath backup stuck 'd["status"]["message"]' | grep -q DeadlineExceeded || fail "watchdog message"
wait_for "the stuck Job deleted" 10 sh -c '! kubectl -n apps get job coffer-backup-stuck'

step "deleting a Backup while its Job exists leaves no Job behind"
cat <<EOF | ka -f - >/dev/null
apiVersion: coffer.dev/v1alpha1
kind: Backup
metadata: {name: gone, namespace: apps}
spec: {scheduleRef: nightly}
EOF
wait_for "the Job of gone" 20 kc -n apps get job coffer-backup-gone
assert_eq "$(jpath backup gone '"coffer.dev/job-cleanup" in d["metadata"].get("finalizers", [])')" True "finalizer"
kc -n apps delete backup gone --wait=false >/dev/null
wait_for "the Backup gone" 20 sh -c '! kubectl -n apps get backup gone'
kc -n apps get job coffer-backup-gone >/dev/null 2>&1 && fail "the Job outlived its Backup"

step "leader election: a second operator waits, then takes over"
"$COFFER" operator --namespace apps --resync 2 --lease-duration 4 --identity op-b \
    --metrics-addr 127.0.0.1:49092 --image coffer:test >"$WORK/operator-b.log" 2>&1 &
OP_B=$!
track_pid "$OP_B"
wait_for "op-b /healthz" 20 curl -sf http://127.0.0.1:49092/healthz
sleep 3
curl -s http://127.0.0.1:49092/metrics | grep -q '^coffer_operator_leader 0' || fail "two leaders at once"
curl -s http://127.0.0.1:49091/metrics | grep -q '^coffer_operator_leader 1' || fail "op-a lost the lead"
assert_eq "$(jpath lease coffer-operator 'd["spec"]["holderIdentity"]')" op-a "lease holder"
kill -TERM "$OP_A"
wait "$OP_A" 2>/dev/null || true
wait_for "op-b leads" 20 sh -c 'curl -s http://127.0.0.1:49092/metrics | grep -q "^coffer_operator_leader 1"'
assert_eq "$(jpath lease coffer-operator 'd["spec"]["holderIdentity"]')" op-b "lease holder after the takeover"
cat <<EOF | ka -f - >/dev/null
apiVersion: coffer.dev/v1alpha1
kind: Backup
metadata: {name: after-takeover, namespace: apps}
spec: {scheduleRef: nightly}
EOF
wait_for "the new leader creates the Job" 20 kc -n apps get job coffer-backup-after-takeover
curl -s http://127.0.0.1:49092/metrics | grep -q 'coffer_operator_reconciles_total{kind="Backup",result="ok"}' || fail "metrics"
step "deploy/: both kustomize variants and every example are accepted by the API server"
ka -f - >/dev/null <<EOF
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: blog}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: directory}}
EOF
for v in cluster namespaced; do
    kubectl kustomize "$ROOT/deploy/operator/$v" >"$WORK/$v.yaml" || fail "kustomize $v"
    ka -f "$WORK/$v.yaml" >"$WORK/$v.out" 2>&1 || fail "the $v variant was refused: $(cat "$WORK/$v.out")"
done
kc -n coffer-system get deployment coffer-operator >/dev/null || fail "the operator Deployment"
for f in "$ROOT"/deploy/examples/*.yaml; do
    ka -f "$f" >"$WORK/ex.out" 2>&1 || fail "example $(basename "$f") was refused: $(cat "$WORK/ex.out")"
done
echo "operator ok"
