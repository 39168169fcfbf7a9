/*
 * test_envelope.c -- unit tests for src/repo/envelope.c: session nonces (counter from 1,
 * big-endian, 4 zero bytes, never repeated across 4 threads x 10000 seals), session keys
 * derived the same way by session_start and the keyring (also after the keyring cache is
 * reset), envelope_seal/open round trips with and without compression over many sizes,
 * binding of type and id, every single-bit flip of a sealed object rejected, every
 * truncation rejected, the version byte (older: corrupt, newer: COFFER_EVERSION), and
 * blob_seal/blob_open binding the blob id, the type and the key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "repo/envelope.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx {
    keyring_t *k;
    session_t s;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    uint8_t root[32];
    for (int i = 0; i < 32; i++)
        root[i] = (uint8_t)(i * 11 + 1);
    if (keyring_new(root, &f->k) || session_start(f->k, &f->s))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    session_wipe(&f->s);
    keyring_free(f->k);
    free(f);
    return 0;
}

/* ---- nonces ---- */

enum { NT = 4, PER_THREAD = 10000 };

typedef struct nonce_ctx {
    session_t *s;
    uint64_t *counters; /* NT * PER_THREAD */
    int t;
    pthread_barrier_t *bar;
    int rc;
} nonce_ctx_t;

static void *nonce_thread(void *arg)
{
    nonce_ctx_t *c = arg;
    buf_t b;
    buf_init(&b);
    uint8_t id[32] = {0};
    pthread_barrier_wait(c->bar);
    for (int i = 0; i < PER_THREAD; i++) {
        buf_reset(&b);
        /* alternate blobs and envelopes: both draw from the one session counter */
        if (i % 2)
            c->rc |= blob_seal(c->s, BLOB_DATA, id, "x", 1, &b);
        else
            c->rc |= envelope_seal(c->s, ENV_INDEX, NULL, "y", 1, false, &b);
        const uint8_t *nonce = i % 2 ? b.data : b.data + 2 + SESSION_ID_LEN;
        uint64_t v = 0;
        for (int k = 0; k < 8; k++)
            v = v << 8 | nonce[k];
        if (nonce[8] | nonce[9] | nonce[10] | nonce[11])
            c->rc |= 1;
        c->counters[c->t * PER_THREAD + i] = v;
    }
    buf_release(&b);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_nonces_unique_across_threads(void **state)
{
    fx_t *f = *state;
    uint64_t *all = calloc(NT * PER_THREAD, sizeof *all);
    assert_non_null(all);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NT);
    nonce_ctx_t ctx[NT];
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) {
        ctx[t] = (nonce_ctx_t){.s = &f->s, .counters = all, .t = t, .bar = &bar};
        assert_int_equal(pthread_create(&th[t], NULL, nonce_thread, &ctx[t]), 0);
    }
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(ctx[t].rc, 0);
    }
    pthread_barrier_destroy(&bar);
    /* the counters used are exactly 1..40000: none repeated, none skipped, none zero */
    qsort(all, NT * PER_THREAD, sizeof *all, cmp_u64);
    for (size_t i = 0; i < NT * PER_THREAD; i++)
        if (all[i] != i + 1)
            fail_msg("counter #%zu is %llu, expected %zu", i, (unsigned long long)all[i], i + 1);
    assert_true(atomic_load(&f->s.counter) == NT * PER_THREAD + 1);
    free(all);
}

static void test_sessions_distinct(void **state)
{
    fx_t *f = *state;
    session_t a, b;
    assert_int_equal(session_start(f->k, &a), 0);
    assert_int_equal(session_start(f->k, &b), 0);
    assert_memory_not_equal(a.id, b.id, SESSION_ID_LEN);
    assert_memory_not_equal(a.key, b.key, 32);
    assert_true(atomic_load(&a.counter) == 1);
    uint8_t ka[32], kb[32];
    assert_int_equal(keyring_session_key(f->k, a.id, ka), 0);
    assert_int_equal(keyring_session_key(f->k, b.id, kb), 0);
    assert_memory_equal(ka, a.key, 32);
    assert_memory_equal(kb, b.key, 32);
    /* cached: same answer again */
    assert_int_equal(keyring_session_key(f->k, a.id, ka), 0);
    assert_memory_equal(ka, a.key, 32);
    session_wipe(&a);
    session_wipe(&b);
    session_wipe(NULL);
}

