/*
 * heartbeat.c -- background refresh of liveness objects (see heartbeat.h).
 *
 * Layer: repo. The thread waits on a condition variable with a timeout so stop is prompt.
 * A failed refresh is logged and retried at the next tick. Every refresh also checks that the
 * object still exists and that no gap between successful refreshes came near the stale
 * timeout; if either happened, a pruner may have judged the writer dead, and heartbeat_check
 * (called by writer_save_snapshot before the commit point) refuses the commit.
 */
#include "repo/heartbeat.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct heartbeat {
    storage_t *st;
    session_t *session;
    char name[128];
    uint8_t type;
    char payload[512];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    int64_t interval_ns;
    int64_t last_ok; /* monotonic time of the last successful write */
    bool broken;     /* liveness had a gap: see heartbeat_check */
    char why[160];
};

int64_t heartbeat_stale_ns(void)
{
    const char *e = getenv("COFFER_STALE_SECS");
    long v = e ? strtol(e, NULL, 10) : 0;
    if (v <= 0)
        v = 900;
    return (int64_t)v * 1000000000;
}

static int write_once(heartbeat_t *h, bool create_only)
{
    buf_t b;
    buf_init(&b);
    int rc = envelope_seal(h->session, h->type, NULL, h->payload, strlen(h->payload), false, &b);
    if (!rc) {
        storage_put_opts_t o = {.overwrite = !create_only, .sync = false};
        rc = storage_put(h->st, h->name, b.data, b.len, &o);
    }
    buf_release(&b);
    return rc;
}

/* Record a refresh attempt; caller holds h->mu. */
static void note_refresh(heartbeat_t *h, bool ok, bool gone)
{
    int64_t now = time_monotonic_ns();
    if (gone && !h->broken) {
        h->broken = true;
        snprintf(h->why, sizeof h->why, "%s disappeared while this writer was running", h->name);
    }
    if (!ok)
        return;
    if (now - h->last_ok > heartbeat_stale_ns() / 3 * 2 && !h->broken) {
        h->broken = true;
        snprintf(h->why, sizeof h->why, "%s was not refreshed for %lld s", h->name,
                 (long long)((now - h->last_ok) / 1000000000));
    }
    h->last_ok = now;
}

int heartbeat_check(heartbeat_t *h)
{
    if (!h)
        return 0;
    storage_stat_t st;
    bool gone = storage_stat(h->st, h->name, &st) == COFFER_ENOENT;
    err_clear();
    pthread_mutex_lock(&h->mu);
    note_refresh(h, false, gone);
    if (!h->broken && time_monotonic_ns() - h->last_ok > heartbeat_stale_ns() / 3 * 2) {
        h->broken = true;
        snprintf(h->why, sizeof h->why, "%s was not refreshed for too long", h->name);
    }
    bool broken = h->broken;
    char why[160];
    snprintf(why, sizeof why, "%s", h->why);
    pthread_mutex_unlock(&h->mu);
    if (broken)
        return err_set(COFFER_EIO,
                       "%s, so a prune may have taken this writer for dead; nothing was "
                       "committed: run the backup again",
                       why);
    return 0;
}

static void *beat(void *arg)
{
    heartbeat_t *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + h->interval_ns;
        ts.tv_sec = t / 1000000000;
        ts.tv_nsec = t % 1000000000;
        int w = pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        if (h->stop)
            break;
        if (w == ETIMEDOUT) {
            pthread_mutex_unlock(&h->mu);
            storage_stat_t st;
            bool gone = storage_stat(h->st, h->name, &st) == COFFER_ENOENT;
            int wrc = write_once(h, false);
            if (wrc)
                log_warn("could not refresh %s: %s", h->name, err_msg());
            pthread_mutex_lock(&h->mu);
            note_refresh(h, wrc == 0, gone);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int heartbeat_start(storage_t *st, session_t *s, const char *name, uint8_t env_type,
                    const char *purpose, bool create_only, heartbeat_t **out)
{
    heartbeat_t *h = calloc(1, sizeof *h);
    if (!h)
        return err_set(COFFER_ENOMEM, "out of memory");
    h->st = st;
    h->session = s;
    h->type = env_type;
    snprintf(h->name, sizeof h->name, "%s", name);
    char host[128] = "", ts[64];
    gethostname(host, sizeof host - 1);
    time_format_rfc3339(time_now_ns(), false, ts, sizeof ts);
    snprintf(h->payload, sizeof h->payload,
             "{\"host\":\"%.100s\",\"pid\":%ld,\"purpose\":\"%.64s\",\"started\":\"%s\"}", host,
             (long)getpid(), purpose, ts);
    h->interval_ns = heartbeat_stale_ns() / 6;
    if (h->interval_ns < 1000000000)
        h->interval_ns = 1000000000;
    int rc = write_once(h, create_only);
    if (rc) {
        free(h);
        return rc;
    }
    h->last_ok = time_monotonic_ns();
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, beat, h) != 0) {
        storage_remove(st, h->name);
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h);
        return err_set(COFFER_ENOMEM, "cannot start the heartbeat thread");
    }
    *out = h;
    return 0;
}

void heartbeat_stop(heartbeat_t *h, bool remove)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    if (remove && storage_remove(h->st, h->name) && err_code() != COFFER_ENOENT)
        log_warn("could not remove %s: %s", h->name, err_msg());
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}
