/*
 * sigv4.c -- AWS Signature Version 4 (see sigv4.h for the contract).
 *
 * Layer: storage/s3. Invariants: the canonical request is built exactly as AWS documents it
 * ("Create a canonical request for Signature Version 4"): method, encoded path, sorted encoded
 * query, lowercase sorted headers with trimmed values, signed header list, payload hash. The
 * derived signing key and intermediate HMACs are wiped before returning.
 */
#include "storage/s3/sigv4.h"

#include "common/error.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define SIGV4_MAX_HEADERS 32
#define SIGV4_MAX_QUERY 64

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int sigv4_uri_encode(buf_t *out, const char *s, size_t n, bool keep_slash)
{
    static const char hexd[] = "0123456789ABCDEF";
    int rc = buf_reserve(out, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            rc = buf_append(out, &s[i], 1);
        } else {
            char e[3] = {'%', hexd[c >> 4], hexd[c & 15]};
            rc = buf_append(out, e, 3);
        }
    }
    return rc;
}

void sigv4_sha256_hex(const void *data, size_t n, char out[65])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(data, n, md);
    hex_encode(md, sizeof md, out);
}

struct enc_kv {
    buf_t k, v;
};

static int enc_cmp(const void *a, const void *b)
{
    const struct enc_kv *x = a, *y = b;
    int c = strcmp((const char *)x->k.data, (const char *)y->k.data);
    return c ? c : strcmp((const char *)x->v.data, (const char *)y->v.data);
}

int sigv4_query(buf_t *out, const s3_kv_t *query, size_t n)
{
    struct enc_kv e[SIGV4_MAX_QUERY];
    int rc = 0;
    if (n > SIGV4_MAX_QUERY)
        return err_set(COFFER_ELIMIT, "S3 request has more than %d query parameters",
                       SIGV4_MAX_QUERY);
    for (size_t i = 0; i < n; i++) {
        buf_init(&e[i].k);
        buf_init(&e[i].v);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *v = query[i].value ? query[i].value : "";
        /* buf_append_str of "" leaves data NULL: reserve so strcmp always has a string. */
        if ((rc = buf_reserve(&e[i].k, 1)) || (rc = buf_reserve(&e[i].v, 1)) ||
            (rc = sigv4_uri_encode(&e[i].k, query[i].key, strlen(query[i].key), false)) ||
            (rc = sigv4_uri_encode(&e[i].v, v, strlen(v), false)))
            break;
    }
    if (rc == 0) {
        qsort(e, n, sizeof e[0], enc_cmp);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = buf_printf(out, "%s%s=%s", i ? "&" : "", (const char *)e[i].k.data,
                            (const char *)e[i].v.data);
    }
    for (size_t i = 0; i < n; i++) {
        buf_release(&e[i].k);
        buf_release(&e[i].v);
    }
    return rc;
}

struct hdr {
    char name[64];
    const char *value;
};

static int hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct hdr *)a)->name, ((const struct hdr *)b)->name);
}

/* Lowercased, sorted copies of the header names (values borrowed). */
static int sorted_headers(const sigv4_req_t *r, struct hdr *h)
{
    if (r->nheaders > SIGV4_MAX_HEADERS)
        return err_set(COFFER_ELIMIT, "S3 request has more than %d signed headers",
                       SIGV4_MAX_HEADERS);
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *n = r->headers[i].key;
        size_t len = strlen(n);
        if (len == 0 || len >= sizeof h[i].name)
            return err_set(COFFER_EINVAL, "S3 header name of %zu bytes cannot be signed", len);
        for (size_t j = 0; j < len; j++) {
            unsigned char c = (unsigned char)n[j];
            if (!isalnum(c) && c != '-' && c != '_')
                return err_set(COFFER_EINVAL, "S3 header name '%.40s' cannot be signed", n);
            h[i].name[j] = (char)tolower(c);
        }
        h[i].name[len] = 0;
        h[i].value = r->headers[i].value ? r->headers[i].value : "";
    }
    qsort(h, r->nheaders, sizeof h[0], hdr_cmp);
    return 0;
}

