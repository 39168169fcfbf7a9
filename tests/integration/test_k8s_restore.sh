#!/bin/bash
# test_k8s_restore.sh -- `coffer k8s restore` from an export directory and from a snapshot into
# a second, empty test API server: dry run changes nothing, the priority order, namespace
# mapping (objects, PV claimRefs, binding subjects), restore-time cleanup, skip rules, the
# existing policy (skip, update), filters, CRDs waited on until Established, a per-object report
# (also --json), an object the server rejects (exit 3, the rest restored), a malformed file
# (nothing restored), and the round trip: export, restore into an empty server, export again:
# equal modulo the mapping and the cluster-assigned fields.
# Layer: integration test. Ports 49020-49029.
. "$(dirname "$0")/lib.sh"
require_coffer
need_cmd node npm openssl curl python3
. "$ROOT/tests/servers/k8s-api.sh"

# server A: the seeded source cluster
k8s_api_start 49021 "$ROOT/tests/k8s-api/seed/shop.yaml"
A_URL=$K8S_URL A_DIR=$K8S_DIR A_PID=$K8S_PID
k8s_kubeconfig "$WORK/a.kc"
"$COFFER" -q k8s export --kubeconfig "$WORK/a.kc" -n shop --include-secrets --out "$WORK/src"

# server B: an empty cluster; CRDs take a moment to become Established, like a real one
WORK_B=$WORK/b
mkdir -p "$WORK_B"
WORK=$WORK_B k8s_api_start 49022 "" --establish-ms 700
export KUBECONFIG=$WORK/b.kc
k8s_kubeconfig "$KUBECONFIG"
# kb GET PATH: an object of B as JSON
kb() { k8s_curl GET "$1"; }
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
expect_rc() { # expect_rc CODE OUTFILE CMD...
    local want=$1 out=$2 rc=0
    shift 2
    "$@" >"$out" 2>"$out.err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "expected exit $want from $*, got $rc: $(cat "$out" "$out.err")"
}

step "dry run: a plan, nothing changes"
expect_rc 0 "$WORK/plan.txt" "$COFFER" k8s restore --from "$WORK/src" --dry-run
grep -q '^would-create  deployments.apps shop/web$' "$WORK/plan.txt" || fail "plan: $(cat "$WORK/plan.txt")"
grep -q '^would-create  widgets.example.com shop/blue: its CRD is restored first$' "$WORK/plan.txt" || fail "plan for a custom object"
grep -q '^would-skip    namespaces default\|^skipped       secrets shop/web-token-abcde' "$WORK/plan.txt" || fail "plan lacks skips"
code=$(k8s_curl GET /api/v1/namespaces/shop -o /dev/null -w '%{http_code}')
assert_eq "$code" 404 "namespace after a dry run"

step "restore with a namespace map"
expect_rc 0 "$WORK/rep.txt" "$COFFER" k8s restore --from "$WORK/src" --namespace-map shop:shop2
cat "$WORK/rep.txt"
# priority order: CRD, namespace, PV, PVC, role, service accounts, binding, secrets, config
# maps, limit ranges, pods, services, then the rest alphabetically; the custom object after its CRD
order=$(grep -v '^[0-9]' "$WORK/rep.txt" | awk '{print $2}' | uniq | tr '\n' ' ')
assert_eq "$order" "customresourcedefinitions.apiextensions.k8s.io namespaces persistentvolumes persistentvolumeclaims roles.rbac.authorization.k8s.io serviceaccounts rolebindings.rbac.authorization.k8s.io secrets configmaps limitranges pods services cronjobs.batch deployments.apps ingresses.networking.k8s.io jobs.batch networkpolicies.networking.k8s.io statefulsets.apps widgets.example.com " "restore order"
grep -q '^created       widgets.example.com shop2/blue$' "$WORK/rep.txt" || fail "custom object after its CRD"
grep -q '^skipped       secrets shop2/web-token-abcde: service-account token secrets' "$WORK/rep.txt" || fail "token secret not skipped"
grep -q '^exists        serviceaccounts shop2/default: exists$' "$WORK/rep.txt" || fail "default SA"
grep -q ' 0 failed, 0 not applied' "$WORK/rep.txt" || fail "failures"

