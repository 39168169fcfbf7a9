/*
 * storage.c -- the generic storage layer: locations, name checks, retries, error context.
 *
 * Layer: storage. Callers use storage.h; drivers implement storage_intern.h.
 * Invariants:
 * - A storage_t is immutable after storage_open, so any number of threads may share it.
 * - Every driver call goes through this file, which validates names first (drivers never see
 *   an invalid name) and retries only errors the driver flagged transient: up to RETRY_MAX
 *   retries, exponential backoff with jitter (COFFER_STORAGE_RETRY_BASE_MS overrides the base).
 * - Outputs are written only on success: a failed get leaves the caller's buffer as it was.
 * - Errors leave here with context naming the operation and object ("while writing data/3f/..").
 * - Rate limits (-o limit-upload=KiB/s, limit-download=KiB/s) are token buckets per storage_t,
 *   charged a whole object at a time: before a put, after a get.
 * - If COFFER_FAULT is set, storage_open wraps the location in the fault driver (see
 *   fault/fault.c); storage_open_inner never does, so the wrapper cannot wrap itself.
 */
#include "storage/storage.h"
#include "storage/storage_intern.h"

#include "common/error.h"
#include "common/log.h"
#include "storage/s3/s3.h"

#include <jansson.h>

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define NAME_MAX_LEN 1024     /* whole object name, bytes (S3 keys allow 1024) */
#define COMPONENT_MAX_LEN 255 /* one path component (NAME_MAX of local filesystems) */
#define LOCATION_MAX_LEN 4096 /* a location string as given */
#define RETRY_MAX 5           /* retries after the first attempt */
#define RETRY_BASE_MS 100     /* first backoff */
#define RETRY_CAP_MS 5000     /* longest single backoff */
#define RETRY_BASE_MS_MAX 60000
#define TMP_PREFIX ".tmp-" /* reserved: the local driver's temp files */

/* A token bucket shared by every thread using one storage_t: bytes per second, one second of
 * burst; a take that overdraws sleeps until the balance is back at zero. */
struct rate {
    pthread_mutex_t mu;
    double bytes_per_s;
    double tokens;
    struct timespec last;
};

struct storage {
    const storage_driver_t *drv;
    struct rate *limit_up, *limit_down; /* NULL: unlimited */
    void *state;                        /* driver-owned */
    char *location;                     /* as given by the caller */
    unsigned features; /* the driver's, or the wrapped location's for the fault driver */
    unsigned retry_base_ms;
};

static const struct scheme {
    const char *name;
    const storage_driver_t *drv;
} schemes[] = {
    {"local", &storage_local_driver}, {"mem", &storage_mem_driver},
    {"fault", &storage_fault_driver}, {"s3", &storage_s3_driver},
    {"sftp", &storage_sftp_driver},
};

#define SUPPORTED_LOCATIONS                                                                        \
    "/path, local:/path, s3://HOST[:PORT]/BUCKET[/PREFIX], s3:BUCKET[/PREFIX], "                   \
    "sftp://USER@HOST[:PORT]/PATH, mem:NAME (tests) and fault:SPEC:LOCATION (tests)"

/* Length of a URL-style scheme ("s3" in "s3://...", "local" in "local:/x"), 0 if none. */
static size_t scheme_len(const char *loc)
{
    if (!isalpha((unsigned char)loc[0]))
        return 0;
    size_t i = 1;
    while (isalnum((unsigned char)loc[i]) || loc[i] == '+' || loc[i] == '-' || loc[i] == '.')
        i++;
    return loc[i] == ':' ? i : 0;
}

/* Map a location to its driver and the driver's part of it. A string without a scheme is a
 * local path (relative paths are resolved by the local driver against the current directory). */
