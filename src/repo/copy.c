/*
 * copy.c -- copy snapshots between repositories without re-chunking (copy.h).
 *
 * Layer: repo. A directory is copied by submitting the data blobs its files need to the pool,
 * descending into its subdirectories meanwhile, then waiting for its own blobs (a batch per
 * directory) and storing its rewritten tree. A tree is released only after its batch is done,
 * because the workers write target ids straight into its nodes' extents.
 * Invariants: a target id is learned only from a blob stored through the writer (which
 * dedups against the target's index) or from the pair, whose trees the target already holds;
 * the id maps are guarded by one mutex.
 */
#include "repo/copy.h"

#include "common/error.h"
#include "common/log.h"
#include "common/workq.h"
#include "repo/idmap.h"
#include "repo/tree.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_PER_THREAD 4

struct copier {
    repo_t *src, *dst;
    writer_t *w;
    copy_opts_t o;
    workq_t *q;
    pthread_mutex_t mu; /* guards blobs and trees */
    idmap_t blobs;      /* source data blob id -> target id */
    idmap_t trees;      /* source tree id -> target tree id */
    copy_stats_t stats;
};

typedef struct batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending;
    int rc; /* first error */
    char msg[512];
} batch_t;

typedef struct blob_job {
    copier_t *c;
    batch_t *b;
    uint8_t *slot; /* the extent id: source id in, target id out */
    uint64_t len;
} blob_job_t;

static bool stopped(const copier_t *c)
{
    return c->o.stop && *c->o.stop;
}

static void map_put(copier_t *c, idmap_t *m, const uint8_t *k, const uint8_t *v, int *rc)
{
    pthread_mutex_lock(&c->mu);
    int r = idmap_put(m, k, v);
    pthread_mutex_unlock(&c->mu);
    if (r && !*rc)
        *rc = r;
}

static bool map_get(copier_t *c, idmap_t *m, const uint8_t *k, uint8_t *out)
{
    pthread_mutex_lock(&c->mu);
    bool found = idmap_get(m, k, out);
    pthread_mutex_unlock(&c->mu);
    return found;
}

