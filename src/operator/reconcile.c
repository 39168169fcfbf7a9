/*
 * reconcile.c -- reconcile Backups, Restores, BackupSchedules and Repositories (reconcile.h).
 *
 * Layer: operator. Backups and Restores: a ConfigMap and a Job per resource, created once,
 * followed to their end; the pod reports its own result into the status (`coffer operator
 * exec`), and this file fills in what the pod could not: a Job that failed before reporting, a
 * Job that vanished, a run stuck past its deadline (the watchdog deletes the Job and fails the
 * run). BackupSchedules: a ConfigMap and a CronJob kept applied. Repositories: a periodic
 * `coffer stats` in a child process with the password and credentials from the Secrets.
 * Finalizers on Backups and Restores delete their Jobs first, so no Job is left orphaned.
 */
#include "operator/reconcile.h"

#include "common/cron.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "operator/kube.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CONFIG_PATH OP_CONFIG_DIR "/config.yaml"
#define VALIDATE_TIMEOUT_S 120
#define SECRET_MAX 65536

/* A user-facing problem with a resource: reason (CamelCase) and message. */
typedef struct problem {
    char reason[64];
    char message[768];
} problem_t;

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const json_t *path_get(const json_t *o, const char *a, const char *b)
{
    return json_object_get(json_object_get(o, a), b);
}

static void set_problem(problem_t *p, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_problem(problem_t *p, const char *reason, const char *fmt, ...)
{
    snprintf(p->reason, sizeof p->reason, "%s", reason);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
}

int64_t op_parse_duration(const char *s)
{
    if (!s || !*s)
        return -1;
    int64_t total = 0;
    while (*s) {
        if (!isdigit((unsigned char)*s))
            return -1;
        char *end;
        long long v = strtoll(s, &end, 10);
        int64_t unit = *end == 'h' ? 3600 : *end == 'm' ? 60 : *end == 's' ? 1 : -1;
        if (unit < 0 || v < 0 || v > 100000000)
            return -1;
        total += v * unit;
        s = end + 1;
    }
    return total;
}

/* ---- Secrets and Repositories ---- */

/* The decoded value of key in Secret ns/name (caller frees with free after wiping). */
static int secret_value(op_ctx_t *x, const char *ns, const char *name, const char *key, char **out,
                        problem_t *p)
{
    json_t *s = NULL;
    int rc = k8s_get(x->c, &OP_RES_SECRET, ns, name, &s);
    if (rc == COFFER_ENOENT) {
        err_clear();
        set_problem(p, "SecretMissing", "Secret \"%s\" does not exist in namespace \"%s\"", name,
                    ns);
        return COFFER_ENOENT;
    }
    if (rc)
        return rc;
    const char *b64 = path_get(s, "data", key) ? json_string_value(path_get(s, "data", key)) : NULL;
    const char *plain =
        path_get(s, "stringData", key) ? json_string_value(path_get(s, "stringData", key)) : NULL;
    if (!b64 && !plain) {
        json_decref(s);
        set_problem(p, "SecretMissing", "Secret \"%s\" has no key \"%s\"", name, key);
        return COFFER_ENOENT;
    }
    if (out) {
        if (plain) {
            *out = strdup(plain);
        } else {
            size_t cap = strlen(b64) + 1, len = 0;
            char *v = malloc(cap < SECRET_MAX ? cap : SECRET_MAX);
            if (v && sodium_base642bin((unsigned char *)v,
                                       (cap < SECRET_MAX ? cap : SECRET_MAX) - 1, b64, strlen(b64),
                                       NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0) {
                v[len] = 0;
                *out = v;
            } else {
                free(v);
                *out = NULL;
                json_decref(s);
                set_problem(p, "SecretInvalid", "Secret \"%s\" key \"%s\" is not valid base64",
                            name, key);
                return COFFER_EINVAL;
            }
        }
    }
    json_decref(s);
    return 0;
}

static int collect_item(json_t *item, void *ud)
{
    return json_array_append((json_t *)ud, item) ? COFFER_ENOMEM : 0;
}

/* ---- volumes of running pods ---- */

/* A files target with podSelector: the volumes named in each selected pod's
 * coffer.dev/backup-volumes annotation (or target.files.volumes) become claims mounted at
 * /data/POD/VOLUME, and the run is pinned to the pods' node, so ReadWriteOnce claims (one node
 * at a time) can be mounted next to the running pod. Returns a new spec in *out (or a new
 * reference to spec when there is no podSelector). */
static int resolve_pod_volumes(op_ctx_t *x, const char *ns, const json_t *spec, json_t **out,
                               problem_t *p)
{
    const json_t *files = path_get(spec, "target", "files");
    const json_t *sel = json_object_get(files, "podSelector");
    if (!sel) {
        *out = json_incref((json_t *)spec);
        return 0;
    }
    buf_t ls;
    buf_init(&ls);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get((json_t *)sel, "matchLabels"), k, v)
    {
        buf_printf(&ls, "%s%s=%s", ls.len ? "," : "", k,
                   json_string_value(v) ? json_string_value(v) : "");
    }
    json_t *pods = json_array();
    k8s_list_opts_t lo = {.label_selector = ls.len ? (const char *)ls.data : NULL};
    static const k8s_res_t pods_res = {"", "v1", "pods", true};
    int rc = k8s_list(x->c, &pods_res, ns, &lo, collect_item, pods, NULL);
    buf_release(&ls);
    if (rc) {
        json_decref(pods);
        return rc;
    }
    json_t *mounts = json_array();
    const char *node = NULL;
    size_t i;
    json_t *pod;
    json_array_foreach(pods, i, pod)
    {
        const json_t *md = json_object_get(pod, "metadata");
        const char *pname = sget(md, "name");
        const char *ann = sget(json_object_get(md, "annotations"), "coffer.dev/backup-volumes");
        const json_t *want = json_object_get(files, "volumes");
        if (!ann && !json_array_size(want))
            continue; /* selected, but nothing to back up in it */
        const char *pnode = sget(json_object_get(pod, "spec"), "nodeName");
        if (!pnode) {
            set_problem(p, "PodNotScheduled", "pod \"%s\" is not running on a node yet", pname);
            rc = COFFER_EINVAL;
            break;
        }
        if (node && strcmp(node, pnode)) {
            set_problem(p, "PodsOnSeveralNodes",
                        "the selected pods run on several nodes (%s, %s): one run mounts claims on "
                        "one node only; select the pods of one node per schedule",
                        node, pnode);
            rc = COFFER_EINVAL;
            break;
        }
        node = pnode;
        /* the names to take: the list in target.files.volumes, else the annotation */
        char names[1024];
        if (json_array_size(want)) {
            size_t n = 0, wi;
            json_t *w;
            names[0] = 0;
            json_array_foreach(want, wi, w)
            {
                n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", n ? "," : "",
                                      json_string_value(w) ? json_string_value(w) : "");
                if (n >= sizeof names)
                    break;
            }
        } else {
            snprintf(names, sizeof names, "%s", ann);
        }
        for (char *save = NULL, *tok = strtok_r(names, ", ", &save); tok;
             tok = strtok_r(NULL, ", ", &save)) {
            const char *claim = NULL;
            size_t vi;
            json_t *vol;
            json_array_foreach(path_get(pod, "spec", "volumes"), vi, vol)
            {
                if (sget(vol, "name") && !strcmp(sget(vol, "name"), tok))
                    claim = sget(json_object_get(vol, "persistentVolumeClaim"), "claimName");
            }
            if (!claim) {
                set_problem(p, "VolumeNotAClaim",
                            "volume \"%s\" of pod \"%s\" is missing or not a "
                            "PersistentVolumeClaim (emptyDir and hostPath volumes cannot be "
                            "mounted by another pod: back them up with a sidecar)",
                            tok, pname);
                rc = COFFER_EINVAL;
                break;
            }
            char path[600];
            snprintf(path, sizeof path, "%s/%s/%s", OP_DATA_DIR, pname, tok);
            json_array_append_new(mounts, json_pack("{s:s, s:s}", "claim", claim, "path", path));
        }
        if (rc)
            break;
    }
    char node_name[256] = "";
    if (node)
        snprintf(node_name, sizeof node_name, "%s", node); /* node points into pods */
    json_decref(pods);
    if (!rc && !json_array_size(mounts)) {
        set_problem(p, "NoPodVolumes",
                    "no selected pod names volumes to back up (annotation "
                    "coffer.dev/backup-volumes or spec.target.files.volumes)");
        rc = COFFER_EINVAL;
    }
    if (rc) {
        json_decref(mounts);
        return rc;
    }
    json_t *ns_spec = json_deep_copy(spec);
    json_t *nf = json_object_get(json_object_get(ns_spec, "target"), "files");
    json_object_set_new(nf, "podVolumeMounts", mounts);
    json_object_set_new(ns_spec, "runOn", json_string(node_name));
    *out = ns_spec;
    return 0;
}

