/*
 * metrics.c -- the metrics store and its Prometheus text rendering (contract in metrics.h).
 *
 * Layer: sched. Series are kept per job/copy task in declaration order, so the output is
 * stable. Run results are counted by result label ("success", "partial", "failed",
 * "interrupted"); every result label is always rendered (0 included) so rate() and alert
 * expressions see the series from the start.
 */
#include "sched/metrics.h"
#include "common/error.h"
#include "sched/notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define METRICS_MAX_SERIES 4096

static const char *const results[] = {"success", "partial", "failed", "interrupted"};

typedef struct mrepo_bytes {
    char *repo;
    uint64_t total;
} mrepo_bytes_t;

typedef struct mjob {
    char *name;
    bool is_copy, running;
    int64_t last_run_s, last_success_s, next_run_s;
    double duration_s;
    int last_exit;
    bool has_run;
    uint64_t runs[4];
    mrepo_bytes_t *bytes;
    size_t n_bytes;
} mjob_t;

typedef struct mrepo {
    char *name;
    uint64_t stored, snapshots;
} mrepo_t;

struct metrics {
    pthread_mutex_t lock;
    mjob_t *jobs;
    size_t n_jobs;
    mrepo_t *repos;
    size_t n_repos;
};

metrics_t *metrics_new(void)
{
    metrics_t *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

void metrics_free(metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_jobs; i++) {
        free(m->jobs[i].name);
        for (size_t k = 0; k < m->jobs[i].n_bytes; k++)
            free(m->jobs[i].bytes[k].repo);
        free(m->jobs[i].bytes);
    }
    free(m->jobs);
    for (size_t i = 0; i < m->n_repos; i++)
        free(m->repos[i].name);
    free(m->repos);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Find or add (lock held). */
static mjob_t *job_get(metrics_t *m, const char *name, bool is_copy)
{
    for (size_t i = 0; i < m->n_jobs; i++)
        if (m->jobs[i].is_copy == is_copy && !strcmp(m->jobs[i].name, name))
            return &m->jobs[i];
    if (m->n_jobs >= METRICS_MAX_SERIES)
        return NULL;
    mjob_t *nj = realloc(m->jobs, (m->n_jobs + 1) * sizeof *nj);
    if (!nj)
        return NULL;
    m->jobs = nj;
    mjob_t *j = &m->jobs[m->n_jobs];
    memset(j, 0, sizeof *j);
    if (!(j->name = strdup(name)))
        return NULL;
    j->is_copy = is_copy;
    m->n_jobs++;
    return j;
}

int metrics_declare(metrics_t *m, const char *name, bool is_copy, int64_t next_run_s)
{
    pthread_mutex_lock(&m->lock);
    mjob_t *j = job_get(m, name, is_copy);
    if (j)
        j->next_run_s = next_run_s;
    pthread_mutex_unlock(&m->lock);
    return j ? 0 : err_set(COFFER_ENOMEM, "out of memory (metrics)");
}

void metrics_set_running(metrics_t *m, const char *name, bool running)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_jobs; i++)
        if (!strcmp(m->jobs[i].name, name))
            m->jobs[i].running = running;
    pthread_mutex_unlock(&m->lock);
}

void metrics_seed_last_success(metrics_t *m, const char *name, bool is_copy, int64_t t_s)
{
    pthread_mutex_lock(&m->lock);
    mjob_t *j = job_get(m, name, is_copy);
    if (j && t_s > j->last_success_s)
        j->last_success_s = t_s;
    pthread_mutex_unlock(&m->lock);
}