static int location_resolve(const char *loc, const storage_driver_t **out_drv,
                            const char **out_path)
{
    /* Error paths return the literal code so static analyzers see that no output is used. */
    if (!loc || !loc[0]) {
        err_set(COFFER_EINVAL, "no repository location given: use a path such as /srv/backup "
                               "or local:/srv/backup");
        return COFFER_EINVAL;
    }
    if (strnlen(loc, LOCATION_MAX_LEN + 1) > LOCATION_MAX_LEN) {
        err_set(COFFER_EINVAL, "repository location is longer than %d bytes", LOCATION_MAX_LEN);
        return COFFER_EINVAL;
    }
    size_t n = scheme_len(loc);
    if (n == 0) {
        *out_drv = &storage_local_driver;
        *out_path = loc;
        return 0;
    }
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        if (strlen(schemes[i].name) == n && memcmp(schemes[i].name, loc, n) == 0) {
            if (!loc[n + 1]) {
                err_set(COFFER_EINVAL,
                        "repository location '%s' is incomplete: supported forms are %s", loc,
                        SUPPORTED_LOCATIONS);
                return COFFER_EINVAL;
            }
            *out_drv = schemes[i].drv;
            *out_path = loc + n + 1;
            return 0;
        }
    }
    /* Only the scheme is quoted: the rest may hold credentials. */
    err_set(COFFER_EINVAL,
            "repository location scheme '%.*s' is not supported by this build: supported "
            "forms are %s",
            (int)(n > 32 ? 32 : n), loc, SUPPORTED_LOCATIONS);
    return COFFER_EINVAL;
}

/* Features of the location a fault driver path ("SPEC:LOCATION") wraps; depth-bounded because
 * each level consumes at least "fault:" from the string. */
static unsigned wrapped_features(const char *fault_path)
{
    const char *colon = strchr(fault_path, ':');
    const storage_driver_t *drv = NULL;
    const char *path = NULL;
    if (!colon || location_resolve(colon + 1, &drv, &path) != 0)
        return 0;
    if (drv == &storage_fault_driver)
        return wrapped_features(path);
    return drv->features;
}

static unsigned retry_base_from_env(void)
{
    const char *v = getenv("COFFER_STORAGE_RETRY_BASE_MS");
    if (!v || !*v)
        return RETRY_BASE_MS;
    char *end;
    errno = 0;
    unsigned long ms = strtoul(v, &end, 10);
    if (errno || *end || v[0] == '-' || ms > RETRY_BASE_MS_MAX)
        return RETRY_BASE_MS;
    return (unsigned)ms;
}

const char *storage_opt(const storage_opts_t *opts, const char *key)
{
    const char *found = NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; opts && i < opts->n; i++) {
        const char *kv = opts->kv[i];
        if (kv && strncmp(kv, key, klen) == 0 && kv[klen] == '=')
            found = kv + klen + 1;
    }
    return found;
}

/* Option keys the generic layer itself accepts (no driver prefix). */
static const char *const generic_options[] = {"limit-upload", "limit-download", NULL};

