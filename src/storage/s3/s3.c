/*
 * s3.c -- the S3 storage driver: "s3://HOST[:PORT]/BUCKET[/PREFIX]" and "s3:BUCKET[/PREFIX]".
 *
 * Layer: storage driver (reached through storage.c; names arrive validated; storage.c
 * retries what is flagged transient). Requests go through s3_http.c.
 * Invariants:
 * - Object "NAME" is key "PREFIX/NAME" (or "NAME" without a prefix) in BUCKET.
 * - Plain http only to loopback hosts unless s3.insecure-http=true.
 * - Create-only puts use "If-None-Match: *" when a probe (once per open location, at the first
 *   create-only put or describe) showed the server refuses a second conditional put with 412;
 *   otherwise HEAD then PUT (a race another writer could win between the two: harmless for
 *   content-addressed names, see doc/storage.md for the prune lease).
 * - Objects of at least multipart-threshold bytes go up as a multipart upload with parallel
 *   parts; any failure aborts the upload so no parts are left behind.
 * - remove is HEAD then DELETE, because S3 answers 204 to the removal of a missing key and the
 *   interface reports COFFER_ENOENT for it.
 * - Times come from the server: Last-Modified for stat/list, the Date header for now.
 */
#include "storage/s3/s3.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "storage/s3/creds.h"
#include "storage/s3/s3_http.h"
#include "storage/s3/s3_xml.h"
#include "storage/storage_intern.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MIB ((uint64_t)1 << 20)
#define PART_MIN (5 * MIB)           /* S3's minimum part size (all parts but the last) */
#define PART_MAX (5120 * MIB)        /* S3's maximum part size */
#define PARTS_MAX 10000              /* S3's maximum part count */
#define THRESHOLD_DEFAULT (64 * MIB) /* packs are 16 MiB: one PUT each by default */
#define PART_SIZE_DEFAULT (16 * MIB)
#define CONNECTIONS_DEFAULT 8
#define CONNECTIONS_MAX 64
#define PART_THREADS_MAX 4
#define PART_ATTEMPTS 3
#define LIST_PAGE "1000"

enum cond_mode { COND_UNKNOWN = 0, COND_IF_NONE_MATCH, COND_EMULATED };

typedef struct s3_state {
    s3_http_t *http;
    char *prefix; /* "" or "p/q" (no leading/trailing '/') */
    char *endpoint_desc, *bucket, *region, *storage_class;
    bool path_style;
    uint64_t threshold, part_size;
    unsigned connections;
    pthread_mutex_t cond_mu;
    enum cond_mode cond;
    char cond_detail[160];
} s3_state_t;

static const char *const s3_options[] = {"region",
                                         "endpoint",
                                         "path-style",
                                         "ca-file",
                                         "profile",
                                         "storage-class",
                                         "connections",
                                         "multipart-threshold",
                                         "part-size",
                                         "insecure-http",
                                         "scheme",
                                         "access-key-file",
                                         "secret-key-file",
                                         "session-token-file",
                                         "create-bucket",
                                         "timeout",
                                         NULL};

/* ---- configuration ---- */

static const char *env_nonempty(const char *n)
{
    const char *v = getenv(n);
    return v && v[0] ? v : NULL;
}

static int parse_bool(const char *key, const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) {
        *out = false;
        return 0;
    }
    return err_set(COFFER_EINVAL, "option %s must be true or false", key);
}

/* "16MiB", "5M", "1048576", "64KiB" -> bytes. */
static int parse_size(const char *key, const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || v[0] == '-')
        return err_set(COFFER_EINVAL, "option %s must be a size such as 16MiB", key);
    uint64_t mul = 1;
    if (!strcasecmp(end, "k") || !strcasecmp(end, "kib") || !strcasecmp(end, "kb"))
        mul = 1024;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib") || !strcasecmp(end, "mb"))
        mul = MIB;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib") || !strcasecmp(end, "gb"))
        mul = 1024 * MIB;
    else if (*end)
        return err_set(COFFER_EINVAL, "option %s must be a size such as 16MiB", key);
    if (n > UINT64_MAX / mul)
        return err_set(COFFER_EINVAL, "option %s is too large", key);
    *out = n * mul;
    return 0;
}

static bool is_loopback(const char *host)
{
    /* host may carry ":port" or be "[::1]:port" */
    if (!strncmp(host, "127.", 4) || !strncmp(host, "[::1]", 5))
        return true;
    size_t n = strcspn(host, ":");
    return n == 9 && !strncasecmp(host, "localhost", 9);
}

static bool is_ip_or_port(const char *host)
{
    if (host[0] == '[' || strchr(host, ':'))
        return true;
    for (const char *p = host; *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '.')
            return false;
    return true;
}

static bool valid_host(const char *h)
{
    if (!h[0] || strlen(h) > 255)
        return false;
    for (const char *p = h; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-:[]_", *p))
            return false;
    return true;
}

static bool valid_bucket(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return false;
    for (const char *p = b; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '.' && *p != '-' &&
            *p != '_')
            return false;
    return true;
}

static bool valid_prefix(const char *p)
{
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!isalnum(c) && !strchr("._-/", c))
            return false;
    }
    return true;
}

