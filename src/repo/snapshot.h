/*
 * snapshot.h -- snapshot manifests (doc/format.md §9.2): the struct and its JSON codec.
 *
 * Layer: repo. The decoder is fuzzed; unknown fields are ignored (forward compatible), missing
 * required fields (time, tree) are COFFER_ECORRUPT. Strings are owned by the snapshot.
 */
#ifndef COFFER_REPO_SNAPSHOT_H
#define COFFER_REPO_SNAPSHOT_H

#include "common/buf.h"

#include <stdbool.h>
#include <stdint.h>

#define SNAP_MAX_PATHS 4096
#define SNAP_MAX_TAGS 256
#define SNAP_MAX_ERRORS 1000 /* errors recorded in the manifest; the count is exact */

typedef struct snap_error {
    char *path;
    char *message;
} snap_error_t;

typedef struct snap_summary {
    uint64_t files_new, files_changed, files_unchanged, dirs, others;
    uint64_t bytes_read, bytes_added, bytes_stored, blobs_added;
    double duration_s;
    uint64_t errors;
} snap_summary_t;

typedef struct snapshot {
    uint8_t id[32]; /* set when loaded or saved */
    int64_t time_ns;
    char *host, *user, *job, *kind;
    char **paths;
    size_t n_paths;
    char **tags;
    size_t n_tags;
    uint8_t tree[32];
    bool has_parent;
    uint8_t parent[32];
    bool has_original;
    uint8_t original[32]; /* set by `coffer copy`: the id of the snapshot first copied */
    char *status;         /* "complete", "partial", "failed" */
    snap_summary_t summary;
    snap_error_t *errors;
    size_t n_errors;
    char **command_argv; /* command sources */
    size_t n_command_argv;
    bool has_exit_status;
    int exit_status;
    char *program;
} snapshot_t;

void snapshot_init(snapshot_t *s);
void snapshot_release(snapshot_t *s);
int snapshot_add_path(snapshot_t *s, const char *p);
int snapshot_add_tag(snapshot_t *s, const char *t);
/* Record an error (kept up to SNAP_MAX_ERRORS; summary.errors counts all). */
int snapshot_add_error(snapshot_t *s, const char *path, const char *msg);
bool snapshot_has_tag(const snapshot_t *s, const char *t);

int snapshot_encode(const snapshot_t *s, buf_t *out);
int snapshot_decode(const void *data, size_t n, const char *what, snapshot_t *s);

#endif
