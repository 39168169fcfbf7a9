#!/bin/bash
# test_k8s_export.sh -- `coffer k8s export` against the test API server seeded with a realistic
# namespace (tests/k8s-api/seed/shop.yaml): layout, pruning, owned/derived objects skipped,
# Secrets only on request, CRDs and PVs added automatically, pagination, label selector,
# all namespaces, 403/404 kinds as warnings, retries on 429, a 5xx kind giving exit 3 and a
# partial snapshot, the archive, snapshots that deduplicate and `coffer diff` with field diffs,
# and every authentication path (token, tokenFile, client certificate data, exec plugin,
# in-cluster) plus bad input (broken kubeconfig, unknown context, 401, wrong CA, HTML).
# Layer: integration test. Ports 49010-49019.
. "$(dirname "$0")/lib.sh"
require_coffer
need_cmd node npm openssl curl python3 zstd
. "$ROOT/tests/servers/k8s-api.sh"

k8s_api_start 49011 "$ROOT/tests/k8s-api/seed/shop.yaml"
export KUBECONFIG=$WORK/kubeconfig
k8s_kubeconfig "$KUBECONFIG"
export COFFER_KDF=scrypt:n=1024,r=8,p=1

# files DIR: the sorted relative paths of the files below DIR
files() { (cd "$1" && find . -type f | sed 's#^\./##' | sort); }
has() { [ -f "$1" ] || fail "missing $1"; }
hasnt() { [ ! -e "$1" ] || fail "should not exist: $1"; }
expect_err() { # expect_err PATTERN CMD...: exit 1 and PATTERN in stderr
    local pat=$1 rc=0
    shift
    "$@" >/dev/null 2>"$WORK/bad.txt" || rc=$?
    assert_eq "$rc" 1 "exit code of $*"
    grep -q -- "$pat" "$WORK/bad.txt" || fail "expected '$pat', got: $(cat "$WORK/bad.txt")"
}


step "export one namespace"
"$COFFER" k8s export -n shop --out "$WORK/out" 2>"$WORK/err.txt" >"$WORK/stdout.txt"
o=$WORK/out
for f in _cluster/namespaces/shop.json shop/configmaps/web-config.json shop/deployments.apps/web.json \
    shop/services/web.json shop/persistentvolumeclaims/db-data.json shop/statefulsets.apps/db.json \
    shop/cronjobs.batch/report.json shop/widgets.example.com/blue.json shop/pods/debug.json \
    shop/rolebindings.rbac.authorization.k8s.io/web-reader.json \
    _cluster/persistentvolumes/pv-db.json \
    _cluster/customresourcedefinitions.apiextensions.k8s.io/widgets.example.com.json; do
    has "$o/$f"
done
step "owned and derived objects, secrets, unrelated cluster objects are left out"
hasnt "$o/shop/replicasets.apps"            # owned by the deployment
hasnt "$o/shop/pods/web-7d4b9-x1.json"      # owned by the replica set
hasnt "$o/shop/jobs.batch/report-28000000.json" # owned by the cron job
has "$o/shop/jobs.batch/backfill.json"      # a job nobody owns
hasnt "$o/shop/events" ; hasnt "$o/shop/endpoints"; hasnt "$o/shop/secrets"
hasnt "$o/_cluster/persistentvolumes/pv-unrelated.json"
hasnt "$o/_cluster/clusterroles.rbac.authorization.k8s.io"
hasnt "$o/other"
grep -q 'secrets are not exported without --include-secrets' "$WORK/err.txt" || fail "no secrets warning"
grep -q 'exported 22 objects' "$WORK/stdout.txt" || fail "summary: $(cat "$WORK/stdout.txt")"

step "pruning and format"
python3 - "$o" <<'PY'
import json, os, sys
root = sys.argv[1]
for dp, _, fs in os.walk(root):
    for f in fs:
        p = os.path.join(dp, f)
        text = open(p).read()
        obj = json.loads(text)                      # valid JSON, one document
        assert text.endswith("}\n") and text.startswith('{\n  "apiVersion"'), p
        assert list(obj)[:2] == ["apiVersion", "kind"], p
        assert "status" not in obj, p
        m = obj["metadata"]
        for k in ("uid", "selfLink", "resourceVersion", "creationTimestamp", "generation",
                  "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds"):
            assert k not in m, (p, k)
        assert "kubectl.kubernetes.io/last-applied-configuration" not in m.get("annotations", {}), p
