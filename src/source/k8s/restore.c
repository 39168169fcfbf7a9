/*
 * restore.c -- restore exported objects into a cluster (see restore.h).
 *
 * Layer: source/k8s. Three passes: load and check every file; decide per object (filters, skip
 * rules, mapping, cleanup) and sort by priority; apply in order, reporting each object.
 */
#include "source/k8s/restore.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "k8s/discovery.h"
#include "source/k8s/selector.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RESTORE_MAX_OBJECTS 1000000
#define RESTORE_MAX_FILE (64u << 20)
#define RESTORE_MAX_BAD 20

static const char *const default_priority[] = {
    "customresourcedefinitions.apiextensions.k8s.io",
    "namespaces",
    "storageclasses.storage.k8s.io",
    "persistentvolumes",
    "persistentvolumeclaims",
    "clusterroles.rbac.authorization.k8s.io",
    "roles.rbac.authorization.k8s.io",
    "serviceaccounts",
    "clusterrolebindings.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "secrets",
    "configmaps",
    "limitranges",
    "priorityclasses.scheduling.k8s.io",
    "pods",
    "replicasets.apps",
    "endpoints",
    "services",
};

const char *k8s_action_name(k8s_action_t a)
{
    static const char *const n[] = {"created",      "updated",      "exists",
                                    "skipped",      "failed",       "not-applied",
                                    "would-create", "would-update", "would-skip"};
    return (unsigned)a < sizeof n / sizeof n[0] ? n[a] : "?";
}

/* ---- loading ------------------------------------------------------------------------------ */

void k8s_rset_release(k8s_rset_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].path);
        free(s->v[i].rid);
        json_decref(s->v[i].obj);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

typedef struct loader {
    k8s_rset_t *set;
    size_t bad;
    const char *origin; /* "directory X" or "snapshot 3f2a..." */
} loader_t;

/* Check one file; a malformed one is logged and counted (the caller fails after the walk). */
static int add_file(loader_t *l, const char *path, const char *data, size_t n)
{
    json_error_t je;
    json_t *obj = NULL;
    char msg[512] = "";
    const char *base = strrchr(path, '/');
    const char *first_slash = strchr(path, '/');
    size_t plen = strlen(path);
    if (!base || base == first_slash || strchr(first_slash + 1, '/') != base || plen < 6 ||
        strcmp(path + plen - 5, ".json") != 0) {
        snprintf(msg, sizeof msg, "not a path of the export layout NS/RESOURCE/NAME.json");
        goto bad;
    }
    obj = json_loadb(data, n, 0, &je);
    if (!obj) {
        snprintf(msg, sizeof msg, "not valid JSON (line %d column %d: %s)", je.line, je.column,
                 je.text);
        goto bad;
    }
    json_t *meta = json_object_get(obj, "metadata");
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!json_is_object(obj) || !av || !*av || !kind || !*kind || !json_is_object(meta) || !name ||
        !*name) {
        snprintf(msg, sizeof msg,
                 "not a Kubernetes object (apiVersion, kind and metadata.name "
                 "are required)");
        goto bad;
    }
    size_t nsl = (size_t)(first_slash - path);
    bool cluster = nsl == 8 && !strncmp(path, "_cluster", 8);
    const char *ons = json_string_value(json_object_get(meta, "namespace"));
    if (!cluster && ons && (strlen(ons) != nsl || strncmp(ons, path, nsl) != 0)) {
        snprintf(msg, sizeof msg, "metadata.namespace \"%s\" does not match its directory", ons);
        goto bad;
    }
    if (!cluster && !ons) {
        char ns[256];
        snprintf(ns, sizeof ns, "%.*s", (int)(nsl < 255 ? nsl : 255), path);
        json_object_set_new(meta, "namespace", json_string(ns));
    }
    if (cluster)
        json_object_del(meta, "namespace");
    if (l->set->n >= RESTORE_MAX_OBJECTS) {
        json_decref(obj);
        return err_set(COFFER_ELIMIT, "more than %d objects to restore", RESTORE_MAX_OBJECTS);
    }
    if (l->set->n == l->set->cap) {
        size_t nc = l->set->cap ? l->set->cap * 2 : 256;
        k8s_robj_t *nv = realloc(l->set->v, nc * sizeof *nv);
        if (!nv) {
            json_decref(obj);
            return err_set(COFFER_ENOMEM, "out of memory");
        }
        l->set->v = nv;
        l->set->cap = nc;
    }
    k8s_robj_t *o = &l->set->v[l->set->n];
    o->path = strdup(path);
    o->rid = strndup(first_slash + 1, (size_t)(base - first_slash - 1));
    o->obj = obj;
    l->set->n++;
    if (!o->path || !o->rid)
        return err_set(COFFER_ENOMEM, "out of memory");
    return 0;
