/*
 * client.c -- the Kubernetes API client (see client.h).
 *
 * Layer: k8s. One curl easy handle per client, configured once for TLS and reused so requests
 * share a connection. Response bodies are collected into a buffer capped at K8S_MAX_RESPONSE;
 * streams (watches) are split into lines as they arrive.
 */
#include "k8s/client.h"
#include "common/error.h"
#include "common/log.h"
#include "k8s/execcred.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef COFFER_VERSION_STR
#define COFFER_VERSION_STR "dev"
#endif

struct k8s_client {
    k8s_config_t cfg;
    CURL *h;
    char *token; /* current bearer token (from cfg.token, tokenFile or exec); secret */
    k8s_cred_t cred;
    long last_http;
    char reason[64];
    char errbuf[CURL_ERROR_SIZE];
    /* per request */
    buf_t body;
    long retry_after;
    bool over_limit;
    /* streaming */
    k8s_line_cb line_cb;
    void *line_ud;
    int line_rc;
    buf_t line;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

const k8s_config_t *k8s_client_config(const k8s_client_t *c)
{
    return &c->cfg;
}

long k8s_last_http(const k8s_client_t *c)
{
    return c->last_http;
}

const char *k8s_last_reason(const k8s_client_t *c)
{
    return c->reason;
}

static void free_token(k8s_client_t *c)
{
    if (c->token) {
        sodium_memzero(c->token, strlen(c->token));
        free(c->token);
        c->token = NULL;
    }
}

static int read_token_file(k8s_client_t *c)
{
    FILE *f = fopen(c->cfg.token_file, "re");
    if (!f)
        return err_errno("cannot read the token file %s of %s", c->cfg.token_file, c->cfg.origin);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    buf[n] = 0;
    if (n == 0)
        return err_set(COFFER_EINVAL, "the token file %s of %s is empty", c->cfg.token_file,
                       c->cfg.origin);
    free_token(c);
    c->token = strdup(buf);
    sodium_memzero(buf, sizeof buf);
    return c->token ? 0 : err_set(COFFER_ENOMEM, "out of memory");
}

static int set_blob(CURL *h, CURLoption o, const buf_t *b)
{
    struct curl_blob blob = {.data = b->data, .len = b->len, .flags = CURL_BLOB_COPY};
    return curl_easy_setopt(h, o, &blob) == CURLE_OK
               ? 0
               : err_set(COFFER_EINVAL, "this libcurl cannot take in-memory certificates");
}

/* Credentials: token, token file, exec plugin; client certificate from files, data or exec. */
static int load_credentials(k8s_client_t *c)
{
    int rc = 0;
    if (c->cfg.exec.command) {
        k8s_cred_release(&c->cred);
        if ((rc = k8s_exec_credential(&c->cfg, &c->cred)))
            return rc;
        free_token(c);
        if (c->cred.token && !(c->token = strdup(c->cred.token)))
            return err_set(COFFER_ENOMEM, "out of memory");
        if (c->cred.cert_pem.len &&
            ((rc = set_blob(c->h, CURLOPT_SSLCERT_BLOB, &c->cred.cert_pem)) ||
             (rc = set_blob(c->h, CURLOPT_SSLKEY_BLOB, &c->cred.key_pem))))
            return rc;
        if (c->cred.cert_pem.len || c->cred.key_pem.len)
            return 0;
        if (c->token)
            return 0;
    }
    if (c->cfg.token_file)
        return read_token_file(c);
    if (c->cfg.token) {
        free_token(c);
        c->token = strdup(c->cfg.token);
        return c->token ? 0 : err_set(COFFER_ENOMEM, "out of memory");
    }
    return 0;
}

int k8s_client_new(k8s_config_t *cfg, k8s_client_t **out)
{
    pthread_once(&curl_once, curl_init_once);
    k8s_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(COFFER_ENOMEM, "out of memory");
    c->cfg = *cfg;
    k8s_config_init(cfg);
    buf_init(&c->body);
    buf_init(&c->line);
    k8s_cred_init(&c->cred);
    int rc = 0;
    c->h = curl_easy_init();
    if (!c->h) {
        rc = err_set(COFFER_ENOMEM, "cannot create a curl handle");
        goto fail;
    }
    CURL *h = c->h;
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "coffer/" COFFER_VERSION_STR);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (c->cfg.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->cfg.ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cfg.ca_file);
    if (c->cfg.ca_pem.len && (rc = set_blob(h, CURLOPT_CAINFO_BLOB, &c->cfg.ca_pem)))
        goto fail;
    if (c->cfg.cert_file) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cfg.cert_file);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (c->cfg.key_file)
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->cfg.key_file);
    if (c->cfg.cert_pem.len && (rc = set_blob(h, CURLOPT_SSLCERT_BLOB, &c->cfg.cert_pem)))
        goto fail;
    if (c->cfg.key_pem.len && (rc = set_blob(h, CURLOPT_SSLKEY_BLOB, &c->cfg.key_pem)))
        goto fail;
    if ((rc = load_credentials(c)))
        goto fail;
    *out = c;
    return 0;
