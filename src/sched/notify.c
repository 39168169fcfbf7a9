/*
 * notify.c -- webhook and e-mail notifications (contract in notify.h).
 *
 * Layer: sched. One libcurl easy handle per attempt. Retries: webhook on connection errors,
 * timeouts, 429 and 5xx; e-mail on connection errors and 4xx SMTP replies. The wait between
 * attempts doubles from COFFER_NOTIFY_BACKOFF_MS (default 1000 ms) up to 30 s.
 */
#include "sched/notify.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void notify_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
}

bool notify_wanted(const cfg_notify_t *n, const job_result_t *r)
{
    if (r->level < n->level)
        return false;
    if (!n->n_jobs)
        return true;
    for (size_t i = 0; i < n->n_jobs; i++)
        if (!strcmp(n->jobs[i], r->job))
            return true;
    return false;
}

static void fmt_bytes(uint64_t n, char *out, size_t len)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 5) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(out, len, "%llu B", (unsigned long long)n);
    else
        snprintf(out, len, "%.1f %s", v, u[i]);
}

int notify_summary(const job_result_t *r, buf_t *out)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char added[32];
    fmt_bytes(r->bytes_added, added, sizeof added);
    const char *verb = !strcmp(r->status, "success")       ? "succeeded"
                       : !strcmp(r->status, "partial")     ? "finished with unreadable entries"
                       : !strcmp(r->status, "interrupted") ? "was interrupted"
                                                           : "FAILED";
    buf_reset(out);
    int rc = buf_printf(out, "coffer: job %s %s on %s (exit %d) in %.1f s, %s added", r->job, verb,
                        host, r->exit_code, r->duration_s, added);
    for (size_t i = 0; i < r->n_targets && !rc; i++) {
        const job_target_result_t *t = &r->targets[i];
        rc = buf_printf(out, "; %s: %s%s%.8s", t->repo,
                        t->exit_code == 0   ? "ok"
                        : t->exit_code == 3 ? "partial"
                                            : "failed",
                        t->snapshot[0] ? " snapshot " : "", t->snapshot);
    }
    if (!rc && r->error)
        rc = buf_printf(out, ". Error: %s", r->error);
    return rc;
}

int notify_body_json(const job_result_t *r, char **out)
{
    char host[256] = "", start[64], end[64];
    gethostname(host, sizeof host - 1);
    time_format_rfc3339(r->start_ns, false, start, sizeof start);
    time_format_rfc3339(r->end_ns, false, end, sizeof end);
    buf_t text, repos, snaps;
    buf_init(&text);
    buf_init(&repos);
    buf_init(&snaps);
    int rc = notify_summary(r, &text);
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n_targets && !rc; i++) {
        const job_target_result_t *t = &r->targets[i];
        rc = buf_printf(&repos, "%s%s", i ? "," : "", t->repo);
        if (!rc && t->snapshot[0])
            rc = buf_printf(&snaps, "%s%s", snaps.len ? "," : "", t->snapshot);
        json_t *o =
            json_pack("{s:s,s:s,s:s,s:i,s:I,s:f}", "repository", t->repo, "snapshot", t->snapshot,
                      "status", t->status[0] ? t->status : "none", "exit_code", t->exit_code,
                      "bytes_added", (json_int_t)t->bytes_added, "duration_seconds", t->duration_s);
        if (o)
            json_object_set_new(o, "error", t->error ? json_string(t->error) : json_null());
        json_array_append_new(arr, o);
    }
    json_t *o = NULL;
    if (!rc)
        o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:f,s:I,s:s,s:s,s:o,s:o}", "text",
                      text.data ? (char *)text.data : "", "job", r->job, "status", r->status,
                      "level", cfg_level_name(r->level), "exit_code", r->exit_code, "host", host,
                      "start", start, "end", end, "duration_seconds", r->duration_s, "bytes_added",
                      (json_int_t)r->bytes_added, "repository",
                      repos.data ? (char *)repos.data : "", "snapshot",
                      snaps.data ? (char *)snaps.data : "", "error",
                      r->error ? json_string(r->error) : json_null(), "repositories", arr);
    else
        json_decref(arr);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    buf_release(&text);
    buf_release(&repos);
    buf_release(&snaps);
    if (rc)
        return rc;
    if (!s)
        return err_set(COFFER_ENOMEM, "cannot encode the notification");
    *out = s;
    return 0;
}

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

typedef struct reader {
    const char *data;
    size_t len, pos;
} reader_t;

static size_t read_cb(char *p, size_t sz, size_t n, void *u)
{
    reader_t *r = u;
    size_t want = sz * n, left = r->len - r->pos;
    if (want > left)
        want = left;
    memcpy(p, r->data + r->pos, want);
    r->pos += want;
    return want;
}

