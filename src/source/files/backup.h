/*
 * backup.h -- the files source: walk paths, read changed files in parallel, and store them
 * as trees and data blobs through a writer.
 *
 * Layer: source/files (uses repo, common). Directories are walked by a pool of walk workers
 * (openat / fstatat relative to directory fds); file contents are read, chunked and hashed by
 * a pool of file workers; blobs of multi-chunk files are compressed, encrypted and packed by a
 * second pool, so one large file still uses every core. Queues are bounded, so memory stays bounded
 * whatever the input.
 *
 * A file whose size, mtime, ctime and inode match its node in the parent snapshot is not read
 * again (its extents are reused when every blob is still indexed). A file that changes while
 * read is stored with NODE_F_CHANGED and recorded as an error; one that vanishes or cannot be
 * read is recorded too: the snapshot's status becomes "partial" (exit 3).
 */
#ifndef COFFER_SOURCE_FILES_BACKUP_H
#define COFFER_SOURCE_FILES_BACKUP_H

#include "repo/writer.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct files_progress {
    _Atomic uint64_t files_done;
    _Atomic uint64_t bytes_done;
    _Atomic uint64_t entries_seen;
} files_progress_t;

typedef struct files_backup_opts {
    char *const *paths; /* what to back up; each becomes an entry of the root tree */
    size_t n_paths;
    char *const *excludes; /* fnmatch patterns: with '/' against the full path, else the name */
    size_t n_excludes;
    const uint8_t *parent_tree;  /* root tree of the parent snapshot, or NULL */
    int threads;                 /* file workers and blob workers each; 0 = CPU count */
    volatile sig_atomic_t *stop; /* set asynchronously to stop early (COFFER_EINTR) */
    files_progress_t *progress;  /* may be NULL */
} files_backup_opts_t;

/* Back up and fill snap->tree, snap->summary (files/dirs/bytes_read) and snap->errors.
 * Returns 0 (also when some entries failed: snap->summary.errors > 0), or a fatal error
 * (repository write failure, COFFER_EINTR). */
int files_backup(repo_t *r, writer_t *w, const files_backup_opts_t *o, snapshot_t *snap);

/* Does path (full) or name match one of the exclude patterns? */
bool files_excluded(char *const *pats, size_t n, const char *path, const char *name);

#endif
