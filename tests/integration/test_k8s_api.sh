#!/bin/bash
# test_k8s_api.sh -- the test Kubernetes API server (tests/k8s-api/server.js) is realistic
# enough for the real kubectl: discovery, get, apply (client- and server-side), a CRD and its
# custom resources, scale, label, delete with namespace termination; and its error objects
# (401, 403 per kind for a restricted token, 404, 409, 422 from kubernetes-models validation),
# pagination, watch with bookmarks and 410 Gone, client-certificate auth.
# Layer: integration test. Ports 49000-49009.
. "$(dirname "$0")/lib.sh"
need_cmd node npm openssl curl
command -v kubectl >/dev/null 2>&1 || fail "kubectl is missing (scripts/install-deps.sh test installs kubernetes-client)"
. "$ROOT/tests/servers/k8s-api.sh"

step "start the server"
k8s_api_start 49001 "" --history 40 --bookmark-ms 200
export KUBECONFIG=$WORK/kubeconfig
k8s_kubeconfig "$KUBECONFIG"
# contains PATTERN: stdin matches (reads all of it, so no SIGPIPE under pipefail)
contains() {
    local s
    s=$(cat)
    grep -q -- "$1" <<<"$s"
}

step "discovery"
kc version | contains 'v1.32.0-coffer-test' || fail "kubectl version"
kc api-resources >"$WORK/res.txt"
grep -qE '^deployments +deploy +apps/v1 +true +Deployment' "$WORK/res.txt" || fail "api-resources lacks deployments"
grep -qE '^customresourcedefinitions +crd,crds' "$WORK/res.txt" || fail "api-resources lacks crds"
k8s_curl GET /apis | python3 -c '
import json,sys
d=json.load(sys.stdin); g={x["name"]:x for x in d["groups"]}
assert d["kind"]=="APIGroupList"
assert g["autoscaling"]["preferredVersion"]["version"]=="v2", g["autoscaling"]
assert g["apps"]["versions"][0]["groupVersion"]=="apps/v1"'

step "apply, get, scale, label"
cat >"$WORK/app.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: shop, labels: {app: web}}
data: {greeting: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1.25", ports: [{containerPort: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
YAML
kc apply --validate=false -f "$WORK/app.yaml" >"$WORK/out.txt"
grep -q 'deployment.apps/web created' "$WORK/out.txt" || fail "apply did not create: $(cat "$WORK/out.txt")"
assert_eq "$(kc get deploy web -n shop -o jsonpath='{.spec.replicas}')" 2 replicas
ip=$(kc get svc web -n shop -o jsonpath='{.spec.clusterIP}')
[[ $ip == 10.96.* ]] || fail "no cluster IP allocated: $ip"
np=$(kc get svc web -n shop -o jsonpath='{.spec.ports[0].nodePort}')
[ "$np" -ge 30000 ] || fail "no node port allocated"
sed -i 's/replicas: 2/replicas: 3/' "$WORK/app.yaml"
kc apply --validate=false -f "$WORK/app.yaml" | contains 'deployment.apps/web configured' || fail "re-apply"
assert_eq "$(kc get deploy web -n shop -o jsonpath='{.spec.replicas}/{.metadata.generation}')" 3/2 "replicas/generation"
kc apply --server-side --validate=false -f "$WORK/app.yaml" | contains 'serverside-applied' || fail "server-side apply"
# (through the API: kubectl 1.20 has no --show-managed-fields, 1.32 hides them by default)
k8s_curl GET /apis/apps/v1/namespaces/shop/deployments/web | contains '"manager":"kubectl"' || fail "no managedFields for kubectl"
kc scale deploy web -n shop --replicas=5 >/dev/null
assert_eq "$(kc get deploy web -n shop -o jsonpath='{.spec.replicas}')" 5 "scaled replicas"
kc label cm web-config -n shop tier=front >/dev/null
assert_eq "$(kc get cm -n shop -l 'tier in (front,back)' -o name)" configmap/web-config "label selector"
kc get sa default -n shop >/dev/null || fail "namespace has no default service account"

step "CRD and custom resources"
cat >"$WORK/crd.yaml" <<'YAML'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1beta1
    served: true
    storage: false
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
YAML
kc apply --validate=false -f "$WORK/crd.yaml" >/dev/null
kc wait --for condition=established --timeout=20s crd/widgets.example.com >/dev/null
printf 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: shop}\nspec: {size: 3}\n' >"$WORK/w1.yaml"
kc apply --validate=false -f "$WORK/w1.yaml" | contains 'widget.example.com/w1 created' || fail "create a custom resource"
assert_eq "$(kc get wd -n shop -o jsonpath='{.items[0].spec.size}')" 3 "custom resource by short name"

