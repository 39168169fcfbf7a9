/*
 * reconcile.h -- bring the cluster in line with one coffer.dev resource.
 *
 * Layer: operator. Each reconcile function reads the resource, acts (ConfigMap, CronJob or
 * Job; status; events; finalizer) and returns 0 when it is done for now. Errors it can explain
 * to the user (a bad schedule, a missing Repository or Secret) go into the resource's status
 * and an Event and are not returned; a returned error means "try again later" (API errors).
 *
 * Thread safety: called from the controller's one worker thread with its client.
 */
#ifndef COFFER_OPERATOR_RECONCILE_H
#define COFFER_OPERATOR_RECONCILE_H

#include "k8s/client.h"
#include "operator/render.h"

#include <stdint.h>

typedef struct op_ctx {
    k8s_client_t *c;
    op_render_opts_t render;
    const char *coffer_bin;     /* for repository validation (this executable) */
    int64_t default_deadline_s; /* watchdog for runs without activeDeadlineSeconds */
    int64_t watchdog_grace_s;   /* added to a Job's deadline before the watchdog acts */
} op_ctx_t;

int op_reconcile_backup(op_ctx_t *x, const char *ns, const char *name);
int op_reconcile_restore(op_ctx_t *x, const char *ns, const char *name);
int op_reconcile_schedule(op_ctx_t *x, const char *ns, const char *name);
/* Validates when the last validation is older than spec.validationInterval (or force). */
int op_reconcile_repository(op_ctx_t *x, const char *ns, const char *name, bool force);

/* Parse a duration such as "1h30m", "45s", "10m" into seconds; -1 if bad. */
int64_t op_parse_duration(const char *s);

#endif