static double mono_s(const struct timespec *t)
{
    return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static void rate_take(struct rate *r, uint64_t n)
{
    struct timespec now;
    double wait;
    if (!r || !n)
        return;
    pthread_mutex_lock(&r->mu);
    clock_gettime(CLOCK_MONOTONIC, &now);
    r->tokens += (mono_s(&now) - mono_s(&r->last)) * r->bytes_per_s;
    if (r->tokens > r->bytes_per_s)
        r->tokens = r->bytes_per_s;
    r->last = now;
    r->tokens -= (double)n;
    wait = r->tokens < 0 ? -r->tokens / r->bytes_per_s : 0;
    pthread_mutex_unlock(&r->mu);
    if (wait > 0) {
        struct timespec ts = {.tv_sec = (time_t)wait,
                              .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* "-o limit-upload=KiB/s": NULL *out when the option is absent. */
static int rate_new(const storage_opts_t *opts, const char *key, struct rate **out)
{
    const char *v = storage_opt(opts, key);
    *out = NULL;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    unsigned long long kib = strtoull(v, &end, 10);
    if (errno || end == v || v[0] == '-' || kib == 0 || kib > (1ull << 40) ||
        (*end && strcmp(end, "KiB/s") != 0))
        return err_set(COFFER_EINVAL,
                       "option %s must be a positive number of KiB per second (e.g. %s=2048)", key,
                       key);
    struct rate *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(COFFER_ENOMEM, "out of memory");
    pthread_mutex_init(&r->mu, NULL);
    r->bytes_per_s = (double)kib * 1024.0;
    r->tokens = r->bytes_per_s;
    clock_gettime(CLOCK_MONOTONIC, &r->last);
    *out = r;
    return 0;
}

static void rate_free(struct rate *r)
{
    if (r) {
        pthread_mutex_destroy(&r->mu);
        free(r);
    }
}

static bool key_listed(const char *const *list, const char *key, size_t klen)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strlen(list[i]) == klen && memcmp(list[i], key, klen) == 0)
            return true;
    return false;
}

/* Every option is "key=value"; a key for this driver (or the generic layer) must be known. */
static int options_check(const storage_driver_t *drv, const storage_opts_t *opts)
{
    size_t plen = strlen(drv->name);
    for (size_t i = 0; opts && i < opts->n; i++) {
        const char *kv = opts->kv[i];
        const char *eq = kv ? strchr(kv, '=') : NULL;
        if (!eq || eq == kv)
            return err_set(COFFER_EINVAL,
                           "storage option '%.60s' is not of the form key=value (for example "
                           "-o s3.region=eu-west-1)",
                           kv ? kv : "");
        size_t klen = (size_t)(eq - kv);
        const char *dot = memchr(kv, '.', klen);
        bool ok;
        if (!dot)
            ok = key_listed(generic_options, kv, klen);
        else if ((size_t)(dot - kv) == plen && memcmp(kv, drv->name, plen) == 0)
            ok = key_listed(drv->options, dot + 1, klen - plen - 1);
        else
            ok = true; /* another driver's option: ignored here */
        if (!ok) {
            /* Only the key is quoted: the value may be a secret. */
            err_set(COFFER_EINVAL,
                    "unknown storage option '%.*s' for %s locations: doc/storage.md lists "
                    "the known keys",
                    (int)(klen > 60 ? 60 : klen), kv, dot ? drv->name : "all");
            return COFFER_EINVAL;
        }
    }
    return 0;
}

static int storage_new(const storage_driver_t *drv, const char *path, const char *location,
                       bool create, const storage_opts_t *opts, storage_t **out)
{
    storage_t *s = NULL;
    int rc = 0;

    if (drv->version != STORAGE_DRIVER_VERSION) {
        rc = err_set(COFFER_EINVAL,
                     "storage driver '%s' implements interface version %u, this build needs %u",
                     drv->name, drv->version, (unsigned)STORAGE_DRIVER_VERSION);
        goto out;
    }
    assert(drv->open && drv->close && drv->put && drv->get && drv->stat && drv->list &&
           drv->remove);
    if ((rc = options_check(drv, opts)))
        goto out;
    s = calloc(1, sizeof *s);
    if (!s || !(s->location = strdup(location))) {
        rc = err_set(COFFER_ENOMEM, "out of memory opening repository location");
        goto out;
    }
    if ((rc = rate_new(opts, "limit-upload", &s->limit_up)) ||
        (rc = rate_new(opts, "limit-download", &s->limit_down)))
        goto out;
    s->drv = drv;
    s->features = drv == &storage_fault_driver ? wrapped_features(path) : drv->features;
    s->retry_base_ms = retry_base_from_env();
    rc = drv->open(path, create, opts, &s->state);
    if (rc)
        goto out;
    *out = s;
    s = NULL;
out:
    if (s) {
        rate_free(s->limit_up);
        rate_free(s->limit_down);
        free(s->location);
        free(s);
    }
    return rc;
}

int storage_open_inner(const char *location, bool create, const storage_opts_t *opts,
                       storage_t **out)
{
    const storage_driver_t *drv = NULL;
    const char *path = NULL;
    assert(out);
    int rc = location_resolve(location, &drv, &path);
    if (rc)
        return rc;
    return storage_new(drv, path, location, create, opts, out);
}

int storage_open(const char *location, bool create, storage_t **out)
{
    return storage_open_opts(location, create, NULL, out);
}

int storage_open_opts(const char *location, bool create, const storage_opts_t *opts,
                      storage_t **out)
{
    const char *spec = getenv("COFFER_FAULT");
    const storage_driver_t *drv = NULL;
    const char *path = NULL;
    buf_t fpath;
    int rc;

    assert(out);
    buf_init(&fpath);
    rc = location_resolve(location, &drv, &path);
    if (rc)
        goto out;
    if (!spec || !spec[0] || drv == &storage_fault_driver) {
        rc = storage_new(drv, path, location, create, opts, out);
        goto out;
    }
    /* Test hook: inject the faults named in COFFER_FAULT into this location. */
    if (strchr(spec, ':')) {
        rc = err_set(COFFER_EINVAL,
                     "COFFER_FAULT='%.100s' is not a fault spec: expected "
                     "key=N[,key=N...] such as fail-put=3",
                     spec);
        goto out;
    }
    rc = buf_printf(&fpath, "%s:%s", spec, location);
    if (rc)
        goto out;
    rc = storage_new(&storage_fault_driver, (const char *)fpath.data, location, create, opts, out);
out:
    buf_release(&fpath);
    return rc;
}

void storage_close(storage_t *s)
{
    if (!s)
        return;
    s->drv->close(s->state);
    rate_free(s->limit_up);
    rate_free(s->limit_down);
    free(s->location);
    free(s);
}

const char *storage_name(const storage_t *s)
{
    return s->drv->name;
}

const char *storage_location(const storage_t *s)
{
    return s->location;
}

unsigned storage_features(const storage_t *s)
{
    return s->features;
}

/* NULL if `name` is a valid object name (or, with is_prefix, a valid list prefix: may be
 * empty, may end in '/', its last component may be partial), else why not. */
static const char *name_problem(const char *name, bool is_prefix)
{
    size_t len = strnlen(name, NAME_MAX_LEN + 1);
    if (len > NAME_MAX_LEN)
        return "it is longer than 1024 bytes";
    if (len == 0)
        return is_prefix ? NULL : "it is empty";
    if (name[0] == '/')
        return "it starts with '/' (names are relative)";
    const char *c = name;
    for (;;) {
        size_t n = strcspn(c, "/");
        bool last = c[n] == '\0';
        if (n == 0 && !(is_prefix && last))
            return "it has an empty component ('//' or a trailing '/')";
        if (n > COMPONENT_MAX_LEN)
            return "a component is longer than 255 bytes";
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)c[i];
            if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
                return "it contains a character other than A-Z a-z 0-9 . _ - /";
        }
        if (!(is_prefix && last) && ((n == 1 && c[0] == '.') || (n == 2 && !memcmp(c, "..", 2))))
            return "it has a '.' or '..' component";
        if (n >= strlen(TMP_PREFIX) && !memcmp(c, TMP_PREFIX, strlen(TMP_PREFIX)))
            return "components starting with '.tmp-' are reserved for temporary files";
        if (last)
            return NULL;
        c += n + 1;
    }
}

