/*
 * s3_http.h -- one signed S3 request over libcurl, and the mapping of S3 answers to errors.
 *
 * Layer: storage/s3 (uses common, sigv4, s3_xml, creds; libcurl). An s3_http_t holds the
 * endpoint, the bucket, the credentials and a pool of curl easy handles (each keeps its
 * connections alive between requests, so connections are reused; at most `connections`
 * requests run at once, callers beyond that wait for a free handle).
 * Thread safety: s3_http_request may be called from any number of threads.
 * Secrets: the credentials are used for signing only; no message, log line or URL has them.
 */
#ifndef COFFER_STORAGE_S3_HTTP_H
#define COFFER_STORAGE_S3_HTTP_H

#include "common/buf.h"
#include "storage/s3/creds.h"
#include "storage/s3/sigv4.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct s3_http s3_http_t;

typedef struct s3_http_cfg {
    const char *scheme; /* "http" or "https" */
    const char *host;   /* endpoint host[:port] (no bucket) */
    const char *bucket;
    bool path_style; /* /bucket/key, else bucket.host/key */
    const char *region;
    const char *ca_file;  /* NULL: the system's CAs */
    unsigned connections; /* handle pool size, >= 1 */
    unsigned timeout_s;   /* a transfer making no progress for this long fails (transient) */
} s3_http_cfg_t;

/* Takes ownership of *creds (released by s3_http_free, zeroed in the caller). Strings of cfg
 * are copied. */
int s3_http_new(const s3_http_cfg_t *cfg, s3_creds_t *creds, s3_http_t **out);
void s3_http_free(s3_http_t *h); /* accepts NULL */

typedef struct s3_req {
    const char *method; /* GET PUT POST HEAD DELETE */
    const char *key;    /* object key (raw, prefix included); NULL or "" for the bucket */
    const s3_kv_t *query;
    size_t nquery;
    const s3_kv_t *headers; /* extra headers, all signed */
    size_t nheaders;
    const void *body; /* request body (PUT/POST); may be NULL with body_len 0 */
    size_t body_len;
    buf_t *out;     /* 2xx response body appended here; NULL: discarded */
    size_t out_max; /* cap on the 2xx body (0: BUF_MAX) */
} s3_req_t;

typedef struct s3_resp {
    long status;     /* HTTP status */
    int64_t date_ns; /* server's Date header, 0 if none */
    int64_t last_modified_ns;
    uint64_t content_length;
    bool has_length;
    uint64_t range_total; /* total size from Content-Range "bytes a-b/TOTAL", 0 if none */
    bool has_range_total;
    unsigned retry_after_s;
    char etag[128];
    char code[64];     /* <Code> of an XML error body, "" if none */
    char message[160]; /* <Message> of an XML error body (server text, no secrets) */
    buf_t err_body;    /* non-2xx body (capped), owned: s3_resp_release */
} s3_resp_t;

void s3_resp_release(s3_resp_t *r);

/* Send r and wait for the answer. 0 when an HTTP answer came (of any status: see
 * s3_http_status_error); COFFER_EIO for transport failures (unreachable host, TLS failure,
 * reset, timeout, truncated body), with *transient set where a retry may help. *resp is
 * filled in either case and must be released. */
int s3_http_request(s3_http_t *h, const s3_req_t *r, s3_resp_t *resp, bool *transient);

/* The error for a non-2xx answer to `what` ("reading", "writing", ...) of object `name` (as
 * callers know it): COFFER_ENOENT for a missing object, COFFER_ENOREPO for a missing bucket,
 * COFFER_EEXIST for 412, COFFER_EIO otherwise with a message saying what to fix; sets
 * *transient for 5xx, 429 and S3's retryable codes (honouring Retry-After up to 30 s). */
int s3_http_status_error(s3_http_t *h, const s3_resp_t *resp, const char *what, const char *name,
                         bool *transient);

/* Human-readable "http://host/bucket" of the endpoint (no secrets), borrowed. */
const char *s3_http_where(const s3_http_t *h);

/* Parse an RFC 1123 HTTP date ("Sat, 21 Nov 2026 16:49:55 GMT") or an ISO 8601 S3 time
 * ("2026-11-21T16:49:55.123Z") to ns since the epoch; 0 on failure. */
int64_t s3_http_parse_time(const char *s);

#endif