bad:
    json_decref(obj);
    l->bad++;
    if (l->bad <= RESTORE_MAX_BAD)
        log_error("k8s restore: %s in %s: %s", path, l->origin, msg);
    return 0;
}

static int finish_load(loader_t *l, int rc)
{
    if (!rc && l->bad)
        rc = err_set(COFFER_ECORRUPT,
                     "k8s restore: %zu file%s in %s %s malformed (listed above); nothing was "
                     "restored",
                     l->bad, l->bad == 1 ? "" : "s", l->origin, l->bad == 1 ? "is" : "are");
    if (rc)
        k8s_rset_release(l->set);
    return rc;
}

static int walk_dir(loader_t *l, int dfd, buf_t *rel, int depth)
{
    if (depth > 8)
        return err_set(COFFER_ELIMIT, "%s: directories nested too deep at %s", l->origin,
                       (char *)rel->data);
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return err_errno("cannot read %s/%s", l->origin, (char *)rel->data);
    }
    int rc = 0;
    size_t base = rel->len;
    struct dirent *de;
    /* sorted names: a stable order for the report of malformed files */
    char **names = NULL;
    size_t n = 0, cap = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = err_set(COFFER_ENOMEM, "out of memory");
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        rel->len = base;
        if ((rc = buf_printf(rel, "%s%s", base ? "/" : "", names[i])))
            break;
        struct stat st;
        if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = err_errno("cannot stat %s", (char *)rel->data);
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), names[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            rc = sub < 0 ? err_errno("cannot open %s", (char *)rel->data)
                         : walk_dir(l, sub, rel, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            if ((size_t)st.st_size > RESTORE_MAX_FILE) {
                rc = err_set(COFFER_ELIMIT, "%s is larger than %u MiB", (char *)rel->data,
                             RESTORE_MAX_FILE >> 20);
                break;
            }
            int fd = openat(dirfd(d), names[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            if (fd < 0) {
                rc = err_errno("cannot open %s", (char *)rel->data);
                break;
            }
            buf_t data;
            buf_init(&data);
            if (!(rc = buf_reserve(&data, (size_t)st.st_size + 1))) {
                ssize_t got = pread(fd, data.data, (size_t)st.st_size, 0);
                if (got != st.st_size)
                    rc = err_errno("cannot read %s", (char *)rel->data);
                else
                    data.len = (size_t)got;
            }
            close(fd);
            if (!rc)
                rc = add_file(l, (char *)rel->data, (char *)data.data, data.len);
            buf_release(&data);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    rel->len = base;
    if (rel->data)
        rel->data[base] = 0;
    closedir(d);
    return rc;
}

int k8s_rset_load_dir(const char *dir, k8s_rset_t *out)
{
    buf_t origin, rel;
    buf_init(&origin);
    buf_init(&rel);
    loader_t l = {.set = out};
    memset(out, 0, sizeof *out);
    int rc = buf_printf(&origin, "directory %s", dir);
    l.origin = (char *)origin.data;
    int fd = rc ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!rc && fd < 0)
        rc = err_errno("cannot open the export directory %s", dir);
    if (!rc && !(rc = buf_reserve(&rel, 256))) {
        rel.data[0] = 0;
        rc = walk_dir(&l, fd, &rel, 0);
    }
    rc = finish_load(&l, rc);
    if (!rc && out->n == 0)
        rc = err_set(COFFER_ENOENT, "k8s restore: %s holds no exported objects", dir);
    buf_release(&rel);
    buf_release(&origin);
    return rc;
}

static int walk_tree(loader_t *l, repo_t *r, const uint8_t id[32], buf_t *rel, int depth)
{
    if (depth > 8)
        return err_set(COFFER_ELIMIT, "%s: directories nested too deep", l->origin);
    tree_t t;
    tree_init(&t);
    int rc = repo_load_tree(r, id, &t);
    size_t base = rel->len;
    buf_t data;
    buf_init(&data);
    for (size_t i = 0; i < t.n && !rc; i++) {
        const node_t *n = &t.nodes[i];
        rel->len = base;
        if ((rc = buf_printf(rel, "%s%s", base ? "/" : "", n->name)))
            break;
        if (n->type == NODE_DIR) {
            rc = walk_tree(l, r, n->subtree, rel, depth + 1);
        } else if (n->type == NODE_FILE) {
            if (n->size > RESTORE_MAX_FILE) {
                rc = err_set(COFFER_ELIMIT, "%s is larger than %u MiB", (char *)rel->data,
                             RESTORE_MAX_FILE >> 20);
                break;
            }
            buf_reset(&data);
            buf_t blob;
            buf_init(&blob);
            for (size_t k = 0; k < n->n_extents && !rc; k++) {
                if (n->extents[k].hole)
                    continue;
                buf_reset(&blob);
                if (!(rc = repo_read_blob(r, BLOB_DATA, n->extents[k].id, &blob)))
                    rc = buf_append(&data, blob.data, blob.len);
            }
            buf_release(&blob);
            if (rc)
                rc = err_ctx(rc, "while reading %s", (char *)rel->data);
            else
                rc = add_file(l, (char *)rel->data, (char *)data.data, data.len);
        }
    }
    buf_release(&data);
    rel->len = base;
    if (rel->data)
        rel->data[base] = 0;
    tree_release(&t);
    return rc;
}

int k8s_rset_load_snapshot(repo_t *r, const uint8_t tree[32], k8s_rset_t *out)
{
    char hex[65];
    hex_encode(tree, 32, hex);
    buf_t origin, rel;
    buf_init(&origin);
    buf_init(&rel);
    loader_t l = {.set = out};
    memset(out, 0, sizeof *out);
    int rc = buf_printf(&origin, "the snapshot (tree %.8s)", hex);
    l.origin = (char *)origin.data;
    if (!rc && !(rc = buf_reserve(&rel, 256))) {
        rel.data[0] = 0;
        rc = walk_tree(&l, r, tree, &rel, 0);
    }
    rc = finish_load(&l, rc);
    if (!rc && out->n == 0)
        rc = err_set(COFFER_ENOENT, "k8s restore: the snapshot holds no exported objects");
    buf_release(&rel);
    buf_release(&origin);
    return rc;
}

/* ---- deciding ----------------------------------------------------------------------------- */

typedef struct item {
    k8s_robj_t *o;
    int rank;
    bool take;            /* passes the filters */
    const char *skip_why; /* a skip rule matched */
    char group[256];
    const char *kind, *name;
    char ns[256]; /* after mapping; "" for cluster objects */
} item_t;

static const char *map_ns(const k8s_restore_opts_t *o, const char *ns)
{
    for (size_t i = 0; ns && i < o->n_map; i++)
        if (strcmp(o->map[i].from, ns) == 0)
            return o->map[i].to;
    return ns;
}

static bool in_list(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* --include-kinds names: resource id, its resource part, or the Kind (any case). */
static bool kind_matches(char *const *v, size_t n, const item_t *it)
{
    size_t rl = strcspn(it->o->rid, ".");
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], it->o->rid) || (strlen(v[i]) == rl && !strncmp(v[i], it->o->rid, rl)) ||
            !strcasecmp(v[i], it->kind))
            return true;
    return false;
}