static int name_check(const char *name, bool is_prefix)
{
    if (!name)
        return err_set(COFFER_EINVAL, "no object name given");
    const char *why = name_problem(name, is_prefix);
    if (!why)
        return 0;
    /* Quote at most 80 bytes, with anything unprintable shown as '?'. */
    char shown[81];
    size_t n = 0;
    for (; name[n] && n < sizeof shown - 1; n++)
        shown[n] = name[n] >= 0x20 && name[n] < 0x7f ? name[n] : '?';
    shown[n] = 0;
    return err_set(COFFER_EINVAL, "invalid object %s '%s%s': %s", is_prefix ? "prefix" : "name",
                   shown, name[n] ? "..." : "", why);
}

/* Add "while <verb> <name>" unless a nested storage_t (the fault wrapper's inner location)
 * already said exactly that. */
static int with_ctx(int rc, const char *verb, const char *name, unsigned attempts)
{
    char ctx[NAME_MAX_LEN + 64];
    snprintf(ctx, sizeof ctx, "while %s %s", verb, name[0] ? name : "all objects");
    if (strncmp(err_msg(), ctx, strlen(ctx)) == 0)
        return rc;
    if (attempts > 1)
        return err_ctx(rc, "%s (gave up after %u attempts)", ctx, attempts);
    return err_ctx(rc, "%s", ctx);
}