static void batch_done(batch_t *b, int rc)
{
    pthread_mutex_lock(&b->mu);
    if (rc && !b->rc) {
        b->rc = rc;
        snprintf(b->msg, sizeof b->msg, "%s", err_msg());
    }
    if (--b->pending == 0)
        pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void blob_job_run(void *arg)
{
    blob_job_t *j = arg;
    copier_t *c = j->c;
    buf_t data;
    buf_init(&data);
    uint8_t src_id[32], dst_id[32];
    memcpy(src_id, j->slot, 32);
    int rc = 0;
    if (stopped(c)) {
        rc = err_set(COFFER_EINTR, "interrupted");
        goto out;
    }
    if (!map_get(c, &c->blobs, src_id, dst_id)) {
        if ((rc = repo_read_blob(c->src, BLOB_DATA, src_id, &data)))
            goto out;
        if (data.len != j->len) {
            char hex[65];
            hex_encode(src_id, 32, hex);
            rc = err_set(COFFER_ECORRUPT,
                         "data blob %s has %zu bytes but its file says %llu: run `coffer "
                         "check --read-data` on the source repository",
                         hex, data.len, (unsigned long long)j->len);
            goto out;
        }
        if ((rc = writer_add_blob(c->w, BLOB_DATA, data.data, data.len, NULL, dst_id, NULL)))
            goto out;
        atomic_fetch_add(&c->stats.blobs_read, 1);
        map_put(c, &c->blobs, src_id, dst_id, &rc);
    } else {
        atomic_fetch_add(&c->stats.blobs_mapped, 1);
    }
    if (!rc) {
        memcpy(j->slot, dst_id, 32);
        if (c->o.bytes_done)
            atomic_fetch_add(c->o.bytes_done, j->len);
    }
out:
    buf_release(&data);
    batch_done(j->b, rc);
    free(j);
}

static int submit_blob(copier_t *c, batch_t *b, node_extent_t *e)
{
    uint8_t dst_id[32];
    if (map_get(c, &c->blobs, e->id, dst_id)) {
        memcpy(e->id, dst_id, 32);
        atomic_fetch_add(&c->stats.blobs_mapped, 1);
        if (c->o.bytes_done)
            atomic_fetch_add(c->o.bytes_done, e->len);
        return 0;
    }
    blob_job_t *j = malloc(sizeof *j);
    if (!j)
        return err_set(COFFER_ENOMEM, "out of memory");
    *j = (blob_job_t){.c = c, .b = b, .slot = e->id, .len = e->len};
    pthread_mutex_lock(&b->mu);
    b->pending++;
    pthread_mutex_unlock(&b->mu);
    int rc = workq_submit(c->q, blob_job_run, j);
    if (rc) {
        batch_done(b, 0);
        free(j);
    }
    return rc;
}

/* The pair's file has the same content layout: learn its source -> target ids. */
static int learn_file(copier_t *c, const node_t *on, const node_t *dn)
{
    int rc = 0;
    if (on->n_extents != dn->n_extents)
        return 0;
    for (size_t i = 0; i < on->n_extents && !rc; i++) {
        const node_extent_t *a = &on->extents[i], *b = &dn->extents[i];
        if (a->hole || b->hole || a->len != b->len)
            return 0;
    }
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < on->n_extents && !rc; i++)
        rc = idmap_put(&c->blobs, on->extents[i].id, dn->extents[i].id);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Load a pair's tree, quietly giving up on it (the copy then reads the data) if it fails. */
static bool load_pair_tree(repo_t *r, const uint8_t *id, const char *which, tree_t *t)
{
    if (!id)
        return false;
    int rc = repo_load_tree(r, id, t);
    if (rc) {
        log_debug("copy: not using the %s tree of the earlier copy: %s", which, err_msg());
        tree_release(t);
        tree_init(t);
        return false;
    }
    return true;
}

static int copy_tree(copier_t *c, const uint8_t src_id[32], const uint8_t *osrc,
                     const uint8_t *odst, uint8_t out_id[32]);

static int copy_children(copier_t *c, tree_t *t, const tree_t *ot, const tree_t *dt, batch_t *b)
{
    int rc = 0;
    /* Files first, so their blobs are in flight while the subdirectories are walked. */
    for (size_t i = 0; i < t->n && !rc; i++) {
        node_t *n = &t->nodes[i];
        if (n->type != NODE_FILE)
            continue;
        const node_t *on = ot ? tree_find(ot, n->name) : NULL;
        const node_t *dn = dt ? tree_find(dt, n->name) : NULL;
        if (on && dn && on->type == NODE_FILE && dn->type == NODE_FILE &&
            (rc = learn_file(c, on, dn)))
            break;
        for (size_t k = 0; k < n->n_extents && !rc; k++) {
            if (stopped(c))
                rc = err_set(COFFER_EINTR, "interrupted");
            else if (!n->extents[k].hole)
                rc = submit_blob(c, b, &n->extents[k]);
        }
    }
    for (size_t i = 0; i < t->n && !rc; i++) {
        node_t *n = &t->nodes[i];
        if (n->type != NODE_DIR)
            continue;
        const node_t *on = ot ? tree_find(ot, n->name) : NULL;
        const node_t *dn = dt ? tree_find(dt, n->name) : NULL;
        bool pair = on && dn && on->type == NODE_DIR && dn->type == NODE_DIR;
        uint8_t sub[32];
        memcpy(sub, n->subtree, 32);
        rc = copy_tree(c, sub, pair ? on->subtree : NULL, pair ? dn->subtree : NULL, n->subtree);
    }
    return rc;
}

static int copy_tree(copier_t *c, const uint8_t src_id[32], const uint8_t *osrc,
                     const uint8_t *odst, uint8_t out_id[32])
{
    uint8_t mapped[32];
    if (map_get(c, &c->trees, src_id, mapped)) {
        memcpy(out_id, mapped, 32);
        atomic_fetch_add(&c->stats.trees_mapped, 1);
        return 0;
    }
    int rc = 0;
    if (osrc && odst && memcmp(src_id, osrc, 32) == 0) {
        map_put(c, &c->trees, src_id, odst, &rc);
        if (!rc) {
            memcpy(out_id, odst, 32);
            atomic_fetch_add(&c->stats.trees_mapped, 1);
        }
        return rc;
    }
    if (stopped(c))
        return err_set(COFFER_EINTR, "interrupted");

    tree_t t, ot, dt;
    tree_init(&t);
    tree_init(&ot);
    tree_init(&dt);
    buf_t enc;
    buf_init(&enc);
    batch_t b = {.pending = 0};
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    uint8_t dst_id[32];

    if ((rc = repo_load_tree(c->src, src_id, &t)))
        goto out;
    bool pair =
        load_pair_tree(c->src, osrc, "source", &ot) && load_pair_tree(c->dst, odst, "target", &dt);
    rc = copy_children(c, &t, pair ? &ot : NULL, pair ? &dt : NULL, &b);
    /* Wait for this directory's blobs even after an error: the workers write into t. */
    pthread_mutex_lock(&b.mu);
    while (b.pending)
        pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);
    if (!rc && b.rc)
        rc = err_set(b.rc, "%s", b.msg);
    if (rc)
        goto out;
    if ((rc = tree_encode(&t, &enc)) ||
        (rc = writer_add_blob(c->w, BLOB_TREE, enc.data, enc.len, NULL, dst_id, NULL)))
        goto out;
    atomic_fetch_add(&c->stats.trees_written, 1);
    map_put(c, &c->trees, src_id, dst_id, &rc);
    if (!rc)
        memcpy(out_id, dst_id, 32);
out:
    buf_release(&enc);
    tree_release(&t);
    tree_release(&ot);
    tree_release(&dt);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    return rc;
}