struct loc {
    char scheme[8];
    char host[260];
    char bucket[64];
    char prefix[900];
    bool host_given; /* s3://HOST/... form */
};

/* Parse the driver path (after "s3:"), the endpoint options and env. */
static int parse_location(const char *path, const storage_opts_t *opts, const char *region,
                          struct loc *l)
{
    const char *rest = path;
    const char *endpoint = NULL;
    char epbuf[300];
    memset(l, 0, sizeof *l);
    if (!strncmp(path, "//", 2)) {
        rest = path + 2;
        size_t hn = strcspn(rest, "/");
        if (hn == 0 || hn >= sizeof l->host || memchr(rest, '@', hn))
            return err_set(COFFER_EINVAL,
                           "S3 location 's3:%.200s' has no valid endpoint host: use "
                           "s3://HOST[:PORT]/BUCKET[/PREFIX] (credentials never go in the URL)",
                           memchr(rest, '@', hn) ? "//..." : path);
        memcpy(l->host, rest, hn);
        l->host[hn] = 0;
        rest += hn;
        if (*rest == '/')
            rest++;
        l->host_given = true;
        const char *sch = storage_opt(opts, "s3.scheme");
        if (sch && strcmp(sch, "http") && strcmp(sch, "https"))
            return err_set(COFFER_EINVAL, "option s3.scheme must be http or https");
        snprintf(l->scheme, sizeof l->scheme, "%s",
                 sch                    ? sch
                 : is_loopback(l->host) ? "http"
                                        : "https");
    } else {
        endpoint = storage_opt(opts, "s3.endpoint");
        if (!endpoint)
            endpoint = env_nonempty("AWS_ENDPOINT_URL_S3");
        if (!endpoint)
            endpoint = env_nonempty("AWS_ENDPOINT_URL");
        if (!endpoint) {
            snprintf(epbuf, sizeof epbuf, "https://s3.%s.amazonaws.com", region);
            endpoint = epbuf;
        }
        const char *sep = strstr(endpoint, "://");
        if (!sep || (strncmp(endpoint, "http://", 7) && strncmp(endpoint, "https://", 8)))
            return err_set(COFFER_EINVAL,
                           "S3 endpoint '%.200s' must start with http:// or https://", endpoint);
        snprintf(l->scheme, sizeof l->scheme, "%.*s", (int)(sep - endpoint), endpoint);
        const char *h = sep + 3;
        size_t hn = strcspn(h, "/");
        if (hn == 0 || hn >= sizeof l->host || memchr(h, '@', hn))
            return err_set(COFFER_EINVAL, "S3 endpoint has no valid host: use https://HOST[:PORT]");
        memcpy(l->host, h, hn);
        l->host[hn] = 0;
    }
    if (!valid_host(l->host))
        return err_set(COFFER_EINVAL, "S3 endpoint host '%.100s' is not a valid host[:port]",
                       l->host);
    size_t bn = strcspn(rest, "/");
    if (bn == 0 || bn >= sizeof l->bucket)
        return err_set(COFFER_EINVAL,
                       "S3 location has no bucket: use s3://HOST[:PORT]/BUCKET[/PREFIX] or "
                       "s3:BUCKET[/PREFIX]");
    memcpy(l->bucket, rest, bn);
    l->bucket[bn] = 0;
    if (!valid_bucket(l->bucket))
        return err_set(COFFER_EINVAL,
                       "S3 bucket name '%.64s' is not valid: 3 to 63 lowercase letters, digits, "
                       "'.', '-'",
                       l->bucket);
    rest += bn;
    while (*rest == '/')
        rest++;
    size_t pn = strlen(rest);
    while (pn && rest[pn - 1] == '/')
        pn--;
    if (pn >= sizeof l->prefix)
        return err_set(COFFER_EINVAL, "S3 prefix is longer than %zu bytes", sizeof l->prefix);
    memcpy(l->prefix, rest, pn);
    l->prefix[pn] = 0;
    if (!valid_prefix(l->prefix) || strstr(l->prefix, "//"))
        return err_set(COFFER_EINVAL,
                       "S3 prefix '%.100s' may hold only A-Z a-z 0-9 . _ - and single '/'",
                       l->prefix);
    return 0;
}

/* ---- helpers ---- */

#define KEY_MAX 1024 /* S3's limit on a whole key, prefix included */

static int full_key(const s3_state_t *s, const char *name, buf_t *out)
{
    size_t plen = s->prefix[0] ? strlen(s->prefix) + 1 : 0;
    if (plen + strlen(name) > KEY_MAX)
        return err_set(COFFER_EINVAL,
                       "object name %.60s... is too long for S3: with the prefix '%s' the key "
                       "would exceed %d bytes (use a shorter prefix)",
                       name, s->prefix, KEY_MAX);
    return s->prefix[0] ? buf_printf(out, "%s/%s", s->prefix, name) : buf_printf(out, "%s", name);
}

/* A request whose non-2xx answers become errors (transport errors too). */
static int call(s3_state_t *s, const s3_req_t *r, s3_resp_t *resp, const char *what,
                const char *name, bool *transient)
{
    int rc = s3_http_request(s->http, r, resp, transient);
    if (rc)
        return rc;
    if (resp->status >= 200 && resp->status < 300)
        return 0;
    return s3_http_status_error(s->http, resp, what, name, transient);
}

