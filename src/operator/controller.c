/*
 * controller.c -- the operator's main loop: watches, work queue, leader election, reconcile,
 * metrics (controller.h).
 *
 * Layer: operator. Invariants: the queue holds each (kind, namespace, name) at most once; only
 * the worker thread touches the worker's client and the Lease; watch threads share nothing
 * with it but the queue (mutex + condition variable) and the counters (atomics).
 */
#include "operator/controller.h"

#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "k8s/client.h"
#include "k8s/kubeconfig.h"
#include "k8s/watch.h"
#include "operator/kube.h"
#include "operator/lease.h"
#include "operator/reconcile.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { K_REPO, K_SCHED, K_BACKUP, K_RESTORE, K_JOB, K_N };
static const char *const kind_names[K_N] = {"Repository", "BackupSchedule", "Backup", "Restore",
                                            "Job"};
#define QUEUE_MAX 65536

typedef struct qitem {
    int kind;
    char *ns, *name;
} qitem_t;

typedef struct ctl {
    const op_opts_t *o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qitem_t *q;
    size_t n, cap;
    _Atomic uint64_t events[K_N];
    _Atomic uint64_t reconciles_ok[K_N], reconciles_err[K_N];
    atomic_int leader;
    _Atomic int64_t last_loop; /* monotonic ns: /healthz fails when the worker is stuck */
} ctl_t;

static void enqueue(ctl_t *c, int kind, const char *ns, const char *name)
{
    if (!ns || !name)
        return;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++)
        if (c->q[i].kind == kind && !strcmp(c->q[i].ns, ns) && !strcmp(c->q[i].name, name))
            goto out;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        qitem_t *nq = nc <= QUEUE_MAX ? realloc(c->q, nc * sizeof *nq) : NULL;
        if (!nq) {
            log_warn("work queue full: %s/%s waits for the next resync", ns, name);
            goto out;
        }
        c->q = nq;
        c->cap = nc;
    }
    c->q[c->n].kind = kind;
    c->q[c->n].ns = strdup(ns);
    c->q[c->n].name = strdup(name);
    if (c->q[c->n].ns && c->q[c->n].name)
        c->n++;
    pthread_cond_signal(&c->cv);
out:
    pthread_mutex_unlock(&c->mu);
}

static void enqueue_obj(ctl_t *c, int kind, const json_t *obj)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    if (kind == K_JOB) {
        /* a Job stands for the resource that made it */
        const json_t *l = json_object_get(md, "labels");
        const char *ok = json_string_value(json_object_get(l, "coffer.dev/owner-kind"));
        const char *on = json_string_value(json_object_get(l, "coffer.dev/owner-name"));
        for (int k = 0; ok && k < K_JOB; k++)
            if (!strcmp(ok, kind_names[k]))
                enqueue(c, k, ns, on);
        return;
    }
    enqueue(c, kind, ns, json_string_value(json_object_get(md, "name")));
}

/* ---- watch threads ---- */

typedef struct watcher {
    ctl_t *c;
    int kind;
    const k8s_res_t *res;
} watcher_t;

static int on_event(k8s_event_t ev, json_t *obj, void *ud)
{
    watcher_t *w = ud;
    if (w->c->o->stop && *w->c->o->stop)
        return 1;
    if (ev == K8S_EV_BOOKMARK || ev == K8S_EV_RELIST || !obj)
        return 0;
    atomic_fetch_add(&w->c->events[w->kind], 1);
    enqueue_obj(w->c, w->kind, obj);
    return 0;
}

static int new_client(const op_opts_t *o, k8s_client_t **out)
{
    k8s_config_t cfg;
    int rc = k8s_config_auto(o->kubeconfig, o->context, &cfg);
    if (rc)
        return rc;
    return k8s_client_new(&cfg, out);
}

static void *watch_thread(void *arg)
{
    watcher_t *w = arg;
    const op_opts_t *o = w->c->o;
    while (!(o->stop && *o->stop)) {
        k8s_client_t *kc = NULL;
        int rc = new_client(o, &kc);
        if (!rc) {
            k8s_watch_opts_t wo = {.bookmarks = true, .timeout_s = 60};
            if (w->kind == K_JOB)
                wo.label_selector = "app.kubernetes.io/managed-by=coffer-operator";
            rc = k8s_watch(kc, w->res, o->namespace, &wo, on_event, w);
        }
        if (rc && !(o->stop && *o->stop))
            log_warn("watch of %s failed (retrying in 5 s): %s", kind_names[w->kind], err_msg());
        err_clear();
        k8s_client_free(kc);
        for (int i = 0; i < 50 && !(o->stop && *o->stop); i++)
            usleep(100000);
    }
    return NULL;
}