/* More session ids than the cache holds: keys stay right across the cache reset. */
static void test_keyring_cache_reset(void **state)
{
    fx_t *f = *state;
    enum { N = 5000 };
    uint8_t(*first)[32] = malloc(N * 32);
    assert_non_null(first);
    for (int i = 0; i < N; i++) {
        uint8_t sid[SESSION_ID_LEN] = {0};
        memcpy(sid, &i, sizeof i);
        sid[15] = 0x5c;
        assert_int_equal(keyring_session_key(f->k, sid, first[i]), 0);
    }
    for (int i = 0; i < N; i += 7) {
        uint8_t sid[SESSION_ID_LEN] = {0}, k2[32];
        memcpy(sid, &i, sizeof i);
        sid[15] = 0x5c;
        assert_int_equal(keyring_session_key(f->k, sid, k2), 0);
        assert_memory_equal(k2, first[i], 32);
    }
    assert_memory_not_equal(first[0], first[1], 32);
    /* the fixture's session still opens after all that */
    buf_t b, out;
    buf_init(&b);
    buf_init(&out);
    assert_int_equal(envelope_seal(&f->s, ENV_SNAPSHOT, NULL, "hello", 5, false, &b), 0);
    assert_int_equal(envelope_open(f->k, ENV_SNAPSHOT, NULL, b.data, b.len, "s", &out), 0);
    assert_int_equal(out.len, 5);
    buf_release(&b);
    buf_release(&out);
    free(first);
}

/* ---- envelopes ---- */

static void fill(uint8_t *p, size_t n, bool compressible, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        if (compressible) {
            p[i] = (uint8_t)("abcdefgh"[(i / 13) % 8]);
        } else {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            p[i] = (uint8_t)x;
        }
    }
}

static void test_envelope_roundtrip(void **state)
{
    fx_t *f = *state;
    static const size_t sizes[] = {0, 1, 63, 64, 65, 100, 4096, 100000, 1u << 20};
    uint8_t *data = malloc(1u << 20);
    assert_non_null(data);
    buf_t b, out;
    buf_init(&b);
    buf_init(&out);
    uint8_t id[32];
    memset(id, 0x42, sizeof id);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int comp = 0; comp < 2; comp++)
            for (int pattern = 0; pattern < 2; pattern++)
                for (int with_id = 0; with_id < 2; with_id++) {
                    size_t n = sizes[i];
                    fill(data, n, pattern, (uint32_t)i);
                    const uint8_t *use_id = with_id ? id : NULL;
                    assert_int_equal(envelope_seal(&f->s, ENV_INDEX, use_id, data, n, comp, &b), 0);
                    assert_int_equal(b.data[0], FORMAT_VERSION);
                    assert_int_equal(b.data[1], ENV_INDEX);
                    assert_memory_equal(b.data + 2, f->s.id, SESSION_ID_LEN);
                    if (!comp)
                        assert_int_equal(b.len, n + 1 + ENVELOPE_OVERHEAD);
                    if (comp && pattern && n >= 4096)
                        assert_true(b.len < n / 4); /* really compressed */
                    if (comp && !pattern)
                        /* incompressible: stored raw, at most the raw size + 1 */
                        assert_true(b.len <= n + 1 + ENVELOPE_OVERHEAD);
                    buf_reset(&out);
                    assert_int_equal(buf_append(&out, "junk", 4), 0); /* out is reset */
                    assert_int_equal(
                        envelope_open(f->k, ENV_INDEX, use_id, b.data, b.len, "obj", &out), 0);
                    assert_int_equal(out.len, n);
                    if (n)
                        assert_memory_equal(out.data, data, n);
                }
    buf_release(&b);
    buf_release(&out);
    free(data);
}