/* Value trimmed, runs of spaces collapsed to one. */
static int append_trimmed(buf_t *out, const char *v)
{
    int rc = 0;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    bool space = false;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (v[i] == ' ' || v[i] == '\t') {
            space = true;
            continue;
        }
        if (space && (rc = buf_append(out, " ", 1)))
            break;
        space = false;
        rc = buf_append(out, &v[i], 1);
    }
    return rc;
}

static int canonical(const sigv4_req_t *r, const struct hdr *h, buf_t *out)
{
    int rc;
    const char *path = r->path && r->path[0] ? r->path : "/";
    if ((rc = buf_printf(out, "%s\n", r->method)) ||
        (rc = sigv4_uri_encode(out, path, strlen(path), true)) || (rc = buf_append(out, "\n", 1)) ||
        (rc = sigv4_query(out, r->query, r->nquery)) || (rc = buf_append(out, "\n", 1)))
        return rc;
    for (size_t i = 0; i < r->nheaders; i++) {
        if ((rc = buf_printf(out, "%s:", h[i].name)) || (rc = append_trimmed(out, h[i].value)) ||
            (rc = buf_append(out, "\n", 1)))
            return rc;
    }
    if ((rc = buf_append(out, "\n", 1)))
        return rc;
    for (size_t i = 0; i < r->nheaders; i++)
        if ((rc = buf_printf(out, "%s%s", i ? ";" : "", h[i].name)))
            return rc;
    return buf_printf(out, "\n%s", r->payload_hash ? r->payload_hash : "");
}

int sigv4_canonical_request(const sigv4_req_t *r, buf_t *out)
{
    struct hdr h[SIGV4_MAX_HEADERS];
    int rc = sorted_headers(r, h);
    return rc ? rc : canonical(r, h, out);
}

static bool valid_amz_date(const char *d)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return false;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)d[i]))
            return false;
    return true;
}

static int hmac(const void *key, size_t klen, const char *msg, uint8_t out[32])
{
    unsigned int len = 32;
    if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len))
        return err_set(COFFER_EIO, "HMAC-SHA-256 failed while signing an S3 request");
    return 0;
}

int sigv4_authorization(const sigv4_req_t *r, buf_t *out)
{
    struct hdr h[SIGV4_MAX_HEADERS];
    buf_t creq, key0, sts;
    char date[9], creq_hex[65], sig_hex[65];
    uint8_t k[32], sig[32];
    int rc;

    if (!valid_amz_date(r->amz_date))
        return err_set(COFFER_EINVAL, "S3 request date is not of the form YYYYMMDDTHHMMSSZ");
    memcpy(date, r->amz_date, 8);
    date[8] = 0;
    buf_init(&creq);
    buf_init(&key0);
    buf_init(&sts);
    if ((rc = sorted_headers(r, h)) || (rc = canonical(r, h, &creq)))
        goto out;
    sigv4_sha256_hex(creq.data, creq.len, creq_hex);
    if ((rc = buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", r->amz_date, date,
                         r->region, r->service, creq_hex)))
        goto out;
    if ((rc = buf_printf(&key0, "AWS4%s", r->secret_key)))
        goto out;
    if ((rc = hmac(key0.data, key0.len, date, k)) || (rc = hmac(k, 32, r->region, k)) ||
        (rc = hmac(k, 32, r->service, k)) || (rc = hmac(k, 32, "aws4_request", k)) ||
        (rc = hmac(k, 32, (const char *)sts.data, sig)))
        goto out;
    hex_encode(sig, 32, sig_hex);
    if ((rc = buf_printf(out,
                         "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
                         "SignedHeaders=",
                         r->access_key, date, r->region, r->service)))
        goto out;
    for (size_t i = 0; i < r->nheaders && rc == 0; i++)
        rc = buf_printf(out, "%s%s", i ? ";" : "", h[i].name);
    if (rc == 0)
        rc = buf_printf(out, ", Signature=%s", sig_hex);
out:
    OPENSSL_cleanse(k, sizeof k);
    if (key0.data)
        OPENSSL_cleanse(key0.data, key0.len);
    buf_release(&key0);
    buf_release(&creq);
    buf_release(&sts);
    return rc;
}
