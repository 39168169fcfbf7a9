/*
 * chunker.c -- FastCDC with normalized chunking (level 2) and cut-point skipping.
 *
 * Layer: chunk (uses common, crypto).
 *
 * Rolling hash: h = (h << 1) + gear[byte]. Bit k of h depends only on the last k+1 bytes, so
 * the low bits mix badly (bit 0 is just the last byte's gear bit) and the top bits see the
 * whole 64-byte window. The masks therefore take the TOP bits of the word: mask_s has
 * log2(avg)+2 one-bits (cut probability 2^-(bits+2) per byte, used for chunk lengths in
 * [min, avg)), mask_l has log2(avg)-2 (used for [avg, max)). A cut is taken where
 * (h & mask) == 0; a chunk that reaches max is cut there.
 *
 * Cut-point skipping: no cut can end before min, and after 64 updates the hash no longer
 * depends on older bytes. So hashing starts 64 bytes before min, from h = 0, and the value at
 * every candidate cut is exactly the hash a chunker rolling from the chunk's first byte would
 * have. Bytes before that are not even read.
 *
 * Invariants (what makes the cuts independent of buffer boundaries): the only state carried
 * between calls is (hash, pos), pos being the number of bytes of the current chunk already
 * consumed; each phase below is bounded by both the buffer end and the phase end in chunk
 * coordinates, so splitting a buffer anywhere resumes the same loop at the same byte with the
 * same hash. After a cut, hash = pos = 0.
 */
#include "chunk/chunker.h"
#include "common/error.h"
#include "crypto/crypto.h"

#include <string.h>

#define GEAR_INFO "coffer/v1/gear"
#define HASH_WINDOW 64 /* bits in the hash word = bytes that influence it */

int chunker_params_init(chunker_params_t *p, const uint8_t secret[32], uint32_t min, uint32_t avg,
                        uint32_t max)
{
    chunker_params_t tmp;
    uint8_t raw[sizeof tmp.gear];
    int rc = 0;

    if (avg == 0 || (avg & (avg - 1)) != 0 || min < CHUNK_MIN_FLOOR || min >= avg || avg >= max ||
        max > CHUNK_MAX_CEIL) {
        rc = err_set(COFFER_EINVAL,
                     "chunker sizes min=%u avg=%u max=%u are inconsistent: need avg a power "
                     "of two and %u <= min < avg < max <= %u",
                     min, avg, max, CHUNK_MIN_FLOOR, CHUNK_MAX_CEIL);
        goto out;
    }
    rc = crypto_hkdf(secret, 32, NULL, 0, GEAR_INFO, sizeof GEAR_INFO - 1, raw, sizeof raw);
    if (rc) {
        err_ctx(rc, "while deriving the chunker gear table");
        goto out;
    }
    for (size_t i = 0; i < 256; i++) {
        uint64_t v = 0;
        for (size_t b = 0; b < 8; b++)
            v |= (uint64_t)raw[i * 8 + b] << (8 * b);
        tmp.gear[i] = v;
    }
    /* avg in [128, 2^25] here, so bits-2 >= 5 and bits+2 <= 27: both shifts are in range. */
    unsigned bits = (unsigned)__builtin_ctz(avg);
    tmp.min = min;
    tmp.avg = avg;
    tmp.max = max;
    tmp.mask_s = ~UINT64_C(0) << (HASH_WINDOW - (bits + 2));
    tmp.mask_l = ~UINT64_C(0) << (HASH_WINDOW - (bits - 2));
    memcpy(p, &tmp, sizeof tmp);
out:
    crypto_wipe(raw, sizeof raw);
    crypto_wipe(&tmp, sizeof tmp);
    return rc;
}

void chunker_init(chunker_t *c, const chunker_params_t *p)
{
    c->p = p;
    c->hash = 0;
    c->pos = 0;
}

