/*
 * manifests.c -- the objects of `coffer k8s manifests` (manifests.h).
 *
 * Layer: operator. The pod conventions are the operator's (render.h): the configuration in a
 * ConfigMap at OP_CONFIG_DIR/config.yaml, each repository password from its Secret as a file at
 * OP_SECRET_DIR/REPO/password, a read-only root file system with an emptyDir /tmp, no
 * privilege escalation, all capabilities dropped, the RuntimeDefault seccomp profile. The
 * ConfigMap's configuration is cfg_t.raw (the files as written, includes merged) with the
 * kubernetes: sections removed and every repository's password pointed at its mounted Secret;
 * ${VAR}s are kept and expanded by `coffer job run` in the pod.
 */
#include "operator/manifests.h"
#include "operator/render.h"

#include "common/error.h"
#include "crypto/crypto.h"
#include "k8s/yamlout.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_KEY "config.yaml"

char *mf_dns_name(const char *prefix, const char *name, size_t max)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s%s", prefix ? prefix : "", prefix && *prefix ? "-" : "", name);
    bool changed = false;
    for (char *s = buf; *s; s++) {
        if (isupper((unsigned char)*s)) {
            *s = (char)tolower((unsigned char)*s);
            changed = true;
        } else if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-') {
            *s = '-';
            changed = true;
        }
    }
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '-') {
        buf[--n] = 0;
        changed = true;
    }
    if (!changed && n <= max && n > 0 && isalnum((unsigned char)buf[0]))
        return strdup(buf);
    uint8_t h[CRYPTO_HASH_LEN];
    char hex[2 * CRYPTO_HASH_LEN + 1];
    crypto_sha256(name, strlen(name), h);
    hex_encode(h, 4, hex);
    size_t keep = max > 9 ? max - 9 : 0;
    if (n > keep)
        n = keep;
    while (n && buf[n - 1] == '-')
        n--;
    char out[600];
    snprintf(out, sizeof out, "%s%.*s%s%s", n && isalnum((unsigned char)buf[0]) ? "" : "x", (int)n,
             buf, n ? "-" : "", hex);
    if (strlen(out) > max) /* only when max < 10: the hash alone */
        out[max] = 0;
    return strdup(out);
}

int mf_every_to_cron(int every_s, char *out, size_t n)
{
    if (every_s <= 0 || every_s % 60)
        return -1;
    int m = every_s / 60;
    if (m < 60 && 60 % m == 0)
        snprintf(out, n, m == 1 ? "* * * * *" : "*/%d * * * *", m);
    else if (m % 60 == 0 && m / 60 < 24 && 24 % (m / 60) == 0)
        snprintf(out, n, m == 60 ? "0 * * * *" : "0 */%d * * *", m / 60);
    else if (m == 24 * 60)
        snprintf(out, n, "0 0 * * *");
    else
        return -1;
    return 0;
}

/* ---- small builders ------------------------------------------------------------------------ */

typedef struct mf {
    const cfg_t *c;
    const mf_opts_t *o;
    const char *ns;
    const char *prefix;
    const char *image;
    json_t *labels; /* common labels */
    buf_t *notes;
    char *configmap;
} mf_t;

static void note(mf_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(mf_t *m, const char *fmt, ...)
{
    if (!m->notes)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    buf_printf(m->notes, "%s\n", line);
}

static json_t *labels(const mf_t *m, const char *component, const char *job)
{
    json_t *l = json_deep_copy(m->labels);
    if (component)
        json_object_set_new(l, "app.kubernetes.io/component", json_string(component));
    if (job) {
        char *v = mf_dns_name(NULL, job, 63);
        json_object_set_new(l, "coffer.dev/job", json_string(v ? v : "x"));
        free(v);
    }
    return l;
}

static json_t *meta(const mf_t *m, const char *name, const char *ns, const char *component,
                    const char *job)
{
    json_t *md = json_pack("{s:s}", "name", name);
    if (ns)
        json_object_set_new(md, "namespace", json_string(ns));
    json_object_set_new(md, "labels", labels(m, component, job));
    return md;
}

static json_t *kv_object(const cfg_kv_t *kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i].key, json_string(kv[i].value ? kv[i].value : ""));
    return o;
}

