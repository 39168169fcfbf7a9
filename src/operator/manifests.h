/*
 * manifests.h -- `coffer k8s manifests`: a job configuration (doc/config.md) turned into the
 * Kubernetes objects that run it without the operator: a ConfigMap with the configuration,
 * one CronJob per scheduled job and copy task, ServiceAccounts and least-privilege RBAC.
 *
 * Layer: operator (uses sched/config.h; pure functions over jansson values, unit-tested).
 * Invariants: no secret value ever enters an object. Repository passwords are mounted from the
 * Secrets named under kubernetes.repositories (the ConfigMap's config points password_file at
 * them); env values and other secrets stay ${VAR} references expanded in the pod, whose
 * environment comes from Secret references. A config that would need a secret inlined is an
 * error naming the place and the fix. The same config and options give the same objects in
 * the same order (so the YAML diffs cleanly).
 *
 * Ownership: inputs are borrowed; *out_docs is a new reference (caller decrefs).
 */
#ifndef COFFER_OPERATOR_MANIFESTS_H
#define COFFER_OPERATOR_MANIFESTS_H

#include "common/buf.h"
#include "sched/config.h"

#include <jansson.h>
#include <stdbool.h>

#define MF_DEFAULT_UID 65532   /* the coffer image's user (Dockerfile) */
#define MF_CRONJOB_NAME_MAX 52 /* the Job controller appends 11 characters */

typedef struct mf_opts {
    const char *namespace_; /* overrides kubernetes.namespace, or NULL */
    bool create_namespace;  /* also emit the Namespace */
    char *const *only;      /* render only these jobs / copy tasks (n_only == 0: all) */
    size_t n_only;
    const char *config_name; /* shown in the ConfigMap's header comment (the config path) */
} mf_opts_t;

/* Render the objects for c, which must come from cfg_load_opts(.manifest = true) (it needs
 * cfg_t.raw). *out_docs: a JSON array of objects in apply order (Namespace, ServiceAccounts,
 * RBAC, ConfigMap, CronJobs). notes (may be NULL) gets one line per thing the user should know
 * (a job without a schedule gets no CronJob, run_on is ignored...). Errors: COFFER_EINVAL with
 * "FILE:LINE:COL: ..." for config that cannot be rendered (an inline secret, a repository
 * without a Secret reference, an unknown --job), COFFER_ENOMEM. */
int mf_render(const cfg_t *c, const mf_opts_t *o, json_t **out_docs, buf_t *notes);

/* A DNS-1123 label or subdomain made from prefix and name: lower-case, other characters as '-';
 * when anything changed or it is longer than max, a '-' and 8 hex digits of the name's hash
 * are appended (so different names stay different). Caller frees; NULL on ENOMEM. */
char *mf_dns_name(const char *prefix, const char *name, size_t max);

/* "every: N seconds" as a cron expression when it can be one exactly (minutes dividing an
 * hour, hours dividing a day, one day); writes into out (size n) and returns 0, else -1. */
int mf_every_to_cron(int every_s, char *out, size_t n);

#endif