fail:
    k8s_client_free(c);
    return rc;
}

void k8s_client_free(k8s_client_t *c)
{
    if (!c)
        return;
    if (c->h)
        curl_easy_cleanup(c->h);
    free_token(c);
    k8s_cred_release(&c->cred);
    k8s_config_release(&c->cfg);
    buf_release(&c->body);
    buf_release(&c->line);
    free(c);
}

/* ---- paths and names ---------------------------------------------------------------------- */

static int put_escaped(buf_t *b, const char *s)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == ':')
            rc = buf_put_u8(b, ch);
        else
            rc = buf_printf(b, "%%%02X", ch);
    }
    return rc;
}

int k8s_path(buf_t *out, const k8s_res_t *r, const char *ns, const char *name, const char *sub)
{
    int rc = r->group && *r->group ? buf_printf(out, "/apis/%s/%s", r->group, r->version)
                                   : buf_printf(out, "/api/%s", r->version);
    if (!rc && r->namespaced && ns && *ns && !(rc = buf_append_str(out, "/namespaces/")))
        rc = put_escaped(out, ns);
    if (!rc && !(rc = buf_put_u8(out, '/')))
        rc = put_escaped(out, r->resource);
    if (!rc && name && !(rc = buf_put_u8(out, '/')))
        rc = put_escaped(out, name);
    if (!rc && sub && !(rc = buf_put_u8(out, '/')))
        rc = put_escaped(out, sub);
    return rc;
}

int k8s_query(buf_t *out, const char *key, const char *value)
{
    bool has_q = out->len && memchr(out->data, '?', out->len);
    int rc = buf_printf(out, "%c%s=", has_q ? '&' : '?', key);
    return rc ? rc : put_escaped(out, value);
}

int k8s_what(buf_t *out, const k8s_res_t *r, const char *ns, const char *name)
{
    int rc = r->group && *r->group ? buf_printf(out, "%s.%s", r->resource, r->group)
                                   : buf_append_str(out, r->resource);
    if (!rc && name)
        rc = buf_printf(out, " \"%s\"", name);
    if (!rc && r->namespaced && ns && *ns)
        rc = buf_printf(out, " in namespace \"%s\"", ns);
    return rc;
}

/* ---- transfer callbacks ------------------------------------------------------------------- */

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    k8s_client_t *c = ud;
    size_t n = sz * nm;
    if (c->body.len + n > K8S_MAX_RESPONSE) {
        c->over_limit = true;
        return 0;
    }
    return buf_append(&c->body, p, n) ? 0 : n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    k8s_client_t *c = ud;
    size_t n = sz * nm;
    if (n > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        long v = strtol(p + 12, NULL, 10);
        c->retry_after = v > 0 ? (v > 60 ? 60 : v) : 0;
    }
    return n;
}

static size_t on_stream(char *p, size_t sz, size_t nm, void *ud)
{
    k8s_client_t *c = ud;
    size_t n = sz * nm;
    long code = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code > 299)
        return on_body(p, sz, nm, ud);
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') {
            if (c->line.len >= (64u << 20)) {
                c->over_limit = true;
                return 0;
            }
            if (buf_put_u8(&c->line, (uint8_t)p[i]))
                return 0;
            continue;
        }
        if (c->line.len) {
            c->line.data[c->line.len] = 0;
            int r = c->line_cb((char *)c->line.data, c->line.len, c->line_ud);
            buf_reset(&c->line);
            if (r) {
                c->line_rc = r;
                return 0;
            }
        }
    }
    return n;
}