/* A secret-bearing raw value is fine only as a ${VAR} reference (expanded in the pod). */
static bool is_reference(const json_t *v)
{
    const char *s = json_string_value(v);
    return s && strstr(s, "${");
}

static int loc_err(const cfg_loc_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int loc_err(const cfg_loc_t *l, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(COFFER_EINVAL, "%s:%d:%d: %s", l->file, l->line, l->col, msg);
}

/* env: of a repository or job in the raw config: only ${VAR} references may stay. */
static int check_env(const json_t *env, const cfg_loc_t *loc, const char *what)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)env, k, v)
    {
        size_t kl = strlen(k);
        if (kl > 5 && !strcmp(k + kl - 5, "_file"))
            return loc_err(loc,
                           "%s: env %s reads a file the pod does not have; give %.*s through "
                           "kubernetes.env ({secret: NAME, key: KEY}) or a Secret in "
                           "kubernetes env_from, and remove it here",
                           what, k, (int)(kl - 5), k);
        if (!is_reference(v))
            return loc_err(loc,
                           "%s: env %s has a literal value, which would be written into the "
                           "ConfigMap; put it in a Secret and pass it with kubernetes env_from "
                           "or kubernetes.env (or write %s: ${VAR})",
                           what, k, k);
    }
    return 0;
}

/* ---- the configuration for the pod ------------------------------------------------------------
 */

