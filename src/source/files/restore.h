/*
 * restore.h -- restore a snapshot tree (or part of it) into a directory.
 *
 * Layer: source/files (uses repo, common). Directories are created first, file contents are
 * written by a pool of workers (each file sparse: the size is set with ftruncate, holes and
 * all-zero blobs are not written), then metadata is applied bottom-up so directory times and
 * modes are right at the end. Hardlinks recorded in the snapshot (same dev and inode, nlink >
 * 1) are linked again. Symlinks, fifos, sockets and device nodes are recreated.
 *
 * An existing file at a target path is replaced. Errors on single entries are counted and
 * reported; the restore goes on (exit 3 from the command).
 */
#ifndef COFFER_SOURCE_FILES_RESTORE_H
#define COFFER_SOURCE_FILES_RESTORE_H

#include "repo/repo.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct files_restore_opts {
    char *const *includes; /* fnmatch patterns on the path inside the snapshot ("/a/b");
                              an entry is restored when it, an ancestor or a descendant
                              matches; none = everything */
    size_t n_includes;
    int threads;                  /* 0 = CPU count */
    bool verify_only;             /* read and verify every blob, write nothing */
    volatile sig_atomic_t *stop;  /* COFFER_EINTR when set */
    _Atomic uint64_t *bytes_done; /* progress, may be NULL */
    _Atomic uint64_t *files_done; /* progress, may be NULL */
} files_restore_opts_t;

typedef struct files_restore_stats {
    uint64_t files, dirs, others, bytes, errors, warnings;
} files_restore_stats_t;

int files_restore(repo_t *r, const uint8_t root_tree[32], const char *target,
                  const files_restore_opts_t *o, files_restore_stats_t *out_stats);

#endif
