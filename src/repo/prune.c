/*
 * prune.c -- two-phase prune (see prune.h, doc/format.md §11).
 *
 * Layer: repo. Safety argument, in short:
 *  - phase 1 condemns only packs that no snapshot needs (or whose live blobs were copied into
 *    new, indexed packs first);
 *  - writers that start after the condemned list exists never deduplicate against it
 *    (index_reserve treats condemned packs as absent), and writers alive at the mark are
 *    waited for: phase 2 runs only when none of them is alive;
 *  - phase 2 re-reads every snapshot and index and keeps any condemned pack that is still the
 *    only copy of a referenced blob; it writes the replacement index before deleting the
 *    segments it supersedes, and deletes packs last.
 * All times are the backend's (object mtimes, storage_now).
 */
#include "repo/prune.h"
#include "common/error.h"
#include "common/log.h"
#include "crypto/crypto.h"
#include "repo/condemned.h"
#include "repo/heartbeat.h"
#include "repo/idset.h"
#include "repo/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEGMENT_MAX_BLOBS 400000

/* ---- referenced blobs ---- */

static int collect_tree(repo_t *r, const uint8_t id[32], idset_t *trees, idset_t *blobs)
{
    bool added;
    int rc = idset_add(trees, id, &added);
    if (rc || !added)
        return rc;
    tree_t t;
    tree_init(&t);
    if ((rc = repo_load_tree(r, id, &t))) {
        char hex[65];
        hex_encode(id, 32, hex);
        return err_ctx(rc,
                       "tree %.16s cannot be read, so nothing is deleted (run `coffer "
                       "check`)",
                       hex);
    }
    for (size_t i = 0; i < t.n && !rc; i++) {
        const node_t *n = &t.nodes[i];
        if (n->type == NODE_DIR)
            rc = collect_tree(r, n->subtree, trees, blobs);
        else if (n->type == NODE_FILE)
            for (size_t k = 0; k < n->n_extents && !rc; k++)
                if (!n->extents[k].hole)
                    rc = idset_add(blobs, n->extents[k].id, NULL);
    }
    tree_release(&t);
    return rc;
}

int prune_collect_refs(repo_t *r, const snapshot_t *snaps, size_t n, idset_t *trees, idset_t *blobs)
{
    for (size_t i = 0; i < n; i++) {
        int rc = collect_tree(r, snaps[i].tree, trees, blobs);
        if (rc)
            return rc;
    }
    return 0;
}

/* Everything the snapshots reference into blobs (tree ids included; trees also into trees).
 * Lists the snapshots first, then (reload_index) re-reads the index, so a snapshot saved after
 * an earlier index load has its blobs in segments seen here. Any unreadable snapshot or tree
 * fails: nothing may be deleted on a partial view. */
static int referenced(repo_t *r, bool reload_index, snapshot_t **snaps, size_t *ns, idset_t *trees,
                      idset_t *blobs)
{
    size_t bad = 0;
    int rc = repo_list_snapshots(r, snaps, ns, &bad);
    if (rc)
        return rc;
    if (bad)
        return err_set(COFFER_ECORRUPT,
                       "%zu snapshot(s) cannot be read, so nothing is deleted "
                       "(run `coffer check`)",
                       bad);
    if ((reload_index && (rc = repo_load_index(r))) ||
        (rc = prune_collect_refs(r, *snaps, *ns, trees, blobs)))
        return rc;
    for (size_t i = 0; i < trees->cap; i++)
        if (trees->used[i] && (rc = idset_add(blobs, trees->slots[i], NULL)))
            return rc;
    return 0;
}

/* ---- sessions and lease ---- */

typedef struct sess_list {
    storage_t *st;
    int64_t now, stale;
    const uint8_t *self;
    uint8_t (*ids)[16];
    size_t n, cap;
} sess_list_t;

