/*
 * check.c -- repository verification (see check.h, doc/format.md).
 *
 * Layer: repo. Order: key slots, maint/ and sessions/ (informational), index segments (each
 * read, hash-checked, decrypted and decoded on its own so one damaged segment hides nothing
 * else), packs in data/ against the index, optionally whole packs read and verified by a
 * worker pool, then every snapshot and every tree reachable from it.
 *
 * Invariants:
 *  - damage is a finding, never an early return; only ENOMEM, EINTR and a failed listing
 *    stop the check;
 *  - each damaged object gets exactly one finding; a blob known to be lost maps to the finding
 *    of the object that lost it (bad_blobs), so snapshots are attributed to that finding;
 *  - the tree walk visits each tree once; per tree it memoizes the set of findings reachable
 *    below it, so attributing damage to snapshots costs one walk in total;
 *  - a worker writes only its own pack's result fields; the main thread reads them after
 *    workq_wait.
 */
#include "repo/check.h"
#include "common/error.h"
#include "common/workq.h"
#include "compress/compress.h"
#include "crypto/crypto.h"
#include "repo/condemned.h"
#include "repo/heartbeat.h"
#include "repo/idxseg.h"
#include "repo/pack.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_LEN 96
#define MSG_MAX 1024
#define TREE_DEPTH_MAX 4096
#define NO_FINDING UINT32_MAX
#define PACK_MIN_TAIL (4 + ENVELOPE_OVERHEAD + 6) /* length + smallest sealed header */

/* ---- small containers ---- */

/* Open addressing map from a 32-byte id (uniformly random: its first bytes are the hash) to
 * a uint32 value. */
typedef struct idmap {
    uint8_t (*keys)[32];
    uint32_t *vals;
    uint8_t *used;
    size_t cap, n;
} idmap_t;

static uint64_t id_hash(const uint8_t id[32])
{
    uint64_t h;
    memcpy(&h, id, sizeof h);
    return h;
}

static void idmap_release(idmap_t *m)
{
    free(m->keys);
    free(m->vals);
    free(m->used);
    memset(m, 0, sizeof *m);
}

static bool idmap_get(const idmap_t *m, const uint8_t id[32], uint32_t *out)
{
    if (!m->cap)
        return false;
    for (size_t i = id_hash(id) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->used[i])
            return false;
        if (memcmp(m->keys[i], id, 32) == 0) {
            if (out)
                *out = m->vals[i];
            return true;
        }
    }
}

static void idmap_place(idmap_t *m, const uint8_t id[32], uint32_t v)
{
    size_t i = id_hash(id) & (m->cap - 1);
    while (m->used[i] && memcmp(m->keys[i], id, 32) != 0)
        i = (i + 1) & (m->cap - 1);
    if (!m->used[i])
        m->n++;
    m->used[i] = 1;
    memcpy(m->keys[i], id, 32);
    m->vals[i] = v;
}

/* Insert or replace. */
static int idmap_put(idmap_t *m, const uint8_t id[32], uint32_t v)
{
    if ((m->n + 1) * 10 > m->cap * 7) {
        idmap_t g = {0};
        g.cap = m->cap ? m->cap * 2 : 256;
        g.keys = malloc(g.cap * sizeof *g.keys);
        g.vals = malloc(g.cap * sizeof *g.vals);
        g.used = calloc(g.cap, 1);
        if (!g.keys || !g.vals || !g.used) {
            idmap_release(&g);
            return err_set(COFFER_ENOMEM, "out of memory checking the repository");
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->used[i])
                idmap_place(&g, m->keys[i], m->vals[i]);
        idmap_release(m);
        *m = g;
    }
    idmap_place(m, id, v);
    return 0;
}

/* A sorted set of finding numbers. */
typedef struct uset {
    uint32_t *v;
    size_t n, cap;
} uset_t;

static int uset_add(uset_t *s, uint32_t x)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n && s->v[lo] == x)
        return 0;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 4;
        uint32_t *nv = realloc(s->v, nc * sizeof *nv);
        if (!nv)
            return err_set(COFFER_ENOMEM, "out of memory checking the repository");
        s->v = nv;
        s->cap = nc;
    }
    memmove(s->v + lo + 1, s->v + lo, (s->n - lo) * sizeof *s->v);
    s->v[lo] = x;
    s->n++;
    return 0;
}

/* ---- name lists ---- */

typedef struct name_list {
    char (*names)[NAME_LEN];
    int64_t *mtimes;
    uint64_t *sizes;
    size_t n, cap;
} name_list_t;

static int collect(void *ud, const char *name, const storage_stat_t *st)
{
    name_list_t *l = ud;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char(*nn)[NAME_LEN] = realloc(l->names, nc * sizeof *nn);
        if (nn)
            l->names = nn;
        int64_t *nm = nn ? realloc(l->mtimes, nc * sizeof *nm) : NULL;
        if (nm)
            l->mtimes = nm;
        uint64_t *nz = nm ? realloc(l->sizes, nc * sizeof *nz) : NULL;
        if (!nz)
            return err_set(COFFER_ENOMEM, "out of memory listing the repository");
        l->sizes = nz;
        l->cap = nc;
    }
    snprintf(l->names[l->n], NAME_LEN, "%s", name);
    l->mtimes[l->n] = st ? st->mtime_ns : 0;
    l->sizes[l->n] = st ? st->size : 0;
    l->n++;
    return 0;
}

static void name_list_release(name_list_t *l)
{
    free(l->names);
    free(l->mtimes);
    free(l->sizes);
    memset(l, 0, sizeof *l);
}

/* ---- state ---- */

typedef struct cpack {
    uint8_t id[32];
    uint8_t session[16];
    pack_entry_t *entries; /* owned copy from the index segment that lists the pack */
    size_t n;
    size_t seg; /* the segment that lists it (position in ctx.segs) */
    uint64_t max_end;
    bool present;
    uint64_t size;
    bool selected; /* read-data */
    /* problems, written by the structure pass or by the one worker reading this pack */
    buf_t problems; /* "; "-joined clauses */
    bool all_lost;  /* missing: every blob is lost */
    uint8_t (*bad)[32];
    size_t n_bad, cap_bad;
    char *first_bad_msg;
    bool read;
} cpack_t;

