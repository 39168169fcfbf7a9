/*
 * prune.c -- export pruning and restore cleanup (see prune.h).
 *
 * Layer: source/k8s. Pure JSON edits; the Velero restore item actions were the model for the
 * list of fields (read as documentation, no code taken).
 */
#include "source/k8s/prune.h"

#include <string.h>

static json_t *obj_at(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_object(v) ? v : NULL;
}

static const char *str_at(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void drop_empty(json_t *parent, const char *k)
{
    json_t *v = json_object_get(parent, k);
    if ((json_is_object(v) && json_object_size(v) == 0) ||
        (json_is_array(v) && json_array_size(v) == 0))
        json_object_del(parent, k);
}

void k8s_prune_export(json_t *obj, const k8s_prune_opts_t *o)
{
    if (!json_is_object(obj))
        return;
    if (!o || !o->keep_status)
        json_object_del(obj, "status");
    json_t *m = obj_at(obj, "metadata");
    if (!m)
        return;
    static const char *const drop[] = {
        "uid",        "selfLink",      "resourceVersion",   "creationTimestamp",
        "generation", "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        json_object_del(m, drop[i]);
    if (!o || !o->keep_last_applied) {
        json_t *a = obj_at(m, "annotations");
        if (a)
            json_object_del(a, K8S_LAST_APPLIED);
        drop_empty(m, "annotations");
    }
}

/* group of an apiVersion ("apps/v1" -> "apps", "v1" -> "") compared with g */
static bool group_is(json_t *obj, const char *g)
{
    const char *av = str_at(obj, "apiVersion");
    if (!av)
        return false;
    const char *slash = strchr(av, '/');
    if (!slash)
        return g[0] == 0;
    return strlen(g) == (size_t)(slash - av) && strncmp(av, g, (size_t)(slash - av)) == 0;
}

static bool is_kind(json_t *obj, const char *g, const char *kind)
{
    const char *k = str_at(obj, "kind");
    return k && strcmp(k, kind) == 0 && group_is(obj, g);
}

static void del_annotations(json_t *obj, const char *const *names, size_t n)
{
    json_t *a = obj_at(obj_at(obj, "metadata"), "annotations");
    if (!a)
        return;
    for (size_t i = 0; i < n; i++)
        json_object_del(a, names[i]);
    drop_empty(obj_at(obj, "metadata"), "annotations");
}

/* nodePorts the user set explicitly, from the last-applied configuration */
static bool applied_nodeport(json_t *obj, json_int_t port)
{
    const char *la = str_at(obj_at(obj_at(obj, "metadata"), "annotations"), K8S_LAST_APPLIED);
    if (!la)
        return false;
    json_error_t je;
    json_t *cfg = json_loads(la, 0, &je);
    json_t *ports = json_object_get(obj_at(cfg, "spec"), "ports"), *p;
    size_t i;
    bool found = false;
    json_array_foreach(ports, i, p) found |=
        json_integer_value(json_object_get(p, "nodePort")) == port;
    json_decref(cfg);
    return found;
}

static void clean_service(json_t *obj, const k8s_clean_opts_t *o)
{
    json_t *spec = obj_at(obj, "spec");
    if (!spec)
        return;
    const char *ip = str_at(spec, "clusterIP");
    if (!ip || strcmp(ip, "None") != 0) {
        json_object_del(spec, "clusterIP");
        json_object_del(spec, "clusterIPs");
    }
    json_object_del(spec, "healthCheckNodePort");
    json_t *ports = json_object_get(spec, "ports"), *p;
    size_t i;
    json_array_foreach(ports, i, p)
    {
        json_t *np = json_object_get(p, "nodePort");
        if (np && !(o && o->keep_nodeports) && !applied_nodeport(obj, json_integer_value(np)))
            json_object_del(p, "nodePort");
    }
}

static bool is_token_volume(json_t *v)
{
    const char *name = str_at(v, "name");
    if (name && strncmp(name, "kube-api-access-", 16) == 0)
        return true;
    const char *sec = str_at(obj_at(v, "secret"), "secretName");
    return sec && strstr(sec, "-token-") != NULL;
}

static void drop_mounts(json_t *containers, const char *vol)
{
    json_t *c;
    size_t i;
    json_array_foreach(containers, i, c)
    {
        json_t *mounts = json_object_get(c, "volumeMounts");
        for (size_t k = json_array_size(mounts); k-- > 0;)
            if (str_at(json_array_get(mounts, k), "name") &&
                strcmp(str_at(json_array_get(mounts, k), "name"), vol) == 0)
                json_array_remove(mounts, k);
        drop_empty(c, "volumeMounts");
    }
}

static void clean_pod_spec(json_t *spec)
{
    if (!spec)
        return;
    json_object_del(spec, "nodeName");
    json_object_del(spec, "priority");
    json_t *vols = json_object_get(spec, "volumes");
    for (size_t k = json_array_size(vols); k-- > 0;) {
        json_t *v = json_array_get(vols, k);
        if (!is_token_volume(v))
            continue;
        const char *name = str_at(v, "name");
        if (name) {
            drop_mounts(json_object_get(spec, "containers"), name);
            drop_mounts(json_object_get(spec, "initContainers"), name);
        }
        json_array_remove(vols, k);
    }
    drop_empty(spec, "volumes");
}

static void del_labels(json_t *meta)
{
    json_t *labels = obj_at(meta, "labels");
    if (!labels)
        return;
    json_object_del(labels, "controller-uid");
    json_object_del(labels, "batch.kubernetes.io/controller-uid");
    drop_empty(meta, "labels");
}

static void clean_job(json_t *obj)
{
    json_t *spec = obj_at(obj, "spec");
    del_labels(obj_at(obj, "metadata"));
    if (!spec)
        return;
    del_labels(obj_at(obj_at(spec, "template"), "metadata"));
    if (!json_is_true(json_object_get(spec, "manualSelector"))) {
        json_object_del(spec, "selector"); /* generated from the controller uid */
    }
}

static void clean_sa(json_t *obj)
{
    json_t *secrets = json_object_get(obj, "secrets");
    for (size_t k = json_array_size(secrets); k-- > 0;) {
        const char *n = str_at(json_array_get(secrets, k), "name");
        if (n && strstr(n, "-token-"))
            json_array_remove(secrets, k);
    }
    drop_empty(obj, "secrets");
}

void k8s_clean_for_restore(json_t *obj, const k8s_clean_opts_t *o)
{
    if (!json_is_object(obj))
        return;
    k8s_prune_opts_t po = {.keep_last_applied = true};
    k8s_prune_export(obj, &po);
    json_t *m = obj_at(obj, "metadata");
    if (m)
        json_object_del(m, "ownerReferences");
    if (is_kind(obj, "", "Service"))
        clean_service(obj, o);
    else if (is_kind(obj, "", "Pod"))
        clean_pod_spec(obj_at(obj, "spec"));
    else if (is_kind(obj, "", "PersistentVolume")) {
        json_t *cr = obj_at(obj_at(obj, "spec"), "claimRef");
        if (cr) {
            json_object_del(cr, "uid");
            json_object_del(cr, "resourceVersion");
        }
        static const char *const a[] = {"pv.kubernetes.io/bound-by-controller"};
        del_annotations(obj, a, 1);
    } else if (is_kind(obj, "", "PersistentVolumeClaim")) {
        static const char *const a[] = {
            "pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller",
            "volume.beta.kubernetes.io/storage-provisioner",
            "volume.kubernetes.io/storage-provisioner", "volume.kubernetes.io/selected-node"};
        del_annotations(obj, a, sizeof a / sizeof a[0]);
    } else if (is_kind(obj, "batch", "Job")) {
        clean_job(obj);
    } else if (is_kind(obj, "", "ServiceAccount")) {
        clean_sa(obj);
    }
}

bool k8s_is_sa_token_secret(json_t *obj)
{
    const char *t = str_at(obj, "type");
    return is_kind(obj, "", "Secret") && t && strcmp(t, "kubernetes.io/service-account-token") == 0;
}

bool k8s_is_completed(json_t *obj)
{
    json_t *st = obj_at(obj, "status");
    if (!st)
        return false;
    if (is_kind(obj, "", "Pod")) {
        const char *ph = str_at(st, "phase");
        return ph && (!strcmp(ph, "Succeeded") || !strcmp(ph, "Failed"));
    }
    if (is_kind(obj, "batch", "Job")) {
        json_t *c;
        size_t i;
        json_array_foreach(json_object_get(st, "conditions"), i, c)
        {
            const char *t = str_at(c, "type"), *s = str_at(c, "status");
            if (t && s && !strcmp(s, "True") && (!strcmp(t, "Complete") || !strcmp(t, "Failed")))
                return true;
        }
    }
    return false;
}
