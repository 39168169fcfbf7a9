/*
 * sched.h -- the scheduler: a pure core that decides which job or copy task is due at a
 * given time (unit-tested with a fake clock), the persisted state of last runs, and the
 * `coffer run` daemon built on them.
 *
 * Layer: sched. Core rules (doc/config.md, "Scheduling"):
 *   - a job runs when its cron schedule (in its time zone) comes due; jobs without a
 *     schedule only run through `coffer job run`; copy tasks run every N seconds or by cron;
 *   - a task never overlaps itself: slots that come due while it runs are skipped;
 *   - at most max_concurrent tasks run at once; a due task waits for a free slot, and slots
 *     missed while waiting collapse into one run;
 *   - missed runs (the daemon was down when a slot came due, known from the state file):
 *     run once at start (run_missed) or skip to the next slot; an every-N task that never
 *     ran runs at start;
 *   - run_on: a task whose run_on names another host is not scheduled here.
 * Thread safety: a core is used by one thread (the daemon's main loop).
 */
#ifndef COFFER_SCHED_SCHED_H
#define COFFER_SCHED_SCHED_H

#include "sched/config.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sched_state_entry {
    char *name;
    bool is_copy;
    int64_t last_run_s;     /* when the last run started (the slot), 0 = never */
    int64_t last_success_s; /* when the last good run ended, 0 = never */
} sched_state_entry_t;

typedef struct sched_state {
    sched_state_entry_t *e;
    size_t n;
} sched_state_t;

/* Load a state file; a missing file is an empty state. Bad JSON: COFFER_ECORRUPT. */
int sched_state_load(const char *path, sched_state_t *out);
/* Write atomically (temp file, fsync, rename). */
int sched_state_save(const char *path, const sched_state_t *st);
sched_state_entry_t *sched_state_get(sched_state_t *st, const char *name, bool is_copy,
                                     bool create);
void sched_state_release(sched_state_t *st);

typedef struct sched_task {
    const char *name; /* borrowed from the config */
    bool is_copy;
    size_t index;            /* into cfg->jobs or cfg->copies */
    const cron_expr_t *cron; /* NULL: every_s */
    const char *tz;
    int every_s;
    int64_t next_s;     /* next due time */
    int64_t last_run_s; /* start of the last run taken, 0 = never */
    bool running;
} sched_task_t;

typedef struct sched_core {
    sched_task_t *tasks;
    size_t n;
    int max_concurrent;
    int running;
    size_t skipped; /* slots skipped because the task was still running (for tests/logs) */
} sched_core_t;

/* Build the core for config c at time now (Unix seconds); st (may be NULL) gives the last
 * runs for the missed-run policy; here(names, n) decides run_on (NULL: every task runs). */
int sched_core_init(sched_core_t *s, const cfg_t *c, int64_t now, sched_state_t *st,
                    bool (*here)(char *const *names, size_t n));
void sched_core_release(sched_core_t *s);

/* The index of a task that should start now, marking it running and moving its next time
 * past now; -1 when none is due or the concurrency limit is reached. Call until -1. */
ssize_t sched_core_take(sched_core_t *s, int64_t now);
/* Task i finished at now. */
void sched_core_done(sched_core_t *s, size_t i, int64_t now);
/* The earliest next_s of a task that is not running, or INT64_MAX. */
int64_t sched_core_wakeup(const sched_core_t *s);
/* Find a task by name; -1 if absent. */
ssize_t sched_core_find(const sched_core_t *s, const char *name, bool is_copy);

typedef struct sched_daemon_opts {
    const char *config_path;
    const char *exe;               /* coffer binary; NULL = /proc/self/exe */
    volatile sig_atomic_t *stop;   /* SIGTERM/SIGINT: interrupt running children, exit */
    volatile sig_atomic_t *reload; /* SIGHUP: reload the config (keep the old one if bad) */
    bool quiet;
} sched_daemon_opts_t;

/* Run until *stop. Returns 0 after a clean stop, or an error when it could not start (bad
 * config, metrics address in use). The clock is real time unless COFFER_SCHED_FAKE_START
 * (Unix seconds) is set, then it runs from there at COFFER_SCHED_SPEED times real time. */
int sched_daemon_run(const sched_daemon_opts_t *o);

#endif