static uint32_t random_u32(void)
{
    uint32_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec;
    }
    return r;
}

/* Sleep before retry number attempt+1: base * 2^attempt capped at RETRY_CAP_MS, then a random
 * point in the upper half so many clients that failed together do not retry together. */
static void retry_sleep(const storage_t *s, unsigned attempt)
{
    uint64_t ms = s->retry_base_ms;
    uint64_t cap = ms > RETRY_CAP_MS ? ms : RETRY_CAP_MS;
    if (ms == 0)
        return;
    for (unsigned i = 0; i < attempt && ms < cap; i++)
        ms *= 2;
    if (ms > cap)
        ms = cap;
    ms = ms / 2 + random_u32() % (ms - ms / 2 + 1);
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    /* An interrupted backoff just retries sooner; the caller's signal flag is checked later. */
    nanosleep(&ts, NULL);
}

static void buf_truncate(buf_t *b, size_t len)
{
    b->len = len;
    if (b->data)
        b->data[len] = 0;
}

/* After a retried create-only put met EEXIST: did an earlier attempt land after all? */
static int put_landed(storage_t *s, const char *name, const void *data, size_t len)
{
    buf_t got;
    bool transient = false;
    char why[512];
    int rc;

    buf_init(&got);
    for (unsigned attempt = 0;; attempt++) {
        transient = false;
        rc = s->drv->get(s->state, name, 0, 0, &got, &transient);
        if (rc == 0 || !transient || attempt >= RETRY_MAX)
            break;
        buf_reset(&got);
        retry_sleep(s, attempt);
    }
    if (rc) {
        snprintf(why, sizeof why, "%s", err_msg());
        rc = err_set(COFFER_EEXIST,
                     "the object already exists and could not be compared with the data after "
                     "a retried write: %s",
                     why);
        goto out;
    }
    if (got.len != len || (len && memcmp(got.data, data, len) != 0))
        rc = err_set(COFFER_EEXIST,
                     "the object already exists with other content (written by someone else "
                     "while this write was being retried)");
out:
    buf_release(&got);
    return rc;
}

int storage_put(storage_t *s, const char *name, const void *data, size_t len,
                const storage_put_opts_t *opts)
{
    unsigned attempt = 0;
    bool transient;
    int rc;

    assert(s);
    rc = name_check(name, false);
    if (rc)
        return rc;
    if (!data && len)
        return err_set(COFFER_EINVAL, "no data given for object %s", name);
    if (len > BUF_MAX)
        return err_set(COFFER_ELIMIT, "object %s is %zu bytes, over the %zu-byte limit", name, len,
                       (size_t)BUF_MAX);
    rate_take(s->limit_up, len);
    for (;; attempt++) {
        transient = false;
        rc = s->drv->put(s->state, name, data, len, opts, &transient);
        if (rc == 0)
            return 0;
        /* A transient failure may have happened after the object landed (a lost reply); a
         * retry then finds it. Identical content means this write succeeded. */
        if (rc == COFFER_EEXIST && attempt > 0 && !(opts && opts->overwrite)) {
            rc = put_landed(s, name, data, len);
            if (rc == 0)
                return 0;
            break;
        }
        if (!transient || attempt >= RETRY_MAX)
            break;
        log_debug("storage %s: retrying write of %s: %s", s->location, name, err_msg());
        retry_sleep(s, attempt);
    }
    return with_ctx(rc, "writing", name, attempt + 1);
}

