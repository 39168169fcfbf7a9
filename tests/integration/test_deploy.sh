#!/bin/bash
# test_deploy.sh -- the files under deploy/: the CRDs are what deploy/crds/gen.py generates
# (no hand edits drifted), each is a structurally sound CustomResourceDefinition (every schema
# node typed, status subresource, printer columns pointing into the schema), and `kubectl
# kustomize` renders the CRD base offline.
. "$(dirname "$0")/lib.sh"

need_cmd python3
export PYTHONDONTWRITEBYTECODE=1
cd "$WORK"
python3 "$ROOT/deploy/crds/gen.py" --check || fail "deploy/crds is stale: run python3 deploy/crds/gen.py"

step "structural schemas"
python3 - "$ROOT/deploy/crds" <<'PY'
import json, os, subprocess, sys
d = sys.argv[1]
# gen.py's own data, not the YAML text: it is what was written (checked above)
sys.path.insert(0, d)
import gen
def walk(node, path):
    if node.get('x-kubernetes-preserve-unknown-fields'):
        return
    assert 'type' in node, f'{path}: no type (not structural)'
    for k, v in node.get('properties', {}).items():
        walk(v, f'{path}.{k}')
    if 'items' in node:
        walk(node['items'], f'{path}[]')
    if isinstance(node.get('additionalProperties'), dict):
        walk(node['additionalProperties'], f'{path}{{}}')
    for r in node.get('required', []):
        assert r in node.get('properties', {}), f'{path}: required {r} is not a property'
kinds = set()
for c in gen.CRDS:
    kind = c['spec']['names']['kind']
    kinds.add(kind)
    assert c['metadata']['name'] == c['spec']['names']['plural'] + '.coffer.dev'
    for v in c['spec']['versions']:
        sch = v['schema']['openAPIV3Schema']
        walk(sch, kind)
        assert v['subresources'] == {'status': {}}, kind
        for col in v['additionalPrinterColumns']:
            node = sch
            for part in col['jsonPath'].lstrip('.').split('.'):
                if part == 'metadata':
                    break
                node = node['properties'][part]
print('ok', sorted(kinds))
assert kinds == {'Repository', 'BackupSchedule', 'Backup', 'Restore'}
PY

step "the Helm chart: every value a template uses is defined in values.yaml"
python3 - "$ROOT/deploy/helm/coffer" <<'PY'
import os, re, sys
d = sys.argv[1]
# values.yaml key paths from indentation (the file is plain block mappings)
paths, stack = set(), []
for line in open(os.path.join(d, 'values.yaml')):
    m = re.match(r'^( *)([A-Za-z][A-Za-z0-9_]*):', line)
    if not m:
        continue
    ind = len(m.group(1)) // 2
    stack = stack[:ind] + [m.group(2)]
    paths.add('.'.join(stack))
    # flow mappings on one line: "key: {a: 1, b: 2}"
    for k in re.findall(r'[{,] *([A-Za-z][A-Za-z0-9_]*):', line.split(':', 1)[1]):
        paths.add('.'.join(stack + [k]))
used = set()
for f in os.listdir(os.path.join(d, 'templates')):
    used |= set(re.findall(r'\.Values\.([A-Za-z0-9_.]+)', open(os.path.join(d, 'templates', f)).read()))
missing = sorted(u for u in used if u not in paths)
assert not missing, f'templates use undefined values: {missing}'
for need in ('Chart.yaml', 'values.yaml', 'templates/deployment.yaml', 'templates/rbac.yaml',
             'templates/servicemonitor.yaml', 'crds/coffer.dev_backups.yaml'):
    assert os.path.exists(os.path.join(d, need)), need
print('chart ok:', len(used), 'values used')
PY

step "kustomize renders offline"
if command -v kubectl >/dev/null; then
    KUBECONFIG=/dev/null kubectl kustomize "$ROOT/deploy/crds" >crds.yaml || fail "kubectl kustomize deploy/crds"
    assert_eq "$(grep -c '^kind: CustomResourceDefinition' crds.yaml)" 4 "CRDs rendered"
    for v in cluster namespaced; do
        KUBECONFIG=/dev/null kubectl kustomize "$ROOT/deploy/operator/$v" >op-$v.yaml || fail "kubectl kustomize deploy/operator/$v"
        grep -q '^kind: Deployment' op-$v.yaml || fail "no Deployment in the $v variant"
    done
    grep -q '^kind: ClusterRole$' op-cluster.yaml || fail "the cluster variant has no ClusterRole"
    grep -q '^kind: ClusterRole$' op-namespaced.yaml && fail "the namespaced variant has a ClusterRole"
    grep -q -- '- coffer-system' op-namespaced.yaml || fail "the namespaced variant does not pass --namespace"
else
    echo "kubectl not installed: rendering not checked"
fi
echo "deploy ok"
