/*
 * export.c -- the Kubernetes export walk (see export.h).
 *
 * Layer: source/k8s. Discovery decides the kinds; each kind is listed page by page per
 * namespace and every item is pruned, serialized and handed to the sink at once, so memory
 * holds one page, not the cluster. PV names and custom kinds seen on the way are remembered
 * for the automatic additions at the end.
 */
#include "source/k8s/export.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "k8s/discovery.h"

#include <stdlib.h>
#include <string.h>

#define MAX_NAMESPACES 100000

typedef struct strset {
    char **v;
    size_t n, cap;
} strset_t;

static bool set_has(const strset_t *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0)
            return true;
    return false;
}

static int set_add(strset_t *s, const char *x)
{
    if (set_has(s, x))
        return 0;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        char **nv = realloc(s->v, nc * sizeof *nv);
        if (!nv)
            return err_set(COFFER_ENOMEM, "out of memory");
        s->v = nv;
        s->cap = nc;
    }
    if (!(s->v[s->n] = strdup(x)))
        return err_set(COFFER_ENOMEM, "out of memory");
    s->n++;
    return 0;
}

static void set_free(strset_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

typedef struct ectx {
    k8s_client_t *c;
    const k8s_export_opts_t *o;
    k8s_discovery_t d;
    bool *chosen;      /* per discovery entry */
    strset_t pv_names; /* spec.volumeName of exported PVCs */
    strset_t exported_pvs;
    strset_t crd_names; /* plural.group of exported custom objects */
    strset_t exported_crds;
    k8s_export_stats_t st;
    const k8s_resource_t *cur;
    const char *cur_ns;
    int fatal; /* a sink or interrupt error inside a list callback: stops the export */
    buf_t path;
} ectx_t;

int k8s_export_dump(json_t *obj, char **out, size_t *out_n)
{
    char *s = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!s)
        return err_set(COFFER_ENOMEM, "out of memory");
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    t[n] = '\n';
    t[n + 1] = 0;
    *out = t;
    *out_n = n + 1;
    return 0;
}

static bool is_custom_group(const char *g)
{
    size_t n = strlen(g);
    return strchr(g, '.') && !(n >= 7 && strcmp(g + n - 7, ".k8s.io") == 0) &&
           strcmp(g, "k8s.io") != 0;
}

/* The controller owner is of a kind being exported. */
static bool owned_by_exported(ectx_t *e, json_t *obj)
{
    json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), *r;
    size_t i;
    json_array_foreach(refs, i, r)
    {
        if (!json_is_true(json_object_get(r, "controller")))
            continue;
        const char *av = json_string_value(json_object_get(r, "apiVersion"));
        const char *kind = json_string_value(json_object_get(r, "kind"));
        if (!av || !kind)
            continue;
        const char *slash = strchr(av, '/');
        char group[256] = "";
        if (slash && (size_t)(slash - av) < sizeof group)
            snprintf(group, sizeof group, "%.*s", (int)(slash - av), av);
        for (size_t k = 0; k < e->d.n; k++)
            if (e->chosen[k] && strcmp(e->d.res[k].group, group) == 0 &&
                strcmp(e->d.res[k].kind, kind) == 0)
                return true;
    }
    return false;
}

static int emit(ectx_t *e, const k8s_resource_t *r, json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return 0; /* the API never lists such a name; nothing sane to call the file */
    const char *ts = json_string_value(json_object_get(meta, "creationTimestamp"));
    int64_t ctime = 0;
    if (ts && time_parse_rfc3339(ts, &ctime) != 0)
        ctime = 0;
    /* what the automatic additions need, before pruning */
    int rc = 0;
    if (!r->group[0] && !strcmp(r->resource, "persistentvolumeclaims")) {
        const char *vn =
            json_string_value(json_object_get(json_object_get(obj, "spec"), "volumeName"));
        if (vn && *vn)
            rc = set_add(&e->pv_names, vn);
    }
    if (!r->group[0] && !strcmp(r->resource, "persistentvolumes"))
        rc = set_add(&e->exported_pvs, name);
    if (!strcmp(r->group, "apiextensions.k8s.io") &&
        !strcmp(r->resource, "customresourcedefinitions"))
        rc = set_add(&e->exported_crds, name);
    if (!rc && is_custom_group(r->group)) {
        char crd[600];
        snprintf(crd, sizeof crd, "%s.%s", r->resource, r->group);
        rc = set_add(&e->crd_names, crd);
    }
    if (rc)
        return rc;
    k8s_prune_export(obj, &e->o->prune);
    char rid[512];
    k8s_resource_id(r, rid, sizeof rid);
    buf_reset(&e->path);
    if ((rc = buf_printf(&e->path, "%s/%s/%s.json", r->namespaced && ns ? ns : "_cluster", rid,
                         name)))
        return rc;
    char *text = NULL;
    size_t n = 0;
    if ((rc = k8s_export_dump(obj, &text, &n)))
        return rc;
    rc = e->o->sink(e->o->ud, (char *)e->path.data, text, n, ctime);
    free(text);
    if (!rc) {
        e->st.objects++;
        e->st.bytes += n;
    }
    return rc;
}

