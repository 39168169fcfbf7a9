/*
 * render.c -- custom resources to ConfigMaps, Jobs and CronJobs (render.h).
 *
 * Layer: operator. Pure functions: the same inputs give the same objects, so reconciling an
 * unchanged resource applies an unchanged object (server-side apply is then a no-op).
 * The pod runs as the coffer image with a restricted security context (no privilege
 * escalation, all capabilities dropped, RuntimeDefault seccomp); repository passwords are
 * mounted read-only from the Secrets the Repository names, one directory per repository.
 */
#include "operator/render.h"

#include "common/buf.h"
#include "common/error.h"
#include "crypto/crypto.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_K8S 63
#define NAME_MAX_CRONJOB 52
#define JOB_UID 65532 /* the image's user (Dockerfile) */

static const char *str_at(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

char *op_child_name(const char *kind, const char *name)
{
    char buf[256];
    /* a CronJob's name is at most 52 characters (its Jobs add a suffix); others 63 */
    const int max = !strcmp(kind, "schedule") ? NAME_MAX_CRONJOB : NAME_MAX_K8S;
    snprintf(buf, sizeof buf, "coffer-%s-%s", kind, name);
    if ((int)strlen(buf) <= max)
        return strdup(buf);
    /* keep it unique and valid: a prefix, then 10 hex digits of the full name's hash */
    uint8_t h[32];
    char hex[65];
    crypto_sha256(buf, strlen(buf), h);
    hex_encode(h, 5, hex);
    char prefix[NAME_MAX_K8S + 1];
    snprintf(prefix, sizeof prefix, "%.*s", max - 11, buf);
    size_t n = strlen(prefix);
    while (n > 0 && (prefix[n - 1] == '-' || prefix[n - 1] == '.'))
        prefix[--n] = 0;
    char out[NAME_MAX_K8S + 1];
    snprintf(out, sizeof out, "%s-%s", prefix, hex);
    return strdup(out);
}

json_t *op_owner_ref(const json_t *cr)
{
    const json_t *md = json_object_get(cr, "metadata");
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "apiVersion", str_at(cr, "apiVersion"),
                     "kind", str_at(cr, "kind"), "name", str_at(md, "name"), "uid",
                     str_at(md, "uid") ? str_at(md, "uid") : "", "controller", 1,
                     "blockOwnerDeletion", 1);
}

static json_t *labels_for(const json_t *cr)
{
    const json_t *md = json_object_get(cr, "metadata");
    const char *kind = str_at(cr, "kind");
    return json_pack("{s:s, s:s, s:s, s:s}", "app.kubernetes.io/managed-by", "coffer-operator",
                     "app.kubernetes.io/name", "coffer", "coffer.dev/owner-kind", kind ? kind : "",
                     "coffer.dev/owner-name", str_at(md, "name"));
}

static json_t *meta_for(const json_t *cr, const char *name)
{
    const json_t *md = json_object_get(cr, "metadata");
    return json_pack("{s:s, s:s, s:o, s:[o]}", "name", name, "namespace",
                     str_at(md, "namespace") ? str_at(md, "namespace") : "default", "labels",
                     labels_for(cr), "ownerReferences", op_owner_ref(cr));
}

/* Copy key from src to dst under dst_key when present. */
static void copy_key(json_t *dst, const char *dst_key, const json_t *src, const char *key)
{
    json_t *v = json_object_get(src, key);
    if (v)
        json_object_set(dst, dst_key, v);
}

static json_t *render_retention(const json_t *r)
{
    static const char *const map[][2] = {{"keepLast", "keep_last"},
                                         {"keepHourly", "keep_hourly"},
                                         {"keepDaily", "keep_daily"},
                                         {"keepWeekly", "keep_weekly"},
                                         {"keepMonthly", "keep_monthly"},
                                         {"keepYearly", "keep_yearly"},
                                         {"keepWithin", "keep_within"},
                                         {"keepTags", "keep_tags"},
                                         {"days", "days"},
                                         {"weeks", "weeks"},
                                         {"months", "months"},
                                         {"prune", "prune"}};
    json_t *o = json_object();
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        copy_key(o, map[i][1], r, map[i][0]);
    return o;
}

/* Service options (spec.target.<type>) to the job's `options:` (each becomes --NAME VALUE);
 * connection secrets are not options: they come in through the environment. */