int copier_new(repo_t *src, repo_t *dst, writer_t *w, const copy_opts_t *o, copier_t **out)
{
    copier_t *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(COFFER_ENOMEM, "out of memory");
    c->src = src;
    c->dst = dst;
    c->w = w;
    if (o)
        c->o = *o;
    int threads = c->o.threads > 0 ? c->o.threads : workq_cpus();
    pthread_mutex_init(&c->mu, NULL);
    idmap_init(&c->blobs);
    idmap_init(&c->trees);
    int rc = workq_new(threads, (size_t)threads * QUEUE_PER_THREAD, &c->q);
    if (rc) {
        copier_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void copier_free(copier_t *c)
{
    if (!c)
        return;
    workq_free(c->q);
    idmap_release(&c->blobs);
    idmap_release(&c->trees);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const copy_stats_t *copier_stats(const copier_t *c)
{
    return &c->stats;
}

int copier_snapshot(copier_t *c, const snapshot_t *s, const snapshot_t *pair_src,
                    const snapshot_t *pair_dst, const uint8_t *parent_dst, snapshot_t *out_snap)
{
    buf_t enc;
    buf_init(&enc);
    snapshot_t n;
    snapshot_init(&n);
    uint8_t tree[32];
    bool pair = pair_src && pair_dst;
    /* A deep copy of every field through the codec, so fields added later are kept too. */
    int rc = snapshot_encode(s, &enc);
    if (!rc)
        rc = snapshot_decode(enc.data, enc.len, "the snapshot being copied", &n);
    if (!rc)
        rc =
            copy_tree(c, s->tree, pair ? pair_src->tree : NULL, pair ? pair_dst->tree : NULL, tree);
    if (rc) {
        char hex[65];
        hex_encode(s->id, 32, hex);
        rc = err_ctx(rc, "while copying snapshot %.8s", hex);
        goto out;
    }
    memcpy(n.tree, tree, 32);
    n.has_parent = parent_dst != NULL;
    if (parent_dst)
        memcpy(n.parent, parent_dst, 32);
    n.has_original = true;
    memcpy(n.original, s->has_original ? s->original : s->id, 32);
    memset(n.id, 0, sizeof n.id);
    *out_snap = n;
    snapshot_init(&n);
out:
    snapshot_release(&n);
    buf_release(&enc);
    return rc;
}