static int pod_config(const mf_t *m, json_t **out)
{
    const cfg_t *c = m->c;
    json_t *cfg = json_deep_copy(c->raw);
    if (!cfg)
        return err_set(COFFER_ENOMEM, "out of memory");
    int rc = 0;
    json_object_del(cfg, "kubernetes");
    json_t *repos = json_object_get(cfg, "repositories");
    for (size_t i = 0; i < c->n_repos && !rc; i++) {
        const cfg_repo_t *r = &c->repos[i];
        json_t *jr = json_object_get(repos, r->name);
        const cfg_k8s_repo_t *kr = cfg_k8s_find_repo(c, r->name);
        if (!kr) {
            rc = loc_err(&r->loc,
                         "repository \"%s\": its password would have to be in the ConfigMap; "
                         "store it in a Secret and name it under kubernetes.repositories.%s: "
                         "{password: {secret: NAME, key: KEY}}",
                         r->name, r->name);
            break;
        }
        if (!jr)
            continue;
        json_object_del(jr, "password");
        char pw[512];
        snprintf(pw, sizeof pw, "%s/%s/password", OP_SECRET_DIR, r->name);
        json_object_set_new(jr, "password_file", json_string(pw));
        char what[160];
        snprintf(what, sizeof what, "repository \"%.100s\"", r->name);
        rc = check_env(json_object_get(jr, "env"), &r->loc, what);
    }
    size_t i;
    json_t *j;
    json_array_foreach(json_object_get(cfg, "jobs"), i, j)
    {
        json_object_del(j, "kubernetes");
        if (!rc && i < c->n_jobs) {
            char what[160];
            snprintf(what, sizeof what, "job \"%.100s\"", c->jobs[i].name);
            rc = check_env(json_object_get(j, "env"), &c->jobs[i].loc, what);
        }
    }
    json_array_foreach(json_object_get(cfg, "notifications"), i, j)
    {
        if (rc || i >= c->n_notify)
            break;
        const cfg_loc_t *l = &c->notify[i].loc;
        if (json_object_get(j, "password_file"))
            rc = loc_err(l,
                         "notification \"%s\": password_file is read in the pod, which does not "
                         "have it; write password: ${VAR} and pass VAR from a Secret "
                         "(kubernetes env_from or kubernetes.env)",
                         c->notify[i].name);
        else if (json_object_get(j, "password") && !is_reference(json_object_get(j, "password")))
            rc = loc_err(l,
                         "notification \"%s\": the password would be written into the "
                         "ConfigMap; write password: ${VAR} and pass VAR from a Secret "
                         "(kubernetes env_from or kubernetes.env)",
                         c->notify[i].name);
        const char *k;
        json_t *h;
        json_object_foreach(json_object_get(j, "headers"), k, h)
        {
            if (!rc && !is_reference(h))
                rc = loc_err(l,
                             "notification \"%s\": header %s has a literal value (header values "
                             "are secrets); write ${VAR} and pass VAR from a Secret",
                             c->notify[i].name, k);
        }
    }
    if (rc) {
        json_decref(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

/* ---- pods -------------------------------------------------------------------------------- */

typedef struct task {
    const char *name;    /* job or copy task */
    const cfg_job_t *j;  /* NULL for a copy task */
    const cfg_copy_t *k; /* NULL for a job */
    size_t repos[2 * 64];
    size_t n_repos;
    const char *schedule;
    const char *timezone;
    char *service_account;
} task_t;

static long pick(long job, long top, long def)
{
    return job >= 0 ? job : top >= 0 ? top : def;
}

static void add_env_from(json_t *env_from, json_t *seen, char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (json_object_get(seen, names[i]))
            continue;
        json_object_set_new(seen, names[i], json_true());
        json_array_append_new(env_from, json_pack("{s:{s:s}}", "secretRef", "name", names[i]));
    }
}

static void add_secret_env(json_t *env, json_t *seen, const cfg_k8s_secret_env_t *e, size_t n,
                           const cfg_k8s_secret_env_t *over, size_t n_over)
{
    for (size_t i = 0; i < n; i++) {
        if (json_object_get(seen, e[i].name))
            continue;
        const cfg_k8s_secret_env_t *use = &e[i];
        for (size_t k = 0; k < n_over; k++)
            if (!strcmp(over[k].name, e[i].name))
                use = &over[k];
        json_object_set_new(seen, use->name, json_true());
        json_array_append_new(env,
                              json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", use->name, "valueFrom",
                                        "secretKeyRef", "name", use->secret, "key", use->key));
    }
}

static bool job_is(const cfg_job_t *j, const char *type)
{
    return j && !strcmp(j->type, type);
}

static json_t *pod_spec(mf_t *m, const task_t *t)
{
    const cfg_t *c = m->c;
    const cfg_k8s_pod_t *top = &c->k8s.pod;
    const cfg_k8s_job_t *kj = t->j ? &t->j->k8s : NULL;
    const cfg_k8s_pod_t *jp = kj ? &kj->pod : NULL;

    json_t *args = json_array();
    json_array_append_new(args, json_string("job"));
    json_array_append_new(args, json_string(t->j ? "run" : "copy"));
    json_array_append_new(args, json_string(t->name));
    json_array_append_new(args, json_string("--config"));
    json_array_append_new(args, json_string(OP_CONFIG_DIR "/" CONFIG_KEY));
    if (t->j && t->j->n_run_on)
        json_array_append_new(args, json_string("--ignore-run-on"));

    /* environment: Secret keys (the job's override the top's), Secrets as a whole, then ours */
    json_t *env = json_array(), *seen = json_object();
    if (jp)
        add_secret_env(env, seen, jp->env, jp->n_env, NULL, 0);
    add_secret_env(env, seen, top->env, top->n_env, NULL, 0);
    json_array_append_new(env, json_pack("{s:s, s:{s:{s:s}}}", "name", "POD_NAME", "valueFrom",
                                         "fieldRef", "fieldPath", "metadata.name"));
    json_array_append_new(env, json_pack("{s:s, s:s}", "name", "HOME", "value", "/tmp"));
    json_array_append_new(env, json_pack("{s:s, s:s}", "name", "TMPDIR", "value", "/tmp"));
    json_decref(seen);
    json_t *env_from = json_array();
    seen = json_object();
    add_env_from(env_from, seen, top->env_from, top->n_env_from);
    if (jp)
        add_env_from(env_from, seen, jp->env_from, jp->n_env_from);
    for (size_t i = 0; i < t->n_repos; i++) {
        const cfg_k8s_repo_t *kr = cfg_k8s_find_repo(c, c->repos[t->repos[i]].name);
        if (kr)
            add_env_from(env_from, seen, kr->env_from, kr->n_env_from);
    }
    json_decref(seen);

    /* volumes: the config, the passwords of the repositories used, /tmp, the job's own */
    json_t *volumes = json_array(), *mounts = json_array();
    json_array_append_new(
        volumes, json_pack("{s:s, s:{s:s}}", "name", "config", "configMap", "name", m->configmap));
    json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "name", "config", "mountPath",
                                            OP_CONFIG_DIR, "readOnly", 1));
    for (size_t i = 0; i < t->n_repos; i++) {
        const cfg_repo_t *r = &c->repos[t->repos[i]];
        const cfg_k8s_repo_t *kr = cfg_k8s_find_repo(c, r->name);
        char *vn = mf_dns_name("password", r->name, 63);
        char path[512];
        snprintf(path, sizeof path, "%s/%s", OP_SECRET_DIR, r->name);
        json_array_append_new(volumes, json_pack("{s:s, s:{s:s, s:[{s:s, s:s}], s:i}}", "name", vn,
                                                 "secret", "secretName", kr->secret, "items", "key",
                                                 kr->key, "path", "password", "defaultMode", 0440));
        json_array_append_new(
            mounts, json_pack("{s:s, s:s, s:b}", "name", vn, "mountPath", path, "readOnly", 1));
        free(vn);
    }
    json_array_append_new(volumes, json_pack("{s:s, s:{}}", "name", "tmp", "emptyDir"));
    json_array_append_new(mounts, json_pack("{s:s, s:s}", "name", "tmp", "mountPath", "/tmp"));
    for (size_t i = 0; kj && i < kj->n_mounts; i++) {
        const cfg_k8s_volume_t *mv = &kj->mounts[i], *def = mv;
        for (size_t k = 0; mv->name && k < c->k8s.n_volumes; k++)
            if (!strcmp(c->k8s.volumes[k].name, mv->name))
                def = &c->k8s.volumes[k];
        char idx[32];
        snprintf(idx, sizeof idx, "%zu", i);
        char *vn = mf_dns_name("data", mv->name ? mv->name : idx, 63);
        json_t *vol = def->claim ? json_pack("{s:s, s:{s:s}}", "name", vn, "persistentVolumeClaim",
                                             "claimName", def->claim)
                                 : json_pack("{s:s, s:{s:s, s:s}}", "name", vn, "hostPath", "path",
                                             def->host_path, "type", "Directory");
        bool ro = mv->read_only && def->read_only;
        if (def->claim && ro)
            json_object_set_new(json_object_get(vol, "persistentVolumeClaim"), "readOnly",
                                json_true());
        json_array_append_new(volumes, vol);
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "name", vn, "mountPath",
                                                mv->mount, "readOnly", ro));
        free(vn);
    }

    /* who the pod runs as: files jobs read every file, so root with only DAC_READ_SEARCH
     * unless run_as_user names the owner of the data; everything else as the image's user */
    bool files = job_is(t->j, "files");
    long uid = kj && kj->run_as_user >= 0 ? kj->run_as_user : files ? 0 : MF_DEFAULT_UID;
    json_t *caps = json_pack("{s:[s]}", "drop", "ALL");
    if (uid == 0)
        json_object_set_new(caps, "add", json_pack("[s]", "DAC_READ_SEARCH"));
    json_t *csc =
        json_pack("{s:b, s:b, s:b, s:o}", "allowPrivilegeEscalation", 0, "readOnlyRootFilesystem",
                  1, "runAsNonRoot", uid != 0, "capabilities", caps);
    json_t *container = json_pack("{s:s, s:s}", "name", "coffer", "image", m->image);
    if (c->k8s.pull_policy)
        json_object_set_new(container, "imagePullPolicy", json_string(c->k8s.pull_policy));
    json_object_set_new(container, "args", args);
    json_object_set_new(container, "env", env);
    if (json_array_size(env_from))
        json_object_set(container, "envFrom", env_from);
    json_decref(env_from);
    const cfg_k8s_pod_t *res = jp && jp->has_resources ? jp : top->has_resources ? top : NULL;
    if (res) {
        json_t *r = json_object();
        if (res->n_requests)
            json_object_set_new(r, "requests", kv_object(res->requests, res->n_requests));
        if (res->n_limits)
            json_object_set_new(r, "limits", kv_object(res->limits, res->n_limits));
        json_object_set_new(container, "resources", r);
    }
    json_object_set_new(container, "volumeMounts", mounts);
    json_object_set_new(container, "securityContext", csc);

    json_t *psc = json_pack("{s:I, s:I, s:b, s:{s:s}}", "runAsUser", (json_int_t)uid, "runAsGroup",
                            (json_int_t)(uid ? uid : 0), "runAsNonRoot", uid != 0, "seccompProfile",
                            "type", "RuntimeDefault");
    if (uid != 0) /* the password files are group-readable (0440) by this group */
        json_object_set_new(psc, "fsGroup", json_integer(uid));
    json_t *spec = json_pack("{s:s, s:s, s:b, s:o}", "restartPolicy", "Never", "serviceAccountName",
                             t->service_account, "automountServiceAccountToken",
                             job_is(t->j, "k8s"), "securityContext", psc);
    /* node placement: node selector (the job's keys over the top's), hostname affinity */
    json_t *sel = kv_object(top->node_selector, top->n_node_selector);
    if (jp) {
        json_t *over = kv_object(jp->node_selector, jp->n_node_selector);
        json_object_update(sel, over);
        json_decref(over);
    }
    if (json_object_size(sel))
        json_object_set(spec, "nodeSelector", sel);
    json_decref(sel);
    if (kj && kj->node)
        json_object_set_new(spec, "affinity",
                            json_pack("{s:{s:{s:[{s:[{s:s, s:s, s:[s]}]}]}}}", "nodeAffinity",
                                      "requiredDuringSchedulingIgnoredDuringExecution",
                                      "nodeSelectorTerms", "matchExpressions", "key",
                                      "kubernetes.io/hostname", "operator", "In", "values",
                                      kj->node));
    const cfg_k8s_pod_t *tol = jp && jp->has_tolerations ? jp : top;
    if (tol->n_tolerations) {
        json_t *arr = json_array();
        for (size_t i = 0; i < tol->n_tolerations; i++) {
            const cfg_k8s_toleration_t *x = &tol->tolerations[i];
            json_t *e = json_object();
            if (x->key)
                json_object_set_new(e, "key", json_string(x->key));
            json_object_set_new(e, "operator", json_string(x->op ? x->op : "Equal"));
            if (x->value)
                json_object_set_new(e, "value", json_string(x->value));
            if (x->effect)
                json_object_set_new(e, "effect", json_string(x->effect));
            if (x->has_seconds)
                json_object_set_new(e, "tolerationSeconds", json_integer(x->seconds));
            json_array_append_new(arr, e);
        }
        json_object_set_new(spec, "tolerations", arr);
    }
    json_object_set_new(spec, "containers", json_pack("[o]", container));
    json_object_set_new(spec, "volumes", volumes);
    return spec;
}

