/*
 * writer.c -- writer sessions (see writer.h).
 *
 * Layer: repo. Invariants:
 *  - a blob is reserved in the index (pending) before it is sealed, so two threads never store
 *    the same blob twice in one session;
 *  - a pack's entries become real index entries only after the pack object is stored;
 *  - an index segment lists only stored packs; a snapshot is saved only after writer_flush.
 * Per-thread zstd contexts and scratch buffers live in thread-local storage, freed at thread
 * exit through a pthread key destructor.
 */
#include "repo/writer.h"
#include "chunk/chunker.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "compress/compress.h"
#include "crypto/crypto.h"
#include "repo/heartbeat.h"
#include "repo/idxseg.h"
#include "repo/pack.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECKPOINT_NS (300ll * 1000000000)
#define CHECKPOINT_BYTES (1ull << 30)

typedef struct done_pack {
    uint8_t id[32];
    pack_entry_t *entries;
    size_t n;
} done_pack_t;

struct writer {
    repo_t *r;
    session_t session;
    heartbeat_t *hb;
    writer_stats_t stats;
    pthread_mutex_t pack_mu[2]; /* 0 data, 1 tree */
    packer_t packer[2];
    pthread_mutex_t mu; /* done list, checkpoints, sticky error */
    done_pack_t *done;
    size_t n_done, cap_done;
    uint64_t done_bytes;
    int64_t last_checkpoint;
    atomic_int failed; /* sticky error code, read without the lock */
    char (*stale)[64]; /* sessions/<id> of dead writers whose packs this one adopted */
    size_t n_stale;
};

/* ---- per-thread scratch ---- */

typedef struct scratch {
    compressor_t *comp;
    int level;
    buf_t z;
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    scratch_t *s = p;
    if (!s)
        return;
    compressor_free(s->comp);
    buf_release(&s->z);
    free(s);
}

static void scratch_key_init(void)
{
    pthread_key_create(&scratch_key, scratch_free);
}

static int get_scratch(int level, scratch_t **out)
{
    pthread_once(&scratch_once, scratch_key_init);
    scratch_t *s = pthread_getspecific(scratch_key);
    if (s && s->level != level) {
        compressor_free(s->comp);
        s->comp = NULL;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return err_set(COFFER_ENOMEM, "out of memory");
        pthread_setspecific(scratch_key, s);
    }
    if (!s->comp) {
        int rc = compressor_new(level, &s->comp);
        if (rc)
            return rc;
        s->level = level;
    }
    *out = s;
    return 0;
}

/* ---- adoption of unindexed packs ---- */

typedef struct adopt_ctx {
    writer_t *w;
    int rc;
} adopt_ctx_t;

static int read_pack_header(repo_t *r, const char *name, uint64_t size, uint8_t out_session[16],
                            pack_entry_t **out, size_t *out_n)
{
    buf_t tail, plain;
    buf_init(&tail);
    buf_init(&plain);
    uint64_t off;
    uint32_t len;
    int rc;
    if (size < 4)
        return err_set(COFFER_ECORRUPT, "pack %s is truncated", name);
    if ((rc = storage_get(repo_storage(r), name, size - 4, 4, &tail)))
        goto out;
    if (tail.len != 4) {
        rc = err_set(COFFER_ECORRUPT, "pack %s is truncated", name);
        goto out;
    }
    if ((rc = pack_header_locate(tail.data, size, name, &off, &len)))
        goto out;
    buf_reset(&tail);
    if ((rc = storage_get(repo_storage(r), name, off, len, &tail)))
        goto out;
    if (tail.len != len) {
        rc = err_set(COFFER_ECORRUPT, "pack %s is truncated", name);
        goto out;
    }
    if ((rc = envelope_open(repo_keyring(r), ENV_PACK_HEADER, NULL, tail.data, tail.len, name,
                            &plain)))
        goto out;
    memcpy(out_session, tail.data + 2, 16);
    rc = pack_header_decode(plain.data, plain.len, name, out, out_n);
    if (!rc) {
        /* every blob must lie before the header */
        for (size_t i = 0; i < *out_n; i++)
            if ((uint64_t)(*out)[i].offset + (*out)[i].stored_len > off) {
                free(*out);
                rc = err_set(COFFER_ECORRUPT, "pack %s: header points past the data", name);
                break;
            }
    }
out:
    buf_release(&tail);
    buf_release(&plain);
    return rc;
}

