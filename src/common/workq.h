/*
 * workq.h -- a fixed pool of worker threads fed through a bounded queue.
 *
 * Layer: common. workq_submit blocks while the queue is full (backpressure keeps memory
 * bounded). Tasks run in any order on any worker. workq_wait blocks until every submitted task
 * has finished. Thread-safe: any thread may submit, including a worker (a worker submitting to
 * its own full queue would wait forever: don't).
 */
#ifndef COFFER_COMMON_WORKQ_H
#define COFFER_COMMON_WORKQ_H

#include <stddef.h>

typedef struct workq workq_t;
typedef void (*workq_fn)(void *arg);

/* threads >= 1, capacity >= 1 queued tasks. */
int workq_new(int threads, size_t capacity, workq_t **out);
int workq_submit(workq_t *q, workq_fn fn, void *arg);
/* Like workq_submit, but returns 1 at once instead of waiting when the queue is full. */
int workq_try_submit(workq_t *q, workq_fn fn, void *arg);
void workq_wait(workq_t *q);
void workq_free(workq_t *q); /* waits, then joins; accepts NULL */

/* Number of online CPUs (>= 1), or COFFER_THREADS from the environment when set. */
int workq_cpus(void);

#endif
