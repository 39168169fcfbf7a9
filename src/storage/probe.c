/*
 * probe.c -- the location check (probe.h): write, read, ranged read, stat, list, create-only,
 * overwrite, a large streamed upload (multipart on object stores), delete, and the clock.
 *
 * Layer: storage. Steps run in order; a step whose prerequisite failed is reported as skipped.
 * Every object written is removed at the end, whatever failed in between.
 */
#include "storage/probe.h"

#include "common/error.h"
#include "common/timefmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SMALL_BYTES 4096
#define STREAM_DEFAULT (16u << 20)
#define STREAM_PIECE (1u << 20)
#define SKEW_WARN_S 60.0
#define SKEW_FAIL_S 900.0 /* S3 refuses signatures 15 minutes off */

typedef struct probe_ctx {
    storage_t *s;
    probe_report_t *r;
    char small[96], big[96];
    bool small_written, big_written;
    uint8_t data[SMALL_BYTES];
} probe_ctx_t;

/* Random bytes for test data and names; never a secret, so a weak fallback is fine. */
static void fill_random(void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(b + got, n - got, GRND_NONBLOCK);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    uint64_t x = (uint64_t)time_monotonic_ns() | 1;
    for (; got < n; got++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[got] = (uint8_t)x;
    }
}

static probe_step_t *step_begin(probe_ctx_t *c, const char *name, int64_t *t0)
{
    probe_step_t *st = &c->r->steps[c->r->n++];
    memset(st, 0, sizeof *st);
    st->name = name;
    *t0 = time_monotonic_ns();
    return st;
}

static void step_end(probe_ctx_t *c, probe_step_t *st, int64_t t0, probe_result_t res,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void step_end(probe_ctx_t *c, probe_step_t *st, int64_t t0, probe_result_t res,
                     const char *fmt, ...)
{
    st->ms = (double)(time_monotonic_ns() - t0) / 1e6;
    st->result = res;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->detail, sizeof st->detail, fmt, ap);
    va_end(ap);
    if (res == PROBE_FAIL)
        c->r->failed++;
    else if (res == PROBE_WARN)
        c->r->warned++;
}

static void skip(probe_ctx_t *c, const char *name, const char *why)
{
    int64_t t0;
    probe_step_t *st = step_begin(c, name, &t0);
    st->result = PROBE_SKIP;
    snprintf(st->detail, sizeof st->detail, "not tried: %s", why);
}

static bool step_write(probe_ctx_t *c)
{
    int64_t t0;
    probe_step_t *st = step_begin(c, "write", &t0);
    int rc = storage_put(c->s, c->small, c->data, sizeof c->data, NULL);
    if (rc) {
        step_end(c, st, t0, PROBE_FAIL, "%s", err_msg());
        return false;
    }
    c->small_written = true;
    step_end(c, st, t0, PROBE_OK, "%d bytes", SMALL_BYTES);
    return true;
}

static void step_read(probe_ctx_t *c)
{
    int64_t t0;
    buf_t b;
    buf_init(&b);
    probe_step_t *st = step_begin(c, "read", &t0);
    int rc = storage_get(c->s, c->small, 0, 0, &b);
    if (rc)
        step_end(c, st, t0, PROBE_FAIL, "%s", err_msg());
    else if (b.len != sizeof c->data || memcmp(b.data, c->data, b.len) != 0)
        step_end(c, st, t0, PROBE_FAIL, "read back %zu bytes that differ from the %d written",
                 b.len, SMALL_BYTES);
    else
        step_end(c, st, t0, PROBE_OK, "the bytes written came back");
    b.len = 0;

    st = step_begin(c, "ranged read", &t0);
    rc = storage_get(c->s, c->small, 1000, 500, &b);
    if (rc)
        step_end(c, st, t0, PROBE_FAIL, "%s", err_msg());
    else if (b.len != 500 || memcmp(b.data, c->data + 1000, 500) != 0)
        step_end(c, st, t0, PROBE_FAIL, "a read of bytes 1000-1499 returned %zu wrong bytes",
                 b.len);
    else if (!(storage_features(c->s) & STORAGE_F_RANGE))
        step_end(c, st, t0, PROBE_WARN, "emulated: the whole object is read for a range");
    else
        step_end(c, st, t0, PROBE_OK, "bytes 1000-1499");
    buf_release(&b);
}

