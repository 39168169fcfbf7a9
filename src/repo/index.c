/*
 * index.c -- in-memory blob index (see index.h).
 *
 * Layer: repo. Invariants: slots[] holds entry numbers + 1 (0 = empty); nslots is a power of
 * two and count <= 0.7 * nslots; entries are never removed except by index_unreserve, which
 * rebuilds the probe chain after deletion (backward-shift deletion).
 */
#include "repo/index.h"
#include "common/error.h"
#include "repo/envelope.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TYPE_CODE_DATA 1u
#define TYPE_CODE_TREE 2u

struct index {
    pthread_rwlock_t lock;
    index_entry_t *entries;
    size_t count, cap;
    uint32_t *slots;
    size_t nslots;
    index_pack_t *packs;
    size_t npacks, packs_cap;
    uint32_t *pack_slots; /* open addressing over packs, same scheme */
    size_t npack_slots;
};

uint32_t index_info(uint8_t type, bool compressed, uint32_t raw_len)
{
    uint32_t t = type == BLOB_TREE ? TYPE_CODE_TREE : TYPE_CODE_DATA;
    return (raw_len & INDEX_RAW_MAX) | (compressed ? 1u << 28 : 0) | t << 30;
}

static void decode(const index_entry_t *e, blob_loc_t *out)
{
    out->type = (e->info >> 30) == TYPE_CODE_TREE ? BLOB_TREE : BLOB_DATA;
    out->compressed = (e->info >> 28) & 1;
    out->raw_len = e->info & INDEX_RAW_MAX;
    out->pack = e->pack;
    out->offset = e->offset;
    out->stored_len = e->stored_len;
}

int index_new(index_t **out)
{
    index_t *ix = calloc(1, sizeof *ix);
    if (!ix)
        return err_set(COFFER_ENOMEM, "out of memory creating the index");
    ix->nslots = 1024;
    ix->slots = calloc(ix->nslots, sizeof *ix->slots);
    ix->npack_slots = 256;
    ix->pack_slots = calloc(ix->npack_slots, sizeof *ix->pack_slots);
    if (!ix->slots || !ix->pack_slots) {
        free(ix->slots);
        free(ix->pack_slots);
        free(ix);
        return err_set(COFFER_ENOMEM, "out of memory creating the index");
    }
    pthread_rwlock_init(&ix->lock, NULL);
    *out = ix;
    return 0;
}

void index_free(index_t *ix)
{
    if (!ix)
        return;
    pthread_rwlock_destroy(&ix->lock);
    free(ix->entries);
    free(ix->slots);
    free(ix->packs);
    free(ix->pack_slots);
    free(ix);
}

static inline size_t hash_of(const uint8_t id[32], size_t mask)
{
    uint64_t h;
    memcpy(&h, id, 8);
    return (size_t)h & mask;
}

/* Find the slot holding id, or the empty slot where it would go. */
static size_t find_slot(const index_t *ix, const uint8_t id[32], bool *found)
{
    size_t mask = ix->nslots - 1;
    for (size_t i = hash_of(id, mask);; i = (i + 1) & mask) {
        uint32_t s = ix->slots[i];
        if (!s) {
            *found = false;
            return i;
        }
        if (memcmp(ix->entries[s - 1].id, id, 32) == 0) {
            *found = true;
            return i;
        }
    }
}

static int grow_slots(index_t *ix)
{
    size_t n = ix->nslots * 2;
    uint32_t *ns = calloc(n, sizeof *ns);
    if (!ns)
        return err_set(COFFER_ENOMEM, "out of memory growing the index");
    for (size_t e = 0; e < ix->count; e++) {
        size_t i = hash_of(ix->entries[e].id, n - 1);
        while (ns[i])
            i = (i + 1) & (n - 1);
        ns[i] = (uint32_t)(e + 1);
    }
    free(ix->slots);
    ix->slots = ns;
    ix->nslots = n;
    return 0;
}

/* Append a new entry; caller holds the write lock and has checked absence. */
static int add_entry(index_t *ix, const index_entry_t *e)
{
    if (ix->count >= UINT32_MAX - 1)
        return err_set(COFFER_ELIMIT, "index holds too many blobs");
    if ((ix->count + 1) * 10 > ix->nslots * 7) {
        int rc = grow_slots(ix);
        if (rc)
            return rc;
    }
    if (ix->count == ix->cap) {
        size_t nc = ix->cap ? ix->cap * 2 : 1024;
        index_entry_t *ne = realloc(ix->entries, nc * sizeof *ne);
        if (!ne)
            return err_set(COFFER_ENOMEM, "out of memory growing the index");
        ix->entries = ne;
        ix->cap = nc;
    }
    bool found;
    size_t slot = find_slot(ix, e->id, &found);
    ix->entries[ix->count] = *e;
    ix->slots[slot] = (uint32_t)(ix->count + 1);
    ix->count++;
    return 0;
}

