/*
 * repotree.h -- export sink that stores each object as a file in a repository snapshot tree.
 *
 * Layer: source/k8s (uses repo). Each file is one data blob (objects are far below the chunker's
 * minimum size), so an object that did not change since the last export is not stored again.
 * Node metadata is deterministic: mode 0644 (dirs 0755), owner 0:0, mtime = the object's
 * creationTimestamp (dirs: 0). So the tree of an unchanged namespace has the same id as the
 * night before and `coffer diff` reports only objects whose content changed.
 * Not thread-safe: the export calls the sink from one thread.
 */
#ifndef COFFER_SOURCE_K8S_REPOTREE_H
#define COFFER_SOURCE_K8S_REPOTREE_H

#include "repo/writer.h"

#include <stddef.h>
#include <stdint.h>

#define K8S_OBJECT_MAX (64u << 20)

typedef struct k8s_repotree k8s_repotree_t;

int k8s_repotree_new(repo_t *r, writer_t *w, k8s_repotree_t **out);
int k8s_repotree_sink(void *ud, const char *path, const char *data, size_t n, int64_t ctime_ns);
/* Build and store the directory trees; out_root gets the root tree id; counts files. */
int k8s_repotree_finish(k8s_repotree_t *t, uint8_t out_root[32], uint64_t *out_files,
                        uint64_t *out_dirs);
void k8s_repotree_free(k8s_repotree_t *t); /* accepts NULL */

#endif
