/*
 * kube.c -- resources, status patches, conditions, events and finalizers for the operator
 * (kube.h).
 *
 * Layer: operator. Status is written with JSON merge patches on the status subresource, so a
 * field the job pod wrote (snapshot id, counters) is never overwritten by a stale copy here.
 */
#include "operator/kube.h"

#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "operator/render.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const k8s_res_t OP_RES_REPOSITORY = {"coffer.dev", "v1alpha1", "repositories", true};
const k8s_res_t OP_RES_SCHEDULE = {"coffer.dev", "v1alpha1", "backupschedules", true};
const k8s_res_t OP_RES_BACKUP = {"coffer.dev", "v1alpha1", "backups", true};
const k8s_res_t OP_RES_RESTORE = {"coffer.dev", "v1alpha1", "restores", true};
const k8s_res_t OP_RES_JOB = {"batch", "v1", "jobs", true};
const k8s_res_t OP_RES_CRONJOB = {"batch", "v1", "cronjobs", true};
const k8s_res_t OP_RES_CONFIGMAP = {"", "v1", "configmaps", true};
const k8s_res_t OP_RES_SECRET = {"", "v1", "secrets", true};
const k8s_res_t OP_RES_EVENT = {"", "v1", "events", true};
const k8s_res_t OP_RES_LEASE = {"coordination.k8s.io", "v1", "leases", true};

const k8s_res_t *op_res_by_plural(const char *plural)
{
    static const k8s_res_t *const all[] = {&OP_RES_REPOSITORY, &OP_RES_SCHEDULE, &OP_RES_BACKUP,
                                           &OP_RES_RESTORE};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (plural && !strcmp(plural, all[i]->resource))
            return all[i];
    return NULL;
}

void op_now(char *out, size_t n)
{
    time_format_rfc3339(time_now_ns(), false, out, n);
}

void op_now_micro(char *out, size_t n)
{
    int64_t ns = time_now_ns();
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%06ldZ", base, (long)(ns % 1000000000 / 1000));
}

int64_t op_parse_time(const char *s)
{
    int64_t ns;
    if (!s || time_parse_rfc3339(s, &ns))
        return -1;
    return ns / 1000000000;
}

int op_patch_status(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name,
                    json_t *status)
{
    buf_t path, what;
    buf_init(&path);
    buf_init(&what);
    json_t *body = json_pack("{s:O}", "status", status);
    char *text = json_dumps(body, JSON_COMPACT);
    int rc = k8s_path(&path, r, ns, name, "status");
    if (!rc)
        rc = k8s_what(&what, r, ns, name);
    if (!rc)
        rc = k8s_request(c, "PATCH", (const char *)path.data, "application/merge-patch+json", text,
                         strlen(text), (const char *)what.data, NULL);
    free(text);
    json_decref(body);
    buf_release(&path);
    buf_release(&what);
    return rc;
}

json_t *op_conditions_set(const json_t *obj, const char *type, const char *status,
                          const char *reason, const char *message)
{
    const json_t *old = json_object_get(json_object_get(obj, "status"), "conditions");
    json_t *out = json_array();
    char now[40];
    op_now(now, sizeof now);
    const char *since = now;
    size_t i;
    json_t *c;
    json_array_foreach(old, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && !strcmp(t, type)) {
            const char *st = json_string_value(json_object_get(c, "status"));
            const char *lt = json_string_value(json_object_get(c, "lastTransitionTime"));
            if (st && lt && !strcmp(st, status))
                since = lt;
            continue;
        }
        json_array_append(out, c);
    }
    json_t *n = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", type, "status", status, "reason",
                          reason, "message", message ? message : "", "lastTransitionTime", since);
    json_t *gen = json_object_get(json_object_get(obj, "metadata"), "generation");
    if (json_is_integer(gen))
        json_object_set(n, "observedGeneration", gen);
    json_array_append_new(out, n);
    return out;
}

void op_event(k8s_client_t *c, const json_t *obj, const char *type, const char *reason,
              const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *uid = json_string_value(json_object_get(md, "uid"));
    char now[40], gen[300];
    op_now(now, sizeof now);
    snprintf(gen, sizeof gen, "%.200s.", name ? name : "coffer");
    json_t *ev = json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:{s:s}, s:s, "
        "s:s, s:i}",
        "apiVersion", "v1", "kind", "Event", "metadata", "generateName", gen, "namespace",
        ns ? ns : "default", "involvedObject", "apiVersion",
        json_string_value(json_object_get(obj, "apiVersion")), "kind",
        json_string_value(json_object_get(obj, "kind")), "name", name ? name : "", "namespace",
        ns ? ns : "default", "uid", uid ? uid : "", "reason", reason, "message", msg, "type", type,
        "source", "component", "coffer-operator", "firstTimestamp", now, "lastTimestamp", now,
        "count", 1);
    int rc = k8s_create(c, &OP_RES_EVENT, ns ? ns : "default", ev, false, NULL);
    if (rc)
        log_warn("could not record event %s: %s", reason, err_msg());
    err_clear();
    json_decref(ev);
    log_info("%s %s/%s: %s: %s", type, ns ? ns : "", name ? name : "", reason, msg);
}

bool op_has_finalizer(const json_t *obj)
{
    const json_t *fs = json_object_get(json_object_get(obj, "metadata"), "finalizers");
    size_t i;
    json_t *f;
    json_array_foreach(fs, i, f)
    {
        if (json_string_value(f) && !strcmp(json_string_value(f), OP_FINALIZER))
            return true;
    }
    return false;
}

int op_finalizer(k8s_client_t *c, const k8s_res_t *r, const json_t *obj, bool add)
{
    const json_t *md = json_object_get(obj, "metadata");
    const json_t *fs = json_object_get(md, "finalizers");
    json_t *list = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(fs, i, f)
    {
        if (!json_string_value(f) || strcmp(json_string_value(f), OP_FINALIZER))
            json_array_append(list, f);
    }
    if (add)
        json_array_append_new(list, json_string(OP_FINALIZER));
    /* resourceVersion makes it conditional: a concurrent change gives 409 and a retry */
    json_t *patch = json_pack("{s:{s:o, s:O}}", "metadata", "finalizers", list, "resourceVersion",
                              json_object_get(md, "resourceVersion"));
    int rc =
        k8s_patch(c, r, json_string_value(json_object_get(md, "namespace")),
                  json_string_value(json_object_get(md, "name")), K8S_PATCH_MERGE, patch, NULL);
    json_decref(patch);
    return rc;
}

int op_delete_quiet(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name)
{
    int rc = k8s_delete(c, r, ns, name, "Background");
    if (rc == COFFER_ENOENT) {
        err_clear();
        return 0;
    }
    return rc;
}
