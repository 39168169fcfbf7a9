/*
 * test_index.c -- unit tests for src/repo/index.c: insert/lookup of 200k random ids through
 * table growth, the preference of non-condemned packs among duplicates, index_reserve /
 * index_unreserve semantics (pending entries, re-reservation over condemned copies, and
 * backward-shift deletion stressed with clustered ids and a random operation mix checked
 * against a model), concurrent reservation (exactly one winner per id), the pack table
 * (stable numbers, the session filled in for packs first seen in a condemned list, growth),
 * the info word and index_foreach (every entry exactly once, early stop).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/error.h"
#include "repo/envelope.h"
#include "repo/idset.h"
#include "repo/index.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- deterministic ids ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rand_id(uint64_t *seed, uint8_t id[32])
{
    for (int i = 0; i < 4; i++) {
        uint64_t v = splitmix(seed);
        memcpy(id + 8 * i, &v, 8);
    }
}

/* An id whose hash lands at the very start or the very end of the table whatever its size:
 * many of these form one long probe chain that wraps around slot 0. */
static void cluster_id(uint64_t *seed, uint8_t id[32])
{
    rand_id(seed, id);
    uint64_t k = splitmix(seed) % 8;
    uint64_t h = (splitmix(seed) & 1) ? k : UINT64_MAX - k;
    memcpy(id, &h, 8);
}

static blob_loc_t loc_for(uint32_t pack, uint32_t i)
{
    blob_loc_t l = {.type = (i & 1) ? BLOB_TREE : BLOB_DATA,
                    .compressed = (i & 2) != 0,
                    .pack = pack,
                    .offset = i * 7u,
                    .stored_len = 28 + (i % 1000),
                    .raw_len = (i * 13u) & INDEX_RAW_MAX};
    return l;
}

static void assert_loc_equal(const blob_loc_t *a, const blob_loc_t *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->compressed, b->compressed);
    assert_int_equal(a->pack, b->pack);
    assert_int_equal(a->offset, b->offset);
    assert_int_equal(a->stored_len, b->stored_len);
    assert_int_equal(a->raw_len, b->raw_len);
}

static uint32_t add_pack(index_t *ix, uint8_t tag, uint32_t flags)
{
    uint8_t id[32], sess[16];
    memset(id, tag, sizeof id);
    memset(sess, tag, sizeof sess);
    uint32_t no;
    assert_int_equal(index_add_pack(ix, id, sess, flags, &no), 0);
    return no;
}

/* ---- foreach helpers ---- */

typedef struct visit {
    const idset_t *expect;
    idset_t seen;
    size_t n, dup, unknown;
} visit_t;

static int visit_cb(void *ud, const uint8_t id[32], const blob_loc_t *loc)
{
    visit_t *v = ud;
    (void)loc;
    bool added;
    if (idset_add(&v->seen, id, &added))
        return -1;
    if (!added)
        v->dup++;
    if (!idset_has(v->expect, id))
        v->unknown++;
    v->n++;
    return 0;
}

/* ---- tests ---- */

static void test_insert_lookup_growth(void **state)
{
    (void)state;
    enum { N = 200000 };
    index_t *ix;
    assert_int_equal(index_new(&ix), 0);
    uint32_t packs[4];
    for (int p = 0; p < 4; p++)
        packs[p] = add_pack(ix, (uint8_t)(0x10 + p), 0);
    uint8_t(*ids)[32] = malloc((size_t)N * 32);
    assert_non_null(ids);
    uint64_t seed = 1;
    for (uint32_t i = 0; i < N; i++) {
        rand_id(&seed, ids[i]);
        blob_loc_t l = loc_for(packs[i % 4], i);
        assert_int_equal(index_insert(ix, ids[i], &l), 0);
    }
    assert_int_equal(index_count(ix), N);
    for (uint32_t i = 0; i < N; i++) {
        blob_loc_t got, want = loc_for(packs[i % 4], i);
        assert_true(index_lookup(ix, ids[i], &got));
        assert_loc_equal(&got, &want);
        assert_true(index_lookup(ix, ids[i], NULL));
    }
    /* ids never inserted are absent */
    uint64_t other = 999;
    for (int i = 0; i < 20000; i++) {
        uint8_t id[32];
        rand_id(&other, id);
        assert_false(index_lookup(ix, id, NULL));
    }
    /* inserting the same id again does not add an entry */
    blob_loc_t l = loc_for(packs[1], 5);
    assert_int_equal(index_insert(ix, ids[0], &l), 0);
    assert_int_equal(index_count(ix), N);

    /* foreach visits every entry exactly once */
    idset_t expect;
    idset_init(&expect);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(idset_add(&expect, ids[i], NULL), 0);
    visit_t v = {.expect = &expect};
    idset_init(&v.seen);
    assert_int_equal(index_foreach(ix, visit_cb, &v), 0);
    assert_int_equal(v.n, N);
    assert_int_equal(v.dup, 0);
    assert_int_equal(v.unknown, 0);
    assert_int_equal(v.seen.n, N);
    idset_release(&v.seen);
    idset_release(&expect);
    free(ids);
    index_free(ix);
}