static int head_object(s3_state_t *s, const char *key, const char *name, s3_resp_t *resp,
                       bool *transient)
{
    s3_req_t r = {.method = "HEAD", .key = key};
    return call(s, &r, resp, "looking up", name, transient);
}

static void random_hex(char *out, size_t bytes)
{
    uint8_t b[16];
    if (bytes > sizeof b)
        bytes = sizeof b;
    if (getrandom(b, bytes, 0) != (ssize_t)bytes) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < bytes; i++)
            b[i] = (uint8_t)(ts.tv_nsec >> (i % 4 * 8)) ^ (uint8_t)i;
    }
    hex_encode(b, bytes, out);
}

/* ---- conditional-write probe ---- */

/* Decide how create-only puts are done: put a random probe key twice with If-None-Match. */
static int probe_cond(s3_state_t *s, bool *transient)
{
    char hex[33], name[64];
    buf_t key;
    s3_resp_t r1, r2, rd;
    int rc;
    random_hex(hex, 16);
    snprintf(name, sizeof name, "maint/cond-probe-%s", hex);
    buf_init(&key);
    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);
    memset(&rd, 0, sizeof rd);
    if ((rc = full_key(s, name, &key)))
        goto out;
    s3_kv_t inm = {"If-None-Match", "*"};
    s3_req_t put = {.method = "PUT",
                    .key = (const char *)key.data,
                    .headers = &inm,
                    .nheaders = 1,
                    .body = "probe",
                    .body_len = 5};
    if ((rc = s3_http_request(s->http, &put, &r1, transient)))
        goto out;
    if (r1.status == 501 || r1.status == 400) {
        s->cond = COND_EMULATED;
        snprintf(s->cond_detail, sizeof s->cond_detail,
                 "If-None-Match refused (HTTP %ld %s): emulated with HEAD then PUT", r1.status,
                 r1.code);
        goto out;
    }
    if (r1.status == 412) {
        /* a fresh random key cannot exist: an earlier copy of this request landed */
        rc = err_set(COFFER_EIO, "the conditional-write probe %s was answered 412 at once", name);
        *transient = true;
        goto cleanup;
    }
    if (r1.status < 200 || r1.status >= 300) {
        rc = s3_http_status_error(s->http, &r1, "writing", name, transient);
        goto out;
    }
    if ((rc = s3_http_request(s->http, &put, &r2, transient)))
        goto cleanup;
    if (r2.status == 412) {
        s->cond = COND_IF_NONE_MATCH;
        snprintf(s->cond_detail, sizeof s->cond_detail,
                 "If-None-Match: * honoured (412 on an existing key)");
    } else if (r2.status >= 200 && r2.status < 300) {
        s->cond = COND_EMULATED;
        snprintf(s->cond_detail, sizeof s->cond_detail,
                 "If-None-Match ignored (the server overwrote): emulated with HEAD then PUT");
    } else if (r2.status == 501 || r2.status == 400) {
        s->cond = COND_EMULATED;
        snprintf(s->cond_detail, sizeof s->cond_detail,
                 "If-None-Match refused (HTTP %ld %s): emulated with HEAD then PUT", r2.status,
                 r2.code);
    } else {
        rc = s3_http_status_error(s->http, &r2, "writing", name, transient);
    }
cleanup:;
    s3_req_t del = {.method = "DELETE", .key = (const char *)key.data};
    bool t2 = false;
    if (s3_http_request(s->http, &del, &rd, &t2) == 0 && rd.status >= 300)
        log_debug("s3: could not remove the probe object %s (HTTP %ld)", name, rd.status);
out:
    if (rc == 0 && s->cond != COND_UNKNOWN)
        log_debug("s3 %s: conditional writes: %s", s3_http_where(s->http), s->cond_detail);
    s3_resp_release(&r1);
    s3_resp_release(&r2);
    s3_resp_release(&rd);
    buf_release(&key);
    return rc;
}

static int cond_mode(s3_state_t *s, enum cond_mode *out, bool *transient)
{
    int rc = 0;
    pthread_mutex_lock(&s->cond_mu);
    if (s->cond == COND_UNKNOWN)
        rc = probe_cond(s, transient);
    if (rc == 0 && s->cond == COND_UNKNOWN)
        rc = err_set(COFFER_EIO, "could not tell whether the S3 server supports conditional "
                                 "writes");
    if (rc == 0)
        *out = s->cond;
    pthread_mutex_unlock(&s->cond_mu);
    return rc;
}

/* ---- multipart ---- */

struct mp {
    s3_state_t *s;
    const char *key, *name, *upload_id;
    const uint8_t *data;
    size_t len;
    uint64_t part_size;
    unsigned nparts;
    char (*etags)[128];
    atomic_uint next;
    atomic_int failed;
    pthread_mutex_t err_mu;
    int rc;
    bool transient;
    char err[1024];
};

