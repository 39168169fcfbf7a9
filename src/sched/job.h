/*
 * job.h -- run one configured job end to end: before hooks, a backup into each target
 * repository in turn, the retention of each target, after hooks. The result says what
 * happened per repository and overall (the worst exit code).
 *
 * Layer: sched. Every step runs the coffer binary itself as a child (`coffer -r URL --json
 * backup ...`, `coffer -r URL --json forget --job NAME ...`) with the repository password and
 * credentials in the child's environment, never in argv, and parses its JSON summary. Job
 * types map to command-line flags: files -> `backup PATHS --exclude P`; command -> `backup
 * --stdin-from-command --name F -- CMD`; postgres, mysql, redis, ldap -> `backup --TYPE
 * --OPTION VALUE...` (each `options:` entry becomes --OPTION, '_' written as '-'); k8s ->
 * `k8s export --OPTION VALUE...`. Notifications and metrics are the caller's business
 * (notify.h, metrics.h). Thread-safe: runs share nothing but the read-only config.
 */
#ifndef COFFER_SCHED_JOB_H
#define COFFER_SCHED_JOB_H

#include "sched/config.h"
#include "sched/proc.h"

#include <signal.h>
#include <stdint.h>

typedef struct job_target_result {
    const char *repo;  /* borrowed from the config */
    int exit_code;     /* of the backup child (0 ok, 3 partial, 1 failed, 130 stopped...) */
    int forget_exit;   /* of the forget child; -1 when not run */
    char snapshot[65]; /* id of the snapshot written, or "" */
    char status[16];   /* "complete", "partial", "failed" or "" (no snapshot) */
    uint64_t bytes_added;
    uint64_t files_new, files_changed, files_unchanged, bytes_read; /* from the summary */
    double duration_s;
    char *error;    /* owned, or NULL */
    bool has_stats; /* repository measured after the run (job_opts_t.repo_stats) */
    uint64_t repo_stored_bytes, repo_snapshots;
} job_target_result_t;

typedef struct job_result {
    char *job;
    int exit_code;      /* the worst of every step (job_worse) */
    int level;          /* cfg_level: info (ok), warning (partial), error (failed) */
    const char *status; /* "success", "partial", "failed", "interrupted" (static) */
    int64_t start_ns, end_ns;
    double duration_s;
    uint64_t bytes_added; /* sum over the targets */
    char *error;          /* first error, owned, or NULL */
    job_target_result_t *targets;
    size_t n_targets;
} job_result_t;

typedef struct job_opts {
    const char *exe;             /* coffer binary; NULL = /proc/self/exe */
    volatile sig_atomic_t *stop; /* set: the running child gets SIGINT, no further steps */
    bool quiet;                  /* do not pass the children's stderr through */
    bool repo_stats;             /* run `coffer stats` on each target afterwards (metrics) */
} job_opts_t;

/* Run job j of config c. Always fills *out (caller releases), even when a step failed; the
 * return value is 0, or an error when the run could not be attempted at all (ENOMEM). */
int job_run(const cfg_t *c, const cfg_job_t *j, const job_opts_t *o, job_result_t *out);
void job_result_release(job_result_t *r);

/* Run copy task k once: `coffer -r FROM --json copy --to TO` (both passwords and the
 * repositories' credentials in the child's environment, storage options as -o and
 * --to-option). Always fills *out (no targets; caller releases). Used by `coffer run` and
 * `coffer job copy`. */
void job_run_copy(const cfg_t *c, const cfg_copy_t *k, const job_opts_t *o, job_result_t *out);

/* The worse of two exit codes: failures (anything but 0 and 3) beat partial (3), which beats
 * ok (0); between two failures the first stays. */
int job_worse(int a, int b);

/* The environment for a coffer child working on repository r: COFFER_PASSWORD, the
 * repository's env entries, COFFER_PASSWORD_FILE and COFFER_REPOSITORY removed. *out_env
 * (caller frees the array, not the strings: borrowed from c) has *out_n entries. */
int job_repo_env(const cfg_repo_t *r, proc_env_t **out_env, size_t *out_n);

#endif