static void step_stat_list(probe_ctx_t *c)
{
    int64_t t0;
    storage_stat_t sst;
    probe_step_t *st = step_begin(c, "stat", &t0);
    int rc = storage_stat(c->s, c->small, &sst);
    if (rc)
        step_end(c, st, t0, PROBE_FAIL, "%s", err_msg());
    else if (sst.size != sizeof c->data)
        step_end(c, st, t0, PROBE_FAIL, "size %llu, expected %d", (unsigned long long)sst.size,
                 SMALL_BYTES);
    else
        step_end(c, st, t0, PROBE_OK, "size and time");
}

typedef struct find_ud {
    const char *want;
    bool found;
    size_t seen;
} find_ud_t;

static int find_cb(void *ud, const char *name, const storage_stat_t *st)
{
    find_ud_t *f = ud;
    f->seen++;
    if (strcmp(name, f->want) == 0 && st->size == SMALL_BYTES)
        f->found = true;
    return 0;
}

static void step_list(probe_ctx_t *c)
{
    int64_t t0;
    probe_step_t *st = step_begin(c, "list", &t0);
    find_ud_t f = {.want = c->small};
    int rc = storage_list(c->s, "locationcheck/", find_cb, &f);
    if (rc)
        step_end(c, st, t0, PROBE_FAIL, "%s", err_msg());
    else if (!f.found)
        step_end(c, st, t0, PROBE_FAIL,
                 "the object just written is not in the listing (%zu others): the location "
                 "lists with a delay, which coffer cannot work with",
                 f.seen);
    else
        step_end(c, st, t0, PROBE_OK, "the object just written is listed");
}

/* What the driver says about the server (the s3 driver detects conditional writes at the
 * first create-only write, so this runs after one). */
static bool emulated_create_only(storage_t *s, probe_report_t *r)
{
    if (!r->server) {
        r->server = json_object();
        if (storage_describe(s, r->server))
            err_clear();
    }
    const char *cw = json_string_value(json_object_get(r->server, "conditional_writes"));
    return cw && strcmp(cw, "emulated") == 0;
}

/* The driver detected atomic create-only writes itself (S3: If-None-Match honoured). */
static bool server_says_atomic(const probe_report_t *r)
{
    const char *cw = json_string_value(json_object_get(r->server, "conditional_writes"));
    return cw && strcmp(cw, "if-none-match") == 0;
}

static void step_create_only(probe_ctx_t *c)
{
    int64_t t0;
    buf_t b;
    buf_init(&b);
    probe_step_t *st = step_begin(c, "create-only write", &t0);
    static const char other[] = "must not replace the object";
    int rc = storage_put(c->s, c->small, other, sizeof other, NULL);
    if (rc == 0) {
        step_end(c, st, t0, PROBE_FAIL,
                 "a create-only write replaced an existing object: concurrent writers and the "
                 "prune lease are not safe on this location");
    } else if (rc != COFFER_EEXIST) {
        step_end(c, st, t0, PROBE_FAIL, "%s", err_msg());
    } else if (storage_get(c->s, c->small, 0, 0, &b) != 0 || b.len != sizeof c->data ||
               memcmp(b.data, c->data, b.len) != 0) {
        step_end(c, st, t0, PROBE_FAIL, "refused, but the object was changed anyway");
    } else if (emulated_create_only(c->s, c->r)) {
        step_end(c, st, t0, PROBE_WARN,
                 "emulated (check, then write: %s): two writers at the same instant could both "
                 "succeed; see doc/storage.md",
                 json_string_value(json_object_get(c->r->server, "conditional_writes_detail"))
                     ? json_string_value(json_object_get(c->r->server, "conditional_writes_detail"))
                     : "the server ignores If-None-Match");
    } else if (!server_says_atomic(c->r) && !(storage_features(c->s) & STORAGE_F_CREATE_ONLY)) {
        step_end(c, st, t0, PROBE_WARN,
                 "emulated (check, then write): two writers at the same instant could both "
                 "succeed; see doc/storage.md");
    } else {
        step_end(c, st, t0, PROBE_OK, "an existing object is refused atomically");
    }
    buf_release(&b);
}