static int put_part(struct mp *m, unsigned idx, bool *transient)
{
    char num[16];
    snprintf(num, sizeof num, "%u", idx + 1);
    uint64_t off = (uint64_t)idx * m->part_size;
    size_t n = (size_t)(off + m->part_size > m->len ? m->len - off : m->part_size);
    s3_kv_t q[] = {{"partNumber", num}, {"uploadId", m->upload_id}};
    s3_req_t r = {.method = "PUT",
                  .key = m->key,
                  .query = q,
                  .nquery = 2,
                  .body = m->data + off,
                  .body_len = n};
    s3_resp_t resp;
    int rc = call(m->s, &r, &resp, "writing a part of", m->name, transient);
    if (rc == 0 && !resp.etag[0])
        rc = err_set(COFFER_EIO, "S3 server sent no ETag for part %u of %s", idx + 1, m->name);
    if (rc == 0)
        snprintf(m->etags[idx], sizeof m->etags[idx], "%s", resp.etag);
    s3_resp_release(&resp);
    return rc;
}

static void *part_worker(void *arg)
{
    struct mp *m = arg;
    for (;;) {
        if (atomic_load(&m->failed))
            break;
        unsigned idx = atomic_fetch_add(&m->next, 1);
        if (idx >= m->nparts)
            break;
        int rc = 0;
        bool transient = false;
        for (unsigned a = 0; a < PART_ATTEMPTS; a++) {
            transient = false;
            rc = put_part(m, idx, &transient);
            if (rc == 0 || !transient)
                break;
            struct timespec ts = {.tv_nsec = 200000000L * (a + 1)};
            nanosleep(&ts, NULL);
        }
        if (rc) {
            pthread_mutex_lock(&m->err_mu);
            if (!m->rc) {
                m->rc = rc;
                m->transient = transient;
                snprintf(m->err, sizeof m->err, "%s", err_msg());
            }
            pthread_mutex_unlock(&m->err_mu);
            atomic_store(&m->failed, 1);
            break;
        }
    }
    return NULL;
}

static void mp_abort(s3_state_t *s, const char *key, const char *upload_id)
{
    s3_kv_t q = {"uploadId", upload_id};
    s3_req_t r = {.method = "DELETE", .key = key, .query = &q, .nquery = 1};
    s3_resp_t resp;
    int rc = 0;
    for (unsigned attempt = 0; attempt < PART_ATTEMPTS; attempt++) {
        bool t = false;
        if (attempt)
            s3_resp_release(&resp);
        rc = s3_http_request(s->http, &r, &resp, &t);
        /* 404 NoSuchUpload: an earlier copy of this abort already landed */
        if (rc == 0 && (resp.status < 300 || resp.status == 404))
            break;
        if (rc == 0 && resp.status < 500 && resp.status != 429)
            break;
    }
    if (rc != 0 || (resp.status >= 300 && resp.status != 404))
        log_warn("s3 %s: could not abort the multipart upload of %s (HTTP %ld): the server may "
                 "keep its parts until a lifecycle rule removes them",
                 s3_http_where(s->http), key, resp.status);
    s3_resp_release(&resp);
}

