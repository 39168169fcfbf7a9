/*
 * render.h -- turn coffer.dev custom resources into the objects that run them: the job
 * configuration (doc/config.md) in a ConfigMap, and the Job or CronJob whose pod runs
 * `coffer operator exec ... -- job run NAME --config ...`.
 *
 * Layer: operator (uses k8s for nothing; pure functions over jansson values, unit-tested).
 * Secrets are never copied into rendered objects: passwords are mounted from the user's Secrets
 * as files (password_file in the config), credentials come in through envFrom.
 *
 * Ownership: every json_t * returned is a new reference (caller decrefs); inputs are borrowed.
 */
#ifndef COFFER_OPERATOR_RENDER_H
#define COFFER_OPERATOR_RENDER_H

#include <jansson.h>

#define OP_CONFIG_DIR "/etc/coffer/config"
#define OP_SECRET_DIR "/etc/coffer/secrets"
#define OP_DATA_DIR "/data"
#define OP_FINALIZER "coffer.dev/job-cleanup"

typedef struct op_render_opts {
    const char *image;           /* the coffer image */
    const char *service_account; /* the pods' ServiceAccount (may patch status) */
    const char *pull_policy;     /* imagePullPolicy or NULL */
} op_render_opts_t;

/* The coffer config for one run of `cr` (a BackupSchedule, Backup or Restore) with the job
 * named job_name. spec: the run spec (for a Backup with scheduleRef, the schedule's spec).
 * repos: the Repository objects named in spec.repositories (a JSON object name -> object).
 * Returns NULL with err_set when the spec cannot be rendered (the message names the field). */
json_t *op_render_config(const char *job_name, const json_t *spec, const json_t *repos);

/* The ConfigMap holding config (as JSON, which is YAML) for cr, owned by cr. */
json_t *op_render_configmap(const json_t *cr, const char *name, const json_t *config);

/* The pod template that runs `coffer operator exec --kind KIND --name NAME -- ARGS...` with the
 * config and repository secrets mounted. args: JSON array of strings after "--". */
json_t *op_render_pod_template(const op_render_opts_t *o, const json_t *cr, const char *kind,
                               const json_t *spec, const json_t *repos, const char *configmap,
                               const json_t *args);

/* A Job (for a Backup or Restore) or a CronJob (for a BackupSchedule) around a pod template;
 * both owned by cr (controller owner reference) and labelled coffer.dev/owner-kind|name. */
json_t *op_render_job(const json_t *cr, const char *name, json_t *pod_template, const json_t *spec);
json_t *op_render_cronjob(const json_t *cr, const char *name, json_t *pod_template,
                          const json_t *spec);

/* An owner reference to cr (controller: true, blockOwnerDeletion: true). */
json_t *op_owner_ref(const json_t *cr);

/* Object names derived from a resource's: "coffer-<kind>-<name>", cut to 63 characters with a
 * hash suffix when longer. Caller frees. */
char *op_child_name(const char *kind, const char *name);

#endif
