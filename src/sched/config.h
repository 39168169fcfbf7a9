/*
 * config.h -- the job configuration file (doc/config.md): repositories, jobs, copy tasks,
 * notifications and the server section, parsed from YAML with libyaml.
 *
 * Layer: sched (uses common and repo/retention.h). Parsing is strict: an unknown key, a wrong
 * type, a bad cron expression or zone, a reference to an undefined repository, a missing
 * secret file or an unset ${VAR} is an error whose message starts with "FILE:LINE:COLUMN:" and
 * says what is expected. `include:` globs (relative to the including file) pull in more files
 * with the same top-level keys; names must be unique across all files. ${VAR} and
 * ${VAR:-default} are substituted in scalar values (never in keys); `$$` is a literal `$`.
 * Secrets (passwords, *_file contents, env values, header values) are read at load time and
 * held in memory only; cfg_print masks them.
 *
 * Ownership: a cfg_t owns every string and array inside it; cfg_free releases all. The
 * structure is read-only after cfg_load, so threads may share it.
 */
#ifndef COFFER_SCHED_CONFIG_H
#define COFFER_SCHED_CONFIG_H

#include "common/buf.h"
#include "common/cron.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_MAX_FILES 256  /* files, including includes */
#define CFG_MAX_ITEMS 4096 /* entries of any one list or mapping */
#define CFG_MAX_FILE_SIZE (4u << 20)
#define CFG_MAX_INCLUDE_DEPTH 8

typedef struct cfg_loc {
    const char *file; /* borrowed from cfg_t.files */
    int line, col;    /* 1-based */
} cfg_loc_t;

/* NAME=VALUE for a child's environment, or a header / option. */
typedef struct cfg_kv {
    char *key;
    char *value;
    bool secret; /* masked by cfg_print */
} cfg_kv_t;

typedef struct cfg_repo {
    char *name;
    char *url;
    char *password;      /* secret: from password: or the contents of password_file: */
    char *password_file; /* as written (shown by cfg_print), or NULL */
    cfg_kv_t *env;       /* extra environment for coffer children (credentials) */
    size_t n_env;
    cfg_kv_t *options; /* storage options, passed as -o KEY=VALUE (not secret) */
    size_t n_options;
    cfg_loc_t loc;
} cfg_repo_t;

typedef struct cfg_retention {
    bool set;
    int keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly;
    char *keep_within; /* duration text as written ("7d"), validated; or NULL */
    char **keep_tags;
    size_t n_keep_tags;
    bool prune; /* run prune after forget */
} cfg_retention_t;

typedef struct cfg_target {
    size_t repo;     /* index into cfg_t.repos (resolved after all files are read) */
    char *repo_name; /* as written */
    cfg_loc_t loc;
    cfg_retention_t retention; /* per-repository; overrides the job's when set */
} cfg_target_t;

enum cfg_on_error { CFG_ON_ERROR_FAIL = 0, CFG_ON_ERROR_CONTINUE = 1 };

typedef struct cfg_hook {
    char *command; /* run with /bin/sh -c */
    int timeout_s; /* default 300 */
    int on_error;  /* enum cfg_on_error */
} cfg_hook_t;

enum cfg_ionice {
    CFG_IONICE_NONE = 0,
    CFG_IONICE_REALTIME = 1,
    CFG_IONICE_BEST_EFFORT = 2,
    CFG_IONICE_IDLE = 3
};

typedef struct cfg_limits {
    bool has_nice;
    int nice;         /* -20..19 */
    int ionice_class; /* enum cfg_ionice */
    int ionice_level; /* 0..7 */
    int threads;      /* 0 = default */
    int upload_kib;   /* KiB/s to the repository (-o limit-upload), 0 = unlimited */
    int download_kib; /* KiB/s from the repository (-o limit-download), 0 = unlimited */
} cfg_limits_t;

/* ---- kubernetes: (for `coffer k8s manifests`; doc/config.md "Kubernetes manifests") ---- */

/* A variable taken from one key of a Secret (env valueFrom secretKeyRef). */
typedef struct cfg_k8s_secret_env {
    char *name;   /* variable */
    char *secret; /* Secret name */
    char *key;    /* key in the Secret */
} cfg_k8s_secret_env_t;

typedef struct cfg_k8s_toleration {
    char *key, *op, *value, *effect; /* op: Exists or Equal (or NULL); effect or NULL */
    bool has_seconds;
    long seconds;
} cfg_k8s_toleration_t;

