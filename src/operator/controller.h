/*
 * controller.h -- `coffer operator`: watch Repositories, BackupSchedules, Backups, Restores
 * (and the Jobs it made), elect a leader with a Lease, reconcile, serve /metrics and /healthz.
 *
 * Layer: operator (uses k8s). Watch threads (one per kind, each with its own client) only
 * queue the names of changed objects; one worker thread reconciles them, and every resync
 * interval it reconciles everything (the watchdog and Repository validation run from there).
 * Only the leader reconciles; the others keep watching so that a takeover starts warm.
 */
#ifndef COFFER_OPERATOR_CONTROLLER_H
#define COFFER_OPERATOR_CONTROLLER_H

#include "operator/render.h"

#include <signal.h>
#include <stdint.h>

typedef struct op_opts {
    const char *kubeconfig, *context; /* NULL: $KUBECONFIG, ~/.kube/config or in-cluster */
    const char *namespace;            /* watch one namespace; NULL: all namespaces */
    const char *lease_namespace;      /* where the Lease lives (default: the context's) */
    const char *lease_name;           /* default coffer-operator */
    const char *identity;             /* default: $POD_NAME or host name + pid */
    int lease_duration_s;             /* default 15 */
    int resync_s;                     /* default 30 */
    const char *metrics_addr;         /* "HOST:PORT" for /metrics and /healthz, or NULL */
    op_render_opts_t render;
    const char *coffer_bin;      /* this executable (for Repository validation) */
    int64_t default_deadline_s;  /* runs without activeDeadlineSeconds; default 6 h */
    int64_t watchdog_grace_s;    /* default 60 */
    volatile sig_atomic_t *stop; /* set by SIGTERM/SIGINT: release the Lease and return */
} op_opts_t;

/* Run until *stop. Returns 0 after a clean stop, an error when the API cannot be reached at
 * start (a bad kubeconfig, no permission to watch). */
int operator_run(const op_opts_t *o);

#endif
