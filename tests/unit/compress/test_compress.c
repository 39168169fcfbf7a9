/*
 * test_compress.c -- unit tests for src/compress/compress.c: round trips, the store-raw policy
 * (probe and final 3 % rule), and rejection of damaged, truncated, padded, mis-sized or
 * foreign frames.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "common/buf.h"
#include "common/error.h"
#include "compress/compress.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static void fill_random(uint8_t *d, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(rng_next(&s) >> 56);
}

/* Text-like data: words from a small vocabulary, spaces and newlines. */
static void fill_text(uint8_t *d, size_t n, uint64_t seed)
{
    static const char *const words[] = {"backup",     "restore",   "snapshot", "pack",  "index",
                                        "blob",       "chunk",     "the",      "of",    "a",
                                        "repository", "encrypted", "zstd",     "level", "probe"};
    uint64_t s = seed;
    size_t i = 0;
    while (i < n) {
        uint64_t r = rng_next(&s);
        const char *w = words[r % (sizeof words / sizeof words[0])];
        for (size_t k = 0; w[k] && i < n; k++)
            d[i++] = (uint8_t)w[k];
        if (i < n)
            d[i++] = (r >> 32) % 11 == 0 ? '\n' : ' ';
    }
}

static void roundtrip(compressor_t *c, const uint8_t *in, size_t n, bool want_compressed)
{
    buf_t z, back;
    bool compressed = !want_compressed;
    buf_init(&z);
    buf_init(&back);
    assert_int_equal(compressor_run(c, in, n, &z, &compressed), 0);
    assert_int_equal(compressed, want_compressed);
    if (compressed) {
        assert_true(z.len * 100 <= n * 97);
        assert_int_equal(compress_decompress(z.data, z.len, n, &back), 0);
        assert_int_equal(back.len, n);
        assert_memory_equal(back.data, in, n);
    } else {
        assert_int_equal(z.len, n);
        if (n)
            assert_memory_equal(z.data, in, n);
    }
    buf_release(&z);
    buf_release(&back);
}

static void test_text_roundtrip(void **state)
{
    (void)state;
    const size_t sizes[] = {100, 4 * KIB, 64 * KIB, 64 * KIB + 1, 1 * MIB, 4 * MIB + 7};
    const int levels[] = {1, 3, 9};
    uint8_t *d = malloc(4 * MIB + 7);
    assert_non_null(d);
    fill_text(d, 4 * MIB + 7, 1);
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
        compressor_t *c = NULL;
        assert_int_equal(compressor_new(levels[l], &c), 0);
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            roundtrip(c, d, sizes[i], true);
        compressor_free(c);
    }
    free(d);
}

static void test_raw_policy(void **state)
{
    (void)state;
    compressor_t *c = NULL, *off = NULL;
    size_t n = 4 * MIB;
    uint8_t *d = malloc(n);
    assert_non_null(d);
    assert_int_equal(compressor_new(3, &c), 0);
    assert_int_equal(compressor_new(0, &off), 0);

    fill_random(d, n, 2);
    roundtrip(c, d, n, false);    /* random: the probe says raw */
    roundtrip(c, d, 1000, false); /* small random: whole-blob attempt fails the 3 % rule */
    roundtrip(c, d, 0, false);    /* empty */

    /* Start and middle random, the rest zeros: the probe sees only noise and stores raw. */
    memset(d, 0, n);
    fill_random(d, 32 * KIB, 3);
    fill_random(d + n / 2, 32 * KIB, 4);
    roundtrip(c, d, n, false);

    /* Start and middle compressible (64 KiB of 4 MiB), the rest random: the probe passes,
     * the whole does not save 3 %, so it is stored raw. */
    fill_random(d, n, 5);
    fill_text(d, 32 * KIB, 6);
    fill_text(d + n / 2, 32 * KIB, 7);
    roundtrip(c, d, n, false);

    /* Level 0 never compresses. */
    fill_text(d, n, 8);
    roundtrip(off, d, n, false);
    roundtrip(c, d, n, true);

    compressor_free(c);
    compressor_free(off);
    compressor_free(NULL);
    free(d);
}

static void test_bad_level(void **state)
{
    (void)state;
    compressor_t *c = (compressor_t *)0x1;
    assert_int_equal(compressor_new(-1, &c), COFFER_EINVAL);
    assert_int_equal(compressor_new(20, &c), COFFER_EINVAL);
    assert_ptr_equal(c, (compressor_t *)0x1);
}

/* A compressed frame of n text bytes, for the decoder tests. */
static void make_frame(size_t n, uint8_t **out_raw, buf_t *z)
{
    compressor_t *c = NULL;
    bool compressed = false;
    uint8_t *raw = malloc(n);
    assert_non_null(raw);
    fill_text(raw, n, 9);
    assert_int_equal(compressor_new(3, &c), 0);
    assert_int_equal(compressor_run(c, raw, n, z, &compressed), 0);
    assert_true(compressed);
    compressor_free(c);
    *out_raw = raw;
}