/* Pod and CronJob settings given at the top (defaults) and per job (overrides). Integers are
 * -1 when not given. */
typedef struct cfg_k8s_pod {
    cfg_kv_t *node_selector;
    size_t n_node_selector;
    cfg_kv_t *requests, *limits; /* resources */
    size_t n_requests, n_limits;
    bool has_resources;
    cfg_k8s_secret_env_t *env;
    size_t n_env;
    char **env_from; /* Secret names (envFrom secretRef) */
    size_t n_env_from;
    cfg_k8s_toleration_t *tolerations;
    size_t n_tolerations;
    bool has_tolerations;
    long backoff_limit, successful_history, failed_history, active_deadline_s, starting_deadline_s;
} cfg_k8s_pod_t;

/* A volume: a PersistentVolumeClaim or a host path. */
typedef struct cfg_k8s_volume {
    char *name;      /* top-level volumes: the key; job mounts: the volume named, or NULL */
    char *claim;     /* claimName, or NULL */
    char *host_path; /* hostPath path, or NULL */
    char *mount;     /* job mounts only: the mount path in the container */
    bool read_only;  /* default true: a backup only reads */
    cfg_loc_t loc;
} cfg_k8s_volume_t;

/* Where a repository's password and credentials come from in the cluster. */
typedef struct cfg_k8s_repo {
    char *repo;         /* repository name (resolved after loading) */
    char *secret, *key; /* the password: key `key` of Secret `secret` */
    char **env_from;    /* Secrets whose keys become the environment of its jobs */
    size_t n_env_from;
    cfg_loc_t loc;
} cfg_k8s_repo_t;

typedef struct cfg_k8s {
    bool set;
    char *namespace_;      /* default "default" */
    char *image;           /* default "coffer:VERSION" */
    char *pull_policy;     /* Always, IfNotPresent, Never or NULL */
    char *service_account; /* name of the ServiceAccount of non-k8s jobs; default "coffer" */
    char *name_prefix;     /* object names start with it; default "coffer" */
    cfg_kv_t *labels;      /* added to every object */
    size_t n_labels;
    cfg_k8s_repo_t *repos;
    size_t n_repos;
    cfg_k8s_volume_t *volumes;
    size_t n_volumes;
    cfg_k8s_pod_t pod;
    cfg_loc_t loc;
} cfg_k8s_t;

typedef struct cfg_k8s_job {
    bool set;
    cfg_k8s_volume_t *mounts;
    size_t n_mounts;
    char *node;       /* required node affinity to this kubernetes.io/hostname, or NULL */
    long run_as_user; /* -1: the default for the job type */
    cfg_k8s_pod_t pod;
    cfg_loc_t loc;
} cfg_k8s_job_t;

typedef struct cfg_job {
    char *name;
    char *type; /* files, command, postgres, mysql, redis, ldap, k8s */
    char **paths, **excludes;
    size_t n_paths, n_excludes;
    char **command; /* argv for type command (a string becomes sh -c STRING) */
    size_t n_command;
    char *filename;    /* type command: file name in the snapshot */
    cfg_kv_t *options; /* service/k8s options, each becomes --KEY VALUE in order */
    size_t n_options;
    cfg_kv_t *env; /* extra environment for the backup child (secrets allowed) */
    size_t n_env;
    char *host; /* --host for the snapshot, or NULL */
    bool has_schedule;
    char *schedule; /* as written */
    cron_expr_t cron;
    char *timezone; /* IANA name or NULL (local) */
    cfg_target_t *targets;
    size_t n_targets;
    cfg_retention_t retention; /* the job's default for every target */
    char **tags;
    size_t n_tags;
    cfg_hook_t *before, *after;
    size_t n_before, n_after;
    cfg_limits_t limits;
    char **run_on; /* host/pod names; empty = everywhere */
    size_t n_run_on;
    bool fan_out_copy; /* fan_out: copy -- back up into the first repository, then copy that
                          snapshot into the others (dump once); default: back up into each */
    cfg_k8s_job_t k8s; /* kubernetes: (manifests only) */
    cfg_loc_t loc;
} cfg_job_t;

typedef struct cfg_copy {
    char *name;
    size_t from, to; /* repository indices */
    char *from_name, *to_name;
    int every_s; /* > 0: every N seconds; else the cron schedule */
    bool has_schedule;
    char *schedule;
    cron_expr_t cron;
    char *timezone;
    char **run_on;
    size_t n_run_on;
    cfg_loc_t loc;
} cfg_copy_t;

