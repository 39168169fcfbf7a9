/*
 * packcache.h -- a cache of pack windows for reading blobs from remote storage.
 *
 * Layer: repo. On object stores and SFTP every blob read would be one request with its own
 * round trip; restores and tree walks read neighbouring blobs of a pack one after the other
 * (backups write them in file order), so reading an aligned window of the pack once and
 * serving the next blobs from memory turns thousands of small requests into a few large ones.
 * Packs never change once written (their name is their hash), so a cached window is never
 * stale. Not used for local repositories, where the page cache does this already.
 *
 * Thread safety: all functions may be called from many threads; one mutex guards the table
 * (fetches run outside it; two threads missing the same window may both fetch it).
 */
#ifndef COFFER_REPO_PACKCACHE_H
#define COFFER_REPO_PACKCACHE_H

#include "common/buf.h"
#include "storage/storage.h"

#include <stddef.h>
#include <stdint.h>

typedef struct packcache packcache_t;

/* window: bytes read at once (aligned); slots: windows kept (LRU). */
int packcache_new(size_t window, size_t slots, packcache_t **out);
void packcache_free(packcache_t *c); /* accepts NULL */

/* Append bytes [off, off+len) of pack object `name` (id pack_id) to out, through the cache.
 * Ranges longer than a window are read directly. Errors as storage_get; a short read (the
 * pack ends early) returns what exists, as storage_get does. */
int packcache_get(packcache_t *c, storage_t *st, const char *name, const uint8_t pack_id[32],
                  uint64_t off, uint64_t len, buf_t *out);

/* Counters for tests and diagnostics. */
void packcache_stats(packcache_t *c, uint64_t *out_hits, uint64_t *out_misses);

#endif