int writer_read_pack_header(repo_t *r, const char *name, uint64_t size, uint8_t out_session[16],
                            pack_entry_t **out, size_t *out_n)
{
    return read_pack_header(r, name, size, out_session, out, out_n);
}

static int add_done(writer_t *w, const uint8_t id[32], pack_entry_t *entries, size_t n,
                    uint64_t bytes)
{
    if (w->n_done == w->cap_done) {
        size_t nc = w->cap_done ? w->cap_done * 2 : 16;
        done_pack_t *nd = realloc(w->done, nc * sizeof *nd);
        if (!nd)
            return err_set(COFFER_ENOMEM, "out of memory");
        w->done = nd;
        w->cap_done = nc;
    }
    memcpy(w->done[w->n_done].id, id, 32);
    w->done[w->n_done].entries = entries;
    w->done[w->n_done].n = n;
    w->n_done++;
    w->done_bytes += bytes;
    return 0;
}

static int register_pack(writer_t *w, const uint8_t id[32], const uint8_t session[16],
                         const pack_entry_t *e, size_t n, uint32_t flags)
{
    index_t *ix = repo_index(w->r);
    uint32_t no;
    int rc = index_add_pack(ix, id, session, flags, &no);
    for (size_t i = 0; i < n && !rc; i++) {
        blob_loc_t loc = {.type = e[i].type,
                          .compressed = e[i].compressed,
                          .pack = no,
                          .offset = e[i].offset,
                          .stored_len = e[i].stored_len,
                          .raw_len = e[i].raw_len};
        rc = index_insert(ix, e[i].id, &loc);
    }
    return rc;
}

static int adopt_one(void *ud, const char *name, const storage_stat_t *st)
{
    adopt_ctx_t *ac = ud;
    writer_t *w = ac->w;
    uint8_t id[32], session[16];
    uint32_t no;
    const char *slash = strrchr(name, '/');
    if (!slash || hex_decode(slash + 1, id, 32))
        return 0;
    if (index_find_pack(repo_index(w->r), id, &no))
        return 0; /* indexed, or condemned */
    pack_entry_t *e = NULL;
    size_t n = 0;
    int rc = read_pack_header(w->r, name, st->size, session, &e, &n);
    if (rc) {
        log_warn("not reusing unindexed pack %s: %s", name, err_msg());
        err_clear();
        return 0;
    }
    bool tree = n && e[0].type == BLOB_TREE;
    rc = register_pack(w, id, session, e, n, tree ? PACK_F_TREE : 0);
    if (!rc) {
        pthread_mutex_lock(&w->mu);
        rc = add_done(w, id, e, n, 0);
        pthread_mutex_unlock(&w->mu);
    }
    if (rc) {
        free(e);
        return rc;
    }
    atomic_fetch_add(&w->stats.packs_adopted, 1);
    return 0;
}

/* ---- other sessions: is adoption needed? ---- */

typedef struct sess_scan {
    const char *self; /* our sessions/<id> */
    int64_t self_mtime;
    size_t others;
    char (*names)[64];
    int64_t *mtimes;
    size_t cap;
} sess_scan_t;

static int scan_session(void *ud, const char *name, const storage_stat_t *st)
{
    sess_scan_t *sc = ud;
    if (strcmp(name, sc->self) == 0) {
        sc->self_mtime = st->mtime_ns;
        return 0;
    }
    if (strlen(name) >= sizeof sc->names[0])
        return 0;
    if (sc->others == sc->cap) {
        size_t nc = sc->cap ? sc->cap * 2 : 8;
        char(*nn)[64] = realloc(sc->names, nc * sizeof *nn);
        if (nn)
            sc->names = nn;
        int64_t *nm = realloc(sc->mtimes, nc * sizeof *nm);
        if (nm)
            sc->mtimes = nm;
        if (!nn || !nm)
            return err_set(COFFER_ENOMEM, "out of memory");
        sc->cap = nc;
    }
    snprintf(sc->names[sc->others], sizeof sc->names[0], "%s", name);
    sc->mtimes[sc->others++] = st->mtime_ns;
    return 0;
}