typedef struct ctx {
    repo_t *r;
    storage_t *st;
    const check_opts_t *o;
    check_report_t *rep;
    /* index segments */
    char (*segs)[NAME_LEN];
    size_t n_segs, cap_segs;
    bool *seg_ok;
    bool *seg_sup; /* superseded by a readable segment: readers ignore it */
    size_t n_bad_segs;
    uint8_t (*sup)[32];
    size_t n_sup, cap_sup;
    size_t cur_seg;
    /* packs listed by readable, non-superseded segments, sorted by id */
    cpack_t *packs;
    size_t n_packs, cap_packs;
    uint32_t *ixmap; /* index pack number -> position in packs (NO_FINDING: none) */
    size_t n_ixmap;
    idmap_t condemned; /* pack ids named by condemned lists */
    idmap_t bad_blobs; /* blob id -> finding that lost it */
    idmap_t trees;     /* tree id -> set number in sets (0: nothing damaged below) */
    uset_t *sets;
    size_t n_sets, cap_sets;
    uint32_t missing; /* finding for blobs not in the index (NO_FINDING until needed) */
    uint64_t n_missing_data, n_missing_trees;
    uint8_t first_missing[32];
    name_list_t unref; /* packs in data/ that no readable index segment lists */
} ctx_t;

static bool stopped(const ctx_t *c)
{
    return c->o->stop && *c->o->stop;
}

static void count_item(const ctx_t *c)
{
    if (c->o->items)
        atomic_fetch_add(c->o->items, 1);
}

/* ---- findings ---- */

void check_report_init(check_report_t *rep)
{
    memset(rep, 0, sizeof *rep);
}

void check_report_release(check_report_t *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->n; i++) {
        free(rep->findings[i].object);
        free(rep->findings[i].message);
        free(rep->findings[i].snapshots);
    }
    free(rep->findings);
    memset(rep, 0, sizeof *rep);
}

/* Add a finding; its number is rep->n - 1 afterwards. fmt NULL leaves the message empty (to
 * be set later). */
