/*
 * sigv4.h -- AWS Signature Version 4 for S3 requests, written by hand.
 *
 * Layer: storage/s3 (uses common; OpenSSL for SHA-256 and HMAC). Pure functions: no I/O, no
 * clock, no globals, so the signer is tested against AWS's published examples.
 * Why not curl's CURLOPT_AWS_SIGV4: curl 7.88 signs the query exactly as written (unsorted,
 * not re-encoded) and does not sign x-amz-content-sha256, which servers that verify
 * signatures (radosgw) reject.
 * Invariants: query parameters are signed sorted by encoded name then value, names and values
 * RFC 3986-encoded (unreserved A-Za-z0-9-._~ kept); the URL sent must use the same string
 * (sigv4_query builds both). Headers are signed lowercased, sorted, values trimmed.
 * Secrets: the secret key is only read; nothing here logs or keeps it.
 */
#ifndef COFFER_STORAGE_S3_SIGV4_H
#define COFFER_STORAGE_S3_SIGV4_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct s3_kv {
    const char *key;
    const char *value; /* "" for a parameter without value ("?uploads" is signed "uploads=") */
} s3_kv_t;

typedef struct sigv4_req {
    const char *method;   /* "GET", "PUT", ... */
    const char *path;     /* raw (unencoded) absolute path, e.g. "/bucket/data/ab/x" */
    const s3_kv_t *query; /* raw query parameters, any order */
    size_t nquery;
    const s3_kv_t *headers; /* headers to sign, any case/order; must include host and
                               x-amz-date (and x-amz-content-sha256 for S3) */
    size_t nheaders;
    const char *payload_hash; /* lowercase hex SHA-256 of the body */
    const char *amz_date;     /* "YYYYMMDDTHHMMSSZ" */
    const char *region;
    const char *service; /* "s3" */
    const char *access_key;
    const char *secret_key;
} sigv4_req_t;

/* Append the RFC 3986 encoding of s[0..n) to out; keep_slash leaves '/' as is (paths). */
int sigv4_uri_encode(buf_t *out, const char *s, size_t n, bool keep_slash);

/* Append the canonical query string (sorted, encoded, "a=1&b=") to out. */
int sigv4_query(buf_t *out, const s3_kv_t *query, size_t n);

/* Append the canonical request (the text that is hashed) to out: for tests and debugging. */
int sigv4_canonical_request(const sigv4_req_t *r, buf_t *out);

/* Append the Authorization header value ("AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/s3/
 * aws4_request, SignedHeaders=..., Signature=...") to out. COFFER_EINVAL for a malformed
 * amz_date or a header name that is not a token; COFFER_ELIMIT over the caps. */
int sigv4_authorization(const sigv4_req_t *r, buf_t *out);

/* Lowercase hex SHA-256 of data (out holds 65 bytes). */
void sigv4_sha256_hex(const void *data, size_t n, char out[65]);

#endif