static int on_item(json_t *item, void *ud)
{
    ectx_t *e = ud;
    if (e->o->stop && *e->o->stop)
        return e->fatal = err_set(COFFER_EINTR, "interrupted");
    if (!e->o->include_owned && owned_by_exported(e, item)) {
        e->st.owned_skipped++;
        return 0;
    }
    int rc = emit(e, e->cur, item);
    if (rc)
        e->fatal = rc;
    return rc;
}

/* A per-kind failure: 403/404/405 are expected (least privilege, kinds the cluster lacks). */
static int kind_failed(ectx_t *e, const char *what, bool *warned)
{
    long http = k8s_last_http(e->c);
    if (http == 0 || err_code() == COFFER_EINTR)
        return err_code() ? err_code() : COFFER_EIO; /* the server is unreachable: stop */
    if (http == 403 || http == 404 || http == 405) {
        if (!*warned)
            log_warn("%s; skipped", err_msg());
        *warned = true;
        e->st.kinds_skipped++;
        err_clear();
        return 0;
    }
    e->st.errors++;
    if (e->o->on_error)
        e->o->on_error(e->o->ud, what, err_msg());
    else
        log_warn("%s", err_msg());
    err_clear();
    return 0;
}

static int list_kind(ectx_t *e, const k8s_resource_t *r, char *const *nss, size_t n_ns)
{
    k8s_res_t res = k8s_res_of(r);
    k8s_list_opts_t lo = {.label_selector = e->o->label_selector, .limit = e->o->page_size};
    bool warned = false;
    int rc = 0;
    e->cur = r;
    e->st.kinds++;
    size_t n = r->namespaced ? n_ns : 1;
    for (size_t i = 0; i < n && !rc; i++) {
        e->cur_ns = r->namespaced ? nss[i] : NULL;
        if (k8s_list(e->c, &res, e->cur_ns, &lo, on_item, e, NULL) == 0)
            continue;
        if (e->fatal || err_code() == COFFER_ENOMEM)
            return e->fatal ? e->fatal : err_code();
        rc = kind_failed(e, r->resource, &warned);
    }
    return rc;
}

static bool name_in(const k8s_discovery_t *d, const k8s_resource_t *r, char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (k8s_discovery_find(d, names[i]) == r)
            return true;
    return false;
}

static bool default_skip(const k8s_resource_t *r)
{
    static const char *const core[] = {"events", "endpoints", "nodes", "componentstatuses",
                                       "bindings"};
    for (size_t i = 0; i < sizeof core / sizeof core[0]; i++)
        if (!r->group[0] && !strcmp(r->resource, core[i]))
            return true;
    return (!strcmp(r->group, "events.k8s.io") && !strcmp(r->resource, "events")) ||
           (!strcmp(r->group, "discovery.k8s.io") && !strcmp(r->resource, "endpointslices")) ||
           (!strcmp(r->group, "storage.k8s.io") &&
            (!strcmp(r->resource, "csinodes") || !strcmp(r->resource, "volumeattachments"))) ||
           (!strcmp(r->group, "coordination.k8s.io") && !strcmp(r->resource, "leases"));
}

static int get_and_emit(ectx_t *e, const k8s_resource_t *r, const char *ns, const char *name,
                        bool quiet_404)
{
    k8s_res_t res = k8s_res_of(r);
    json_t *obj = NULL;
    int rc = k8s_get(e->c, &res, ns, name, &obj);
    if (rc) {
        if (quiet_404 && k8s_last_http(e->c) == 404) {
            err_clear();
            return 0;
        }
        bool warned = false;
        return kind_failed(e, name, &warned);
    }
    if (!json_object_get(obj, "apiVersion") || !json_object_get(obj, "kind")) {
        json_decref(obj);
        return err_set(COFFER_ECORRUPT, "k8s: %s \"%s\" came back without apiVersion or kind",
                       r->resource, name);
    }
    rc = emit(e, r, obj);
    json_decref(obj);
    return rc;
}

typedef struct nsl {
    strset_t *s;
} nsl_t;

static int on_ns(json_t *item, void *ud)
{
    const char *n = json_string_value(json_object_get(json_object_get(item, "metadata"), "name"));
    strset_t *s = ud;
    if (s->n >= MAX_NAMESPACES)
        return err_set(COFFER_ELIMIT, "more than %d namespaces", MAX_NAMESPACES);
    return n ? set_add(s, n) : 0;
}

