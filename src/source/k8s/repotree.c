/*
 * repotree.c -- build a snapshot tree from exported files (see repotree.h).
 *
 * Layer: source/k8s. Files are stored as they arrive; their paths and nodes are kept (a few
 * hundred bytes each) and the directory trees are built bottom-up at the end from the sorted
 * paths.
 */
#include "source/k8s/repotree.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *path;
    node_t node;
} entry_t;

struct k8s_repotree {
    repo_t *r;
    writer_t *w;
    entry_t *e;
    size_t n, cap;
    uint64_t dirs;
};

int k8s_repotree_new(repo_t *r, writer_t *w, k8s_repotree_t **out)
{
    k8s_repotree_t *t = calloc(1, sizeof *t);
    if (!t)
        return err_set(COFFER_ENOMEM, "out of memory");
    t->r = r;
    t->w = w;
    *out = t;
    return 0;
}

void k8s_repotree_free(k8s_repotree_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->e[i].path);
        node_release(&t->e[i].node);
    }
    free(t->e);
    free(t);
}

int k8s_repotree_sink(void *ud, const char *path, const char *data, size_t n, int64_t ctime_ns)
{
    k8s_repotree_t *t = ud;
    if (n > K8S_OBJECT_MAX)
        return err_set(COFFER_ELIMIT, "%s is larger than %u MiB", path, K8S_OBJECT_MAX >> 20);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int rc = node_name_valid(base, strlen(base));
    if (rc)
        return rc;
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 256;
        entry_t *ne = realloc(t->e, nc * sizeof *ne);
        if (!ne)
            return err_set(COFFER_ENOMEM, "out of memory");
        t->e = ne;
        t->cap = nc;
    }
    uint8_t id[32];
    if ((rc = writer_add_blob(t->w, BLOB_DATA, data, n, NULL, id, NULL)))
        return err_ctx(rc, "while storing %s", path);
    entry_t *e = &t->e[t->n];
    node_init(&e->node);
    e->path = strdup(path);
    e->node.name = strdup(base);
    if (!e->path || !e->node.name) {
        free(e->path);
        node_release(&e->node);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    e->node.type = NODE_FILE;
    e->node.mode = 0644;
    e->node.mtime_ns = e->node.ctime_ns = e->node.atime_ns = ctime_ns;
    e->node.size = n;
    e->node.nlink = 1;
    if ((rc = node_add_extent(&e->node, id, n, false))) {
        free(e->path);
        node_release(&e->node);
        return rc;
    }
    t->n++;
    return 0;
}

static int ent_cmp(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->path, ((const entry_t *)b)->path);
}

/* Length of the component of p starting at off (up to '/' or the end). */
static size_t comp_len(const char *p, size_t off)
{
    const char *s = strchr(p + off, '/');
    return s ? (size_t)(s - (p + off)) : strlen(p + off);
}

/* Entries [lo, hi) share the prefix of length off; store their directory tree. */
static int build(k8s_repotree_t *t, size_t lo, size_t hi, size_t off, int depth, uint8_t out[32])
{
    if (depth > 64)
        return err_set(COFFER_ELIMIT, "export paths nested too deep");
    tree_t tr;
    tree_init(&tr);
    buf_t b;
    buf_init(&b);
    int rc = 0;
    size_t i = lo;
    while (i < hi && !rc) {
        const char *p = t->e[i].path;
        size_t cl = comp_len(p, off);
        if (p[off + cl] == 0) {
            /* a file directly here */
            node_t n;
            if ((rc = node_copy(&n, &t->e[i].node)))
                break;
            rc = tree_add(&tr, &n);
            node_release(&n);
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < hi && strncmp(t->e[j].path + off, p + off, cl) == 0 &&
               t->e[j].path[off + cl] == '/')
            j++;
        node_t d;
        node_init(&d);
        d.type = NODE_DIR;
        d.mode = 0755;
        d.nlink = 1;
        if (!(d.name = strndup(p + off, cl))) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            break;
        }
        if (!(rc = node_name_valid(d.name, cl)) &&
            !(rc = build(t, i, j, off + cl + 1, depth + 1, d.subtree))) {
            t->dirs++;
            rc = tree_add(&tr, &d);
        }
        node_release(&d);
        i = j;
    }
    if (!rc && !(rc = tree_sort(&tr)) && !(rc = tree_encode(&tr, &b)))
        rc = writer_add_blob(t->w, BLOB_TREE, b.data, b.len, NULL, out, NULL);
    buf_release(&b);
    tree_release(&tr);
    return rc;
}

int k8s_repotree_finish(k8s_repotree_t *t, uint8_t out_root[32], uint64_t *out_files,
                        uint64_t *out_dirs)
{
    if (t->n > 1)
        qsort(t->e, t->n, sizeof *t->e, ent_cmp);
    for (size_t i = 1; i < t->n; i++)
        if (strcmp(t->e[i - 1].path, t->e[i].path) == 0)
            return err_set(COFFER_EINVAL, "two exported objects share the path %s", t->e[i].path);
    uint8_t root[32];
    int rc = build(t, 0, t->n, 0, 0, root);
    if (rc)
        return rc;
    memcpy(out_root, root, 32);
    if (out_files)
        *out_files = t->n;
    if (out_dirs)
        *out_dirs = t->dirs;
    return 0;
}