static int finding_add(ctx_t *c, check_severity_t sev, const char *object, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int finding_add(ctx_t *c, check_severity_t sev, const char *object, const char *fmt, ...)
{
    check_report_t *rep = c->rep;
    char msg[MSG_MAX] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    if (rep->n == rep->cap) {
        size_t nc = rep->cap ? rep->cap * 2 : 16;
        check_finding_t *nf = realloc(rep->findings, nc * sizeof *nf);
        if (!nf)
            return err_set(COFFER_ENOMEM, "out of memory checking the repository");
        rep->findings = nf;
        rep->cap = nc;
    }
    check_finding_t *f = &rep->findings[rep->n];
    memset(f, 0, sizeof *f);
    f->severity = sev;
    f->object = strdup(object);
    f->message = strdup(msg);
    if (!f->object || !f->message) {
        free(f->object);
        free(f->message);
        return err_set(COFFER_ENOMEM, "out of memory checking the repository");
    }
    rep->n++;
    if (sev == CHECK_ERROR)
        rep->errors++;
    else if (sev == CHECK_WARNING)
        rep->warnings++;
    else
        rep->infos++;
    return 0;
}

static uint32_t last_finding(const ctx_t *c)
{
    return (uint32_t)(c->rep->n - 1);
}

static int finding_add_snapshot(check_finding_t *f, const uint8_t id[32])
{
    uint8_t(*ns)[32] = realloc(f->snapshots, (f->n_snapshots + 1) * sizeof *ns);
    if (!ns)
        return err_set(COFFER_ENOMEM, "out of memory checking the repository");
    memcpy(ns[f->n_snapshots++], id, 32);
    f->snapshots = ns;
    return 0;
}

/* A per-object failure: ENOMEM and EINTR stop the check, anything else is a finding. */
static bool fatal(int rc)
{
    return rc == COFFER_ENOMEM || rc == COFFER_EINTR;
}

static int list_prefix(ctx_t *c, const char *prefix, name_list_t *out)
{
    int rc = storage_list(c->st, prefix, collect, out);
    if (rc && !fatal(rc))
        rc = err_ctx(rc, "while listing %s of %s", prefix, storage_location(c->st));
    return rc;
}

/* "dir/<64 hex>" -> id; false when the name has another shape. */
static bool name_id(const char *name, size_t dirlen, uint8_t out[32])
{
    return strlen(name) == dirlen + 64 && hex_decode(name + dirlen, out, 32) == 0;
}

/* ---- key slots ---- */

static int check_keys(ctx_t *c)
{
    name_list_t l = {0};
    buf_t b;
    buf_init(&b);
    int rc = list_prefix(c, "keys/", &l);
    for (size_t i = 0; !rc && i < l.n; i++) {
        uint8_t want[32], got[32];
        char *kdf = NULL, *created = NULL, *host = NULL, *user = NULL;
        count_item(c);
        if (!name_id(l.names[i], 5, want)) {
            rc = finding_add(c, CHECK_WARNING, l.names[i],
                             "unexpected object %s in keys/: coffer ignores it", l.names[i]);
            continue;
        }
        c->rep->key_slots++;
        buf_reset(&b);
        int grc = storage_get(c->st, l.names[i], 0, 0, &b);
        if (fatal(grc)) {
            rc = grc;
            break;
        }
        if (grc == COFFER_ENOENT) { /* removed by `key remove` meanwhile */
            c->rep->key_slots--;
            continue;
        }
        if (grc) {
            rc = finding_add(c, CHECK_ERROR, l.names[i], "key slot %s cannot be read: %s",
                             l.names[i], err_msg());
            continue;
        }
        crypto_sha256(b.data, b.len, got);
        if (memcmp(got, want, 32) != 0) {
            rc = finding_add(c, CHECK_ERROR, l.names[i],
                             "key slot %s is damaged: its content does not match its name; the "
                             "password of this slot no longer opens the repository (other "
                             "slots still do): remove it and add a new key",
                             l.names[i]);
            continue;
        }
        int prc = keyslot_info(b.data, b.len, &kdf, &created, &host, &user);
        free(kdf);
        free(created);
        free(host);
        free(user);
        if (fatal(prc))
            rc = prc;
        else if (prc)
            rc = finding_add(c, CHECK_ERROR, l.names[i], "key slot %s is malformed: %s", l.names[i],
                             err_msg());
    }
    buf_release(&b);
    name_list_release(&l);
    return rc;
}

/* ---- maint/ and sessions/ ---- */

static void fmt_age(int64_t ns, char *out, size_t n)
{
    int64_t s = ns / 1000000000;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(out, n, "%lld s", (long long)s);
    else if (s < 7200)
        snprintf(out, n, "%lld min", (long long)(s / 60));
    else
        snprintf(out, n, "%lld h", (long long)(s / 3600));
}

static int check_condemned_list(ctx_t *c, const char *name)
{
    buf_t b;
    buf_init(&b);
    condemned_t cl;
    condemned_init(&cl);
    int rc = repo_get_sealed(c->r, name, ENV_CONDEMNED, false, &b);
    if (rc == COFFER_ENOENT) { /* finished by a prune meanwhile */
        rc = 0;
        goto out;
    }
    if (!rc)
        rc = condemned_decode(b.data, b.len, name, &cl);
    if (rc && !fatal(rc)) {
        rc = finding_add(c, CHECK_ERROR, name,
                         "condemned list %s is damaged: %s; commands that load the index fail "
                         "while it exists: removing it is safe (the next prune marks its packs "
                         "again)",
                         name, err_msg());
        goto out;
    }
    for (size_t i = 0; !rc && i < cl.n_packs; i++)
        rc = idmap_put(&c->condemned, cl.packs[i], 0);
    if (!rc)
        rc = finding_add(c, CHECK_INFO, name,
                         "condemned list %s names %zu pack(s) waiting for prune phase 2", name,
                         cl.n_packs);
out:
    condemned_release(&cl);
    buf_release(&b);
    return rc;
}

static int check_maint(ctx_t *c)
{
    name_list_t l = {0}, s = {0};
    int64_t now = 0, stale = heartbeat_stale_ns();
    int rc = list_prefix(c, "maint/", &l);
    if (!rc)
        rc = list_prefix(c, "sessions/", &s);
    if (!rc && (l.n || s.n) && storage_now(c->st, &now) != 0) {
        /* without the backend's clock nothing can be judged stale */
        now = 0;
    }
    for (size_t i = 0; !rc && i < l.n; i++) {
        char age[32];
        fmt_age(now - l.mtimes[i], age, sizeof age);
        if (strcmp(l.names[i], "maint/lease") == 0) {
            if (now && now - l.mtimes[i] > stale)
                rc = finding_add(c, CHECK_INFO, l.names[i],
                                 "a stale prune lease is present (silent for %s): a prune "
                                 "crashed; `coffer unlock` removes it",
                                 age);
            else
                rc = finding_add(c, CHECK_INFO, l.names[i],
                                 "a prune is running (lease refreshed %s ago)", age);
        } else if (strncmp(l.names[i], "maint/condemned-", 16) == 0) {
            rc = check_condemned_list(c, l.names[i]);
        }
    }
    for (size_t i = 0; !rc && i < s.n; i++) {
        char age[32];
        fmt_age(now - s.mtimes[i], age, sizeof age);
        if (now && now - s.mtimes[i] > stale)
            rc = finding_add(c, CHECK_INFO, s.names[i],
                             "session %s looks stale (silent for %s): its writer probably "
                             "crashed; the packs it left are adopted by the next backup or "
                             "removed by prune",
                             s.names[i], age);
        else
            rc = finding_add(c, CHECK_INFO, s.names[i],
                             "a writer is running (session %s, heartbeat %s ago): packs it "
                             "is writing may show up as unreferenced",
                             s.names[i], age);
    }
    name_list_release(&l);
    name_list_release(&s);
    return rc;
}

/* ---- index segments ---- */

static int seg_supersedes(void *ud, const uint8_t id[32])
{
    ctx_t *c = ud;
    if (c->n_sup == c->cap_sup) {
        size_t nc = c->cap_sup ? c->cap_sup * 2 : 16;
        uint8_t(*ns)[32] = realloc(c->sup, nc * sizeof *ns);
        if (!ns)
            return err_set(COFFER_ENOMEM, "out of memory checking the index");
        c->sup = ns;
        c->cap_sup = nc;
    }
    memcpy(c->sup[c->n_sup++], id, 32);
    return 0;
}

static int seg_pack(void *ud, const uint8_t id[32], const uint8_t session[16],
                    const pack_entry_t *e, size_t n)
{
    ctx_t *c = ud;
    if (c->n_packs == c->cap_packs) {
        size_t nc = c->cap_packs ? c->cap_packs * 2 : 64;
        cpack_t *np = realloc(c->packs, nc * sizeof *np);
        if (!np)
            return err_set(COFFER_ENOMEM, "out of memory checking the index");
        c->packs = np;
        c->cap_packs = nc;
    }
    cpack_t *p = &c->packs[c->n_packs];
    memset(p, 0, sizeof *p);
    p->entries = malloc((n ? n : 1) * sizeof *p->entries);
    if (!p->entries)
        return err_set(COFFER_ENOMEM, "out of memory checking the index");
    if (n)
        memcpy(p->entries, e, n * sizeof *e);
    p->n = n;
    memcpy(p->id, id, 32);
    memcpy(p->session, session, 16);
    p->seg = c->cur_seg;
    buf_init(&p->problems);
    for (size_t i = 0; i < n; i++)
        if ((uint64_t)e[i].offset + e[i].stored_len > p->max_end)
            p->max_end = (uint64_t)e[i].offset + e[i].stored_len;
    c->n_packs++;
    return 0;
}

static void cpack_release(cpack_t *p)
{
    free(p->entries);
    free(p->bad);
    free(p->first_bad_msg);
    buf_release(&p->problems);
}

static int cmp_pack_id(const void *a, const void *b)
{
    const cpack_t *x = a, *y = b;
    int d = memcmp(x->id, y->id, 32);
    if (d)
        return d;
    return x->seg < y->seg ? -1 : x->seg > y->seg;
}

/* Mark the segments some readable segment supersedes. */
static int mark_superseded(ctx_t *c)
{
    idmap_t sup = {0};
    int rc = 0;
    for (size_t i = 0; i < c->n_sup && !rc; i++)
        rc = idmap_put(&sup, c->sup[i], 0);
    for (size_t s = 0; s < c->n_segs && !rc; s++) {
        uint8_t id[32];
        c->seg_sup[s] = name_id(c->segs[s], 6, id) && idmap_get(&sup, id, NULL);
    }
    idmap_release(&sup);
    return rc;
}

static int check_index(ctx_t *c)
{
    name_list_t l = {0};
    buf_t plain;
    buf_init(&plain);
    int rc = list_prefix(c, "index/", &l);
    if (rc)
        goto out;
    c->segs = calloc(l.n ? l.n : 1, sizeof *c->segs);
    c->seg_ok = calloc(l.n ? l.n : 1, sizeof *c->seg_ok);
    c->seg_sup = calloc(l.n ? l.n : 1, sizeof *c->seg_sup);
    if (!c->segs || !c->seg_ok || !c->seg_sup) {
        rc = err_set(COFFER_ENOMEM, "out of memory checking the index");
        goto out;
    }
    idxseg_cb_t cb = {.ud = c, .supersedes = seg_supersedes, .pack = seg_pack};
    for (size_t i = 0; i < l.n && !rc; i++) {
        uint8_t id[32];
        if (stopped(c)) {
            rc = err_set(COFFER_EINTR, "check interrupted");
            break;
        }
        if (!name_id(l.names[i], 6, id)) {
            rc = finding_add(c, CHECK_WARNING, l.names[i],
                             "unexpected object %s in index/: coffer ignores it", l.names[i]);
            continue;
        }
        count_item(c);
        size_t s = c->n_segs++;
        snprintf(c->segs[s], NAME_LEN, "%s", l.names[i]);
        c->cur_seg = s;
        int grc = repo_get_sealed(c->r, l.names[i], ENV_INDEX, true, &plain);
        if (grc == COFFER_ENOENT) { /* superseded and removed by a prune meanwhile */
            c->n_segs--;
            continue;
        }
        size_t packs_before = c->n_packs, sup_before = c->n_sup;
        if (!grc)
            grc = idxseg_decode(plain.data, plain.len, l.names[i], &cb);
        if (fatal(grc)) {
            rc = grc;
            break;
        }
        c->rep->index_segments++;
        if (grc) {
            /* forget what a damaged segment decoded before the damage */
            for (size_t k = packs_before; k < c->n_packs; k++)
                cpack_release(&c->packs[k]);
            c->n_packs = packs_before;
            c->n_sup = sup_before;
            c->n_bad_segs++;
            rc = finding_add(c, CHECK_ERROR, l.names[i],
                             "%s; readers skip this index segment (its blobs look missing) and "
                             "prune refuses to run: remove it, then run a backup, which "
                             "re-indexes the packs it listed",
                             err_msg());
            continue;
        }
        c->seg_ok[s] = true;
    }
    if (rc || (rc = mark_superseded(c)))
        goto out;
    /* keep the packs of segments that are not superseded, one record per pack */
    size_t k = 0;
    for (size_t i = 0; i < c->n_packs; i++) {
        if (c->seg_sup[c->packs[i].seg])
            cpack_release(&c->packs[i]);
        else
            c->packs[k++] = c->packs[i];
    }
    c->n_packs = k;
    if (c->n_packs > 1)
        if (c->n_packs > 1)
            qsort(c->packs, c->n_packs, sizeof *c->packs, cmp_pack_id);
    k = 0;
    for (size_t i = 0; i < c->n_packs; i++) {
        if (k && memcmp(c->packs[k - 1].id, c->packs[i].id, 32) == 0)
            cpack_release(&c->packs[i]);
        else
            c->packs[k++] = c->packs[i];
    }
    c->n_packs = k;
    for (size_t s = 0; s < c->n_segs && !rc; s++)
        if (c->seg_ok[s] && c->seg_sup[s])
            rc = finding_add(c, CHECK_INFO, c->segs[s],
                             "index segment %s is superseded but still present (prune removes "
                             "it)",
                             c->segs[s]);
out:
    buf_release(&plain);
    name_list_release(&l);
    return rc;
}

/* ---- packs against the index ---- */

static cpack_t *find_pack(ctx_t *c, const uint8_t id[32])
{
    size_t lo = 0, hi = c->n_packs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int d = memcmp(c->packs[mid].id, id, 32);
        if (d == 0)
            return &c->packs[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int problem(cpack_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int problem(cpack_t *p, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->problems.len && buf_append_str(&p->problems, "; "))
        return COFFER_ENOMEM;
    return buf_append_str(&p->problems, msg);
}

static int mark_bad(cpack_t *p, const uint8_t id[32], const char *why)
{
    if (p->n_bad == p->cap_bad) {
        size_t nc = p->cap_bad ? p->cap_bad * 2 : 8;
        uint8_t(*nb)[32] = realloc(p->bad, nc * sizeof *nb);
        if (!nb)
            return err_set(COFFER_ENOMEM, "out of memory checking a pack");
        p->bad = nb;
        p->cap_bad = nc;
    }
    memcpy(p->bad[p->n_bad++], id, 32);
    if (!p->first_bad_msg && why)
        p->first_bad_msg = strdup(why);
    return 0;
}

/* Register the packs in the repository's index: present packs first, so a blob stored twice
 * resolves to a copy that exists. */
static int fill_index(ctx_t *c)
{
    index_t *ix = repo_index(c->r);
    int rc = 0;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        for (size_t i = 0; i < c->n_packs && !rc; i++) {
            cpack_t *p = &c->packs[i];
            if (p->present != (pass == 0))
                continue;
            uint32_t no;
            bool tree = false;
            if ((rc = index_add_pack(ix, p->id, p->session, 0, &no)))
                break;
            for (size_t e = 0; e < p->n && !rc; e++) {
                blob_loc_t loc = {.type = p->entries[e].type,
                                  .compressed = p->entries[e].compressed,
                                  .pack = no,
                                  .offset = p->entries[e].offset,
                                  .stored_len = p->entries[e].stored_len,
                                  .raw_len = p->entries[e].raw_len};
                tree |= loc.type == BLOB_TREE;
                rc = index_insert(ix, p->entries[e].id, &loc);
            }
            if (!rc && tree)
                index_set_pack_flags(ix, no, PACK_F_TREE);
        }
    }
    if (rc)
        return rc;
    c->n_ixmap = index_pack_count(ix);
    c->ixmap = malloc((c->n_ixmap ? c->n_ixmap : 1) * sizeof *c->ixmap);
    if (!c->ixmap)
        return err_set(COFFER_ENOMEM, "out of memory checking the index");
    for (size_t i = 0; i < c->n_ixmap; i++)
        c->ixmap[i] = NO_FINDING;
    for (size_t i = 0; i < c->n_packs; i++) {
        uint32_t no;
        if (index_find_pack(ix, c->packs[i].id, &no) && no < c->n_ixmap)
            c->ixmap[no] = (uint32_t)i;
    }
    return 0;
}

static int check_packs(ctx_t *c)
{
    name_list_t l = {0};
    int rc = list_prefix(c, "data/", &l);
    for (size_t i = 0; i < l.n && !rc; i++) {
        uint8_t id[32];
        const char *nm = l.names[i];
        if (!name_id(nm, 8, id) || nm[7] != '/' || strncmp(nm + 5, nm + 8, 2) != 0) {
            rc = finding_add(c, CHECK_WARNING, nm,
                             "unexpected object %s in data/: coffer ignores it", nm);
            continue;
        }
        cpack_t *p = find_pack(c, id);
        if (p) {
            p->present = true;
            p->size = l.sizes[i];
            continue;
        }
        rc = collect(&c->unref, nm, &(storage_stat_t){.size = l.sizes[i]});
    }
    c->rep->packs = c->n_packs;
    for (size_t i = 0; i < c->n_packs && !rc; i++) {
        cpack_t *p = &c->packs[i];
        if (!p->present) {
            p->all_lost = true;
            continue;
        }
        uint64_t need = p->max_end + PACK_MIN_TAIL;
        if (p->size < need) {
            size_t lost = 0;
            for (size_t e = 0; e < p->n && !rc; e++)
                if ((uint64_t)p->entries[e].offset + p->entries[e].stored_len > p->size) {
                    lost++;
                    rc = mark_bad(p, p->entries[e].id, "lies past the end of the pack");
                }
            if (!rc)
                rc = problem(p,
                             "it is truncated: %llu bytes, but the index needs at least %llu "
                             "(%zu of its %zu blob(s) are cut off)",
                             (unsigned long long)p->size, (unsigned long long)need, lost, p->n);
        }
    }
    if (!rc)
        rc = fill_index(c);
    name_list_release(&l);
    return rc;
}

/* ---- read-data ---- */

typedef struct pack_task {
    ctx_t *c;
    cpack_t *p;
    int rc; /* ENOMEM only; damage is recorded in p */
} pack_task_t;

static int cmp_entry_off(const void *a, const void *b)
{
    const pack_entry_t *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return memcmp(x->id, y->id, 32);
}

/* Compare the decoded header with the index's entries for the pack. */
static int compare_header(cpack_t *p, pack_entry_t *h, size_t hn)
{
    pack_entry_t *ix = malloc((p->n ? p->n : 1) * sizeof *ix);
    int rc = 0;
    if (!ix)
        return err_set(COFFER_ENOMEM, "out of memory checking a pack");
    if (p->n)
        memcpy(ix, p->entries, p->n * sizeof *ix);
    if (p->n > 1)
        qsort(ix, p->n, sizeof *ix, cmp_entry_off);
    if (hn > 1)
        qsort(h, hn, sizeof *h, cmp_entry_off);
    /* Every blob the index lists must be in the header, identical. The header may list more:
     * a duplicate copy of a blob indexed in another pack (concurrent writers store the same
     * blob; prune keeps one location when it rewrites the index) is unindexed, not damage. */
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        while (k < hn && h[k].offset < ix[i].offset)
            k++;
        if (k == hn || memcmp(ix[i].id, h[k].id, 32) != 0 || ix[i].type != h[k].type ||
            ix[i].compressed != h[k].compressed || ix[i].stored_len != h[k].stored_len ||
            ix[i].raw_len != h[k].raw_len || ix[i].offset != h[k].offset) {
            char hex[65];
            hex_encode(ix[i].id, 32, hex);
            rc = problem(p,
                         "its header and the index disagree about blob %.16s at offset %u "
                         "(the header lists %zu blob(s), the index %zu)",
                         hex, ix[i].offset, hn, p->n);
            goto out;
        }
        k++;
    }
out:
    free(ix);
    return rc;
}

/* Verify one blob of the pack bytes: decrypt, decompress, length, HMAC. On failure the error
 * record says why. */
static int verify_blob(repo_t *r, const uint8_t key[32], const pack_entry_t *e, const uint8_t *data,
                       uint64_t limit, buf_t *plain, buf_t *raw)
{
    uint8_t check[32];
    char hex[65];
    buf_t *out = plain;
    int rc;
    hex_encode(e->id, 32, hex);
    if ((uint64_t)e->offset + e->stored_len > limit)
        return err_set(COFFER_ECORRUPT, "blob %.16s lies past the blob area", hex);
    rc = blob_open(key, e->type, e->id, data + e->offset, e->stored_len, plain);
    if (fatal(rc))
        return rc;
    if (rc)
        return err_set(COFFER_ECORRUPT, "blob %.16s does not decrypt", hex);
    if (e->compressed) {
        rc = compress_decompress(plain->data, plain->len, e->raw_len, raw);
        if (rc && !fatal(rc))
            rc = err_set(COFFER_ECORRUPT, "blob %.16s does not decompress (%s)", hex, err_msg());
        if (rc)
            return rc;
        out = raw;
    }
    if (out->len != e->raw_len)
        return err_set(COFFER_ECORRUPT, "blob %.16s has %zu bytes, the index says %u", hex,
                       out->len, e->raw_len);
    if ((rc = repo_blob_id(r, e->type, out->data, out->len, check)))
        return rc;
    if (memcmp(check, e->id, 32) != 0)
        return err_set(COFFER_ECORRUPT, "blob %.16s does not match its id (HMAC mismatch)", hex);
    return 0;
}

static int read_one_pack(ctx_t *c, cpack_t *p)
{
    char name[NAME_LEN];
    uint8_t h[32], key[32];
    buf_t data, plain, raw;
    buf_init(&data);
    buf_init(&plain);
    buf_init(&raw);
    pack_entry_t *he = NULL;
    size_t hn = 0, bad = 0;
    uint64_t limit, hoff = 0;
    uint32_t hlen = 0;
    int rc, hrc;
    repo_pack_name(p->id, name, sizeof name);
    if (p->size > PACK_MAX_BYTES + (64u << 20)) {
        rc = problem(p, "it has %llu bytes, more than a pack can hold (not read)",
                     (unsigned long long)p->size);
        goto out;
    }
    rc = storage_get(c->st, name, 0, 0, &data);
    if (fatal(rc))
        goto out;
    if (rc) {
        rc = problem(p, "it cannot be read (%s)", err_msg());
        goto out;
    }
    p->read = true;
    if (c->o->bytes)
        atomic_fetch_add(c->o->bytes, data.len);
    crypto_sha256(data.data, data.len, h);
    if (memcmp(h, p->id, 32) != 0 && (rc = problem(p, "its content does not match its name "
                                                      "(SHA-256 mismatch)")))
        goto out;
    /* header */
    limit = data.len;
    hrc = data.len >= 4 ? pack_header_locate(data.data + data.len - 4, data.len, name, &hoff, &hlen)
                        : err_set(COFFER_ECORRUPT, "%s is truncated", name);
    if (!hrc) {
        limit = hoff;
        hrc = envelope_open(repo_keyring(c->r), ENV_PACK_HEADER, NULL, data.data + hoff, hlen, name,
                            &plain);
        if (!hrc && memcmp(data.data + hoff + 2, p->session, 16) != 0)
            hrc = err_set(COFFER_ECORRUPT, "the index names another writer session than the "
                                           "pack header");
        if (!hrc)
            hrc = pack_header_decode(plain.data, plain.len, name, &he, &hn);
    }
    if (fatal(hrc)) {
        rc = hrc;
        goto out;
    }
    if (hrc && (rc = problem(p, "its header cannot be read (%s)", err_msg())))
        goto out;
    if (!hrc && (rc = compare_header(p, he, hn)))
        goto out;
    /* blobs, as the index describes them (that is how restore reads them) */
    if ((rc = keyring_session_key(repo_keyring(c->r), p->session, key)))
        goto out;
    for (size_t i = 0; i < p->n; i++) {
        int vrc = verify_blob(c->r, key, &p->entries[i], data.data, limit, &plain, &raw);
        if (fatal(vrc)) {
            rc = vrc;
            goto out;
        }
        if (vrc) {
            bad++;
            if ((rc = mark_bad(p, p->entries[i].id, err_msg())))
                goto out;
        }
    }
    if (bad)
        rc = problem(p, "%zu of its %zu blob(s) do not verify (first: %s)", bad, p->n,
                     p->first_bad_msg ? p->first_bad_msg : "?");
out:
    crypto_wipe(key, sizeof key);
    free(he);
    buf_release(&data);
    buf_release(&plain);
    buf_release(&raw);
    return rc;
}

static void pack_task_run(void *arg)
{
    pack_task_t *t = arg;
    if (stopped(t->c))
        return;
    t->rc = read_one_pack(t->c, t->p);
    count_item(t->c);
}

static int select_packs(ctx_t *c)
{
    const check_opts_t *o = c->o;
    size_t *cand = malloc((c->n_packs ? c->n_packs : 1) * sizeof *cand);
    size_t n = 0;
    if (!cand)
        return err_set(COFFER_ENOMEM, "out of memory checking packs");
    for (size_t i = 0; i < c->n_packs; i++) {
        cpack_t *p = &c->packs[i];
        if (!p->present)
            continue;
        if (o->subset == CHECK_SUBSET_PART) {
            uint32_t v = ((uint32_t)p->id[0] << 24) | ((uint32_t)p->id[1] << 16) |
                         ((uint32_t)p->id[2] << 8) | p->id[3];
            uint64_t bucket = ((uint64_t)v * o->of) >> 32;
            p->selected = bucket == (uint64_t)(o->part - 1);
        } else {
            cand[n++] = i;
            p->selected = o->subset == CHECK_SUBSET_ALL;
        }
    }
    if (o->subset == CHECK_SUBSET_PERCENT && n) {
        /* a random k of the candidates (sorted by id): partial Fisher-Yates */
        size_t k = (size_t)((double)n * o->percent / 100.0 + 0.999999);
        if (k < 1)
            k = 1;
        if (k > n)
            k = n;
        for (size_t i = 0; i < k; i++) {
            uint64_t rnd;
            int rc = crypto_random(&rnd, sizeof rnd);
            if (rc) {
                free(cand);
                return rc;
            }
            size_t j = i + (size_t)(rnd % (n - i));
            size_t tmp = cand[i];
            cand[i] = cand[j];
            cand[j] = tmp;
            c->packs[cand[i]].selected = true;
        }
    }
    free(cand);
    return 0;
}

static int read_packs(ctx_t *c)
{
    int threads = c->o->threads > 0 ? c->o->threads : workq_cpus();
    if (c->o->threads <= 0 && threads > 8)
        threads = 8;
    pack_task_t *tasks = NULL;
    workq_t *q = NULL;
    size_t nt = 0;
    int rc = select_packs(c);
    if (rc)
        return rc;
    tasks = calloc(c->n_packs ? c->n_packs : 1, sizeof *tasks);
    if (!tasks)
        return err_set(COFFER_ENOMEM, "out of memory checking packs");
    if ((rc = workq_new(threads, (size_t)threads, &q)))
        goto out;
    for (size_t i = 0; i < c->n_packs; i++) {
        if (!c->packs[i].selected)
            continue;
        tasks[nt] = (pack_task_t){.c = c, .p = &c->packs[i]};
        if ((rc = workq_submit(q, pack_task_run, &tasks[nt])))
            break;
        nt++;
        if (stopped(c))
            break;
    }
    workq_free(q); /* waits for every submitted task */
    for (size_t i = 0; i < nt && !rc; i++) {
        rc = tasks[i].rc;
        if (tasks[i].p->read) {
            c->rep->packs_read++;
            c->rep->bytes_read += tasks[i].p->size;
        }
    }
    if (!rc && stopped(c))
        rc = err_set(COFFER_EINTR, "check interrupted");
out:
    free(tasks);
    return rc;
}

/* One finding per damaged pack; its lost blobs point at it. */
static int finalize_packs(ctx_t *c)
{
    int rc = 0;
    for (size_t i = 0; i < c->n_packs && !rc; i++) {
        cpack_t *p = &c->packs[i];
        if (!p->problems.len && !p->all_lost)
            continue;
        char name[NAME_LEN];
        repo_pack_name(p->id, name, sizeof name);
        const char *tail = "";
        if (!p->n_bad && c->o->read_data)
            tail = "; its blobs all verify: no data is lost";
        else if (!p->n_bad)
            tail = "; its blobs are intact as far as the index tells (--read-data verifies them)";
        if (p->all_lost)
            rc = finding_add(c, CHECK_ERROR, name,
                             "pack %s is missing (listed in %s with %zu blob(s)); its data is "
                             "lost unless a copy of the repository has it",
                             name, c->segs[p->seg], p->n);
        else
            rc = finding_add(c, CHECK_ERROR, name, "pack %s is damaged: %s%s", name,
                             (char *)p->problems.data, tail);
        if (rc)
            break;
        uint32_t f = last_finding(c);
        if (p->all_lost)
            for (size_t e = 0; e < p->n && !rc; e++)
                rc = idmap_put(&c->bad_blobs, p->entries[e].id, f);
        for (size_t b = 0; b < p->n_bad && !rc; b++)
            rc = idmap_put(&c->bad_blobs, p->bad[b], f);
    }
    return rc;
}

/* ---- snapshots and trees ---- */

/* The finding for blobs referenced but not in the index (created on first use). */
static int missing_blob(ctx_t *c, const uint8_t id[32], bool tree, uset_t *acc)
{
    int rc;
    if (c->missing == NO_FINDING) {
        if ((rc = finding_add(c, CHECK_ERROR, "index", NULL)))
            return rc;
        c->missing = last_finding(c);
        memcpy(c->first_missing, id, 32);
    }
    if (tree)
        c->n_missing_trees++;
    else
        c->n_missing_data++;
    if ((rc = idmap_put(&c->bad_blobs, id, c->missing)))
        return rc;
    return uset_add(acc, c->missing);
}

static int check_data_blob(ctx_t *c, const uint8_t id[32], uset_t *acc)
{
    uint32_t f;
    blob_loc_t loc;
    c->rep->data_blobs++;
    if (idmap_get(&c->bad_blobs, id, &f))
        return uset_add(acc, f);
    if (!index_lookup(repo_index(c->r), id, &loc))
        return missing_blob(c, id, false, acc);
    if (loc.type != BLOB_DATA) {
        char hex[65], obj[80];
        hex_encode(id, 32, hex);
        snprintf(obj, sizeof obj, "blob %s", hex);
        int rc = finding_add(c, CHECK_ERROR, obj,
                             "blob %.16s is file content but the index lists it as a tree: "
                             "the tree referencing it or the index is damaged",
                             hex);
        if (!rc)
            rc = idmap_put(&c->bad_blobs, id, last_finding(c));
        if (!rc)
            rc = uset_add(acc, last_finding(c));
        return rc;
    }
    return 0;
}

static int memo_tree(ctx_t *c, const uint8_t id[32], uset_t *mine)
{
    uint32_t setno = 0;
    if (mine->n) {
        if (c->n_sets == c->cap_sets) {
            size_t nc = c->cap_sets ? c->cap_sets * 2 : 16;
            uset_t *ns = realloc(c->sets, nc * sizeof *ns);
            if (!ns)
                return err_set(COFFER_ENOMEM, "out of memory checking trees");
            c->sets = ns;
            c->cap_sets = nc;
        }
        setno = (uint32_t)c->n_sets;
        c->sets[c->n_sets++] = *mine;
        memset(mine, 0, sizeof *mine); /* now owned by c->sets */
    }
    return idmap_put(&c->trees, id, setno);
}

static int merge_set(ctx_t *c, uint32_t setno, uset_t *acc)
{
    int rc = 0;
    if (setno == 0)
        return 0;
    for (size_t i = 0; i < c->sets[setno].n && !rc; i++)
        rc = uset_add(acc, c->sets[setno].v[i]);
    return rc;
}

static int walk_tree(ctx_t *c, const uint8_t id[32], int depth, uset_t *acc)
{
    uint32_t v;
    uset_t mine = {0};
    tree_t t;
    tree_init(&t);
    blob_loc_t loc;
    char hex[65], obj[80];
    int rc = 0, lrc;
    if (idmap_get(&c->trees, id, &v))
        return merge_set(c, v, acc);
    if (stopped(c))
        return err_set(COFFER_EINTR, "check interrupted");
    c->rep->trees++;
    count_item(c);
    hex_encode(id, 32, hex);
    snprintf(obj, sizeof obj, "tree %s", hex);
    if (idmap_get(&c->bad_blobs, id, &v)) {
        rc = uset_add(&mine, v);
        goto done;
    }
    if (!index_lookup(repo_index(c->r), id, &loc)) {
        rc = missing_blob(c, id, true, &mine);
        goto done;
    }
    lrc = repo_load_tree(c->r, id, &t);
    if (fatal(lrc)) {
        rc = lrc;
        goto done;
    }
    if (lrc) {
        if ((rc = finding_add(c, CHECK_ERROR, obj, "tree %.16s cannot be loaded: %s", hex,
                              err_msg())) ||
            (rc = idmap_put(&c->bad_blobs, id, last_finding(c))))
            goto done;
        rc = uset_add(&mine, last_finding(c));
        goto done;
    }
    for (size_t i = 0; i < t.n && !rc; i++) {
        const node_t *n = &t.nodes[i];
        if (n->type == NODE_FILE) {
            for (size_t e = 0; e < n->n_extents && !rc; e++)
                if (!n->extents[e].hole)
                    rc = check_data_blob(c, n->extents[e].id, &mine);
        } else if (n->type == NODE_DIR) {
            if (depth >= TREE_DEPTH_MAX) {
                if (!(rc = finding_add(c, CHECK_ERROR, obj,
                                       "tree %.16s nests directories more than %d deep: it "
                                       "is damaged or hostile",
                                       hex, TREE_DEPTH_MAX)))
                    rc = uset_add(&mine, last_finding(c));
                break;
            }
            rc = walk_tree(c, n->subtree, depth + 1, &mine);
        }
    }
done:
    tree_release(&t);
    if (!rc)
        rc = memo_tree(c, id, &mine); /* moves mine into c->sets */
    if (!rc && idmap_get(&c->trees, id, &v))
        rc = merge_set(c, v, acc);
    free(mine.v);
    return rc;
}

static int check_snapshots(ctx_t *c)
{
    name_list_t l = {0};
    int rc = list_prefix(c, "snapshots/", &l);
    for (size_t i = 0; i < l.n && !rc; i++) {
        uint8_t id[32];
        snapshot_t s;
        uset_t acc = {0};
        if (!name_id(l.names[i], 10, id)) {
            rc = finding_add(c, CHECK_WARNING, l.names[i],
                             "unexpected object %s in snapshots/: coffer ignores it", l.names[i]);
            continue;
        }
        count_item(c);
        snapshot_init(&s);
        int lrc = repo_load_snapshot(c->r, id, &s);
        if (lrc == COFFER_ENOENT) /* forgotten meanwhile */
            continue;
        if (fatal(lrc)) {
            snapshot_release(&s);
            rc = lrc;
            break;
        }
        c->rep->snapshots++;
        if (lrc) {
            if (!(rc = finding_add(c, CHECK_ERROR, l.names[i],
                                   "%s; this snapshot cannot be restored", err_msg())))
                rc = finding_add_snapshot(&c->rep->findings[last_finding(c)], id);
            snapshot_release(&s);
            continue;
        }
        rc = walk_tree(c, s.tree, 0, &acc);
        for (size_t k = 0; k < acc.n && !rc; k++)
            rc = finding_add_snapshot(&c->rep->findings[acc.v[k]], id);
        free(acc.v);
        snapshot_release(&s);
    }
    name_list_release(&l);
    return rc;
}

/* Packs no readable segment lists: garbage for prune, unless blobs the snapshots need are
 * missing from the index, in which case these packs may hold them. */
static int report_unreferenced(ctx_t *c)
{
    int rc = 0;
    for (size_t i = 0; i < c->unref.n && !rc; i++) {
        const char *nm = c->unref.names[i];
        unsigned long long sz = (unsigned long long)c->unref.sizes[i];
        uint8_t id[32];
        if (name_id(nm, 8, id) && idmap_get(&c->condemned, id, NULL))
            rc = finding_add(c, CHECK_INFO, nm,
                             "pack %s (%llu bytes) is condemned: prune phase 2 removes it", nm, sz);
        else if (c->n_bad_segs || c->missing != NO_FINDING)
            rc = finding_add(c, CHECK_WARNING, nm,
                             "pack %s (%llu bytes) is not listed by any readable index "
                             "segment, and blobs the snapshots need are missing from the index: "
                             "it may hold them; do not prune now (a backup re-indexes it)",
                             nm, sz);
        else
            rc = finding_add(c, CHECK_WARNING, nm,
                             "pack %s (%llu bytes) is not referenced by the index: unreferenced "
                             "pack (prune removes it)",
                             nm, sz);
    }
    return rc;
}

static int finalize_missing(ctx_t *c)
{
    if (c->missing == NO_FINDING)
        return 0;
    char hex[65], what[128], msg[MSG_MAX];
    hex_encode(c->first_missing, 32, hex);
    if (c->n_missing_data && c->n_missing_trees)
        snprintf(what, sizeof what, "%llu data blob(s) and %llu tree(s)",
                 (unsigned long long)c->n_missing_data, (unsigned long long)c->n_missing_trees);
    else if (c->n_missing_data)
        snprintf(what, sizeof what, "%llu data blob(s)", (unsigned long long)c->n_missing_data);
    else
        snprintf(what, sizeof what, "%llu tree(s)", (unsigned long long)c->n_missing_trees);
    snprintf(msg, sizeof msg,
             "%s referenced by snapshots %s not in the index (first: %.16s)%s; files that need "
             "them cannot be restored%s",
             what, c->n_missing_data + c->n_missing_trees == 1 ? "is" : "are", hex,
             c->n_bad_segs ? "; a damaged index segment probably listed them (see above)" : "",
             c->unref.n ? "; a backup re-indexes unreferenced packs (listed below), which may "
                          "hold them: run one, then check again"
                        : "");
    char *m = strdup(msg);
    if (!m)
        return err_set(COFFER_ENOMEM, "out of memory checking the repository");
    free(c->rep->findings[c->missing].message);
    c->rep->findings[c->missing].message = m;
    return 0;
}

/* ---- entry points ---- */

int check_parse_subset(const char *spec, check_opts_t *o)
{
    char *end = NULL;
    const char *slash = strchr(spec, '/');
    if (slash) {
        unsigned long n = strtoul(spec, &end, 10), m;
        if (end != slash || spec[0] < '0' || spec[0] > '9')
            goto bad;
        m = strtoul(slash + 1, &end, 10);
        if (*end || slash[1] < '0' || slash[1] > '9' || n < 1 || m < 1 || n > m || m > 1000000)
            goto bad;
        o->subset = CHECK_SUBSET_PART;
        o->part = (unsigned)n;
        o->of = (unsigned)m;
        return 0;
    }
    double p = strtod(spec, &end);
    if (end == spec || strcmp(end, "%") != 0 || !(p > 0) || p > 100)
        goto bad;
    o->subset = CHECK_SUBSET_PERCENT;
    o->percent = p;
    return 0;
bad:
    return err_set(COFFER_EINVAL,
                   "--read-data-subset \"%s\": give a percentage (\"10%%\") or a part "
                   "(\"1/5\": part 1 of 5)",
                   spec);
}

int check_run(repo_t *r, const check_opts_t *o, check_report_t *rep)
{
    ctx_t c = {.r = r, .st = repo_storage(r), .o = o, .rep = rep, .missing = NO_FINDING};
    int rc;
    /* sets[0] is the empty set */
    c.sets = calloc(16, sizeof *c.sets);
    if (!c.sets)
        return err_set(COFFER_ENOMEM, "out of memory checking the repository");
    c.cap_sets = 16;
    c.n_sets = 1;
    if ((rc = check_keys(&c)) || (rc = check_maint(&c)) || (rc = check_index(&c)) ||
        (rc = check_packs(&c)))
        goto out;
    if (o->read_data && (rc = read_packs(&c)))
        goto out;
    if ((rc = finalize_packs(&c)) || (rc = check_snapshots(&c)) || (rc = finalize_missing(&c)) ||
        (rc = report_unreferenced(&c)))
        goto out;
out:
    if (rc && c.missing != NO_FINDING)
        finalize_missing(&c);
    for (size_t i = 0; i < c.n_packs; i++)
        cpack_release(&c.packs[i]);
    free(c.packs);
    free(c.segs);
    free(c.seg_ok);
    free(c.seg_sup);
    free(c.sup);
    free(c.ixmap);
    name_list_release(&c.unref);
    idmap_release(&c.condemned);
    idmap_release(&c.bad_blobs);
    idmap_release(&c.trees);
    for (size_t i = 0; i < c.n_sets; i++)
        free(c.sets[i].v);
    free(c.sets);
    return rc;
}