static int put_multipart(s3_state_t *s, const char *key, const char *name, const uint8_t *data,
                         size_t len, const s3_kv_t *hdrs, size_t nh, bool *transient)
{
    buf_t body, xml;
    s3_resp_t resp;
    char upload_id[512] = "";
    struct mp m = {.s = s, .key = key, .name = name, .data = data, .len = len};
    pthread_t th[PART_THREADS_MAX];
    unsigned nth = 0;
    int rc;

    buf_init(&body);
    buf_init(&xml);
    memset(&resp, 0, sizeof resp);
    m.part_size = s->part_size;
    while ((len + m.part_size - 1) / m.part_size > PARTS_MAX)
        m.part_size *= 2;
    m.nparts = (unsigned)((len + m.part_size - 1) / m.part_size);
    m.etags = calloc(m.nparts, sizeof *m.etags);
    pthread_mutex_init(&m.err_mu, NULL);
    if (!m.etags) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    s3_kv_t q = {"uploads", ""};
    s3_req_t init = {.method = "POST",
                     .key = key,
                     .query = &q,
                     .nquery = 1,
                     .headers = hdrs,
                     .nheaders = nh,
                     .out = &xml,
                     .out_max = 1 << 20};
    if ((rc = call(s, &init, &resp, "starting a multipart upload of", name, transient)))
        goto out;
    s3_xml_node_t *root = NULL;
    if ((rc = s3_xml_parse((const char *)xml.data, xml.len, &root)))
        goto out;
    const char *id = s3_xml_child_text(root, "UploadId");
    if (id && id[0] && strlen(id) < sizeof upload_id)
        snprintf(upload_id, sizeof upload_id, "%s", id);
    s3_xml_free(root);
    if (!upload_id[0]) {
        rc = err_set(COFFER_EIO,
                     "S3 server started a multipart upload of %s without an "
                     "UploadId",
                     name);
        goto out;
    }
    m.upload_id = upload_id;
    unsigned want = s->connections < PART_THREADS_MAX ? s->connections : PART_THREADS_MAX;
    if (want > m.nparts)
        want = m.nparts;
    for (; nth < want; nth++)
        if (pthread_create(&th[nth], NULL, part_worker, &m) != 0)
            break;
    if (nth == 0)
        part_worker(&m);
    for (unsigned i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    if (m.rc) {
        rc = err_set(m.rc, "%s", m.err);
        *transient = m.transient;
        goto abort;
    }
    if ((rc = buf_append_str(&body, "<CompleteMultipartUpload>")))
        goto abort;
    for (unsigned i = 0; i < m.nparts && rc == 0; i++)
        rc = buf_printf(&body, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", i + 1,
                        m.etags[i]);
    if (rc || (rc = buf_append_str(&body, "</CompleteMultipartUpload>")))
        goto abort;
    s3_kv_t cq = {"uploadId", upload_id};
    buf_reset(&xml);
    s3_resp_release(&resp);
    s3_req_t done = {.method = "POST",
                     .key = key,
                     .query = &cq,
                     .nquery = 1,
                     .body = body.data,
                     .body_len = body.len,
                     .out = &xml,
                     .out_max = 1 << 20};
    if ((rc = call(s, &done, &resp, "completing the multipart upload of", name, transient)))
        goto abort;
    /* A 200 answer may still carry an <Error> document (S3 sends it while it works). */
    root = NULL;
    if (xml.len && s3_xml_parse((const char *)xml.data, xml.len, &root) == 0 &&
        strcmp(root->name, "Error") == 0) {
        const char *code = s3_xml_child_text(root, "Code");
        rc = err_set(COFFER_EIO, "S3 server failed to complete the multipart upload of %s (%s)",
                     name, code ? code : "no code");
        *transient = true;
        s3_xml_free(root);
        goto abort;
    }
    s3_xml_free(root);
    err_clear();
    goto out;
abort:;
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", err_msg());
    mp_abort(s, key, upload_id);
    err_set(rc, "%s", saved);
out:
    pthread_mutex_destroy(&m.err_mu);
    free(m.etags);
    s3_resp_release(&resp);
    buf_release(&body);
    buf_release(&xml);
    return rc;
}

/* ---- driver ops ---- */

static void s3_close(void *state)
{
    s3_state_t *s = state;
    if (!s)
        return;
    s3_http_free(s->http);
    free(s->prefix);
    free(s->endpoint_desc);
    free(s->bucket);
    free(s->region);
    free(s->storage_class);
    pthread_mutex_destroy(&s->cond_mu);
    free(s);
}

static int create_bucket(s3_state_t *s, bool *transient)
{
    buf_t body;
    s3_resp_t resp;
    buf_init(&body);
    int rc = 0;
    if (strcmp(s->region, "us-east-1") != 0)
        rc = buf_printf(&body,
                        "<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint>"
                        "</CreateBucketConfiguration>",
                        s->region);
    s3_req_t r = {.method = "PUT", .body = body.data, .body_len = body.len};
    if (rc == 0)
        rc = call(s, &r, &resp, "creating bucket", s->bucket, transient);
    if (rc == 0 || !strcmp(resp.code, "BucketAlreadyOwnedByYou")) {
        rc = 0;
        err_clear();
    }
    s3_resp_release(&resp);
    buf_release(&body);
    return rc;
}

static int s3_open(const char *path, bool create, const storage_opts_t *opts, void **out_state)
{
    s3_state_t *s = calloc(1, sizeof *s);
    s3_creds_t creds = {0};
    struct loc l;
    int rc = 0;
    bool insecure = false, create_b = false, transient = false;
    const char *v;

    if (!s)
        return err_set(COFFER_ENOMEM, "out of memory");
    pthread_mutex_init(&s->cond_mu, NULL);
    const char *region = storage_opt(opts, "s3.region");
    if (!region)
        region = env_nonempty("AWS_REGION");
    if (!region)
        region = env_nonempty("AWS_DEFAULT_REGION");
    if (!region)
        region = "us-east-1";
    for (const char *p = region; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-')
            return s3_close(s), err_set(COFFER_EINVAL, "S3 region '%.40s' is not valid", region);
    s->threshold = THRESHOLD_DEFAULT;
    s->part_size = PART_SIZE_DEFAULT;
    s->connections = CONNECTIONS_DEFAULT;
    unsigned timeout_s = 60;
    if ((rc = parse_location(path, opts, region, &l)))
        goto fail;
    if ((v = storage_opt(opts, "s3.insecure-http")) &&
        (rc = parse_bool("s3.insecure-http", v, &insecure)))
        goto fail;
    if ((v = storage_opt(opts, "s3.create-bucket")) &&
        (rc = parse_bool("s3.create-bucket", v, &create_b)))
        goto fail;
    if (!strcmp(l.scheme, "http") && !is_loopback(l.host) && !insecure) {
        rc = err_set(COFFER_EINVAL,
                     "refusing plain http to the S3 endpoint %s (not a loopback address): use "
                     "https, or -o s3.insecure-http=true if the network is trusted",
                     l.host);
        goto fail;
    }
    s->path_style = l.host_given || is_ip_or_port(l.host) || strchr(l.bucket, '.') ||
                    !strstr(l.host, "amazonaws.com");
    if ((v = storage_opt(opts, "s3.path-style"))) {
        if (!strcmp(v, "auto"))
            ;
        else if ((rc = parse_bool("s3.path-style", v, &s->path_style)))
            goto fail;
    }
    if ((v = storage_opt(opts, "s3.multipart-threshold")) &&
        (rc = parse_size("s3.multipart-threshold", v, &s->threshold)))
        goto fail;
    if ((v = storage_opt(opts, "s3.part-size")) &&
        (rc = parse_size("s3.part-size", v, &s->part_size)))
        goto fail;
    if (s->part_size < PART_MIN || s->part_size > PART_MAX) {
        rc = err_set(COFFER_EINVAL, "option s3.part-size must be between 5MiB and 5GiB");
        goto fail;
    }
    if (s->threshold < PART_MIN) {
        rc = err_set(COFFER_EINVAL, "option s3.multipart-threshold must be at least 5MiB");
        goto fail;
    }
    if ((v = storage_opt(opts, "s3.connections"))) {
        char *end;
        unsigned long n = strtoul(v, &end, 10);
        if (*end || end == v || n < 1 || n > CONNECTIONS_MAX) {
            rc = err_set(COFFER_EINVAL, "option s3.connections must be 1 to %d", CONNECTIONS_MAX);
            goto fail;
        }
        s->connections = (unsigned)n;
    }
    if ((v = storage_opt(opts, "s3.timeout"))) {
        char *end;
        unsigned long n = strtoul(v, &end, 10);
        if (*end || end == v || n < 1 || n > 3600) {
            rc = err_set(COFFER_EINVAL, "option s3.timeout must be 1 to 3600 seconds");
            goto fail;
        }
        timeout_s = (unsigned)n;
    }
    if ((v = storage_opt(opts, "s3.storage-class"))) {
        for (const char *p = v; *p; p++)
            if (!isupper((unsigned char)*p) && *p != '_' && !isdigit((unsigned char)*p)) {
                rc = err_set(COFFER_EINVAL, "option s3.storage-class must be a name such as "
                                            "STANDARD_IA");
                goto fail;
            }
        if (!(s->storage_class = strdup(v))) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            goto fail;
        }
    }
    const char *ca = storage_opt(opts, "s3.ca-file");
    if (!ca)
        ca = env_nonempty("AWS_CA_BUNDLE");
    if ((rc = s3_creds_load(opts, &creds)))
        goto fail;
    s->prefix = strdup(l.prefix);
    s->bucket = strdup(l.bucket);
    s->region = strdup(region);
    if (!s->prefix || !s->bucket || !s->region) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto fail;
    }
    s3_http_cfg_t cfg = {.scheme = l.scheme,
                         .host = l.host,
                         .bucket = l.bucket,
                         .path_style = s->path_style,
                         .region = region,
                         .ca_file = ca,
                         .connections = s->connections,
                         .timeout_s = timeout_s};
    if ((rc = s3_http_new(&cfg, &creds, &s->http)))
        goto fail;
    /* Check the bucket and the credentials now, so a bad location fails before any write. */
    for (unsigned attempt = 0;; attempt++) {
        s3_req_t hb = {.method = "HEAD"};
        s3_resp_t resp;
        transient = false;
        rc = call(s, &hb, &resp, "opening bucket", "", &transient);
        if (rc == COFFER_EIO && resp.status == 403 && !resp.code[0]) {
            /* HEAD answers carry no body: ask again with a GET to learn why. */
            s3_kv_t q[] = {{"list-type", "2"}, {"max-keys", "1"}};
            s3_req_t lb = {.method = "GET", .query = q, .nquery = 2};
            s3_resp_release(&resp);
            rc = call(s, &lb, &resp, "opening bucket", "", &transient);
        }
        if (rc == COFFER_ENOREPO && create && create_b) {
            s3_resp_release(&resp);
            rc = create_bucket(s, &transient);
            if (rc == 0)
                continue;
        }
        s3_resp_release(&resp);
        if (rc == 0 || !transient || attempt >= 3)
            break;
        struct timespec ts = {.tv_nsec = 300000000L};
        nanosleep(&ts, NULL);
    }
    if (rc)
        goto fail;
    *out_state = s;
    return 0;
fail:
    s3_creds_release(&creds);
    s3_close(s);
    return rc;
}

