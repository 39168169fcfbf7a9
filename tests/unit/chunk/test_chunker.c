/*
 * test_chunker.c -- unit tests for src/chunk/chunker.c: parameter validation, the keyed gear
 * table, identical cuts whatever the buffer boundaries, size bounds, mean chunk size, keying,
 * and resynchronisation after an insertion.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "chunk/chunker.h"
#include "common/error.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static const uint8_t SECRET[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                   16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

/* xorshift64*: fast reproducible test data. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static uint8_t *random_data(size_t n, uint64_t seed)
{
    uint8_t *d = malloc(n);
    assert_non_null(d);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = rng_next(&s);
        memcpy(d + i, &v, n - i < 8 ? n - i : 8);
    }
    return d;
}

typedef struct cuts {
    size_t *end; /* end offset of each chunk; the last is n */
    size_t count;
    size_t cap;
} cuts_t;

static void cuts_push(cuts_t *c, size_t end)
{
    if (c->count == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->end = realloc(c->end, c->cap * sizeof *c->end);
        assert_non_null(c->end);
    }
    c->end[c->count++] = end;
}

/* Chunk data[0..n) feeding pieces of the sizes rng picks (seed 0: one call per chunk). */
static cuts_t chunk_all(const chunker_params_t *p, const uint8_t *data, size_t n, uint64_t seed)
{
    cuts_t out = {0};
    chunker_t c;
    chunker_init(&c, p);
    uint64_t s = seed;
    size_t off = 0;   /* bytes fed so far */
    size_t start = 0; /* start of the current chunk */
    while (off < n) {
        size_t piece = n - off;
        if (seed) {
            uint64_t r = rng_next(&s);
            switch (r % 4) {
            case 0:
                piece = 1 + (size_t)(r >> 8) % 3;
                break;
            case 1:
                piece = 1 + (size_t)(r >> 8) % 100;
                break;
            case 2:
                piece = 1 + (size_t)(r >> 8) % (8 * KIB);
                break;
            default:
                piece = 1 + (size_t)(r >> 8) % (64 * KIB);
                break;
            }
            if (piece > n - off)
                piece = n - off;
        }
        size_t r = chunker_next(&c, data + off, piece);
        assert_true(r <= piece);
        if (r) {
            off += r;
            cuts_push(&out, off);
            start = off;
        } else {
            off += piece;
        }
    }
    if (start < n)
        cuts_push(&out, n);
    return out;
}

static void assert_cuts_equal(const cuts_t *a, const cuts_t *b)
{
    assert_int_equal(a->count, b->count);
    assert_memory_equal(a->end, b->end, a->count * sizeof *a->end);
}

static void test_params_validation(void **state)
{
    (void)state;
    chunker_params_t p;
    memset(&p, 0x5a, sizeof p);
    assert_int_equal(chunker_params_init(&p, SECRET, 1 * KIB, 3 * KIB, 16 * KIB), COFFER_EINVAL);
    assert_int_equal(p.min, 0x5a5a5a5a); /* untouched on failure */
    assert_int_equal(chunker_params_init(&p, SECRET, 32, 4 * KIB, 16 * KIB), COFFER_EINVAL);
    assert_int_equal(chunker_params_init(&p, SECRET, 4 * KIB, 4 * KIB, 16 * KIB), COFFER_EINVAL);
    assert_int_equal(chunker_params_init(&p, SECRET, 1 * KIB, 4 * KIB, 4 * KIB), COFFER_EINVAL);
    assert_int_equal(chunker_params_init(&p, SECRET, 1 * MIB, 32 * MIB, 65 * MIB), COFFER_EINVAL);
    assert_int_equal(chunker_params_init(&p, SECRET, 1 * KIB, 0, 16 * KIB), COFFER_EINVAL);
    assert_int_equal(p.min, 0x5a5a5a5a);
    assert_int_equal(chunker_params_init(&p, SECRET, 64, 128, 256), 0);
    assert_int_equal(chunker_params_init(&p, SECRET, 16 * MIB, 32 * MIB, 64 * MIB), 0);
    assert_int_equal(
        chunker_params_init(&p, SECRET, CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT),
        0);
    /* avg = 2^20: 22 top bits for the strict mask, 18 for the loose one. */
    assert_true(p.mask_s == ~UINT64_C(0) << 42);
    assert_true(p.mask_l == ~UINT64_C(0) << 46);
}

/* Gear values checked against `openssl kdf -keylen 2048 -kdfopt digest:SHA256 -kdfopt
 * hexkey:<SECRET> -kdfopt info:coffer/v1/gear HKDF`, read as little-endian 64-bit words. */
static void test_gear_table(void **state)
{
    (void)state;
    chunker_params_t p, q;
    uint8_t other[32];
    memcpy(other, SECRET, 32);
    other[31] ^= 1;
    assert_int_equal(chunker_params_init(&p, SECRET, 1 * KIB, 4 * KIB, 16 * KIB), 0);
    assert_true(p.gear[0] == UINT64_C(0x365a80de9d549fe7));
    assert_true(p.gear[1] == UINT64_C(0x4c98b8dab4f32b7e));
    assert_true(p.gear[255] == UINT64_C(0xf6b8f6deca22b9a6));
    assert_int_equal(chunker_params_init(&q, other, 1 * KIB, 4 * KIB, 16 * KIB), 0);
    assert_memory_not_equal(p.gear, q.gear, sizeof p.gear);
}