/* ---- metrics ---- */

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_size, void **ptr)
{
    ctl_t *c = cls;
    buf_t b;
    buf_init(&b);
    unsigned status = MHD_HTTP_OK;
    const char *type = "text/plain; version=0.0.4; charset=utf-8";
    if (strcmp(method, "GET") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        buf_printf(&b, "GET only\n");
    } else if (!strcmp(url, "/healthz")) {
        int64_t age = time_monotonic_ns() - atomic_load(&c->last_loop);
        bool ok = age < 60ll * 1000000000;
        status = ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        buf_printf(&b, ok ? "ok\n" : "the worker has not looped for %lld s\n",
                   (long long)(age / 1000000000));
    } else if (!strcmp(url, "/metrics")) {
        buf_printf(&b,
                   "# HELP coffer_operator_leader 1 when this replica holds the lease.\n"
                   "# TYPE coffer_operator_leader gauge\ncoffer_operator_leader %d\n",
                   atomic_load(&c->leader));
        buf_printf(&b, "# HELP coffer_operator_watch_events_total Watch events received.\n"
                       "# TYPE coffer_operator_watch_events_total counter\n");
        for (int k = 0; k < K_N; k++)
            buf_printf(&b, "coffer_operator_watch_events_total{kind=\"%s\"} %llu\n", kind_names[k],
                       (unsigned long long)atomic_load(&c->events[k]));
        buf_printf(&b, "# HELP coffer_operator_reconciles_total Reconciliations by result.\n"
                       "# TYPE coffer_operator_reconciles_total counter\n");
        for (int k = 0; k < K_JOB; k++) {
            buf_printf(&b, "coffer_operator_reconciles_total{kind=\"%s\",result=\"ok\"} %llu\n",
                       kind_names[k], (unsigned long long)atomic_load(&c->reconciles_ok[k]));
            buf_printf(&b, "coffer_operator_reconciles_total{kind=\"%s\",result=\"error\"} %llu\n",
                       kind_names[k], (unsigned long long)atomic_load(&c->reconciles_err[k]));
        }
        pthread_mutex_lock(&c->mu);
        size_t depth = c->n;
        pthread_mutex_unlock(&c->mu);
        buf_printf(&b,
                   "# HELP coffer_operator_queue_depth Objects waiting to be reconciled.\n"
                   "# TYPE coffer_operator_queue_depth gauge\ncoffer_operator_queue_depth %zu\n",
                   depth);
    } else {
        status = MHD_HTTP_NOT_FOUND;
        buf_printf(&b, "not found: try /metrics or /healthz\n");
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b.len, b.data ? b.data : (void *)"", MHD_RESPMEM_MUST_COPY);
    buf_release(&b);
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int start_http(ctl_t *c, const char *addr, struct MHD_Daemon **out)
{
    char host[128];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon - addr >= (long)sizeof host)
        return err_set(COFFER_EINVAL, "--metrics-addr \"%s\": expected HOST:PORT", addr);
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    int port = atoi(colon + 1);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (!*host || !strcmp(host, "*") || !strcmp(host, "0.0.0.0"))
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return err_set(COFFER_EINVAL, "--metrics-addr \"%s\": the host must be an IPv4 address",
                       addr);
    *out = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
                            NULL, NULL, http_handler, c, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!*out)
        return err_set(COFFER_EIO, "cannot serve metrics on %s (address in use?)", addr);
    return 0;
}

/* ---- the worker ---- */

static int list_cb(json_t *item, void *ud)
{
    void **a = ud;
    enqueue_obj(a[0], *(int *)a[1], item);
    return 0;
}

/* Objects the operator made whose owner is gone: a real cluster's garbage collector removes
 * them through their owner references, but an owner deleted while no operator ran, or a
 * finalizer bypassed, must not leave a CronJob firing. */
