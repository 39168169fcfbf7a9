/*
 * proc.h -- run a child process for the job runner: extra environment (secrets go here,
 * never into argv), CPU and I/O priority, a timeout, a stop flag, stdout captured and stderr
 * captured while also passed through to ours.
 *
 * Layer: sched. The child runs in its own process group so a timeout or a stop reaches the
 * whole tree it starts (a shell's children, a dump program). The environment is built before
 * fork and passed to execve, so nothing unsafe runs between fork and exec in a threaded
 * parent. Thread-safe: each call is independent.
 */
#ifndef COFFER_SCHED_PROC_H
#define COFFER_SCHED_PROC_H

#include "common/buf.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#define PROC_MAX_CAPTURE (1u << 20) /* bytes kept of stdout and of stderr each */

typedef struct proc_env {
    const char *key;
    const char *value; /* NULL: remove key from the child's environment */
} proc_env_t;

typedef struct proc_opts {
    const char *path;      /* executable (absolute path; no PATH search) */
    char *const *argv;     /* argv[0] is shown in ps */
    const proc_env_t *env; /* applied over our environment, in order */
    size_t n_env;
    bool has_nice;
    int nice;                    /* -20..19 */
    int ionice_class;            /* 0 none, 1 realtime, 2 best-effort, 3 idle (cfg_ionice) */
    int ionice_level;            /* 0..7 */
    int timeout_s;               /* 0: none; else SIGTERM to the group, SIGKILL 5 s later */
    volatile sig_atomic_t *stop; /* when it becomes non-zero: stop_signal to the group */
    int stop_signal;             /* default SIGINT (coffer checkpoints and exits 130) */
    bool passthrough_stderr;     /* also copy the child's stderr to ours */
} proc_opts_t;

typedef struct proc_result {
    int exit_code; /* exit status, or 128 + signal number */
    bool timed_out;
    bool stopped; /* the stop flag was seen */
    buf_t out;    /* captured stdout (first PROC_MAX_CAPTURE bytes); caller releases */
    buf_t err;    /* captured stderr (first PROC_MAX_CAPTURE bytes); caller releases */
} proc_result_t;

void proc_result_init(proc_result_t *r);
void proc_result_release(proc_result_t *r);

/* Run to completion. Returns 0 when the child ran (whatever its exit code: see *res), or an
 * error when it could not be started (COFFER_EIO/ENOMEM). res must be initialised. */
int proc_run(const proc_opts_t *o, proc_result_t *res);

#endif
