/*
 * tree.h -- deterministic tree blob codec (doc/format.md §9.1).
 *
 * Layer: repo. A tree is an array of nodes sorted by name (bytewise) with unique names; the
 * same nodes always give the same bytes. The decoder is fuzzed: every length is capped
 * (node.h limits), names are validated, order and uniqueness are checked.
 */
#ifndef COFFER_REPO_TREE_H
#define COFFER_REPO_TREE_H

#include "common/buf.h"
#include "repo/node.h"

#define TREE_MAX_NODES 10000000

typedef struct tree {
    node_t *nodes; /* owned */
    size_t n, cap;
} tree_t;

void tree_init(tree_t *t);
void tree_release(tree_t *t); /* releases every node */
/* Append a node, taking ownership of its contents (*n is re-initialized). */
int tree_add(tree_t *t, node_t *n);
/* Sort by name; COFFER_EINVAL if two nodes share a name. */
int tree_sort(tree_t *t);
/* Binary search by name (tree must be sorted). NULL if absent. */
const node_t *tree_find(const tree_t *t, const char *name);

/* Encode a sorted tree (appends to out). */
int tree_encode(const tree_t *t, buf_t *out);
/* Decode into t (initialized by the caller). `what` names the blob in errors. */
int tree_decode(const void *data, size_t n, const char *what, tree_t *t);

#endif
