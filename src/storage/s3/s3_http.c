/*
 * s3_http.c -- signed S3 requests over libcurl, and S3 answers mapped to coffer errors.
 *
 * Layer: storage/s3. Invariants:
 * - Every request is signed by sigv4.c over exactly the path and query string put in the URL
 *   and the Host header sent (set explicitly, so curl cannot differ from what was signed).
 * - The payload hash is the real SHA-256 of the body (radosgw verifies it); no aws-chunked
 *   encoding, no Content-MD5, no x-amz-checksum-* headers, no "Expect: 100-continue".
 * - Bodies of 2xx answers go to the caller's buffer (capped); others to resp->err_body
 *   (capped at ERR_BODY_MAX), where the XML <Code> is read from.
 * - Easy handles come from a pool guarded by mu/cv; a handle is used by one thread at a time
 *   and keeps its connection cache across curl_easy_reset.
 */
#include "storage/s3/s3_http.h"

#include "common/error.h"
#include "common/log.h"
#include "storage/s3/s3_xml.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ERR_BODY_MAX (64u << 10)
#define RETRY_AFTER_MAX_S 30
#define MAX_EXTRA_HEADERS 16

struct s3_http {
    char *scheme, *host, *bucket, *region, *ca_file;
    bool path_style;
    unsigned timeout_s;
    s3_creds_t creds;
    char where[512];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    CURL **free_h; /* idle handles */
    size_t nfree;
    unsigned created, max;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int s3_http_new(const s3_http_cfg_t *cfg, s3_creds_t *creds, s3_http_t **out)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return err_set(COFFER_EIO, "libcurl failed to initialize: %s",
                       curl_easy_strerror(curl_init_rc));
    s3_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return err_set(COFFER_ENOMEM, "out of memory");
    h->max = cfg->connections ? cfg->connections : 1;
    h->free_h = calloc(h->max, sizeof *h->free_h);
    h->scheme = strdup(cfg->scheme);
    h->host = strdup(cfg->host);
    h->bucket = strdup(cfg->bucket);
    h->region = strdup(cfg->region);
    h->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
    if (!h->free_h || !h->scheme || !h->host || !h->bucket || !h->region ||
        (cfg->ca_file && !h->ca_file)) {
        s3_http_free(h);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    h->path_style = cfg->path_style;
    h->timeout_s = cfg->timeout_s ? cfg->timeout_s : 60;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (h->path_style)
        snprintf(h->where, sizeof h->where, "%s://%s/%s", h->scheme, h->host, h->bucket);
    else
        snprintf(h->where, sizeof h->where, "%s://%s.%s", h->scheme, h->bucket, h->host);
    h->creds = *creds;
    memset(creds, 0, sizeof *creds);
    *out = h;
    return 0;
}

void s3_http_free(s3_http_t *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nfree; i++)
        curl_easy_cleanup(h->free_h[i]);
    if (h->free_h) {
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
    }
    free(h->free_h);
    free(h->scheme);
    free(h->host);
    free(h->bucket);
    free(h->region);
    free(h->ca_file);
    s3_creds_release(&h->creds);
    free(h);
}

const char *s3_http_where(const s3_http_t *h)
{
    return h->where;
}

