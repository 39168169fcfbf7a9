/*
 * writer.h -- a writer session: deduplicate, compress, encrypt and pack blobs, upload packs,
 * write index segments (checkpoints) and snapshots.
 *
 * Layer: repo. writer_open starts a session (random id, own key), publishes sessions/<id>
 * with a heartbeat, then loads the index and condemned lists (in that order: see
 * doc/format.md §11), and adopts complete packs that no index lists (left by a crashed
 * writer), so a rerun uploads nothing that already landed. Order of writes: packs, then index
 * segments, then the snapshot (the commit point).
 *
 * Thread safety: writer_add_blob may be called from many threads at once; it compresses and
 * encrypts in the calling thread and uploads full packs in the calling thread. The other
 * functions are called from one thread after all adds have returned.
 */
#ifndef COFFER_REPO_WRITER_H
#define COFFER_REPO_WRITER_H

#include "repo/idxseg.h"
#include "repo/repo.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct writer writer_t;

typedef struct writer_stats {
    _Atomic uint64_t blobs_added;
    _Atomic uint64_t bytes_added;  /* plaintext bytes of new blobs */
    _Atomic uint64_t bytes_stored; /* bytes written into packs */
    _Atomic uint64_t packs_written;
    _Atomic uint64_t packs_adopted;
} writer_stats_t;

typedef struct writer_opts {
    const char *purpose; /* "backup", "prune", "copy": shown in the session object */
    bool no_adopt;       /* skip adopting unindexed packs (prune does its own accounting) */
} writer_opts_t;

int writer_open(repo_t *r, const writer_opts_t *o, writer_t **out);

/* Store a blob unless the repository has it. id may be NULL (computed) or the caller's HMAC of
 * the data. *out_added (may be NULL) tells whether it was new. */
int writer_add_blob(writer_t *w, uint8_t type, const void *data, size_t n, const uint8_t *id,
                    uint8_t out_id[32], bool *out_added);

/* Write an index segment for packs uploaded since the last one (no-op when none). */
int writer_checkpoint(writer_t *w);
/* Close the open packs, upload them, and write the final index segment. */
int writer_flush(writer_t *w);
/* Seal and store a snapshot (after writer_flush); sets s->id. */
int writer_save_snapshot(writer_t *w, snapshot_t *s);
/* Index segment written by prune: supersedes the given segments and lists the given packs
 * (entries borrowed). */
int writer_put_index(writer_t *w, const uint8_t (*supersedes)[32], size_t n_sup,
                     const idxseg_pack_t *packs, size_t n_packs, uint8_t out_id[32]);

/* Read and decrypt the header of pack object `name` of `size` bytes (check, prune and adoption
 * use it). *out malloc'd (caller frees); out_session gets the pack's session id. */
int writer_read_pack_header(repo_t *r, const char *name, uint64_t size, uint8_t out_session[16],
                            pack_entry_t **out, size_t *out_n);

session_t *writer_session(writer_t *w);
const writer_stats_t *writer_stats(writer_t *w);

/* End the session: stop the heartbeat and remove sessions/<id>. Open packs not flushed are
 * dropped (their blobs were never indexed). Accepts NULL. */
void writer_free(writer_t *w);

#endif