static void test_info_word(void **state)
{
    (void)state;
    index_t *ix;
    assert_int_equal(index_new(&ix), 0);
    uint32_t p = add_pack(ix, 1, 0);
    uint8_t id[32] = {1, 2, 3};
    blob_loc_t l = {.type = BLOB_TREE,
                    .compressed = true,
                    .pack = p,
                    .offset = UINT32_MAX,
                    .stored_len = UINT32_MAX,
                    .raw_len = INDEX_RAW_MAX};
    assert_int_equal(index_insert(ix, id, &l), 0);
    blob_loc_t got;
    assert_true(index_lookup(ix, id, &got));
    assert_loc_equal(&got, &l);
    uint8_t id2[32] = {4, 5, 6};
    blob_loc_t l2 = {.type = BLOB_DATA, .compressed = false, .pack = p, .raw_len = 0};
    assert_int_equal(index_insert(ix, id2, &l2), 0);
    assert_true(index_lookup(ix, id2, &got));
    assert_loc_equal(&got, &l2);
    /* a raw length that does not fit the 28-bit field is refused, not truncated */
    uint8_t id3[32] = {7};
    blob_loc_t big = {.type = BLOB_DATA, .pack = p, .raw_len = INDEX_RAW_MAX + 1};
    assert_int_equal(index_insert(ix, id3, &big), COFFER_ELIMIT);
    assert_false(index_lookup(ix, id3, NULL));
    assert_int_equal(index_info(BLOB_TREE, true, 5), 5u | 1u << 28 | 2u << 30);
    assert_int_equal(index_info(BLOB_DATA, false, 5), 5u | 1u << 30);
    index_free(ix);
}

static void test_duplicates_prefer_live(void **state)
{
    (void)state;
    index_t *ix;
    assert_int_equal(index_new(&ix), 0);
    uint32_t dead = add_pack(ix, 1, PACK_F_CONDEMNED);
    uint32_t dead2 = add_pack(ix, 2, PACK_F_CONDEMNED);
    uint32_t live = add_pack(ix, 3, 0);
    uint32_t live2 = add_pack(ix, 4, 0);
    blob_loc_t got;

    /* condemned first, live second: the live copy wins */
    uint8_t a[32] = {0xa};
    blob_loc_t la = loc_for(dead, 1), lb = loc_for(live, 2);
    assert_int_equal(index_insert(ix, a, &la), 0);
    assert_int_equal(index_insert(ix, a, &lb), 0);
    assert_true(index_lookup(ix, a, &got));
    assert_loc_equal(&got, &lb);

    /* live first, condemned second: the live copy stays */
    uint8_t b[32] = {0xb};
    assert_int_equal(index_insert(ix, b, &lb), 0);
    assert_int_equal(index_insert(ix, b, &la), 0);
    assert_true(index_lookup(ix, b, &got));
    assert_loc_equal(&got, &lb);

    /* two live copies: the first one stays */
    uint8_t c[32] = {0xc};
    blob_loc_t lc = loc_for(live2, 3);
    assert_int_equal(index_insert(ix, c, &lb), 0);
    assert_int_equal(index_insert(ix, c, &lc), 0);
    assert_true(index_lookup(ix, c, &got));
    assert_loc_equal(&got, &lb);

    /* two condemned copies: still found (readers may need it), the first stays */
    uint8_t d[32] = {0xd};
    blob_loc_t ld = loc_for(dead2, 4);
    assert_int_equal(index_insert(ix, d, &la), 0);
    assert_int_equal(index_insert(ix, d, &ld), 0);
    assert_true(index_lookup(ix, d, &got));
    assert_loc_equal(&got, &la);

    /* a pack condemned after its entries were inserted loses to a later live copy */
    uint8_t e[32] = {0xe};
    assert_int_equal(index_insert(ix, e, &lc), 0);
    index_set_pack_flags(ix, live2, PACK_F_CONDEMNED);
    assert_int_equal(index_insert(ix, e, &lb), 0);
    assert_true(index_lookup(ix, e, &got));
    assert_loc_equal(&got, &lb);

    /* a pack number the table does not know is not usable: a real pack replaces it */
    uint8_t f[32] = {0xf};
    blob_loc_t lbad = loc_for(1000, 5);
    assert_int_equal(index_insert(ix, f, &lbad), 0);
    assert_int_equal(index_insert(ix, f, &lb), 0);
    assert_true(index_lookup(ix, f, &got));
    assert_int_equal(got.pack, live);
    assert_int_equal(index_count(ix), 6);
    index_free(ix);
}

