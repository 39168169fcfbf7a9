/*
 * fault.c -- fault-injecting storage wrapper for tests: "fault:SPEC:LOCATION".
 *
 * Layer: storage driver (test-only). It opens LOCATION (any location, even another fault:)
 * through storage_open_inner and passes every call through, except the ones SPEC says to break.
 * SPEC is comma-separated key=N and may be empty ("fault::/tmp/repo" injects nothing); N counts
 * calls of one kind on this storage_t, from 1, including calls made by the generic layer's
 * retries:
 *   fail-put=N         the Nth put fails with COFFER_EIO (not transient), writing nothing
 *   transient-put=N    the Nth put fails as transient (the generic layer retries it)
 *   enospc-put=N       the Nth put fails with COFFER_ENOSPC, writing nothing
 *   crash-after-put=N  puts 1..N pass; from then on every put, remove and now fails with
 *                      COFFER_EIO "simulated crash" (gets, stats and lists still work): a
 *                      crashed process writes nothing more. N may be 0.
 *   kill-at-put=N      _exit(137) when the Nth put begins, before it writes (like SIGKILL)
 *   kill-after-put=N   _exit(137) right after the Nth put returns
 *   fail-get=N         the Nth get fails with COFFER_EIO
 *   transient-get=N    the Nth get fails as transient
 *   short-get=N        the Nth get returns only the first half of its bytes, and no error
 *   flip-get=N         the Nth get flips one bit in the middle of what it returns
 *   fail-list=N        the Nth list fails with COFFER_EIO before listing anything
 *   fail-remove=N      the Nth remove fails with COFFER_EIO, removing nothing
 *   lost-reply-put=N   the Nth put writes the object, then reports a transient error (a reply
 *                      lost on the network): the generic layer's retry must notice it landed
 *   lost-reply-remove=N  the same for the Nth remove
 *   transient-count=K  each transient-* fault fails K consecutive calls, not one (default 1)
 *
 * Environment: if COFFER_FAULT is set to a SPEC, storage_open (storage.c) wraps EVERY location
 * it opens, plain paths included, as if it were "fault:$COFFER_FAULT:LOCATION", so integration
 * tests can inject faults into the real coffer binary. Counters are per storage_t, so a process
 * that opens the repository twice counts each handle separately. When COFFER_FAULT is unset or
 * empty nothing is wrapped and this driver is never reached; a location that is already
 * "fault:..." is not wrapped again.
 *
 * Invariants: the spec is read-only after open; counters and the crashed flag are atomics, so
 * the wrapper is as thread-safe as the location it wraps. A fault that fails a put or remove
 * never reaches the inner location.
 */
#include "storage/storage_intern.h"

#include "common/buf.h"
#include "common/error.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAULT_N_MAX 1000000000ull
#define TRANSIENT_COUNT_MAX 100
#define KILL_STATUS 137 /* what a shell reports for SIGKILL */

enum fault_key {
    K_FAIL_PUT,
    K_TRANSIENT_PUT,
    K_ENOSPC_PUT,
    K_CRASH_AFTER_PUT,
    K_KILL_AT_PUT,
    K_KILL_AFTER_PUT,
    K_FAIL_GET,
    K_TRANSIENT_GET,
    K_SHORT_GET,
    K_FLIP_GET,
    K_FAIL_LIST,
    K_FAIL_REMOVE,
    K_LOST_REPLY_PUT,
    K_LOST_REPLY_REMOVE,
    K_TRANSIENT_COUNT,
    K_COUNT
};

static const char *const key_names[K_COUNT] = {
    [K_FAIL_PUT] = "fail-put",
    [K_TRANSIENT_PUT] = "transient-put",
    [K_ENOSPC_PUT] = "enospc-put",
    [K_CRASH_AFTER_PUT] = "crash-after-put",
    [K_KILL_AT_PUT] = "kill-at-put",
    [K_KILL_AFTER_PUT] = "kill-after-put",
    [K_FAIL_GET] = "fail-get",
    [K_TRANSIENT_GET] = "transient-get",
    [K_SHORT_GET] = "short-get",
    [K_FLIP_GET] = "flip-get",
    [K_FAIL_LIST] = "fail-list",
    [K_FAIL_REMOVE] = "fail-remove",
    [K_LOST_REPLY_PUT] = "lost-reply-put",
    [K_LOST_REPLY_REMOVE] = "lost-reply-remove",
    [K_TRANSIENT_COUNT] = "transient-count",
};