static bool pack_usable(const index_t *ix, uint32_t pack)
{
    if (pack == INDEX_PACK_PENDING)
        return false;
    return pack < ix->npacks && !(ix->packs[pack].flags & PACK_F_CONDEMNED);
}

int index_insert(index_t *ix, const uint8_t id[32], const blob_loc_t *loc)
{
    if (loc->raw_len > INDEX_RAW_MAX)
        return err_set(COFFER_ELIMIT, "blob too large for the index");
    index_entry_t e;
    memcpy(e.id, id, 32);
    e.pack = loc->pack;
    e.offset = loc->offset;
    e.stored_len = loc->stored_len;
    e.info = index_info(loc->type, loc->compressed, loc->raw_len);
    int rc = 0;
    pthread_rwlock_wrlock(&ix->lock);
    bool found;
    size_t slot = find_slot(ix, id, &found);
    if (found) {
        index_entry_t *cur = &ix->entries[ix->slots[slot] - 1];
        if (!pack_usable(ix, cur->pack) &&
            (loc->pack != INDEX_PACK_PENDING && pack_usable(ix, loc->pack)))
            *cur = e;
        else if (cur->pack == INDEX_PACK_PENDING)
            *cur = e;
    } else {
        rc = add_entry(ix, &e);
    }
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

bool index_lookup(index_t *ix, const uint8_t id[32], blob_loc_t *out)
{
    pthread_rwlock_rdlock(&ix->lock);
    bool found;
    size_t slot = find_slot(ix, id, &found);
    if (found && out)
        decode(&ix->entries[ix->slots[slot] - 1], out);
    pthread_rwlock_unlock(&ix->lock);
    return found;
}

int index_reserve(index_t *ix, const uint8_t id[32], uint8_t type, bool *out_reserved)
{
    int rc = 0;
    /* fast path: present and usable, under the read lock */
    pthread_rwlock_rdlock(&ix->lock);
    bool found;
    size_t slot = find_slot(ix, id, &found);
    if (found) {
        const index_entry_t *cur = &ix->entries[ix->slots[slot] - 1];
        if (cur->pack == INDEX_PACK_PENDING || pack_usable(ix, cur->pack)) {
            pthread_rwlock_unlock(&ix->lock);
            *out_reserved = false;
            return 0;
        }
    }
    pthread_rwlock_unlock(&ix->lock);

    pthread_rwlock_wrlock(&ix->lock);
    slot = find_slot(ix, id, &found);
    if (found) {
        index_entry_t *cur = &ix->entries[ix->slots[slot] - 1];
        if (cur->pack == INDEX_PACK_PENDING || pack_usable(ix, cur->pack)) {
            *out_reserved = false;
        } else {
            /* only a condemned copy exists: store a fresh one */
            cur->pack = INDEX_PACK_PENDING;
            *out_reserved = true;
        }
    } else {
        index_entry_t e;
        memset(&e, 0, sizeof e);
        memcpy(e.id, id, 32);
        e.pack = INDEX_PACK_PENDING;
        e.info = index_info(type, false, 0);
        rc = add_entry(ix, &e);
        *out_reserved = rc == 0;
    }
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

void index_unreserve(index_t *ix, const uint8_t id[32])
{
    pthread_rwlock_wrlock(&ix->lock);
    bool found;
    size_t slot = find_slot(ix, id, &found);
    if (found && ix->entries[ix->slots[slot] - 1].pack == INDEX_PACK_PENDING) {
        /* Move the last entry into the hole, then remove the slot with backward shift. */
        uint32_t e = ix->slots[slot] - 1;
        size_t mask = ix->nslots - 1;
        size_t i = slot;
        ix->slots[i] = 0;
        for (size_t j = (i + 1) & mask; ix->slots[j]; j = (j + 1) & mask) {
            size_t home = hash_of(ix->entries[ix->slots[j] - 1].id, mask);
            /* can slot j's entry move to i? yes if home is not in (i, j] cyclically */
            bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
            if (!between) {
                ix->slots[i] = ix->slots[j];
                ix->slots[j] = 0;
                i = j;
            }
        }
        uint32_t last = (uint32_t)(ix->count - 1);
        if (e != last) {
            bool f2;
            size_t ls = find_slot(ix, ix->entries[last].id, &f2);
            ix->entries[e] = ix->entries[last];
            if (f2)
                ix->slots[ls] = e + 1;
        }
        ix->count--;
    }
    pthread_rwlock_unlock(&ix->lock);
}

static size_t pack_find_slot(const index_t *ix, const uint8_t id[32], bool *found)
{
    size_t mask = ix->npack_slots - 1;
    for (size_t i = hash_of(id, mask);; i = (i + 1) & mask) {
        uint32_t s = ix->pack_slots[i];
        if (!s) {
            *found = false;
            return i;
        }
        if (memcmp(ix->packs[s - 1].id, id, 32) == 0) {
            *found = true;
            return i;
        }
    }
}

int index_add_pack(index_t *ix, const uint8_t id[32], const uint8_t session[16], uint32_t flags,
                   uint32_t *out_no)
{
    int rc = 0;
    pthread_rwlock_wrlock(&ix->lock);
    bool found;
    size_t slot = pack_find_slot(ix, id, &found);
    if (found) {
        static const uint8_t zero[16];
        *out_no = ix->pack_slots[slot] - 1;
        ix->packs[*out_no].flags |= flags;
        /* a pack first seen in a condemned list has no session yet: the index knows it */
        if (memcmp(ix->packs[*out_no].session, zero, 16) == 0)
            memcpy(ix->packs[*out_no].session, session, 16);
        goto out;
    }
    if (ix->npacks >= INDEX_PACK_PENDING - 1) {
        rc = err_set(COFFER_ELIMIT, "too many packs");
        goto out;
    }
    if ((ix->npacks + 1) * 10 > ix->npack_slots * 7) {
        size_t n = ix->npack_slots * 2;
        uint32_t *ns = calloc(n, sizeof *ns);
        if (!ns) {
            rc = err_set(COFFER_ENOMEM, "out of memory growing the pack table");
            goto out;
        }
        for (size_t p = 0; p < ix->npacks; p++) {
            size_t i = hash_of(ix->packs[p].id, n - 1);
            while (ns[i])
                i = (i + 1) & (n - 1);
            ns[i] = (uint32_t)(p + 1);
        }
        free(ix->pack_slots);
        ix->pack_slots = ns;
        ix->npack_slots = n;
        slot = pack_find_slot(ix, id, &found);
    }
    if (ix->npacks == ix->packs_cap) {
        size_t nc = ix->packs_cap ? ix->packs_cap * 2 : 64;
        index_pack_t *np = realloc(ix->packs, nc * sizeof *np);
        if (!np) {
            rc = err_set(COFFER_ENOMEM, "out of memory growing the pack table");
            goto out;
        }
        ix->packs = np;
        ix->packs_cap = nc;
    }
    index_pack_t *p = &ix->packs[ix->npacks];
    memcpy(p->id, id, 32);
    memcpy(p->session, session, 16);
    p->flags = flags;
    ix->pack_slots[slot] = (uint32_t)(ix->npacks + 1);
    *out_no = (uint32_t)ix->npacks++;
out:
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

bool index_get_pack(index_t *ix, uint32_t no, index_pack_t *out)
{
    pthread_rwlock_rdlock(&ix->lock);
    bool ok = no < ix->npacks;
    if (ok)
        *out = ix->packs[no];
    pthread_rwlock_unlock(&ix->lock);
    return ok;
}

size_t index_pack_count(index_t *ix)
{
    pthread_rwlock_rdlock(&ix->lock);
    size_t n = ix->npacks;
    pthread_rwlock_unlock(&ix->lock);
    return n;
}

bool index_find_pack(index_t *ix, const uint8_t id[32], uint32_t *out_no)
{
    pthread_rwlock_rdlock(&ix->lock);
    bool found;
    size_t slot = pack_find_slot(ix, id, &found);
    if (found)
        *out_no = ix->pack_slots[slot] - 1;
    pthread_rwlock_unlock(&ix->lock);
    return found;
}

void index_set_pack_flags(index_t *ix, uint32_t no, uint32_t flags)
{
    pthread_rwlock_wrlock(&ix->lock);
    if (no < ix->npacks)
        ix->packs[no].flags = flags;
    pthread_rwlock_unlock(&ix->lock);
}

size_t index_count(index_t *ix)
{
    pthread_rwlock_rdlock(&ix->lock);
    size_t n = ix->count;
    pthread_rwlock_unlock(&ix->lock);
    return n;
}

int index_foreach(index_t *ix, int (*cb)(void *ud, const uint8_t id[32], const blob_loc_t *loc),
                  void *ud)
{
    int rc = 0;
    pthread_rwlock_rdlock(&ix->lock);
    for (size_t i = 0; i < ix->count && !rc; i++) {
        blob_loc_t l;
        decode(&ix->entries[i], &l);
        rc = cb(ud, ix->entries[i].id, &l);
    }
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}