static int rank_of(const k8s_restore_opts_t *o, const char *rid)
{
    char *const *pr = o->priority ? o->priority : (char *const *)default_priority;
    size_t n = o->priority ? o->n_priority : sizeof default_priority / sizeof default_priority[0];
    size_t rl = strcspn(rid, ".");
    for (size_t i = 0; i < n; i++)
        if (!strcmp(pr[i], rid) || (strlen(pr[i]) == rl && !strncmp(pr[i], rid, rl)))
            return (int)i;
    return (int)n;
}

static int item_cmp(const void *a, const void *b)
{
    const item_t *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    int d = strcmp(x->o->rid, y->o->rid);
    if (d)
        return d;
    d = strcmp(x->ns, y->ns);
    return d ? d : strcmp(x->name, y->name);
}

static void set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, json_string(v));
}

/* --namespace-map on the object: its namespace, a Namespace's name, PV claimRefs, binding
 * subjects. */
static void apply_map(const k8s_restore_opts_t *o, item_t *it)
{
    json_t *obj = it->o->obj, *meta = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    if (ns && map_ns(o, ns) != ns)
        set_str(meta, "namespace", map_ns(o, ns));
    if (!it->group[0] && !strcmp(it->kind, "Namespace")) {
        const char *nm = json_string_value(json_object_get(meta, "name"));
        if (nm && map_ns(o, nm) != nm)
            set_str(meta, "name", map_ns(o, nm));
    }
    if (!it->group[0] && !strcmp(it->kind, "PersistentVolume")) {
        json_t *cr = json_object_get(json_object_get(obj, "spec"), "claimRef");
        const char *cns = json_string_value(json_object_get(cr, "namespace"));
        if (cns && map_ns(o, cns) != cns)
            set_str(cr, "namespace", map_ns(o, cns));
    }
    if (!strcmp(it->group, "rbac.authorization.k8s.io") &&
        (!strcmp(it->kind, "RoleBinding") || !strcmp(it->kind, "ClusterRoleBinding"))) {
        json_t *s;
        size_t i;
        json_array_foreach(json_object_get(obj, "subjects"), i, s)
        {
            const char *sns = json_string_value(json_object_get(s, "namespace"));
            if (sns && map_ns(o, sns) != sns)
                set_str(s, "namespace", map_ns(o, sns));
        }
    }
    /* the name may have changed (a mapped Namespace) */
    it->name = json_string_value(json_object_get(meta, "name"));
    ns = json_string_value(json_object_get(meta, "namespace"));
    snprintf(it->ns, sizeof it->ns, "%s", ns ? ns : "");
}