cm = json.load(open(os.path.join(root, "shop/configmaps/web-config.json")))
assert cm["metadata"]["annotations"] == {"team": "web"}, cm
assert cm["data"] == {"greeting": "hello", "color": "blue"}
assert list(cm["data"]) == ["greeting", "color"], "API key order kept"
PY
# files carry the object's creation time
assert_eq "$(date -u -r "$o/shop/configmaps/web-config.json" +%Y-%m-%dT%H:%M:%SZ)" 2026-01-02T03:04:05Z mtime

step "options: secrets, owned, last-applied, status, cluster resources, page size"
"$COFFER" -q k8s export -n shop --out "$WORK/full" --include-secrets --include-owned \
    --keep-last-applied --keep-status --cluster-resources
has "$WORK/full/shop/secrets/db-password.json"
has "$WORK/full/shop/replicasets.apps/web-7d4b9.json"
has "$WORK/full/shop/events/web.17a.json"
has "$WORK/full/_cluster/persistentvolumes/pv-unrelated.json"
has "$WORK/full/_cluster/clusterroles.rbac.authorization.k8s.io/widget-viewer.json"
has "$WORK/full/_cluster/storageclasses.storage.k8s.io/manual.json"
hasnt "$WORK/full/_cluster/nodes"
grep -q last-applied-configuration "$WORK/full/shop/configmaps/web-config.json" || fail "--keep-last-applied"
grep -q '"readyReplicas": 2' "$WORK/full/shop/deployments.apps/web.json" || fail "--keep-status"
"$COFFER" -q k8s export -n shop --out "$WORK/paged" --page-size 1
diff <(files "$WORK/out") <(files "$WORK/paged") || fail "page size 1 exported a different set"
diff -r "$WORK/out" "$WORK/paged" || fail "page size 1 exported different content"

step "selector, kinds, all namespaces"
"$COFFER" -q k8s export -n shop -l app=web --out "$WORK/sel"
assert_eq "$(files "$WORK/sel" | tr '\n' ' ')" "_cluster/namespaces/shop.json shop/configmaps/web-config.json shop/deployments.apps/web.json shop/services/web.json " "label selector"
"$COFFER" k8s export -n shop --include-kinds cm,deploy,nosuchkind --out "$WORK/kinds" >/dev/null 2>"$WORK/err.txt"
grep -q 'kind "nosuchkind" is not served' "$WORK/err.txt" || fail "no warning for an unknown kind"
assert_eq "$(files "$WORK/kinds" | grep -vc '^_cluster/namespaces/')" 3 "include kinds (2 configmaps, 1 deployment)"
"$COFFER" -q k8s export -n shop --exclude-kinds pods,services --out "$WORK/excl"
hasnt "$WORK/excl/shop/pods"; hasnt "$WORK/excl/shop/services"; has "$WORK/excl/shop/configmaps/web-config.json"
"$COFFER" -q k8s export -A --out "$WORK/all"
has "$WORK/all/other/configmaps/other-config.json"
has "$WORK/all/_cluster/namespaces/kube-system.json"
expect_err 'namespace "nosuchns" does not exist' "$COFFER" k8s export -n nosuchns --out "$WORK/nons"

step "least privilege: 403 kinds are warnings, exit 0"
k8s_kubeconfig "$WORK/reader.kc" reader-token
"$COFFER" k8s export --kubeconfig "$WORK/reader.kc" -n shop --include-secrets --cluster-resources \
    --out "$WORK/reader" 2>"$WORK/err.txt" || fail "export as reader failed: $(cat "$WORK/err.txt")"
grep -q 'secrets.*forbidden: secrets is forbidden: User "reader"' "$WORK/err.txt" || fail "no 403 warning for secrets: $(cat "$WORK/err.txt")"
grep -q 'clusterroles.rbac.authorization.k8s.io: forbidden' "$WORK/err.txt" || fail "no 403 warning for clusterroles"
assert_eq "$(grep -c 'forbidden' "$WORK/err.txt")" 2 "one warning line per forbidden kind"
has "$WORK/reader/shop/configmaps/web-config.json"
hasnt "$WORK/reader/shop/secrets"

step "retries: 429 with Retry-After, then a 500 that does not go away"
k8s_curl POST /_test/faults -d '{"path":"/api/v1/namespaces/shop/configmaps$","code":429,"count":2,"retryAfter":1}' -o /dev/null
"$COFFER" -q k8s export -n shop --out "$WORK/retry" || fail "a 429 was not retried"
has "$WORK/retry/shop/configmaps/web-config.json"

