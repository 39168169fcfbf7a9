// server.js -- coffer's test Kubernetes API server (tests only; never a production server).
//
// What: an in-memory server that follows the Kubernetes API conventions closely enough for the
// real kubectl and for coffer's client: discovery (/version, /api, /apis, APIResourceList with
// verbs, kinds, shortNames, preferred versions), namespaced and cluster-scoped kinds, list with
// limit/continue and resourceVersion, label and field selectors, get, create (201, 409, 422 from
// kubernetes-models validation), update, server-side apply, merge/strategic-merge/JSON patches,
// delete with propagation, status subresources, watch streams with bookmarks and 410 Gone,
// custom resources served once their CRD is created, Status error objects, bearer tokens and
// client certificates over TLS with a per-user allow/deny list of resources.
//
// Invariants: every write bumps one global resourceVersion counter and appends an event to a
// bounded history (--history N); a watch or a continue token older than the history gets 410.
// Objects are stored with their storage version; a kind served in several versions is rewritten
// on the way out (no conversion, like a CRD with strategy None).
//
// Layer: tests (tests/k8s-api). Started by tests/servers/k8s-api.sh; CommonJS so that the
// dependencies can live outside the source tree (K8S_API_MODULES=.../node_modules).
//
// Usage: node server.js --port P --cert F --key F --client-ca F --users F [--seed F]
//                       [--history N] [--bookmark-ms MS] [--establish-ms MS] [--ns-finalize-ms MS]
//                       [--ready-file F]
"use strict";
const fs = require("fs");
const https = require("https");
const path = require("path");
const crypto = require("crypto");

const MODS = process.env.K8S_API_MODULES || path.join(__dirname, "node_modules");
const yaml = require(path.join(MODS, "js-yaml"));

// ---- options ---------------------------------------------------------------------------
const opt = { port: 0, history: 200, bookmarkMs: 1000, establishMs: 0, nsFinalizeMs: 200, users: null, seed: null };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, ""), v = process.argv[i + 1];
  const map = { port: "port", cert: "cert", key: "key", "client-ca": "clientCa", users: "users",
    seed: "seed", history: "history", "bookmark-ms": "bookmarkMs", "establish-ms": "establishMs",
    "ready-file": "readyFile", "ns-finalize-ms": "nsFinalizeMs" };
  if (!map[k]) { console.error(`k8s-api: unknown option --${k}`); process.exit(2); }
  opt[map[k]] = /^(port|history|bookmarkMs|establishMs|nsFinalizeMs)$/.test(map[k]) ? Number(v) : v;
}

// ---- users, tokens, authorization ---------------------------------------------------------
// users file (JSON): {"tokens": {"TOKEN": "USER"}, "users": {"USER": {"groups": [..],
//   "allow": ["*" | "RESOURCE" | "RESOURCE.GROUP"], "deny": [...], "verbs": ["get", ...]}}}
// A client certificate authenticates as its subject CN (groups from O).
const auth = opt.users ? JSON.parse(fs.readFileSync(opt.users, "utf8")) : { tokens: {}, users: {} };

// A user with "rbac": true is authorized like the real server does it: by the ClusterRoles and
// Roles bound to it (ClusterRoleBindings anywhere, RoleBindings in their namespace). Service
// account users are named system:serviceaccount:NS:NAME.
function rbacAllows(user, verb, res, ns) {
  const rbac = "rbac.authorization.k8s.io";
  const CRB = findRes(rbac, "v1", "clusterrolebindings"), RB = findRes(rbac, "v1", "rolebindings");
  const CR = findRes(rbac, "v1", "clusterroles"), RO = findRes(rbac, "v1", "roles");
  const m = /^system:serviceaccount:([^:]+):(.+)$/.exec(user.name);
  const subjectIs = (s) => (m && s.kind === "ServiceAccount" && s.namespace === m[1] && s.name === m[2]) ||
    (s.kind === "User" && s.name === user.name);
  const ruleOk = (rule) => (rule.apiGroups || []).some((g) => g === "*" || g === res.group) &&
    (rule.resources || []).some((x) => x === "*" || x === res.resource) &&
    (rule.verbs || []).some((v) => v === "*" || v === verb);
  const roleRules = (ref, bindingNs) => {
    const o = ref.kind === "ClusterRole" ? store.get(keyOf(CR, "", ref.name)) : store.get(keyOf(RO, bindingNs, ref.name));
    return (o && o.rules) || [];
  };
  for (const [k, b] of store) {
    const isCrb = k.startsWith(`${rbac}/clusterrolebindings/`), isRb = k.startsWith(`${rbac}/rolebindings/`);
    if (!isCrb && !isRb) continue;
    if (isRb && b.metadata.namespace !== ns) continue;
    if (!(b.subjects || []).some(subjectIs)) continue;
    if (roleRules(b.roleRef || {}, b.metadata.namespace).some(ruleOk)) return true;
  }
  void CRB; void RB;
  return false;
}

function authorize(user, verb, res, ns) {
  const u = auth.users[user.name] || { allow: [] };
  if (u.rbac) {
    if (rbacAllows(user, verb, res, ns)) return null;
    const full = res.group ? `${res.resource}.${res.group}` : res.resource;
    const where = ns ? ` in the namespace "${ns}"` : " at the cluster scope";
    return status(403, "Forbidden",
      `${full} is forbidden: User "${user.name}" cannot ${verb} resource "${res.resource}" in API group "${res.group}"${where}`,
      { group: res.group, kind: res.resource });
  }
  const full = res.group ? `${res.resource}.${res.group}` : res.resource;
  const match = (l) => (l || []).some((x) => x === "*" || x === res.resource || x === full);
  const verbOk = !u.verbs || u.verbs.includes(verb) || u.verbs.includes("*");
  if (verbOk && match(u.allow) && !match(u.deny)) return null;
  const where = ns ? ` in the namespace "${ns}"` : " at the cluster scope";
  return status(403, "Forbidden",
    `${full} is forbidden: User "${user.name}" cannot ${verb} resource "${res.resource}" in API group "${res.group}"${where}`,
    { group: res.group, kind: res.resource });
}