/* ---- errors ------------------------------------------------------------------------------- */

static const char *reason_words(const char *reason, long http)
{
    static const struct {
        const char *reason, *words;
    } map[] = {
        {"Forbidden", "forbidden"},
        {"NotFound", "not found"},
        {"AlreadyExists", "already exists"},
        {"Invalid", "invalid"},
        {"Conflict", "conflict"},
        {"Expired", "expired (410 Gone)"},
        {"Gone", "gone"},
        {"BadRequest", "bad request"},
        {"MethodNotAllowed", "not allowed"},
        {"TooManyRequests", "too many requests"},
        {"ServiceUnavailable", "unavailable"},
        {"InternalError", "server error"},
        {"Timeout", "timeout"},
        {"UnsupportedMediaType", "unsupported media type"},
    };
    for (size_t i = 0; reason && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(reason, map[i].reason) == 0)
            return map[i].words;
    return http == 410 ? "gone" : http >= 500 ? "server error" : "error";
}

static int code_for(long http)
{
    switch (http) {
    case 404:
        return COFFER_ENOENT;
    case 409:
        return COFFER_EEXIST;
    case 400:
    case 422:
        return COFFER_EINVAL;
    default:
        return COFFER_EIO;
    }
}

static bool is_json_type(CURL *h)
{
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    return !ct || strncasecmp(ct, "application/json", 16) == 0 ||
           strncasecmp(ct, "application/yaml", 16) == 0;
}

static int fail_http(k8s_client_t *c, const char *what, long http)
{
    char *ct = NULL;
    curl_easy_getinfo(c->h, CURLINFO_CONTENT_TYPE, &ct);
    json_error_t je;
    json_t *st = json_loadb((char *)c->body.data, c->body.len, 0, &je);
    const char *kind = json_string_value(json_object_get(st, "kind"));
    if (!st || !kind || strcmp(kind, "Status") != 0) {
        json_decref(st);
        if (http == 401)
            return err_set(COFFER_EIO,
                           "k8s: %s: unauthorized (HTTP 401): the server refused the "
                           "credentials of %s (expired or invalid token?)",
                           what, c->cfg.origin);
        return err_set(code_for(http),
                       "k8s: %s: %s answered HTTP %ld with %s instead of a "
                       "Kubernetes Status; is the server URL of %s right?",
                       what, c->cfg.server, http, ct ? ct : "no content type", c->cfg.origin);
    }
    const char *reason = json_string_value(json_object_get(st, "reason"));
    const char *msg = json_string_value(json_object_get(st, "message"));
    snprintf(c->reason, sizeof c->reason, "%s", reason ? reason : "");
    int rc;
    if (http == 401)
        rc = err_set(COFFER_EIO,
                     "k8s: %s: unauthorized (HTTP 401): the server refused the "
                     "credentials of %s (expired or invalid token?)",
                     what, c->cfg.origin);
    else
        rc = err_set(code_for(http), "k8s: %s: %s: %s", what, reason_words(reason, http),
                     msg && *msg ? msg : "(no message)");
    json_decref(st);
    return rc;
}

static int fail_curl(k8s_client_t *c, CURLcode cc, const char *what)
{
    const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
        return err_set(COFFER_EIO,
                       "k8s: %s: TLS with %s failed (%s): %s; check certificate-authority and "
                       "the client certificate in the kubeconfig",
                       what, c->cfg.server, c->cfg.origin, detail);
    case CURLE_SSL_CERTPROBLEM:
        return err_set(COFFER_EINVAL,
                       "k8s: %s: the client certificate or key of %s cannot be "
                       "used: %s",
                       what, c->cfg.origin, detail);
    case CURLE_WRITE_ERROR:
        if (c->over_limit)
            return err_set(COFFER_ELIMIT, "k8s: %s: the response is larger than %u MiB", what,
                           K8S_MAX_RESPONSE >> 20);
        return err_set(COFFER_ENOMEM, "k8s: %s: out of memory reading the response", what);
    default:
        return err_set(COFFER_EIO, "k8s: %s: cannot reach %s (%s): %s", what, c->cfg.server,
                       c->cfg.origin, detail);
    }
}