static const char *skip_rule(const item_t *it)
{
    json_t *obj = it->o->obj;
    if (!it->group[0] && !strcmp(it->kind, "Node"))
        return "nodes belong to the cluster, not to a restore";
    if ((!it->group[0] || !strcmp(it->group, "events.k8s.io")) && !strcmp(it->kind, "Event"))
        return "events are not restored";
    if (k8s_is_completed(obj))
        return "completed";
    if (k8s_is_sa_token_secret(obj))
        return "service-account token secrets are made by the cluster";
    if (!strcmp(it->group, "discovery.k8s.io") && !strcmp(it->kind, "EndpointSlice")) {
        const char *mb = json_string_value(
            json_object_get(json_object_get(json_object_get(obj, "metadata"), "labels"),
                            "endpointslice.kubernetes.io/managed-by"));
        if (mb)
            return "managed by the endpoint slice controller";
    }
    return NULL;
}

/* ---- applying ----------------------------------------------------------------------------- */

typedef struct rctx {
    k8s_client_t *c;
    const k8s_restore_opts_t *o;
    k8s_discovery_t d;
    k8s_restore_stats_t st;
    char **made_ns; /* namespaces known to exist (or created by us) */
    size_t n_made, cap_made;
    char **crds; /* CRDs created in this run, to wait for */
    size_t n_crds, cap_crds;
    const struct item *items; /* the objects restored, in order */
    size_t n_items;
} rctx_t;

static void report(rctx_t *x, const item_t *it, k8s_action_t a, const char *msg)
{
    switch (a) {
    case K8S_CREATED:
        x->st.created++;
        break;
    case K8S_UPDATED:
        x->st.updated++;
        break;
    case K8S_EXISTS:
        x->st.exists++;
        break;
    case K8S_SKIPPED:
        x->st.skipped++;
        break;
    case K8S_FAILED:
        x->st.failed++;
        break;
    case K8S_NOT_APPLIED:
        x->st.not_applied++;
        break;
    default:
        x->st.planned++;
        break;
    }
    if (x->o->report) {
        k8s_rresult_t r = {.path = it->o->path,
                           .rid = it->o->rid,
                           .ns = it->ns,
                           .name = it->name,
                           .action = a,
                           .message = msg};
        x->o->report(x->o->ud, &r);
    }
}

