#!/bin/bash
# test_k8s_manifests.sh -- `coffer k8s manifests`: a config with a files job (PVC), a postgres
# job (password from a Secret key), a k8s export job (RBAC), a copy task and a job without a
# schedule becomes YAML that parses, passes the kubernetes-models schemas, applies with kubectl
# to the test API server, and holds the expected fields; the export job's generated RBAC lets
# its ServiceAccount export its namespace and nothing else (the server authorizes from the
# applied RBAC); no secret value appears anywhere; the output is byte-identical twice; the
# ConfigMap's configuration is a valid coffer config; bad input gives clear errors and no output.
# Layer: integration test. Ports 49100-49109.
. "$(dirname "$0")/lib.sh"
require_coffer
need_cmd node npm openssl curl python3
command -v kubectl >/dev/null 2>&1 || fail "kubectl is missing (scripts/install-deps.sh test installs kubernetes-client)"
python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml is missing (scripts/install-deps.sh test installs it)"
. "$ROOT/tests/servers/k8s-api.sh"

SECRETS='supersecret-cloud-1|supersecret-aws-2|supersecret-pg-3|supersecret-file-4|supersecret-hook-5'
export CLOUD_PASSWORD=supersecret-cloud-1 AWS_SECRET_ACCESS_KEY=supersecret-aws-2
export PGPASSWORD=supersecret-pg-3 HOOK_TOKEN=supersecret-hook-5
unset AWS_ACCESS_KEY_ID || true
printf 'supersecret-file-4\n' >"$WORK/local-password"
mkdir -p "$WORK/conf.d"

cat >"$WORK/coffer.yaml" <<END_CONFIG
include: ["conf.d/*.yaml"]
repositories:
  local:
    url: /var/backups/coffer
    password_file: $WORK/local-password
  cloud:
    url: s3://minio.example:9000/backups/app
    password: \${CLOUD_PASSWORD}
    env:
      AWS_ACCESS_KEY_ID: \${AWS_ACCESS_KEY_ID}
      AWS_SECRET_ACCESS_KEY: \${AWS_SECRET_ACCESS_KEY}
kubernetes:
  namespace: backup
  image: registry.example/coffer:1.0
  image_pull_policy: IfNotPresent
  labels: {team: platform}
  node_selector: {kubernetes.io/os: linux}
  tolerations: [{key: dedicated, operator: Equal, value: backup, effect: NoSchedule}]
  resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 1Gi}}
  repositories:
    local: {password: {secret: coffer-local, key: password}}
    cloud: {password: {secret: coffer-cloud, key: password}, env_from: [coffer-s3]}
  volumes:
    app-data: {claim: app-data}
  successful_jobs_history: 5
jobs:
  - name: app-files
    type: files
    paths: [/srv/app/data]
    schedule: "15 2 * * *"
    timezone: Europe/Berlin
    repositories: [local, cloud]
    retention: {days: 7}
    run_on: [backup-0]
    kubernetes:
      volumes:
        - {volume: app-data, path: /srv/app/data}
        - {host_path: /var/log/app, path: /var/log/app}
      node: worker-1
  - name: pg
    type: postgres
    options: {host: db, port: 5432, user: backup, database: [app, auth]}
    env: {PGPASSWORD: "\${PGPASSWORD}"}
    schedule: "@daily"
    repositories: [local]
    hooks:
      after: ["echo \$\$COFFER_JOB_STATUS"]
    kubernetes:
      env: {PGPASSWORD: {secret: pg, key: password}}
      resources: {limits: {memory: 2Gi}}
      backoff_limit: 1
      active_deadline: 2h
notifications:
  - type: webhook
    url: https://hooks.example/x
    headers: {Authorization: "Bearer \${HOOK_TOKEN}"}
END_CONFIG
cat >"$WORK/conf.d/more.yaml" <<'END_CONFIG'
jobs:
  - name: shop-objects
    type: k8s
    options: {namespace: shop}
    schedule: "0 3 * * *"
    repositories: [local]
  - name: manual
    type: command
    command: "echo hi"
    repositories: [local]
copy:
  - {name: to-cloud, from: local, to: cloud, every: 6h}
END_CONFIG

kinds() { # the kind, namespace and name of each document
    python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    print(d["kind"], d["metadata"].get("namespace", "-"), d["metadata"]["name"])' "$1"
}

step "generate: twice byte-identical, notes on stderr, no secret anywhere"
"$COFFER" k8s manifests --config "$WORK/coffer.yaml" --create-namespace >"$WORK/m1.yaml" 2>"$WORK/m1.err" ||
    fail "manifests: $(cat "$WORK/m1.err")"
"$COFFER" k8s manifests --config "$WORK/coffer.yaml" --create-namespace >"$WORK/m2.yaml" 2>/dev/null
cmp -s "$WORK/m1.yaml" "$WORK/m2.yaml" || fail "the same config gave different output"
grep -q 'job manual has no schedule: no CronJob' "$WORK/m1.err" || fail "no note for the unscheduled job: $(cat "$WORK/m1.err")"
grep -q 'job app-files: run_on is ignored' "$WORK/m1.err" || fail "no note for run_on"
if grep -Eq "$SECRETS" "$WORK/m1.yaml" "$WORK/m1.err"; then fail "a secret value is in the output"; fi