/* Every Repository named in spec.repositories, checked to exist with their Secrets, as an
 * object name -> Repository. A user problem fills p and returns COFFER_EINVAL. */
static int load_repos(op_ctx_t *x, const char *ns, const json_t *spec, json_t **out, problem_t *p)
{
    const json_t *names = json_object_get(spec, "repositories");
    if (!json_array_size(names)) {
        set_problem(p, "InvalidSpec", "spec.repositories must name at least one Repository");
        return COFFER_EINVAL;
    }
    json_t *repos = json_object();
    size_t i;
    json_t *n;
    int rc = 0;
    json_array_foreach(names, i, n)
    {
        const char *rn = json_string_value(n);
        json_t *r = NULL;
        rc = rn ? k8s_get(x->c, &OP_RES_REPOSITORY, ns, rn, &r) : COFFER_ENOENT;
        if (rc == COFFER_ENOENT) {
            err_clear();
            set_problem(p, "RepositoryNotFound",
                        "Repository \"%s\" (spec.repositories[%zu]) does not exist in namespace "
                        "\"%s\"",
                        rn ? rn : "?", i, ns);
            rc = COFFER_EINVAL;
            break;
        }
        if (rc)
            break;
        const json_t *pw = path_get(r, "spec", "passwordSecretRef");
        const json_t *cred = path_get(r, "spec", "credentialsSecretRef");
        rc = secret_value(x, ns, sget(pw, "name"), sget(pw, "key"), NULL, p);
        if (!rc && cred) {
            json_t *cs = NULL;
            rc = k8s_get(x->c, &OP_RES_SECRET, ns, sget(cred, "name"), &cs);
            json_decref(cs);
            if (rc == COFFER_ENOENT) {
                err_clear();
                set_problem(p, "SecretMissing", "Secret \"%s\" does not exist in namespace \"%s\"",
                            sget(cred, "name"), ns);
            }
        }
        if (rc) {
            json_decref(r);
            if (rc == COFFER_ENOENT || rc == COFFER_EINVAL) {
                char m[sizeof p->message];
                snprintf(m, sizeof m, "Repository \"%s\": %s", rn, p->message);
                snprintf(p->message, sizeof p->message, "%s", m);
                rc = COFFER_EINVAL;
            }
            break;
        }
        json_object_set_new(repos, rn, r);
    }
    if (rc) {
        json_decref(repos);
        return rc;
    }
    *out = repos;
    return 0;
}

