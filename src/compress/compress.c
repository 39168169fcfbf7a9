/*
 * compress.c -- zstd policy for blobs (see compress.h).
 *
 * Layer: compress (uses common).
 * Invariants:
 *  - "Worth it" means the output saves at least 3 %: z <= n - ceil(3n/100). zstd is handed an
 *    output buffer of exactly that size, so a blob that would not save enough fails with
 *    dstSize_tooSmall as soon as its output overflows, instead of being compressed to the end
 *    and thrown away. The probe uses the same rule on its sample.
 *  - Blobs of at most PROBE_MAX bytes are not probed: compressing them (bounded output, see
 *    above) costs about what a probe would. Larger blobs are probed on PROBE_MAX/2 bytes from
 *    the start and PROBE_MAX/2 from the middle.
 *  - Decompression never allocates more than raw_len (capped by COMPRESS_RAW_MAX) and
 *    accepts only one standard zstd frame whose declared content size is raw_len. Each thread
 *    keeps one ZSTD_DCtx, freed by a pthread key destructor at thread exit.
 */
#include "compress/compress.h"
#include "common/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#define PROBE_MAX (64u * 1024)
#define PROBE_LEVEL 1
#define ZSTD_MAGIC_LE "\x28\xb5\x2f\xfd" /* RFC 8878 frame magic 0xFD2FB528, little-endian */