/* A writer that ends normally indexes every pack it uploaded and then removes its session
 * object; one that crashed (or could not write its last index) leaves the object behind. So
 * unindexed packs can only exist while another session object exists, and listing data/
 * (one paged request per 1000 packs on object stores) is needed only then. Afterwards the
 * dead sessions among them are remembered, to be removed once the adopted packs are indexed. */
static int adopt_if_needed(writer_t *w, const char *self)
{
    storage_t *st = repo_storage(w->r);
    sess_scan_t sc = {.self = self};
    int rc = storage_list(st, "sessions/", scan_session, &sc);
    if (!rc && sc.others) {
        adopt_ctx_t ac = {.w = w};
        rc = storage_list(st, "data/", adopt_one, &ac);
    }
    if (!rc && sc.others && sc.self_mtime) {
        int64_t stale = heartbeat_stale_ns();
        for (size_t i = 0; i < sc.others; i++) {
            if (sc.self_mtime - sc.mtimes[i] <= stale)
                continue; /* alive, or died too recently to tell */
            memmove(sc.names[w->n_stale++], sc.names[i], sizeof sc.names[0]);
        }
        w->stale = sc.names;
        sc.names = NULL;
    }
    free(sc.names);
    free(sc.mtimes);
    if (!rc && w->stats.packs_adopted)
        log_info("reusing %llu pack(s) left by an interrupted backup",
                 (unsigned long long)w->stats.packs_adopted);
    return rc;
}

int writer_open(repo_t *r, const writer_opts_t *o, writer_t **out)
{
    writer_t *w = calloc(1, sizeof *w);
    char name[96];
    int rc;
    if (!w)
        return err_set(COFFER_ENOMEM, "out of memory");
    w->r = r;
    for (int i = 0; i < 2; i++) {
        pthread_mutex_init(&w->pack_mu[i], NULL);
        packer_init(&w->packer[i]);
    }
    pthread_mutex_init(&w->mu, NULL);
    w->last_checkpoint = time_monotonic_ns();
    if ((rc = session_start(repo_keyring(r), &w->session)))
        goto fail;
    char hex[33];
    hex_encode(w->session.id, 16, hex);
    snprintf(name, sizeof name, "sessions/%s", hex);
    if ((rc = heartbeat_start(repo_storage(r), &w->session, name, ENV_SESSION,
                              o && o->purpose ? o->purpose : "backup", true, &w->hb)))
        goto fail;
    if ((rc = repo_load_index(r)))
        goto fail;
    if (!(o && o->no_adopt) && (rc = adopt_if_needed(w, name)))
        goto fail;
    *out = w;
    return 0;
fail:
    writer_free(w);
    return rc;
}

session_t *writer_session(writer_t *w)
{
    return &w->session;
}

const writer_stats_t *writer_stats(writer_t *w)
{
    return &w->stats;
}

static int set_failed(writer_t *w, int rc)
{
    int none = 0;
    atomic_compare_exchange_strong(&w->failed, &none, rc); /* the first error sticks */
    return rc;
}

/* Write an index segment for the done list; caller holds w->mu. */
static int checkpoint_locked(writer_t *w)
{
    if (w->n_done == 0)
        return 0;
    idxseg_pack_t *ps = calloc(w->n_done, sizeof *ps);
    buf_t plain, sealed;
    buf_init(&plain);
    buf_init(&sealed);
    int rc;
    if (!ps)
        return err_set(COFFER_ENOMEM, "out of memory");
    for (size_t i = 0; i < w->n_done; i++) {
        index_pack_t p;
        uint32_t no;
        memcpy(ps[i].id, w->done[i].id, 32);
        if (index_find_pack(repo_index(w->r), w->done[i].id, &no) &&
            index_get_pack(repo_index(w->r), no, &p))
            memcpy(ps[i].session, p.session, 16);
        else
            memcpy(ps[i].session, w->session.id, 16);
        ps[i].entries = w->done[i].entries;
        ps[i].n = w->done[i].n;
    }
    uint8_t id[32];
    char name[96];
    if ((rc = idxseg_encode(NULL, 0, ps, w->n_done, &plain)) ||
        (rc = envelope_seal(&w->session, ENV_INDEX, NULL, plain.data, plain.len, true, &sealed)))
        goto out;
    crypto_sha256(sealed.data, sealed.len, id);
    repo_obj_name("index", id, name, sizeof name);
    if ((rc = storage_put(repo_storage(w->r), name, sealed.data, sealed.len, NULL)))
        goto out;
    for (size_t i = 0; i < w->n_done; i++)
        free(w->done[i].entries);
    w->n_done = 0;
    w->done_bytes = 0;
    w->last_checkpoint = time_monotonic_ns();
out:
    free(ps);
    buf_release(&plain);
    buf_release(&sealed);
    return rc;
}