static json_t *cronjob(mf_t *m, const task_t *t, const char *name)
{
    const cfg_k8s_pod_t *top = &m->c->k8s.pod;
    const cfg_k8s_pod_t *jp = t->j ? &t->j->k8s.pod : NULL;
    const char *component = t->j ? "backup" : "copy";
    json_t *jspec = json_pack("{s:I}", "backoffLimit",
                              (json_int_t)pick(jp ? jp->backoff_limit : -1, top->backoff_limit, 0));
    long ad = pick(jp ? jp->active_deadline_s : -1, top->active_deadline_s, -1);
    if (ad > 0)
        json_object_set_new(jspec, "activeDeadlineSeconds", json_integer(ad));
    json_object_set_new(jspec, "template",
                        json_pack("{s:{s:o}, s:o}", "metadata", "labels",
                                  labels(m, component, t->name), "spec", pod_spec(m, t)));
    json_t *cs = json_pack("{s:s}", "schedule", t->schedule);
    if (t->timezone)
        json_object_set_new(cs, "timeZone", json_string(t->timezone));
    json_object_set_new(cs, "concurrencyPolicy", json_string("Forbid"));
    json_object_set_new(
        cs, "startingDeadlineSeconds",
        json_integer(pick(jp ? jp->starting_deadline_s : -1, top->starting_deadline_s, 3600)));
    json_object_set_new(
        cs, "successfulJobsHistoryLimit",
        json_integer(pick(jp ? jp->successful_history : -1, top->successful_history, 3)));
    json_object_set_new(cs, "failedJobsHistoryLimit",
                        json_integer(pick(jp ? jp->failed_history : -1, top->failed_history, 3)));
    json_object_set_new(cs, "jobTemplate",
                        json_pack("{s:{s:o}, s:o}", "metadata", "labels",
                                  labels(m, component, t->name), "spec", jspec));
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "batch/v1", "kind", "CronJob",
                     "metadata", meta(m, name, m->ns, component, t->name), "spec", cs);
}