// ---- resource registry ------------------------------------------------------------------
// One entry per (group, resource): versions served (first = storage), preferred version.
const registry = [];
function addRes(group, versions, resource, kind, namespaced, shortNames, o = {}) {
  const r = { group, versions, resource, kind, namespaced, shortNames: shortNames || [],
    singular: o.singular || kind.toLowerCase(), statusSub: o.status !== false,
    verbs: o.verbs || ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
    categories: o.categories, crd: o.crd || null, listOnly: false };
  registry.push(r);
  return r;
}
const C = "", T = true, F = false;
addRes(C, ["v1"], "namespaces", "Namespace", F, ["ns"]);
addRes(C, ["v1"], "configmaps", "ConfigMap", T, ["cm"], { status: false });
addRes(C, ["v1"], "secrets", "Secret", T, [], { status: false });
addRes(C, ["v1"], "services", "Service", T, ["svc"], { categories: ["all"] });
addRes(C, ["v1"], "serviceaccounts", "ServiceAccount", T, ["sa"], { status: false });
addRes(C, ["v1"], "pods", "Pod", T, ["po"], { categories: ["all"] });
addRes(C, ["v1"], "persistentvolumeclaims", "PersistentVolumeClaim", T, ["pvc"]);
addRes(C, ["v1"], "persistentvolumes", "PersistentVolume", F, ["pv"]);
addRes(C, ["v1"], "endpoints", "Endpoints", T, ["ep"], { status: false, singular: "endpoints" });
addRes(C, ["v1"], "events", "Event", T, ["ev"], { status: false });
addRes(C, ["v1"], "limitranges", "LimitRange", T, ["limits"], { status: false });
addRes(C, ["v1"], "resourcequotas", "ResourceQuota", T, ["quota"]);
addRes(C, ["v1"], "nodes", "Node", F, ["no"]);
addRes(C, ["v1"], "replicationcontrollers", "ReplicationController", T, ["rc"]);
addRes("apps", ["v1"], "deployments", "Deployment", T, ["deploy"], { categories: ["all"] });
addRes("apps", ["v1"], "replicasets", "ReplicaSet", T, ["rs"], { categories: ["all"] });
addRes("apps", ["v1"], "statefulsets", "StatefulSet", T, ["sts"], { categories: ["all"] });
addRes("apps", ["v1"], "daemonsets", "DaemonSet", T, ["ds"], { categories: ["all"] });
addRes("apps", ["v1"], "controllerrevisions", "ControllerRevision", T, [], { status: false });
addRes("batch", ["v1"], "jobs", "Job", T, [], { categories: ["all"] });
addRes("batch", ["v1"], "cronjobs", "CronJob", T, ["cj"], { categories: ["all"] });
addRes("coordination.k8s.io", ["v1"], "leases", "Lease", T, [], { status: false });
addRes("autoscaling", ["v2", "v1"], "horizontalpodautoscalers", "HorizontalPodAutoscaler", T, ["hpa"]);
addRes("policy", ["v1"], "poddisruptionbudgets", "PodDisruptionBudget", T, ["pdb"]);
const RBAC = "rbac.authorization.k8s.io";
addRes(RBAC, ["v1"], "roles", "Role", T, [], { status: false });
addRes(RBAC, ["v1"], "rolebindings", "RoleBinding", T, [], { status: false });
addRes(RBAC, ["v1"], "clusterroles", "ClusterRole", F, [], { status: false });
addRes(RBAC, ["v1"], "clusterrolebindings", "ClusterRoleBinding", F, [], { status: false });
addRes("storage.k8s.io", ["v1"], "storageclasses", "StorageClass", F, ["sc"], { status: false });
addRes("scheduling.k8s.io", ["v1"], "priorityclasses", "PriorityClass", F, ["pc"], { status: false });
addRes("networking.k8s.io", ["v1"], "ingresses", "Ingress", T, ["ing"]);
addRes("networking.k8s.io", ["v1"], "networkpolicies", "NetworkPolicy", T, ["netpol"], { status: false });
addRes("discovery.k8s.io", ["v1"], "endpointslices", "EndpointSlice", T, [], { status: false });
addRes("apiextensions.k8s.io", ["v1"], "customresourcedefinitions", "CustomResourceDefinition", F, ["crd", "crds"]);
// Read-only kinds a real cluster has: list/get only (create is refused like the real server does).
addRes("authorization.k8s.io", ["v1"], "selfsubjectaccessreviews", "SelfSubjectAccessReview", F, [],
  { status: false, verbs: ["create"] });

// Kubernetes version priority: GA > beta > alpha, then by number (kube-aware sort).
function versionRank(v) {
  const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
  if (!m) return [0, 0, 0];
  return [m[2] ? (m[2] === "beta" ? 2 : 1) : 3, Number(m[1]), Number(m[3] || 0)];
}
function preferred(r) {
  return [...r.versions].sort((a, b) => {
    const x = versionRank(a), y = versionRank(b);
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return y[i] - x[i];
    return 0;
  })[0];
}
function findRes(group, version, resource) {
  return registry.find((r) => r.group === group && r.resource === resource && r.versions.includes(version));
}
function groupsServed() {
  const m = new Map();
  for (const r of registry) {
    if (!m.has(r.group)) m.set(r.group, new Set());
    for (const v of r.versions) m.get(r.group).add(v);
  }
  return m;
}

// ---- state, resource versions, history -----------------------------------------------------
let rv = 1000;
const store = new Map(); // key group/resource/ns/name -> object (storage version)
const history = []; // {rv, type, res, obj}
const watchers = new Set();
const keyOf = (r, ns, name) => `${r.group}/${r.resource}/${ns || ""}/${name}`;
const clone = (o) => JSON.parse(JSON.stringify(o));

function record(type, r, obj) {
  history.push({ rv: Number(obj.metadata.resourceVersion), type, res: r, obj: clone(obj) });
  while (history.length > opt.history) history.shift();
  for (const w of watchers) w.offer(type, r, obj);
}
function oldestRv() { return history.length ? history[0].rv - 1 : rv; }

function nowIso() { return new Date().toISOString().replace(/\.\d+Z$/, "Z"); }

function apiVersionOf(r, v) { return r.group ? `${r.group}/${v}` : v; }
function present(r, obj, v) {
  // apiVersion and kind first, then the rest in stored order, as the real server encodes
  const o = { apiVersion: apiVersionOf(r, v || preferred(r)), kind: r.kind };
  for (const [k, val] of Object.entries(clone(obj))) if (k !== "apiVersion" && k !== "kind") o[k] = val;
  return o;
}

