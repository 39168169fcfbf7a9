#!/bin/bash
# bench/k8s-export.sh -- time `coffer k8s export` of one large namespace (OBJECTS config maps
# and a third as many deployments) served by the test API server (tests/k8s-api), to a
# directory and twice into a repository (the second run deduplicates everything), plus
# `coffer diff` of the two snapshots and, for scale, `kubectl get -o json` of the config maps.
#
# usage: bench/k8s-export.sh BUILD_DIR [OBJECTS]     (default 3000; port 49099)
# Prints one line per measurement: what, wall seconds, peak RSS. Needs node/npm, kubectl.
# Layer: bench. The server runs on 127.0.0.1 and is stopped by its pid.
set -euo pipefail
build=$(cd "${1:?usage: bench/k8s-export.sh BUILD_DIR [OBJECTS]}" && pwd)
n=${2:-3000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COFFER=$build/coffer
WORK=$(mktemp -d "${TMPDIR:-/tmp}/k8s-bench.XXXXXX")
pids=()
track_pid() { pids+=("$@"); }
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
. "$ROOT/tests/servers/k8s-api.sh"
python3 - "$WORK/seed.json" "$n" <<'PY'
import json, sys
n = int(sys.argv[2])
items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "big"}}]
for i in range(n):
    items.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:05d}",
                  "namespace": "big", "labels": {"app": f"a{i % 10}"}}, "data": {"k": "v" * 200, "i": str(i)}})
for i in range(n // 3):
    items.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"d-{i:05d}", "namespace": "big"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": f"d{i}"}},
                           "template": {"metadata": {"labels": {"app": f"d{i}"}}, "spec": {"containers": [
                               {"name": "c", "image": "nginx:1.25",
                                "env": [{"name": f"E{j}", "value": "x" * 20} for j in range(10)]}]}}}})
json.dump(items, open(sys.argv[1], "w"))
PY
k8s_api_start 49099 "$WORK/seed.json" --history 100000
export KUBECONFIG=$WORK/kc COFFER_PASSWORD=bench COFFER_KDF=scrypt:n=1024,r=8,p=1
k8s_kubeconfig "$KUBECONFIG"
m() { local what=$1; shift; /usr/bin/time -f "$what: %e s, %M KiB peak RSS" "$@" >/dev/null 2>"$WORK/t" || { cat "$WORK/t"; exit 1; }; tail -1 "$WORK/t"; }
# the first requests warm the (Node.js) server up; not measured
"$COFFER" -q k8s export -n big --out "$WORK/warm"
m "export --out ($((n + n / 3)) objects)" "$COFFER" -q k8s export -n big --out "$WORK/out"
"$COFFER" -q -r "$WORK/repo" init
m "export into a repository, first" "$COFFER" -q -r "$WORK/repo" k8s export -n big
m "export into a repository, unchanged" "$COFFER" -q -r "$WORK/repo" k8s export -n big
ids=$("$COFFER" -r "$WORK/repo" snapshots --json | python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(sys.stdin)))')
m "diff of the two snapshots" "$COFFER" -r "$WORK/repo" diff $ids
m "kubectl get configmaps -o json (for scale)" kubectl get configmaps -n big -o json
echo "export size $(du -sh "$WORK/out" | cut -f1) on disk; repository $(du -sh "$WORK/repo" | cut -f1)"