int k8s_export(k8s_client_t *c, const k8s_export_opts_t *o, k8s_export_stats_t *out_stats)
{
    ectx_t e = {.c = c, .o = o};
    buf_init(&e.path);
    strset_t nss = {0};
    int rc = k8s_discover(c, &e.d);
    if (rc)
        goto out;
    if (!(e.chosen = calloc(e.d.n ? e.d.n : 1, sizeof *e.chosen))) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    /* unknown kind names given by the user: one warning each (the cluster lacks them) */
    for (size_t i = 0; i < o->n_include; i++)
        if (!k8s_discovery_find(&e.d, o->include_kinds[i])) {
            log_warn("k8s: kind \"%s\" is not served by %s; skipped", o->include_kinds[i],
                     k8s_client_config(c)->server);
            e.st.kinds_skipped++;
        }
    for (size_t i = 0; i < o->n_exclude; i++)
        if (!k8s_discovery_find(&e.d, o->exclude_kinds[i]))
            log_warn("k8s: kind \"%s\" (--exclude-kinds) is not served by %s", o->exclude_kinds[i],
                     k8s_client_config(c)->server);
    const k8s_resource_t *ns_res = k8s_discovery_by_kind(&e.d, "", "Namespace");
    bool secrets_skipped = false;
    for (size_t i = 0; i < e.d.n; i++) {
        const k8s_resource_t *r = &e.d.res[i];
        bool named = name_in(&e.d, r, o->include_kinds, o->n_include);
        bool ok = (r->verbs & K8S_VERB_LIST) && (r->verbs & K8S_VERB_GET);
        if (!ok || r == ns_res)
            continue;
        if (o->n_include && !named)
            continue;
        if (!named && default_skip(r))
            continue;
        if (!r->namespaced && !o->cluster_resources && !named)
            continue;
        if (name_in(&e.d, r, o->exclude_kinds, o->n_exclude))
            continue;
        if (!r->group[0] && !strcmp(r->resource, "secrets") && !o->include_secrets) {
            secrets_skipped = true;
            continue;
        }
        e.chosen[i] = true;
    }
    if (secrets_skipped)
        log_warn("k8s: secrets are not exported without --include-secrets");

    /* the namespaces */
    if (o->all_namespaces) {
        k8s_res_t res = k8s_res_of(ns_res);
        if (!ns_res) {
            rc = err_set(COFFER_ECORRUPT, "k8s: the server does not serve namespaces");
            goto out;
        }
        if ((rc = k8s_list(c, &res, NULL, NULL, on_ns, &nss, NULL)))
            goto out;
    } else if (o->n_namespaces) {
        for (size_t i = 0; i < o->n_namespaces && !rc; i++)
            rc = set_add(&nss, o->namespaces[i]);
    } else {
        rc = set_add(&nss, k8s_client_config(c)->namespace);
    }
    if (rc)
        goto out;
    /* the Namespace objects first, so a restore finds them (and a typo fails early) */
    bool ns_excluded = ns_res && name_in(&e.d, ns_res, o->exclude_kinds, o->n_exclude);
    for (size_t i = 0; ns_res && !ns_excluded && i < nss.n; i++) {
        k8s_res_t res = k8s_res_of(ns_res);
        json_t *obj = NULL;
        rc = k8s_get(c, &res, NULL, nss.v[i], &obj);
        if (rc && k8s_last_http(c) == 404) {
            rc = err_set(COFFER_ENOENT, "k8s: namespace \"%s\" does not exist on %s (%s)", nss.v[i],
                         k8s_client_config(c)->server, k8s_client_config(c)->origin);
            goto out;
        }
        if (rc && k8s_last_http(c) == 403) {
            log_warn("%s; the Namespace object is not exported, its contents are", err_msg());
            err_clear();
            rc = 0;
            continue;
        }
        if (rc)
            goto out;
        rc = emit(&e, ns_res, obj);
        json_decref(obj);
        if (rc)
            goto out;
    }
    for (size_t i = 0; i < e.d.n; i++) {
        if (!e.chosen[i])
            continue;
        if ((rc = list_kind(&e, &e.d.res[i], nss.v, nss.n)))
            goto out;
    }
    /* the automatic additions: PVs of exported claims, CRDs of exported custom objects */
    const k8s_resource_t *pv = k8s_discovery_by_kind(&e.d, "", "PersistentVolume");
    for (size_t i = 0; pv && i < e.pv_names.n && !rc; i++)
        if (!set_has(&e.exported_pvs, e.pv_names.v[i]))
            rc = get_and_emit(&e, pv, NULL, e.pv_names.v[i], false);
    const k8s_resource_t *crd =
        k8s_discovery_by_kind(&e.d, "apiextensions.k8s.io", "CustomResourceDefinition");
    for (size_t i = 0; crd && i < e.crd_names.n && !rc; i++)
        if (!set_has(&e.exported_crds, e.crd_names.v[i]))
            rc = get_and_emit(&e, crd, NULL, e.crd_names.v[i], true);
    if (rc)
        goto out;
    if (out_stats)
        *out_stats = e.st;
out:
    set_free(&nss);
    set_free(&e.pv_names);
    set_free(&e.exported_pvs);
    set_free(&e.crd_names);
    set_free(&e.exported_crds);
    free(e.chosen);
    k8s_discovery_release(&e.d);
    buf_release(&e.path);
    return rc;
}