static void test_envelope_binding(void **state)
{
    fx_t *f = *state;
    buf_t b, out;
    buf_init(&b);
    buf_init(&out);
    uint8_t id[32], other[32];
    memset(id, 1, sizeof id);
    memset(other, 1, sizeof other);
    other[31] = 2;
    assert_int_equal(envelope_seal(&f->s, ENV_CONFIG, id, "payload", 7, false, &b), 0);
    assert_int_equal(envelope_open(f->k, ENV_CONFIG, id, b.data, b.len, "c", &out), 0);
    /* wrong id, no id */
    assert_int_equal(envelope_open(f->k, ENV_CONFIG, other, b.data, b.len, "c", &out),
                     COFFER_ECORRUPT);
    assert_int_equal(envelope_open(f->k, ENV_CONFIG, NULL, b.data, b.len, "c", &out),
                     COFFER_ECORRUPT);
    /* expecting another type */
    assert_int_equal(envelope_open(f->k, ENV_SNAPSHOT, id, b.data, b.len, "c", &out),
                     COFFER_ECORRUPT);
    /* the type byte rewritten to the expected one: the tag (AD) catches it */
    b.data[1] = ENV_SNAPSHOT;
    assert_int_equal(envelope_open(f->k, ENV_SNAPSHOT, id, b.data, b.len, "c", &out),
                     COFFER_ECORRUPT);
    b.data[1] = ENV_CONFIG;
    /* a keyring with another root cannot open it */
    uint8_t root2[32] = {9};
    keyring_t *k2;
    assert_int_equal(keyring_new(root2, &k2), 0);
    assert_int_equal(envelope_open(k2, ENV_CONFIG, id, b.data, b.len, "c", &out), COFFER_ECORRUPT);
    keyring_free(k2);
    keyring_free(NULL);

    /* versions: newer is EVERSION (tells the user to upgrade), older/zero is corrupt */
    b.data[0] = FORMAT_VERSION + 1;
    assert_int_equal(envelope_open(f->k, ENV_CONFIG, id, b.data, b.len, "c", &out),
                     COFFER_EVERSION);
    assert_non_null(strstr(err_msg(), "upgrade"));
    b.data[0] = 0xff;
    assert_int_equal(envelope_open(f->k, ENV_CONFIG, id, b.data, b.len, "c", &out),
                     COFFER_EVERSION);
    b.data[0] = 0;
    assert_int_equal(envelope_open(f->k, ENV_CONFIG, id, b.data, b.len, "c", &out),
                     COFFER_ECORRUPT);
    b.data[0] = FORMAT_VERSION;
    assert_int_equal(envelope_open(f->k, ENV_CONFIG, id, b.data, b.len, "c", &out), 0);
    assert_int_equal(out.len, 7);
    assert_memory_equal(out.data, "payload", 7);
    buf_release(&b);
    buf_release(&out);
}