struct fault {
    storage_t *inner;
    bool set[K_COUNT];
    uint64_t at[K_COUNT];
    atomic_uint_fast64_t puts, gets, lists, removes;
    atomic_bool crashed;
};

static int parse_spec(struct fault *f, const char *spec, size_t len)
{
    const char *p = spec, *end = spec + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
        const char *eq = memchr(p, '=', n);
        int k;
        if (n == 0)
            goto next;
        for (k = 0; k < K_COUNT; k++)
            if (eq && strlen(key_names[k]) == (size_t)(eq - p) &&
                !memcmp(key_names[k], p, (size_t)(eq - p)))
                break;
        if (k == K_COUNT)
            return err_set(COFFER_EINVAL,
                           "unknown fault '%.*s' in fault spec '%.*s': expected key=N with key "
                           "one of fail-put, transient-put, enospc-put, crash-after-put, "
                           "kill-at-put, kill-after-put, fail-get, transient-get, short-get, "
                           "flip-get, fail-list, fail-remove, lost-reply-put, lost-reply-remove, "
                           "transient-count",
                           (int)n, p, (int)len, spec);
        if (f->set[k])
            return err_set(COFFER_EINVAL, "fault '%s' is given twice in fault spec '%.*s'",
                           key_names[k], (int)len, spec);
        uint64_t v = 0;
        const char *d = eq + 1;
        if (d == p + n)
            goto bad;
        for (; d < p + n; d++) {
            if (*d < '0' || *d > '9' || v > FAULT_N_MAX)
                goto bad;
            v = v * 10 + (uint64_t)(*d - '0');
        }
        if (v > FAULT_N_MAX || (v == 0 && k != K_CRASH_AFTER_PUT) ||
            (k == K_TRANSIENT_COUNT && v > TRANSIENT_COUNT_MAX))
            goto bad;
        f->set[k] = true;
        f->at[k] = v;
    next:
        p += n + 1;
        continue;
    bad:
        return err_set(COFFER_EINVAL,
                       "bad value in fault '%.*s': N counts calls from 1 (crash-after-put may "
                       "be 0; transient-count is at most %d)",
                       (int)n, p, TRANSIENT_COUNT_MAX);
    }
    return 0;
}

static bool hit(const struct fault *f, enum fault_key k, uint64_t call)
{
    return f->set[k] && f->at[k] == call;
}

static bool hit_transient(const struct fault *f, enum fault_key k, uint64_t call)
{
    uint64_t times = f->set[K_TRANSIENT_COUNT] ? f->at[K_TRANSIENT_COUNT] : 1;
    return f->set[k] && call >= f->at[k] && call - f->at[k] < times;
}

static int crashed_err(void)
{
    return err_set(COFFER_EIO, "simulated crash (fault crash-after-put): this process writes "
                               "nothing more");
}

static int fault_open(const char *path, bool create, const storage_opts_t *opts, void **out_state)
{
    const char *colon = strchr(path, ':');
    struct fault *f = NULL;
    int rc;

    if (!colon)
        return err_set(COFFER_EINVAL, "fault location needs the form fault:SPEC:LOCATION "
                                      "(SPEC may be empty, as in fault::/tmp/repo)");
    f = calloc(1, sizeof *f);
    if (!f)
        return err_set(COFFER_ENOMEM, "out of memory opening a fault location");
    rc = parse_spec(f, path, (size_t)(colon - path));
    if (rc)
        goto out;
    if (f->set[K_CRASH_AFTER_PUT] && f->at[K_CRASH_AFTER_PUT] == 0)
        atomic_store(&f->crashed, true);
    rc = storage_open_inner(colon + 1, create, opts, &f->inner);
    if (rc)
        goto out;
    *out_state = f;
    f = NULL;
out:
    free(f);
    return rc;
}

static void fault_close(void *state)
{
    struct fault *f = state;
    if (!f)
        return;
    storage_close(f->inner);
    free(f);
}