/* ---- RBAC for k8s export jobs ------------------------------------------------------------- */

/* What the export reads (as deploy/rbac/export/base: everything but Secrets). */
static json_t *reader_rules(bool secrets)
{
    json_t *rules = json_pack(
        "[{s:[s], s:[s,s,s,s,s,s,s,s,s,s,s,s,s,s], s:[s,s,s]},"
        " {s:[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s], s:[s], s:[s,s,s]}]",
        "apiGroups", "", "resources", "namespaces", "configmaps", "services", "serviceaccounts",
        "pods", "persistentvolumeclaims", "persistentvolumes", "endpoints", "events", "limitranges",
        "resourcequotas", "replicationcontrollers", "podtemplates", "nodes", "verbs", "get", "list",
        "watch", "apiGroups", "apps", "batch", "autoscaling", "policy", "networking.k8s.io",
        "rbac.authorization.k8s.io", "storage.k8s.io", "scheduling.k8s.io", "apiextensions.k8s.io",
        "discovery.k8s.io", "coordination.k8s.io", "events.k8s.io", "admissionregistration.k8s.io",
        "certificates.k8s.io", "node.k8s.io", "apiregistration.k8s.io", "coffer.dev", "resources",
        "*", "verbs", "get", "list", "watch");
    if (secrets)
        json_array_append_new(rules, json_pack("{s:[s], s:[s], s:[s,s]}", "apiGroups", "",
                                               "resources", "secrets", "verbs", "get", "list"));
    return rules;
}