static inline size_t min_size(size_t a, uint64_t b)
{
    return (uint64_t)a < b ? a : (size_t)b;
}

/* Roll the hash over data[i..e) and return one past the first byte after which
 * (hash & mask) == 0, or 0 if there is none; *hp holds the hash at the end (only meaningful
 * when 0 is returned, as a cut resets it).
 *
 * Speed: h = 2h + g is a serial chain and a scaled lea or shift+add costs 2 cycles on current
 * x86 cores, which would cap the loop near 1 byte per 2 cycles. Two bytes are therefore taken
 * per step: h2 = 4h + (2*g1 + g2), where the bracket does not depend on h, halves the chain;
 * the odd hash h1 = 2h + g1 is computed beside it only to be tested. Same values, same cuts. */
static inline size_t roll(const uint64_t *gear, const uint8_t *data, size_t i, size_t e,
                          uint64_t mask, uint64_t *hp)
{
    uint64_t h = *hp;
#define ROLL_PAIR(k)                                                                               \
    do {                                                                                           \
        uint64_t g1 = gear[data[i + (k)]], g2 = gear[data[i + (k) + 1]];                           \
        uint64_t h1 = (h << 1) + g1;                                                               \
        h = (h << 2) + ((g1 << 1) + g2);                                                           \
        if (!(h1 & mask))                                                                          \
            return i + (k) + 1;                                                                    \
        if (!(h & mask))                                                                           \
            return i + (k) + 2;                                                                    \
    } while (0)
    for (; e - i >= 8; i += 8) {
        ROLL_PAIR(0);
        ROLL_PAIR(2);
        ROLL_PAIR(4);
        ROLL_PAIR(6);
    }
#undef ROLL_PAIR
    for (; i < e; i++) {
        h = (h << 1) + gear[data[i]];
        if (!(h & mask))
            return i + 1;
    }
    *hp = h;
    return 0;
}

size_t chunker_next(chunker_t *c, const uint8_t *data, size_t n)
{
    const chunker_params_t *p = c->p;
    const uint64_t *gear = p->gear;
    const uint64_t hash_from = p->min - HASH_WINDOW; /* min >= CHUNK_MIN_FLOOR = 64 */
    uint64_t h = c->hash;
    uint64_t pos = c->pos;
    size_t i = 0;
    size_t cut = 0; /* bytes of data ending the chunk, once a cut is found */

    if (n == 0)
        return 0;

    /* Phase 0: bytes that can influence no candidate cut are skipped. */
    if (pos < hash_from) {
        uint64_t k = hash_from - pos;
        if (k >= n) {
            pos += n;
            goto out;
        }
        i = (size_t)k;
        pos = hash_from;
    }

    /* Phase 1: warm the hash up to chunk length min-1; no cut is allowed yet. */
    if (pos < p->min - 1) {
        size_t e = i + min_size(n - i, p->min - 1 - pos);
        pos += e - i;
        for (; i < e; i++)
            h = (h << 1) + gear[data[i]];
        if (i == n)
            goto out;
    }

    /* Phase 2: chunk lengths [min, avg), strict mask. */
    if (pos < p->avg - 1) {
        size_t e = i + min_size(n - i, p->avg - 1 - pos);
        pos += e - i;
        cut = roll(gear, data, i, e, p->mask_s, &h);
        i = e;
        if (cut || i == n)
            goto out;
    }

    /* Phase 3: chunk lengths [avg, max), loose mask; then the forced cut at max. */
    {
        size_t e = i + min_size(n - i, p->max - 1 - pos);
        pos += e - i;
        cut = roll(gear, data, i, e, p->mask_l, &h);
        i = e;
        if (cut || i == n)
            goto out;
        /* pos == max - 1 and data[i] exists: it is the chunk's last byte. */
        cut = i + 1;
    }

out:
    c->hash = cut ? 0 : h;
    c->pos = cut ? 0 : pos;
    return cut;
}
