/*
 * mem.c -- in-process storage driver for tests: "mem:NAME".
 *
 * Layer: storage driver (test-only; reached through storage.c, names arrive validated).
 * A process-global registry maps NAME to a store, so every storage_open("mem:x") in the process
 * sees the same objects. A store is created by an open with create=true and lives until the
 * process exits (like a ramdisk: closing the last handle does not empty it); opening a NAME
 * never created is COFFER_ENOREPO, like a missing directory.
 * Invariants:
 * - Objects sit in an array sorted by name (binary search; a prefix listing is one range).
 * - registry_mu guards the registry list; each store's mu guards its objects. The mutexes are
 *   never held while calling a list callback, so callbacks may use the same store.
 * - Semantics match the local driver: create-only put (COFFER_EEXIST, object untouched),
 *   ranged get with an offset past the end giving COFFER_EINVAL, mtime from CLOCK_REALTIME.
 * - No native clock (now == NULL): storage_now exercises the generic probe-object path here.
 */
#include "storage/storage_intern.h"

#include "common/buf.h"
#include "common/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MEM_NAME_MAX 128

struct mem_obj {
    char *name;
    uint8_t *data; /* malloc'd, at least 1 byte so empty objects need no special case */
    size_t len;
    int64_t mtime_ns;
};

