/*
 * idset.c -- set of 32-byte ids (see idset.h).
 *
 * Layer: repo.
 */
#include "repo/idset.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void idset_init(idset_t *s)
{
    memset(s, 0, sizeof *s);
}

void idset_release(idset_t *s)
{
    if (!s)
        return;
    free(s->slots);
    free(s->used);
    idset_init(s);
}

static size_t home(const uint8_t id[32], size_t cap)
{
    uint64_t h;
    memcpy(&h, id, 8);
    return (size_t)h & (cap - 1);
}

static int grow(idset_t *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 1024;
    uint8_t(*ns)[32] = malloc(ncap * sizeof *ns);
    uint8_t *nu = calloc(ncap, 1);
    if (!ns || !nu) {
        free(ns);
        free(nu);
        return err_set(COFFER_ENOMEM, "out of memory growing an id set");
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->used[i])
            continue;
        size_t k = home(s->slots[i], ncap);
        while (nu[k])
            k = (k + 1) & (ncap - 1);
        memcpy(ns[k], s->slots[i], 32);
        nu[k] = 1;
    }
    free(s->slots);
    free(s->used);
    s->slots = ns;
    s->used = nu;
    s->cap = ncap;
    return 0;
}

int idset_add(idset_t *s, const uint8_t id[32], bool *out_added)
{
    if ((s->n + 1) * 10 > s->cap * 7) {
        int rc = grow(s);
        if (rc)
            return rc;
    }
    size_t k = home(id, s->cap);
    while (s->used[k]) {
        if (memcmp(s->slots[k], id, 32) == 0) {
            if (out_added)
                *out_added = false;
            return 0;
        }
        k = (k + 1) & (s->cap - 1);
    }
    memcpy(s->slots[k], id, 32);
    s->used[k] = 1;
    s->n++;
    if (out_added)
        *out_added = true;
    return 0;
}

bool idset_has(const idset_t *s, const uint8_t id[32])
{
    if (!s->cap)
        return false;
    size_t k = home(id, s->cap);
    while (s->used[k]) {
        if (memcmp(s->slots[k], id, 32) == 0)
            return true;
        k = (k + 1) & (s->cap - 1);
    }
    return false;
}