static CURL *handle_get(s3_http_t *h)
{
    CURL *c = NULL;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        if (h->nfree) {
            c = h->free_h[--h->nfree];
            break;
        }
        if (h->created < h->max) {
            h->created++;
            break;
        }
        pthread_cond_wait(&h->cv, &h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    if (!c) {
        c = curl_easy_init();
        if (!c) {
            pthread_mutex_lock(&h->mu);
            h->created--;
            pthread_cond_signal(&h->cv);
            pthread_mutex_unlock(&h->mu);
        }
    }
    return c;
}

static void handle_put(s3_http_t *h, CURL *c)
{
    curl_easy_reset(c); /* keeps the connection cache */
    pthread_mutex_lock(&h->mu);
    h->free_h[h->nfree++] = c;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

void s3_resp_release(s3_resp_t *r)
{
    if (r)
        buf_release(&r->err_body);
}

static int month_of(const char *m)
{
    static const char *const names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strncasecmp(m, names[i], 3) == 0)
            return i;
    return -1;
}

int64_t s3_http_parse_time(const char *s)
{
    struct tm tm = {0};
    int y, mo, d, hh, mm, ss;
    char mon[4] = {0};
    long frac_ns = 0;
    if (!s)
        return 0;
    while (*s == ' ')
        s++;
    if (sscanf(s, "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &hh, &mm, &ss) == 6) {
        mo -= 1;
        const char *dot = strchr(s, '.');
        if (dot) {
            long scale = 100000000;
            for (const char *p = dot + 1; isdigit((unsigned char)*p) && scale; p++) {
                frac_ns += (*p - '0') * scale;
                scale /= 10;
            }
        }
    } else {
        const char *comma = strchr(s, ',');
        if (!comma || sscanf(comma + 1, "%d %3s %d %d:%d:%d", &d, mon, &y, &hh, &mm, &ss) != 6)
            return 0;
        if ((mo = month_of(mon)) < 0)
            return 0;
    }
    if (y < 1970 || y > 9999 || mo < 0 || mo > 11 || d < 1 || d > 31 || hh > 23 || mm > 59 ||
        ss > 60)
        return 0;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return 0;
    return (int64_t)t * 1000000000 + frac_ns;
}

struct xfer {
    CURL *c;
    const s3_req_t *req;
    s3_resp_t *resp;
    size_t body_off; /* request body read cursor */
    bool overflow;   /* 2xx body over its cap */
};

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t want = size * nmemb, left = x->req->body_len - x->body_off;
    size_t n = want < left ? want : left;
    if (n)
        memcpy(dst, (const char *)x->req->body + x->body_off, n);
    x->body_off += n;
    return n;
}

/* No seek callback on purpose: without one libcurl cannot silently resend a request body
 * when a reused connection dies before the answer (CURLE_SEND_FAIL_REWIND instead). A silent
 * resend of a create-only PUT whose first copy landed would turn into a false 412; surfaced
 * as a transient error, storage.c's retry compares the stored object with the data. */

static size_t write_cb(char *src, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        if (!x->req->out)
            return n;
        size_t cap = x->req->out_max ? x->req->out_max : BUF_MAX;
        if (x->req->out->len + n > cap || buf_append(x->req->out, src, n) != 0) {
            x->overflow = true;
            return 0; /* aborts the transfer */
        }
        return n;
    }
    buf_t *e = &x->resp->err_body;
    if (e->len < ERR_BODY_MAX) {
        size_t take = ERR_BODY_MAX - e->len < n ? ERR_BODY_MAX - e->len : n;
        (void)buf_append(e, src, take);
    }
    return n;
}

/* "Name: value\r\n" -> value (trimmed) if the name matches, else NULL. */
static const char *header_value(const char *line, size_t len, const char *name, char *val,
                                size_t vmax)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return NULL;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= vmax)
        vl = vmax - 1;
    memcpy(val, v, vl);
    val[vl] = 0;
    return val;
}

static size_t header_cb(char *line, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    s3_resp_t *r = x->resp;
    char v[256];
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (e.g. after 100 Continue): forget earlier headers */
        r->has_length = r->has_range_total = false;
        r->etag[0] = 0;
        return n;
    }
    if (header_value(line, n, "date", v, sizeof v))
        r->date_ns = s3_http_parse_time(v);
    else if (header_value(line, n, "last-modified", v, sizeof v))
        r->last_modified_ns = s3_http_parse_time(v);
    else if (header_value(line, n, "content-length", v, sizeof v)) {
        char *end;
        unsigned long long cl = strtoull(v, &end, 10);
        r->has_length = end != v && *end == 0;
        r->content_length = cl;
    } else if (header_value(line, n, "content-range", v, sizeof v)) {
        const char *slash = strchr(v, '/');
        if (slash && slash[1] != '*') {
            char *end;
            unsigned long long t = strtoull(slash + 1, &end, 10);
            r->has_range_total = end != slash + 1 && *end == 0;
            r->range_total = t;
        }
    } else if (header_value(line, n, "etag", v, sizeof v)) {
        snprintf(r->etag, sizeof r->etag, "%s", v);
    } else if (header_value(line, n, "retry-after", v, sizeof v)) {
        unsigned long s = strtoul(v, NULL, 10);
        r->retry_after_s = s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : (unsigned)s;
    }
    return n;
}

static void amz_now(char out[17])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* Build path ("/bucket/key" or "/key"), Host value and the URL. */
static int build_target(const s3_http_t *h, const s3_req_t *r, buf_t *path, buf_t *host, buf_t *url)
{
    int rc;
    const char *key = r->key ? r->key : "";
    if (h->path_style) {
        rc = buf_printf(host, "%s", h->host);
        if (!rc)
            rc = key[0] ? buf_printf(path, "/%s/%s", h->bucket, key)
                        : buf_printf(path, "/%s", h->bucket);
    } else {
        rc = buf_printf(host, "%s.%s", h->bucket, h->host);
        if (!rc)
            rc = buf_printf(path, "/%s", key);
    }
    if (rc || (rc = buf_printf(url, "%s://%s", h->scheme, (const char *)host->data)) ||
        (rc = sigv4_uri_encode(url, (const char *)path->data, path->len, true)))
        return rc;
    if (r->nquery) {
        if ((rc = buf_append(url, "?", 1)) || (rc = sigv4_query(url, r->query, r->nquery)))
            return rc;
    }
    return 0;
}