step "errors: 422, 409, 404, 403, 401"
printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad, namespace: shop}\nspec:\n  replicas: two\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}\n' >"$WORK/bad.yaml"
kc apply --validate=false -f "$WORK/bad.yaml" 2>"$WORK/err.txt" && fail "an invalid deployment was accepted"
grep -q 'is invalid: spec.replicas' "$WORK/err.txt" || fail "no 422 naming the field: $(cat "$WORK/err.txt")"
code=$(k8s_curl POST /api/v1/namespaces/shop/configmaps -H 'Content-Type: application/json' \
    -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web-config"}}' -o "$WORK/st.json" -w '%{http_code}')
assert_eq "$code" 409 "create of an existing object"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["kind"]=="Status" and s["reason"]=="AlreadyExists", s' "$WORK/st.json"
{ kc get cm nope -n shop 2>&1 || true; } | contains 'configmaps "nope" not found' || fail "404"
k8s_kubeconfig "$WORK/reader.kc" reader-token
KUBECONFIG=$WORK/reader.kc kc get cm -n shop >/dev/null || fail "reader cannot list configmaps"
{ KUBECONFIG=$WORK/reader.kc kc get secrets -n shop 2>&1 || true; } | contains 'secrets is forbidden: User "reader" cannot list resource "secrets"' ||
    fail "403 for the restricted token"
k8s_kubeconfig "$WORK/bad.kc" expired-token
{ KUBECONFIG=$WORK/bad.kc kc get cm -n shop 2>&1 || true; } | contains 'must be logged in\|nauthorized' || fail "401"

step "client certificate"
code=$(curl -sS --cacert "$K8S_DIR/ca.crt" --cert "$K8S_DIR/client.crt" --key "$K8S_DIR/client.key" \
    -o /dev/null -w '%{http_code}' "$K8S_URL/api/v1/namespaces/shop/secrets")
assert_eq "$code" 200 "client-certificate request"

step "pagination"
for i in $(seq 1 7); do
    k8s_curl POST /api/v1/namespaces/shop/configmaps -H 'Content-Type: application/json' \
        -d "{\"metadata\":{\"name\":\"page-$i\"},\"data\":{\"i\":\"$i\"}}" -o /dev/null
done
names=() cont=
while :; do
    k8s_curl GET "/api/v1/namespaces/shop/configmaps?limit=3${cont:+&continue=$cont}" >"$WORK/page.json"
    n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["items"]))' "$WORK/page.json")
    [ "$n" -le 3 ] || fail "page larger than the limit"
    names+=($(python3 -c 'import json,sys; [print(i["metadata"]["name"]) for i in json.load(open(sys.argv[1]))["items"]]' "$WORK/page.json"))
    cont=$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.load(open(sys.argv[1]))["metadata"].get("continue","")))' "$WORK/page.json")
    [ -n "$cont" ] || break
done
assert_eq "${#names[@]}" 9 "configmaps over all pages (7 + web-config + kube-root-ca.crt)"

