/*
 * sched.c -- scheduler core, state file and the `coffer run` daemon (contract in sched.h).
 *
 * Layer: sched. The daemon's main thread owns the core and the state; each run happens in a
 * thread of its own (job_run, or a `coffer copy` child) that holds a reference to the config
 * it started with, so a reload (SIGHUP) never pulls the config from under a running job.
 * Finished runs are handed back through a queue under the daemon mutex; the main thread
 * wakes on a condition variable or at least once a second to notice signals.
 * /metrics and /healthz are served by libmicrohttpd's own thread from the metrics store.
 */
#include "sched/sched.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "sched/job.h"
#include "sched/metrics.h"
#include "sched/notify.h"
#include "sched/proc.h"
#include "sched/report.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- state file ---------------------------------------------------------------------- */

sched_state_entry_t *sched_state_get(sched_state_t *st, const char *name, bool is_copy, bool create)
{
    for (size_t i = 0; i < st->n; i++)
        if (st->e[i].is_copy == is_copy && !strcmp(st->e[i].name, name))
            return &st->e[i];
    if (!create)
        return NULL;
    sched_state_entry_t *ne = realloc(st->e, (st->n + 1) * sizeof *ne);
    if (!ne)
        return NULL;
    st->e = ne;
    sched_state_entry_t *e = &st->e[st->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return NULL;
    e->is_copy = is_copy;
    st->n++;
    return e;
}

void sched_state_release(sched_state_t *st)
{
    for (size_t i = 0; i < st->n; i++)
        free(st->e[i].name);
    free(st->e);
    st->e = NULL;
    st->n = 0;
}

int sched_state_load(const char *path, sched_state_t *out)
{
    sched_state_t st = {0};
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        if (access(path, F_OK) != 0 && errno == ENOENT) {
            *out = st;
            return 0;
        }
        return err_set(COFFER_ECORRUPT,
                       "state file %s is not valid JSON (%s); move it away to start afresh", path,
                       je.text);
    }
    for (int copy = 0; copy < 2; copy++) {
        json_t *obj = json_object_get(root, copy ? "copies" : "jobs");
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v)
        {
            sched_state_entry_t *e = sched_state_get(&st, key, copy, true);
            if (!e) {
                json_decref(root);
                sched_state_release(&st);
                return err_set(COFFER_ENOMEM, "out of memory");
            }
            e->last_run_s = json_integer_value(json_object_get(v, "last_run"));
            e->last_success_s = json_integer_value(json_object_get(v, "last_success"));
        }
    }
    json_decref(root);
    *out = st;
    return 0;
}

