/*
 * copy.h -- copy snapshots from one repository into another with different keys, without
 * re-chunking (`coffer copy`, the sidecar-to-cloud sync).
 *
 * Layer: repo. Blob ids are keyed per repository, so every data blob is read from the source,
 * given its target id (HMAC under the target's key) and stored unless the target has it; trees
 * are rewritten with the target ids. Chunk boundaries stay as they are: both repositories'
 * chunkers differ, but a copied file keeps the source's chunks (deduplication against data
 * the target chunked itself is therefore partial; documented in doc/engine.md).
 *
 * To avoid reading unchanged data again, a copier remembers source -> target ids for the run,
 * and can be given a "pair": an earlier source snapshot and its copy in the target. Walking the
 * new snapshot next to the pair maps unchanged subtrees and file contents without reading them
 * (the same idea as a backup's parent snapshot).
 *
 * Thread safety: one copier is driven by one thread; it runs blob copies on its own pool.
 */
#ifndef COFFER_REPO_COPY_H
#define COFFER_REPO_COPY_H

#include "repo/snapshot.h"
#include "repo/writer.h"

#include <signal.h>
#include <stdatomic.h>

typedef struct copier copier_t;

typedef struct copy_opts {
    int threads;                  /* blob copy workers; 0 = CPU count */
    volatile sig_atomic_t *stop;  /* set asynchronously: stop early with COFFER_EINTR */
    _Atomic uint64_t *bytes_done; /* plaintext bytes of data blobs handled (progress) */
} copy_opts_t;

typedef struct copy_stats {
    _Atomic uint64_t blobs_read;    /* data blobs read from the source */
    _Atomic uint64_t blobs_mapped;  /* data blobs whose target id was known without reading */
    _Atomic uint64_t trees_written; /* trees rewritten for the target */
    _Atomic uint64_t trees_mapped;  /* subtrees reused unchanged from the pair */
} copy_stats_t;

/* src and dst must have their indexes loaded; w is a writer session on dst. All borrowed for
 * the copier's life. */
int copier_new(repo_t *src, repo_t *dst, writer_t *w, const copy_opts_t *o, copier_t **out);
void copier_free(copier_t *c); /* accepts NULL */
const copy_stats_t *copier_stats(const copier_t *c);

/* Store snapshot s's trees and data in dst and fill *out_snap (initialized by the call; the
 * caller saves it with writer_save_snapshot after writer_flush, and releases it). pair_src /
 * pair_dst (both or neither): an earlier snapshot of src and its copy in dst. The new
 * snapshot keeps every field of s, gets the target tree, `original` = s's original or s's id,
 * and parent = parent_dst when given (the target copy of s's parent), none otherwise. */
int copier_snapshot(copier_t *c, const snapshot_t *s, const snapshot_t *pair_src,
                    const snapshot_t *pair_dst, const uint8_t *parent_dst, snapshot_t *out_snap);

#endif