static int collect_alive(void *ud, const char *name, const storage_stat_t *st)
{
    sess_list_t *l = ud;
    uint8_t id[16];
    if (hex_decode(name + 9, id, 16))
        return 0;
    if (l->self && memcmp(id, l->self, 16) == 0)
        return 0;
    if (l->now - st->mtime_ns > l->stale)
        return 0; /* dead: no heartbeat for too long */
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        uint8_t(*ni)[16] = realloc(l->ids, nc * sizeof *ni);
        if (!ni)
            return err_set(COFFER_ENOMEM, "out of memory");
        l->ids = ni;
        l->cap = nc;
    }
    memcpy(l->ids[l->n++], id, 16);
    return 0;
}

static bool session_alive(storage_t *st, const uint8_t id[16], int64_t now)
{
    char hex[33], name[64];
    hex_encode(id, 16, hex);
    snprintf(name, sizeof name, "sessions/%s", hex);
    storage_stat_t s;
    if (storage_stat(st, name, &s)) {
        err_clear();
        return false;
    }
    return now - s.mtime_ns <= heartbeat_stale_ns();
}

static int take_lease(repo_t *r, writer_t *w, heartbeat_t **out)
{
    storage_t *st = repo_storage(r);
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc =
            heartbeat_start(st, writer_session(w), "maint/lease", ENV_LEASE, "prune", true, out);
        if (rc != COFFER_EEXIST)
            return rc;
        storage_stat_t ls;
        int64_t now;
        if (storage_stat(st, "maint/lease", &ls) || storage_now(st, &now))
            continue; /* vanished meanwhile: try again */
        if (now - ls.mtime_ns <= heartbeat_stale_ns())
            return err_set(COFFER_ELEASE,
                           "another prune holds the lease (maint/lease, refreshed %lld s ago): "
                           "wait for it to finish, or if it died, run `coffer unlock`",
                           (long long)((now - ls.mtime_ns) / 1000000000));
        log_warn("taking over a stale prune lease (last refreshed %lld s ago)",
                 (long long)((now - ls.mtime_ns) / 1000000000));
        if (storage_remove(st, "maint/lease") && err_code() != COFFER_ENOENT)
            return err_code();
        err_clear();
    }
    return err_set(COFFER_ELEASE, "could not take the prune lease: try again");
}

int prune_unlock(repo_t *r, bool force, bool *out_removed)
{
    storage_t *st = repo_storage(r);
    storage_stat_t ls;
    int64_t now;
    *out_removed = false;
    int rc = storage_stat(st, "maint/lease", &ls);
    if (rc == COFFER_ENOENT) {
        err_clear();
        return 0;
    }
    if (rc || (rc = storage_now(st, &now)))
        return rc;
    if (!force && now - ls.mtime_ns <= heartbeat_stale_ns())
        return err_set(COFFER_ELEASE,
                       "the prune lease was refreshed %lld s ago, so a prune is probably "
                       "running; use `coffer unlock --remove-all` if you are sure it is not",
                       (long long)((now - ls.mtime_ns) / 1000000000));
    rc = storage_remove(st, "maint/lease");
    if (rc == COFFER_ENOENT) {
        err_clear();
        return 0;
    }
    if (!rc)
        *out_removed = true;
    return rc;
}

/* ---- consolidated index ---- */

typedef struct pack_acc {
    pack_entry_t *e;
    size_t n, cap;
} pack_acc_t;

typedef struct gather {
    index_t *ix;
    pack_acc_t *acc; /* one per pack number */
    const idset_t *drop_packs;
    int rc;
} gather_t;

static int gather_entry(void *ud, const uint8_t id[32], const blob_loc_t *loc)
{
    gather_t *g = ud;
    if (loc->pack == INDEX_PACK_PENDING)
        return 0;
    pack_acc_t *a = &g->acc[loc->pack];
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        pack_entry_t *ne = realloc(a->e, nc * sizeof *ne);
        if (!ne)
            return err_set(COFFER_ENOMEM, "out of memory");
        a->e = ne;
        a->cap = nc;
    }
    pack_entry_t *e = &a->e[a->n++];
    e->type = loc->type;
    e->compressed = loc->compressed;
    memcpy(e->id, id, 32);
    e->offset = loc->offset;
    e->stored_len = loc->stored_len;
    e->raw_len = loc->raw_len;
    return 0;
}

