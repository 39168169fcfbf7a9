#!/usr/bin/env python3
# k8s_manifests_check.py -- field checks for test_k8s_manifests.sh: the CronJobs and RBAC
# objects that `coffer k8s manifests` generated, read back from the test API server with
# `kubectl get -o json`. usage: k8s_manifests_check.py CRONJOBS.json RBAC.json
# Layer: integration test helper. Prints the first failed check and exits 1.
import json
import sys


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


cj = {c["metadata"]["name"]: c for c in json.load(open(sys.argv[1]))["items"]}


def pod(n):
    return cj[n]["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def ctr(n):
    return pod(n)["containers"][0]


check(set(cj) == {"coffer-app-files", "coffer-pg", "coffer-shop-objects", "coffer-to-cloud"},
      "CronJobs: %s" % sorted(cj))
f = cj["coffer-app-files"]["spec"]
check(f["schedule"] == "15 2 * * *" and f["timeZone"] == "Europe/Berlin", "schedule/timeZone")
check(f["concurrencyPolicy"] == "Forbid" and f["successfulJobsHistoryLimit"] == 5
      and f["failedJobsHistoryLimit"] == 3 and f["startingDeadlineSeconds"] == 3600,
      "policy/history/starting deadline")
check(ctr("coffer-app-files")["args"] == ["job", "run", "app-files", "--config",
                                          "/etc/coffer/config/config.yaml", "--ignore-run-on"],
      "args: %s" % ctr("coffer-app-files")["args"])
check(ctr("coffer-app-files")["image"] == "registry.example/coffer:1.0"
      and ctr("coffer-app-files")["imagePullPolicy"] == "IfNotPresent", "image")
vols = {v["name"]: v for v in pod("coffer-app-files")["volumes"]}
check(vols["data-app-data"]["persistentVolumeClaim"] == {"claimName": "app-data", "readOnly": True},
      "pvc volume")
check(vols["data-1"]["hostPath"]["path"] == "/var/log/app", "hostPath volume")
check(vols["password-local"]["secret"]["secretName"] == "coffer-local"
      and vols["password-local"]["secret"]["items"] == [{"key": "password", "path": "password"}],
      "password secret volume")
check(vols["config"]["configMap"]["name"] == "coffer-config", "config volume")
check("emptyDir" in vols["tmp"], "tmp emptyDir")
mounts = {m["mountPath"]: m for m in ctr("coffer-app-files")["volumeMounts"]}
check(mounts["/srv/app/data"]["readOnly"] and mounts["/etc/coffer/secrets/cloud"]["readOnly"]
      and mounts["/etc/coffer/config"]["readOnly"] and "/tmp" in mounts, "mounts")
aff = pod("coffer-app-files")["affinity"]["nodeAffinity"]
terms = aff["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
check(terms[0]["matchExpressions"][0] == {"key": "kubernetes.io/hostname", "operator": "In",
                                          "values": ["worker-1"]}, "node affinity")
check(pod("coffer-app-files")["nodeSelector"] == {"kubernetes.io/os": "linux"}, "node selector")
check(pod("coffer-app-files")["tolerations"] == [{"key": "dedicated", "operator": "Equal",
                                                  "value": "backup", "effect": "NoSchedule"}],
      "tolerations")
check(ctr("coffer-app-files")["envFrom"] == [{"secretRef": {"name": "coffer-s3"}}],
      "envFrom of the cloud repository")
sc = ctr("coffer-app-files")["securityContext"]
check(sc["capabilities"] == {"drop": ["ALL"], "add": ["DAC_READ_SEARCH"]}
      and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"],
      "files securityContext")

p = pod("coffer-pg")
psc = p["securityContext"]
check(psc["runAsNonRoot"] and psc["runAsUser"] == 65532 and psc["fsGroup"] == 65532
      and psc["seccompProfile"]["type"] == "RuntimeDefault", "pg pod securityContext")
csc = ctr("coffer-pg")["securityContext"]
check(csc["capabilities"] == {"drop": ["ALL"]} and csc["readOnlyRootFilesystem"]
      and not csc["allowPrivilegeEscalation"] and csc["runAsNonRoot"], "pg container securityContext")
env = {e["name"]: e for e in ctr("coffer-pg")["env"]}
check(env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "pg", "key": "password"},
      "PGPASSWORD from secretKeyRef")
check(env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", "POD_NAME")
check(all("value" not in e or e["name"] in ("HOME", "TMPDIR") for e in ctr("coffer-pg")["env"]),
      "only Secret references and paths in env")
js = cj["coffer-pg"]["spec"]["jobTemplate"]["spec"]
check(js["backoffLimit"] == 1 and js["activeDeadlineSeconds"] == 7200, "backoff/deadline")
check(ctr("coffer-pg")["resources"] == {"limits": {"memory": "2Gi"}}, "pg resources override")
check(ctr("coffer-shop-objects")["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                                  "limits": {"memory": "1Gi"}},
      "default resources")
check(not p["automountServiceAccountToken"]
      and pod("coffer-shop-objects")["automountServiceAccountToken"], "API token only for the export")
check(pod("coffer-shop-objects")["serviceAccountName"] == "coffer-shop-objects"
      and p["serviceAccountName"] == "coffer", "service accounts")
check(cj["coffer-to-cloud"]["spec"]["schedule"] == "0 */6 * * *"
      and ctr("coffer-to-cloud")["args"][:3] == ["job", "copy", "to-cloud"], "copy task")
cvols = {v["name"] for v in pod("coffer-to-cloud")["volumes"]}
check({"password-local", "password-cloud"} <= cvols, "copy task mounts both passwords")

rb = {(o["kind"], o["metadata"]["name"]): o for o in json.load(open(sys.argv[2]))["items"]}
reader = rb[("ClusterRole", "coffer-shop-objects-reader")]
check(all(set(r["verbs"]) <= {"get", "list", "watch"} for r in reader["rules"]), "read-only rules")
check(not any("secrets" in r.get("resources", []) for r in reader["rules"]),
      "no secrets without include-secrets")
b = rb[("RoleBinding", "coffer-shop-objects-reader")]
check(b["metadata"]["namespace"] == "shop" and b["roleRef"]["name"] == "coffer-shop-objects-reader"
      and b["subjects"] == [{"kind": "ServiceAccount", "name": "coffer-shop-objects",
                             "namespace": "backup"}], "RoleBinding in shop")
check(("ClusterRoleBinding", "coffer-shop-objects-reader") not in rb,
      "the reader role is not bound cluster-wide")
print("fields ok")
