/*
 * redis.h -- the redis service source: the server's RDB through `redis-cli --rdb -` (the
 * replication snapshot streamed to stdout, no temporary file), stored as dump.rdb in a
 * snapshot; restore writes dump.rdb into a data directory for a stopped server.
 *
 * Layer: source/redis (uses source/service). The password reaches redis-cli as REDISCLI_AUTH
 * in its environment, never argv. The restore writes a temporary file in the target
 * directory, checks the RDB signature, fsyncs and renames it over the file name, so a crash
 * never leaves a half-written dump.rdb.
 */
#ifndef COFFER_SOURCE_REDIS_REDIS_H
#define COFFER_SOURCE_REDIS_REDIS_H

#include "source/service.h"

typedef struct redis_conn {
    const char *host;     /* NULL: 127.0.0.1 */
    int port;             /* 0: 6379 */
    const char *user;     /* ACL user (redis 6+), NULL: default */
    const char *password; /* NULL: REDISCLI_AUTH from the environment */
} redis_conn_t;

typedef struct redis_backup_opts {
    redis_conn_t conn;
    char *const *extra_args; /* more redis-cli arguments (e.g. --tls --cacert F) */
    size_t n_extra_args;
    svc_common_t common;
} redis_backup_opts_t;

int redis_backup(repo_t *r, const redis_backup_opts_t *o, svc_report_fn report, void *ctx);

typedef struct redis_restore_opts {
    const char *target_dir; /* the server's data directory (`dir`) */
    const char *dbfilename; /* NULL: dump.rdb */
    bool force;             /* restore a failed snapshot */
    volatile sig_atomic_t *stop;
} redis_restore_opts_t;

/* *out_path (may be NULL; caller frees) gets the file written. */
int redis_restore(repo_t *r, const snapshot_t *s, const redis_restore_opts_t *o, char **out_path);

#endif