step "cleanup and mapping in the restored objects"
kb /api/v1/namespaces/shop2/services/web | jq_py 'd["spec"]["clusterIP"], d["spec"]["ports"][0]["nodePort"]' >"$WORK/svc.txt"
read -r ip np <"$WORK/svc.txt"
[ "$ip" != 10.96.0.50 ] || fail "the clusterIP was restored instead of newly assigned"
[ "$np" != 31080 ] || fail "an auto-assigned nodePort was restored"
assert_eq "$(kb /api/v1/namespaces/shop2/services/db | jq_py 'd["spec"]["clusterIP"]')" None "headless service keeps None"
kb /api/v1/namespaces/shop2/pods/debug | python3 -c '
import json,sys
p=json.load(sys.stdin)["spec"]
assert "nodeName" not in p and "priority" not in p, p
assert [v["name"] for v in p["volumes"]]==["scratch"], p["volumes"]
assert [m["name"] for m in p["containers"][0]["volumeMounts"]]==["scratch"], p'
kb /api/v1/persistentvolumes/pv-db | python3 -c '
import json,sys
d=json.load(sys.stdin); cr=d["spec"]["claimRef"]
assert cr["namespace"]=="shop2" and "uid" not in cr and "resourceVersion" not in cr, cr
assert "pv.kubernetes.io/bound-by-controller" not in d["metadata"].get("annotations",{})'
kb /api/v1/namespaces/shop2/persistentvolumeclaims/db-data | python3 -c '
import json,sys
a=json.load(sys.stdin)["metadata"].get("annotations",{})
assert not [k for k in a if k.startswith("pv.kubernetes.io/") or k.startswith("volume.")], a'
assert_eq "$(kb /apis/rbac.authorization.k8s.io/v1/namespaces/shop2/rolebindings/web-reader | jq_py 'd["subjects"][0]["namespace"]')" shop2 "binding subject"
kb /apis/batch/v1/namespaces/shop2/jobs/backfill | python3 -c '
import json,sys
t=json.dumps(json.load(sys.stdin))
assert "controller-uid" not in t, t'
assert_eq "$(kb /api/v1/namespaces/shop2/serviceaccounts/web | jq_py 'd.get("secrets")')" None "SA token secret reference"
assert_eq "$(kb /apis/apps/v1/namespaces/shop2/deployments/web | jq_py 'd["metadata"].get("ownerReferences")')" None ownerReferences

step "round trip: export B again, equal to A's export modulo the mapping"
"$COFFER" -q k8s export -n shop2 --include-secrets --out "$WORK/again"
python3 - "$WORK/src" "$WORK/again" <<'PY'
import json, os, sys
def load(root, mapping):
    out = {}
    for dp, _, fs in os.walk(root):
        for f in fs:
            p = os.path.relpath(os.path.join(dp, f), root)
            text = open(os.path.join(root, p)).read()
            for a, b in mapping:
                text = text.replace(f'"{a}"', f'"{b}"')
                p = p.replace(f"{a}/", f"{b}/", 1) if p.startswith(f"{a}/") else p.replace(f"/{a}.json", f"/{b}.json")
            out[p] = json.loads(text)
    return out