static void test_reserve_semantics(void **state)
{
    (void)state;
    index_t *ix;
    assert_int_equal(index_new(&ix), 0);
    uint32_t dead = add_pack(ix, 1, PACK_F_CONDEMNED);
    uint32_t live = add_pack(ix, 2, 0);
    blob_loc_t got;
    bool res;

    /* new id: reserved, pending, and a second reservation is refused */
    uint8_t a[32] = {0xa, 1};
    assert_int_equal(index_reserve(ix, a, BLOB_TREE, &res), 0);
    assert_true(res);
    assert_true(index_lookup(ix, a, &got));
    assert_int_equal(got.pack, INDEX_PACK_PENDING);
    assert_int_equal(got.type, BLOB_TREE);
    assert_int_equal(index_reserve(ix, a, BLOB_TREE, &res), 0);
    assert_false(res);
    assert_int_equal(index_count(ix), 1);

    /* unreserve removes it; it can then be reserved again */
    index_unreserve(ix, a);
    assert_false(index_lookup(ix, a, NULL));
    assert_int_equal(index_count(ix), 0);
    assert_int_equal(index_reserve(ix, a, BLOB_DATA, &res), 0);
    assert_true(res);
    /* the real location replaces the reservation */
    blob_loc_t la = loc_for(live, 3);
    la.type = BLOB_DATA;
    assert_int_equal(index_insert(ix, a, &la), 0);
    assert_true(index_lookup(ix, a, &got));
    assert_loc_equal(&got, &la);
    /* present in a live pack: not reserved; unreserve of a live entry is a no-op */
    assert_int_equal(index_reserve(ix, a, BLOB_DATA, &res), 0);
    assert_false(res);
    index_unreserve(ix, a);
    assert_true(index_lookup(ix, a, &got));
    assert_loc_equal(&got, &la);

    /* only a condemned copy: reserved (stored anew), and only once */
    uint8_t b[32] = {0xb, 1};
    blob_loc_t lb = loc_for(dead, 4);
    lb.type = BLOB_DATA;
    assert_int_equal(index_insert(ix, b, &lb), 0);
    assert_int_equal(index_reserve(ix, b, BLOB_DATA, &res), 0);
    assert_true(res);
    assert_true(index_lookup(ix, b, &got));
    assert_int_equal(got.pack, INDEX_PACK_PENDING);
    assert_int_equal(index_reserve(ix, b, BLOB_DATA, &res), 0);
    assert_false(res);
    blob_loc_t lb2 = loc_for(live, 6);
    lb2.type = BLOB_DATA;
    assert_int_equal(index_insert(ix, b, &lb2), 0);
    assert_true(index_lookup(ix, b, &got));
    assert_loc_equal(&got, &lb2);

    /* a reservation over a condemned copy that is given up: the blob is never treated as
     * present in a usable pack afterwards */
    uint8_t c[32] = {0xc, 1};
    blob_loc_t lc = loc_for(dead, 8);
    assert_int_equal(index_insert(ix, c, &lc), 0);
    assert_int_equal(index_reserve(ix, c, BLOB_DATA, &res), 0);
    assert_true(res);
    index_unreserve(ix, c);
    assert_int_equal(index_reserve(ix, c, BLOB_DATA, &res), 0);
    assert_true(res);

    /* unreserving an unknown id changes nothing */
    size_t n = index_count(ix);
    uint8_t z[32] = {0x77};
    index_unreserve(ix, z);
    assert_int_equal(index_count(ix), n);
    index_free(ix);
}

