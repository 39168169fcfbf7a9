#!/bin/bash
# test_k8s_rbac.sh -- deploy/rbac/export: the Kustomize base and overlay render offline with
# `kubectl kustomize`, pass the kubernetes-models schemas, apply to the test API server with
# kubectl, and give the export service account exactly what they promise: everything but
# Secrets (a warning, exit 0), and Secrets too once the with-secrets overlay is applied. The
# server authorizes that account from the applied RBAC objects (tests/k8s-api/server.js).
# Layer: integration test. Ports 49030-49039.
. "$(dirname "$0")/lib.sh"
require_coffer
need_cmd node npm openssl curl
command -v kubectl >/dev/null 2>&1 || fail "kubectl is missing (scripts/install-deps.sh test installs kubernetes-client)"
. "$ROOT/tests/servers/k8s-api.sh"

step "render offline and validate"
KUBECONFIG=/dev/null kubectl kustomize "$ROOT/deploy/rbac/export/base" >"$WORK/base.yaml"
KUBECONFIG=/dev/null kubectl kustomize "$ROOT/deploy/rbac/export/with-secrets" >"$WORK/secrets.yaml"
grep -q 'name: coffer-export-secret-reader' "$WORK/base.yaml" || fail "the base lacks the secret-reader role"
grep -c 'kind: ClusterRoleBinding' "$WORK/base.yaml" | grep -qx 1 || fail "the base must bind only the reader"
grep -c 'kind: ClusterRoleBinding' "$WORK/secrets.yaml" | grep -qx 2 || fail "the overlay binds the secret reader"
k8s_api_deps
node "$ROOT/tests/k8s-api/validate.js" "$WORK/base.yaml" "$WORK/secrets.yaml" >"$WORK/validate.txt" ||
    fail "schema validation: $(cat "$WORK/validate.txt")"
grep -q '^11 passed, 0 failed, 0 skipped$' "$WORK/validate.txt" || fail "$(tail -1 "$WORK/validate.txt")"

k8s_api_start 49031 "$ROOT/tests/k8s-api/seed/shop.yaml"
export KUBECONFIG=$WORK/admin.kc
k8s_kubeconfig "$KUBECONFIG"
k8s_kubeconfig "$WORK/sa.kc" export-sa-token

step "no RBAC yet: every kind is forbidden (warnings), nothing exported"
"$COFFER" k8s export --kubeconfig "$WORK/sa.kc" -n shop --out "$WORK/none" >"$WORK/none.txt" 2>"$WORK/none.err" ||
    fail "export without permissions must still exit 0: $(cat "$WORK/none.err")"
grep -q 'exported 0 objects' "$WORK/none.txt" || fail "$(cat "$WORK/none.txt")"
grep -q 'configmaps in namespace "shop": forbidden: configmaps is forbidden: User "system:serviceaccount:coffer:coffer-export"' "$WORK/none.err" ||
    fail "$(cat "$WORK/none.err")"

step "apply the base: everything but secrets"
kubectl apply --validate=false -f "$WORK/base.yaml" >/dev/null
"$COFFER" k8s export --kubeconfig "$WORK/sa.kc" -n shop --include-secrets --cluster-resources \
    --out "$WORK/base" >/dev/null 2>"$WORK/base.err" || fail "export with the base role: $(cat "$WORK/base.err")"
[ -f "$WORK/base/shop/deployments.apps/web.json" ] || fail "deployments not readable"
[ -f "$WORK/base/_cluster/clusterroles.rbac.authorization.k8s.io/coffer-export-reader.json" ] || fail "cluster roles not readable"
[ -e "$WORK/base/shop/secrets" ] && fail "secrets exported without the secret reader"
grep -q 'secrets in namespace "shop": forbidden' "$WORK/base.err" || fail "no warning for secrets: $(cat "$WORK/base.err")"
# custom resources of a group the role does not name: one warning, the rest goes on
grep -q 'widgets.example.com in namespace "shop": forbidden' "$WORK/base.err" || fail "custom group not warned"

step "apply the overlay: secrets too"
kubectl apply --validate=false -f "$WORK/secrets.yaml" >/dev/null
"$COFFER" -q k8s export --kubeconfig "$WORK/sa.kc" -n shop --include-secrets --out "$WORK/all"
[ -f "$WORK/all/shop/secrets/db-password.json" ] || fail "secrets not exported with the secret reader"
k8s_api_stop
echo OK