static int service_options(const char *type, const json_t *t, json_t *job)
{
    /* the CRD's names -> `coffer backup --TYPE` flags (doc/services.md) */
    static const char *const map[][2] = {{"host", "server"},
                                         {"port", "port"},
                                         {"user", "user"},
                                         {"databases", "database"},
                                         {"excludeDatabases", "exclude-database"},
                                         {"format", "format"},
                                         {"sslmode", "sslmode"},
                                         {"uri", "uri"},
                                         {"bindDN", "bind-dn"},
                                         {"baseDN", "base"},
                                         {"configFile", "slapd-conf"},
                                         {"extraArgs", "extra-arg"},
                                         /* a Restore's target: the name to restore as */
                                         {"database", "as"},
                                         {"jobs", "jobs"}};
    json_t *opts = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)t, k, v)
    {
        const char *to = NULL;
        for (size_t i = 0; i < sizeof map / sizeof map[0] && !to; i++)
            if (!strcmp(k, map[i][0]))
                to = map[i][1];
        if (!strcmp(k, "passwordSecretRef") || !strcmp(k, "sslSecretRef"))
            continue;
        if (!strcmp(k, "clean")) { /* a Restore: drop objects before restoring */
            if (json_is_true(v))
                json_object_set_new(opts, "clean", json_string("true"));
            continue;
        }
        if (!strcmp(k, "allDatabases") || !strcmp(k, "pauseReplica") || !strcmp(k, "globals")) {
            if (json_is_true(v)) /* "true": a bare flag in the job config */
                json_object_set_new(opts,
                                    !strcmp(k, "allDatabases")   ? "all-databases"
                                    : !strcmp(k, "pauseReplica") ? "replica-pause"
                                                                 : "globals",
                                    json_string("true"));
            continue;
        }
        if (!strcmp(k, "method")) { /* ldap: slapcat, or the default online ldapsearch */
            if (json_string_value(v) && !strcmp(json_string_value(v), "slapcat"))
                json_object_set_new(opts, "slapcat", json_string("true"));
            continue;
        }
        if (!to) {
            json_decref(opts);
            return err_set(COFFER_EINVAL, "spec.target.%s.%s is not supported by this operator",
                           type, k);
        }
        if (json_is_integer(v)) {
            char num[32];
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
            json_object_set_new(opts, to, json_string(num));
        } else {
            json_object_set(opts, to, v);
        }
    }
    json_object_set_new(job, "options", opts);
    return 0;
}