/* Model-checked random mix of reserve / unreserve / insert over clustered and uniform ids:
 * after every batch, every id is found exactly when the model says so, with its location. */
enum { ST_ABSENT, ST_PENDING, ST_LIVE };

static void check_model(index_t *ix, uint8_t (*ids)[32], const uint8_t *st, const uint32_t *tag,
                        size_t n, uint32_t pack)
{
    size_t present = 0;
    for (size_t i = 0; i < n; i++) {
        blob_loc_t got;
        bool f = index_lookup(ix, ids[i], &got);
        if (st[i] == ST_ABSENT) {
            assert_false(f);
            continue;
        }
        present++;
        assert_true(f);
        if (st[i] == ST_PENDING) {
            assert_int_equal(got.pack, INDEX_PACK_PENDING);
        } else {
            blob_loc_t want = loc_for(pack, tag[i]);
            assert_loc_equal(&got, &want);
        }
    }
    assert_int_equal(index_count(ix), present);
}

static void stress(size_t n_ids, size_t ops, bool clustered, uint64_t seed0)
{
    index_t *ix;
    assert_int_equal(index_new(&ix), 0);
    uint32_t pack = add_pack(ix, 9, 0);
    uint8_t(*ids)[32] = malloc(n_ids * 32);
    uint8_t *st = calloc(n_ids, 1);
    uint32_t *tag = calloc(n_ids, sizeof *tag);
    assert_non_null(ids);
    assert_non_null(st);
    assert_non_null(tag);
    uint64_t seed = seed0;
    for (size_t i = 0; i < n_ids; i++) {
        if (clustered && i % 2 == 0)
            cluster_id(&seed, ids[i]);
        else
            rand_id(&seed, ids[i]);
    }
    for (size_t op = 0; op < ops; op++) {
        size_t i = (size_t)(splitmix(&seed) % n_ids);
        unsigned what = (unsigned)(splitmix(&seed) % 4);
        bool res;
        switch (st[i]) {
        case ST_ABSENT:
            assert_int_equal(index_reserve(ix, ids[i], BLOB_DATA, &res), 0);
            assert_true(res);
            st[i] = ST_PENDING;
            break;
        case ST_PENDING:
            if (what == 0) {
                assert_int_equal(index_reserve(ix, ids[i], BLOB_DATA, &res), 0);
                assert_false(res);
            } else if (what == 1) {
                tag[i] = (uint32_t)op;
                blob_loc_t l = loc_for(pack, tag[i]);
                assert_int_equal(index_insert(ix, ids[i], &l), 0);
                st[i] = ST_LIVE;
            } else {
                index_unreserve(ix, ids[i]);
                st[i] = ST_ABSENT;
            }
            break;
        default:
            if (what == 0) {
                assert_int_equal(index_reserve(ix, ids[i], BLOB_DATA, &res), 0);
                assert_false(res);
            } else {
                index_unreserve(ix, ids[i]); /* no-op on a live entry */
            }
            break;
        }
        if (op % (ops / 16) == 0)
            check_model(ix, ids, st, tag, n_ids, pack);
    }
    check_model(ix, ids, st, tag, n_ids, pack);

    /* foreach sees exactly the present ones */
    idset_t expect;
    idset_init(&expect);
    size_t present = 0;
    for (size_t i = 0; i < n_ids; i++)
        if (st[i] != ST_ABSENT) {
            assert_int_equal(idset_add(&expect, ids[i], NULL), 0);
            present++;
        }
    visit_t v = {.expect = &expect};
    idset_init(&v.seen);
    assert_int_equal(index_foreach(ix, visit_cb, &v), 0);
    assert_int_equal(v.n, present);
    assert_int_equal(v.dup, 0);
    assert_int_equal(v.unknown, 0);
    idset_release(&v.seen);
    idset_release(&expect);

    /* drain: unreserve every pending id; every live id stays findable after each removal
     * batch (backward shift must not cut a probe chain) */
    for (size_t i = 0; i < n_ids; i++)
        if (st[i] == ST_PENDING) {
            index_unreserve(ix, ids[i]);
            st[i] = ST_ABSENT;
        }
    check_model(ix, ids, st, tag, n_ids, pack);
    free(ids);
    free(st);
    free(tag);
    index_free(ix);
}