def norm(p, o):
    """what the target cluster assigns or the restore cleans up by design"""
    s, m = o.get("spec", {}), o["metadata"]
    if o["kind"] == "Service":
        if s.get("clusterIP") != "None":
            s.pop("clusterIP", None); s.pop("clusterIPs", None)
        for port in s.get("ports", []): port.pop("nodePort", None)
    if o["kind"] == "Pod":
        s.pop("nodeName", None); s.pop("priority", None)
        s["volumes"] = [v for v in s.get("volumes", []) if not v["name"].startswith("kube-api-access-")]
        for c in s["containers"]:
            c["volumeMounts"] = [v for v in c.get("volumeMounts", []) if not v["name"].startswith("kube-api-access-")]
    if o["kind"] == "PersistentVolume":
        s["claimRef"].pop("uid", None); s["claimRef"].pop("resourceVersion", None)
    for k in list(m.get("annotations", {})):
        if k.startswith("pv.kubernetes.io/") or k.startswith("volume."): del m["annotations"][k]
    if m.get("annotations") == {}: del m["annotations"]
    if o["kind"] == "Job":
        t = json.dumps(o)
        o = json.loads(t)
        for lab in (o["metadata"].get("labels", {}), o["spec"]["template"]["metadata"].get("labels", {})):
            lab.pop("controller-uid", None); lab.pop("batch.kubernetes.io/controller-uid", None)
        if o["metadata"].get("labels") == {}: del o["metadata"]["labels"]
        o["spec"].pop("selector", None)
    if o["kind"] == "ServiceAccount": o.pop("secrets", None)
    return o
a = load(sys.argv[1], [("shop", "shop2")])
b = load(sys.argv[2], [])
a.pop("shop2/secrets/web-token-abcde.json")    # skipped by design
assert sorted(a) == sorted(b), (sorted(set(a) ^ set(b)))
for p in a:
    x, y = norm(p, a[p]), norm(p, b[p])
    assert x == y, (p, x, y)
print("round trip equal:", len(a), "objects")
PY

step "existing objects: skip (default), then update"
expect_rc 0 "$WORK/again.txt" "$COFFER" k8s restore --from "$WORK/src" --namespace-map shop:shop2
grep -q '^0 created, 0 updated, 23 existed, 1 skipped, 0 failed' "$WORK/again.txt" || fail "second restore: $(tail -1 "$WORK/again.txt")"
k8s_curl PATCH /api/v1/namespaces/shop2/configmaps/web-config -H 'Content-Type: application/merge-patch+json' \
    -d '{"data":{"color":"red"}}' -o /dev/null
expect_rc 0 "$WORK/upd.txt" "$COFFER" k8s restore --from "$WORK/src" --namespace-map shop:shop2 \
    --existing update --include-kinds configmaps --json
python3 - "$WORK/upd.txt" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
objs = {l["name"]: l for l in lines if l["message_type"] == "object"}
assert objs["web-config"]["action"] == "updated", objs
assert objs["web-config"]["namespace"] == "shop2" and objs["web-config"]["resource"] == "configmaps"
s = [l for l in lines if l["message_type"] == "summary"][0]
assert s["updated"] == 2 and s["failed"] == 0 and s["filtered"] == 22, s
PY
assert_eq "$(kb /api/v1/namespaces/shop2/configmaps/web-config | jq_py 'd["data"]["color"]')" blue "updated config map"

step "filters: namespace, names, labels"
expect_rc 0 "$WORK/f.txt" "$COFFER" k8s restore --from "$WORK/src" --namespace-map shop:shop3 -l app=web
assert_eq "$(grep -c '^created' "$WORK/f.txt")" 3 "objects labelled app=web (config map, deployment, service)"
kb /api/v1/namespaces/shop3 | jq_py 'd["metadata"]["name"]' >/dev/null || fail "the namespace of the objects was not created"
expect_rc 0 "$WORK/n.txt" "$COFFER" k8s restore --from "$WORK/src" --namespace-map shop:shop4 --name web \
    --include-kinds deployments