/* Write index segments holding every entry of the loaded index except those in drop_packs;
 * the last segment supersedes every segment that was loaded. */
static int rewrite_index(repo_t *r, writer_t *w, const idset_t *drop_packs, uint64_t *out_n)
{
    index_t *ix = repo_index(r);
    size_t np = index_pack_count(ix);
    gather_t g = {.ix = ix, .acc = calloc(np ? np : 1, sizeof *g.acc)};
    idxseg_pack_t *ps = calloc(np ? np : 1, sizeof *ps);
    int rc = 0;
    if (!g.acc || !ps) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = index_foreach(ix, gather_entry, &g)))
        goto out;
    size_t n_sup;
    const uint8_t(*sup)[32] = repo_index_ids(r, &n_sup);
    size_t k = 0, blobs = 0;
    for (size_t p = 0; p < np; p++) {
        index_pack_t pk;
        if (!g.acc[p].n || !index_get_pack(ix, (uint32_t)p, &pk) || idset_has(drop_packs, pk.id))
            continue;
        memcpy(ps[k].id, pk.id, 32);
        memcpy(ps[k].session, pk.session, 16);
        ps[k].entries = g.acc[p].e;
        ps[k].n = g.acc[p].n;
        blobs += g.acc[p].n;
        k++;
        if (blobs >= SEGMENT_MAX_BLOBS) { /* an intermediate segment supersedes nothing */
            uint8_t id[32];
            if ((rc = writer_put_index(w, NULL, 0, ps, k, id)))
                goto out;
            k = 0;
            blobs = 0;
        }
    }
    uint8_t id[32];
    if ((rc = writer_put_index(w, sup, n_sup, ps, k, id)))
        goto out;
    /* the new segments are in place: the old ones can go */
    for (size_t i = 0; i < n_sup; i++) {
        char name[96];
        repo_obj_name("index", sup[i], name, sizeof name);
        int drc = storage_remove(repo_storage(r), name);
        if (drc && drc != COFFER_ENOENT)
            log_warn("could not remove superseded %s: %s", name, err_msg());
        err_clear();
    }
    *out_n = n_sup;
out:
    if (g.acc)
        for (size_t p = 0; p < np; p++)
            free(g.acc[p].e);
    free(g.acc);
    free(ps);
    return rc;
}

/* ---- phase 2 ---- */

typedef struct cond_names {
    char (*names)[96];
    size_t n, cap;
} cond_names_t;

static int collect_cond(void *ud, const char *name, const storage_stat_t *st)
{
    cond_names_t *c = ud;
    (void)st;
    if (strncmp(name, "maint/condemned-", 16) != 0)
        return 0;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        char(*nn)[96] = realloc(c->names, nc * sizeof *nn);
        if (!nn)
            return err_set(COFFER_ENOMEM, "out of memory");
        c->names = nn;
        c->cap = nc;
    }
    snprintf(c->names[c->n++], 96, "%s", name);
    return 0;
}

typedef struct need_ctx {
    index_t *ix;
    const idset_t *blobs;
    idset_t *needed; /* packs holding the only copy of a referenced blob */
    int rc;
} need_ctx_t;

static int mark_needed(void *ud, const uint8_t id[32], const blob_loc_t *loc)
{
    need_ctx_t *c = ud;
    index_pack_t pk;
    if (loc->pack == INDEX_PACK_PENDING || !idset_has(c->blobs, id) ||
        !index_get_pack(c->ix, loc->pack, &pk) || !(pk.flags & PACK_F_CONDEMNED))
        return 0;
    return idset_add(c->needed, pk.id, NULL);
}