step "the YAML parses; kinds in apply order"
kinds "$WORK/m1.yaml" >"$WORK/kinds.txt"
printf '%s\n' "Namespace - backup" "ServiceAccount backup coffer" \
    "ServiceAccount backup coffer-shop-objects" "ClusterRole - coffer-shop-objects-reader" \
    "ClusterRole - coffer-shop-objects-cluster" "ClusterRoleBinding - coffer-shop-objects-cluster" \
    "RoleBinding shop coffer-shop-objects-reader" "ConfigMap backup coffer-config" \
    "CronJob backup coffer-shop-objects" "CronJob backup coffer-app-files" \
    "CronJob backup coffer-pg" "CronJob backup coffer-to-cloud" >"$WORK/kinds.want"
# jobs in config order: include: comes first in the main file
diff -u "$WORK/kinds.want" "$WORK/kinds.txt" || fail "unexpected objects"

step "schemas (kubernetes-models)"
k8s_api_deps
node "$ROOT/tests/k8s-api/validate.js" "$WORK/m1.yaml" >"$WORK/validate.txt" ||
    fail "schema validation: $(cat "$WORK/validate.txt")"
grep -q '^12 passed, 0 failed, 0 skipped$' "$WORK/validate.txt" || fail "$(tail -1 "$WORK/validate.txt")"

step "the ConfigMap's configuration is a valid coffer config"
python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d["kind"] == "ConfigMap":
        print(d["data"]["config.yaml"].replace("/etc/coffer/secrets", sys.argv[2]), end="")' \
    "$WORK/m1.yaml" "$WORK/pod" >"$WORK/pod.yaml"
grep -q 'password_file: /.*/pod/local/password' "$WORK/pod.yaml" || fail "password_file not rewritten: $(cat "$WORK/pod.yaml")"
grep -qF 'AWS_SECRET_ACCESS_KEY: ${AWS_SECRET_ACCESS_KEY}' "$WORK/pod.yaml" || fail 'a ${VAR} was not kept'
if grep -q 'kubernetes' "$WORK/pod.yaml"; then fail "kubernetes: sections left in the pod's config"; fi
grep -q 'name: shop-objects' "$WORK/pod.yaml" || fail "the included file was not merged"
mkdir -p "$WORK/pod/local" "$WORK/pod/cloud"
echo a >"$WORK/pod/local/password"
echo b >"$WORK/pod/cloud/password"
AWS_ACCESS_KEY_ID=key "$COFFER" config check --config "$WORK/pod.yaml" >"$WORK/check.txt" 2>&1 ||
    fail "config check of the pod's config: $(cat "$WORK/check.txt")"
grep -qF '"echo $COFFER_JOB_STATUS"' "$WORK/check.txt" || fail "hook text changed: $(grep command "$WORK/check.txt")"
grep -q 'name: to-cloud' "$WORK/check.txt" || fail "copy task missing from the pod's config"

step "apply to the test API server with kubectl"
k8s_api_certs "$WORK/k8s-api"
python3 -c '
import json, sys
u = json.load(open(sys.argv[1]))
u["tokens"]["shop-sa-token"] = "system:serviceaccount:backup:coffer-shop-objects"
u["users"]["system:serviceaccount:backup:coffer-shop-objects"] = {"rbac": True}
json.dump(u, open(sys.argv[1], "w"))' "$WORK/k8s-api/users.json"
k8s_api_start 49101 "$ROOT/tests/k8s-api/seed/shop.yaml"
export KUBECONFIG=$WORK/admin.kc
k8s_kubeconfig "$KUBECONFIG"
kubectl apply --validate=false -f "$WORK/m1.yaml" >"$WORK/apply.txt" 2>&1 || fail "kubectl apply: $(cat "$WORK/apply.txt")"
[ "$(grep -c created "$WORK/apply.txt")" = 12 ] || fail "not every object created: $(cat "$WORK/apply.txt")"

step "the objects have the right fields"
kubectl get cronjobs -n backup -o json >"$WORK/cj.json"
kubectl get clusterroles,clusterrolebindings,rolebindings -A -o json >"$WORK/rbac.json"
python3 "$ROOT/tests/integration/k8s_manifests_check.py" "$WORK/cj.json" "$WORK/rbac.json" ||
    fail "field checks failed"

step "the export job's RBAC: its namespace readable, the others not"
k8s_kubeconfig "$WORK/sa.kc" shop-sa-token shop
"$COFFER" k8s export --kubeconfig "$WORK/sa.kc" -n shop --include-secrets --out "$WORK/exp" >"$WORK/exp.txt" 2>"$WORK/exp.err" ||
    fail "export with the generated RBAC: $(cat "$WORK/exp.err")"
