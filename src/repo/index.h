/*
 * index.h -- the in-memory blob index: blob id -> (pack, offset, lengths, type, flags).
 *
 * Layer: repo. Entries are 48 bytes in one array, found through an open-addressing table of
 * 32-bit slots (linear probing on the id's first bytes, which are uniformly random), grown at
 * 70 % load. Packs are numbered in a side table holding the pack id, the session id whose key
 * decrypts it, and flags.
 *
 * Duplicates: a blob may live in several packs (after a repack). The index keeps one location,
 * preferring a pack that is not condemned.
 *
 * Thread safety: every function takes the internal rwlock; lookups run in parallel.
 */
#ifndef COFFER_REPO_INDEX_H
#define COFFER_REPO_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INDEX_PACK_PENDING UINT32_MAX /* entry reserved, its pack not yet written */
#define INDEX_RAW_MAX ((1u << 28) - 1)

/* Pack flags. */
#define PACK_F_CONDEMNED 0x1u /* listed in a condemned list: never deduplicate against it */
#define PACK_F_TREE 0x2u      /* holds tree blobs */

typedef struct index_entry {
    uint8_t id[32];
    uint32_t pack;
    uint32_t offset;
    uint32_t stored_len;
    uint32_t info; /* raw length (28 bits) | bit 28 compressed | bits 30-31 type (1 D, 2 T) */
} index_entry_t;

typedef struct index_pack {
    uint8_t id[32];
    uint8_t session[16];
    uint32_t flags;
} index_pack_t;

/* Decoded view of an entry. */
typedef struct blob_loc {
    uint8_t type; /* BLOB_DATA ('D') or BLOB_TREE ('T') */
    bool compressed;
    uint32_t pack;
    uint32_t offset;
    uint32_t stored_len;
    uint32_t raw_len;
} blob_loc_t;

typedef struct index index_t;

int index_new(index_t **out);
void index_free(index_t *ix);

/* Add a pack (or find it if already present); returns its number in *out_no. */
int index_add_pack(index_t *ix, const uint8_t id[32], const uint8_t session[16], uint32_t flags,
                   uint32_t *out_no);
/* Copy of pack `no` (false if out of range). */
bool index_get_pack(index_t *ix, uint32_t no, index_pack_t *out);
size_t index_pack_count(index_t *ix);
/* Find a pack number by id. */
bool index_find_pack(index_t *ix, const uint8_t id[32], uint32_t *out_no);
void index_set_pack_flags(index_t *ix, uint32_t no, uint32_t flags);

/* Insert a located blob. An existing pending entry (a reservation) takes the new location; an
 * existing located entry is replaced only when its pack is condemned and the new one is not. */
int index_insert(index_t *ix, const uint8_t id[32], const blob_loc_t *loc);

/* Look up a blob. Returns true and fills *out (may be NULL) when present. */
bool index_lookup(index_t *ix, const uint8_t id[32], blob_loc_t *out);

/* Dedup for writers: if the blob is present in a pack that is not condemned (or reserved by
 * another writer), return 0 with *out_reserved = false. Otherwise reserve it (pack =
 * INDEX_PACK_PENDING) and return *out_reserved = true: the caller must then call
 * index_insert with the real location, or index_unreserve. */
int index_reserve(index_t *ix, const uint8_t id[32], uint8_t type, bool *out_reserved);
void index_unreserve(index_t *ix, const uint8_t id[32]);

size_t index_count(index_t *ix);
/* Visit every entry (read lock held during the walk: the callback must not call back into
 * the index). Stops when cb returns non-zero and returns that value. */
int index_foreach(index_t *ix, int (*cb)(void *ud, const uint8_t id[32], const blob_loc_t *loc),
                  void *ud);

/* Helpers to pack/unpack the info word. */
uint32_t index_info(uint8_t type, bool compressed, uint32_t raw_len);

#endif