typedef struct orphan_ctx {
    k8s_client_t *kc;
    const k8s_res_t *child;
    json_t *doomed; /* [[ns, name], ...] */
} orphan_ctx_t;

static int orphan_cb(json_t *item, void *ud)
{
    orphan_ctx_t *o = ud;
    const json_t *md = json_object_get(item, "metadata");
    const json_t *l = json_object_get(md, "labels");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *ok = json_string_value(json_object_get(l, "coffer.dev/owner-kind"));
    const char *on = json_string_value(json_object_get(l, "coffer.dev/owner-name"));
    const k8s_res_t *owner = !ok                             ? NULL
                             : !strcmp(ok, "BackupSchedule") ? &OP_RES_SCHEDULE
                             : !strcmp(ok, "Backup")         ? &OP_RES_BACKUP
                             : !strcmp(ok, "Restore")        ? &OP_RES_RESTORE
                                                             : NULL;
    if (!owner || !ns || !on)
        return 0;
    json_t *got = NULL;
    int rc = k8s_get(o->kc, owner, ns, on, &got);
    json_decref(got);
    if (rc == COFFER_ENOENT)
        json_array_append_new(
            o->doomed, json_pack("[s, s]", ns, json_string_value(json_object_get(md, "name"))));
    err_clear();
    return 0;
}

static void collect_orphans(ctl_t *c, k8s_client_t *kc)
{
    static const k8s_res_t *const kinds[] = {&OP_RES_CRONJOB, &OP_RES_JOB, &OP_RES_CONFIGMAP};
    k8s_list_opts_t lo = {.label_selector = "app.kubernetes.io/managed-by=coffer-operator"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        orphan_ctx_t o = {.kc = kc, .child = kinds[k], .doomed = json_array()};
        if (k8s_list(kc, kinds[k], c->o->namespace, &lo, orphan_cb, &o, NULL)) {
            log_warn("listing %s for orphans failed: %s", kinds[k]->resource, err_msg());
            err_clear();
        }
        size_t i;
        json_t *d;
        json_array_foreach(o.doomed, i, d)
        {
            const char *ns = json_string_value(json_array_get(d, 0));
            const char *name = json_string_value(json_array_get(d, 1));
            if (op_delete_quiet(kc, kinds[k], ns, name))
                log_warn("could not delete orphaned %s %s/%s: %s", kinds[k]->resource, ns, name,
                         err_msg());
            else
                log_info("deleted orphaned %s %s/%s (its owner is gone)", kinds[k]->resource, ns,
                         name);
            err_clear();
        }
        json_decref(o.doomed);
    }
}

static void resync_all(ctl_t *c, k8s_client_t *kc)
{
    collect_orphans(c, kc);
    static const k8s_res_t *const res[] = {&OP_RES_REPOSITORY, &OP_RES_SCHEDULE, &OP_RES_BACKUP,
                                           &OP_RES_RESTORE};
    for (int k = 0; k < K_JOB; k++) {
        void *a[2] = {c, &k};
        if (k8s_list(kc, res[k], c->o->namespace, NULL, list_cb, a, NULL)) {
            log_warn("resync of %s failed: %s", kind_names[k], err_msg());
            err_clear();
        }
    }
}

static void reconcile_one(ctl_t *c, op_ctx_t *x, const qitem_t *it, bool resync)
{
    int rc;
    switch (it->kind) {
    case K_REPO:
        rc = op_reconcile_repository(x, it->ns, it->name, false);
        break;
    case K_SCHED:
        rc = op_reconcile_schedule(x, it->ns, it->name);
        break;
    case K_BACKUP:
        rc = op_reconcile_backup(x, it->ns, it->name);
        break;
    default:
        rc = op_reconcile_restore(x, it->ns, it->name);
        break;
    }
    (void)resync;
    if (rc) {
        atomic_fetch_add(&c->reconciles_err[it->kind], 1);
        log_warn("reconcile of %s %s/%s failed (retried at the next resync): %s",
                 kind_names[it->kind], it->ns, it->name, err_msg());
        err_clear();
    } else {
        atomic_fetch_add(&c->reconciles_ok[it->kind], 1);
    }
}

/* The watch threads may still be inside a stream when operator_run returns (the process then
 * exits), so what they touch lives in static storage, never on this stack. */
static ctl_t g_ctl;
static watcher_t g_watchers[K_N];

