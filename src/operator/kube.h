/*
 * kube.h -- the operator's small helpers over the Kubernetes client: the resources it uses,
 * status merge patches, conditions, events and finalizers.
 *
 * Layer: operator (uses k8s). Every function takes a client used by one thread at a time.
 * Ownership: json_t * results are new references; inputs are borrowed.
 */
#ifndef COFFER_OPERATOR_KUBE_H
#define COFFER_OPERATOR_KUBE_H

#include "k8s/client.h"

#include <stdbool.h>
#include <stdint.h>

extern const k8s_res_t OP_RES_REPOSITORY, OP_RES_SCHEDULE, OP_RES_BACKUP, OP_RES_RESTORE;
extern const k8s_res_t OP_RES_JOB, OP_RES_CRONJOB, OP_RES_CONFIGMAP, OP_RES_SECRET, OP_RES_EVENT,
    OP_RES_LEASE;

/* The coffer.dev resource of a plural name ("backups"...), or NULL. */
const k8s_res_t *op_res_by_plural(const char *plural);

/* Now as RFC 3339 (seconds) / as a Lease MicroTime (microseconds), into out (>= 40 bytes). */
void op_now(char *out, size_t n);
void op_now_micro(char *out, size_t n);
/* Parse an RFC 3339 time (as the API writes them) to seconds since the epoch; -1 if bad. */
int64_t op_parse_time(const char *s);

/* Merge-patch the status subresource of ns/name with `status` (an object of fields to set;
 * JSON null deletes a field). */
int op_patch_status(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name,
                    json_t *status);

/* A copy of the conditions array of obj with condition `type` set (lastTransitionTime kept
 * when the status did not change). */
json_t *op_conditions_set(const json_t *obj, const char *type, const char *status,
                          const char *reason, const char *message);

/* Record an Event about obj (type "Normal" or "Warning"); failures are logged, not returned. */
void op_event(k8s_client_t *c, const json_t *obj, const char *type, const char *reason,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Add or remove OP_FINALIZER on obj (a merge patch of metadata.finalizers). */
int op_finalizer(k8s_client_t *c, const k8s_res_t *r, const json_t *obj, bool add);
bool op_has_finalizer(const json_t *obj);

/* Delete ns/name of r, treating "not found" as done. */
int op_delete_quiet(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name);

#endif
