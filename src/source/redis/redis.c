/*
 * redis.c -- the redis service source (see redis.h).
 *
 * Layer: source/redis. `redis-cli --rdb -` asks the server for a replication snapshot (as a
 * replica would) and writes it to stdout, so the RDB streams into the chunker without a
 * temporary file. A PING first turns a wrong password or a server that is down into a clear
 * error before a snapshot exists. The RDB's own signature and redis-cli's exit status tell a
 * truncated transfer from a complete one.
 */
#include "source/redis/redis.h"
#include "common/error.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void server_name(const redis_conn_t *c, char *out, size_t len)
{
    snprintf(out, len, "%s:%d", c->host ? c->host : "127.0.0.1", c->port > 0 ? c->port : 6379);
}

static int conn_args(const redis_conn_t *c, svc_argv_t *a)
{
    int rc = svc_argv_add(a, "-h");
    if (!rc)
        rc = svc_argv_add(a, c->host ? c->host : "127.0.0.1");
    if (!rc)
        rc = svc_argv_add(a, "-p");
    if (!rc)
        rc = svc_argv_addf(a, "%d", c->port > 0 ? c->port : 6379);
    if (!rc && c->user && !(rc = svc_argv_add(a, "--user")))
        rc = svc_argv_add(a, c->user);
    if (!rc)
        rc = svc_argv_add(a, "--no-auth-warning");
    return rc;
}

int redis_backup(repo_t *r, const redis_backup_opts_t *o, svc_report_fn report, void *ctx)
{
    char *cli = NULL;
    svc_argv_t env, a;
    svc_argv_init(&env);
    svc_argv_init(&a);
    buf_t out;
    buf_init(&out);
    char server[512], what[700];
    server_name(&o->conn, server, sizeof server);
    int rc = svc_find_tool("redis", "redis-cli", "redis-tools", &cli);
    if (!rc && o->conn.password)
        rc = svc_argv_addf(&env, "REDISCLI_AUTH=%s", o->conn.password);
    if (!rc && !(rc = svc_argv_add(&a, cli)))
        rc = conn_args(&o->conn, &a);
    for (size_t k = 0; k < o->n_extra_args && !rc; k++)
        rc = svc_argv_add(&a, o->extra_args[k]);
    if (rc)
        goto out;
    /* redis-cli exits 0 on an error reply: check the answer to PING */
    size_t base = a.n;
    if ((rc = svc_argv_add(&a, "PING")))
        goto out;
    snprintf(what, sizeof what, "redis: cannot reach the server at %s", server);
    if ((rc = svc_capture(a.v, env.v, NULL, what, &out)))
        goto out;
    while (out.len && (out.data[out.len - 1] == '\n' || out.data[out.len - 1] == '\r'))
        out.data[--out.len] = 0;
    if (strcmp((char *)out.data, "PONG") != 0) {
        rc = err_set(COFFER_EIO,
                     "redis: the server at %s answered \"%.200s\": check the password "
                     "(REDISCLI_AUTH or REDISCLI_AUTH_FILE) and --user",
                     server, (char *)out.data);
        goto out;
    }
    free(a.v[base]);
    a.v[base] = NULL;
    a.n = base;
    if ((rc = svc_argv_add(&a, "--rdb")) || (rc = svc_argv_add(&a, "-")))
        goto out;
    svc_dump_t d = {.kind = "redis",
                    .server = server,
                    .database = "all",
                    .file_name = "dump.rdb",
                    .argv = a.v,
                    .env_add = env.v};
    rc = svc_backup_dump(r, &o->common, &d, report, ctx);
out:
    for (size_t i = 0; i < env.n; i++)
        memset(env.v[i], 0, strlen(env.v[i]));
    svc_argv_release(&env);
    svc_argv_release(&a);
    buf_release(&out);
    free(cli);
    return rc;
}

/* Checks the RDB signature ("REDIS" + 4 digits) in the first bytes, then writes through. */
typedef struct rdbw {
    uint8_t head[9];
    size_t have;
    uint64_t total;
} rdbw_t;

static int rdb_filter(void *ctx, int fd, const uint8_t *p, size_t n, bool last)
{
    rdbw_t *w = ctx;
    while (w->have < sizeof w->head && n) {
        w->head[w->have++] = *p;
        if (write(fd, p, 1) != 1)
            return err_errno("cannot write the RDB file");
        p++;
        n--;
        w->total++;
        if (w->have == sizeof w->head && memcmp(w->head, "REDIS", 5) != 0)
            return err_set(COFFER_ECORRUPT, "redis: the snapshot does not hold an RDB file (no "
                                            "REDIS signature)");
    }
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return err_errno("cannot write the RDB file");
        p += k;
        n -= (size_t)k;
        w->total += (uint64_t)k;
    }
    if (last && w->have < sizeof w->head)
        return err_set(COFFER_ECORRUPT, "redis: the RDB file in the snapshot is truncated");
    return 0;
}

int redis_restore(repo_t *r, const snapshot_t *s, const redis_restore_opts_t *o, char **out_path)
{
    node_t n;
    node_init(&n);
    char *tmp = NULL, *dst = NULL;
    int fd = -1;
    const char *name = o->dbfilename ? o->dbfilename : "dump.rdb";
    struct stat st;
    int rc = svc_snapshot_file(r, s, "redis", o->force, &n);
    if (rc)
        goto out;
    if (stat(o->target_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = err_set(COFFER_ENOENT,
                     "redis: %s is not a directory: give the server's data "
                     "directory (`dir` in redis.conf) with --target",
                     o->target_dir);
        goto out;
    }
    if (asprintf(&tmp, "%s/.%s.coffer-tmp", o->target_dir, name) < 0 ||
        asprintf(&dst, "%s/%s", o->target_dir, name) < 0) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        rc = err_errno("redis: cannot create %s", tmp);
        goto out;
    }
    rdbw_t w = {0};
    if ((rc = svc_write_file(r, &n, fd, o->stop, rdb_filter, &w)))
        goto out;
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        rc = err_errno("redis: cannot write %s", tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, dst) != 0) {
        rc = err_errno("redis: cannot rename %s to %s", tmp, dst);
        goto out;
    }
    int dfd = open(o->target_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    char aof[4096];
    snprintf(aof, sizeof aof, "%s/appendonlydir", o->target_dir);
    if (stat(aof, &st) == 0)
        log_warn("redis: %s exists: a server with appendonly yes loads the AOF, not %s; start it "
                 "with appendonly no (or move the AOF away) to use the restored data",
                 aof, name);
    if (out_path) {
        *out_path = dst;
        dst = NULL;
    }
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    } else if (rc && tmp) {
        unlink(tmp);
    }
    free(tmp);
    free(dst);
    node_release(&n);
    return rc;
}