static void step_overwrite(probe_ctx_t *c)
{
    int64_t t0;
    buf_t b;
    buf_init(&b);
    probe_step_t *st = step_begin(c, "overwrite", &t0);
    storage_put_opts_t po = {.overwrite = true, .sync = true};
    static const char repl[] = "replaced";
    int rc = storage_put(c->s, c->small, repl, sizeof repl, &po);
    if (!rc)
        rc = storage_get(c->s, c->small, 0, 0, &b);
    if (rc)
        step_end(c, st, t0, PROBE_FAIL, "%s", err_msg());
    else if (b.len != sizeof repl || memcmp(b.data, repl, b.len) != 0)
        step_end(c, st, t0, PROBE_FAIL, "the replaced object reads back wrong");
    else
        step_end(c, st, t0, PROBE_OK, "heartbeats can be refreshed");
    buf_release(&b);
}

static void step_stream(probe_ctx_t *c, size_t total)
{
    int64_t t0;
    probe_step_t *st = step_begin(c, "large upload", &t0);
    uint8_t *piece = malloc(STREAM_PIECE);
    storage_upload_t *u = NULL;
    buf_t b;
    buf_init(&b);
    int rc = piece ? 0 : err_set(COFFER_ENOMEM, "out of memory");
    if (!rc)
        fill_random(piece, STREAM_PIECE);
    if (!rc)
        rc = storage_upload_begin(c->s, &u);
    size_t done = 0;
    while (!rc && done < total) {
        size_t n = total - done < STREAM_PIECE ? total - done : STREAM_PIECE;
        rc = storage_upload_write(u, piece, n);
        done += n;
    }
    if (!rc) {
        rc = storage_upload_commit(u, c->big, NULL);
        u = NULL;
        if (!rc)
            c->big_written = true;
    }
    double up_ms = (double)(time_monotonic_ns() - t0) / 1e6;
    /* Read back the last piece: it must be the tail of what was sent. */
    size_t tail = total % STREAM_PIECE ? total % STREAM_PIECE : STREAM_PIECE;
    if (!rc)
        rc = storage_get(c->s, c->big, total - tail, tail, &b);
    if (rc) {
        step_end(c, st, t0, PROBE_FAIL, "%s", err_msg());
    } else {
        if (b.len != tail || memcmp(piece, b.data, tail) != 0)
            step_end(c, st, t0, PROBE_FAIL, "the end of a %zu-byte upload reads back wrong", total);
        else
            step_end(c, st, t0, PROBE_OK, "%.1f MiB streamed in %.2f s (%.1f MiB/s)",
                     (double)total / 1048576.0, up_ms / 1000.0,
                     up_ms > 0 ? (double)total / 1048576.0 / (up_ms / 1000.0) : 0.0);
    }
    storage_upload_abort(u);
    buf_release(&b);
    free(piece);
}

static void step_delete(probe_ctx_t *c)
{
    int64_t t0;
    probe_step_t *st = step_begin(c, "delete", &t0);
    storage_stat_t sst;
    int rc = 0;
    if (c->big_written && (rc = storage_remove(c->s, c->big)) == 0)
        c->big_written = false;
    if (!rc && c->small_written && (rc = storage_remove(c->s, c->small)) == 0)
        c->small_written = false;
    if (rc) {
        step_end(c, st, t0, PROBE_FAIL, "%s", err_msg());
        return;
    }
    rc = storage_stat(c->s, c->small, &sst);
    if (rc != COFFER_ENOENT) {
        step_end(c, st, t0, PROBE_FAIL, "a deleted object is still there (stat gave %d)", rc);
        return;
    }
    rc = storage_remove(c->s, c->small);
    if (rc != COFFER_ENOENT)
        step_end(c, st, t0, PROBE_WARN, "deleting a missing object did not report it missing (%d)",
                 rc);
    else
        step_end(c, st, t0, PROBE_OK, "deleted objects are gone");
}