int operator_run(const op_opts_t *o)
{
    ctl_t *c = &g_ctl;
    c->o = o;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    atomic_store(&c->last_loop, time_monotonic_ns());
    k8s_client_t *kc = NULL;
    struct MHD_Daemon *http = NULL;
    char ident[256];
    int rc = new_client(o, &kc);
    if (rc)
        return err_ctx(rc, "the operator cannot reach the Kubernetes API");
    const char *lease_ns = o->lease_namespace ? o->lease_namespace
                           : o->namespace     ? o->namespace
                                              : k8s_client_config(kc)->namespace;
    if (o->identity) {
        snprintf(ident, sizeof ident, "%s", o->identity);
    } else {
        char host[128] = "";
        gethostname(host, sizeof host - 1);
        snprintf(ident, sizeof ident, "%s_%ld", getenv("POD_NAME") ? getenv("POD_NAME") : host,
                 (long)getpid());
    }
    op_lease_t lease = {.ns = lease_ns ? lease_ns : "default",
                        .name = o->lease_name ? o->lease_name : "coffer-operator",
                        .identity = ident,
                        .duration_s = o->lease_duration_s > 0 ? o->lease_duration_s : 15};
    op_ctx_t x = {.c = kc,
                  .render = o->render,
                  .coffer_bin = o->coffer_bin,
                  .default_deadline_s =
                      o->default_deadline_s > 0 ? o->default_deadline_s : 6 * 3600,
                  .watchdog_grace_s = o->watchdog_grace_s > 0 ? o->watchdog_grace_s : 60};
    if (o->metrics_addr && (rc = start_http(c, o->metrics_addr, &http)))
        goto out;
    static const k8s_res_t *const wres[K_N] = {&OP_RES_REPOSITORY, &OP_RES_SCHEDULE, &OP_RES_BACKUP,
                                               &OP_RES_RESTORE, &OP_RES_JOB};
    for (int k = 0; k < K_N; k++) {
        g_watchers[k] = (watcher_t){.c = c, .kind = k, .res = wres[k]};
        pthread_t t;
        if (pthread_create(&t, NULL, watch_thread, &g_watchers[k]) == 0)
            pthread_detach(t);
    }
    log_info("operator %s watching %s (lease %s/%s)", ident,
             o->namespace ? o->namespace : "all namespaces", lease.ns, lease.name);
    int resync = o->resync_s > 0 ? o->resync_s : 30;
    int64_t next_lease = 0, next_resync = 0;
    while (!(o->stop && *o->stop)) {
        int64_t now = time_monotonic_ns();
        atomic_store(&c->last_loop, now);
        if (now >= next_lease) {
            bool was = lease.leader;
            if (op_lease_tick(kc, &lease)) {
                log_warn("lease: %s", err_msg());
                err_clear();
            }
            atomic_store(&c->leader, lease.leader);
            next_lease = now + (int64_t)lease.duration_s * 1000000000 / 3;
            if (lease.leader && !was)
                next_resync = 0;
        }
        if (lease.leader) {
            bool full = now >= next_resync;
            if (full) {
                resync_all(c, kc);
                next_resync = now + (int64_t)resync * 1000000000;
            }
            for (;;) {
                pthread_mutex_lock(&c->mu);
                qitem_t it = {0};
                bool have = c->n > 0;
                if (have) {
                    it = c->q[0];
                    memmove(c->q, c->q + 1, (c->n - 1) * sizeof *c->q);
                    c->n--;
                }
                pthread_mutex_unlock(&c->mu);
                if (!have || (o->stop && *o->stop)) {
                    free(it.ns);
                    free(it.name);
                    break;
                }
                reconcile_one(c, &x, &it, full);
                free(it.ns);
                free(it.name);
                if (time_monotonic_ns() >= next_lease)
                    break; /* renew the lease between items */
            }
        }
        pthread_mutex_lock(&c->mu);
        if (c->n == 0 && !(o->stop && *o->stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        pthread_mutex_unlock(&c->mu);
    }
    op_lease_release(kc, &lease);
    log_info("operator stopped");
out:
    if (http)
        MHD_stop_daemon(http);
    k8s_client_free(kc);
    /* watch threads are detached and end with the process; the queue is left to them */
    return rc;
}