/* ---- runs (Backups and Restores) ---- */

static bool terminal(const char *phase)
{
    return phase && (!strcmp(phase, "Completed") || !strcmp(phase, "PartiallyFailed") ||
                     !strcmp(phase, "Failed"));
}

static int fail_run(op_ctx_t *x, const k8s_res_t *res, const json_t *obj, bool backup,
                    const problem_t *p)
{
    const json_t *md = json_object_get(obj, "metadata");
    char now[40], msg[sizeof p->message + sizeof p->reason + 4];
    op_now(now, sizeof now);
    snprintf(msg, sizeof msg, "%s: %s", p->reason, p->message);
    json_t *st = json_pack("{s:s, s:s, s:s, s:o}", "phase", "Failed", "completionTime", now,
                           "message", msg, "conditions",
                           op_conditions_set(obj, "Succeeded", "False",
                                             backup ? "BackupFailed" : "RestoreFailed", msg));
    int rc = op_patch_status(x->c, res, sget(md, "namespace"), sget(md, "name"), st);
    json_decref(st);
    op_event(x->c, obj, "Warning", p->reason, "%s", p->message);
    return rc;
}

/* The run spec of a Backup: its own, or its scheduleRef's. */
static int backup_spec(op_ctx_t *x, const json_t *b, json_t **out, problem_t *p)
{
    const json_t *spec = json_object_get(b, "spec");
    const char *ref = sget(spec, "scheduleRef");
    if (!ref) {
        if (!json_object_get(spec, "target")) {
            set_problem(p, "InvalidSpec", "spec needs target and repositories, or scheduleRef");
            return COFFER_EINVAL;
        }
        *out = json_incref((json_t *)spec);
        return 0;
    }
    json_t *s = NULL;
    int rc =
        k8s_get(x->c, &OP_RES_SCHEDULE, sget(json_object_get(b, "metadata"), "namespace"), ref, &s);
    if (rc == COFFER_ENOENT) {
        err_clear();
        set_problem(p, "ScheduleNotFound",
                    "spec.scheduleRef: BackupSchedule \"%s\" does not "
                    "exist",
                    ref);
        return COFFER_EINVAL;
    }
    if (rc)
        return rc;
    *out = json_incref(json_object_get(s, "spec"));
    json_decref(s);
    return 0;
}

/* Create the ConfigMap and Job of a run. */
static int start_run(op_ctx_t *x, const json_t *obj, const char *kind, const char *job_name,
                     const json_t *spec, const json_t *repos, const char *cfg_job, json_t *args,
                     problem_t *p)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *ns = sget(md, "namespace");
    json_t *cfg = op_render_config(cfg_job, spec, repos);
    if (!cfg) {
        set_problem(p, "InvalidSpec", "%s", err_msg());
        err_clear();
        return COFFER_EINVAL;
    }
    json_t *cm = op_render_configmap(obj, job_name, cfg);
    json_decref(cfg);
    int rc = k8s_apply(x->c, &OP_RES_CONFIGMAP, ns, job_name, cm, false, NULL);
    json_decref(cm);
    if (rc)
        return rc;
    json_t *tpl = op_render_pod_template(&x->render, obj, kind, spec, repos, job_name, args);
    json_t *job = op_render_job(obj, job_name, tpl, spec);
    rc = k8s_create(x->c, &OP_RES_JOB, ns, job, false, NULL);
    json_decref(job);
    if (rc == COFFER_EEXIST) {
        err_clear();
        rc = 0;
    }
    if (rc == COFFER_EINVAL) {
        /* the server refused the rendered Job (422): a spec value it does not accept */
        set_problem(p, "InvalidSpec", "the Job for this run was refused: %s", err_msg());
        err_clear();
        return COFFER_EINVAL;
    }
    return rc;
}