static int strv_add(char ***v, size_t *n, size_t *cap, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i], s))
            return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char **nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return err_set(COFFER_ENOMEM, "out of memory");
        *v = nv;
        *cap = nc;
    }
    if (!((*v)[*n] = strdup(s)))
        return err_set(COFFER_ENOMEM, "out of memory");
    (*n)++;
    return 0;
}

static bool ns_known(rctx_t *x, const char *ns)
{
    for (size_t i = 0; i < x->n_made; i++)
        if (!strcmp(x->made_ns[i], ns))
            return true;
    return false;
}

static bool transport_failed(rctx_t *x)
{
    return k8s_last_http(x->c) == 0;
}

/* Make sure namespace ns exists (the set had no Namespace object for it). */
static int ensure_ns(rctx_t *x, const char *ns)
{
    if (!ns[0] || ns_known(x, ns))
        return 0;
    const k8s_resource_t *r = k8s_discovery_by_kind(&x->d, "", "Namespace");
    if (!r)
        return err_set(COFFER_ECORRUPT, "k8s: the server does not serve namespaces");
    k8s_res_t res = k8s_res_of(r);
    json_t *got = NULL;
    int rc = k8s_get(x->c, &res, NULL, ns, &got);
    json_decref(got);
    if (rc && k8s_last_http(x->c) == 404 && !x->o->dry_run) {
        err_clear();
        json_t *nso = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                                "metadata", "name", ns);
        rc = k8s_create(x->c, &res, NULL, nso, false, NULL);
        json_decref(nso);
        if (!rc)
            log_info("k8s restore: created namespace %s (the restore set has no Namespace "
                     "object for it)",
                     ns);
    } else if (rc && k8s_last_http(x->c) == 404) {
        err_clear();
        rc = 0;
    }
    if (rc)
        return rc;
    return strv_add(&x->made_ns, &x->n_made, &x->cap_made, ns);
}

static int wait_crds(rctx_t *x)
{
    if (!x->n_crds)
        return 0;
    const k8s_resource_t *r =
        k8s_discovery_by_kind(&x->d, "apiextensions.k8s.io", "CustomResourceDefinition");
    if (!r)
        return 0;
    k8s_res_t res = k8s_res_of(r);
    int wait_s = x->o->crd_wait_s > 0 ? x->o->crd_wait_s : 60;
    int64_t end = time_monotonic_ns() + (int64_t)wait_s * 1000000000;
    for (size_t i = 0; i < x->n_crds; i++) {
        for (;;) {
            json_t *crd = NULL;
            int rc = k8s_get(x->c, &res, NULL, x->crds[i], &crd);
            if (rc)
                return rc;
            bool est = false;
            json_t *cond;
            size_t k;
            json_array_foreach(json_object_get(json_object_get(crd, "status"), "conditions"), k,
                               cond)
            {
                const char *t = json_string_value(json_object_get(cond, "type"));
                const char *s = json_string_value(json_object_get(cond, "status"));
                est |= t && s && !strcmp(t, "Established") && !strcmp(s, "True");
            }
            json_decref(crd);
            if (est)
                break;
            if (time_monotonic_ns() > end)
                return err_set(COFFER_EIO, "k8s restore: CRD %s was not Established within %d s",
                               x->crds[i], wait_s);
            if (x->o->stop && *x->o->stop)
                return err_set(COFFER_EINTR, "interrupted");
            struct timespec ts = {0, 200000000};
            nanosleep(&ts, NULL);
        }
    }
    /* the new kinds are served now */
    k8s_discovery_release(&x->d);
    return k8s_discover(x->c, &x->d);
}