[ -f "$WORK/exp/shop/deployments.apps/web.json" ] || fail "deployments of shop not exported: $(cat "$WORK/exp.err")"
[ -e "$WORK/exp/shop/secrets" ] && fail "secrets exported without include-secrets"
grep -q 'secrets in namespace "shop": forbidden' "$WORK/exp.err" || fail "no warning for secrets: $(cat "$WORK/exp.err")"
"$COFFER" k8s export --kubeconfig "$WORK/sa.kc" -n other --out "$WORK/other" >"$WORK/other.txt" 2>"$WORK/other.err" || true
# only the Namespace object itself (cluster-wide get on namespaces), none of its contents
[ "$(cd "$WORK/other" && find . -type f)" = "./_cluster/namespaces/other.json" ] ||
    fail "namespace other readable: $(cd "$WORK/other" && find . -type f)"
grep -q 'configmaps in namespace "other": forbidden' "$WORK/other.err" || fail "$(cat "$WORK/other.err")"
k8s_api_stop

step "--job and --namespace select"
"$COFFER" k8s manifests --config "$WORK/coffer.yaml" --job pg -n ops >"$WORK/pg.yaml" 2>/dev/null
kinds "$WORK/pg.yaml" >"$WORK/pg.kinds"
printf 'ServiceAccount ops coffer\nConfigMap ops coffer-config\nCronJob ops coffer-pg\n' |
    diff -u - "$WORK/pg.kinds" || fail "--job pg -n ops"

step "bad input: clear errors, nothing on stdout"
bad() { # FILE EXPECTED-MESSAGE-REGEX; the config comes on stdin
    local rc=0
    cat >"$WORK/$1"
    "$COFFER" k8s manifests --config "$WORK/$1" >"$WORK/bad.out" 2>"$WORK/bad.err" || rc=$?
    [ "$rc" = 1 ] || fail "$1: expected exit 1, got $rc ($(cat "$WORK/bad.err"))"
    [ -s "$WORK/bad.out" ] && fail "$1: output written on an error"
    grep -Eq "$2" "$WORK/bad.err" || fail "$1: unexpected message: $(cat "$WORK/bad.err")"
    if grep -Eq "$SECRETS" "$WORK/bad.err"; then fail "$1: a secret in the message"; fi
}
bad inline.yaml 'inline.yaml:2:3: repository "main": its password would have to be in the ConfigMap; store it in a Secret and name it under kubernetes.repositories.main' <<'END_CONFIG'
repositories:
  main: {url: /srv/b, password: supersecret-hook-5}
jobs:
  - {name: j, type: files, paths: [/x], schedule: "@daily", repositories: [main]}
END_CONFIG
bad unknown.yaml 'unknown.yaml:5:3: unknown key "imagePullPolicy" in kubernetes.*expected one of: .*image_pull_policy' <<'END_CONFIG'
repositories:
  main: {url: /srv/b, password: x}
kubernetes:
  namespace: backup
  imagePullPolicy: Always
END_CONFIG
bad novol.yaml 'novol.yaml:13:17: job "j": volume "dta" is not defined under kubernetes.volumes \(defined: data\)' <<'END_CONFIG'
repositories:
  main: {url: /srv/b, password: x}
kubernetes:
  repositories: {main: {password: {secret: s, key: k}}}
  volumes: {data: {claim: data}}
jobs:
  - name: j
    type: files
    paths: [/x]
    schedule: "@daily"
    repositories: [main]
    kubernetes:
      volumes: [{volume: dta, path: /x}]
END_CONFIG
bad literal-env.yaml 'repository "main": env AWS_SECRET_ACCESS_KEY has a literal value, which would be written into the ConfigMap' <<'END_CONFIG'
repositories:
  main: {url: /srv/b, password: x, env: {AWS_SECRET_ACCESS_KEY: supersecret-aws-2}}
kubernetes:
  repositories: {main: {password: {secret: s, key: k}}}
END_CONFIG
bad badref.yaml 'badref.yaml:4:.*secret: "Coffer_Repo" is not a Kubernetes name' <<'END_CONFIG'
repositories:
  main: {url: /srv/b, password: x}
kubernetes:
  repositories: {main: {password: {secret: Coffer_Repo, key: k}}}
END_CONFIG
bad every.yaml 'copy task "a-to-b": every: 420s has no exact cron schedule; give schedule: instead' <<'END_CONFIG'
repositories:
  a: {url: /srv/a, password: x}
  b: {url: /srv/b, password: y}
kubernetes:
  repositories: {a: {password: {secret: a, key: k}}, b: {password: {secret: b, key: k}}}
copy:
  - {from: a, to: b, every: 7m}
END_CONFIG
assert_exit 1 "$COFFER" k8s manifests --config "$WORK/coffer.yaml" --job nope
assert_exit 2 "$COFFER" k8s manifests --config "$WORK/coffer.yaml" -n Bad_NS
assert_exit 2 env -u COFFER_CONFIG "$COFFER" k8s manifests
echo OK
