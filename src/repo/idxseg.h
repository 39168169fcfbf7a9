/*
 * idxseg.h -- index segment codec (doc/format.md §7).
 *
 * Layer: repo. A segment lists packs (id, session id) and their blobs, plus the ids of
 * segments it supersedes. Encoding takes a list of pack descriptions; decoding calls back per
 * pack and per blob. The decoder is fuzzed: every count is capped and checked against the
 * bytes left.
 */
#ifndef COFFER_REPO_IDXSEG_H
#define COFFER_REPO_IDXSEG_H

#include "common/buf.h"
#include "repo/pack.h"

#include <stddef.h>
#include <stdint.h>

#define IDXSEG_MAX_PACKS 1000000
#define IDXSEG_MAX_SUPERSEDES 1000000

typedef struct idxseg_pack {
    uint8_t id[32];
    uint8_t session[16];
    const pack_entry_t *entries; /* borrowed */
    size_t n;
} idxseg_pack_t;

int idxseg_encode(const uint8_t (*supersedes)[32], size_t n_sup, const idxseg_pack_t *packs,
                  size_t n_packs, buf_t *out);

typedef struct idxseg_cb {
    void *ud;
    /* Called once per superseded segment id. */
    int (*supersedes)(void *ud, const uint8_t id[32]);
    /* Called per pack with all its entries (entries borrowed for the call). */
    int (*pack)(void *ud, const uint8_t id[32], const uint8_t session[16],
                const pack_entry_t *entries, size_t n);
} idxseg_cb_t;

int idxseg_decode(const void *data, size_t n, const char *what, const idxseg_cb_t *cb);

#endif