static void test_unreserve_stress_uniform(void **state)
{
    (void)state;
    stress(60000, 400000, false, 42);
}

static void test_unreserve_stress_clustered(void **state)
{
    (void)state;
    /* half the ids sit in one probe chain wrapping around the end of the table */
    stress(3000, 60000, true, 7);
}

/* Removing every element of a wrapping cluster one by one, in random order, keeps the rest. */
static void test_unreserve_wrap_cluster(void **state)
{
    (void)state;
    enum { N = 600 };
    index_t *ix;
    assert_int_equal(index_new(&ix), 0);
    uint8_t ids[N][32];
    uint8_t st[N];
    uint64_t seed = 5;
    for (int i = 0; i < N; i++) {
        cluster_id(&seed, ids[i]);
        bool res;
        assert_int_equal(index_reserve(ix, ids[i], BLOB_DATA, &res), 0);
        assert_true(res);
        st[i] = 1;
    }
    int order[N];
    for (int i = 0; i < N; i++)
        order[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(splitmix(&seed) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int k = 0; k < N; k++) {
        index_unreserve(ix, ids[order[k]]);
        st[order[k]] = 0;
        if (k % 37 == 0 || k > N - 10)
            for (int i = 0; i < N; i++)
                assert_int_equal(index_lookup(ix, ids[i], NULL), st[i] != 0);
    }
    assert_int_equal(index_count(ix), 0);
    index_free(ix);
}

/* ---- concurrent reservation ---- */

enum { CR_THREADS = 8, CR_IDS = 2000 };

typedef struct cr_ctx {
    index_t *ix;
    uint8_t (*ids)[32];
    _Atomic int wins[CR_IDS];
    pthread_barrier_t bar;
} cr_ctx_t;

static void *cr_thread(void *arg)
{
    cr_ctx_t *c = arg;
    pthread_barrier_wait(&c->bar);
    for (int i = 0; i < CR_IDS; i++) {
        bool res = false;
        if (index_reserve(c->ix, c->ids[i], BLOB_DATA, &res) != 0)
            return (void *)1;
        if (res)
            atomic_fetch_add(&c->wins[i], 1);
    }
    return NULL;
}

static void test_concurrent_reserve(void **state)
{
    (void)state;
    cr_ctx_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(index_new(&c->ix), 0);
    c->ids = malloc(CR_IDS * 32);
    assert_non_null(c->ids);
    uint64_t seed = 77;
    for (int i = 0; i < CR_IDS; i++)
        rand_id(&seed, c->ids[i]);
    pthread_barrier_init(&c->bar, NULL, CR_THREADS);
    pthread_t th[CR_THREADS];
    for (int t = 0; t < CR_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, cr_thread, c), 0);
    for (int t = 0; t < CR_THREADS; t++) {
        void *ret;
        pthread_join(th[t], &ret);
        assert_null(ret);
    }
    for (int i = 0; i < CR_IDS; i++)
        assert_int_equal(c->wins[i], 1);
    assert_int_equal(index_count(c->ix), CR_IDS);
    pthread_barrier_destroy(&c->bar);
    free(c->ids);
    index_free(c->ix);
    free(c);
}

/* ---- pack table ---- */