/* Follow an existing Job: its failure, a completion without a result, the deadline. */
static int follow_job(op_ctx_t *x, const k8s_res_t *res, const json_t *obj, const json_t *job,
                      const json_t *spec, bool backup)
{
    problem_t p;
    memset(&p, 0, sizeof p);
    const char *job_name = sget(json_object_get(job, "metadata"), "name");
    const json_t *conds = path_get(job, "status", "conditions");
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        const char *t = sget(c, "type"), *s = sget(c, "status");
        if (!t || !s || strcmp(s, "True"))
            continue;
        if (!strcmp(t, "Failed")) {
            set_problem(&p, sget(c, "reason") ? sget(c, "reason") : "JobFailed",
                        "Job \"%s\" failed: %s", job_name,
                        sget(c, "message") ? sget(c, "message") : "no message");
            return fail_run(x, res, obj, backup, &p);
        }
        if (!strcmp(t, "Complete")) {
            set_problem(&p, "NoResult",
                        "Job \"%s\" completed but its pod never reported a result (was the "
                        "image's command changed?)",
                        job_name);
            return fail_run(x, res, obj, backup, &p);
        }
    }
    /* the watchdog: a run past its deadline (plus grace) is failed and its Job deleted */
    int64_t start = op_parse_time(json_string_value(path_get(obj, "status", "startTime")));
    if (start < 0)
        start = op_parse_time(sget(json_object_get(job, "metadata"), "creationTimestamp"));
    json_t *dl = json_object_get(spec, "activeDeadlineSeconds");
    int64_t deadline = json_is_integer(dl) ? json_integer_value(dl) : x->default_deadline_s;
    int64_t now = time_now_ns() / 1000000000;
    if (start > 0 && now - start > deadline + x->watchdog_grace_s) {
        const json_t *md = json_object_get(obj, "metadata");
        int rc = op_delete_quiet(x->c, &OP_RES_JOB, sget(md, "namespace"), job_name);
        if (rc)
            return rc;
        set_problem(&p, "DeadlineExceeded",
                    "the run was still going after %lld s (deadline %lld s): its Job \"%s\" was "
                    "deleted",
                    (long long)(now - start), (long long)deadline, job_name);
        return fail_run(x, res, obj, backup, &p);
    }
    return 0;
}

/* Deletion: remove the Job (and its pods) and ConfigMap, then our finalizer. */
static int cleanup_run(op_ctx_t *x, const k8s_res_t *res, const json_t *obj, const char *child)
{
    const char *ns = sget(json_object_get(obj, "metadata"), "namespace");
    int rc = op_delete_quiet(x->c, &OP_RES_JOB, ns, child);
    if (!rc)
        rc = op_delete_quiet(x->c, &OP_RES_CONFIGMAP, ns, child);
    if (!rc && op_has_finalizer(obj))
        rc = op_finalizer(x->c, res, obj, false);
    return rc;
}

static int mark_started(op_ctx_t *x, const k8s_res_t *res, const json_t *obj, const char *job_name,
                        bool backup)
{
    const json_t *md = json_object_get(obj, "metadata");
    char msg[256];
    snprintf(msg, sizeof msg, "Job \"%s\" created; waiting for its pod", job_name);
    json_t *st = json_pack("{s:s, s:s, s:o}", "phase", "New", "jobName", job_name, "conditions",
                           op_conditions_set(obj, "Succeeded", "Unknown",
                                             backup ? "BackupPending" : "RestorePending", msg));
    int rc = op_patch_status(x->c, res, sget(md, "namespace"), sget(md, "name"), st);
    json_decref(st);
    op_event(x->c, obj, "Normal", "JobCreated", "%s", msg);
    return rc;
}

/* Common frame of Backups and Restores. prepare() computes the run: spec, repos, config job
 * name and the args after `--`. */
typedef int (*prepare_fn)(op_ctx_t *x, const json_t *obj, json_t **spec, json_t **repos,
                          char *cfg_job, size_t cfg_len, json_t **args, problem_t *p);