struct mem_store {
    struct mem_store *next;
    char *name;
    pthread_mutex_t mu;
    struct mem_obj *objs; /* sorted by name */
    size_t n;
    size_t cap;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mem_store *registry;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Index of name in the store, or where it would go; *found says which. Caller holds mu. */
static size_t find(const struct mem_store *m, const char *name, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->objs[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static int missing(const struct mem_store *m)
{
    return err_set(COFFER_ENOENT, "no such object in mem:%s", m->name);
}

static bool valid_store_name(const char *name)
{
    size_t n = strnlen(name, MEM_NAME_MAX + 1);
    if (n == 0 || n > MEM_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int mem_open(const char *path, bool create, const storage_opts_t *opts, void **out_state)
{
    struct mem_store *m;
    int rc = 0;

    if (!valid_store_name(path))
        return err_set(COFFER_EINVAL,
                       "bad in-memory location mem:%.*s: NAME must be 1-%d characters of "
                       "A-Z a-z 0-9 . _ -",
                       MEM_NAME_MAX, path, MEM_NAME_MAX);
    pthread_mutex_lock(&registry_mu);
    for (m = registry; m; m = m->next)
        if (!strcmp(m->name, path))
            break;
    if (!m && !create) {
        rc = err_set(COFFER_ENOREPO, "no repository at mem:%s: run coffer init first", path);
        goto out;
    }
    if (!m) {
        m = calloc(1, sizeof *m);
        if (!m || !(m->name = strdup(path))) {
            free(m);
            rc = err_set(COFFER_ENOMEM, "out of memory creating mem:%s", path);
            goto out;
        }
        pthread_mutex_init(&m->mu, NULL);
        m->next = registry;
        registry = m;
    }
    *out_state = m;
out:
    pthread_mutex_unlock(&registry_mu);
    return rc;
}

static void mem_close(void *state)
{
    (void)state; /* stores live for the process (see the header comment) */
}

static int mem_put(void *state, const char *name, const void *data, size_t len,
                   const storage_put_opts_t *opts, bool *transient)
{
    struct mem_store *m = state;
    bool overwrite = opts && opts->overwrite;
    uint8_t *copy = malloc(len ? len : 1);
    char *ncopy = NULL;
    bool found;
    int rc = 0;

    (void)transient;
    if (!copy)
        return err_set(COFFER_ENOMEM, "out of memory storing %zu bytes in mem:%s", len, m->name);
    if (len)
        memcpy(copy, data, len);
    pthread_mutex_lock(&m->mu);
    size_t i = find(m, name, &found);
    if (found) {
        if (!overwrite) {
            rc = err_set(COFFER_EEXIST,
                         "an object with this name already exists in mem:%s "
                         "(objects are written once)",
                         m->name);
            goto out;
        }
        free(m->objs[i].data);
        m->objs[i].data = copy;
        m->objs[i].len = len;
        m->objs[i].mtime_ns = now_ns();
        copy = NULL;
        goto out;
    }
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        size_t bytes;
        struct mem_obj *grown;
        if (size_mul(ncap, sizeof *m->objs, &bytes) || !(grown = realloc(m->objs, bytes))) {
            rc = err_set(COFFER_ENOMEM, "out of memory growing mem:%s", m->name);
            goto out;
        }
        m->objs = grown;
        m->cap = ncap;
    }
    ncopy = strdup(name);
    if (!ncopy) {
        rc = err_set(COFFER_ENOMEM, "out of memory storing an object in mem:%s", m->name);
        goto out;
    }
    memmove(&m->objs[i + 1], &m->objs[i], (m->n - i) * sizeof *m->objs);
    m->objs[i] = (struct mem_obj){.name = ncopy, .data = copy, .len = len, .mtime_ns = now_ns()};
    m->n++;
    copy = NULL;
out:
    pthread_mutex_unlock(&m->mu);
    free(copy);
    return rc;
}

static int mem_get(void *state, const char *name, uint64_t off, uint64_t len, buf_t *out,
                   bool *transient)
{
    struct mem_store *m = state;
    bool found;
    int rc = 0;

    (void)transient;
    pthread_mutex_lock(&m->mu);
    size_t i = find(m, name, &found);
    if (!found) {
        rc = missing(m);
        goto out;
    }
    const struct mem_obj *o = &m->objs[i];
    if (off > o->len) {
        rc = err_set(COFFER_EINVAL, "offset %llu is past the end of the object (%zu bytes)",
                     (unsigned long long)off, o->len);
        goto out;
    }
    size_t want = o->len - (size_t)off;
    if (len && len < want)
        want = (size_t)len;
    rc = buf_append(out, o->data + off, want);
out:
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_stat(void *state, const char *name, storage_stat_t *out, bool *transient)
{
    struct mem_store *m = state;
    bool found;
    int rc = 0;

    (void)transient;
    pthread_mutex_lock(&m->mu);
    size_t i = find(m, name, &found);
    if (found) {
        out->size = m->objs[i].len;
        out->mtime_ns = m->objs[i].mtime_ns;
    } else {
        rc = missing(m);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

struct listed {
    char *name;
    storage_stat_t st;
};

static int mem_list(void *state, const char *prefix, storage_list_cb cb, void *ud, bool *transient)
{
    struct mem_store *m = state;
    size_t plen = strlen(prefix);
    struct listed *items = NULL;
    size_t n = 0;
    bool found;
    int rc = 0;

    (void)transient;
    /* Copy the matching range out, then call back without the lock. */
    pthread_mutex_lock(&m->mu);
    size_t first = find(m, prefix, &found);
    size_t end = first;
    while (end < m->n && !strncmp(m->objs[end].name, prefix, plen))
        end++;
    if (end > first) {
        items = calloc(end - first, sizeof *items);
        if (!items)
            rc = err_set(COFFER_ENOMEM, "out of memory listing mem:%s", m->name);
    }
    for (size_t i = first; items && !rc && i < end; i++, n++) {
        items[n].name = strdup(m->objs[i].name);
        items[n].st = (storage_stat_t){.size = m->objs[i].len, .mtime_ns = m->objs[i].mtime_ns};
        if (!items[n].name)
            rc = err_set(COFFER_ENOMEM, "out of memory listing mem:%s", m->name);
    }
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; !rc && i < n; i++)
        rc = cb(ud, items[i].name, &items[i].st);
    for (size_t i = 0; i < n; i++)
        free(items[i].name);
    free(items);
    return rc;
}

static int mem_remove(void *state, const char *name, bool *transient)
{
    struct mem_store *m = state;
    bool found;
    int rc = 0;

    (void)transient;
    pthread_mutex_lock(&m->mu);
    size_t i = find(m, name, &found);
    if (found) {
        free(m->objs[i].name);
        free(m->objs[i].data);
        memmove(&m->objs[i], &m->objs[i + 1], (m->n - i - 1) * sizeof *m->objs);
        m->n--;
    } else {
        rc = missing(m);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

const storage_driver_t storage_mem_driver = {
    .version = STORAGE_DRIVER_VERSION,
    .name = "mem",
    .features = STORAGE_F_RANGE | STORAGE_F_CREATE_ONLY,
    .open = mem_open,
    .close = mem_close,
    .put = mem_put,
    .get = mem_get,
    .stat = mem_stat,
    .list = mem_list,
    .remove = mem_remove,
    .now = NULL,
};