int metrics_record(metrics_t *m, const job_result_t *r, bool is_copy)
{
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    mjob_t *j = job_get(m, r->job, is_copy);
    if (!j) {
        rc = err_set(COFFER_ENOMEM, "out of memory (metrics)");
        goto out;
    }
    j->has_run = true;
    j->last_run_s = r->end_ns / 1000000000;
    j->duration_s = r->duration_s;
    j->last_exit = r->exit_code;
    /* partial counts as a success for the missed-backup alarm: the snapshot exists */
    if (r->exit_code == 0 || r->exit_code == 3)
        j->last_success_s = j->last_run_s;
    for (int i = 0; i < 4; i++)
        if (!strcmp(r->status, results[i]))
            j->runs[i]++;
    for (size_t t = 0; t < r->n_targets; t++) {
        mrepo_bytes_t *b = NULL;
        for (size_t k = 0; k < j->n_bytes && !b; k++)
            if (!strcmp(j->bytes[k].repo, r->targets[t].repo))
                b = &j->bytes[k];
        if (!b) {
            mrepo_bytes_t *nb = realloc(j->bytes, (j->n_bytes + 1) * sizeof *nb);
            if (!nb) {
                rc = err_set(COFFER_ENOMEM, "out of memory (metrics)");
                goto out;
            }
            j->bytes = nb;
            b = &j->bytes[j->n_bytes];
            if (!(b->repo = strdup(r->targets[t].repo))) {
                rc = err_set(COFFER_ENOMEM, "out of memory (metrics)");
                goto out;
            }
            b->total = 0;
            j->n_bytes++;
        }
        b->total += r->targets[t].bytes_added;
    }
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int metrics_set_repo(metrics_t *m, const char *repo, uint64_t stored, uint64_t snapshots)
{
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    mrepo_t *r = NULL;
    for (size_t i = 0; i < m->n_repos && !r; i++)
        if (!strcmp(m->repos[i].name, repo))
            r = &m->repos[i];
    if (!r) {
        mrepo_t *nr = realloc(m->repos, (m->n_repos + 1) * sizeof *nr);
        if (nr) {
            m->repos = nr;
            r = &m->repos[m->n_repos];
            if ((r->name = strdup(repo)))
                m->n_repos++;
            else
                r = NULL;
        }
    }
    if (r) {
        r->stored = stored;
        r->snapshots = snapshots;
    } else {
        rc = err_set(COFFER_ENOMEM, "out of memory (metrics)");
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int esc(buf_t *o, const char *s)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        if (*s == '\\')
            rc = buf_append_str(o, "\\\\");
        else if (*s == '"')
            rc = buf_append_str(o, "\\\"");
        else if (*s == '\n')
            rc = buf_append_str(o, "\\n");
        else
            rc = buf_append(o, s, 1);
    }
    return rc;
}

static int head(buf_t *o, const char *name, const char *type, const char *help)
{
    return buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{label="value"[,extra]} */
static int sample_start(buf_t *o, const char *name, const char *label, const char *value)
{
    int rc = buf_printf(o, "%s{%s=\"", name, label);
    if (!rc)
        rc = esc(o, value);
    return rc ? rc : buf_append_str(o, "\"");
}

typedef enum { F_LAST_RUN, F_LAST_SUCCESS, F_DURATION, F_EXIT, F_RUNNING, F_NEXT } field_t;

static int gauge_family(buf_t *o, metrics_t *m, const char *only, bool copy, const char *name,
                        const char *help, field_t f)
{
    bool any = false;
    int rc = 0;
    for (size_t i = 0; i < m->n_jobs && !rc; i++) {
        const mjob_t *j = &m->jobs[i];
        if (j->is_copy != copy || (only && strcmp(only, j->name)))
            continue;
        if ((f == F_LAST_RUN || f == F_DURATION || f == F_EXIT) && !j->has_run)
            continue;
        if (f == F_LAST_SUCCESS && !j->last_success_s)
            continue;
        if (f == F_NEXT && !j->next_run_s)
            continue;
        if (!any && (rc = head(o, name, "gauge", help)))
            break;
        any = true;
        rc = sample_start(o, name, copy ? "task" : "job", j->name);
        if (rc)
            break;
        switch (f) {
        case F_LAST_RUN:
            rc = buf_printf(o, "} %lld\n", (long long)j->last_run_s);
            break;
        case F_LAST_SUCCESS:
            rc = buf_printf(o, "} %lld\n", (long long)j->last_success_s);
            break;
        case F_DURATION:
            rc = buf_printf(o, "} %.3f\n", j->duration_s);
            break;
        case F_EXIT:
            rc = buf_printf(o, "} %d\n", j->last_exit);
            break;
        case F_RUNNING:
            rc = buf_printf(o, "} %d\n", j->running ? 1 : 0);
            break;
        case F_NEXT:
            rc = buf_printf(o, "} %lld\n", (long long)j->next_run_s);
            break;
        }
    }
    return rc;
}

static int runs_family(buf_t *o, metrics_t *m, const char *only, bool copy)
{
    const char *name = copy ? "coffer_copy_runs_total" : "coffer_job_runs_total";
    bool any = false;
    int rc = 0;
    for (size_t i = 0; i < m->n_jobs && !rc; i++) {
        const mjob_t *j = &m->jobs[i];
        if (j->is_copy != copy || (only && strcmp(only, j->name)))
            continue;
        if (!any)
            rc = head(o, name, "counter",
                      copy ? "Copy task runs by result."
                           : "Job runs by result (success, "
                             "partial, failed, interrupted).");
        any = true;
        for (int k = 0; k < 4 && !rc; k++) {
            rc = sample_start(o, name, copy ? "task" : "job", j->name);
            if (!rc)
                rc = buf_printf(o, ",result=\"%s\"} %llu\n", results[k],
                                (unsigned long long)j->runs[k]);
        }
    }
    return rc;
}

int metrics_render(metrics_t *m, const char *only, buf_t *o)
{
    buf_reset(o);
    pthread_mutex_lock(&m->lock);
    int rc = head(o, "coffer_up", "gauge", "1 while coffer is running and serving metrics.");
    if (!rc)
        rc = buf_append_str(o, "coffer_up 1\n");
    if (!rc)
        rc = head(o, "coffer_build_info", "gauge", "Always 1; the version is a label.");
    if (!rc)
        rc = buf_printf(o, "coffer_build_info{version=\"%s\"} 1\n", COFFER_VERSION_STR);
    for (int copy = 0; copy < 2 && !rc; copy++) {
        const char *p = copy ? "coffer_copy_" : "coffer_job_";
        char n1[64], n2[64], n3[64], n4[64], n5[64], n6[64];
        snprintf(n1, sizeof n1, "%slast_run_timestamp_seconds", p);
        snprintf(n2, sizeof n2, "%slast_success_timestamp_seconds", p);
        snprintf(n3, sizeof n3, "%sduration_seconds", p);
        snprintf(n4, sizeof n4, "%slast_exit_code", p);
        snprintf(n5, sizeof n5, "%srunning", p);
        snprintf(n6, sizeof n6, "%snext_run_timestamp_seconds", p);
        if (!(rc = gauge_family(o, m, only, copy, n1, "Unix time the last run ended.",
                                F_LAST_RUN)) &&
            !(rc = gauge_family(o, m, only, copy, n2,
                                "Unix time the last successful (or partial) run ended.",
                                F_LAST_SUCCESS)) &&
            !(rc = gauge_family(o, m, only, copy, n3, "How long the last run took.", F_DURATION)) &&
            !(rc = gauge_family(o, m, only, copy, n4,
                                "Exit code of the last run (0 ok, 3 partial, 1 failed...).",
                                F_EXIT)) &&
            !(rc =
                  gauge_family(o, m, only, copy, n5, "1 while a run is in progress.", F_RUNNING)) &&
            !(rc = gauge_family(o, m, only, copy, n6, "Unix time of the next scheduled run.",
                                F_NEXT)))
            rc = runs_family(o, m, only, copy);
    }
    bool any = false;
    for (size_t i = 0; i < m->n_jobs && !rc; i++) {
        const mjob_t *j = &m->jobs[i];
        if (j->is_copy || (only && strcmp(only, j->name)))
            continue;
        for (size_t k = 0; k < j->n_bytes && !rc; k++) {
            if (!any)
                rc = head(o, "coffer_backup_bytes_added_total", "counter",
                          "New bytes (after deduplication, before compression) added by "
                          "backups, per job and repository.");
            any = true;
            if (!rc)
                rc = sample_start(o, "coffer_backup_bytes_added_total", "job", j->name);
            if (!rc)
                rc = buf_append_str(o, ",repository=\"");
            if (!rc)
                rc = esc(o, j->bytes[k].repo);
            if (!rc)
                rc = buf_printf(o, "\"} %llu\n", (unsigned long long)j->bytes[k].total);
        }
    }
    if (!only && m->n_repos && !rc) {
        rc = head(o, "coffer_repository_size_bytes", "gauge",
                  "Bytes stored in the repository's packs (coffer stats).");
        for (size_t i = 0; i < m->n_repos && !rc; i++) {
            rc = sample_start(o, "coffer_repository_size_bytes", "repository", m->repos[i].name);
            if (!rc)
                rc = buf_printf(o, "} %llu\n", (unsigned long long)m->repos[i].stored);
        }
        if (!rc)
            rc = head(o, "coffer_repository_snapshots", "gauge", "Snapshots in the repository.");
        for (size_t i = 0; i < m->n_repos && !rc; i++) {
            rc = sample_start(o, "coffer_repository_snapshots", "repository", m->repos[i].name);
            if (!rc)
                rc = buf_printf(o, "} %llu\n", (unsigned long long)m->repos[i].snapshots);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int textfile_path(const char *dir, const char *name, char *out, size_t n)
{
    int w = snprintf(out, n, "%s/coffer-%s.prom", dir, name);
    if (w < 0 || (size_t)w >= n)
        return err_set(COFFER_ELIMIT, "textfile path under %s is too long", dir);
    return 0;
}

int metrics_write_textfile(const char *dir, const char *name, const char *text)
{
    char path[4096], tmp[4200];
    int rc = textfile_path(dir, name, path, sizeof path);
    if (rc)
        return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_errno("cannot write the metrics textfile %s (does the directory exist?)", tmp);
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = err_errno("cannot write the metrics textfile %s", tmp);
            break;
        }
        off += (size_t)w;
    }
    if (!rc && fsync(fd))
        rc = err_errno("cannot sync the metrics textfile %s", tmp);
    close(fd);
    if (!rc && rename(tmp, path))
        rc = err_errno("cannot rename %s to %s", tmp, path);
    if (rc)
        unlink(tmp);
    return rc;
}

int64_t metrics_textfile_last_success(const char *dir, const char *name)
{
    char path[4096];
    if (textfile_path(dir, name, path, sizeof path))
        return 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[1024];
    int64_t t = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "coffer_job_last_success_timestamp_seconds{", 42))
            continue;
        const char *sp = strrchr(line, ' ');
        if (sp)
            t = strtoll(sp + 1, NULL, 10);
    }
    fclose(f);
    return t;
}

static size_t sink(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

int metrics_push(const char *base, const char *name, const char *text, int timeout_s)
{
    notify_global_init();
    CURL *c = curl_easy_init();
    if (!c)
        return err_set(COFFER_ENOMEM, "cannot start libcurl");
    char *ename = curl_easy_escape(c, name, 0);
    char *url = NULL;
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    int rc = 0;
    if (!ename || asprintf(&url, "%.*s/metrics/job/%s", (int)bl, base, ename) < 0) {
        url = NULL;
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: text/plain; version=0.0.4");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    CURLcode cr = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    if (cr != CURLE_OK)
        rc = err_set(COFFER_EIO, "cannot push metrics to %s: %s", url, curl_easy_strerror(cr));
    else if (status < 200 || status >= 300)
        rc = err_set(COFFER_EIO, "the Pushgateway at %s answered HTTP %ld", url, status);
out:
    curl_free(ename);
    free(url);
    curl_easy_cleanup(c);
    return rc;
}
