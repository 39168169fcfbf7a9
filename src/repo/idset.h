/*
 * idset.h -- a set of 32-byte ids (blob ids, tree ids, pack ids).
 *
 * Layer: repo. Open addressing on the id's first 8 bytes (ids are uniformly random), grown at
 * 70 % load; 32 bytes per slot plus a used bitmap. Not thread-safe.
 */
#ifndef COFFER_REPO_IDSET_H
#define COFFER_REPO_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct idset {
    uint8_t (*slots)[32];
    uint8_t *used;
    size_t cap, n;
} idset_t;

void idset_init(idset_t *s);
void idset_release(idset_t *s);
/* Insert; *out_added (may be NULL) tells whether it was new. */
int idset_add(idset_t *s, const uint8_t id[32], bool *out_added);
bool idset_has(const idset_t *s, const uint8_t id[32]);

#endif