int sched_state_save(const char *path, const sched_state_t *st)
{
    json_t *root = json_object(), *jobs = json_object(), *copies = json_object();
    json_object_set_new(root, "jobs", jobs);
    json_object_set_new(root, "copies", copies);
    for (size_t i = 0; i < st->n; i++)
        json_object_set_new(st->e[i].is_copy ? copies : jobs, st->e[i].name,
                            json_pack("{s:I,s:I}", "last_run", (json_int_t)st->e[i].last_run_s,
                                      "last_success", (json_int_t)st->e[i].last_success_s));
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int rc = 0;
    if (json_dump_file(root, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) != 0)
        rc = err_set(COFFER_EIO, "cannot write the state file %s (does its directory exist?)", tmp);
    json_decref(root);
    if (!rc) {
        int fd = open(tmp, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
        if (rename(tmp, path))
            rc = err_errno("cannot rename %s to %s", tmp, path);
    }
    if (rc)
        unlink(tmp);
    return rc;
}

/* ---- core ------------------------------------------------------------------------------ */

/* The first slot strictly after t. */
static int64_t slot_after(const sched_task_t *t, int64_t after)
{
    if (!t->cron)
        return after + t->every_s;
    int64_t n;
    if (cron_next(t->cron, t->tz, after, &n))
        return INT64_MAX; /* never matches: the config check warned */
    return n;
}

int sched_core_init(sched_core_t *s, const cfg_t *c, int64_t now, sched_state_t *st,
                    bool (*here)(char *const *names, size_t n))
{
    memset(s, 0, sizeof *s);
    s->max_concurrent = c->server.max_concurrent > 0 ? c->server.max_concurrent : 1;
    s->tasks = calloc(c->n_jobs + c->n_copies + 1, sizeof *s->tasks);
    if (!s->tasks)
        return err_set(COFFER_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->n_jobs + c->n_copies; i++) {
        bool copy = i >= c->n_jobs;
        const cfg_job_t *j = copy ? NULL : &c->jobs[i];
        const cfg_copy_t *k = copy ? &c->copies[i - c->n_jobs] : NULL;
        if (j && !j->has_schedule)
            continue;
        if (here && !(copy ? here(k->run_on, k->n_run_on) : here(j->run_on, j->n_run_on)))
            continue;
        sched_task_t *t = &s->tasks[s->n++];
        t->name = copy ? k->name : j->name;
        t->is_copy = copy;
        t->index = copy ? i - c->n_jobs : i;
        t->cron = copy ? (k->has_schedule ? &k->cron : NULL) : &j->cron;
        t->tz = copy ? k->timezone : j->timezone;
        t->every_s = copy ? k->every_s : 0;
        sched_state_entry_t *e = st ? sched_state_get(st, t->name, copy, false) : NULL;
        t->last_run_s = e ? e->last_run_s : 0;
        int64_t from_now = t->cron ? slot_after(t, now - 1) : now + t->every_s;
        if (t->last_run_s) {
            int64_t missed = slot_after(t, t->last_run_s);
            if (missed < now && missed < from_now) {
                if (c->server.run_missed) {
                    log_info("%s %s missed a run while coffer was down: running it now",
                             copy ? "copy task" : "job", t->name);
                    from_now = now;
                } else {
                    log_info("%s %s missed a run while coffer was down: skipped (missed: skip)",
                             copy ? "copy task" : "job", t->name);
                }
            }
        } else if (!t->cron) {
            from_now = now; /* an every-N task that never ran starts right away */
        }
        t->next_s = from_now;
    }
    return 0;
}

void sched_core_release(sched_core_t *s)
{
    free(s->tasks);
    memset(s, 0, sizeof *s);
}

ssize_t sched_core_take(sched_core_t *s, int64_t now)
{
    if (s->running >= s->max_concurrent)
        return -1;
    ssize_t best = -1;
    for (size_t i = 0; i < s->n; i++) {
        const sched_task_t *t = &s->tasks[i];
        if (t->running || t->next_s > now)
            continue;
        if (best < 0 || t->next_s < s->tasks[best].next_s)
            best = (ssize_t)i;
    }
    if (best < 0)
        return -1;
    sched_task_t *t = &s->tasks[best];
    t->running = true;
    t->last_run_s = now;
    t->next_s = slot_after(t, now);
    s->running++;
    return best;
}

void sched_core_done(sched_core_t *s, size_t i, int64_t now)
{
    if (i >= s->n || !s->tasks[i].running)
        return;
    sched_task_t *t = &s->tasks[i];
    t->running = false;
    s->running--;
    if (t->next_s <= now) {
        /* slots came due while it ran: skip them (never overlap, never catch up) */
        s->skipped++;
        log_warn("%s %s: a run was skipped because the previous one was still running",
                 t->is_copy ? "copy task" : "job", t->name);
        t->next_s = slot_after(t, now);
    }
}

int64_t sched_core_wakeup(const sched_core_t *s)
{
    int64_t w = INT64_MAX;
    for (size_t i = 0; i < s->n; i++)
        if (!s->tasks[i].running && s->tasks[i].next_s < w)
            w = s->tasks[i].next_s;
    return w;
}

ssize_t sched_core_find(const sched_core_t *s, const char *name, bool is_copy)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->tasks[i].is_copy == is_copy && !strcmp(s->tasks[i].name, name))
            return (ssize_t)i;
    return -1;
}

/* ---- daemon ---------------------------------------------------------------------------- */

typedef struct cfgref {
    cfg_t *cfg;
    int refs;
} cfgref_t;

typedef struct run {
    pthread_t tid;
    cfgref_t *cref;
    bool is_copy;
    size_t index;
    char *name;
    int64_t started_s;
    bool finished;
    job_result_t result;
    struct daemon *d;
    struct run *next;
} run_t;