static int transport_error(const s3_http_t *h, CURLcode cc, const char *ebuf, const char *what,
                           const char *name, bool *transient)
{
    const char *detail = ebuf[0] ? ebuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        *transient = true;
        return err_set(COFFER_EIO,
                       "cannot resolve the S3 endpoint %s (%s): check the host name in the "
                       "repository URL or AWS_ENDPOINT_URL",
                       h->where, detail);
    case CURLE_COULDNT_CONNECT:
        *transient = true;
        return err_set(COFFER_EIO,
                       "cannot connect to the S3 endpoint %s (%s): check the host and port and "
                       "that the server is running",
                       h->where, detail);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ISSUER_ERROR:
        return err_set(COFFER_EIO,
                       "TLS with the S3 endpoint %s failed (%s): if the server uses a private "
                       "CA, give its certificate with -o s3.ca-file=PATH or AWS_CA_BUNDLE",
                       h->where, detail);
    case CURLE_OPERATION_TIMEDOUT:
        *transient = true;
        return err_set(COFFER_EIO, "S3 request %s %s timed out at %s (%s)", what, name, h->where,
                       detail);
    default:
        /* resets, truncated bodies, empty replies, send/receive failures */
        *transient = cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR || cc == CURLE_PARTIAL_FILE ||
                     cc == CURLE_GOT_NOTHING || cc == CURLE_HTTP2 || cc == CURLE_HTTP2_STREAM ||
                     cc == CURLE_WEIRD_SERVER_REPLY || cc == CURLE_BAD_CONTENT_ENCODING ||
                     cc == CURLE_READ_ERROR || cc == CURLE_SEND_FAIL_REWIND;
        return err_set(COFFER_EIO, "S3 request %s %s at %s failed: %s", what, name, h->where,
                       detail);
    }
}

int s3_http_request(s3_http_t *h, const s3_req_t *r, s3_resp_t *resp, bool *transient)
{
    buf_t path, host, url, auth, hl;
    struct curl_slist *hdrs = NULL;
    char amz[17], payload[65], ebuf[CURL_ERROR_SIZE] = {0};
    s3_kv_t sh[MAX_EXTRA_HEADERS + 4];
    size_t nsh = 0;
    int rc = 0;
    CURL *c = NULL;

    memset(resp, 0, sizeof *resp);
    buf_init(&resp->err_body);
    buf_init(&path);
    buf_init(&host);
    buf_init(&url);
    buf_init(&auth);
    buf_init(&hl);
    if (r->nheaders > MAX_EXTRA_HEADERS) {
        rc = err_set(COFFER_ELIMIT, "too many headers for one S3 request");
        goto out;
    }
    if ((rc = build_target(h, r, &path, &host, &url)))
        goto out;
    amz_now(amz);
    sigv4_sha256_hex(r->body ? r->body : "", r->body_len, payload);
    sh[nsh++] = (s3_kv_t){"host", (const char *)host.data};
    sh[nsh++] = (s3_kv_t){"x-amz-content-sha256", payload};
    sh[nsh++] = (s3_kv_t){"x-amz-date", amz};
    if (h->creds.session_token)
        sh[nsh++] = (s3_kv_t){"x-amz-security-token", h->creds.session_token};
    for (size_t i = 0; i < r->nheaders; i++)
        sh[nsh++] = r->headers[i];
    sigv4_req_t sr = {.method = r->method,
                      .path = (const char *)path.data,
                      .query = r->query,
                      .nquery = r->nquery,
                      .headers = sh,
                      .nheaders = nsh,
                      .payload_hash = payload,
                      .amz_date = amz,
                      .region = h->region,
                      .service = "s3",
                      .access_key = h->creds.access_key,
                      .secret_key = h->creds.secret_key};
    if ((rc = buf_append_str(&auth, "Authorization: ")) || (rc = sigv4_authorization(&sr, &auth)))
        goto out;
    for (size_t i = 0; i < nsh; i++) {
        buf_reset(&hl);
        if ((rc = buf_printf(&hl, "%s: %s", sh[i].key, sh[i].value)))
            goto out;
        struct curl_slist *n = curl_slist_append(hdrs, (const char *)hl.data);
        if (!n) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            goto out;
        }
        hdrs = n;
    }
    static const char *const fixed[] = {"Expect:", "Content-Type:", "Transfer-Encoding:"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        struct curl_slist *n = curl_slist_append(hdrs, fixed[i]);
        if (!n) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            goto out;
        }
        hdrs = n;
    }
    struct curl_slist *na = curl_slist_append(hdrs, (const char *)auth.data);
    if (!na) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    hdrs = na;

    c = handle_get(h);
    if (!c) {
        rc = err_set(COFFER_ENOMEM, "cannot create a curl handle");
        goto out;
    }
    struct xfer x = {.c = c, .req = r, .resp = resp};
    curl_easy_setopt(c, CURLOPT_URL, (const char *)url.data);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)h->timeout_s);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(c, CURLOPT_READDATA, &x);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    }
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (cc == CURLE_WRITE_ERROR && x.overflow) {
        rc = err_set(COFFER_ELIMIT, "S3 answer to %s %s is larger than expected", r->method,
                     r->key ? r->key : h->bucket);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = transport_error(h, cc, ebuf, r->method, r->key && r->key[0] ? r->key : h->bucket,
                             transient);
        goto out;
    }
    if (resp->err_body.len) {
        s3_xml_node_t *root = NULL;
        if (s3_xml_parse((const char *)resp->err_body.data, resp->err_body.len, &root) == 0) {
            const char *code = s3_xml_child_text(root, "Code");
            const char *msg = s3_xml_child_text(root, "Message");
            snprintf(resp->code, sizeof resp->code, "%s", code ? code : "");
            snprintf(resp->message, sizeof resp->message, "%s", msg ? msg : "");
            s3_xml_free(root);
        }
        err_clear();
    }