// ---- Status objects ---------------------------------------------------------------------
const REASONS = { 400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
  405: "MethodNotAllowed", 409: "AlreadyExists", 410: "Expired", 415: "UnsupportedMediaType",
  422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable" };
function status(code, reason, message, details) {
  const s = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message,
    reason: reason || REASONS[code], code };
  if (details) s.details = details;
  return { code, body: s };
}
function notFound(r, name) {
  return status(404, "NotFound", `${r.group ? r.resource + "." + r.group : r.resource} "${name}" not found`,
    { name, group: r.group, kind: r.resource });
}

// ---- validation -------------------------------------------------------------------------
const DNS1123_SUB = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const modelCache = new Map();
function model(apiVersion, kind) {
  const k = `${apiVersion}/${kind}`;
  if (!modelCache.has(k)) {
    const [g, v] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    let M = null;
    try {
      const mod = require(path.join(MODS, "kubernetes-models", g ? `${g}/${v}` : v, kind));
      M = mod[kind] || mod.default || null;
    } catch (e) { M = null; }
    modelCache.set(k, M);
  }
  return modelCache.get(k);
}
function kindName(r) { return r.group ? `${r.kind}.${r.group}` : r.kind; }
function invalid(r, name, causes) {
  const msg = `${kindName(r)} "${name}" is invalid: ` + causes.map((c) => `${c.field}: ${c.message}`).join(", ");
  return status(422, "Invalid", msg, { name, group: r.group, kind: r.kind,
    causes: causes.map((c) => ({ reason: c.reason || "FieldValueInvalid", message: c.message, field: c.field })) });
}
function validate(r, obj, version) {
  const name = obj.metadata && obj.metadata.name;
  const causes = [];
  if (!name) causes.push({ field: "metadata.name", reason: "FieldValueRequired", message: "Required value: name or generateName is required" });
  else if (name.length > 253 || !DNS1123_SUB.test(name))
    causes.push({ field: "metadata.name", message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character` });
  if (causes.length) return invalid(r, name || "", causes);
  if (r.crd) return null; // custom resources: structural schema checks are not emulated
  const M = model(apiVersionOf(r, version), r.kind);
  if (!M) return null;
  try {
    const o = clone(obj);
    o.apiVersion = apiVersionOf(r, version); o.kind = r.kind;
    new M(o).validate();
  } catch (e) {
    const errs = e.errors || [{ instancePath: "", message: String(e.message) }];
    return invalid(r, name, errs.slice(0, 5).map((x) => ({
      field: (x.instancePath || "").replace(/^\//, "").replace(/\//g, ".") || "<root>",
      reason: x.keyword === "required" ? "FieldValueRequired" : "FieldValueInvalid",
      message: x.keyword === "required" ? `Required value: ${x.params.missingProperty}` :
        `Invalid value: ${JSON.stringify(valueAt(obj, x.instancePath))}: ${x.message}` })));
  }
  return null;
}
function valueAt(o, ptr) {
  for (const p of (ptr || "").split("/").slice(1)) o = o == null ? o : o[p.replace(/~1/g, "/").replace(/~0/g, "~")];
  return o;
}

// ---- selectors --------------------------------------------------------------------------
function parseLabelSelector(s) {
  if (!s) return () => true;
  const reqs = [];
  // split on commas not inside parentheses
  let depth = 0, cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) { reqs.push(cur.trim()); cur = ""; } else cur += ch;
  }
  if (cur.trim()) reqs.push(cur.trim());
  const tests = reqs.map((q) => {
    let m;
    if ((m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(q))) {
      const vals = m[3].split(",").map((x) => x.trim());
      return m[2] === "in" ? (l) => m[1] in l && vals.includes(l[m[1]]) : (l) => !(m[1] in l) || !vals.includes(l[m[1]]);
    }
    if ((m = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$/.exec(q)))
      return m[2] === "!=" ? (l) => l[m[1]] !== m[3] : (l) => l[m[1]] === m[3];
    if ((m = /^!([^\s!=]+)$/.exec(q))) return (l) => !(m[1] in l);
    if ((m = /^([^\s!=()]+)$/.exec(q))) return (l) => m[1] in l;
    throw new Error(`unable to parse requirement: ${q}`);
  });
  return (obj) => { const l = (obj.metadata && obj.metadata.labels) || {}; return tests.every((t) => t(l)); };
}
function parseFieldSelector(s) {
  if (!s) return () => true;
  const tests = s.split(",").map((q) => {
    const m = /^([a-zA-Z.]+)\s*(==|=|!=)\s*(.*)$/.exec(q.trim());
    if (!m || !/^metadata\.(name|namespace)$/.test(m[1]))
      throw new Error(`field label not supported: ${q}`);
    const get = (o) => o.metadata[m[1].split(".")[1]] || "";
    return m[2] === "!=" ? (o) => get(o) !== m[3] : (o) => get(o) === m[3];
  });
  return (o) => tests.every((t) => t(o));
}

// ---- patches ----------------------------------------------------------------------------
function isObj(x) { return x && typeof x === "object" && !Array.isArray(x); }
function mergePatch(target, patch) { // RFC 7386
  if (!isObj(patch)) return clone(patch);
  const out = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
// Strategic merge: maps merge; lists of objects with a "name" (containers, env, ports,
// volumes...) merge by name; "$patch: delete" entries remove; other lists are replaced.
function strategicMerge(target, patch) {
  if (!isObj(patch)) return clone(patch);
  const out = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$")) continue;
    if (v === null) { delete out[k]; continue; }
    if (Array.isArray(v) && Array.isArray(out[k]) && v.every((e) => isObj(e) && "name" in e)) {
      const list = out[k].map(clone);
      for (const e of v) {
        const i = list.findIndex((x) => isObj(x) && x.name === e.name);
        if (e.$patch === "delete") { if (i >= 0) list.splice(i, 1); continue; }
        if (i >= 0) list[i] = strategicMerge(list[i], e); else list.push(strategicMerge({}, e));
      }
      out[k] = list;
    } else out[k] = strategicMerge(out[k], v);
  }
  return out;
}
function jsonPatch(target, ops) { // RFC 6902: add, remove, replace, test
  const doc = clone(target);
  for (const op of ops) {
    const parts = op.path.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = parts.pop();
    let parent = doc;
    for (const p of parts) { parent = parent[p]; if (parent == null) throw new Error(`path ${op.path} does not exist`); }
    if (op.op === "test") { if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw new Error(`test failed at ${op.path}`); }
    else if (op.op === "remove") { if (Array.isArray(parent)) parent.splice(Number(last), 1); else delete parent[last]; }
    else if (op.op === "add" && Array.isArray(parent)) parent.splice(last === "-" ? parent.length : Number(last), 0, op.value);
    else if (op.op === "add" || op.op === "replace") parent[last] = op.value;
    else throw new Error(`unsupported op ${op.op}`);
  }
  return doc;
}

// ---- object lifecycle -------------------------------------------------------------------
let ipNext = 10, portNext = 30000;
function managed(obj, manager, operation, r, version) {
  const mf = (obj.metadata.managedFields || []).filter((m) => !(m.manager === manager && m.operation === operation));
  mf.push({ manager, operation, apiVersion: apiVersionOf(r, version || preferred(r)), time: nowIso(),
    fieldsType: "FieldsV1", fieldsV1: { "f:metadata": {} } });
  obj.metadata.managedFields = mf;
}
function defaults(r, obj) {
  if (r.resource === "services" && r.group === "") {
    obj.spec = obj.spec || {};
    if (obj.spec.type !== "ExternalName" && !obj.spec.clusterIP) {
      obj.spec.clusterIP = `10.96.${Math.floor(ipNext / 250)}.${(ipNext % 250) + 1}`; ipNext++;
      obj.spec.clusterIPs = [obj.spec.clusterIP];
    }
    if (obj.spec.type === "NodePort" || obj.spec.type === "LoadBalancer")
      for (const p of obj.spec.ports || []) if (!p.nodePort) p.nodePort = portNext++;
    obj.spec.type = obj.spec.type || "ClusterIP";
    obj.spec.sessionAffinity = obj.spec.sessionAffinity || "None";
  }
  if (r.resource === "pods" && r.group === "") obj.status = obj.status || { phase: "Pending" };
  if (r.resource === "namespaces" && r.group === "") {
    obj.spec = obj.spec || { finalizers: ["kubernetes"] };
    obj.status = { phase: "Active" };
  }
}
function commitObj(r, obj, type) {
  obj.metadata.resourceVersion = String(++rv);
  store.set(keyOf(r, obj.metadata.namespace, obj.metadata.name), obj);
  record(type, r, obj);
}
function doCreate(r, ns, body, q, user, version, internal) {
  const obj = clone(body);
  obj.metadata = obj.metadata || {};
  if (obj.metadata.generateName && !obj.metadata.name)
    obj.metadata.name = obj.metadata.generateName + crypto.randomBytes(3).toString("hex").slice(0, 5);
  if (r.namespaced) {
    if (obj.metadata.namespace && obj.metadata.namespace !== ns)
      return status(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
    obj.metadata.namespace = ns;
    if (!store.has(keyOf(NSRES, "", ns)))
      return status(404, "NotFound", `namespaces "${ns}" not found`, { name: ns, kind: "namespaces" });
    if (store.get(keyOf(NSRES, "", ns)).metadata.deletionTimestamp)
      return status(403, "Forbidden", `${r.resource} "${obj.metadata.name || ""}" is forbidden: unable to create new content in namespace ${ns} because it is being terminated`,
        { name: obj.metadata.name, kind: r.resource });
  } else delete obj.metadata.namespace;
  const bad = validate(r, obj, version);
  if (bad) return bad;
  if (store.has(keyOf(r, ns, obj.metadata.name)))
    return status(409, "AlreadyExists", `${r.group ? r.resource + "." + r.group : r.resource} "${obj.metadata.name}" already exists`,
      { name: obj.metadata.name, group: r.group, kind: r.resource });
  if (r.statusSub && !internal && r !== NSRES) delete obj.status;
  delete obj.metadata.resourceVersion;
  // seeded objects keep the uid and creation time they were given (ownerReferences point at them)
  obj.metadata.uid = internal && obj.metadata.uid ? obj.metadata.uid : crypto.randomUUID();
  obj.metadata.creationTimestamp = internal && obj.metadata.creationTimestamp ? obj.metadata.creationTimestamp : nowIso();
  if (obj.spec !== undefined) obj.metadata.generation = 1;
  defaults(r, obj);
  managed(obj, (q && q.get("fieldManager")) || userAgentManager(user), "Update", r, version);
  obj.apiVersion = apiVersionOf(r, r.versions[0]); obj.kind = r.kind;
  if (q && q.get("dryRun") === "All") return { code: 201, body: present(r, obj, version) };
  commitObj(r, obj, "ADDED");
  afterCreate(r, obj);
  return { code: 201, body: present(r, obj, version) };
}
function userAgentManager(user) { return (user && user.agent) || "unknown"; }

// Namespaces get a default ServiceAccount and kube-root-ca.crt, as the controllers of a real
// cluster create them; CRDs register their resources.
function afterCreate(r, obj) {
  if (r === NSRES) {
    const ns = obj.metadata.name;
    doCreate(findRes("", "v1", "serviceaccounts"), ns, { metadata: { name: "default" } }, null, { agent: "kube-controller-manager" }, "v1", true);
    doCreate(findRes("", "v1", "configmaps"), ns, { metadata: { name: "kube-root-ca.crt",
      annotations: { "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc." } },
      data: { "ca.crt": "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n" } }, null, { agent: "kube-controller-manager" }, "v1", true);
  }
  if (r === CRDRES) registerCrd(obj);
}
const NSRES = findRes("", "v1", "namespaces");
const CRDRES = findRes("apiextensions.k8s.io", "v1", "customresourcedefinitions");

function registerCrd(crd) {
  const s = crd.spec || {}, names = s.names || {};
  const versions = (s.versions || []).filter((v) => v.served !== false).map((v) => v.name);
  const storage = (s.versions || []).find((v) => v.storage) || {};
  const ordered = [storage.name, ...versions.filter((v) => v !== storage.name)].filter(Boolean);
  if (!s.group || !names.plural || !names.kind || !ordered.length) return;
  const hasStatus = (s.versions || []).some((v) => v.subresources && v.subresources.status);
  const establish = () => {
    if (!findRes(s.group, ordered[0], names.plural))
      addRes(s.group, ordered, names.plural, names.kind, s.scope !== "Cluster", names.shortNames,
        { singular: names.singular, status: hasStatus, crd: crd.metadata.name, categories: names.categories });
    const cur = store.get(keyOf(CRDRES, "", crd.metadata.name));
    if (!cur) return;
    const t = nowIso();
    cur.status = { conditions: [
      { type: "NamesAccepted", status: "True", reason: "NoConflicts", message: "no conflicts found", lastTransitionTime: t },
      { type: "Established", status: "True", reason: "InitialNamesAccepted", message: "the initial names have been accepted", lastTransitionTime: t }],
      acceptedNames: names, storedVersions: [ordered[0]] };
    commitObj(CRDRES, cur, "MODIFIED");
  };
  if (opt.establishMs > 0) setTimeout(establish, opt.establishMs); else establish();
}
function unregisterCrd(crd) {
  const i = registry.findIndex((r) => r.crd === crd.metadata.name);
  if (i < 0) return;
  const r = registry[i];
  for (const [k, o] of [...store]) if (k.startsWith(`${r.group}/${r.resource}/`)) { store.delete(k); bumpDelete(r, o); }
  registry.splice(i, 1);
}
function bumpDelete(r, o) { o.metadata.resourceVersion = String(++rv); record("DELETED", r, o); }

function doDelete(r, ns, name, q, body) {
  const k = keyOf(r, ns, name);
  const obj = store.get(k);
  if (!obj) return notFound(r, name);
  const policy = (body && body.propagationPolicy) || (q && q.get("propagationPolicy")) ||
    (body && body.orphanDependents === true ? "Orphan" : "Background");
  if (q && q.get("dryRun") === "All") return { code: 200, body: present(r, obj) };
  if (r === NSRES && !(q && q.get("now") === "1")) {
    // Like the namespace controller: Terminating first, the contents go shortly after.
    if (obj.metadata.deletionTimestamp) return { code: 200, body: present(r, obj) };
    obj.metadata.deletionTimestamp = nowIso();
    obj.status = { phase: "Terminating" };
    commitObj(r, obj, "MODIFIED");
    setTimeout(() => { if (store.get(k) === obj) doDelete(r, ns, name, new URLSearchParams("now=1"), body); }, opt.nsFinalizeMs);
    return { code: 200, body: present(r, obj) };
  }
  store.delete(k);
  obj.metadata.deletionTimestamp = nowIso();
  bumpDelete(r, obj);
  // Dependents: deleted (Background/Foreground) or released (Orphan).
  for (const [dk, d] of [...store]) {
    const refs = d.metadata.ownerReferences || [];
    if (!refs.some((o) => o.uid === obj.metadata.uid)) continue;
    const dr = registry.find((x) => dk.startsWith(`${x.group}/${x.resource}/`));
    if (policy === "Orphan") {
      d.metadata.ownerReferences = refs.filter((o) => o.uid !== obj.metadata.uid);
      if (!d.metadata.ownerReferences.length) delete d.metadata.ownerReferences;
      commitObj(dr, d, "MODIFIED");
    } else doDelete(dr, d.metadata.namespace, d.metadata.name, null, { propagationPolicy: policy });
  }
  if (r === NSRES) // everything in the namespace goes with it
    for (const [dk, d] of [...store]) if (d.metadata.namespace === name) {
      const dr = registry.find((x) => dk.startsWith(`${x.group}/${x.resource}/`));
      if (dr && dr.namespaced && store.has(dk)) doDelete(dr, name, d.metadata.name, null, null);
    }
  if (r === CRDRES) unregisterCrd(obj);
  return { code: 200, body: present(r, obj) };
}

// Update (PUT or the result of a patch): status goes only through /status when the kind has a
// status subresource; spec changes bump generation.
function doUpdate(r, ns, name, newObj, q, user, version, sub, operation) {
  const k = keyOf(r, ns, name);
  const cur = store.get(k);
  if (!cur) return notFound(r, name);
  const obj = clone(newObj);
  obj.metadata = obj.metadata || {};
  if (obj.metadata.name && obj.metadata.name !== name)
    return status(400, "BadRequest", `the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
  if (obj.metadata.resourceVersion && obj.metadata.resourceVersion !== cur.metadata.resourceVersion)
    return status(409, "Conflict", `Operation cannot be fulfilled on ${r.group ? r.resource + "." + r.group : r.resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name, group: r.group, kind: r.resource });
  let out;
  if (sub === "status") { out = clone(cur); out.status = obj.status; }
  else {
    out = obj;
    for (const f of ["uid", "creationTimestamp", "namespace", "name"]) out.metadata[f] = cur.metadata[f];
    if (!out.metadata.namespace) delete out.metadata.namespace;
    out.metadata.managedFields = cur.metadata.managedFields;
    if (r.statusSub && cur.status !== undefined) out.status = cur.status;
    if (r.statusSub && cur.status === undefined) delete out.status;
    if (r === NSRES) out.status = cur.status;
    if (cur.metadata.generation !== undefined)
      out.metadata.generation = cur.metadata.generation +
        (JSON.stringify(out.spec) !== JSON.stringify(cur.spec) ? 1 : 0);
    defaults(r, out);
    const bad = validate(r, out, version);
    if (bad) return bad;
  }
  out.apiVersion = apiVersionOf(r, r.versions[0]); out.kind = r.kind;
  managed(out, (q && q.get("fieldManager")) || userAgentManager(user), operation || "Update", r, version);
  if (q && q.get("dryRun") === "All") return { code: 200, body: present(r, out, version) };
  commitObj(r, out, "MODIFIED");
  return { code: 200, body: present(r, out, version) };
}

// ---- list, table, watch -------------------------------------------------------------------
function listObjects(r, ns, q) {
  const lsel = parseLabelSelector(q.get("labelSelector"));
  const fsel = parseFieldSelector(q.get("fieldSelector"));
  const prefix = `${r.group}/${r.resource}/${ns ? ns + "/" : ""}`;
  return [...store.entries()].filter(([k, o]) => k.startsWith(prefix) && lsel(o) && fsel(o))
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
function doList(r, ns, q, version, accept) {
  let items;
  try { items = listObjects(r, ns, q); } catch (e) { return status(400, "BadRequest", e.message); }
  let listRv = String(rv), start = "";
  const cont = q.get("continue");
  if (cont) {
    let tok;
    try { tok = JSON.parse(Buffer.from(cont, "base64").toString()); } catch (e) { tok = null; }
    if (!tok || typeof tok.start !== "string") return status(400, "BadRequest", "continue key is not valid: invalid token");
    if (tok.rv < oldestRv())
      return status(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results.");
    start = tok.start; listRv = String(tok.rv);
  }
  if (start) items = items.filter(([k]) => k > start);
  const limit = Number(q.get("limit") || 0);
  const meta = { resourceVersion: listRv };
  if (limit > 0 && items.length > limit) {
    const rest = items.length - limit;
    items = items.slice(0, limit);
    meta.continue = Buffer.from(JSON.stringify({ rv: Number(listRv), start: items[items.length - 1][0] })).toString("base64");
    meta.remainingItemCount = rest;
  }
  const objs = items.map(([, o]) => present(r, o, version));
  if (/as=Table/.test(accept || "")) return { code: 200, body: table(r, objs, meta) };
  for (const o of objs) { delete o.apiVersion; delete o.kind; }
  return { code: 200, body: { kind: `${r.kind}List`, apiVersion: apiVersionOf(r, version), metadata: meta, items: objs } };
}
function age(ts) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts || nowIso())) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`;
}
function table(r, objs, meta) {
  return { kind: "Table", apiVersion: "meta.k8s.io/v1", metadata: meta,
    columnDefinitions: [
      { name: "Name", type: "string", format: "name", description: "Name must be unique within a namespace.", priority: 0 },
      { name: "Age", type: "string", format: "", description: "CreationTimestamp of the object.", priority: 0 }],
    rows: objs.map((o) => ({ cells: [o.metadata.name, age(o.metadata.creationTimestamp)],
      object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata } })) };
}

function doWatch(req, res, r, ns, q, version) {
  let lsel, fsel;
  try { lsel = parseLabelSelector(q.get("labelSelector")); fsel = parseFieldSelector(q.get("fieldSelector")); }
  catch (e) { return send(res, status(400, "BadRequest", e.message)); }
  const from = q.get("resourceVersion");
  const prefix = `${r.group}/${r.resource}/${ns ? ns + "/" : ""}`;
  const matches = (rr, o) => rr === r && (!ns || o.metadata.namespace === ns) && lsel(o) && fsel(o);
  let backlog = [];
  if (from && from !== "0") {
    if (Number(from) < oldestRv())
      return send(res, status(410, "Expired", `too old resource version: ${from} (${oldestRv() + 1})`));
    backlog = history.filter((e) => e.rv > Number(from) && matches(e.res, e.obj));
  } else {
    // "" or "0": synthetic ADDED events for the current state first
    for (const [k, o] of store) if (k.startsWith(prefix) && lsel(o) && fsel(o)) backlog.push({ type: "ADDED", obj: o });
  }
  res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked", "Cache-Control": "no-cache, private" });
  const write = (type, obj) => res.write(JSON.stringify({ type, object: obj }) + "\n");
  for (const e of backlog) write(e.type, present(r, e.obj, version));
  const w = { offer: (type, rr, o) => { if (matches(rr, o)) write(type, present(r, o, version)); } };
  watchers.add(w);
  let bm = null;
  if (q.get("allowWatchBookmarks") === "true" || q.get("allowWatchBookmarks") === "1")
    bm = setInterval(() => write("BOOKMARK", { kind: r.kind, apiVersion: apiVersionOf(r, version),
      metadata: { resourceVersion: String(rv) } }), opt.bookmarkMs);
  const end = () => { watchers.delete(w); if (bm) clearInterval(bm); if (tm) clearTimeout(tm); };
  const ts = Number(q.get("timeoutSeconds") || 0);
  const tm = ts > 0 ? setTimeout(() => { end(); res.end(); }, ts * 1000) : null;
  req.on("close", end);
  res.on("error", end);
}

// ---- discovery ----------------------------------------------------------------------------
function resourceList(group, version) {
  const resources = [];
  for (const r of registry.filter((x) => x.group === group && x.versions.includes(version))) {
    const e = { name: r.resource, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs };
    if (r.shortNames.length) e.shortNames = r.shortNames;
    if (r.categories) e.categories = r.categories;
    e.storageVersionHash = crypto.createHash("sha256").update(`${group}/${r.versions[0]}/${r.kind}`).digest("base64").slice(0, 11);
    resources.push(e);
    if (r.statusSub && r.verbs.includes("get"))
      resources.push({ name: `${r.resource}/status`, singularName: "", namespaced: r.namespaced, kind: r.kind, verbs: ["get", "patch", "update"] });
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: group ? `${group}/${version}` : version, resources };
}
function groupEntry(name, versions) {
  const fake = { versions: [...versions] };
  const pv = preferred(fake);
  const sorted = [pv, ...[...versions].filter((v) => v !== pv)];
  return { name, versions: sorted.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
    preferredVersion: { groupVersion: `${name}/${pv}`, version: pv } };
}

// ---- HTTP -----------------------------------------------------------------------------------
function send(res, out) {
  const body = JSON.stringify(out.body);
  const h = { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body), "Cache-Control": "no-cache, private" };
  if (out.retryAfter) h["Retry-After"] = String(out.retryAfter);
  res.writeHead(out.code, h);
  res.end(body);
}

// Test-only fault injection (POST /_test/faults as a user allowed "*"): the next `count`
// requests whose path matches `path` (a regex) get `code` (with Retry-After) or an HTML page.
const faults = [];

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on("data", (c) => { n += c.length; if (n > 8 << 20) { reject(new Error("too large")); req.destroy(); } else chunks.push(c); });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function authenticate(req) {
  const agent = String(req.headers["user-agent"] || "unknown").split("/")[0];
  const sock = req.socket;
  if (sock.authorized) {
    const c = sock.getPeerCertificate();
    if (c && c.subject && c.subject.CN) return { name: c.subject.CN, agent };
  }
  const h = req.headers.authorization || "";
  const m = /^Bearer (.+)$/.exec(h);
  if (m && auth.tokens[m[1]]) return { name: auth.tokens[m[1]], agent };
  return null;
}

async function handle(req, res) {
  const url = new URL(req.url, "https://localhost");
  const q = url.searchParams;
  const p = url.pathname.replace(/\/+$/, "") || "/";
  if (p === "/healthz" || p === "/readyz" || p === "/livez") { res.writeHead(200, { "Content-Type": "text/plain" }); return res.end("ok"); }
  const user = authenticate(req);
  for (let i = 0; i < faults.length; i++) {
    const f = faults[i];
    if (!new RegExp(f.path).test(p) || p.startsWith("/_test")) continue;
    if (--f.count <= 0) faults.splice(i, 1);
    if (f.html) { res.writeHead(f.code || 200, { "Content-Type": "text/html" }); return res.end("<html><body><h1>Welcome to nginx!</h1></body></html>\n"); }
    return send(res, Object.assign(status(f.code, REASONS[f.code], f.message || "the server is currently unable to handle the request"), { retryAfter: f.retryAfter }));
  }
  if (!user) return send(res, status(401, "Unauthorized", "Unauthorized"));
  if (p === "/_test/faults" && req.method === "POST") {
    const u = auth.users[user.name] || {};
    if (!(u.allow || []).includes("*")) return send(res, status(403, "Forbidden", "test endpoint"));
    faults.push(JSON.parse(await readBody(req)));
    return send(res, { code: 200, body: { kind: "Status", apiVersion: "v1", status: "Success", metadata: {} } });
  }
  if (p === "/version")
    return send(res, { code: 200, body: { major: "1", minor: "32", gitVersion: "v1.32.0-coffer-test", gitCommit: "0000000000000000000000000000000000000000",
      gitTreeState: "clean", buildDate: "2026-01-01T00:00:00Z", goVersion: "go1.23.0", compiler: "gc", platform: "linux/amd64" } });
  if (p === "/api")
    return send(res, { code: 200, body: { kind: "APIVersions", versions: ["v1"],
      serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: `127.0.0.1:${opt.port}` }] } });
  if (p === "/apis") {
    const groups = [];
    for (const [g, vs] of groupsServed()) if (g) groups.push(groupEntry(g, vs));
    return send(res, { code: 200, body: { kind: "APIGroupList", apiVersion: "v1", groups } });
  }
  let m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))(\/.*)?$/.exec(p);
  if (!m) {
    const g = /^\/apis\/([^/]+)$/.exec(p);
    if (g && groupsServed().has(g[1]))
      return send(res, { code: 200, body: Object.assign({ kind: "APIGroup", apiVersion: "v1" }, groupEntry(g[1], groupsServed().get(g[1]))) });
    return send(res, status(404, "NotFound", "the server could not find the requested resource"));
  }
  const group = m[1] ? "" : m[2], version = m[1] || m[3];
  const segs = (m[4] || "").split("/").filter(Boolean).map(decodeURIComponent);
  if (!segs.length) {
    if (!groupsServed().has(group) || !groupsServed().get(group).has(version))
      return send(res, status(404, "NotFound", "the server could not find the requested resource"));
    return send(res, { code: 200, body: resourceList(group, version) });
  }
  let ns = "", rest = segs;
  if (segs[0] === "namespaces" && segs.length >= 3) {
    const cand = findRes(group, version, segs[2]);
    if (cand && cand.namespaced) { ns = segs[1]; rest = segs.slice(2); }
  }
  const r = findRes(group, version, rest[0]);
  if (!r || (ns && !r.namespaced) || rest.length > 3)
    return send(res, status(404, "NotFound", "the server could not find the requested resource"));
  const name = rest[1] || "", sub = rest[2] || "";
  if (sub === "scale" && SCALABLE.has(r.resource) && r.group === "apps")
    return scale(req, res, r, ns, name, q, user);
  if (sub && !(sub === "status" && r.statusSub))
    return send(res, status(404, "NotFound", "the server could not find the requested resource"));
  const watch = q.get("watch") === "1" || q.get("watch") === "true";
  const verb = { GET: name ? "get" : watch ? "watch" : "list", POST: "create", PUT: "update", PATCH: "patch",
    DELETE: name ? "delete" : "deletecollection" }[req.method];
  if (!verb || !r.verbs.includes(verb))
    return send(res, status(405, "MethodNotAllowed", `the server does not allow this method on the requested resource`));
  const denied = authorize(user, verb, r, ns);
  if (denied) return send(res, denied);

  let body = null;
  if (["POST", "PUT", "PATCH", "DELETE"].includes(req.method)) {
    const raw = await readBody(req);
    const ct = String(req.headers["content-type"] || "application/json").split(";")[0].trim();
    if (raw.length) {
      try { body = ct.endsWith("yaml") ? yaml.load(raw) : JSON.parse(raw); }
      catch (e) { return send(res, status(400, "BadRequest", `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml: ${e.message.split("\n")[0]}`)); }
    }
    if (req.method === "PATCH") return send(res, patch(r, ns, name, sub, ct, body, q, user, version));
  }
  if (req.method === "GET") {
    if (watch) return doWatch(req, res, r, ns, q, version);
    if (!name) return send(res, doList(r, ns, q, version, req.headers.accept));
    const o = store.get(keyOf(r, ns, name));
    if (!o) return send(res, notFound(r, name));
    const out = present(r, o, version);
    if (/as=Table/.test(req.headers.accept || "")) return send(res, { code: 200, body: table(r, [out], { resourceVersion: String(rv) }) });
    return send(res, { code: 200, body: out });
  }
  if (req.method === "POST") {
    if (name) return send(res, status(405, "MethodNotAllowed", "POST is not allowed on a named object"));
    if (!isObj(body)) return send(res, status(400, "BadRequest", "the request body is not an object"));
    if (body.kind && body.kind !== r.kind)
      return send(res, status(400, "BadRequest", `the object kind ${body.kind} does not match the resource ${r.resource}`));
    return send(res, doCreate(r, ns, body, q, user, version));
  }
  if (req.method === "PUT") {
    if (!isObj(body)) return send(res, status(400, "BadRequest", "the request body is not an object"));
    return send(res, doUpdate(r, ns, name, body, q, user, version, sub, "Update"));
  }
  if (req.method === "DELETE") {
    if (name) return send(res, doDelete(r, ns, name, q, body));
    let items;
    try { items = listObjects(r, ns, q); } catch (e) { return send(res, status(400, "BadRequest", e.message)); }
    const deleted = items.map(([, o]) => doDelete(r, o.metadata.namespace, o.metadata.name, q, body).body);
    return send(res, { code: 200, body: { kind: `${r.kind}List`, apiVersion: apiVersionOf(r, version), metadata: { resourceVersion: String(rv) }, items: deleted } });
  }
}

