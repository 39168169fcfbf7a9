/*
 * prune.h -- two-phase garbage collection (doc/format.md §11).
 *
 * Layer: repo. prune_run takes the lease (maint/lease, create-only; a stale lease is taken
 * over), sweeps condemned lists whose marked sessions have all ended (phase 2), then marks
 * (phase 1): packs with no referenced blob, packs left unindexed, and mostly-unused packs whose
 * live blobs it first copies into new packs; it writes the condemned list and, when no other
 * writer was alive at the mark, sweeps it at once. Writers are never blocked.
 *
 * Any doubt about what is referenced (an unreadable snapshot or tree) aborts before anything
 * is deleted.
 */
#ifndef COFFER_REPO_PRUNE_H
#define COFFER_REPO_PRUNE_H

#include "repo/idset.h"
#include "repo/repo.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct prune_opts {
    bool dry_run;      /* report what would happen, change nothing */
    double max_unused; /* repack a pack when more than this fraction is unused (0.05..1) */
    volatile sig_atomic_t *stop;
} prune_opts_t;

typedef struct prune_stats {
    uint64_t snapshots, packs, referenced_blobs;
    uint64_t packs_condemned, packs_repacked, blobs_repacked, bytes_repacked;
    uint64_t lists_swept, lists_waiting;
    uint64_t packs_deleted, bytes_deleted, packs_kept_referenced;
    uint64_t index_segments_replaced;
} prune_stats_t;

int prune_run(repo_t *r, const prune_opts_t *o, prune_stats_t *out);

/* Remove maint/lease if it is stale (or always with force). *out_removed tells. */
int prune_unlock(repo_t *r, bool force, bool *out_removed);

/* Collect every tree and data blob reachable from the snapshots into trees/blobs (both
 * initialized by the caller). Fails on any unreadable tree. */
int prune_collect_refs(repo_t *r, const snapshot_t *snaps, size_t n, idset_t *trees,
                       idset_t *blobs);

#endif