static int reconcile_run(op_ctx_t *x, const k8s_res_t *res, const char *kind, const char *ns,
                         const char *name, bool backup, prepare_fn prepare)
{
    json_t *obj = NULL, *job = NULL, *spec = NULL, *repos = NULL, *args = NULL;
    char *child = op_child_name(backup ? "backup" : "restore", name);
    problem_t p;
    memset(&p, 0, sizeof p);
    int rc = child ? k8s_get(x->c, res, ns, name, &obj) : COFFER_ENOMEM;
    if (rc == COFFER_ENOENT) {
        err_clear();
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    if (json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp")) {
        rc = cleanup_run(x, res, obj, child);
        goto out;
    }
    const char *phase = json_string_value(path_get(obj, "status", "phase"));
    if (terminal(phase))
        goto out;
    if (!op_has_finalizer(obj)) {
        rc = op_finalizer(x->c, res, obj, true);
        goto out; /* the update brings us back with the new object */
    }
    rc = k8s_get(x->c, &OP_RES_JOB, ns, child, &job);
    if (rc && rc != COFFER_ENOENT)
        goto out;
    if (rc == COFFER_ENOENT) {
        err_clear();
        rc = 0;
        if (phase && strcmp(phase, "New") != 0) {
            set_problem(&p, "JobMissing", "Job \"%s\" disappeared while the run was %s", child,
                        phase);
            rc = fail_run(x, res, obj, backup, &p);
            goto out;
        }
        char cfg_job[256];
        rc = prepare(x, obj, &spec, &repos, cfg_job, sizeof cfg_job, &args, &p);
        if (!rc)
            rc = start_run(x, obj, kind, child, spec, repos, cfg_job, args, &p);
        if (rc == COFFER_EINVAL && p.reason[0]) {
            rc = fail_run(x, res, obj, backup, &p);
            goto out;
        }
        if (!rc && !phase)
            rc = mark_started(x, res, obj, child, backup);
        goto out;
    }
    if (backup) {
        if ((rc = backup_spec(x, obj, &spec, &p)) == COFFER_EINVAL) {
            rc = fail_run(x, res, obj, backup, &p);
            goto out;
        }
    } else {
        spec = json_incref(json_object_get(obj, "spec"));
    }
    if (!rc)
        rc = follow_job(x, res, obj, job, spec, backup);
out:
    json_decref(obj);
    json_decref(job);
    json_decref(spec);
    json_decref(repos);
    json_decref(args);
    free(child);
    return rc;
}

static int prepare_backup(op_ctx_t *x, const json_t *b, json_t **spec, json_t **repos,
                          char *cfg_job, size_t cfg_len, json_t **args, problem_t *p)
{
    const json_t *md = json_object_get(b, "metadata");
    json_t *raw = NULL;
    int rc = backup_spec(x, b, &raw, p);
    if (!rc)
        rc = resolve_pod_volumes(x, sget(md, "namespace"), raw, spec, p);
    json_decref(raw);
    if (!rc)
        rc = load_repos(x, sget(md, "namespace"), *spec, repos, p);
    if (rc)
        return rc;
    snprintf(cfg_job, cfg_len, "%s", sget(md, "name"));
    *args = json_pack("[s, s, s, s, s]", "job", "run", cfg_job, "--config", CONFIG_PATH);
    return 0;
}

static int prepare_restore(op_ctx_t *x, const json_t *r, json_t **spec, json_t **repos,
                           char *cfg_job, size_t cfg_len, json_t **args, problem_t *p)
{
    const json_t *md = json_object_get(r, "metadata");
    const char *ns = sget(md, "namespace");
    const json_t *rs = json_object_get(r, "spec");
    const json_t *target = json_object_get(rs, "target");
    const char *bref = sget(rs, "backupRef");
    const char *snap = sget(rs, "snapshot");
    int rc;
    if (bref) {
        json_t *b = NULL;
        rc = k8s_get(x->c, &OP_RES_BACKUP, ns, bref, &b);
        if (rc == COFFER_ENOENT) {
            err_clear();
            set_problem(p, "BackupNotFound", "spec.backupRef: Backup \"%s\" does not exist", bref);
            return COFFER_EINVAL;
        }
        if (rc)
            return rc;
        const char *sid = json_string_value(path_get(b, "status", "snapshotID"));
        if (!snap && (!sid || !*sid)) {
            const char *ph = json_string_value(path_get(b, "status", "phase"));
            set_problem(p, "NoSnapshot", "Backup \"%s\" has no snapshot (phase %s)", bref,
                        ph ? ph : "New");
            json_decref(b);
            return COFFER_EINVAL;
        }
        snprintf(cfg_job, cfg_len, "%s", bref);
        json_t *bspec = NULL;
        rc = backup_spec(x, b, &bspec, p);
        if (!rc) {
            /* a service restore connects where the Restore says, not where the backup read */
            json_t *sp = json_deep_copy(bspec);
            const char *type = sget(json_object_get(sp, "target"), "type");
            if (type && json_object_get(target, type))
                json_object_set(json_object_get(sp, "target"), type, json_object_get(target, type));
            if (type && !strcmp(type, "files") && sget(target, "pvc"))
                json_object_set_new(json_object_get(json_object_get(sp, "target"), "files"), "pvc",
                                    json_string(sget(target, "pvc")));
            *spec = sp;
            if (type && !strcmp(type, "k8s")) {
                /* objects go back through the API with the pod's ServiceAccount */
                const json_t *repo0 = json_array_get(json_object_get(sp, "repositories"), 0);
                json_t *rr = NULL;
                const char *url = NULL;
                if (json_string_value(repo0) &&
                    k8s_get(x->c, &OP_RES_REPOSITORY, ns, json_string_value(repo0), &rr) == 0)
                    url = sget(json_object_get(rr, "spec"), "url");
                err_clear();
                if (!url) {
                    json_decref(rr);
                    json_decref(bspec);
                    json_decref(b);
                    set_problem(p, "RepositoryNotFound", "the Repository of Backup \"%s\" is gone",
                                bref);
                    return COFFER_EINVAL;
                }
                *args =
                    json_pack("[s, s, s, s, s]", "-r", url, "k8s", "restore", snap ? snap : sid);
                json_decref(rr);
                const char *k;
                json_t *v;
                json_object_foreach(json_object_get(target, "namespaceMapping"), k, v)
                {
                    char m[512];
                    snprintf(m, sizeof m, "%s:%s", k,
                             json_string_value(v) ? json_string_value(v) : "");
                    json_array_append_new(*args, json_string("--namespace-map"));
                    json_array_append_new(*args, json_string(m));
                }
                static const char *const lists[][2] = {{"includeKinds", "--include-kinds"},
                                                       {"excludeKinds", "--exclude-kinds"}};
                for (size_t li = 0; li < 2; li++) {
                    size_t ai;
                    json_t *av;
                    json_array_foreach(json_object_get(target, lists[li][0]), ai, av)
                    {
                        json_array_append_new(*args, json_string(lists[li][1]));
                        json_array_append(*args, av);
                    }
                }
                if (sget(target, "existing")) {
                    json_array_append_new(*args, json_string("--existing"));
                    json_array_append_new(*args, json_string(sget(target, "existing")));
                }
            } else {
                *args = json_pack("[s, s, s, s, s, s]", "job", "restore", cfg_job,
                                  snap ? snap : sid, "--config", CONFIG_PATH);
            }
        }
        json_decref(bspec);
        json_decref(b);
        if (rc)
            return rc;
    } else {
        const char *repo = sget(rs, "repository");
        if (!repo || !snap) {
            set_problem(p, "InvalidSpec", "spec needs backupRef, or repository and snapshot");
            return COFFER_EINVAL;
        }
        const char *type = "files";
        static const char *const svc[] = {"postgres", "mysql", "ldap"};
        for (size_t i = 0; i < sizeof svc / sizeof svc[0]; i++)
            if (json_object_get(target, svc[i]))
                type = svc[i];
        if (!strcmp(type, "files") && !sget(target, "pvc")) {
            set_problem(p, "InvalidSpec", "spec.target needs pvc (files) or a service connection");
            return COFFER_EINVAL;
        }
        snprintf(cfg_job, cfg_len, "%s", sget(md, "name"));
        *spec = json_pack("{s:{s:s}, s:[s]}", "target", "type", type, "repositories", repo);
        json_t *t = json_object_get(*spec, "target");
        if (!strcmp(type, "files"))
            json_object_set_new(t, "files", json_pack("{s:s}", "pvc", sget(target, "pvc")));
        else
            json_object_set(t, type, json_object_get(target, type));
        *args = json_pack("[s, s, s, s, s, s]", "job", "restore", cfg_job, snap, "--config",
                          CONFIG_PATH);
    }
    if (sget(target, "pvc")) {
        char dir[1024];
        const char *sub = sget(target, "path");
        snprintf(dir, sizeof dir, "%s%s%s", OP_DATA_DIR, sub && *sub != '/' ? "/" : "",
                 sub ? sub : "");
        json_array_append_new(*args, json_string("--target"));
        json_array_append_new(*args, json_string(dir));
    }
    return load_repos(x, ns, *spec, repos, p);
}

int op_reconcile_backup(op_ctx_t *x, const char *ns, const char *name)
{
    return reconcile_run(x, &OP_RES_BACKUP, "backups", ns, name, true, prepare_backup);
}

int op_reconcile_restore(op_ctx_t *x, const char *ns, const char *name)
{
    return reconcile_run(x, &OP_RES_RESTORE, "restores", ns, name, false, prepare_restore);
}

/* ---- BackupSchedules ---- */

static int schedule_condition(op_ctx_t *x, const json_t *s, const char *status, const char *reason,
                              const char *msg, const char *cronjob)
{
    const json_t *md = json_object_get(s, "metadata");
    json_t *st =
        json_pack("{s:o}", "conditions", op_conditions_set(s, "Ready", status, reason, msg));
    json_t *gen = json_object_get(md, "generation");
    if (json_is_integer(gen))
        json_object_set(st, "observedGeneration", gen);
    if (cronjob)
        json_object_set_new(st, "cronJobName", json_string(cronjob));
    int rc = op_patch_status(x->c, &OP_RES_SCHEDULE, sget(md, "namespace"), sget(md, "name"), st);
    json_decref(st);
    return rc;
}

int op_reconcile_schedule(op_ctx_t *x, const char *ns, const char *name)
{
    json_t *s = NULL, *repos = NULL, *cfg = NULL, *rspec = NULL;
    char *child = op_child_name("schedule", name);
    problem_t p;
    memset(&p, 0, sizeof p);
    int rc = child ? k8s_get(x->c, &OP_RES_SCHEDULE, ns, name, &s) : COFFER_ENOMEM;
    if (rc == COFFER_ENOENT) {
        err_clear();
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    const json_t *md = json_object_get(s, "metadata");
    if (json_object_get(md, "deletionTimestamp")) {
        rc = op_delete_quiet(x->c, &OP_RES_CRONJOB, ns, child);
        if (!rc)
            rc = op_delete_quiet(x->c, &OP_RES_CONFIGMAP, ns, child);
        if (!rc && op_has_finalizer(s))
            rc = op_finalizer(x->c, &OP_RES_SCHEDULE, s, false);
        goto out;
    }
    if (!op_has_finalizer(s)) {
        rc = op_finalizer(x->c, &OP_RES_SCHEDULE, s, true);
        goto out;
    }
    const json_t *spec = json_object_get(s, "spec");
    const char *sched = sget(spec, "schedule"), *tz = sget(spec, "timeZone");
    cron_expr_t ce;
    if (!sched || cron_parse(sched, &ce)) {
        set_problem(&p, "InvalidSchedule", "spec.schedule \"%s\": %s", sched ? sched : "",
                    sched ? err_msg() : "missing");
        err_clear();
    } else if (tz && cron_tz_check(tz)) {
        set_problem(&p, "InvalidTimeZone", "spec.timeZone \"%s\": %s", tz, err_msg());
        err_clear();
    } else if ((rc = resolve_pod_volumes(x, ns, spec, &rspec, &p)) && rc != COFFER_EINVAL) {
        goto out;
    } else if (!rc && (rc = load_repos(x, ns, rspec, &repos, &p)) && rc != COFFER_EINVAL) {
        goto out;
    }
    rc = 0;
    if (rspec)
        spec = rspec;
    if (!p.reason[0]) {
        cfg = op_render_config(name, spec, repos);
        if (!cfg) {
            set_problem(&p, "InvalidSpec", "%s", err_msg());
            err_clear();
        }
    }
    if (p.reason[0]) {
        /* an existing CronJob keeps the last good spec; the condition says what is wrong */
        const json_t *old = json_object_get(json_object_get(s, "status"), "conditions");
        bool same = false;
        size_t i;
        json_t *c;
        json_array_foreach(old, i, c)
        {
            if (sget(c, "type") && !strcmp(sget(c, "type"), "Ready") && sget(c, "message") &&
                !strcmp(sget(c, "message"), p.message))
                same = true;
        }
        rc = schedule_condition(x, s, "False", p.reason, p.message, NULL);
        if (!same)
            op_event(x->c, s, "Warning", p.reason, "%s", p.message);
        goto out;
    }
    json_t *cm = op_render_configmap(s, child, cfg);
    rc = k8s_apply(x->c, &OP_RES_CONFIGMAP, ns, child, cm, false, NULL);
    json_decref(cm);
    if (rc)
        goto out;
    json_t *args = json_pack("[s, s, s, s, s]", "job", "run", name, "--config", CONFIG_PATH);
    json_t *tpl =
        op_render_pod_template(&x->render, s, "backupschedules", spec, repos, child, args);
    json_decref(args);
    json_t *cj = op_render_cronjob(s, child, tpl, spec);
    rc = k8s_apply(x->c, &OP_RES_CRONJOB, ns, child, cj, false, NULL);
    json_decref(cj);
    if (rc == COFFER_EINVAL) {
        set_problem(&p, "InvalidSpec", "the CronJob was refused: %s", err_msg());
        err_clear();
        rc = schedule_condition(x, s, "False", p.reason, p.message, NULL);
        op_event(x->c, s, "Warning", p.reason, "%s", p.message);
        goto out;
    }
    if (!rc) {
        char msg[256];
        snprintf(msg, sizeof msg, "CronJob \"%s\" runs \"%s\"%s%s", child, sched,
                 json_is_true(json_object_get(spec, "paused")) ? " (paused)" : "",
                 tz ? " in that time zone" : "");
        rc = schedule_condition(x, s, "True", "CronJobReady", msg, child);
    }
out:
    json_decref(s);
    json_decref(repos);
    json_decref(cfg);
    json_decref(rspec);
    free(child);
    return rc;
}

/* ---- Repositories ---- */

/* Run this executable with args and extra environment; stdout into out; at most timeout_s.
 * Returns the exit status (or -1 when it could not run or timed out). */
static int run_child(const char *bin, char *const *args, char *const *extra_env, int timeout_s,
                     buf_t *out)
{
    size_t n_env = 0, n_extra = 0;
    while (environ[n_env])
        n_env++;
    while (extra_env && extra_env[n_extra])
        n_extra++;
    char **envp = calloc(n_env + n_extra + 1, sizeof *envp);
    if (!envp)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++) {
        /* the child gets only the secrets given here, none of this process's */
        if (!strncmp(environ[i], "COFFER_PASSWORD", 15) || !strncmp(environ[i], "AWS_", 4))
            continue;
        envp[k++] = environ[i];
    }
    for (size_t i = 0; i < n_extra; i++)
        envp[k++] = extra_env[i];
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC)) {
        free(envp);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2); /* errors are reported from here too */
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, args, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    close(pfd[1]);
    if (rc) {
        close(pfd[0]);
        return -1;
    }
    int64_t end = time_monotonic_ns() + (int64_t)timeout_s * 1000000000;
    char chunk[4096];
    for (;;) {
        int64_t left = (end - time_monotonic_ns()) / 1000000;
        if (left <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
        int pr = poll(&pf, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        ssize_t r = read(pfd[0], chunk, sizeof chunk);
        if (r <= 0)
            break;
        if (out->len < (1u << 20))
            buf_append(out, chunk, (size_t)r);
    }
    close(pfd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int op_reconcile_repository(op_ctx_t *x, const char *ns, const char *name, bool force)
{
    json_t *r = NULL;
    char *pw = NULL;
    problem_t p;
    memset(&p, 0, sizeof p);
    buf_t out;
    buf_init(&out);
    char **env = NULL;
    int rc = k8s_get(x->c, &OP_RES_REPOSITORY, ns, name, &r);
    if (rc == COFFER_ENOENT) {
        err_clear();
        return 0;
    }
    if (rc)
        return rc;
    const json_t *spec = json_object_get(r, "spec");
    const char *interval = sget(spec, "validationInterval");
    int64_t every = op_parse_duration(interval ? interval : "1h");
    int64_t last = op_parse_time(json_string_value(path_get(r, "status", "lastValidationTime")));
    int64_t now = time_now_ns() / 1000000000;
    json_t *gen = json_object_get(json_object_get(r, "metadata"), "generation");
    json_t *seen = json_object_get(json_object_get(r, "status"), "observedGeneration");
    bool changed = !json_equal(gen, seen);
    if (!force && !changed && last > 0 && every > 0 && now - last < every)
        goto out;
    const json_t *pref = json_object_get(spec, "passwordSecretRef");
    const json_t *cref = json_object_get(spec, "credentialsSecretRef");
    size_t n_env = 0;
    env = calloc(SECRET_MAX / 64, sizeof *env);
    if (!env) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    rc = secret_value(x, ns, sget(pref, "name"), sget(pref, "key"), &pw, &p);
    if (!rc) {
        size_t len = strlen(pw) + 32;
        env[n_env] = malloc(len);
        if (env[n_env])
            snprintf(env[n_env++], len, "COFFER_PASSWORD=%s", pw);
    }
    if (!rc && cref) {
        json_t *cs = NULL;
        rc = k8s_get(x->c, &OP_RES_SECRET, ns, sget(cref, "name"), &cs);
        if (rc == COFFER_ENOENT) {
            err_clear();
            set_problem(&p, "SecretMissing", "Secret \"%s\" does not exist", sget(cref, "name"));
        }
        /* every key becomes a variable (stringData too: servers that keep it as written) */
        json_t *keys = json_object();
        json_object_update(keys, json_object_get(cs, "stringData"));
        json_object_update(keys, json_object_get(cs, "data"));
        const char *k;
        json_t *v;
        json_object_foreach(keys, k, v)
        {
            char *val = NULL;
            problem_t q;
            if (n_env + 2 >= SECRET_MAX / 64 ||
                secret_value(x, ns, sget(cref, "name"), k, &val, &q))
                continue;
            size_t len = strlen(k) + strlen(val) + 2;
            env[n_env] = malloc(len);
            if (env[n_env])
                snprintf(env[n_env++], len, "%s=%s", k, val);
            sodium_memzero(val, strlen(val));
            free(val);
        }
        json_decref(keys);
        json_decref(cs);
    }
    const char *state = "Unavailable";
    json_t *st = json_object();
    if (rc == COFFER_ENOENT || rc == COFFER_EINVAL) {
        rc = 0;
    } else if (!rc) {
        char *args[] = {"coffer", "-r", (char *)sget(spec, "url"), "--json", "stats", NULL};
        int ex = run_child(x->coffer_bin, args, env, VALIDATE_TIMEOUT_S, &out);
        json_t *doc = NULL;
        /* the result is a JSON line; an error is a JSON line or, before the JSON output is
         * set up, a plain "coffer: error: ..." line: take the last line of either kind */
        const char *text = out.len ? (const char *)out.data : "";
        char tail[512] = "";
        for (const char *line = text; *line;) {
            const char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            json_t *j = len ? json_loadb(line, len, 0, NULL) : NULL;
            if (j) {
                json_decref(doc);
                doc = j;
            } else if (len) {
                snprintf(tail, sizeof tail, "%.*s", (int)len, line);
            }
            line = nl ? nl + 1 : line + len;
        }
        if (ex == 0 && json_object_get(doc, "stored_bytes")) {
            state = "Available";
            json_object_set(st, "sizeBytes", json_object_get(doc, "stored_bytes"));
            json_object_set(st, "snapshots", json_object_get(doc, "snapshots"));
        } else {
            const char *m = json_string_value(json_object_get(doc, "message"));
            const char *plain = strncmp(tail, "coffer: error: ", 15) == 0 ? tail + 15 : tail;
            set_problem(&p,
                        ex == 12   ? "WrongPassword"
                        : ex == 10 ? "NoRepository"
                                   : "Unreachable",
                        "%s",
                        m        ? m
                        : *plain ? plain
                        : ex < 0 ? "coffer did not finish in time"
                                 : "coffer failed without a message");
        }
        json_decref(doc);
    }
    char ts[40];
    op_now(ts, sizeof ts);
    json_object_set_new(st, "phase", json_string(state));
    json_object_set_new(st, "lastValidationTime", json_string(ts));
    json_object_set_new(st, "message", json_string(p.reason[0] ? p.message : "repository opened"));
    if (json_is_integer(gen))
        json_object_set(st, "observedGeneration", gen);
    json_object_set_new(st, "conditions",
                        op_conditions_set(r, "Ready", p.reason[0] ? "False" : "True",
                                          p.reason[0] ? p.reason : "RepositoryAvailable",
                                          p.reason[0] ? p.message : "repository opened"));
    if (!rc) {
        const char *old = json_string_value(path_get(r, "status", "phase"));
        if (p.reason[0] && (!old || strcmp(old, "Unavailable")))
            op_event(x->c, r, "Warning", p.reason, "%s", p.message);
        rc = op_patch_status(x->c, &OP_RES_REPOSITORY, ns, name, st);
    }
    json_decref(st);
out:
    if (pw) {
        sodium_memzero(pw, strlen(pw));
        free(pw);
    }
    for (size_t i = 0; env && env[i]; i++) {
        sodium_memzero(env[i], strlen(env[i]));
        free(env[i]);
    }
    free(env);
    buf_release(&out);
    json_decref(r);
    return rc;
}