out:
    if (c)
        handle_put(h, c);
    curl_slist_free_all(hdrs);
    buf_release(&path);
    buf_release(&host);
    buf_release(&url);
    buf_release(&auth);
    buf_release(&hl);
    return rc;
}

static bool code_is(const s3_resp_t *r, const char *code)
{
    return strcmp(r->code, code) == 0;
}

int s3_http_status_error(s3_http_t *h, const s3_resp_t *resp, const char *what, const char *name,
                         bool *transient)
{
    long st = resp->status;
    char srv[260] = "";
    if (resp->code[0])
        snprintf(srv, sizeof srv, " (%s%s%.160s)", resp->code, resp->message[0] ? ": " : "",
                 resp->message);
    if (code_is(resp, "NoSuchBucket") || (st == 404 && (!name || !name[0])))
        return err_set(COFFER_ENOREPO,
                       "the S3 bucket '%s' does not exist at %s: create it (or run `coffer "
                       "init -o s3.create-bucket=true`), or fix the repository URL",
                       h->bucket, h->where);
    if (st == 404)
        return err_set(COFFER_ENOENT, "no such object %s at %s", name, h->where);
    if (st == 412 || code_is(resp, "PreconditionFailed"))
        return err_set(COFFER_EEXIST, "object %s already exists at %s", name, h->where);
    if (code_is(resp, "InvalidAccessKeyId"))
        return err_set(COFFER_EIO,
                       "the S3 server at %s does not know the access key id (from %s): check "
                       "the credentials",
                       h->where, h->creds.source);
    if (code_is(resp, "SignatureDoesNotMatch"))
        return err_set(COFFER_EIO,
                       "the S3 server at %s rejected the request signature: check the secret "
                       "access key (from %s) and the region (-o s3.region, now '%s')",
                       h->where, h->creds.source, h->region);
    if (code_is(resp, "RequestTimeTooSkewed"))
        return err_set(COFFER_EIO,
                       "this host's clock differs too much from the S3 server's at %s: fix the "
                       "clock (NTP) and retry",
                       h->where);
    if (code_is(resp, "AuthorizationHeaderMalformed") ||
        code_is(resp, "IllegalLocationConstraintException"))
        return err_set(COFFER_EIO,
                       "the S3 server at %s rejected the region '%s'%s: set the "
                       "bucket's region with -o s3.region=REGION",
                       h->where, h->region, srv);
    if (st == 403)
        return err_set(COFFER_EIO,
                       "access denied %s %s at %s%s: check that the credentials (from %s) may "
                       "read, write, list and delete under the repository prefix",
                       what, name && name[0] ? name : h->bucket, h->where, srv, h->creds.source);
    if (st >= 500 || st == 429 || code_is(resp, "SlowDown") || code_is(resp, "RequestTimeout") ||
        code_is(resp, "InternalError") || code_is(resp, "ServiceUnavailable") ||
        code_is(resp, "XAmzContentSHA256Mismatch") || code_is(resp, "BadDigest") ||
        code_is(resp, "IncompleteBody")) {
        *transient = true;
        if (resp->retry_after_s) {
            struct timespec ts = {.tv_sec = resp->retry_after_s};
            nanosleep(&ts, NULL);
        }
    }
    return err_set(COFFER_EIO, "S3 server at %s answered %ld%s %s %s", h->where, st, srv, what,
                   name && name[0] ? name : h->bucket);
}