static int sweep(repo_t *r, writer_t *w, condemned_t *const *lists, size_t nl,
                 const prune_opts_t *o, prune_stats_t *s)
{
    snapshot_t *snaps = NULL;
    size_t ns = 0;
    idset_t trees, blobs, needed, drop;
    idset_init(&trees);
    idset_init(&blobs);
    idset_init(&needed);
    idset_init(&drop);
    storage_t *st = repo_storage(r);
    uint64_t replaced = 0;
    int rc;
    if ((rc = referenced(r, true, &snaps, &ns, &trees, &blobs)))
        goto out;
    need_ctx_t nc = {.ix = repo_index(r), .blobs = &blobs, .needed = &needed};
    if ((rc = index_foreach(repo_index(r), mark_needed, &nc)))
        goto out;
    for (size_t l = 0; l < nl; l++)
        for (size_t i = 0; i < lists[l]->n_packs; i++) {
            if (idset_has(&needed, lists[l]->packs[i])) {
                s->packs_kept_referenced++;
                continue;
            }
            if ((rc = idset_add(&drop, lists[l]->packs[i], NULL)))
                goto out;
        }
    if (o->dry_run) {
        s->packs_deleted += drop.n;
        goto out;
    }
    if ((rc = rewrite_index(r, w, &drop, &replaced)))
        goto out;
    s->index_segments_replaced += replaced;
    for (size_t i = 0; i < drop.cap; i++) {
        if (!drop.used[i])
            continue;
        char name[96];
        storage_stat_t ps;
        repo_pack_name(drop.slots[i], name, sizeof name);
        uint64_t size = storage_stat(st, name, &ps) == 0 ? ps.size : 0;
        int drc = storage_remove(st, name);
        if (drc == 0) {
            s->packs_deleted++;
            s->bytes_deleted += size;
        } else if (drc != COFFER_ENOENT) {
            log_warn("could not remove %s: %s", name, err_msg());
        }
        err_clear();
    }
    for (size_t l = 0; l < nl; l++) {
        if (storage_remove(st, lists[l]->name) && err_code() != COFFER_ENOENT)
            log_warn("could not remove %s: %s", lists[l]->name, err_msg());
        err_clear();
        s->lists_swept++;
    }
    /* reload: the condemned flags of swept lists are gone */
    rc = repo_load_index(r);
out:
    repo_free_snapshots(snaps, ns);
    idset_release(&trees);
    idset_release(&blobs);
    idset_release(&needed);
    idset_release(&drop);
    return rc;
}

/* Phase 2 over every existing list whose marked sessions have ended. */
static int sweep_ready(repo_t *r, writer_t *w, const prune_opts_t *o, prune_stats_t *s)
{
    storage_t *st = repo_storage(r);
    cond_names_t cn = {0};
    condemned_t **ready = NULL;
    size_t nr = 0;
    int64_t now;
    int rc = storage_list(st, "maint/", collect_cond, &cn);
    if (rc || (rc = storage_now(st, &now)))
        goto out;
    ready = calloc(cn.n ? cn.n : 1, sizeof *ready);
    if (!ready) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cn.n; i++) {
        buf_t b;
        buf_init(&b);
        condemned_t *c = calloc(1, sizeof *c);
        if (!c) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            goto out;
        }
        condemned_init(c);
        rc = repo_get_sealed(r, cn.names[i], ENV_CONDEMNED, false, &b);
        if (!rc)
            rc = condemned_decode(b.data, b.len, cn.names[i], c);
        buf_release(&b);
        if (rc == COFFER_ENOENT) {
            err_clear();
            rc = 0;
            free(c);
            continue;
        }
        if (rc) {
            condemned_release(c);
            free(c);
            goto out;
        }
        snprintf(c->name, sizeof c->name, "%s", cn.names[i]);
        bool waiting = false;
        for (size_t k = 0; k < c->n_sessions && !waiting; k++)
            waiting = session_alive(st, c->sessions[k], now);
        if (waiting) {
            s->lists_waiting++;
            log_info("%s waits for a backup that was running at the mark", c->name);
            condemned_release(c);
            free(c);
            continue;
        }
        ready[nr++] = c;
    }
    if (nr)
        rc = sweep(r, w, ready, nr, o, s);