static bool curl_retryable(CURLcode cc)
{
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_OPERATION_TIMEDOUT ||
           cc == CURLE_GOT_NOTHING || cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR ||
           cc == CURLE_PARTIAL_FILE;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- requests ----------------------------------------------------------------------------- */

static int perform(k8s_client_t *c, const char *method, const char *path, const char *ctype,
                   const char *body, size_t body_len, bool stream, const char *what)
{
    buf_t url, auth;
    buf_init(&url);
    buf_init(&auth);
    int rc = buf_printf(&url, "%s%s", c->cfg.server, path);
    if (rc)
        goto out;
    bool is_get = strcmp(method, "GET") == 0, reauthed = false;
    for (int attempt = 0;; attempt++) {
        CURL *h = c->h;
        struct curl_slist *hd = NULL;
        buf_reset(&c->body);
        buf_reset(&c->line);
        c->retry_after = 0;
        c->over_limit = false;
        c->line_rc = 0;
        c->errbuf[0] = 0;
        c->reason[0] = 0;
        c->last_http = 0;
        buf_reset(&auth);
        hd = curl_slist_append(hd, "Accept: application/json");
        if (c->token && !(rc = buf_printf(&auth, "Authorization: Bearer %s", c->token)))
            hd = curl_slist_append(hd, (char *)auth.data);
        if (ctype) {
            char ch[128];
            snprintf(ch, sizeof ch, "Content-Type: %s", ctype);
            hd = curl_slist_append(hd, ch);
        }
        hd = curl_slist_append(hd, "Expect:");
        if (rc || !hd) {
            curl_slist_free_all(hd);
            rc = rc ? rc : err_set(COFFER_ENOMEM, "out of memory");
            goto out;
        }
        curl_easy_setopt(h, CURLOPT_URL, (char *)url.data);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_HTTPGET, is_get ? 1L : 0L);
        if (is_get) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
            curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        } else {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
        }
        curl_easy_setopt(h, CURLOPT_TIMEOUT, stream ? 0L : 300L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stream ? on_stream : on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
        CURLcode cc = curl_easy_perform(h);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(hd);
        sodium_memzero(auth.data ? auth.data : (uint8_t *)"", auth.data ? auth.cap : 0);
        if (stream && c->line_rc) {
            rc = c->line_rc;
            goto out;
        }
        if (cc != CURLE_OK) {
            if (is_get && curl_retryable(cc) && attempt < K8S_RETRIES) {
                log_debug("k8s: %s: %s; retrying", what, curl_easy_strerror(cc));
                sleep_s(0.2 * (1 << attempt));
                continue;
            }
            rc = fail_curl(c, cc, what);
            goto out;
        }
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->last_http);
        long http = c->last_http;
        if (http == 401 && !reauthed && (c->cfg.token_file || c->cfg.exec.command)) {
            reauthed = true;
            if ((rc = load_credentials(c)))
                goto out;
            continue;
        }
        bool retry =
            http == 429 || http == 503 || (is_get && (http == 500 || http == 502 || http == 504));
        if (retry && attempt < K8S_RETRIES) {
            double wait = c->retry_after ? (double)c->retry_after : 0.25 * (1 << attempt);
            log_debug("k8s: %s: HTTP %ld; retrying in %.2f s", what, http, wait);
            sleep_s(wait);
            continue;
        }
        if (http < 200 || http > 299) {
            rc = fail_http(c, what, http);
            goto out;
        }
        break;
    }
out:
    buf_release(&url);
    if (auth.data)
        sodium_memzero(auth.data, auth.cap);
    buf_release(&auth);
    return rc;
}

