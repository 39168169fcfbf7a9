// validate.js -- offline schema validation of Kubernetes manifests with npm kubernetes-models
// (the same check the test API server applies on create; after
// /work/shared/test-servers/k8s-validate.mjs, as CommonJS so that the modules can live outside
// the source tree: K8S_API_MODULES=.../node_modules).
// usage: node validate.js FILE.yaml...   prints OK/FAIL/SKIP per document and
// "N passed, N failed, N skipped"; exits 1 when one failed. Catches type errors and missing
// required fields; does not flag unknown fields; skips kinds it has no model for.
"use strict";
const fs = require("fs");
const path = require("path");
const MODS = process.env.K8S_API_MODULES || path.join(__dirname, "node_modules");
const yaml = require(path.join(MODS, "js-yaml"));
let bad = 0, n = 0, skip = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of yaml.loadAll(fs.readFileSync(file, "utf8"))) {
    if (!doc) continue;
    n++;
    const id = `${file}: ${doc.kind}/${doc.metadata && doc.metadata.name}`;
    const [g, v] = String(doc.apiVersion).includes("/") ? doc.apiVersion.split("/") : ["", doc.apiVersion];
    let Model = null;
    try {
      const mod = require(path.join(MODS, "kubernetes-models", g ? `${g}/${v}` : v, doc.kind));
      Model = mod[doc.kind] || mod.default;
    } catch (e) { Model = null; }
    if (!Model) { skip++; console.log(`SKIP ${id} (no model for ${doc.apiVersion} ${doc.kind})`); continue; }
    try { new Model(doc).validate(); console.log(`OK   ${id}`); }
    catch (e) { bad++; console.log(`FAIL ${id}: ${String(e.message).split("\n").slice(0, 4).join(" | ")}`); }
  }
}
console.log(`${n - bad - skip} passed, ${bad} failed, ${skip} skipped`);
process.exit(bad ? 1 : 0);