static void test_pack_table(void **state)
{
    (void)state;
    index_t *ix;
    assert_int_equal(index_new(&ix), 0);
    uint8_t p1[32], s1[16], s2[16], zero[16] = {0};
    memset(p1, 0x11, sizeof p1);
    memset(s1, 0xa1, sizeof s1);
    memset(s2, 0xa2, sizeof s2);
    uint32_t no, no2;
    index_pack_t pk;

    assert_int_equal(index_add_pack(ix, p1, s1, 0, &no), 0);
    assert_int_equal(index_add_pack(ix, p1, s2, 0, &no2), 0);
    assert_int_equal(no, no2);
    assert_int_equal(index_pack_count(ix), 1);
    assert_true(index_get_pack(ix, no, &pk));
    assert_memory_equal(pk.id, p1, 32);
    assert_memory_equal(pk.session, s1, 16); /* a known session is not replaced */

    /* first seen in a condemned list (no session), then in an index segment */
    uint8_t p2[32];
    memset(p2, 0x22, sizeof p2);
    assert_int_equal(index_add_pack(ix, p2, zero, PACK_F_CONDEMNED, &no), 0);
    assert_true(index_get_pack(ix, no, &pk));
    assert_memory_equal(pk.session, zero, 16);
    assert_int_equal(index_add_pack(ix, p2, s2, PACK_F_TREE, &no2), 0);
    assert_int_equal(no, no2);
    assert_true(index_get_pack(ix, no, &pk));
    assert_memory_equal(pk.session, s2, 16);
    assert_int_equal(pk.flags, PACK_F_CONDEMNED | PACK_F_TREE); /* flags accumulate */
    index_set_pack_flags(ix, no, 0);
    assert_true(index_get_pack(ix, no, &pk));
    assert_int_equal(pk.flags, 0);

    /* out of range */
    assert_false(index_get_pack(ix, 2, &pk));
    assert_false(index_get_pack(ix, INDEX_PACK_PENDING, &pk));
    uint8_t unknown[32] = {0x99};
    assert_false(index_find_pack(ix, unknown, &no));

    /* growth: numbers are dense and stable */
    uint64_t seed = 3;
    enum { NP = 5000 };
    uint8_t(*ids)[32] = malloc(NP * 32);
    assert_non_null(ids);
    for (uint32_t i = 0; i < NP; i++) {
        rand_id(&seed, ids[i]);
        assert_int_equal(index_add_pack(ix, ids[i], s1, 0, &no), 0);
        assert_int_equal(no, i + 2);
    }
    assert_int_equal(index_pack_count(ix), NP + 2);
    for (uint32_t i = 0; i < NP; i++) {
        assert_true(index_find_pack(ix, ids[i], &no));
        assert_int_equal(no, i + 2);
        assert_true(index_get_pack(ix, no, &pk));
        assert_memory_equal(pk.id, ids[i], 32);
        assert_int_equal(index_add_pack(ix, ids[i], s2, 0, &no2), 0);
        assert_int_equal(no2, i + 2);
    }
    assert_int_equal(index_pack_count(ix), NP + 2);
    assert_true(index_find_pack(ix, p1, &no));
    assert_int_equal(no, 0);
    free(ids);
    index_free(ix);
}

static int stop_at_3(void *ud, const uint8_t id[32], const blob_loc_t *loc)
{
    int *n = ud;
    (void)id;
    (void)loc;
    return ++*n == 3 ? 42 : 0;
}

static void test_foreach_stop(void **state)
{
    (void)state;
    index_t *ix;
    assert_int_equal(index_new(&ix), 0);
    uint32_t p = add_pack(ix, 1, 0);
    uint64_t seed = 11;
    for (int i = 0; i < 10; i++) {
        uint8_t id[32];
        rand_id(&seed, id);
        blob_loc_t l = loc_for(p, (uint32_t)i);
        assert_int_equal(index_insert(ix, id, &l), 0);
    }
    int n = 0;
    assert_int_equal(index_foreach(ix, stop_at_3, &n), 42);
    assert_int_equal(n, 3);
    index_free(ix);
    index_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_lookup_growth),
        cmocka_unit_test(test_info_word),
        cmocka_unit_test(test_duplicates_prefer_live),
        cmocka_unit_test(test_reserve_semantics),
        cmocka_unit_test(test_unreserve_stress_uniform),
        cmocka_unit_test(test_unreserve_stress_clustered),
        cmocka_unit_test(test_unreserve_wrap_cluster),
        cmocka_unit_test(test_concurrent_reserve),
        cmocka_unit_test(test_pack_table),
        cmocka_unit_test(test_foreach_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