/* A CRD of the restore set defines group/kind (a dry run cannot ask the cluster). */
static bool crd_in_set(rctx_t *x, const char *group, const char *kind)
{
    for (size_t i = 0; i < x->n_items; i++) {
        const item_t *c = &x->items[i];
        if (strcmp(c->group, "apiextensions.k8s.io") || strcmp(c->kind, "CustomResourceDefinition"))
            continue;
        json_t *spec = json_object_get(c->o->obj, "spec");
        const char *g = json_string_value(json_object_get(spec, "group"));
        const char *k = json_string_value(json_object_get(json_object_get(spec, "names"), "kind"));
        if (g && k && !strcmp(g, group) && !strcmp(k, kind))
            return true;
    }
    return false;
}

static int apply_one(rctx_t *x, item_t *it)
{
    const k8s_restore_opts_t *o = x->o;
    const k8s_resource_t *r = k8s_discovery_by_kind(&x->d, it->group, it->kind);
    const char *av = json_string_value(json_object_get(it->o->obj, "apiVersion"));
    if (!r && o->dry_run && crd_in_set(x, it->group, it->kind)) {
        report(x, it, K8S_WOULD_CREATE, "its CRD is restored first");
        return 0;
    }
    if (!r) {
        char msg[512];
        snprintf(msg, sizeof msg, "the cluster does not serve %s %s", av, it->kind);
        report(x, it, K8S_FAILED, msg);
        return 0;
    }
    /* the object's own version when the cluster serves it, else the preferred one */
    k8s_res_t res = k8s_res_of(r);
    const char *slash = av ? strchr(av, '/') : NULL;
    const char *ver = slash ? slash + 1 : av;
    if (ver && strcmp(ver, r->version) != 0)
        res.version = ver;
    int rc = 0;
    if (r->namespaced && (rc = ensure_ns(x, it->ns))) {
        if (transport_failed(x))
            return rc;
        report(x, it, K8S_FAILED, err_msg());
        err_clear();
        return 0;
    }
    const char *ns = r->namespaced ? it->ns : NULL;
    json_t *cur = NULL;
    rc = k8s_get(x->c, &res, ns, it->name, &cur);
    json_decref(cur);
    bool exists = rc == 0;
    if (rc && k8s_last_http(x->c) != 404) {
        if (transport_failed(x))
            return rc;
        report(x, it, K8S_FAILED, err_msg());
        err_clear();
        return 0;
    }
    err_clear();
    if (o->dry_run) {
        report(x, it,
               !exists              ? K8S_WOULD_CREATE
               : o->update_existing ? K8S_WOULD_UPDATE
                                    : K8S_WOULD_SKIP,
               exists && !o->update_existing ? "exists" : NULL);
        return 0;
    }
    if (exists && !o->update_existing) {
        report(x, it, K8S_EXISTS, "exists");
        return 0;
    }
    if (exists)
        rc = k8s_apply(x->c, &res, ns, it->name, it->o->obj, false, NULL);
    else
        rc = k8s_create(x->c, &res, ns, it->o->obj, false, NULL);
    if (rc && !exists && k8s_last_http(x->c) == 409 && !o->update_existing) {
        err_clear();
        report(x, it, K8S_EXISTS, "exists");
        return 0;
    }
    if (rc) {
        if (transport_failed(x))
            return rc;
        report(x, it, K8S_FAILED, err_msg());
        err_clear();
        return 0;
    }
    report(x, it, exists ? K8S_UPDATED : K8S_CREATED, NULL);
    if (!strcmp(it->group, "") && !strcmp(it->kind, "Namespace"))
        rc = strv_add(&x->made_ns, &x->n_made, &x->cap_made, it->name);
    if (!strcmp(it->group, "apiextensions.k8s.io") && !strcmp(it->kind, "CustomResourceDefinition"))
        rc = strv_add(&x->crds, &x->n_crds, &x->cap_crds, it->name);
    return rc;
}

static void group_of(const char *av, char *out, size_t n)
{
    const char *slash = av ? strchr(av, '/') : NULL;
    if (slash)
        snprintf(out, n, "%.*s", (int)(slash - av), av);
    else
        out[0] = 0;
}