static void step_clock(probe_ctx_t *c)
{
    int64_t t0, now = 0;
    probe_step_t *st = step_begin(c, "clock", &t0);
    int64_t before = time_now_ns();
    int rc = storage_now(c->s, &now);
    int64_t after = time_now_ns();
    if (rc) {
        step_end(c, st, t0, PROBE_FAIL, "%s", err_msg());
        return;
    }
    double skew = (double)(now - (before / 2 + after / 2)) / 1e9;
    double mag = skew < 0 ? -skew : skew;
    c->r->clock_skew_s = skew;
    c->r->has_skew = true;
    if (mag >= SKEW_FAIL_S)
        step_end(c, st, t0, PROBE_FAIL,
                 "this host's clock is %+.0f s off the location's: fix the clock (NTP)", -skew);
    else if (mag >= SKEW_WARN_S)
        step_end(c, st, t0, PROBE_WARN, "this host's clock is %+.0f s off the location's", -skew);
    else
        step_end(c, st, t0, PROBE_OK,
                 "skew %+.1f s (coffer times leases by the location's "
                 "clock)",
                 -skew);
}

int storage_probe(storage_t *s, const probe_opts_t *o, probe_report_t *out)
{
    probe_report_t r = {0};
    probe_ctx_t *c = calloc(1, sizeof *c);
    if (!c) {
        *out = r;
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    c->s = s;
    c->r = &r;
    uint8_t rnd[8];
    char hex[17];
    fill_random(rnd, sizeof rnd);
    hex_encode(rnd, sizeof rnd, hex);
    snprintf(c->small, sizeof c->small, "locationcheck/%s-small", hex);
    snprintf(c->big, sizeof c->big, "locationcheck/%s-large", hex);
    fill_random(c->data, sizeof c->data);
    size_t stream = o && o->stream_bytes ? o->stream_bytes : STREAM_DEFAULT;

    if (step_write(c)) {
        step_read(c);
        step_stat_list(c);
        step_list(c);
        step_create_only(c);
        step_overwrite(c);
    } else {
        static const char *const after_write[] = {"read", "ranged read",       "stat",
                                                  "list", "create-only write", "overwrite"};
        for (size_t i = 0; i < sizeof after_write / sizeof *after_write; i++)
            skip(c, after_write[i], "the write failed");
    }
    step_stream(c, stream);
    step_delete(c);
    step_clock(c);
    /* Whatever failed: try once more to leave nothing behind. */
    if (c->big_written)
        (void)storage_remove(s, c->big);
    if (c->small_written)
        (void)storage_remove(s, c->small);
    *out = r;
    free(c);
    for (int i = 0; i < r.n; i++)
        if (r.steps[i].result == PROBE_FAIL)
            return err_set(COFFER_EIO, "location check failed at step \"%s\": %s", r.steps[i].name,
                           r.steps[i].detail);
    return 0;
}

void probe_report_release(probe_report_t *r)
{
    if (r) {
        json_decref(r->server);
        r->server = NULL;
    }
}

json_t *probe_report_json(const probe_report_t *r)
{
    static const char *const names[] = {"ok", "warning", "failed", "skipped"};
    json_t *steps = json_array();
    for (int i = 0; i < r->n; i++) {
        const probe_step_t *st = &r->steps[i];
        json_array_append_new(steps,
                              json_pack("{s:s, s:s, s:f, s:s}", "step", st->name, "result",
                                        names[st->result], "ms", st->ms, "detail", st->detail));
    }
    json_t *o = json_pack("{s:b, s:i, s:i, s:o}", "ok", r->failed == 0, "failed", r->failed,
                          "warnings", r->warned, "steps", steps);
    if (r->has_skew)
        json_object_set_new(o, "clock_skew_s", json_real(r->clock_skew_s));
    if (r->server)
        json_object_set(o, "server", r->server);
    return o;
}
