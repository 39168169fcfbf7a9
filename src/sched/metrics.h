/*
 * metrics.h -- Prometheus metrics of job and copy runs (names and meaning in
 * doc/metrics.md): an in-memory store that `coffer run` serves on /metrics, and for one-shot
 * `coffer job run` (CronJob pods) a push to a Pushgateway or a node-exporter textfile.
 *
 * Layer: sched. Text exposition format 0.0.4. Thread-safe: one mutex guards the store.
 * Label values are escaped (backslash, double quote, newline).
 */
#ifndef COFFER_SCHED_METRICS_H
#define COFFER_SCHED_METRICS_H

#include "common/buf.h"
#include "sched/job.h"

#include <stdint.h>

typedef struct metrics metrics_t;

metrics_t *metrics_new(void); /* NULL on out of memory */
void metrics_free(metrics_t *m);

/* Make job `name` known (so its series exist before its first run) with its next run time
 * (Unix seconds, 0 = none). is_copy: a copy task (coffer_copy_* series). */
int metrics_declare(metrics_t *m, const char *name, bool is_copy, int64_t next_run_s);
void metrics_set_running(metrics_t *m, const char *name, bool running);
/* Record a finished run of a job (or a copy task, whose result has no targets). */
int metrics_record(metrics_t *m, const job_result_t *r, bool is_copy);
/* A last success known from before (a state file, an old textfile). */
void metrics_seed_last_success(metrics_t *m, const char *name, bool is_copy, int64_t t_s);
/* Repository size as measured by `coffer stats` (bytes stored, snapshot count). */
int metrics_set_repo(metrics_t *m, const char *repo, uint64_t stored_bytes, uint64_t snapshots);

/* Every series into out (reset first). only_job: just that job's series plus coffer_up and
 * build info (for a textfile or a push); NULL for all. */
int metrics_render(metrics_t *m, const char *only_job, buf_t *out);

/* Write text to DIR/coffer-NAME.prom atomically (temp file, fsync, rename). */
int metrics_write_textfile(const char *dir, const char *name, const char *text);
/* The last-success time recorded in DIR/coffer-NAME.prom, or 0. */
int64_t metrics_textfile_last_success(const char *dir, const char *name);

/* POST text to BASE/metrics/job/NAME on a Pushgateway (POST replaces only the metric
 * families pushed, so a failed run keeps the group's last success time). */
int metrics_push(const char *base_url, const char *name, const char *text, int timeout_s);

#endif