int writer_checkpoint(writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    int rc = checkpoint_locked(w);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Finish and store a detached pack; register its blobs. */
static int upload_pack(writer_t *w, packer_t *p)
{
    uint8_t id[32];
    uint64_t bytes = p->len;
    int rc = packer_finish(p, &w->session, id);
    if (rc)
        return rc;
    bool tree = p->n && p->entries[0].type == BLOB_TREE;
    if ((rc = register_pack(w, id, w->session.id, p->entries, p->n, tree ? PACK_F_TREE : 0)))
        return rc;
    atomic_fetch_add(&w->stats.packs_written, 1);
    pthread_mutex_lock(&w->mu);
    rc = add_done(w, id, p->entries, p->n, bytes);
    if (!rc) {
        p->entries = NULL; /* ownership moved to the done list */
        p->n = p->cap = 0;
        if (w->done_bytes >= CHECKPOINT_BYTES ||
            time_monotonic_ns() - w->last_checkpoint >= CHECKPOINT_NS)
            rc = checkpoint_locked(w);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int writer_add_blob(writer_t *w, uint8_t type, const void *data, size_t n, const uint8_t *id,
                    uint8_t out_id[32], bool *out_added)
{
    uint8_t bid[32];
    bool reserved = false;
    scratch_t *sc = NULL;
    int rc;
    int failed = atomic_load(&w->failed);
    if (failed)
        return err_set(failed, "an earlier write of this session failed");
    if (n > INDEX_RAW_MAX)
        return err_set(COFFER_ELIMIT, "blob of %zu bytes is too large", n);
    if (id)
        memcpy(bid, id, 32);
    else if ((rc = repo_blob_id(w->r, type, data, n, bid)))
        return rc;
    if ((rc = index_reserve(repo_index(w->r), bid, type, &reserved)))
        return rc;
    if (!reserved) {
        memcpy(out_id, bid, 32);
        if (out_added)
            *out_added = false;
        return 0;
    }
    bool compressed = false;
    const void *payload = data;
    size_t plen = n;
    if ((rc = get_scratch(repo_params(w->r)->compression, &sc)))
        goto fail;
    if (repo_params(w->r)->compression > 0 && n > 0) {
        if ((rc = compressor_run(sc->comp, data, n, &sc->z, &compressed)))
            goto fail;
        if (compressed) {
            payload = sc->z.data;
            plen = sc->z.len;
        }
    }
    /* Seal and stream into the pack under the packer lock: AES-GCM runs at several GB/s, and
     * the pack goes to a temp file (local driver), so no pack is held in memory. */
    int which = type == BLOB_TREE ? 1 : 0;
    packer_t full;
    bool have_full = false;
    size_t sealed_len = plen + BLOB_OVERHEAD;
    pthread_mutex_lock(&w->pack_mu[which]);
    packer_t *pk = &w->packer[which];
    rc = packer_add_sealed(pk, repo_storage(w->r), &w->session, type, bid, compressed, (uint32_t)n,
                           payload, plen);
    if (!rc && (pk->len >= repo_params(w->r)->pack_size || pk->n >= PACK_HEADER_MAX_ENTRIES)) {
        full = *pk;
        packer_init(pk);
        have_full = true;
    }
    pthread_mutex_unlock(&w->pack_mu[which]);
    if (rc)
        goto fail;
    atomic_fetch_add(&w->stats.blobs_added, 1);
    atomic_fetch_add(&w->stats.bytes_added, n);
    atomic_fetch_add(&w->stats.bytes_stored, sealed_len);
    memcpy(out_id, bid, 32);
    if (out_added)
        *out_added = true;
    if (have_full) {
        rc = upload_pack(w, &full);
        packer_release(&full);
        if (rc)
            return set_failed(w, rc);
    }
    return 0;
fail:
    index_unreserve(repo_index(w->r), bid);
    return set_failed(w, rc);
}

int writer_flush(writer_t *w)
{
    int failed = atomic_load(&w->failed);
    if (failed)
        return err_set(failed, "an earlier write of this session failed");
    for (int i = 0; i < 2; i++) {
        packer_t p;
        pthread_mutex_lock(&w->pack_mu[i]);
        p = w->packer[i];
        packer_init(&w->packer[i]);
        pthread_mutex_unlock(&w->pack_mu[i]);
        int rc = p.n ? upload_pack(w, &p) : 0;
        packer_release(&p);
        if (rc)
            return set_failed(w, rc);
    }
    return writer_checkpoint(w);
}

int writer_put_index(writer_t *w, const uint8_t (*supersedes)[32], size_t n_sup,
                     const idxseg_pack_t *packs, size_t n_packs, uint8_t out_id[32])
{
    buf_t plain, sealed;
    buf_init(&plain);
    buf_init(&sealed);
    char name[96];
    int rc;
    if ((rc = idxseg_encode(supersedes, n_sup, packs, n_packs, &plain)) ||
        (rc = envelope_seal(&w->session, ENV_INDEX, NULL, plain.data, plain.len, true, &sealed)))
        goto out;
    crypto_sha256(sealed.data, sealed.len, out_id);
    repo_obj_name("index", out_id, name, sizeof name);
    rc = storage_put(repo_storage(w->r), name, sealed.data, sealed.len, NULL);
out:
    buf_release(&plain);
    buf_release(&sealed);
    return rc;
}

int writer_save_snapshot(writer_t *w, snapshot_t *s)
{
    buf_t plain, sealed;
    buf_init(&plain);
    buf_init(&sealed);
    char name[96];
    int rc;
    if ((rc = heartbeat_check(w->hb)) || (rc = snapshot_encode(s, &plain)) ||
        (rc = envelope_seal(&w->session, ENV_SNAPSHOT, NULL, plain.data, plain.len, true, &sealed)))
        goto out;
    crypto_sha256(sealed.data, sealed.len, s->id);
    repo_obj_name("snapshots", s->id, name, sizeof name);
    rc = storage_put(repo_storage(w->r), name, sealed.data, sealed.len, NULL);
out:
    buf_release(&plain);
    buf_release(&sealed);
    return rc;
}

void writer_free(writer_t *w)
{
    if (!w)
        return;
    /* Packs uploaded since the last index segment: index them now if possible. If that
     * fails, the session object stays behind as the sign for the next writer to adopt them. */
    pthread_mutex_lock(&w->mu);
    if (w->n_done && w->hb && heartbeat_check(w->hb) == 0 && checkpoint_locked(w))
        log_warn("could not index the last uploaded packs: %s; the next backup adopts them",
                 err_msg());
    bool all_indexed = w->n_done == 0;
    pthread_mutex_unlock(&w->mu);
    heartbeat_stop(w->hb, all_indexed);
    for (size_t i = 0; all_indexed && i < w->n_stale; i++) {
        int rc = storage_remove(repo_storage(w->r), w->stale[i]);
        if (rc && rc != COFFER_ENOENT)
            log_debug("could not remove dead session %s: %s", w->stale[i], err_msg());
        err_clear();
    }
    free(w->stale);
    for (int i = 0; i < 2; i++) {
        packer_release(&w->packer[i]);
        pthread_mutex_destroy(&w->pack_mu[i]);
    }
    for (size_t i = 0; i < w->n_done; i++)
        free(w->done[i].entries);
    free(w->done);
    pthread_mutex_destroy(&w->mu);
    session_wipe(&w->session);
    free(w);
}