int k8s_request(k8s_client_t *c, const char *method, const char *path, const char *content_type,
                const char *body, size_t body_len, const char *what, json_t **out_body)
{
    int rc = perform(c, method, path, content_type, body, body_len, false, what);
    if (rc)
        return rc;
    if (!out_body)
        return 0;
    json_error_t je;
    json_t *v = json_loadb((char *)c->body.data, c->body.len, 0, &je);
    if (!v || !is_json_type(c->h)) {
        char *ct = NULL;
        curl_easy_getinfo(c->h, CURLINFO_CONTENT_TYPE, &ct);
        json_decref(v);
        return err_set(COFFER_ECORRUPT,
                       "k8s: %s: %s answered %s (HTTP %ld), not Kubernetes JSON; is the server "
                       "URL of %s right?",
                       what, c->cfg.server, ct ? ct : "something without a content type",
                       c->last_http, c->cfg.origin);
    }
    *out_body = v;
    return 0;
}

int k8s_stream(k8s_client_t *c, const char *path, const char *what, k8s_line_cb cb, void *ud)
{
    c->line_cb = cb;
    c->line_ud = ud;
    int rc = perform(c, "GET", path, NULL, NULL, 0, true, what);
    c->line_cb = NULL;
    c->line_ud = NULL;
    return rc;
}

/* ---- typed helpers ------------------------------------------------------------------------ */

static int obj_request(k8s_client_t *c, const char *method, const k8s_res_t *r, const char *ns,
                       const char *name, const char *sub, const char *ctype, json_t *obj,
                       const char *q1k, const char *q1v, const char *q2k, const char *q2v,
                       bool dry_run, json_t **out)
{
    buf_t path, what;
    buf_init(&path);
    buf_init(&what);
    char *body = NULL;
    const char *wname = name;
    if (!wname && obj)
        wname = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    int rc = k8s_path(&path, r, ns, name, sub);
    if (!rc && q1k)
        rc = k8s_query(&path, q1k, q1v);
    if (!rc && q2k)
        rc = k8s_query(&path, q2k, q2v);
    if (!rc && dry_run)
        rc = k8s_query(&path, "dryRun", "All");
    if (!rc)
        rc = k8s_what(&what, r, ns, wname);
    if (rc)
        goto out;
    if (obj && !(body = json_dumps(obj, JSON_COMPACT))) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    rc = k8s_request(c, method, (char *)path.data, obj ? ctype : NULL, body,
                     body ? strlen(body) : 0, (char *)what.data, out);
out:
    free(body);
    buf_release(&path);
    buf_release(&what);
    return rc;
}

int k8s_get(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name, json_t **out)
{
    return obj_request(c, "GET", r, ns, name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, out);
}

int k8s_create(k8s_client_t *c, const k8s_res_t *r, const char *ns, json_t *obj, bool dry_run,
               json_t **out)
{
    json_t *tmp = NULL;
    int rc = obj_request(c, "POST", r, ns, NULL, NULL, "application/json", obj, "fieldManager",
                         "coffer", NULL, NULL, dry_run, out ? out : &tmp);
    json_decref(tmp);
    return rc;
}

int k8s_update(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name, json_t *obj,
               bool dry_run, json_t **out)
{
    json_t *tmp = NULL;
    int rc = obj_request(c, "PUT", r, ns, name, NULL, "application/json", obj, "fieldManager",
                         "coffer", NULL, NULL, dry_run, out ? out : &tmp);
    json_decref(tmp);
    return rc;
}

int k8s_update_status(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name,
                      json_t *obj, json_t **out)
{
    json_t *tmp = NULL;
    int rc = obj_request(c, "PUT", r, ns, name, "status", "application/json", obj, "fieldManager",
                         "coffer", NULL, NULL, false, out ? out : &tmp);
    json_decref(tmp);
    return rc;
}

int k8s_apply(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name, json_t *obj,
              bool dry_run, json_t **out)
{
    json_t *tmp = NULL;
    int rc = obj_request(c, "PATCH", r, ns, name, NULL, "application/apply-patch+yaml", obj,
                         "fieldManager", "coffer", "force", "true", dry_run, out ? out : &tmp);
    json_decref(tmp);
    return rc;
}

int k8s_patch(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name,
              k8s_patch_type_t type, json_t *patch, json_t **out)
{
    static const char *types[] = {"application/merge-patch+json",
                                  "application/strategic-merge-patch+json",
                                  "application/json-patch+json"};
    json_t *tmp = NULL;
    int rc = obj_request(c, "PATCH", r, ns, name, NULL, types[type], patch, "fieldManager",
                         "coffer", NULL, NULL, false, out ? out : &tmp);
    json_decref(tmp);
    return rc;
}