step "archive"
mkdir "$WORK/arch"
"$COFFER" k8s export -n shop --archive "$WORK/arch" >"$WORK/stdout.txt"
a=$(ls "$WORK"/arch/k8s-export-*.tar.zst)
[[ $(basename "$a") =~ ^k8s-export-[0-9]{8}-[0-9]{6}Z\.tar\.zst$ ]] || fail "archive name $a"
diff <(tar -I zstd -tf "$a" | sort) <(files "$WORK/out") || fail "archive content differs from --out"
mkdir "$WORK/unpacked" && tar -I zstd -xf "$a" -C "$WORK/unpacked"
diff -r "$WORK/unpacked" "$WORK/out" || fail "archive files differ"
"$COFFER" -q k8s export -n shop --archive "$WORK/arch/x-%Y.tar.zst"
ls "$WORK"/arch/x-20[0-9][0-9].tar.zst >/dev/null || fail "strftime name"
ls "$WORK"/arch/*.tmp-* 2>/dev/null && fail "temporary archive left behind"

step "repository: snapshots deduplicate, diff shows object fields"
R=$WORK/repo
"$COFFER" -r "$R" init >/dev/null
"$COFFER" -r "$R" k8s export -n shop --tag nightly >"$WORK/s1.txt"
"$COFFER" -r "$R" k8s export -n shop --tag nightly >"$WORK/s2.txt"
ids=($("$COFFER" -r "$R" snapshots --json | python3 -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)]'))
assert_eq "${#ids[@]}" 2 snapshots
"$COFFER" -r "$R" snapshots --json | python3 -c '
import json,sys
s=json.load(sys.stdin)
assert all(x["kind"]=="k8s" and x["status"]=="complete" for x in s), s
assert s[0]["tree"]==s[1]["tree"], "unchanged namespace: same tree"'
"$COFFER" -r "$R" diff "${ids[0]}" "${ids[1]}" | grep -q '^0 added, 0 removed, 0 modified' || fail "diff of identical exports"
k8s_curl PATCH /apis/apps/v1/namespaces/shop/deployments/web -H 'Content-Type: application/strategic-merge-patch+json' \
    -d '{"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.26"}]}}}}' -o /dev/null
k8s_curl DELETE /api/v1/namespaces/shop/configmaps/web-config -o /dev/null
k8s_curl POST /api/v1/namespaces/shop/configmaps -H 'Content-Type: application/json' \
    -d '{"metadata":{"name":"new-config"},"data":{"a":"b"}}' -o /dev/null
"$COFFER" -r "$R" k8s export -n shop >/dev/null
"$COFFER" -r "$R" diff "${ids[1]}" latest >"$WORK/diff.txt"
grep -q '^+ /shop/configmaps/new-config.json' "$WORK/diff.txt" || fail "added object: $(cat "$WORK/diff.txt")"
grep -q '^- /shop/configmaps/web-config.json' "$WORK/diff.txt" || fail "removed object"
grep -q '^M /shop/deployments.apps/web.json' "$WORK/diff.txt" || fail "modified object"
grep -q '^    ~ spec.replicas: 2 -> 3$' "$WORK/diff.txt" || fail "field diff: $(cat "$WORK/diff.txt")"
grep -q '^    ~ spec.template.spec.containers\[web\].image: "nginx:1.25" -> "nginx:1.26"$' "$WORK/diff.txt" || fail "container image diff"
assert_eq "$(grep -c '^[-+M] ' "$WORK/diff.txt")" 3 "changed objects"
"$COFFER" -r "$R" diff "${ids[1]}" latest --json | python3 -c '
import json,sys
lines=[json.loads(l) for l in sys.stdin]
m=[l for l in lines if l.get("change")=="modified"][0]
assert {"op":"replace","path":"spec.replicas","old":2,"new":3} in m["diff"], m'
"$COFFER" -r "$R" restore "${ids[0]}" --target "$WORK/restored" >/dev/null
diff -r "$WORK/restored" "$WORK/out" >/dev/null || fail "files restored from the first snapshot differ from --out"
"$COFFER" -r "$R" check >/dev/null

step "a kind failing with 5xx: exit 3, snapshot partial"
k8s_curl POST /_test/faults -d '{"path":"/apis/networking.k8s.io/v1/namespaces/shop/ingresses$","code":500,"count":6}' -o /dev/null
rc=0
"$COFFER" -r "$R" k8s export -n shop >"$WORK/out5.txt" 2>"$WORK/err5.txt" || rc=$?
assert_eq "$rc" 3 "exit code with a failing kind"
grep -q 'ingresses.networking.k8s.io in namespace "shop": server error' "$WORK/err5.txt" || fail "5xx message: $(cat "$WORK/err5.txt")"
"$COFFER" -r "$R" snapshots --json | python3 -c '
import json,sys
s=json.load(sys.stdin)[-1]
assert s["status"]=="partial", s'

step "authentication: client certificate data, tokenFile, exec plugin, in-cluster"
b64() { base64 -w0 <"$1"; }
cat >"$WORK/cert.kc" <<KC
apiVersion: v1
kind: Config
current-context: certs
contexts:
- {name: certs, context: {cluster: c, user: u, namespace: shop}}
clusters:
- {name: c, cluster: {server: "$K8S_URL", certificate-authority-data: $(b64 "$K8S_DIR/ca.crt")}}
users:
- {name: u, user: {client-certificate-data: $(b64 "$K8S_DIR/client.crt"), client-key-data: $(b64 "$K8S_DIR/client.key")}}
KC
"$COFFER" -q k8s export --kubeconfig "$WORK/cert.kc" --include-secrets --out "$WORK/cert"
has "$WORK/cert/shop/secrets/db-password.json"
printf 'admin-token\n' >"$WORK/token"
cat >"$WORK/exec.sh" <<'SH'
#!/bin/sh
# prints an ExecCredential; checks that kubectl's contract is kept
[ -n "$KUBERNETES_EXEC_INFO" ] || exit 3
[ "$EXTRA" = yes ] || exit 4
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"admin-token","expirationTimestamp":"2099-01-01T00:00:00Z"}}\n'
SH
chmod +x "$WORK/exec.sh"
cat >"$WORK/multi.kc" <<KC
apiVersion: v1
kind: Config
current-context: viafile
contexts:
- {name: viafile, context: {cluster: c, user: file, namespace: other}}
- {name: viaexec, context: {cluster: c, user: exec, namespace: other}}
- {name: insecure, context: {cluster: noca, user: file, namespace: other}}
clusters:
- {name: c, cluster: {server: "$K8S_URL", certificate-authority: k8s-api/ca.crt}}
- {name: noca, cluster: {server: "$K8S_URL", insecure-skip-tls-verify: true}}
users:
- {name: file, user: {tokenFile: token}}
- name: exec
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./exec.sh
      env: [{name: EXTRA, value: "yes"}]
      interactiveMode: Never
KC
for ctx in viafile viaexec insecure; do
    "$COFFER" -q k8s export --kubeconfig "$WORK/multi.kc" --context $ctx --out "$WORK/ctx-$ctx"
    has "$WORK/ctx-$ctx/other/configmaps/other-config.json"
done
mkdir -p "$WORK/sa" "$WORK/emptyhome"
cp "$K8S_DIR/ca.crt" "$WORK/sa/ca.crt"; printf 'admin-token' >"$WORK/sa/token"; printf 'other\n' >"$WORK/sa/namespace"
env -u KUBECONFIG HOME="$WORK/emptyhome" COFFER_K8S_SA_ROOT="$WORK/sa" KUBERNETES_SERVICE_HOST=127.0.0.1 \
    KUBERNETES_SERVICE_PORT=49011 "$COFFER" -q k8s export --out "$WORK/incluster"
has "$WORK/incluster/other/configmaps/other-config.json"

step "bad input: clear messages naming the file, context or server"
printf 'apiVersion: v1\nclusters: [\n  - {name: x\n' >"$WORK/broken.kc"
expect_err "kubeconfig $WORK/broken.kc: line" "$COFFER" k8s export --kubeconfig "$WORK/broken.kc" --out "$WORK/b1"
expect_err "has no context \"nope\"" "$COFFER" k8s export --kubeconfig "$WORK/multi.kc" --context nope --out "$WORK/b2"
k8s_kubeconfig "$WORK/expired.kc" expired-token
expect_err 'unauthorized (HTTP 401): the server refused the credentials of context "test"' \
    "$COFFER" k8s export --kubeconfig "$WORK/expired.kc" -n shop --out "$WORK/b3"
grep -q expired-token "$WORK/bad.txt" && fail "the token appears in an error message"
sed "s#$K8S_DIR/ca.crt#$K8S_DIR/other-ca.crt#" "$KUBECONFIG" >"$WORK/wrongca.kc"
expect_err "TLS with $K8S_URL failed (context \"test\"" "$COFFER" k8s export --kubeconfig "$WORK/wrongca.kc" -n shop --out "$WORK/b4"
k8s_curl POST /_test/faults -d '{"path":"^/api$","html":true,"count":1}' -o /dev/null
expect_err "answered text/html (HTTP 200), not Kubernetes JSON; is the server URL of context \"test\"" \
    "$COFFER" k8s export -n shop --out "$WORK/b5"
expect_err "the export directory $WORK/out is not empty" "$COFFER" k8s export -n shop --out "$WORK/out"
assert_exit 2 "$COFFER" k8s export -n shop
k8s_api_stop
echo OK