// The scale subresource of deployments, replica sets and stateful sets (autoscaling/v1 Scale).
const SCALABLE = new Set(["deployments", "replicasets", "statefulsets"]);
async function scale(req, res, r, ns, name, q, user) {
  const verb = { GET: "get", PUT: "update", PATCH: "patch" }[req.method];
  if (!verb) return send(res, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"));
  const denied = authorize(user, verb, r, ns);
  if (denied) return send(res, denied);
  const cur = store.get(keyOf(r, ns, name));
  if (!cur) return send(res, notFound(r, name));
  const asScale = (o) => ({ kind: "Scale", apiVersion: "autoscaling/v1",
    metadata: { name, namespace: ns, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
    spec: { replicas: (o.spec && o.spec.replicas) || 0 }, status: { replicas: (o.status && o.status.replicas) || 0 } });
  if (verb === "get") return send(res, { code: 200, body: asScale(cur) });
  let body;
  try { body = JSON.parse(await readBody(req)); } catch (e) { return send(res, status(400, "BadRequest", "the body is not JSON")); }
  const ct = String(req.headers["content-type"] || "").split(";")[0].trim();
  const sc = verb === "update" ? body : ct === "application/json-patch+json" ? jsonPatch(asScale(cur), body) : mergePatch(asScale(cur), body);
  const next = clone(cur);
  next.spec = Object.assign({}, next.spec, { replicas: sc.spec && sc.spec.replicas });
  delete next.metadata.resourceVersion;
  const out = doUpdate(r, ns, name, next, q, user, r.versions[0], "", "Update");
  return send(res, out.code === 200 ? { code: 200, body: asScale(store.get(keyOf(r, ns, name))) } : out);
}

function patch(r, ns, name, sub, ct, body, q, user, version) {
  const cur = store.get(keyOf(r, ns, name));
  if (ct === "application/apply-patch+yaml") {
    if (!q.get("fieldManager")) return status(422, "Invalid", "PATCH requests with apply content type require fieldManager", {});
    if (!isObj(body)) return status(400, "BadRequest", "apply patch is not an object");
    if (!cur) return doCreate(r, ns, body, q, user, version);
    const merged = strategicMerge(present(r, cur, version), body);
    delete merged.metadata.resourceVersion;
    return doUpdate(r, ns, name, merged, q, user, version, sub, "Apply");
  }
  if (!cur) return notFound(r, name);
  let merged;
  try {
    if (ct === "application/merge-patch+json") merged = mergePatch(present(r, cur, version), body);
    else if (ct === "application/strategic-merge-patch+json") {
      if (r.crd) return status(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources");
      merged = strategicMerge(present(r, cur, version), body);
    } else if (ct === "application/json-patch+json") merged = jsonPatch(present(r, cur, version), body || []);
    else return status(415, "UnsupportedMediaType", `the media type ${ct} is not supported for PATCH`);
  } catch (e) { return status(422, "Invalid", `the patch could not be applied: ${e.message}`); }
  if (isObj(body) && body.metadata && body.metadata.resourceVersion === undefined && merged.metadata) delete merged.metadata.resourceVersion;
  if (ct !== "application/json-patch+json" || !(body || []).some((o) => o.path === "/metadata/resourceVersion"))
    delete merged.metadata.resourceVersion;
  return doUpdate(r, ns, name, merged, q, user, version, sub, "Update");
}

// ---- seed and start -------------------------------------------------------------------------
function seed(file) {
  const text = fs.readFileSync(file, "utf8");
  const docs = file.endsWith(".json") ? [].concat(JSON.parse(text)) : yaml.loadAll(text);
  const flat = [];
  for (const d of docs) { if (!d) continue; if (Array.isArray(d.items)) flat.push(...d.items); else flat.push(d); }
  // namespaces and CRDs first, so that objects in them can be seeded in any order
  flat.sort((a, b) => (b.kind === "Namespace") - (a.kind === "Namespace") || (b.kind === "CustomResourceDefinition") - (a.kind === "CustomResourceDefinition"));
  for (const o of flat) {
    const [g, v] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
    const r = registry.find((x) => x.group === g && x.kind === o.kind && x.versions.includes(v));
    if (!r) throw new Error(`seed: no resource for ${o.apiVersion} ${o.kind}`);
    const ns = r.namespaced ? o.metadata.namespace || "default" : "";
    const out = doCreate(r, ns, o, null, { agent: "seed" }, v, true);
    if (out.code === 409 && r === NSRES) continue;
    if (out.code !== 201) throw new Error(`seed: ${o.kind} ${o.metadata.name}: ${out.body.message}`);
  }
}

const bootNs = (name) => doCreate(NSRES, "", { metadata: { name } }, null, { agent: "kube-apiserver" }, "v1", true);
["default", "kube-system", "kube-public", "kube-node-lease"].forEach(bootNs);
if (opt.seed) {
  try { seed(opt.seed); } catch (e) { console.error(`k8s-api: ${e.message}`); process.exit(1); }
}
const tlsOpts = { key: fs.readFileSync(opt.key), cert: fs.readFileSync(opt.cert), requestCert: true, rejectUnauthorized: false };
if (opt.clientCa) tlsOpts.ca = fs.readFileSync(opt.clientCa);
const server = https.createServer(tlsOpts, (req, res) => {
  handle(req, res).catch((e) => { try { send(res, status(500, "InternalError", `internal error: ${e.message}`)); } catch (e2) { res.destroy(); } });
});
server.listen(opt.port, "127.0.0.1", () => {
  opt.port = server.address().port;
  if (opt.readyFile) fs.writeFileSync(opt.readyFile, String(opt.port));
  console.log(`k8s-api: listening on https://127.0.0.1:${opt.port}`);
});
for (const s of ["SIGTERM", "SIGINT"]) process.on(s, () => { server.close(); process.exit(0); });