static int s3_put(void *state, const char *name, const void *data, size_t len,
                  const storage_put_opts_t *opts, bool *transient)
{
    s3_state_t *s = state;
    buf_t key;
    s3_resp_t resp;
    s3_kv_t h[2];
    size_t nh = 0;
    enum cond_mode mode = COND_EMULATED;
    bool create_only = !(opts && opts->overwrite);
    bool multipart = len >= s->threshold;
    int rc;

    buf_init(&key);
    memset(&resp, 0, sizeof resp);
    if ((rc = full_key(s, name, &key)))
        goto out;
    if (s->storage_class && !strncmp(name, "data/", 5))
        h[nh++] = (s3_kv_t){"x-amz-storage-class", s->storage_class};
    if (create_only && !multipart && (rc = cond_mode(s, &mode, transient)))
        goto out;
    if (create_only && (multipart || mode == COND_EMULATED)) {
        rc = head_object(s, (const char *)key.data, name, &resp, transient);
        s3_resp_release(&resp);
        if (rc == 0) {
            rc = err_set(COFFER_EEXIST, "object %s already exists at %s", name,
                         s3_http_where(s->http));
            goto out;
        }
        if (rc != COFFER_ENOENT)
            goto out;
        err_clear();
    } else if (create_only) {
        h[nh++] = (s3_kv_t){"If-None-Match", "*"};
    }
    if (multipart) {
        rc = put_multipart(s, (const char *)key.data, name, data, len, h, nh, transient);
        goto out;
    }
    s3_req_t r = {.method = "PUT",
                  .key = (const char *)key.data,
                  .headers = h,
                  .nheaders = nh,
                  .body = data,
                  .body_len = len};
    rc = call(s, &r, &resp, "writing", name, transient);
    /* 409 ConditionalRequestConflict: a concurrent conditional write; retry decides. */
    if (rc && resp.status == 409)
        *transient = true;
out:
    s3_resp_release(&resp);
    buf_release(&key);
    return rc;
}

