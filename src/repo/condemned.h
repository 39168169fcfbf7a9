/*
 * condemned.h -- condemned-pack lists written by prune phase 1 (doc/format.md §11).
 *
 * Layer: repo. A list names packs that phase 1 found unreferenced (or repacked), the index
 * segments it had read, and the writer sessions alive at the mark. Writers load every list
 * and never deduplicate against a listed pack. The decoder is strict and bounded.
 */
#ifndef COFFER_REPO_CONDEMNED_H
#define COFFER_REPO_CONDEMNED_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

#define CONDEMNED_MAX 10000000

typedef struct condemned {
    char name[96];    /* object name, set when loaded */
    int64_t mtime_ns; /* backend time of the mark */
    uint8_t (*packs)[32];
    size_t n_packs;
    uint8_t (*sessions)[16];
    size_t n_sessions;
    uint8_t (*indexes)[32];
    size_t n_indexes;
} condemned_t;

void condemned_init(condemned_t *c);
void condemned_release(condemned_t *c);
int condemned_encode(const condemned_t *c, buf_t *out);
int condemned_decode(const void *data, size_t n, const char *what, condemned_t *c);

#endif
