/*
 * discovery.c -- API discovery (see discovery.h).
 *
 * Layer: k8s. Legacy discovery documents (APIVersions, APIGroupList, APIResourceList): every
 * server since 1.0 serves them, and the aggregated form is only an optimisation.
 */
#include "k8s/discovery.h"
#include "common/error.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void res_release(k8s_resource_t *r)
{
    free(r->group);
    free(r->version);
    free(r->resource);
    free(r->kind);
    free(r->singular);
    for (size_t i = 0; i < r->n_short; i++)
        free(r->short_names[i]);
    free(r->short_names);
}

void k8s_discovery_release(k8s_discovery_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        res_release(&d->res[i]);
    free(d->res);
    d->res = NULL;
    d->n = 0;
}

k8s_res_t k8s_res_of(const k8s_resource_t *r)
{
    return (k8s_res_t){.group = r->group,
                       .version = r->version,
                       .resource = r->resource,
                       .namespaced = r->namespaced};
}

void k8s_resource_id(const k8s_resource_t *r, char *out, size_t n)
{
    if (r->group[0])
        snprintf(out, n, "%s.%s", r->resource, r->group);
    else
        snprintf(out, n, "%s", r->resource);
}

static unsigned verbs_of(json_t *a)
{
    static const struct {
        const char *name;
        unsigned bit;
    } map[] = {{"get", K8S_VERB_GET},       {"list", K8S_VERB_LIST},     {"watch", K8S_VERB_WATCH},
               {"create", K8S_VERB_CREATE}, {"update", K8S_VERB_UPDATE}, {"patch", K8S_VERB_PATCH},
               {"delete", K8S_VERB_DELETE}};
    unsigned v = 0;
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
    {
        const char *s = json_string_value(e);
        for (size_t k = 0; s && k < sizeof map / sizeof map[0]; k++)
            if (strcmp(s, map[k].name) == 0)
                v |= map[k].bit;
    }
    return v;
}

static int add_list(k8s_discovery_t *d, size_t *cap, const char *group, const char *version,
                    json_t *list)
{
    json_t *rs = json_object_get(list, "resources"), *e;
    size_t i;
    /* subresources first: mark has_status on their parents afterwards */
    size_t first = d->n;
    json_array_foreach(rs, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *kind = json_string_value(json_object_get(e, "kind"));
        if (!name || !kind || strchr(name, '/'))
            continue;
        if (d->n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            k8s_resource_t *nr = realloc(d->res, nc * sizeof *nr);
            if (!nr)
                return err_set(COFFER_ENOMEM, "out of memory");
            d->res = nr;
            *cap = nc;
        }
        k8s_resource_t *r = &d->res[d->n];
        memset(r, 0, sizeof *r);
        const char *sing = json_string_value(json_object_get(e, "singularName"));
        r->group = strdup(group);
        r->version = strdup(version);
        r->resource = strdup(name);
        r->kind = strdup(kind);
        r->singular = strdup(sing ? sing : "");
        r->namespaced = json_is_true(json_object_get(e, "namespaced"));
        r->verbs = verbs_of(json_object_get(e, "verbs"));
        d->n++;
        if (!r->group || !r->version || !r->resource || !r->kind || !r->singular)
            return err_set(COFFER_ENOMEM, "out of memory");
        json_t *sn = json_object_get(e, "shortNames"), *s;
        size_t k;
        if (json_array_size(sn)) {
            r->short_names = calloc(json_array_size(sn), sizeof *r->short_names);
            if (!r->short_names)
                return err_set(COFFER_ENOMEM, "out of memory");
            json_array_foreach(sn, k, s)
            {
                if (json_is_string(s) &&
                    !(r->short_names[r->n_short++] = strdup(json_string_value(s))))
                    return err_set(COFFER_ENOMEM, "out of memory");
            }
        }
    }
    json_array_foreach(rs, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *slash = name ? strchr(name, '/') : NULL;
        if (!slash || strcmp(slash, "/status") != 0)
            continue;
        for (size_t k = first; k < d->n; k++)
            if (strlen(d->res[k].resource) == (size_t)(slash - name) &&
                strncmp(d->res[k].resource, name, (size_t)(slash - name)) == 0)
                d->res[k].has_status = true;
    }
    return 0;
}