static int s3_get(void *state, const char *name, uint64_t off, uint64_t len, buf_t *out,
                  bool *transient)
{
    s3_state_t *s = state;
    buf_t key;
    s3_resp_t resp;
    char range[64];
    s3_kv_t h;
    size_t keep = out->len;
    int rc;

    buf_init(&key);
    memset(&resp, 0, sizeof resp);
    if ((rc = full_key(s, name, &key)))
        goto out;
    if (len && off > UINT64_MAX - len) {
        rc = err_set(COFFER_EINVAL, "read of %s at offset %llu is out of range", name,
                     (unsigned long long)off);
        goto out;
    }
    if (len)
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)off,
                 (unsigned long long)(off + len - 1));
    else
        snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)off);
    h = (s3_kv_t){"Range", range};
    bool ranged = off || len;
    s3_req_t r = {.method = "GET",
                  .key = (const char *)key.data,
                  .headers = &h,
                  .nheaders = ranged ? 1 : 0,
                  .out = out,
                  .out_max = 0 /* BUF_MAX: a server may ignore Range and send it all */};
    rc = s3_http_request(s->http, &r, &resp, transient);
    if (rc)
        goto out;
    if (resp.status == 416) {
        /* Range past the end: at the end is an empty read, beyond it an error. */
        s3_resp_t hr;
        rc = head_object(s, (const char *)key.data, name, &hr, transient);
        uint64_t size = hr.content_length;
        s3_resp_release(&hr);
        if (rc)
            goto out;
        if (off == size)
            goto out;
        rc = err_set(COFFER_EINVAL, "read of %s at offset %llu is past its end (%llu bytes)", name,
                     (unsigned long long)off, (unsigned long long)size);
        goto out;
    }
    if (resp.status < 200 || resp.status >= 300) {
        rc = s3_http_status_error(s->http, &resp, "reading", name, transient);
        goto out;
    }
    size_t got = out->len - keep;
    if (resp.has_length && resp.content_length != got) {
        rc = err_set(COFFER_EIO, "S3 answer for %s was cut short (%zu of %llu bytes)", name, got,
                     (unsigned long long)resp.content_length);
        *transient = true;
        goto out;
    }
    if (ranged && resp.status == 200) {
        /* The server ignored Range: cut the requested window out of the whole object. */
        if (off > got) {
            rc = err_set(COFFER_EINVAL, "read of %s at offset %llu is past its end", name,
                         (unsigned long long)off);
            goto out;
        }
        size_t take = (size_t)(len && len < got - off ? len : got - off);
        memmove(out->data + keep, out->data + keep + off, take);
        out->len = keep + take;
        out->data[out->len] = 0;
    }
out:
    if (rc) {
        out->len = keep;
        if (out->data)
            out->data[keep] = 0;
    }
    s3_resp_release(&resp);
    buf_release(&key);
    return rc;
}

static int s3_stat(void *state, const char *name, storage_stat_t *out, bool *transient)
{
    s3_state_t *s = state;
    buf_t key;
    s3_resp_t resp;
    buf_init(&key);
    memset(&resp, 0, sizeof resp);
    int rc = full_key(s, name, &key);
    if (rc == 0)
        rc = head_object(s, (const char *)key.data, name, &resp, transient);
    if (rc == 0) {
        out->size = resp.content_length;
        out->mtime_ns = resp.last_modified_ns ? resp.last_modified_ns : resp.date_ns;
    }
    s3_resp_release(&resp);
    buf_release(&key);
    return rc;
}