static void test_damaged_frames(void **state)
{
    (void)state;
    size_t n = 200 * KIB;
    uint8_t *raw;
    buf_t z, back, tmp;
    buf_init(&z);
    buf_init(&back);
    buf_init(&tmp);
    make_frame(n, &raw, &z);

    /* Wrong expected size either way. */
    assert_int_equal(compress_decompress(z.data, z.len, n - 1, &back), COFFER_ECORRUPT);
    assert_int_equal(compress_decompress(z.data, z.len, n + 1, &back), COFFER_ECORRUPT);
    assert_int_equal(compress_decompress(z.data, z.len, 0, &back), COFFER_ECORRUPT);
    /* Above the cap: refused before looking at the data. */
    assert_int_equal(compress_decompress(z.data, z.len, COMPRESS_RAW_MAX + 1, &back),
                     COFFER_ELIMIT);

    /* Truncated at every length from 0 to the end (sparsely past the header). */
    for (size_t len = 0; len < z.len; len += len < 64 ? 1 : 97)
        assert_int_equal(compress_decompress(z.data, len, n, &back), COFFER_ECORRUPT);
    /* Trailing garbage, and two frames back to back. */
    assert_int_equal(buf_append(&tmp, z.data, z.len), 0);
    assert_int_equal(buf_put_u8(&tmp, 0), 0);
    assert_int_equal(compress_decompress(tmp.data, tmp.len, n, &back), COFFER_ECORRUPT);
    buf_reset(&tmp);
    assert_int_equal(buf_append(&tmp, z.data, z.len), 0);
    assert_int_equal(buf_append(&tmp, z.data, z.len), 0);
    assert_int_equal(compress_decompress(tmp.data, tmp.len, n, &back), COFFER_ECORRUPT);
    assert_int_equal(compress_decompress(tmp.data, tmp.len, 2 * n, &back), COFFER_ECORRUPT);
    /* Not zstd at all. */
    assert_int_equal(compress_decompress(raw, 1000, n, &back), COFFER_ECORRUPT);
    assert_int_equal(compress_decompress("", 0, 0, &back), COFFER_ECORRUPT);

    /* Bit flips: the decoder must never crash or return a wrong length. Without a frame
     * checksum (GCM authenticates blobs) a flipped literal may decode to other bytes, so
     * success is allowed; damage to the header and block structure must be caught. */
    size_t caught = 0;
    for (size_t i = 0; i < z.len; i += i < 64 ? 1 : 31) {
        buf_reset(&tmp);
        assert_int_equal(buf_append(&tmp, z.data, z.len), 0);
        tmp.data[i] ^= 0x21;
        int rc = compress_decompress(tmp.data, tmp.len, n, &back);
        if (rc == 0) {
            assert_int_equal(back.len, n);
        } else {
            assert_int_equal(rc, COFFER_ECORRUPT);
            caught++;
        }
    }
    assert_true(caught > 0);
    for (size_t i = 0; i < 4; i++) { /* the magic number */
        buf_reset(&tmp);
        assert_int_equal(buf_append(&tmp, z.data, z.len), 0);
        tmp.data[i] ^= 0x01;
        assert_int_equal(compress_decompress(tmp.data, tmp.len, n, &back), COFFER_ECORRUPT);
    }

    /* The intact frame still decodes (the per-thread context recovered from all of that). */
    assert_int_equal(compress_decompress(z.data, z.len, n, &back), 0);
    assert_memory_equal(back.data, raw, n);

    buf_release(&z);
    buf_release(&back);
    buf_release(&tmp);
    free(raw);
}

/* A frame that does not declare its content size is refused: we cannot bound it. */
static void test_unknown_size_frame(void **state)
{
    (void)state;
    const char text[] = "hello hello hello hello hello hello hello hello";
    uint8_t dst[256];
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    assert_non_null(cctx);
    ZSTD_inBuffer ib = {text, sizeof text, 0};
    ZSTD_outBuffer ob = {dst, sizeof dst, 0};
    assert_int_equal(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0), 0);
    size_t left = ZSTD_compressStream2(cctx, &ob, &ib, ZSTD_e_end);
    assert_int_equal(left, 0);
    ZSTD_freeCCtx(cctx);
    assert_int_equal(ZSTD_getFrameContentSize(dst, ob.pos), ZSTD_CONTENTSIZE_UNKNOWN);
    buf_t back;
    buf_init(&back);
    assert_int_equal(compress_decompress(dst, ob.pos, sizeof text, &back), COFFER_ECORRUPT);
    buf_release(&back);
}

struct dec_arg {
    const buf_t *z;
    const uint8_t *raw;
    size_t n;
    int failures;
};

static void *dec_thread(void *p)
{
    struct dec_arg *a = p;
    buf_t back;
    buf_init(&back);
    for (int i = 0; i < 20; i++)
        if (compress_decompress(a->z->data, a->z->len, a->n, &back) != 0 ||
            memcmp(back.data, a->raw, a->n) != 0)
            a->failures++;
    buf_release(&back);
    return NULL;
}

static void test_decompress_threads(void **state)
{
    (void)state;
    size_t n = 300 * KIB;
    uint8_t *raw;
    buf_t z;
    buf_init(&z);
    make_frame(n, &raw, &z);
    pthread_t th[4];
    struct dec_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct dec_arg){.z = &z, .raw = raw, .n = n};
        assert_int_equal(pthread_create(&th[i], NULL, dec_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    buf_release(&z);
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_roundtrip),     cmocka_unit_test(test_raw_policy),
        cmocka_unit_test(test_bad_level),          cmocka_unit_test(test_damaged_frames),
        cmocka_unit_test(test_unknown_size_frame), cmocka_unit_test(test_decompress_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