json_t *op_render_config(const char *job_name, const json_t *spec, const json_t *repos)
{
    const json_t *target = json_object_get(spec, "target");
    const char *type = str_at(target, "type");
    const json_t *names = json_object_get(spec, "repositories");
    if (!type) {
        err_set(COFFER_EINVAL, "spec.target.type is required");
        return NULL;
    }
    if (!json_is_array(names) || json_array_size(names) == 0) {
        err_set(COFFER_EINVAL, "spec.repositories must name at least one Repository");
        return NULL;
    }
    json_t *cfg = json_object(), *rmap = json_object(), *job = json_object(),
           *targets = json_array();
    json_object_set_new(cfg, "repositories", rmap);
    json_object_set_new(cfg, "jobs", json_pack("[o]", job));
    json_object_set_new(job, "name", json_string(job_name));
    json_object_set_new(job, "type", json_string(type));
    json_object_set_new(job, "repositories", targets);
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        const char *rn = json_string_value(n);
        const json_t *repo = rn ? json_object_get(repos, rn) : NULL;
        const json_t *rs = json_object_get(repo, "spec");
        if (!repo || !str_at(rs, "url")) {
            err_set(COFFER_ENOENT, "Repository \"%s\" (spec.repositories[%zu]) does not exist",
                    rn ? rn : "?", i);
            goto fail;
        }
        char pwfile[512];
        snprintf(pwfile, sizeof pwfile, "%s/%s/password", OP_SECRET_DIR, rn);
        json_t *rcfg = json_pack("{s:s, s:s}", "url", str_at(rs, "url"), "password_file", pwfile);
        const json_t *ropts = json_object_get(rs, "options");
        if (json_object_size(ropts)) /* each becomes -o KEY=VALUE for the job's children */
            json_object_set(rcfg, "options", (json_t *)ropts);
        json_object_set_new(rmap, rn, rcfg);
        json_array_append_new(targets, json_string(rn));
    }
    const json_t *ret = json_object_get(spec, "retention");
    if (json_object_size(ret))
        json_object_set_new(job, "retention", render_retention(ret));
    copy_key(job, "tags", spec, "tags");
    const json_t *hooks = json_object_get(spec, "hooks");
    if (hooks) {
        json_t *h = json_object();
        for (int side = 0; side < 2; side++) {
            const char *key = side ? "after" : "before";
            const json_t *list = json_object_get(hooks, key);
            if (!json_array_size(list))
                continue;
            json_t *out = json_array();
            size_t k;
            json_t *hk;
            json_array_foreach(list, k, hk)
            {
                /* the config runs hooks with /bin/sh -c: quote each word */
                buf_t cmd;
                buf_init(&cmd);
                size_t w;
                json_t *word;
                json_array_foreach(json_object_get(hk, "command"), w, word)
                {
                    const char *s = json_string_value(word);
                    buf_printf(&cmd, "%s'", w ? " " : "");
                    for (const char *c = s ? s : ""; *c; c++)
                        buf_printf(&cmd, *c == '\'' ? "'\\''" : "%c", *c);
                    buf_printf(&cmd, "'");
                }
                json_t *e =
                    json_pack("{s:s%}", "command", cmd.data ? (char *)cmd.data : "", cmd.len);
                buf_release(&cmd);
                const char *oe = str_at(hk, "onError");
                if (oe)
                    json_object_set_new(e, "on_error", json_string(oe));
                const char *to = str_at(hk, "timeout");
                if (to)
                    json_object_set_new(e, "timeout", json_string(to));
                json_array_append_new(out, e);
            }
            json_object_set_new(h, key, out);
        }
        json_object_set_new(job, "hooks", h);
    }
    const json_t *tt = json_object_get(target, type);
    if (!strcmp(type, "files")) {
        json_t *paths = json_array();
        const json_t *sub = json_object_get(tt, "paths");
        const json_t *pvm = json_object_get(tt, "podVolumeMounts");
        if (json_array_size(pvm)) {
            /* pod volumes (resolved by the operator): each claim mounted at its own path */
            json_t *m;
            json_array_foreach(pvm, i, m)
            {
                json_array_append_new(paths, json_string(str_at(m, "path")));
            }
        } else if (json_array_size(sub)) {
            json_t *p;
            json_array_foreach(sub, i, p)
            {
                char full[1024];
                const char *ps = json_string_value(p);
                snprintf(full, sizeof full, "%s/%s", OP_DATA_DIR, ps && ps[0] == '/' ? ps + 1 : ps);
                json_array_append_new(paths, json_string(full));
            }
        } else {
            json_array_append_new(paths, json_string(OP_DATA_DIR));
        }
        json_object_set_new(job, "paths", paths);
        copy_key(job, "exclude", tt, "exclude");
    } else if (!strcmp(type, "command")) {
        copy_key(job, "command", tt, "command");
        copy_key(job, "filename", tt, "name");
        if (!json_object_get(job, "command") || !json_object_get(job, "filename")) {
            err_set(COFFER_EINVAL, "spec.target.command needs command and name");
            goto fail;
        }
    } else if (!strcmp(type, "k8s")) {
        /* the export runs in the pod with its ServiceAccount (in-cluster config) */
        json_t *opts = json_object();
        const json_t *nss = json_object_get(tt, "namespaces");
        if (json_array_size(nss))
            json_object_set(opts, "namespace", (json_t *)nss);
        if (json_is_true(json_object_get(tt, "allNamespaces")))
            json_object_set_new(opts, "all-namespaces", json_string("true"));
        if (str_at(tt, "labelSelector"))
            json_object_set_new(opts, "selector", json_string(str_at(tt, "labelSelector")));
        if (json_is_true(json_object_get(tt, "includeSecrets")))
            json_object_set_new(opts, "include-secrets", json_string("true"));
        if (json_is_true(json_object_get(tt, "clusterResources")))
            json_object_set_new(opts, "cluster-resources", json_string("true"));
        json_object_set_new(job, "options", opts);
    } else if (tt && service_options(type, tt, job)) {
        goto fail;
    }
    return cfg;
fail:
    json_decref(cfg);
    return NULL;
}

json_t *op_render_configmap(const json_t *cr, const char *name, const json_t *config)
{
    char *text = json_dumps(config, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_t *cm =
        json_pack("{s:s, s:s, s:o, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata",
                  meta_for(cr, name), "data", "config.yaml", text ? text : "{}");
    free(text);
    return cm;
}

/* Environment for the connection secret of a service target: the key of the Secret named in
 * spec.target.<type>.passwordSecretRef, under the variable that type's client reads. */
static void service_secret_env(const json_t *spec, json_t *env)
{
    const json_t *target = json_object_get(spec, "target");
    const char *type = str_at(target, "type");
    const json_t *ref =
        json_object_get(json_object_get(target, type ? type : ""), "passwordSecretRef");
    if (!type || !ref)
        return;
    const char *var = !strcmp(type, "postgres") ? "PGPASSWORD"
                      : !strcmp(type, "mysql")  ? "MYSQL_PWD"
                      : !strcmp(type, "redis")  ? "REDISCLI_AUTH"
                      : !strcmp(type, "ldap")   ? "LDAP_PASSWORD"
                                                : NULL;
    if (!var)
        return;
    json_array_append_new(env, json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", var, "valueFrom",
                                         "secretKeyRef", "name", str_at(ref, "name"), "key",
                                         str_at(ref, "key")));
}

