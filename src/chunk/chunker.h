/*
 * chunker.h -- FastCDC content-defined chunker with a keyed gear table.
 *
 * Layer: chunk (uses common, crypto).
 * The 256-entry gear table is derived from a 32-byte secret (the repository's chunker key) so
 * chunk boundaries do not fingerprint content across repositories. Normalized chunking
 * (FastCDC level 2): a stricter mask below the average size, a looser one above it.
 *
 * Usage: the caller feeds a stream in buffers of any size; chunker_next finds the next cut in
 * the bytes it is given, remembering the rolling state between calls. Default parameters:
 * min 256 KiB, avg 1 MiB, max 4 MiB (doc/format.md). Deterministic: the same secret and
 * bytes give the same cuts whatever the buffer boundaries.
 *
 * Thread safety: a chunker_params_t (gear table) is read-only after chunker_params_init and
 * may be shared; each stream needs its own chunker_t.
 */
#ifndef COFFER_CHUNK_CHUNKER_H
#define COFFER_CHUNK_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define CHUNK_MIN_DEFAULT (256u * 1024)
#define CHUNK_AVG_DEFAULT (1024u * 1024)
#define CHUNK_MAX_DEFAULT (4u * 1024 * 1024)

/* Bounds chunker_params_init accepts. The floor is low so unit tests can use small chunks; the
 * repository config is where a production floor (e.g. 64 KiB) belongs. */
#define CHUNK_MIN_FLOOR 64u
#define CHUNK_MAX_CEIL (64u * 1024 * 1024)

typedef struct chunker_params {
    uint32_t min, avg, max; /* avg a power of two; min < avg < max; max <= 64 MiB */
    uint64_t mask_s;        /* stricter mask (more bits) used before avg */
    uint64_t mask_l;        /* looser mask used after avg */
    uint64_t gear[256];
} chunker_params_t;

/* Derive the gear table from secret with HKDF ("coffer/v1/gear") and compute masks.
 * Returns COFFER_EINVAL for inconsistent sizes. */
int chunker_params_init(chunker_params_t *p, const uint8_t secret[32], uint32_t min, uint32_t avg,
                        uint32_t max);

typedef struct chunker {
    const chunker_params_t *p; /* borrowed */
    uint64_t hash;
    uint64_t pos; /* bytes consumed in the current chunk so far */
} chunker_t;

void chunker_init(chunker_t *c, const chunker_params_t *p);

/* Look for a cut in data[0..n). Returns the number of bytes that complete the current chunk
 * (1..n) if a boundary was found in them, and resets for the next chunk; returns 0 if no
 * boundary was found (all n bytes belong to the current chunk, keep feeding). At end of
 * stream the caller ends the last chunk itself. */
size_t chunker_next(chunker_t *c, const uint8_t *data, size_t n);

#endif