static json_t *binding(mf_t *m, const char *kind, const char *name, const char *ns,
                       const char *role, const char *sa, const char *job)
{
    return json_pack("{s:s, s:s, s:o, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}", "apiVersion",
                     "rbac.authorization.k8s.io/v1", "kind", kind, "metadata",
                     meta(m, name, ns, "k8s-export", job), "roleRef", "apiGroup",
                     "rbac.authorization.k8s.io", "kind", "ClusterRole", "name", role, "subjects",
                     "kind", "ServiceAccount", "name", sa, "namespace", m->ns);
}

/* A ServiceAccount for export job j, and the least RBAC that lets it read what it exports:
 * every namespace (all-namespaces or cluster-resources) through a ClusterRoleBinding; named
 * namespaces through RoleBindings there, plus cluster-wide reads of namespaces, PVs and CRDs
 * (the export adds the PVs and CRDs its objects need). */
static void rbac_for(mf_t *m, const task_t *t, json_t *sas, json_t *rbac)
{
    const cfg_job_t *j = t->j;
    bool all = false, secrets = false;
    json_t *nss = json_array();
    for (size_t i = 0; i < j->n_options; i++) {
        const char *k = j->options[i].key, *v = j->options[i].value;
        if (!strcmp(k, "all-namespaces") || !strcmp(k, "all_namespaces") ||
            !strcmp(k, "cluster-resources") || !strcmp(k, "cluster_resources"))
            all = true;
        else if (!strcmp(k, "include-secrets") || !strcmp(k, "include_secrets"))
            secrets = true;
        else if (!strcmp(k, "namespace") && v)
            json_array_append_new(nss, json_string(v));
    }
    if (!json_array_size(nss)) /* in the pod, the export's default is the pod's namespace */
        json_array_append_new(nss, json_string(m->ns));
    json_array_append_new(
        sas, json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind", "ServiceAccount", "metadata",
                       meta(m, t->service_account, m->ns, "k8s-export", t->name)));
    char *role = mf_dns_name(m->prefix, t->name, 240);
    char rname[300];
    snprintf(rname, sizeof rname, "%s-reader", role);
    json_array_append_new(rbac, json_pack("{s:s, s:s, s:o, s:o}", "apiVersion",
                                          "rbac.authorization.k8s.io/v1", "kind", "ClusterRole",
                                          "metadata", meta(m, rname, NULL, "k8s-export", t->name),
                                          "rules", reader_rules(secrets)));
    if (all) {
        json_array_append_new(rbac, binding(m, "ClusterRoleBinding", rname, NULL, rname,
                                            t->service_account, t->name));
    } else {
        char cname[300];
        snprintf(cname, sizeof cname, "%s-cluster", role);
        json_array_append_new(
            rbac,
            json_pack("{s:s, s:s, s:o, s:[{s:[s], s:[s,s], s:[s,s,s]}, {s:[s], s:[s], "
                      "s:[s,s,s]}]}",
                      "apiVersion", "rbac.authorization.k8s.io/v1", "kind", "ClusterRole",
                      "metadata", meta(m, cname, NULL, "k8s-export", t->name), "rules", "apiGroups",
                      "", "resources", "namespaces", "persistentvolumes", "verbs", "get", "list",
                      "watch", "apiGroups", "apiextensions.k8s.io", "resources",
                      "customresourcedefinitions", "verbs", "get", "list", "watch"));
        json_array_append_new(rbac, binding(m, "ClusterRoleBinding", cname, NULL, cname,
                                            t->service_account, t->name));
        size_t i;
        json_t *ns;
        json_array_foreach(nss, i, ns)
        {
            json_array_append_new(rbac, binding(m, "RoleBinding", rname, json_string_value(ns),
                                                rname, t->service_account, t->name));
        }
    }
    free(role);
    json_decref(nss);
}