json_t *op_render_pod_template(const op_render_opts_t *o, const json_t *cr, const char *kind,
                               const json_t *spec, const json_t *repos, const char *configmap,
                               const json_t *args)
{
    const json_t *md = json_object_get(cr, "metadata");
    json_t *cargs =
        json_pack("[s, s, s, s, s, s, s, s]", "operator", "exec", "--kind", kind, "--namespace",
                  str_at(md, "namespace") ? str_at(md, "namespace") : "default", "--name",
                  str_at(md, "name"));
    json_array_append_new(cargs, json_string("--"));
    json_array_extend(cargs, (json_t *)args);
    json_t *mounts = json_array(), *volumes = json_array(), *env = json_array(),
           *env_from = json_array();
    json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "name", "config", "mountPath",
                                            OP_CONFIG_DIR, "readOnly", 1));
    json_array_append_new(
        volumes, json_pack("{s:s, s:{s:s}}", "name", "config", "configMap", "name", configmap));
    const char *rn;
    json_t *repo;
    int ri = 0;
    json_object_foreach((json_t *)repos, rn, repo)
    {
        const json_t *rs = json_object_get(repo, "spec");
        const json_t *pw = json_object_get(rs, "passwordSecretRef");
        char vname[32], path[512];
        snprintf(vname, sizeof vname, "repo-%d", ri++);
        snprintf(path, sizeof path, "%s/%s", OP_SECRET_DIR, rn);
        json_array_append_new(
            volumes, json_pack("{s:s, s:{s:s, s:[{s:s, s:s}], s:i}}", "name", vname, "secret",
                               "secretName", str_at(pw, "name"), "items", "key", str_at(pw, "key"),
                               "path", "password", "defaultMode", 0440)); /* group: fsGroup */
        json_array_append_new(
            mounts, json_pack("{s:s, s:s, s:b}", "name", vname, "mountPath", path, "readOnly", 1));
        const json_t *cred = json_object_get(rs, "credentialsSecretRef");
        if (cred)
            json_array_append_new(
                env_from, json_pack("{s:{s:s}}", "secretRef", "name", str_at(cred, "name")));
    }
    service_secret_env(spec, env);
    /* commands run without the job config (a k8s restore) read the first repository's
     * password from its mounted Secret */
    const json_t *first = json_array_get(json_object_get(spec, "repositories"), 0);
    if (json_string_value(first)) {
        char pwf[512];
        snprintf(pwf, sizeof pwf, "%s/%s/password", OP_SECRET_DIR, json_string_value(first));
        json_array_append_new(
            env, json_pack("{s:s, s:s}", "name", "COFFER_PASSWORD_FILE", "value", pwf));
    }
    json_array_append_new(env, json_pack("{s:s, s:{s:{s:s}}}", "name", "POD_NAME", "valueFrom",
                                         "fieldRef", "fieldPath", "metadata.name"));
    const json_t *target = json_object_get(spec, "target");
    const char *pvc = str_at(json_object_get(target, "files"), "pvc");
    if (!pvc)
        pvc = str_at(target, "pvc"); /* a Restore's target */
    const json_t *pvm = json_object_get(json_object_get(target, "files"), "podVolumeMounts");
    size_t mi;
    json_t *m;
    json_array_foreach(pvm, mi, m)
    {
        char vname[32];
        snprintf(vname, sizeof vname, "pod-volume-%zu", mi);
        json_array_append_new(volumes, json_pack("{s:s, s:{s:s, s:b}}", "name", vname,
                                                 "persistentVolumeClaim", "claimName",
                                                 str_at(m, "claim"), "readOnly", 1));
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "name", vname, "mountPath",
                                                str_at(m, "path"), "readOnly", 1));
    }
    if (pvc && !json_array_size(pvm)) {
        bool restore = !strcmp(kind, "restores");
        json_array_append_new(volumes, json_pack("{s:s, s:{s:s, s:b}}", "name", "data",
                                                 "persistentVolumeClaim", "claimName", pvc,
                                                 "readOnly", !restore));
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "name", "data", "mountPath",
                                                OP_DATA_DIR, "readOnly", !restore));
    }
    /* Files are read (backup: DAC_OVERRIDE on a read-only mount) or written with their owners
     * (restore) as root with only the capabilities that takes, all within the Pod Security
     * "baseline" level; everything else runs as the image's unprivileged user ("restricted").
     * The mounted password files are group-readable by fsGroup either way. */
    const char *ttype = str_at(target, "type");
    bool files = (ttype && !strcmp(ttype, "files")) || pvc;
    bool restore_files = files && !strcmp(kind, "restores");
    json_t *caps = json_pack("{s:[s]}", "drop", "ALL");
    if (files)
        json_object_set_new(caps, "add",
                            restore_files ? json_pack("[s, s, s, s]", "CHOWN", "DAC_OVERRIDE",
                                                      "FOWNER", "DAC_READ_SEARCH")
                                          : json_pack("[s]", "DAC_READ_SEARCH"));
    json_t *csc = json_pack("{s:b, s:b, s:o, s:{s:s}}", "allowPrivilegeEscalation", 0,
                            "readOnlyRootFilesystem", 1, "capabilities", caps, "seccompProfile",
                            "type", "RuntimeDefault");
    if (files)
        json_object_set_new(csc, "runAsUser", json_integer(0));
    else
        json_object_set_new(csc, "runAsNonRoot", json_true());
    json_t *container =
        json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "name", "coffer", "image", o->image, "args",
                  cargs, "env", env, "volumeMounts", mounts, "securityContext", csc);
    if (json_array_size(env_from))
        json_object_set(container, "envFrom", env_from);
    json_decref(env_from);
    if (o->pull_policy)
        json_object_set_new(container, "imagePullPolicy", json_string(o->pull_policy));
    copy_key(container, "resources", spec, "resources");
    json_t *podspec = json_pack("{s:s, s:s, s:[o], s:o, s:{s:i, s:i, s:i}}", "restartPolicy",
                                "Never", "serviceAccountName", o->service_account, "containers",
                                container, "volumes", volumes, "securityContext", "runAsUser",
                                files ? 0 : JOB_UID, "runAsGroup", JOB_UID, "fsGroup", JOB_UID);
    /* a writable /tmp for dumps' temp files; the root file system is read-only */
    json_array_append_new(volumes, json_pack("{s:s, s:{}}", "name", "tmp", "emptyDir"));
    json_array_append_new(mounts, json_pack("{s:s, s:s}", "name", "tmp", "mountPath", "/tmp"));
    const char *run_on = str_at(spec, "runOn");
    if (run_on)
        json_object_set_new(podspec, "nodeSelector",
                            json_pack("{s:s}", "kubernetes.io/hostname", run_on));
    return json_pack("{s:{s:o}, s:o}", "metadata", "labels", labels_for(cr), "spec", podspec);
}