typedef struct daemon {
    const sched_daemon_opts_t *o;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    run_t *runs; /* active and finished, not yet collected */
    metrics_t *metrics;
    int64_t fake_start, mono0;
    double speed;
} daemon_t;

static int64_t d_now(const daemon_t *d)
{
    int64_t el = time_monotonic_ns() - d->mono0;
    if (d->fake_start)
        return d->fake_start + (int64_t)((double)el * d->speed / 1e9);
    return time_now_ns() / 1000000000;
}

static void cref_put(daemon_t *d, cfgref_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&d->lock);
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&d->lock);
    if (last) {
        cfg_free(r->cfg);
        free(r);
    }
}

/* A copy task, run through job_run_copy with the daemon's options. */
static void run_copy(daemon_t *d, const cfg_t *c, const cfg_copy_t *k, job_result_t *r)
{
    job_opts_t o = {.exe = d->o->exe, .stop = d->o->stop, .quiet = d->o->quiet};
    job_run_copy(c, k, &o, r);
}

static void *run_thread(void *arg)
{
    run_t *run = arg;
    daemon_t *d = run->d;
    const cfg_t *c = run->cref->cfg;
    if (run->is_copy) {
        run_copy(d, c, &c->copies[run->index], &run->result);
    } else {
        job_opts_t jo = {.exe = d->o->exe,
                         .stop = d->o->stop,
                         .quiet = d->o->quiet,
                         .repo_stats = c->server.repo_stats};
        if (job_run(c, &c->jobs[run->index], &jo, &run->result)) {
            log_error("job %s could not run: %s", run->name, err_msg());
            run->result.exit_code = 1;
            run->result.status = "failed";
        }
    }
    if (run->result.job) {
        log_info("%s %s: %s (exit %d) in %.1f s", run->is_copy ? "copy task" : "job", run->name,
                 run->result.status, run->result.exit_code, run->result.duration_s);
        report_job(c, d->metrics, &run->result, run->is_copy);
    }
    pthread_mutex_lock(&d->lock);
    run->finished = true;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_size, void **ptr)
{
    daemon_t *d = cls;
    (void)version;
    (void)upload_data;
    (void)upload_size;
    (void)ptr;
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return MHD_NO;
    buf_t b;
    buf_init(&b);
    unsigned code = MHD_HTTP_OK;
    const char *ctype = "text/plain; charset=utf-8";
    if (!strcmp(url, "/metrics")) {
        if (metrics_render(d->metrics, NULL, &b)) {
            code = MHD_HTTP_INTERNAL_SERVER_ERROR;
            buf_reset(&b);
            buf_append_str(&b, "cannot render metrics\n");
        }
        ctype = "text/plain; version=0.0.4; charset=utf-8";
    } else if (!strcmp(url, "/healthz")) {
        buf_append_str(&b, "ok\n");
    } else {
        code = MHD_HTTP_NOT_FOUND;
        buf_append_str(&b, "not found: use /metrics or /healthz\n");
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        b.len, b.data ? b.data : (uint8_t *)"", MHD_RESPMEM_MUST_COPY);
    buf_release(&b);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int start_http(daemon_t *d, const char *listen, struct MHD_Daemon **out)
{
    const char *colon = strrchr(listen, ':');
    char host[128];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host)
        return err_set(COFFER_EINVAL, "listen address %s is too long", listen);
    memcpy(host, listen, hl);
    host[hl] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (*end || port < 1 || port > 65535 ||
        (hl && strcmp(host, "*") && inet_pton(AF_INET, host, &sa.sin_addr) != 1))
        return err_set(COFFER_EINVAL,
                       "server.listen \"%s\": expected IPV4:PORT such as 0.0.0.0:9100 or "
                       "127.0.0.1:9100",
                       listen);
    if (!hl || !strcmp(host, "*"))
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
    struct MHD_Daemon *m =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
                         NULL, http_handler, d, MHD_OPTION_SOCK_ADDR, &sa,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!m)
        return err_set(COFFER_EIO,
                       "cannot serve metrics on %s (address in use or not available); change "
                       "server.listen",
                       listen);
    *out = m;
    return 0;
}

static void declare_all(daemon_t *d, const sched_core_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        metrics_declare(d->metrics, s->tasks[i].name, s->tasks[i].is_copy,
                        s->tasks[i].running ? 0 : s->tasks[i].next_s);
}

