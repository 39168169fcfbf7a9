/*
 * idmap.h -- a map from 32-byte ids to 32-byte ids (copy: source blob id -> target blob id).
 *
 * Layer: repo. Open addressing on the key's first 8 bytes (ids are uniformly random), grown
 * at 50 % load; 64 bytes per slot plus a used bitmap. Not thread-safe: callers lock.
 */
#ifndef COFFER_REPO_IDMAP_H
#define COFFER_REPO_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct idmap {
    uint8_t (*slots)[64]; /* key then value */
    uint8_t *used;
    size_t cap, n;
} idmap_t;

void idmap_init(idmap_t *m);
void idmap_release(idmap_t *m);
/* Insert or replace key -> val. */
int idmap_put(idmap_t *m, const uint8_t key[32], const uint8_t val[32]);
/* Copy the value of key into out_val; false when absent (out_val untouched). */
bool idmap_get(const idmap_t *m, const uint8_t key[32], uint8_t out_val[32]);

#endif