enum cfg_notify_kind { CFG_NOTIFY_WEBHOOK = 1, CFG_NOTIFY_EMAIL = 2 };
/* Threshold: a notification is sent for results at or above it. */
enum cfg_level { CFG_LEVEL_INFO = 0, CFG_LEVEL_WARNING = 1, CFG_LEVEL_ERROR = 2 };

typedef struct cfg_notify {
    char *name;
    int kind;    /* enum cfg_notify_kind */
    int level;   /* enum cfg_level; default error */
    char **jobs; /* only these jobs; empty = all */
    size_t n_jobs;
    int timeout_s; /* per attempt, default 10 */
    int retries;   /* extra attempts on 5xx / connection errors, default 3 */
    /* webhook */
    char *url;
    cfg_kv_t *headers; /* values are secret */
    size_t n_headers;
    /* email */
    char *smtp_url; /* smtp://host:port or smtps://host:port */
    bool starttls;  /* require STARTTLS on smtp:// */
    char *ca_file;
    char *username, *password; /* password secret (password or password_file) */
    char *from;
    char **to;
    size_t n_to;
    char *subject; /* prefix; default "coffer" */
    cfg_loc_t loc;
} cfg_notify_t;

typedef struct cfg_server {
    char *listen;       /* metrics/health address "HOST:PORT" or NULL */
    char *pushgateway;  /* base URL or NULL */
    char *textfile_dir; /* node-exporter textfile directory (coffer-JOB.prom) or NULL */
    char *state_file;   /* daemon state (last runs) or NULL */
    int max_concurrent; /* jobs at once, default 1 */
    bool run_missed;    /* missed: run-once (true, default) or skip */
    bool repo_stats;    /* repository_stats: measure repositories after runs (default true) */
} cfg_server_t;

typedef struct cfg {
    char **files; /* every file read, main first */
    size_t n_files;
    cfg_repo_t *repos;
    size_t n_repos;
    cfg_job_t *jobs;
    size_t n_jobs;
    cfg_copy_t *copies;
    size_t n_copies;
    cfg_notify_t *notify;
    size_t n_notify;
    cfg_server_t server;
    cfg_k8s_t k8s;
    /* cfg_load_opts(.manifest = true) only: the configuration as written (every include merged,
     * scalars unsubstituted, as JSON strings), or NULL. */
    struct json_t *raw;
} cfg_t;

typedef struct cfg_load_opts {
    /* For `coffer k8s manifests`: the configuration is read to be run elsewhere, so every
     * ${VAR} stays as written, also in cfg_t's strings (except in kubernetes:, which is used
     * here and substituted strictly), secret files are not read (their paths are for the pod;
     * the secret fields are left empty), and cfg_t.raw is kept. */
    bool manifest;
} cfg_load_opts_t;

/* Load path (and its includes) into a new cfg_t (*out, caller frees with cfg_free).
 * Errors: COFFER_EINVAL (bad config: message "FILE:LINE:COL: ..."), COFFER_ENOENT (file or
 * secret file missing), COFFER_ELIMIT, COFFER_ENOMEM. */
int cfg_load(const char *path, cfg_t **out);
int cfg_load_opts(const char *path, const cfg_load_opts_t *o, cfg_t **out);
void cfg_free(cfg_t *c);

/* Parse a config held in memory (name is used in messages; includes are resolved relative to
 * the current directory). allow_files false: `include:` and *_file keys are errors, so text
 * from an untrusted source (the fuzzer) cannot make the parser open files. */
int cfg_load_buffer(const char *name, const char *text, size_t len, bool allow_files, cfg_t **out);

const cfg_job_t *cfg_find_job(const cfg_t *c, const char *name);
const cfg_repo_t *cfg_find_repo(const cfg_t *c, const char *name);
/* kubernetes.repositories entry of repository `name`, or NULL. */
const cfg_k8s_repo_t *cfg_k8s_find_repo(const cfg_t *c, const char *name);

/* The retention that applies to target t of job j (the target's, else the job's). */
const cfg_retention_t *cfg_target_retention(const cfg_job_t *j, const cfg_target_t *t);

/* The effective configuration as YAML into out (reset first), secrets shown as "***". */
int cfg_print(const cfg_t *c, buf_t *out);

const char *cfg_level_name(int level);

#endif