static bool here_cb(char *const *names, size_t n)
{
    return report_run_on_here(names, n, NULL, 0);
}

/* Build a core for c, marking tasks that still run from an older config as running. */
static int core_for(daemon_t *d, const cfg_t *c, sched_state_t *st, sched_core_t *s)
{
    int rc = sched_core_init(s, c, d_now(d), st, here_cb);
    if (rc)
        return rc;
    for (run_t *r = d->runs; r; r = r->next) {
        ssize_t i = sched_core_find(s, r->name, r->is_copy);
        if (i >= 0 && !r->finished && !s->tasks[i].running) {
            s->tasks[i].running = true;
            s->running++;
        }
    }
    return 0;
}

int sched_daemon_run(const sched_daemon_opts_t *o)
{
    daemon_t d = {.o = o, .speed = 1.0};
    pthread_mutex_init(&d.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d.cond, &ca);
    pthread_condattr_destroy(&ca);
    d.mono0 = time_monotonic_ns();
    const char *fs = getenv("COFFER_SCHED_FAKE_START");
    if (fs && *fs) {
        d.fake_start = strtoll(fs, NULL, 10);
        const char *sp = getenv("COFFER_SCHED_SPEED");
        d.speed = sp ? strtod(sp, NULL) : 1.0;
        if (d.speed <= 0)
            d.speed = 1.0;
        log_warn("scheduler clock is simulated: starts at %lld, %.1fx real time",
                 (long long)d.fake_start, d.speed);
    }
    notify_global_init();
    sched_state_t st = {0};
    sched_core_t core = {0};
    struct MHD_Daemon *http = NULL;
    cfgref_t *cur = calloc(1, sizeof *cur);
    int rc = 0;
    if (!cur || !(d.metrics = metrics_new())) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    cur->refs = 1;
    if ((rc = cfg_load(o->config_path, &cur->cfg)))
        goto out;
    if (cur->cfg->server.state_file && (rc = sched_state_load(cur->cfg->server.state_file, &st)))
        goto out;
    for (size_t i = 0; i < st.n; i++)
        if (st.e[i].last_success_s)
            metrics_seed_last_success(d.metrics, st.e[i].name, st.e[i].is_copy,
                                      st.e[i].last_success_s);
    if (cur->cfg->server.listen && (rc = start_http(&d, cur->cfg->server.listen, &http)))
        goto out;
    if ((rc = core_for(&d, cur->cfg, &st, &core)))
        goto out;
    declare_all(&d, &core);
    log_info("coffer run: %zu scheduled task(s) on this host, at most %d at once%s%s", core.n,
             core.max_concurrent, http ? "; metrics on " : "", http ? cur->cfg->server.listen : "");
    pthread_mutex_lock(&d.lock);
    for (;;) {
        /* collect finished runs */
        for (run_t **pp = &d.runs; *pp;) {
            run_t *r = *pp;
            if (!r->finished) {
                pp = &r->next;
                continue;
            }
            *pp = r->next;
            pthread_mutex_unlock(&d.lock);
            pthread_join(r->tid, NULL);
            int64_t now = d_now(&d);
            ssize_t i = sched_core_find(&core, r->name, r->is_copy);
            if (i >= 0)
                sched_core_done(&core, (size_t)i, now);
            metrics_set_running(d.metrics, r->name, false);
            sched_state_entry_t *e = sched_state_get(&st, r->name, r->is_copy, true);
            if (e) {
                e->last_run_s = r->started_s;
                if (r->result.exit_code == 0 || r->result.exit_code == 3)
                    e->last_success_s = now;
            }
            if (cur->cfg->server.state_file && sched_state_save(cur->cfg->server.state_file, &st))
                log_warn("%s", err_msg());
            declare_all(&d, &core);
            job_result_release(&r->result);
            cref_put(&d, r->cref);
            free(r->name);
            free(r);
            pthread_mutex_lock(&d.lock);
            pp = &d.runs;
        }
        if (*o->stop)
            break;
        if (o->reload && *o->reload) {
            *o->reload = 0;
            pthread_mutex_unlock(&d.lock);
            cfg_t *nc = NULL;
            if (cfg_load(o->config_path, &nc)) {
                log_error("reload: the new configuration is not valid, keeping the old one: %s",
                          err_msg());
            } else {
                cfgref_t *ncr = calloc(1, sizeof *ncr);
                sched_core_t ncore;
                if (!ncr || core_for(&d, nc, &st, &ncore)) {
                    log_error("reload failed: out of memory; keeping the old configuration");
                    free(ncr);
                    cfg_free(nc);
                } else {
                    /* keep the schedule position of tasks that exist in both */
                    for (size_t i = 0; i < ncore.n; i++) {
                        ssize_t k =
                            sched_core_find(&core, ncore.tasks[i].name, ncore.tasks[i].is_copy);
                        if (k >= 0)
                            ncore.tasks[i].last_run_s = core.tasks[k].last_run_s;
                    }
                    sched_core_release(&core);
                    core = ncore;
                    ncr->cfg = nc;
                    ncr->refs = 1;
                    cref_put(&d, cur);
                    cur = ncr;
                    declare_all(&d, &core);
                    log_info("reload: configuration reloaded, %zu scheduled task(s)", core.n);
                }
            }
            pthread_mutex_lock(&d.lock);
            continue;
        }
        int64_t now = d_now(&d);
        ssize_t i;
        while ((i = sched_core_take(&core, now)) >= 0) {
            sched_task_t *t = &core.tasks[i];
            run_t *r = calloc(1, sizeof *r);
            if (!r || !(r->name = strdup(t->name))) {
                free(r);
                log_error("cannot start %s: out of memory", t->name);
                sched_core_done(&core, (size_t)i, now);
                break;
            }
            r->cref = cur;
            cur->refs++;
            r->is_copy = t->is_copy;
            r->index = t->index;
            r->started_s = now;
            r->d = &d;
            metrics_set_running(d.metrics, r->name, true);
            metrics_declare(d.metrics, r->name, r->is_copy, t->next_s);
            log_info("starting %s %s", t->is_copy ? "copy task" : "job", t->name);
            if (pthread_create(&r->tid, NULL, run_thread, r) != 0) {
                log_error("cannot start a thread for %s", t->name);
                cur->refs--;
                free(r->name);
                free(r);
                sched_core_done(&core, (size_t)i, now);
                break;
            }
            r->next = d.runs;
            d.runs = r;
        }
        /* sleep until the next slot (in scheduler time), at most 1 s (signals) */
        int64_t wake = sched_core_wakeup(&core);
        double wait_s = 1.0;
        if (wake != INT64_MAX && (double)(wake - now) / d.speed < wait_s)
            wait_s = (double)(wake - now) / d.speed;
        if (wait_s < 0.05)
            wait_s = 0.05;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (int64_t)(wait_s * 1e9);
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        bool pending = false;
        for (run_t *r = d.runs; r && !pending; r = r->next)
            pending = r->finished;
        if (!pending)
            pthread_cond_timedwait(&d.cond, &d.lock, &ts);
    }
    /* stop: the children saw *o->stop (SIGINT); wait for every run */
    if (d.runs)
        log_info("stopping: waiting for running jobs to checkpoint and exit");
    while (d.runs) {
        run_t *r = d.runs;
        d.runs = r->next;
        pthread_mutex_unlock(&d.lock);
        pthread_join(r->tid, NULL);
        sched_state_entry_t *e = sched_state_get(&st, r->name, r->is_copy, true);
        if (e)
            e->last_run_s = r->started_s;
        job_result_release(&r->result);
        cref_put(&d, r->cref);
        free(r->name);
        free(r);
        pthread_mutex_lock(&d.lock);
    }
    pthread_mutex_unlock(&d.lock);
    if (cur && cur->cfg && cur->cfg->server.state_file &&
        sched_state_save(cur->cfg->server.state_file, &st))
        log_warn("%s", err_msg());
    log_info("coffer run: stopped");
out:
    if (http)
        MHD_stop_daemon(http);
    sched_core_release(&core);
    sched_state_release(&st);
    if (cur) {
        cfg_free(cur->cfg);
        free(cur);
    }
    metrics_free(d.metrics);
    pthread_cond_destroy(&d.cond);
    pthread_mutex_destroy(&d.lock);
    return rc;
}