int storage_get(storage_t *s, const char *name, uint64_t off, uint64_t len, buf_t *out)
{
    unsigned attempt = 0;
    bool transient;
    int rc;

    assert(s && out);
    rc = name_check(name, false);
    if (rc)
        return rc;
    size_t keep = out->len;
    for (;; attempt++) {
        transient = false;
        rc = s->drv->get(s->state, name, off, len, out, &transient);
        if (rc == 0) {
            rate_take(s->limit_down, out->len - keep);
            return 0;
        }
        buf_truncate(out, keep);
        if (!transient || attempt >= RETRY_MAX)
            break;
        log_debug("storage %s: retrying read of %s: %s", s->location, name, err_msg());
        retry_sleep(s, attempt);
    }
    return with_ctx(rc, "reading", name, attempt + 1);
}

int storage_stat(storage_t *s, const char *name, storage_stat_t *out)
{
    unsigned attempt = 0;
    storage_stat_t st;
    bool transient;
    int rc;

    assert(s && out);
    rc = name_check(name, false);
    if (rc)
        return rc;
    for (;; attempt++) {
        transient = false;
        rc = s->drv->stat(s->state, name, &st, &transient);
        if (rc == 0) {
            *out = st;
            return 0;
        }
        if (!transient || attempt >= RETRY_MAX)
            break;
        log_debug("storage %s: retrying stat of %s: %s", s->location, name, err_msg());
        retry_sleep(s, attempt);
    }
    return with_ctx(rc, "looking up", name, attempt + 1);
}

struct list_tramp {
    storage_list_cb cb;
    void *ud;
    const char *prefix;
    size_t prefix_len;
    size_t calls; /* objects passed to cb: a listing that got this far is not retried */
    int stop;     /* cb's non-zero return, if it stopped the listing */
};

/* Every driver's names pass here: foreign objects (names this program would never write, or
 * outside the prefix) are not shown to callers. */
static int list_tramp_cb(void *ud, const char *name, const storage_stat_t *st)
{
    struct list_tramp *t = ud;
    if (strncmp(name, t->prefix, t->prefix_len) != 0 || name_problem(name, false))
        return 0;
    t->calls++;
    t->stop = t->cb(t->ud, name, st);
    return t->stop;
}

int storage_list(storage_t *s, const char *prefix, storage_list_cb cb, void *ud)
{
    unsigned attempt = 0;
    bool transient;
    int rc;

    assert(s && cb);
    if (!prefix)
        prefix = "";
    rc = name_check(prefix, true);
    if (rc)
        return rc;
    struct list_tramp t = {.cb = cb, .ud = ud, .prefix = prefix, .prefix_len = strlen(prefix)};
    for (;; attempt++) {
        transient = false;
        t.stop = 0;
        rc = s->drv->list(s->state, prefix, list_tramp_cb, &t, &transient);
        if (rc == 0 || (t.stop != 0 && rc == t.stop))
            return rc; /* done, or the caller's own stop value, passed through untouched */
        if (!transient || t.calls > 0 || attempt >= RETRY_MAX)
            break;
        log_debug("storage %s: retrying listing of %s: %s", s->location, prefix, err_msg());
        retry_sleep(s, attempt);
    }
    return with_ctx(rc, "listing", prefix, attempt + 1);
}

int storage_remove(storage_t *s, const char *name)
{
    unsigned attempt = 0;
    bool transient;
    int rc;

    assert(s);
    rc = name_check(name, false);
    if (rc)
        return rc;
    for (;; attempt++) {
        transient = false;
        rc = s->drv->remove(s->state, name, &transient);
        if (rc == 0)
            return 0;
        /* A retried remove that finds nothing was removed by the attempt that timed out. */
        if (rc == COFFER_ENOENT && attempt > 0)
            return 0;
        if (!transient || attempt >= RETRY_MAX)
            break;
        log_debug("storage %s: retrying removal of %s: %s", s->location, name, err_msg());
        retry_sleep(s, attempt);
    }
    return with_ctx(rc, "removing", name, attempt + 1);
}