int k8s_restore(k8s_client_t *c, k8s_rset_t *set, const k8s_restore_opts_t *o,
                k8s_restore_stats_t *out_stats)
{
    rctx_t x = {.c = c, .o = o};
    k8s_selector_t *sel = NULL;
    item_t *items = calloc(set->n ? set->n : 1, sizeof *items);
    int rc = items ? 0 : err_set(COFFER_ENOMEM, "out of memory");
    if (!rc && o->label_selector)
        rc = k8s_selector_parse(o->label_selector, &sel);
    if (rc)
        goto out;
    k8s_clean_opts_t co = {.keep_nodeports = o->keep_nodeports};
    for (size_t i = 0; i < set->n; i++) {
        item_t *it = &items[i];
        it->o = &set->v[i];
        json_t *obj = it->o->obj, *meta = json_object_get(obj, "metadata");
        group_of(json_string_value(json_object_get(obj, "apiVersion")), it->group,
                 sizeof it->group);
        it->kind = json_string_value(json_object_get(obj, "kind"));
        it->name = json_string_value(json_object_get(meta, "name"));
        const char *ns = json_string_value(json_object_get(meta, "namespace"));
        bool is_ns = !it->group[0] && !strcmp(it->kind, "Namespace");
        bool is_pv = !it->group[0] && !strcmp(it->kind, "PersistentVolume");
        const char *filter_ns = is_ns ? it->name : ns;
        if (is_pv)
            filter_ns = json_string_value(json_object_get(
                json_object_get(json_object_get(obj, "spec"), "claimRef"), "namespace"));
        it->take = true;
        if (o->n_namespaces && filter_ns && !in_list(o->namespaces, o->n_namespaces, filter_ns))
            it->take = false;
        if (o->n_include && !kind_matches(o->include_kinds, o->n_include, it))
            it->take = false;
        if (o->n_exclude && kind_matches(o->exclude_kinds, o->n_exclude, it))
            it->take = false;
        if (o->n_names && !in_list(o->names, o->n_names, it->name))
            it->take = false;
        if (sel && !k8s_selector_match(sel, obj))
            it->take = false;
        if (!it->take) {
            x.st.filtered++;
            continue;
        }
        it->skip_why = skip_rule(it); /* before cleanup: it reads status */
        k8s_clean_for_restore(obj, &co);
        apply_map(o, it);
        it->rank = rank_of(o, it->o->rid);
    }
    /* only the objects taken, in priority order */
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        if (items[i].take)
            items[n++] = items[i];
    if (n > 1)
        qsort(items, n, sizeof *items, item_cmp);
    x.items = items;
    x.n_items = n;
    if ((rc = k8s_discover(c, &x.d)))
        goto out;
    size_t i = 0;
    bool crds_done = false;
    for (; i < n; i++) {
        item_t *it = &items[i];
        if (o->stop && *o->stop) {
            rc = err_set(COFFER_EINTR, "interrupted");
            break;
        }
        bool is_crd = !strcmp(it->group, "apiextensions.k8s.io") &&
                      !strcmp(it->kind, "CustomResourceDefinition");
        if (!is_crd && !crds_done) {
            crds_done = true;
            if (!o->dry_run && (rc = wait_crds(&x)))
                break;
        }
        if (it->skip_why) {
            report(&x, it, K8S_SKIPPED, it->skip_why);
            continue;
        }
        if ((rc = apply_one(&x, it)))
            break;
    }
    if (rc) {
        /* no silent partial restore: everything not attempted is in the report */
        char msg[1024];
        snprintf(msg, sizeof msg, "not applied: %s", err_msg());
        for (; i < n; i++)
            report(&x, &items[i], K8S_NOT_APPLIED, msg);
        err_set(rc, "%s", msg + 13);
    }
    if (!rc && out_stats)
        *out_stats = x.st;
    if (rc && out_stats)
        *out_stats = x.st;
out:
    k8s_selector_free(sel);
    free(items);
    k8s_discovery_release(&x.d);
    for (size_t k = 0; k < x.n_made; k++)
        free(x.made_ns[k]);
    free(x.made_ns);
    for (size_t k = 0; k < x.n_crds; k++)
        free(x.crds[k]);
    free(x.crds);
    return rc;
}