out:
    for (size_t i = 0; i < nr; i++) {
        condemned_release(ready[i]);
        free(ready[i]);
    }
    free(ready);
    free(cn.names);
    return rc;
}

/* ---- phase 1 ---- */

typedef struct usage {
    uint64_t used_bytes, blobs;
} usage_t;

typedef struct use_ctx {
    const idset_t *blobs;
    usage_t *u;
} use_ctx_t;

static int count_use(void *ud, const uint8_t id[32], const blob_loc_t *loc)
{
    use_ctx_t *c = ud;
    if (loc->pack != INDEX_PACK_PENDING && idset_has(c->blobs, id)) {
        c->u[loc->pack].used_bytes += loc->stored_len;
        c->u[loc->pack].blobs++;
    }
    return 0;
}

typedef struct pack_list {
    index_t *ix;
    uint8_t (*unindexed)[32];
    size_t n_unindexed, cap;
    uint64_t *sizes; /* per pack number */
    size_t np;
} pack_list_t;

static int list_pack(void *ud, const char *name, const storage_stat_t *st)
{
    pack_list_t *l = ud;
    uint8_t id[32];
    uint32_t no;
    const char *slash = strrchr(name, '/');
    if (!slash || hex_decode(slash + 1, id, 32))
        return 0;
    if (index_find_pack(l->ix, id, &no)) {
        index_pack_t pk;
        if (no < l->np && index_get_pack(l->ix, no, &pk) && !(pk.flags & PACK_F_CONDEMNED))
            l->sizes[no] = st->size;
        return 0;
    }
    if (l->n_unindexed == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        uint8_t(*nu)[32] = realloc(l->unindexed, nc * sizeof *nu);
        if (!nu)
            return err_set(COFFER_ENOMEM, "out of memory");
        l->unindexed = nu;
        l->cap = nc;
    }
    memcpy(l->unindexed[l->n_unindexed++], id, 32);
    return 0;
}

typedef struct repack_ctx {
    repo_t *r;
    writer_t *w;
    const idset_t *src; /* pack ids being repacked */
    const idset_t *blobs;
    index_t *ix;
    prune_stats_t *s;
    uint8_t (*todo)[32];
    uint8_t *types;
    size_t n, cap;
} repack_ctx_t;

static int list_repack(void *ud, const uint8_t id[32], const blob_loc_t *loc)
{
    repack_ctx_t *c = ud;
    index_pack_t pk;
    if (loc->pack == INDEX_PACK_PENDING || !idset_has(c->blobs, id) ||
        !index_get_pack(c->ix, loc->pack, &pk) || !idset_has(c->src, pk.id))
        return 0;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        uint8_t(*nt)[32] = realloc(c->todo, nc * sizeof *nt);
        uint8_t *ty = realloc(c->types, nc);
        if (nt)
            c->todo = nt;
        if (ty)
            c->types = ty;
        if (!nt || !ty)
            return err_set(COFFER_ENOMEM, "out of memory");
        c->cap = nc;
    }
    memcpy(c->todo[c->n], id, 32);
    c->types[c->n++] = loc->type;
    return 0;
}