struct compressor {
    int level;        /* 0: never compress */
    ZSTD_CCtx *cctx;  /* owned */
    uint8_t *sample;  /* PROBE_MAX bytes, owned: the probe's input when the blob is larger */
    uint8_t *scratch; /* PROBE_MAX bytes, owned: the probe's (discarded) output */
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_key_ok;
static pthread_key_t g_dctx_key;
static _Thread_local ZSTD_DCtx *t_dctx;

static int zstd_fail(size_t code, const char *what)
{
    int rc =
        ZSTD_getErrorCode(code) == ZSTD_error_memory_allocation ? COFFER_ENOMEM : COFFER_EINVAL;
    return err_set(rc, "%s: zstd: %s", what, ZSTD_getErrorName(code));
}

/* Largest output that still saves >= 3 % of n. */
static size_t worth_cap(size_t n)
{
    return n - (n / 100 * 3 + ((n % 100) * 3 + 99) / 100);
}

int compressor_new(int level, compressor_t **out)
{
    compressor_t *c = NULL;
    int rc = 0;
    if (level < 0 || level > COMPRESS_LEVEL_MAX) {
        rc = err_set(COFFER_EINVAL, "compression level %d is out of range: use 0 (off) to %d",
                     level, COMPRESS_LEVEL_MAX);
        goto out;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto nomem;
    c->level = level;
    if (level > 0) {
        c->cctx = ZSTD_createCCtx();
        c->sample = malloc(PROBE_MAX);
        c->scratch = malloc(PROBE_MAX);
        if (!c->cctx || !c->sample || !c->scratch)
            goto nomem;
    }
    *out = c;
    c = NULL;
    goto out;
nomem:
    rc = err_set(COFFER_ENOMEM, "out of memory creating a zstd compressor");
out:
    compressor_free(c);
    return rc;
}

void compressor_free(compressor_t *c)
{
    if (!c)
        return;
    ZSTD_freeCCtx(c->cctx);
    free(c->sample);
    free(c->scratch);
    free(c);
}

/* Does the sample of in[0..n) compress by >= 3 % at level 1? *out_worth set on success. */
static int probe(compressor_t *c, const uint8_t *in, size_t n, bool *out_worth)
{
    const uint8_t *s = in;
    size_t slen = n;
    if (n > PROBE_MAX) {
        size_t half = PROBE_MAX / 2;
        memcpy(c->sample, in, half);
        memcpy(c->sample + half, in + n / 2, half); /* n/2 + half <= n since n > 2*half */
        s = c->sample;
        slen = PROBE_MAX;
    }
    size_t z = ZSTD_compressCCtx(c->cctx, c->scratch, worth_cap(slen), s, slen, PROBE_LEVEL);
    if (ZSTD_isError(z) && ZSTD_getErrorCode(z) != ZSTD_error_dstSize_tooSmall)
        return zstd_fail(z, "probing a blob's compressibility");
    *out_worth = !ZSTD_isError(z);
    return 0;
}

int compressor_run(compressor_t *c, const void *in, size_t n, buf_t *out, bool *out_compressed)
{
    bool compressed = false;
    bool worth = true;
    size_t z;
    int rc;

    buf_reset(out);
    rc = buf_reserve(out, n);
    if (rc)
        goto out;
    if (c->level == 0 || n == 0)
        goto raw;
    if (n > PROBE_MAX) { /* small blobs: compressing is as cheap as probing */
        rc = probe(c, in, n, &worth);
        if (rc)
            goto out;
        if (!worth)
            goto raw;
    }
    z = ZSTD_compressCCtx(c->cctx, out->data, worth_cap(n), in, n, c->level);
    if (!ZSTD_isError(z)) {
        out->len = z;
        out->data[z] = 0;
        compressed = true;
        goto out;
    }
    if (ZSTD_getErrorCode(z) != ZSTD_error_dstSize_tooSmall) {
        rc = zstd_fail(z, "compressing a blob");
        goto out;
    }
raw:
    rc = buf_append(out, in, n); /* cannot fail: n bytes are reserved */
out:
    if (!rc)
        *out_compressed = compressed;
    return rc;
}

static void dctx_destroy(void *p)
{
    ZSTD_freeDCtx(p);
}

static void dctx_key_init(void)
{
    g_key_ok = pthread_key_create(&g_dctx_key, dctx_destroy) == 0;
}

static int dctx_get(ZSTD_DCtx **out)
{
    pthread_once(&g_once, dctx_key_init);
    if (!g_key_ok)
        return err_set(COFFER_ENOMEM, "cannot create the zstd thread-local key");
    if (!t_dctx) {
        ZSTD_DCtx *d = ZSTD_createDCtx();
        if (!d || pthread_setspecific(g_dctx_key, d) != 0) {
            ZSTD_freeDCtx(d);
            return err_set(COFFER_ENOMEM, "out of memory creating a zstd decompressor");
        }
        t_dctx = d;
    }
    *out = t_dctx;
    return 0;
}

int compress_decompress(const void *in, size_t n, size_t raw_len, buf_t *out)
{
    ZSTD_DCtx *d = NULL;
    int rc;

    buf_reset(out);
    if (raw_len > COMPRESS_RAW_MAX)
        return err_set(COFFER_ELIMIT,
                       "compressed blob claims %zu bytes, more than the %u-byte "
                       "limit: the index entry is damaged",
                       raw_len, COMPRESS_RAW_MAX);
    if (n < 4 || memcmp(in, ZSTD_MAGIC_LE, 4) != 0)
        return err_set(COFFER_ECORRUPT, "compressed blob is not a zstd frame");
    unsigned long long fcs = ZSTD_getFrameContentSize(in, n);
    if (fcs == ZSTD_CONTENTSIZE_ERROR || fcs == ZSTD_CONTENTSIZE_UNKNOWN)
        return err_set(COFFER_ECORRUPT, "compressed blob has a damaged zstd frame header");
    if (fcs != raw_len)
        return err_set(COFFER_ECORRUPT,
                       "compressed blob declares %llu bytes but the index says %zu", fcs, raw_len);
    size_t fsz = ZSTD_findFrameCompressedSize(in, n);
    if (ZSTD_isError(fsz) || fsz != n)
        return err_set(COFFER_ECORRUPT,
                       "compressed blob of %zu bytes is truncated or has trailing bytes", n);
    rc = dctx_get(&d);
    if (rc)
        return rc;
    rc = buf_reserve(out, raw_len);
    if (rc)
        return rc;
    size_t r = ZSTD_decompressDCtx(d, out->data, raw_len, in, n);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
            return zstd_fail(r, "decompressing a blob");
        return err_set(COFFER_ECORRUPT, "compressed blob does not decompress: zstd: %s",
                       ZSTD_getErrorName(r));
    }
    if (r != raw_len)
        return err_set(COFFER_ECORRUPT, "compressed blob decompressed to %zu bytes, expected %zu",
                       r, raw_len);
    out->len = r;
    out->data[r] = 0;
    return 0;
}