/* ---- assembly ------------------------------------------------------------------------------- */

static bool wanted(const mf_opts_t *o, const char *name)
{
    if (!o->n_only)
        return true;
    for (size_t i = 0; i < o->n_only; i++)
        if (!strcmp(o->only[i], name))
            return true;
    return false;
}

static void task_release(task_t *t)
{
    free(t->service_account);
}

int mf_render(const cfg_t *c, const mf_opts_t *o, json_t **out_docs, buf_t *notes)
{
    if (!c->raw)
        return err_set(COFFER_EINVAL, "internal: the configuration was not loaded for manifests");
    for (size_t i = 0; i < o->n_only; i++)
        if (!cfg_find_job(c, o->only[i])) {
            bool copy = false;
            for (size_t k = 0; k < c->n_copies && !copy; k++)
                copy = !strcmp(c->copies[k].name, o->only[i]);
            if (!copy)
                return err_set(COFFER_EINVAL,
                               "--job %s: no job or copy task of that name in the configuration "
                               "(`coffer job list --config FILE` lists them)",
                               o->only[i]);
        }
    mf_t m = {.c = c, .o = o, .notes = notes};
    m.ns = o->namespace_ ? o->namespace_ : c->k8s.namespace_ ? c->k8s.namespace_ : "default";
    m.prefix = c->k8s.name_prefix ? c->k8s.name_prefix : "coffer";
    m.image = c->k8s.image ? c->k8s.image : "coffer:" COFFER_VERSION_STR;
    m.labels = json_pack("{s:s, s:s}", "app.kubernetes.io/name", "coffer",
                         "app.kubernetes.io/managed-by", "coffer-manifests");
    for (size_t i = 0; i < c->k8s.n_labels; i++)
        json_object_set_new(m.labels, c->k8s.labels[i].key,
                            json_string(c->k8s.labels[i].value ? c->k8s.labels[i].value : ""));
    char cm[128];
    snprintf(cm, sizeof cm, "%s-config", m.prefix);
    m.configmap = cm;

    json_t *cfg = NULL, *docs = json_array(), *sas = json_array(), *rbac = json_array(),
           *crons = json_array();
    int rc = pod_config(&m, &cfg);
    bool need_default_sa = false;
    char *default_sa = NULL;
    if (!rc && !(default_sa = strdup(c->k8s.service_account ? c->k8s.service_account : m.prefix)))
        rc = err_set(COFFER_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->n_jobs + c->n_copies && !rc; i++) {
        task_t t = {0};
        if (i < c->n_jobs) {
            const cfg_job_t *j = &c->jobs[i];
            if (!wanted(o, j->name))
                continue;
            if (!j->has_schedule) {
                note(&m, "job %s has no schedule: no CronJob (run it with `coffer job run %s`)",
                     j->name, j->name);
                continue;
            }
            t.name = j->name;
            t.j = j;
            t.schedule = j->schedule;
            t.timezone = j->timezone;
            for (size_t k = 0; k < j->n_targets && t.n_repos < 64; k++)
                t.repos[t.n_repos++] = j->targets[k].repo;
            if (j->n_run_on)
                note(&m,
                     "job %s: run_on is ignored in its CronJob (--ignore-run-on); place it with "
                     "kubernetes.node or node_selector",
                     j->name);
        } else {
            const cfg_copy_t *k = &c->copies[i - c->n_jobs];
            if (!wanted(o, k->name))
                continue;
            t.name = k->name;
            t.k = k;
            t.schedule = k->schedule;
            t.timezone = k->timezone;
            t.repos[t.n_repos++] = k->from;
            t.repos[t.n_repos++] = k->to;
        }
        char every[64];
        if (t.k && !t.k->has_schedule) {
            if (mf_every_to_cron(t.k->every_s, every, sizeof every)) {
                rc = loc_err(&t.k->loc,
                             "copy task \"%s\": every: %ds has no exact cron schedule; give "
                             "schedule: instead (a CronJob runs on a cron schedule)",
                             t.k->name, t.k->every_s);
                break;
            }
            t.schedule = every;
        }
        char *name = mf_dns_name(m.prefix, t.name, MF_CRONJOB_NAME_MAX);
        if (job_is(t.j, "k8s")) {
            t.service_account = mf_dns_name(m.prefix, t.name, 253);
            rbac_for(&m, &t, sas, rbac);
        } else {
            t.service_account = strdup(default_sa);
            need_default_sa = true;
        }
        if (!name || !t.service_account)
            rc = err_set(COFFER_ENOMEM, "out of memory");
        else
            json_array_append_new(crons, cronjob(&m, &t, name));
        free(name);
        task_release(&t);
    }
    if (!rc && o->create_namespace)
        json_array_append_new(docs,
                              json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind", "Namespace",
                                        "metadata", meta(&m, m.ns, NULL, NULL, NULL)));
    if (!rc && need_default_sa) /* files, database and command jobs need no API access */
        json_array_append_new(docs, json_pack("{s:s, s:s, s:o, s:b}", "apiVersion", "v1", "kind",
                                              "ServiceAccount", "metadata",
                                              meta(&m, default_sa, m.ns, "backup", NULL),
                                              "automountServiceAccountToken", 0));
    if (!rc) {
        json_array_extend(docs, sas);
        json_array_extend(docs, rbac);
        buf_t text;
        buf_init(&text);
        rc = buf_printf(&text,
                        "# coffer job configuration, generated by `coffer k8s manifests` from "
                        "%s.\n# Passwords are files from Secrets; ${VAR}s are expanded in the "
                        "pod.\n",
                        o->config_name ? o->config_name : "the configuration");
        if (!rc)
            rc = k8s_yaml_emit(cfg, &text);
        if (!rc)
            json_array_append_new(docs, json_pack("{s:s, s:s, s:o, s:{s:s%}}", "apiVersion", "v1",
                                                  "kind", "ConfigMap", "metadata",
                                                  meta(&m, cm, m.ns, "config", NULL), "data",
                                                  CONFIG_KEY, (const char *)text.data, text.len));
        buf_release(&text);
        json_array_extend(docs, crons);
    }
    if (!rc && !json_array_size(crons))
        note(&m, "no CronJobs: no selected job or copy task has a schedule");
    free(default_sa);
    json_decref(cfg);
    json_decref(sas);
    json_decref(rbac);
    json_decref(crons);
    json_decref(m.labels);
    if (rc) {
        json_decref(docs);
        return rc;
    }
    *out_docs = docs;
    return 0;
}