int prune_run(repo_t *r, const prune_opts_t *o, prune_stats_t *out)
{
    prune_stats_t s = {0};
    writer_t *w = NULL;
    heartbeat_t *lease = NULL;
    snapshot_t *snaps = NULL;
    size_t ns = 0;
    idset_t trees, blobs, condemn, repack;
    idset_init(&trees);
    idset_init(&blobs);
    idset_init(&condemn);
    idset_init(&repack);
    usage_t *u = NULL;
    pack_list_t pl = {0};
    repack_ctx_t rc_ctx = {0};
    sess_list_t alive = {0};
    buf_t b, sealed;
    buf_init(&b);
    buf_init(&sealed);
    storage_t *st = repo_storage(r);
    double max_unused = o->max_unused > 0 ? o->max_unused : 0.2;
    int rc;

    writer_opts_t wo = {.purpose = "prune", .no_adopt = true};
    repo_set_strict(r, true); /* never decide deletions on a partial view */
    if ((rc = writer_open(r, &wo, &w)))
        goto out;
    if (!o->dry_run && (rc = take_lease(r, w, &lease)))
        goto out;
    /* temp files of writers that crashed long ago (never those of live writers: a live
     * writer touches its temp file far more often than twice the stale timeout) */
    if (!o->dry_run) {
        uint64_t removed = 0;
        if (storage_cleanup(st, 2 * heartbeat_stale_ns(), &removed))
            log_warn("%s", err_msg());
        else if (removed)
            log_info("removed %llu temp file(s) left by interrupted writers",
                     (unsigned long long)removed);
        err_clear();
    }
    /* phase 2 of earlier marks */
    if ((rc = sweep_ready(r, w, o, &s)))
        goto out;

    /* phase 1: what do the snapshots need? The index is reloaded after the snapshots are
     * listed: a backup that committed since the last load wrote its index segments before
     * its snapshot, so every listed snapshot's trees are then known. */
    if ((rc = referenced(r, true, &snaps, &ns, &trees, &blobs)))
        goto out;
    s.snapshots = ns;
    s.referenced_blobs = blobs.n;
    index_t *ix = repo_index(r);
    size_t np = index_pack_count(ix);
    u = calloc(np ? np : 1, sizeof *u);
    pl.ix = ix;
    pl.np = np;
    pl.sizes = calloc(np ? np : 1, sizeof *pl.sizes);
    if (!u || !pl.sizes) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    use_ctx_t uc = {.blobs = &blobs, .u = u};
    if ((rc = index_foreach(ix, count_use, &uc)) ||
        (rc = storage_list(st, "data/", list_pack, &pl)))
        goto out;
    for (size_t p = 0; p < np; p++) {
        index_pack_t pk;
        if (!index_get_pack(ix, (uint32_t)p, &pk) || (pk.flags & PACK_F_CONDEMNED) || !pl.sizes[p])
            continue;
        s.packs++;
        if (u[p].blobs == 0) {
            if ((rc = idset_add(&condemn, pk.id, NULL)))
                goto out;
        } else if ((double)(pl.sizes[p] -
                            (u[p].used_bytes < pl.sizes[p] ? u[p].used_bytes : pl.sizes[p])) >
                   max_unused * (double)pl.sizes[p]) {
            if ((rc = idset_add(&repack, pk.id, NULL)))
                goto out;
        }
    }
    for (size_t i = 0; i < pl.n_unindexed; i++)
        if ((rc = idset_add(&condemn, pl.unindexed[i], NULL)))
            goto out;
    s.packs += pl.n_unindexed;
    /* a lone partly used pack is not worth rewriting unless it is mostly empty */
    s.packs_repacked = repack.n;
    if (o->dry_run) {
        s.packs_condemned = condemn.n + repack.n;
        goto done;
    }
    if (repack.n) {
        rc_ctx = (repack_ctx_t){.r = r, .w = w, .src = &repack, .blobs = &blobs, .ix = ix, .s = &s};
        if ((rc = index_foreach(ix, list_repack, &rc_ctx)))
            goto out;
        /* make the old copies unusable for dedup, so the blobs are stored again */
        for (size_t p = 0; p < np; p++) {
            index_pack_t pk;
            if (index_get_pack(ix, (uint32_t)p, &pk) && idset_has(&repack, pk.id))
                index_set_pack_flags(ix, (uint32_t)p, pk.flags | PACK_F_CONDEMNED);
        }
        for (size_t i = 0; i < rc_ctx.n; i++) {
            if (o->stop && *o->stop) {
                rc = err_set(COFFER_EINTR, "prune interrupted: nothing was deleted");
                goto out;
            }
            buf_reset(&b);
            if ((rc = repo_read_blob(r, rc_ctx.types[i], rc_ctx.todo[i], &b)))
                goto out;
            uint8_t id[32];
            if ((rc = writer_add_blob(w, rc_ctx.types[i], b.data, b.len, rc_ctx.todo[i], id, NULL)))
                goto out;
            s.blobs_repacked++;
            s.bytes_repacked += b.len;
        }
        if ((rc = writer_flush(w)))
            goto out;
        for (size_t i = 0; i < repack.cap; i++)
            if (repack.used[i] && (rc = idset_add(&condemn, repack.slots[i], NULL)))
                goto out;
    }
    s.packs_condemned = condemn.n;
    if (condemn.n) {
        /* the mark: list, then the sessions alive now (ours excluded) */
        condemned_t c;
        condemned_init(&c);
        c.packs = malloc(condemn.n * 32);
        if (!c.packs) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < condemn.cap; i++)
            if (condemn.used[i])
                memcpy(c.packs[c.n_packs++], condemn.slots[i], 32);
        size_t nidx;
        const uint8_t(*idx)[32] = repo_index_ids(r, &nidx);
        c.indexes = (uint8_t(*)[32])idx;
        c.n_indexes = nidx;
        uint8_t cid[32];
        char cname[96];
        rc = crypto_random(cid, sizeof cid);
        {
            char hex[65];
            hex_encode(cid, 32, hex);
            snprintf(cname, sizeof cname, "maint/condemned-%s", hex);
        }
        if (!rc) {
            /* sessions are listed after the list is visible (doc/format.md §11); write a
             * placeholder first, then the final content naming the sessions */
            alive.st = st;
            alive.stale = heartbeat_stale_ns();
            alive.self = writer_session(w)->id;
            buf_reset(&b);
            if (!(rc = condemned_encode(&c, &b)) &&
                !(rc = envelope_seal(writer_session(w), ENV_CONDEMNED, NULL, b.data, b.len, true,
                                     &sealed)))
                rc = storage_put(st, cname, sealed.data, sealed.len, NULL);
        }
        if (!rc && !(rc = storage_now(st, &alive.now)))
            rc = storage_list(st, "sessions/", collect_alive, &alive);
        if (!rc && alive.n) {
            c.sessions = alive.ids;
            c.n_sessions = alive.n;
            buf_reset(&b);
            storage_put_opts_t ow = {.overwrite = true, .sync = true};
            if (!(rc = condemned_encode(&c, &b)) &&
                !(rc = envelope_seal(writer_session(w), ENV_CONDEMNED, NULL, b.data, b.len, true,
                                     &sealed)))
                rc = storage_put(st, cname, sealed.data, sealed.len, &ow);
            c.sessions = NULL;
            c.n_sessions = 0;
        }
        c.indexes = NULL;
        c.n_indexes = 0;
        condemned_release(&c);
        if (rc)
            goto out;
        if (alive.n == 0) {
            /* nobody could have picked up a condemned pack: sweep now */
            rc = sweep_ready(r, w, o, &s);
        } else {
            log_info("%zu backup(s) running: condemned packs are deleted by a later prune "
                     "once they finish",
                     alive.n);
            s.lists_waiting++;
        }
    }
done:
    *out = s;
out:
    heartbeat_stop(lease, true);
    writer_free(w);
    repo_free_snapshots(snaps, ns);
    idset_release(&trees);
    idset_release(&blobs);
    idset_release(&condemn);
    idset_release(&repack);
    free(u);
    free(pl.sizes);
    free(pl.unindexed);
    free(rc_ctx.todo);
    free(rc_ctx.types);
    free(alive.ids);
    buf_release(&b);
    buf_release(&sealed);
    return rc;
}
