/*
 * packcache.c -- LRU cache of aligned pack windows (packcache.h).
 *
 * Layer: repo. Invariants: a slot holds the bytes [start, start + data.len) of one pack, read
 * in one storage_get; data.len may be shorter than the window at the end of a pack. A lookup
 * hits only when the whole requested range lies inside one slot.
 */
#include "repo/packcache.h"

#include "common/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    uint8_t pack[32];
    uint64_t start;
    buf_t data;
    uint64_t used; /* LRU clock; 0 = empty */
} slot_t;

struct packcache {
    pthread_mutex_t mu;
    size_t window, n;
    slot_t *slots;
    uint64_t clock, hits, misses;
};

int packcache_new(size_t window, size_t slots, packcache_t **out)
{
    packcache_t *c = calloc(1, sizeof *c);
    if (!c || !(c->slots = calloc(slots ? slots : 1, sizeof *c->slots))) {
        free(c);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    c->window = window ? window : (4u << 20);
    c->n = slots ? slots : 1;
    for (size_t i = 0; i < c->n; i++)
        buf_init(&c->slots[i].data);
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return 0;
}

void packcache_free(packcache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        buf_release(&c->slots[i].data);
    free(c->slots);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void packcache_stats(packcache_t *c, uint64_t *out_hits, uint64_t *out_misses)
{
    pthread_mutex_lock(&c->mu);
    *out_hits = c->hits;
    *out_misses = c->misses;
    pthread_mutex_unlock(&c->mu);
}

/* Copy the range out of a slot covering it; caller holds the lock. */
static bool lookup(packcache_t *c, const uint8_t pack[32], uint64_t off, uint64_t len, buf_t *out,
                   int *rc)
{
    for (size_t i = 0; i < c->n; i++) {
        slot_t *s = &c->slots[i];
        if (!s->used || memcmp(s->pack, pack, 32) != 0 || off < s->start ||
            off + len > s->start + s->data.len)
            continue;
        s->used = ++c->clock;
        c->hits++;
        *rc = buf_append(out, s->data.data + (off - s->start), (size_t)len);
        return true;
    }
    return false;
}

int packcache_get(packcache_t *c, storage_t *st, const char *name, const uint8_t pack_id[32],
                  uint64_t off, uint64_t len, buf_t *out)
{
    if (len == 0 || len > c->window)
        return storage_get(st, name, off, len, out);
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    bool hit = lookup(c, pack_id, off, len, out, &rc);
    if (!hit)
        c->misses++;
    pthread_mutex_unlock(&c->mu);
    if (hit)
        return rc;
    /* the aligned window that holds off, stretched to cover the end of the range */
    uint64_t start = off / c->window * c->window;
    uint64_t wlen = c->window;
    if (off + len > start + wlen)
        wlen = off + len - start;
    buf_t w;
    buf_init(&w);
    rc = storage_get(st, name, start, wlen, &w);
    if (rc == COFFER_EINVAL && start < off) {
        /* the window starts past a short pack's end? fetch the range itself */
        buf_release(&w);
        return storage_get(st, name, off, len, out);
    }
    if (rc) {
        buf_release(&w);
        return rc;
    }
    /* serve the caller first (the range may run past the pack's end: a short read) */
    uint64_t have = w.len > off - start ? w.len - (off - start) : 0;
    rc = buf_append(out, w.data + (off - start), (size_t)(have < len ? have : len));
    if (rc) {
        buf_release(&w);
        return rc;
    }
    pthread_mutex_lock(&c->mu);
    slot_t *victim = &c->slots[0];
    for (size_t i = 0; i < c->n; i++)
        if (c->slots[i].used < victim->used)
            victim = &c->slots[i];
    buf_release(&victim->data);
    victim->data = w; /* ownership moves into the slot */
    memcpy(victim->pack, pack_id, 32);
    victim->start = start;
    victim->used = ++c->clock;
    pthread_mutex_unlock(&c->mu);
    return 0;
}