static void test_envelope_every_bit_flip(void **state)
{
    fx_t *f = *state;
    for (int comp = 0; comp < 2; comp++) {
        buf_t b, out;
        buf_init(&b);
        buf_init(&out);
        uint8_t payload[100];
        fill(payload, sizeof payload, true, 1);
        size_t n = comp ? sizeof payload : 20;
        assert_int_equal(envelope_seal(&f->s, ENV_LEASE, NULL, payload, n, comp, &b), 0);
        for (size_t bit = 0; bit < b.len * 8; bit++) {
            b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = envelope_open(f->k, ENV_LEASE, NULL, b.data, b.len, "flip", &out);
            if (rc != COFFER_ECORRUPT && rc != COFFER_EVERSION)
                fail_msg("flipping bit %zu of %zu gave %d", bit, b.len * 8, rc);
            b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        assert_int_equal(envelope_open(f->k, ENV_LEASE, NULL, b.data, b.len, "flip", &out), 0);
        assert_int_equal(out.len, n);
        assert_memory_equal(out.data, payload, n);
        /* every truncation, and an extra byte */
        for (size_t len = 0; len < b.len; len++) {
            uint8_t *p = malloc(len ? len : 1);
            assert_non_null(p);
            memcpy(p, b.data, len);
            int rc = envelope_open(f->k, ENV_LEASE, NULL, p, len, "trunc", &out);
            if (rc != COFFER_ECORRUPT)
                fail_msg("prefix %zu of %zu gave %d", len, b.len, rc);
            free(p);
        }
        assert_int_equal(buf_put_u8(&b, 0), 0);
        assert_int_equal(envelope_open(f->k, ENV_LEASE, NULL, b.data, b.len, "long", &out),
                         COFFER_ECORRUPT);
        buf_release(&b);
        buf_release(&out);
    }
}

/* ---- blobs ---- */

static void test_blob_binding(void **state)
{
    fx_t *f = *state;
    uint8_t id[32], other[32];
    memset(id, 0xab, sizeof id);
    memcpy(other, id, 32);
    other[0] ^= 1;
    uint8_t data[5000];
    fill(data, sizeof data, false, 3);
    buf_t b, out;
    buf_init(&b);
    buf_init(&out);
    assert_int_equal(buf_append(&b, "prefix", 6), 0); /* blob_seal appends */
    assert_int_equal(blob_seal(&f->s, BLOB_DATA, id, data, sizeof data, &b), 0);
    assert_int_equal(b.len, 6 + sizeof data + BLOB_OVERHEAD);
    assert_memory_equal(b.data, "prefix", 6);
    const uint8_t *sealed = b.data + 6;
    size_t n = b.len - 6;
    uint8_t key[32];
    assert_int_equal(keyring_session_key(f->k, f->s.id, key), 0);
    assert_int_equal(blob_open(key, BLOB_DATA, id, sealed, n, &out), 0);
    assert_int_equal(out.len, sizeof data);
    assert_memory_equal(out.data, data, sizeof data);
    /* another id, another type, another key */
    assert_int_equal(blob_open(key, BLOB_DATA, other, sealed, n, &out), COFFER_ECORRUPT);
    assert_int_equal(blob_open(key, BLOB_TREE, id, sealed, n, &out), COFFER_ECORRUPT);
    uint8_t key2[32];
    memcpy(key2, key, 32);
    key2[5] ^= 0x80;
    assert_int_equal(blob_open(key2, BLOB_DATA, id, sealed, n, &out), COFFER_ECORRUPT);
    /* truncations and a flipped byte in each part (nonce, ciphertext, tag) */
    static const size_t lens[] = {0, 1, BLOB_OVERHEAD - 1, BLOB_OVERHEAD, 100};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        assert_int_equal(blob_open(key, BLOB_DATA, id, sealed, lens[i], &out), COFFER_ECORRUPT);
    size_t spots[] = {0, 11, 12, n / 2, n - 17, n - 16, n - 1};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        b.data[6 + spots[i]] ^= 0x10;
        assert_int_equal(blob_open(key, BLOB_DATA, id, sealed, n, &out), COFFER_ECORRUPT);
        b.data[6 + spots[i]] ^= 0x10;
    }
    assert_int_equal(blob_open(key, BLOB_DATA, id, sealed, n, &out), 0);
    /* an empty blob */
    buf_reset(&b);
    assert_int_equal(blob_seal(&f->s, BLOB_TREE, id, NULL, 0, &b), 0);
    assert_int_equal(b.len, BLOB_OVERHEAD);
    assert_int_equal(blob_open(key, BLOB_TREE, id, b.data, b.len, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(blob_open(key, BLOB_TREE, other, b.data, b.len, &out), COFFER_ECORRUPT);
    buf_release(&b);
    buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nonces_unique_across_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_distinct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring_cache_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope_binding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope_every_bit_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_binding, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