step "watch: events, bookmarks, 410 Gone"
rv=$(k8s_curl GET /api/v1/namespaces/shop/configmaps | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
k8s_curl GET "/api/v1/namespaces/shop/configmaps?watch=1&resourceVersion=$rv&allowWatchBookmarks=true&timeoutSeconds=2" >"$WORK/watch.txt" &
wpid=$!
sleep 0.5
k8s_curl DELETE /api/v1/namespaces/shop/configmaps/page-1 -o /dev/null
wait $wpid
grep -q '"type":"DELETED".*"name":"page-1"' "$WORK/watch.txt" || fail "no DELETED event"
grep -q '"type":"BOOKMARK"' "$WORK/watch.txt" || fail "no BOOKMARK event"
for i in $(seq 1 50); do
    k8s_curl PATCH /api/v1/namespaces/shop/configmaps/page-2 -H 'Content-Type: application/merge-patch+json' \
        -d "{\"data\":{\"i\":\"$i\"}}" -o /dev/null
done
code=$(k8s_curl GET "/api/v1/namespaces/shop/configmaps?watch=1&resourceVersion=$rv" -o "$WORK/gone.json" -w '%{http_code}')
assert_eq "$code" 410 "watch from a compacted resourceVersion"
grep -q '"reason":"Expired"' "$WORK/gone.json" || fail "410 without an Expired Status"

step "coffer's watch client (src/k8s/watch.c): list, events, bookmarks, re-list on 410"
probe=$(dirname "$COFFER")/tests/tools/k8s_watch_probe
[ -x "$probe" ] || fail "test tool $probe not built"
"$probe" "$KUBECONFIG" "" v1 configmaps shop 3 >"$WORK/probe.txt" 2>"$WORK/probe.err" &
ppid_=$!
sleep 1
k8s_curl POST /api/v1/namespaces/shop/configmaps -H 'Content-Type: application/json' \
    -d '{"metadata":{"name":"watched"},"data":{"a":"1"}}' -o /dev/null
k8s_curl PATCH /api/v1/namespaces/shop/configmaps/watched -H 'Content-Type: application/merge-patch+json' \
    -d '{"data":{"a":"2"}}' -o /dev/null
k8s_curl DELETE /api/v1/namespaces/shop/configmaps/watched -o /dev/null
wait $ppid_ || fail "watch probe failed: $(cat "$WORK/probe.err")"
grep -q '^SYNC web-config$' "$WORK/probe.txt" || fail "no initial list: $(cat "$WORK/probe.txt")"
grep -v '^BOOKMARK' "$WORK/probe.txt" | grep -A2 '^ADDED watched$' | tr '\n' ' ' | grep -q '^ADDED watched MODIFIED watched DELETED watched' ||
    fail "events out of order: $(cat "$WORK/probe.txt")"
grep -q '^BOOKMARK [0-9]' "$WORK/probe.txt" || fail "no bookmark"
"$probe" "$KUBECONFIG" "" v1 configmaps shop 2 "$rv" >"$WORK/probe2.txt" 2>"$WORK/probe2.err" ||
    fail "watch probe from an old resourceVersion: $(cat "$WORK/probe2.err")"
head -1 "$WORK/probe2.txt" | grep -q '^RELIST$' || fail "no re-list after 410: $(cat "$WORK/probe2.txt")"
grep -q '^SYNC page-2$' "$WORK/probe2.txt" || fail "no list after the re-list"

step "delete: namespace termination and cascading"
kc delete -f "$WORK/w1.yaml" >/dev/null
kc delete -f "$WORK/app.yaml" --timeout=30s >"$WORK/del.txt"
grep -q 'namespace "shop" deleted' "$WORK/del.txt" || fail "delete"
for i in $(seq 50); do kc get ns shop >/dev/null 2>&1 || break; sleep 0.1; done
kc get ns shop >/dev/null 2>&1 && fail "namespace shop was never removed"
kc get cm -A -o name | grep -c page- >/dev/null && fail "objects of a deleted namespace remain"
kc delete crd widgets.example.com >/dev/null
kc api-resources | grep -c widgets >/dev/null && fail "CRD resources still served after the CRD was deleted"
k8s_api_stop
echo OK