static int s3_list(void *state, const char *prefix, storage_list_cb cb, void *ud, bool *transient)
{
    s3_state_t *s = state;
    buf_t full, xml;
    char *token = NULL;
    size_t strip = s->prefix[0] ? strlen(s->prefix) + 1 : 0;
    int rc;

    buf_init(&full);
    buf_init(&xml);
    if ((rc = s->prefix[0] ? buf_printf(&full, "%s/%s", s->prefix, prefix)
                           : buf_printf(&full, "%s", prefix)))
        goto out;
    for (;;) {
        s3_kv_t q[4] = {
            {"list-type", "2"}, {"max-keys", LIST_PAGE}, {"prefix", (const char *)full.data}};
        size_t nq = 3;
        if (token)
            q[nq++] = (s3_kv_t){"continuation-token", token};
        s3_req_t r = {
            .method = "GET", .query = q, .nquery = nq, .out = &xml, .out_max = S3_XML_MAX_INPUT};
        s3_resp_t resp;
        buf_reset(&xml);
        rc = call(s, &r, &resp, "listing", prefix, transient);
        s3_resp_release(&resp);
        if (rc)
            goto out;
        s3_xml_node_t *root = NULL;
        if ((rc = s3_xml_parse((const char *)xml.data, xml.len, &root)))
            goto out;
        for (const s3_xml_node_t *c = root->child; c && rc == 0; c = c->next) {
            if (strcmp(c->name, "Contents") != 0)
                continue;
            const char *k = s3_xml_child_text(c, "Key");
            const char *sz = s3_xml_child_text(c, "Size");
            if (!k || strlen(k) <= strip ||
                strncmp(k, full.data ? (const char *)full.data : "", full.len) != 0)
                continue;
            storage_stat_t st = {0};
            st.size = sz ? strtoull(sz, NULL, 10) : 0;
            st.mtime_ns = s3_http_parse_time(s3_xml_child_text(c, "LastModified"));
            rc = cb(ud, k + strip, &st);
        }
        const char *trunc = s3_xml_child_text(root, "IsTruncated");
        const char *next = s3_xml_child_text(root, "NextContinuationToken");
        bool more = rc == 0 && trunc && !strcmp(trunc, "true");
        free(token);
        token = NULL;
        if (more) {
            if (!next || !next[0]) {
                rc = err_set(COFFER_EIO,
                             "S3 server at %s sent a truncated listing without a "
                             "continuation token",
                             s3_http_where(s->http));
            } else if (!(token = strdup(next))) {
                rc = err_set(COFFER_ENOMEM, "out of memory");
            }
        }
        s3_xml_free(root);
        if (rc || !more)
            break;
    }
out:
    free(token);
    buf_release(&full);
    buf_release(&xml);
    return rc;
}

static int s3_remove(void *state, const char *name, bool *transient)
{
    s3_state_t *s = state;
    buf_t key;
    s3_resp_t resp;
    buf_init(&key);
    memset(&resp, 0, sizeof resp);
    int rc = full_key(s, name, &key);
    if (rc == 0)
        rc = head_object(s, (const char *)key.data, name, &resp, transient);
    s3_resp_release(&resp);
    if (rc == 0) {
        s3_req_t r = {.method = "DELETE", .key = (const char *)key.data};
        rc = call(s, &r, &resp, "removing", name, transient);
        s3_resp_release(&resp);
    }
    buf_release(&key);
    return rc;
}

static int s3_now(void *state, int64_t *out_ns)
{
    s3_state_t *s = state;
    s3_resp_t resp;
    bool transient = false;
    int rc = 0;
    for (unsigned attempt = 0; attempt < 4; attempt++) {
        s3_req_t r = {.method = "HEAD"};
        transient = false;
        rc = call(s, &r, &resp, "reading the clock of bucket", "", &transient);
        int64_t t = resp.date_ns;
        s3_resp_release(&resp);
        if (rc == 0 && !t)
            rc = err_set(COFFER_EIO, "S3 server at %s sent no Date header", s3_http_where(s->http));
        if (rc == 0) {
            *out_ns = t;
            return 0;
        }
        if (!transient)
            break;
        struct timespec ts = {.tv_nsec = 200000000L * (attempt + 1)};
        nanosleep(&ts, NULL);
    }
    return rc;
}

static int s3_describe(void *state, json_t *out)
{
    s3_state_t *s = state;
    bool transient = false;
    enum cond_mode mode;
    int rc = cond_mode(s, &mode, &transient);
    if (rc)
        return rc;
    json_object_set_new(out, "driver", json_string("s3"));
    json_object_set_new(out, "endpoint", json_string(s3_http_where(s->http)));
    json_object_set_new(out, "bucket", json_string(s->bucket));
    json_object_set_new(out, "prefix", json_string(s->prefix));
    json_object_set_new(out, "region", json_string(s->region));
    json_object_set_new(out, "addressing",
                        json_string(s->path_style ? "path-style" : "virtual-host"));
    json_object_set_new(out, "conditional_writes",
                        json_string(mode == COND_IF_NONE_MATCH ? "if-none-match" : "emulated"));
    json_object_set_new(out, "conditional_writes_detail", json_string(s->cond_detail));
    json_object_set_new(out, "multipart_threshold", json_integer((json_int_t)s->threshold));
    json_object_set_new(out, "part_size", json_integer((json_int_t)s->part_size));
    json_object_set_new(out, "connections", json_integer(s->connections));
    if (s->storage_class)
        json_object_set_new(out, "storage_class", json_string(s->storage_class));
    return 0;
}

const storage_driver_t storage_s3_driver = {
    .version = STORAGE_DRIVER_VERSION,
    .name = "s3",
    .features = STORAGE_F_RANGE,
    .options = s3_options,
    .open = s3_open,
    .close = s3_close,
    .put = s3_put,
    .get = s3_get,
    .stat = s3_stat,
    .list = s3_list,
    .remove = s3_remove,
    .now = s3_now,
    .describe = s3_describe,
};