static void backoff(int attempt)
{
    const char *e = getenv("COFFER_NOTIFY_BACKOFF_MS");
    long base = e ? atol(e) : 1000;
    if (base < 0)
        base = 0;
    long ms = base;
    for (int i = 0; i < attempt && ms < 30000; i++)
        ms *= 2;
    if (ms > 30000)
        ms = 30000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int send_webhook(const cfg_notify_t *n, const char *body)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    for (size_t i = 0; i < n->n_headers && h; i++) {
        char *line = NULL;
        if (asprintf(&line, "%s: %s", n->headers[i].key, n->headers[i].value) < 0)
            break;
        struct curl_slist *nh = curl_slist_append(h, line);
        explicit_bzero(line, strlen(line));
        free(line);
        if (!nh)
            break;
        h = nh;
    }
    int rc = 0;
    for (int attempt = 0; attempt <= n->retries; attempt++) {
        if (attempt)
            backoff(attempt - 1);
        CURL *c = curl_easy_init();
        if (!c) {
            rc = err_set(COFFER_ENOMEM, "cannot start libcurl");
            break;
        }
        curl_easy_setopt(c, CURLOPT_URL, n->url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)n->timeout_s);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "coffer/" COFFER_VERSION_STR);
        if (n->ca_file)
            curl_easy_setopt(c, CURLOPT_CAINFO, n->ca_file);
        CURLcode cr = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        if (cr != CURLE_OK) {
            rc = err_set(COFFER_EIO, "webhook %s: %s", n->name, curl_easy_strerror(cr));
            continue;
        }
        if (status >= 200 && status < 300) {
            rc = 0;
            break;
        }
        rc = err_set(COFFER_EIO, "webhook %s: the server answered HTTP %ld", n->name, status);
        if (status != 429 && status < 500)
            break; /* a client error does not get better by retrying */
    }
    curl_slist_free_all(h);
    return rc;
}

static int send_email(const cfg_notify_t *n, const job_result_t *r, const char *body)
{
    buf_t msg, summary;
    buf_init(&msg);
    buf_init(&summary);
    char date[64], host[256] = "";
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    gethostname(host, sizeof host - 1);
    int rc = notify_summary(r, &summary);
    if (!rc)
        rc = buf_printf(&msg, "Date: %s\r\nFrom: %s\r\nTo: ", date, n->from);
    for (size_t i = 0; i < n->n_to && !rc; i++)
        rc = buf_printf(&msg, "%s%s", i ? ", " : "", n->to[i]);
    if (!rc)
        rc = buf_printf(&msg,
                        "\r\nSubject: [%s] job %s: %s\r\nMessage-ID: <%lld.%d.%s@coffer>\r\n"
                        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        "X-Coffer-Job: %s\r\nX-Coffer-Status: %s\r\n\r\n%s\r\n\r\n",
                        n->subject && *n->subject ? n->subject : "coffer", r->job, r->status,
                        (long long)now, (int)getpid(), host, r->job, r->status,
                        summary.data ? (char *)summary.data : "");
    for (size_t i = 0; i < r->n_targets && !rc; i++) {
        const job_target_result_t *t = &r->targets[i];
        rc = buf_printf(&msg,
                        "repository %s: exit %d, status %s, snapshot %s, %llu bytes "
                        "added, %.1f s%s%s\r\n",
                        t->repo, t->exit_code, t->status[0] ? t->status : "none",
                        t->snapshot[0] ? t->snapshot : "-", (unsigned long long)t->bytes_added,
                        t->duration_s, t->error ? "\r\n  error: " : "", t->error ? t->error : "");
    }
    if (!rc)
        rc = buf_printf(&msg, "\r\n-- \r\nJSON: %s\r\n", body);
    if (rc) {
        buf_release(&msg);
        buf_release(&summary);
        return rc;
    }
    struct curl_slist *rcpt = NULL;
    for (size_t i = 0; i < n->n_to; i++) {
        struct curl_slist *nr = curl_slist_append(rcpt, n->to[i]);
        if (nr)
            rcpt = nr;
    }
    for (int attempt = 0; attempt <= n->retries; attempt++) {
        if (attempt)
            backoff(attempt - 1);
        CURL *c = curl_easy_init();
        if (!c) {
            rc = err_set(COFFER_ENOMEM, "cannot start libcurl");
            break;
        }
        reader_t rd = {(const char *)msg.data, msg.len, 0};
        curl_easy_setopt(c, CURLOPT_URL, n->smtp_url);
        curl_easy_setopt(c, CURLOPT_MAIL_FROM, n->from);
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(c, CURLOPT_READDATA, &rd);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)n->timeout_s);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        if (n->starttls)
            curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        if (n->ca_file)
            curl_easy_setopt(c, CURLOPT_CAINFO, n->ca_file);
        if (n->username)
            curl_easy_setopt(c, CURLOPT_USERNAME, n->username);
        if (n->password)
            curl_easy_setopt(c, CURLOPT_PASSWORD, n->password);
        CURLcode cr = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
        if (cr == CURLE_OK) {
            rc = 0;
            break;
        }
        char reply[48] = "";
        if (code)
            snprintf(reply, sizeof reply, " (SMTP reply %ld)", code);
        rc = err_set(COFFER_EIO, "e-mail %s via %s: %s%s", n->name, n->smtp_url,
                     curl_easy_strerror(cr), reply);
        if (cr == CURLE_LOGIN_DENIED || (code >= 500 && code < 600))
            break; /* wrong credentials or a permanent refusal */
    }
    curl_slist_free_all(rcpt);
    buf_release(&msg);
    buf_release(&summary);
    return rc;
}

int notify_send(const cfg_notify_t *n, const job_result_t *r)
{
    notify_global_init();
    char *body = NULL;
    int rc = notify_body_json(r, &body);
    if (rc)
        return rc;
    rc = n->kind == CFG_NOTIFY_WEBHOOK ? send_webhook(n, body) : send_email(n, r, body);
    free(body);
    return rc;
}

void notify_job(const cfg_t *c, const job_result_t *r)
{
    for (size_t i = 0; i < c->n_notify; i++) {
        const cfg_notify_t *n = &c->notify[i];
        if (!notify_wanted(n, r))
            continue;
        if (notify_send(n, r))
            log_warn("notification %s for job %s was not delivered (the job's result is "
                     "unchanged): %s",
                     n->name, r->job, err_msg());
        else
            log_info("notification %s for job %s delivered", n->name, r->job);
    }
}