int k8s_delete(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name,
               const char *propagation)
{
    json_t *opts = propagation ? json_pack("{s:s,s:s,s:s}", "kind", "DeleteOptions", "apiVersion",
                                           "v1", "propagationPolicy", propagation)
                               : NULL;
    json_t *tmp = NULL;
    int rc = obj_request(c, "DELETE", r, ns, name, NULL, "application/json", opts, NULL, NULL, NULL,
                         NULL, false, &tmp);
    json_decref(tmp);
    json_decref(opts);
    return rc;
}

int k8s_list(k8s_client_t *c, const k8s_res_t *r, const char *ns, const k8s_list_opts_t *o,
             k8s_item_cb item_cb, void *ud, char **out_rv)
{
    buf_t path, what;
    buf_init(&path);
    buf_init(&what);
    char *cont = NULL, *rv = NULL, limit[24];
    size_t delivered = 0;
    bool restarted = false;
    snprintf(limit, sizeof limit, "%d", o && o->limit > 0 ? o->limit : 500);
    int rc = k8s_what(&what, r, ns, NULL);
    while (!rc) {
        buf_reset(&path);
        if ((rc = k8s_path(&path, r, ns, NULL, NULL)) || (rc = k8s_query(&path, "limit", limit)))
            break;
        if (o && o->label_selector && *o->label_selector &&
            (rc = k8s_query(&path, "labelSelector", o->label_selector)))
            break;
        if (o && o->field_selector && *o->field_selector &&
            (rc = k8s_query(&path, "fieldSelector", o->field_selector)))
            break;
        if (cont && (rc = k8s_query(&path, "continue", cont)))
            break;
        json_t *list = NULL;
        rc = k8s_request(c, "GET", (char *)path.data, NULL, NULL, 0, (char *)what.data, &list);
        if (rc && c->last_http == 410 && cont && delivered == 0 && !restarted) {
            /* the continue token expired before we used any item: start again */
            restarted = true;
            free(cont);
            cont = NULL;
            rc = 0;
            err_clear();
            continue;
        }
        if (rc)
            break;
        json_t *items = json_object_get(list, "items"), *meta = json_object_get(list, "metadata");
        const char *lkind = json_string_value(json_object_get(list, "kind"));
        const char *av = json_string_value(json_object_get(list, "apiVersion"));
        char kind[256] = "";
        if (lkind) {
            size_t kl = strlen(lkind);
            if (kl > 4 && kl < sizeof kind && strcmp(lkind + kl - 4, "List") == 0)
                snprintf(kind, sizeof kind, "%.*s", (int)(kl - 4), lkind);
        }
        if (!json_is_array(items)) {
            json_decref(list);
            rc =
                err_set(COFFER_ECORRUPT, "k8s: %s: the list has no items array", (char *)what.data);
            break;
        }
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            if (!json_is_object(it))
                continue;
            if (av && kind[0] && !json_object_get(it, "apiVersion") &&
                !json_object_get(it, "kind")) {
                /* list items come without them; put them first, where a GET has them */
                json_t *full = json_pack("{s:s,s:s}", "apiVersion", av, "kind", kind);
                if (!full || json_object_update(full, it) || json_array_set_new(items, i, full)) {
                    json_decref(full);
                    rc = err_set(COFFER_ENOMEM, "out of memory");
                    break;
                }
                it = full;
            }
            delivered++;
            if ((rc = item_cb(it, ud)))
                break;
        }
        const char *lrv = json_string_value(json_object_get(meta, "resourceVersion"));
        const char *next = json_string_value(json_object_get(meta, "continue"));
        if (!rc && lrv && !rv && !(rv = strdup(lrv)))
            rc = err_set(COFFER_ENOMEM, "out of memory");
        free(cont);
        cont = NULL;
        if (!rc && next && *next && !(cont = strdup(next)))
            rc = err_set(COFFER_ENOMEM, "out of memory");
        json_decref(list);
        if (rc || !cont)
            break;
    }
    free(cont);
    buf_release(&path);
    buf_release(&what);
    if (rc) {
        free(rv);
        return rc;
    }
    if (out_rv)
        *out_rv = rv;
    else
        free(rv);
    return 0;
}
