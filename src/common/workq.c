/*
 * workq.c -- worker pool with a bounded ring queue (see workq.h).
 *
 * Layer: common. One mutex guards the ring and the counters; two condition variables wake
 * workers (not empty) and submitters/waiters (not full, all done).
 */
#include "common/workq.h"
#include "common/error.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct task {
    workq_fn fn;
    void *arg;
} task_t;

struct workq {
    pthread_mutex_t mu;
    pthread_cond_t has_work, has_room;
    task_t *ring;
    size_t cap, head, count;
    size_t running;
    bool stop;
    int nthreads;
    pthread_t *threads;
};

static void *worker(void *arg)
{
    workq_t *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->count && !q->stop)
            pthread_cond_wait(&q->has_work, &q->mu);
        if (!q->count && q->stop)
            break;
        task_t t = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        q->running++;
        pthread_cond_broadcast(&q->has_room);
        pthread_mutex_unlock(&q->mu);
        t.fn(t.arg);
        pthread_mutex_lock(&q->mu);
        q->running--;
        if (!q->count && !q->running)
            pthread_cond_broadcast(&q->has_room);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int workq_new(int threads, size_t capacity, workq_t **out)
{
    workq_t *q = calloc(1, sizeof *q);
    if (!q)
        return err_set(COFFER_ENOMEM, "out of memory");
    if (threads < 1)
        threads = 1;
    if (capacity < 1)
        capacity = 1;
    q->ring = calloc(capacity, sizeof *q->ring);
    q->threads = calloc((size_t)threads, sizeof *q->threads);
    if (!q->ring || !q->threads) {
        free(q->ring);
        free(q->threads);
        free(q);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    q->cap = capacity;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->has_work, NULL);
    pthread_cond_init(&q->has_room, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&q->threads[i], NULL, worker, q) != 0) {
            q->nthreads = i;
            workq_free(q);
            return err_set(COFFER_ENOMEM, "cannot start worker threads");
        }
    }
    q->nthreads = threads;
    *out = q;
    return 0;
}

int workq_submit(workq_t *q, workq_fn fn, void *arg)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == q->cap)
        pthread_cond_wait(&q->has_room, &q->mu);
    q->ring[(q->head + q->count) % q->cap] = (task_t){fn, arg};
    q->count++;
    pthread_cond_signal(&q->has_work);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

int workq_try_submit(workq_t *q, workq_fn fn, void *arg)
{
    pthread_mutex_lock(&q->mu);
    if (q->count == q->cap) {
        pthread_mutex_unlock(&q->mu);
        return 1;
    }
    q->ring[(q->head + q->count) % q->cap] = (task_t){fn, arg};
    q->count++;
    pthread_cond_signal(&q->has_work);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void workq_wait(workq_t *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->count || q->running)
        pthread_cond_wait(&q->has_room, &q->mu);
    pthread_mutex_unlock(&q->mu);
}

void workq_free(workq_t *q)
{
    if (!q)
        return;
    workq_wait(q);
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_broadcast(&q->has_work);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->has_work);
    pthread_cond_destroy(&q->has_room);
    free(q->ring);
    free(q->threads);
    free(q);
}

int workq_cpus(void)
{
    static int cached; /* sysconf reads /sys on every call: ask once (a benign race) */
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v)
        return v;
    const char *e = getenv("COFFER_THREADS");
    if (e && atoi(e) > 0) {
        v = atoi(e) > 64 ? 64 : atoi(e);
    } else {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        v = n < 1 ? 1 : (int)(n > 64 ? 64 : n);
    }
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}