static int fetch_gv(k8s_client_t *c, k8s_discovery_t *d, size_t *cap, const char *group,
                    const char *version)
{
    buf_t path, what;
    buf_init(&path);
    buf_init(&what);
    json_t *list = NULL;
    int rc = group[0] ? buf_printf(&path, "/apis/%s/%s", group, version)
                      : buf_printf(&path, "/api/%s", version);
    if (!rc)
        rc = buf_printf(&what, "discovery of %s%s%s", group, group[0] ? "/" : "", version);
    if (!rc)
        rc = k8s_request(c, "GET", (char *)path.data, NULL, NULL, 0, (char *)what.data, &list);
    if (rc) {
        long http = k8s_last_http(c);
        if (http == 503 || http == 404 || http == 403) {
            /* one unavailable group version (an aggregated API that is down) is not fatal */
            log_warn("%s; skipping %s%s%s", err_msg(), group, group[0] ? "/" : "", version);
            err_clear();
            rc = 0;
        }
    } else {
        rc = add_list(d, cap, group, version, list);
    }
    json_decref(list);
    buf_release(&path);
    buf_release(&what);
    return rc;
}

static int res_cmp(const void *a, const void *b)
{
    const k8s_resource_t *x = a, *y = b;
    int d = strcmp(x->group, y->group);
    return d ? d : strcmp(x->resource, y->resource);
}

int k8s_discover(k8s_client_t *c, k8s_discovery_t *out)
{
    k8s_discovery_t d = {0};
    size_t cap = 0;
    json_t *api = NULL, *apis = NULL;
    int rc = k8s_request(c, "GET", "/api", NULL, NULL, 0, "discovery (/api)", &api);
    if (rc)
        goto out;
    json_t *vs = json_object_get(api, "versions");
    bool has_v1 = false;
    size_t i;
    json_t *e;
    json_array_foreach(vs, i, e) has_v1 |= json_is_string(e) && !strcmp(json_string_value(e), "v1");
    if (!has_v1) {
        rc = err_set(COFFER_ECORRUPT, "k8s: %s does not serve the core API v1 (/api)",
                     k8s_client_config(c)->server);
        goto out;
    }
    if ((rc = fetch_gv(c, &d, &cap, "", "v1")))
        goto out;
    if ((rc = k8s_request(c, "GET", "/apis", NULL, NULL, 0, "discovery (/apis)", &apis)))
        goto out;
    json_t *groups = json_object_get(apis, "groups");
    if (!json_is_array(groups)) {
        rc = err_set(COFFER_ECORRUPT, "k8s: /apis of %s is not an APIGroupList",
                     k8s_client_config(c)->server);
        goto out;
    }
    json_array_foreach(groups, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        json_t *pv = json_object_get(e, "preferredVersion");
        const char *ver = json_string_value(json_object_get(pv, "version"));
        if (!ver) /* no preferred version: the first listed */
            ver = json_string_value(
                json_object_get(json_array_get(json_object_get(e, "versions"), 0), "version"));
        if (!name || !ver)
            continue;
        if ((rc = fetch_gv(c, &d, &cap, name, ver)))
            goto out;
    }
    if (d.n > 1)
        qsort(d.res, d.n, sizeof *d.res, res_cmp);
    *out = d;
    d.res = NULL;
    d.n = 0;
out:
    k8s_discovery_release(&d);
    json_decref(api);
    json_decref(apis);
    return rc;
}

const k8s_resource_t *k8s_discovery_find(const k8s_discovery_t *d, const char *name)
{
    char id[512];
    for (size_t i = 0; i < d->n; i++) {
        const k8s_resource_t *r = &d->res[i];
        k8s_resource_id(r, id, sizeof id);
        if (strcmp(id, name) == 0)
            return r;
    }
    /* then the short forms; the core group wins ties as kubectl's order does */
    for (size_t pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < d->n; i++) {
            const k8s_resource_t *r = &d->res[i];
            if ((pass == 0) != (r->group[0] == 0))
                continue;
            if (strcmp(r->resource, name) == 0 || strcasecmp(r->kind, name) == 0 ||
                (r->singular[0] && strcmp(r->singular, name) == 0))
                return r;
            for (size_t k = 0; k < r->n_short; k++)
                if (strcmp(r->short_names[k], name) == 0)
                    return r;
        }
    return NULL;
}

const k8s_resource_t *k8s_discovery_by_kind(const k8s_discovery_t *d, const char *group,
                                            const char *kind)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->res[i].group, group) == 0 && strcmp(d->res[i].kind, kind) == 0)
            return &d->res[i];
    return NULL;
}
