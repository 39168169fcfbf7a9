/*
 * idmap.c -- open-addressing map of 32-byte ids to 32-byte ids (idmap.h).
 *
 * Layer: repo. Linear probing from the key's first 8 bytes; cap is a power of two; the table
 * doubles before it is half full, so probes stay short and a free slot always exists.
 */
#include "repo/idmap.h"

#include "common/error.h"

#include <stdlib.h>
#include <string.h>

#define IDMAP_MIN_CAP 1024
#define IDMAP_MAX_CAP ((size_t)1 << 34)

void idmap_init(idmap_t *m)
{
    memset(m, 0, sizeof *m);
}

void idmap_release(idmap_t *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m->used);
    idmap_init(m);
}

static size_t slot_of(const idmap_t *m, const uint8_t key[32])
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    size_t i = (size_t)h & (m->cap - 1);
    while ((m->used[i / 8] >> (i % 8)) & 1) {
        if (memcmp(m->slots[i], key, 32) == 0)
            return i;
        i = (i + 1) & (m->cap - 1);
    }
    return i;
}

static int grow(idmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : IDMAP_MIN_CAP;
    if (cap > IDMAP_MAX_CAP)
        return err_set(COFFER_ELIMIT, "id map is full (%zu entries)", m->n);
    idmap_t n = {.cap = cap, .n = m->n};
    n.slots = malloc(cap * sizeof *n.slots);
    n.used = calloc(cap / 8, 1);
    if (!n.slots || !n.used) {
        free(n.slots);
        free(n.used);
        return err_set(COFFER_ENOMEM, "out of memory growing an id map to %zu entries", cap);
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!((m->used[i / 8] >> (i % 8)) & 1))
            continue;
        size_t j = slot_of(&n, m->slots[i]);
        memcpy(n.slots[j], m->slots[i], 64);
        n.used[j / 8] |= (uint8_t)(1u << (j % 8));
    }
    free(m->slots);
    free(m->used);
    *m = n;
    return 0;
}

int idmap_put(idmap_t *m, const uint8_t key[32], const uint8_t val[32])
{
    int rc;
    if ((m->n + 1) * 2 > m->cap && (rc = grow(m)))
        return rc;
    size_t i = slot_of(m, key);
    if (!((m->used[i / 8] >> (i % 8)) & 1)) {
        m->used[i / 8] |= (uint8_t)(1u << (i % 8));
        memcpy(m->slots[i], key, 32);
        m->n++;
    }
    memcpy(m->slots[i] + 32, val, 32);
    return 0;
}

bool idmap_get(const idmap_t *m, const uint8_t key[32], uint8_t out_val[32])
{
    if (!m->cap)
        return false;
    size_t i = slot_of(m, key);
    if (!((m->used[i / 8] >> (i % 8)) & 1))
        return false;
    memcpy(out_val, m->slots[i] + 32, 32);
    return true;
}