grep -q '^created       deployments.apps shop4/web$' "$WORK/n.txt" || fail "name filter"
expect_rc 0 "$WORK/n2.txt" "$COFFER" k8s restore --from "$WORK/src" -n other
# cluster-scoped objects other than namespaces and PVs are not namespace-filtered (the CRD)
grep -q '^0 created, 0 updated, 1 existed, 0 skipped, 0 failed, 0 not applied; 23 filtered out' "$WORK/n2.txt" || fail "namespace filter: $(cat "$WORK/n2.txt")"

step "an object the server rejects: exit 3, the rest restored, the report names it"
cp -r "$WORK/src" "$WORK/bad1"
python3 - "$WORK/bad1/shop/deployments.apps/web.json" <<'PY'
import json, sys
p = sys.argv[1]; d = json.load(open(p)); d["spec"]["replicas"] = "two"; json.dump(d, open(p, "w"), indent=2)
PY
expect_rc 3 "$WORK/b1.txt" "$COFFER" k8s restore --from "$WORK/bad1" --namespace-map shop:shop5
grep -q '^failed        deployments.apps shop5/web: k8s: deployments.apps "web" in namespace "shop5": invalid: Deployment.apps "web" is invalid: spec.replicas' "$WORK/b1.txt" || fail "failed line: $(cat "$WORK/b1.txt")"
grep -q '^created       statefulsets.apps shop5/db$' "$WORK/b1.txt" || fail "the rest was not restored"
grep -q '1 object could not be restored' "$WORK/b1.txt.err" || fail "error summary"

step "a malformed file: nothing restored, the file named"
cp -r "$WORK/src" "$WORK/bad2"
printf '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"' >"$WORK/bad2/shop/configmaps/broken.json"
printf '{"kind": "ConfigMap"}\n' >"$WORK/bad2/shop/configmaps/nokind.json"
expect_rc 1 "$WORK/b2.txt" "$COFFER" k8s restore --from "$WORK/bad2" --namespace-map shop:shop6
grep -q 'shop/configmaps/broken.json in directory .*: not valid JSON' "$WORK/b2.txt.err" || fail "broken file not named: $(cat "$WORK/b2.txt.err")"
grep -q 'shop/configmaps/nokind.json .*apiVersion, kind and metadata.name are required' "$WORK/b2.txt.err" || fail "object without apiVersion"
grep -q '2 files in directory .* are malformed (listed above); nothing was restored' "$WORK/b2.txt.err" || fail "summary"
assert_eq "$(k8s_curl GET /api/v1/namespaces/shop6 -o /dev/null -w '%{http_code}')" 404 "namespace of a refused restore"

step "from a repository snapshot"
R=$WORK/repo
export COFFER_KDF=scrypt:n=1024,r=8,p=1
"$COFFER" -r "$R" init >/dev/null
"$COFFER" -r "$R" -q k8s export --kubeconfig "$WORK/a.kc" -n shop
expect_rc 0 "$WORK/r.txt" "$COFFER" -r "$R" k8s restore latest --namespace-map shop:shop7
grep -q '^created       deployments.apps shop7/web$' "$WORK/r.txt" || fail "restore from a snapshot"
"$COFFER" -r "$R" backup "$WORK/a.kc" >/dev/null
expect_rc 1 "$WORK/r2.txt" "$COFFER" -r "$R" k8s restore latest
grep -q 'is of kind files, not k8s' "$WORK/r2.txt.err" || fail "files snapshot not refused"

step "the server goes away: the report lists what was not applied"
k8s_api_stop
expect_rc 1 "$WORK/gone.txt" "$COFFER" k8s restore --from "$WORK/src" --namespace-map shop:shop8
grep -q "cannot reach $K8S_URL" "$WORK/gone.txt.err" || fail "unreachable server message: $(cat "$WORK/gone.txt.err")"
assert_eq "$(grep -c "^not-applied   .*: not applied: k8s: discovery (/api): cannot reach" "$WORK/gone.txt")" 24 "not-applied lines"
grep -q ' 24 not applied' "$WORK/gone.txt" || fail "summary of a stopped restore"
echo OK