json_t *op_render_job(const json_t *cr, const char *name, json_t *pod_template, const json_t *spec)
{
    json_t *jspec = json_pack("{s:i, s:i, s:o}", "backoffLimit", 0, "ttlSecondsAfterFinished",
                              7 * 86400, "template", pod_template);
    copy_key(jspec, "activeDeadlineSeconds", spec, "activeDeadlineSeconds");
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "batch/v1", "kind", "Job", "metadata",
                     meta_for(cr, name), "spec", jspec);
}

json_t *op_render_cronjob(const json_t *cr, const char *name, json_t *pod_template,
                          const json_t *spec)
{
    json_t *jspec = json_pack("{s:i, s:o}", "backoffLimit", 0, "template", pod_template);
    copy_key(jspec, "activeDeadlineSeconds", spec, "activeDeadlineSeconds");
    const char *policy = str_at(spec, "concurrencyPolicy");
    json_t *cspec = json_pack(
        "{s:s, s:b, s:s, s:i, s:i, s:{s:o, s:o}}", "schedule", str_at(spec, "schedule"), "suspend",
        json_is_true(json_object_get(spec, "paused")), "concurrencyPolicy",
        policy ? policy : "Forbid", "successfulJobsHistoryLimit", 3, "failedJobsHistoryLimit", 3,
        "jobTemplate", "metadata", json_pack("{s:o}", "labels", labels_for(cr)), "spec", jspec);
    copy_key(cspec, "timeZone", spec, "timeZone");
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "batch/v1", "kind", "CronJob",
                     "metadata", meta_for(cr, name), "spec", cspec);
}