static void check_splits(uint32_t min, uint32_t avg, uint32_t max, size_t n, int rounds)
{
    chunker_params_t p;
    assert_int_equal(chunker_params_init(&p, SECRET, min, avg, max), 0);
    uint8_t *data = random_data(n, 42);
    cuts_t ref = chunk_all(&p, data, n, 0);
    assert_true(ref.count > 2);
    for (int i = 1; i <= rounds; i++) {
        cuts_t got = chunk_all(&p, data, n, (uint64_t)i * 7919);
        assert_cuts_equal(&ref, &got);
        free(got.end);
    }
    free(ref.end);
    free(data);
}

static void test_split_determinism(void **state)
{
    (void)state;
    check_splits(1 * KIB, 4 * KIB, 16 * KIB, 2 * MIB, 40);
    check_splits(64, 256, 1 * KIB, 256 * KIB, 40); /* min at the floor: no skipping */
    check_splits(100, 128, 200, 64 * KIB, 20);     /* many forced cuts */
}

static void check_bounds(const chunker_params_t *p, const cuts_t *c, size_t n)
{
    size_t prev = 0;
    for (size_t i = 0; i < c->count; i++) {
        size_t len = c->end[i] - prev;
        if (i + 1 < c->count)
            assert_true(len >= p->min && len <= p->max);
        else
            assert_true(len >= 1 && len <= p->max && c->end[i] == n);
        prev = c->end[i];
    }
}

static void test_bounds(void **state)
{
    (void)state;
    chunker_params_t p;
    assert_int_equal(chunker_params_init(&p, SECRET, 1 * KIB, 4 * KIB, 16 * KIB), 0);
    size_t n = 4 * MIB + 123;
    uint8_t *data = random_data(n, 7);
    cuts_t c = chunk_all(&p, data, n, 0);
    check_bounds(&p, &c, n);
    free(c.end);

    /* Constant data never matches a mask: every chunk is cut at max. */
    memset(data, 0, n);
    c = chunk_all(&p, data, n, 3);
    check_bounds(&p, &c, n);
    for (size_t i = 0; i + 1 < c.count; i++)
        assert_int_equal(c.end[i], (i + 1) * p.max);
    free(c.end);

    /* Default sizes. */
    assert_int_equal(
        chunker_params_init(&p, SECRET, CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT),
        0);
    free(data);
    n = 32 * MIB;
    data = random_data(n, 8);
    c = chunk_all(&p, data, n, 0);
    check_bounds(&p, &c, n);
    cuts_t c2 = chunk_all(&p, data, n, 11);
    assert_cuts_equal(&c, &c2);
    free(c.end);
    free(c2.end);
    free(data);
}

static void test_mean_size(void **state)
{
    (void)state;
    chunker_params_t p;
    assert_int_equal(chunker_params_init(&p, SECRET, 1 * KIB, 4 * KIB, 16 * KIB), 0);
    size_t n = 64 * MIB;
    uint8_t *data = random_data(n, 1234);
    cuts_t c = chunk_all(&p, data, n, 0);
    double mean = (double)n / (double)c.count;
    print_message("mean chunk %.0f bytes over %zu chunks (avg %u)\n", mean, c.count, p.avg);
    assert_true(mean > 0.7 * p.avg && mean < 1.3 * p.avg);
    free(c.end);
    free(data);
}

static void test_secret_changes_cuts(void **state)
{
    (void)state;
    chunker_params_t p, q;
    uint8_t other[32];
    memcpy(other, SECRET, 32);
    other[0] ^= 0x80;
    assert_int_equal(chunker_params_init(&p, SECRET, 1 * KIB, 4 * KIB, 16 * KIB), 0);
    assert_int_equal(chunker_params_init(&q, other, 1 * KIB, 4 * KIB, 16 * KIB), 0);
    size_t n = 1 * MIB;
    uint8_t *data = random_data(n, 99);
    cuts_t a = chunk_all(&p, data, n, 0);
    cuts_t b = chunk_all(&q, data, n, 0);
    /* Count cut offsets the two keys share: random coincidences only. */
    size_t shared = 0;
    for (size_t i = 0, j = 0; i + 1 < a.count && j + 1 < b.count;) {
        if (a.end[i] == b.end[j]) {
            shared++;
            i++;
            j++;
        } else if (a.end[i] < b.end[j]) {
            i++;
        } else {
            j++;
        }
    }
    assert_true(shared < a.count / 10);
    free(a.end);
    free(b.end);
    free(data);
}

static void test_insert_front(void **state)
{
    (void)state;
    chunker_params_t p;
    assert_int_equal(chunker_params_init(&p, SECRET, 1 * KIB, 4 * KIB, 16 * KIB), 0);
    size_t n = 4 * MIB, ins = 100;
    uint8_t *data = random_data(n + ins, 5);
    /* data[ins..] is the original; data[0..] the same with ins bytes inserted in front. */
    cuts_t orig = chunk_all(&p, data + ins, n, 0);
    cuts_t mod = chunk_all(&p, data, n + ins, 0);
    /* Find where the modified stream falls back onto the original boundaries. */
    size_t i = 0, j = 0;
    while (i < orig.count && j < mod.count && orig.end[i] != mod.end[j] - ins) {
        if (orig.end[i] < mod.end[j] - ins)
            i++;
        else
            j++;
    }
    assert_true(i < 4 && j < 4);
    assert_int_equal(orig.count - i, mod.count - j);
    for (size_t k = 0; i + k < orig.count; k++)
        assert_int_equal(orig.end[i + k], mod.end[j + k] - ins);
    free(orig.end);
    free(mod.end);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_validation), cmocka_unit_test(test_gear_table),
        cmocka_unit_test(test_split_determinism), cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_mean_size),         cmocka_unit_test(test_secret_changes_cuts),
        cmocka_unit_test(test_insert_front),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