int storage_now(storage_t *s, int64_t *out_ns)
{
    storage_put_opts_t po = {.overwrite = true, .sync = false};
    storage_stat_t st = {0};
    uint8_t rnd[8];
    char hex[2 * sizeof rnd + 1];
    char name[64];
    int64_t t;
    int rc;

    assert(s && out_ns);
    if (s->drv->now) {
        rc = s->drv->now(s->state, &t);
        if (rc)
            return with_ctx(rc, "reading the clock of", s->location, 1);
        *out_ns = t;
        return 0;
    }
    /* No native clock: the backend stamps a probe object with its own time. */
    for (size_t i = 0; i < sizeof rnd; i += 4) {
        uint32_t r = random_u32();
        memcpy(rnd + i, &r, 4);
    }
    hex_encode(rnd, sizeof rnd, hex);
    snprintf(name, sizeof name, "maint/clock-%s", hex);
    rc = storage_put(s, name, hex, strlen(hex), &po);
    if (rc)
        goto out;
    rc = storage_stat(s, name, &st);
    if (rc)
        goto out; /* the probe stays behind; it is tiny and never read */
    /* Best effort: a leftover probe is harmless, the time is what was asked for. */
    (void)storage_remove(s, name);
    *out_ns = st.mtime_ns;
out:
    if (rc)
        with_ctx(rc, "reading the clock of", s->location, 1);
    return rc;
}

/* ---- streaming uploads ---- */

struct storage_upload {
    storage_t *s;
    void *drv_upload; /* driver handle, or NULL when buffering here */
    buf_t buf;
    uint64_t size;
};

int storage_upload_begin(storage_t *s, storage_upload_t **out)
{
    storage_upload_t *u = calloc(1, sizeof *u);
    if (!u)
        return err_set(COFFER_ENOMEM, "out of memory starting an upload");
    u->s = s;
    buf_init(&u->buf);
    if (s->drv->upload_begin) {
        int rc = s->drv->upload_begin(s->state, &u->drv_upload);
        if (rc) {
            free(u);
            return with_ctx(rc, "starting an upload to", s->location, 1);
        }
    }
    *out = u;
    return 0;
}

int storage_upload_write(storage_upload_t *u, const void *data, size_t len)
{
    int rc;
    if (u->size + len > BUF_MAX)
        return err_set(COFFER_ELIMIT, "upload over the %zu-byte limit", (size_t)BUF_MAX);
    if (u->drv_upload) {
        rate_take(u->s->limit_up, len);
        rc = u->s->drv->upload_write(u->drv_upload, data, len);
    } else
        rc = buf_append(&u->buf, data, len);
    if (!rc)
        u->size += len;
    return rc;
}

uint64_t storage_upload_size(const storage_upload_t *u)
{
    return u->size;
}

int storage_upload_commit(storage_upload_t *u, const char *name, const storage_put_opts_t *opts)
{
    int rc = name_check(name, false);
    if (rc) {
        storage_upload_abort(u);
        return rc;
    }
    if (u->drv_upload) {
        rc = u->s->drv->upload_commit(u->drv_upload, name, opts);
        u->drv_upload = NULL;
        if (rc)
            rc = with_ctx(rc, "writing", name, 1);
    } else {
        rc = storage_put(u->s, name, u->buf.data, u->buf.len, opts);
    }
    buf_release(&u->buf);
    free(u);
    return rc;
}

void storage_upload_abort(storage_upload_t *u)
{
    if (!u)
        return;
    if (u->drv_upload)
        u->s->drv->upload_abort(u->drv_upload);
    buf_release(&u->buf);
    free(u);
}

int storage_cleanup(storage_t *s, int64_t older_than_ns, uint64_t *out_removed)
{
    *out_removed = 0;
    if (!s->drv->cleanup)
        return 0;
    int rc = s->drv->cleanup(s->state, older_than_ns, out_removed);
    return rc ? with_ctx(rc, "cleaning up temp files in", s->location, 1) : 0;
}

int storage_describe(storage_t *s, struct json_t *out)
{
    json_object_set_new(out, "driver", json_string(s->drv->name));
    json_object_set_new(out, "location", json_string(s->location));
    if (!s->drv->describe)
        return 0;
    int rc = s->drv->describe(s->state, out);
    return rc ? with_ctx(rc, "describing", s->location, 1) : 0;
}