static int fault_put(void *state, const char *name, const void *data, size_t len,
                     const storage_put_opts_t *opts, bool *transient)
{
    struct fault *f = state;
    uint64_t call = atomic_fetch_add(&f->puts, 1) + 1;

    if (f->set[K_CRASH_AFTER_PUT] && call > f->at[K_CRASH_AFTER_PUT])
        atomic_store(&f->crashed, true);
    if (atomic_load(&f->crashed))
        return crashed_err();
    if (hit(f, K_KILL_AT_PUT, call))
        _exit(KILL_STATUS);
    if (hit(f, K_FAIL_PUT, call))
        return err_set(COFFER_EIO, "simulated I/O error on put #%llu (fault fail-put)",
                       (unsigned long long)call);
    if (hit_transient(f, K_TRANSIENT_PUT, call)) {
        *transient = true;
        return err_set(COFFER_EIO,
                       "simulated transient error on put #%llu (fault "
                       "transient-put)",
                       (unsigned long long)call);
    }
    if (hit(f, K_ENOSPC_PUT, call))
        return err_set(COFFER_ENOSPC,
                       "simulated full disk on put #%llu (fault enospc-put): "
                       "nothing was written",
                       (unsigned long long)call);
    int rc = storage_put(f->inner, name, data, len, opts);
    if (hit(f, K_KILL_AFTER_PUT, call))
        _exit(KILL_STATUS);
    if (f->set[K_CRASH_AFTER_PUT] && call == f->at[K_CRASH_AFTER_PUT])
        atomic_store(&f->crashed, true);
    if (rc == 0 && hit(f, K_LOST_REPLY_PUT, call)) {
        *transient = true;
        return err_set(COFFER_EIO,
                       "simulated lost reply: put #%llu wrote the object but "
                       "reported failure (fault lost-reply-put)",
                       (unsigned long long)call);
    }
    return rc;
}

static int fault_get(void *state, const char *name, uint64_t off, uint64_t len, buf_t *out,
                     bool *transient)
{
    struct fault *f = state;
    uint64_t call = atomic_fetch_add(&f->gets, 1) + 1;
    size_t keep = out->len;

    if (hit(f, K_FAIL_GET, call))
        return err_set(COFFER_EIO, "simulated I/O error on get #%llu (fault fail-get)",
                       (unsigned long long)call);
    if (hit_transient(f, K_TRANSIENT_GET, call)) {
        *transient = true;
        return err_set(COFFER_EIO,
                       "simulated transient error on get #%llu (fault "
                       "transient-get)",
                       (unsigned long long)call);
    }
    int rc = storage_get(f->inner, name, off, len, out);
    if (rc)
        return rc;
    size_t got = out->len - keep;
    if (hit(f, K_SHORT_GET, call)) {
        out->len = keep + got / 2;
        out->data[out->len] = 0;
    }
    if (hit(f, K_FLIP_GET, call) && got > 0)
        out->data[keep + got / 2] ^= 0x10;
    return 0;
}

static int fault_stat(void *state, const char *name, storage_stat_t *out, bool *transient)
{
    struct fault *f = state;
    (void)transient;
    return storage_stat(f->inner, name, out);
}

static int fault_list(void *state, const char *prefix, storage_list_cb cb, void *ud,
                      bool *transient)
{
    struct fault *f = state;
    uint64_t call = atomic_fetch_add(&f->lists, 1) + 1;
    (void)transient;
    if (hit(f, K_FAIL_LIST, call))
        return err_set(COFFER_EIO, "simulated I/O error on list #%llu (fault fail-list)",
                       (unsigned long long)call);
    return storage_list(f->inner, prefix, cb, ud);
}

static int fault_remove(void *state, const char *name, bool *transient)
{
    struct fault *f = state;
    uint64_t call = atomic_fetch_add(&f->removes, 1) + 1;
    if (atomic_load(&f->crashed))
        return crashed_err();
    if (hit(f, K_FAIL_REMOVE, call))
        return err_set(COFFER_EIO, "simulated I/O error on remove #%llu (fault fail-remove)",
                       (unsigned long long)call);
    int rc = storage_remove(f->inner, name);
    if (rc == 0 && hit(f, K_LOST_REPLY_REMOVE, call)) {
        *transient = true;
        return err_set(COFFER_EIO,
                       "simulated lost reply: remove #%llu removed the object but "
                       "reported failure (fault lost-reply-remove)",
                       (unsigned long long)call);
    }
    return rc;
}

static int fault_now(void *state, int64_t *out_ns)
{
    struct fault *f = state;
    if (atomic_load(&f->crashed))
        return crashed_err();
    return storage_now(f->inner, out_ns);
}

const storage_driver_t storage_fault_driver = {
    .version = STORAGE_DRIVER_VERSION,
    .name = "fault",
    .features = 0, /* storage.c reports the wrapped location's features */
    .open = fault_open,
    .close = fault_close,
    .put = fault_put,
    .get = fault_get,
    .stat = fault_stat,
    .list = fault_list,
    .remove = fault_remove,
    .now = fault_now,
};
