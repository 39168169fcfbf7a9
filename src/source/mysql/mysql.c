/*
 * mysql.c -- the mysql/mariadb service source (see mysql.h).
 *
 * Layer: source/mysql. One client call before any dump reads the server version and the
 * databases, so a wrong password, a server that is down or an unknown database stop the run
 * before a snapshot exists. MariaDB's programs are preferred; MySQL's are used when they are
 * the ones installed.
 */
#include "source/mysql/mysql.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const system_dbs[] = {"information_schema", "performance_schema", "sys", "mysql",
                                         NULL};

typedef struct mytools {
    char *dump, *client;
} mytools_t;

static int find_tools(mytools_t *t, bool need_dump)
{
    if (need_dump && svc_find_tool("mysql", "mariadb-dump", "", &t->dump) != 0 &&
        svc_find_tool("mysql", "mysqldump", "mariadb-client (or mysql-client)", &t->dump) != 0)
        return err_set(COFFER_ENOENT, "mysql: neither mariadb-dump nor mysqldump found in PATH: "
                                      "install mariadb-client (or mysql-client)");
    if (svc_find_tool("mysql", "mariadb", "", &t->client) != 0 &&
        svc_find_tool("mysql", "mysql", "", &t->client) != 0)
        return err_set(COFFER_ENOENT, "mysql: neither mariadb nor mysql (the client) found in "
                                      "PATH: install mariadb-client (or mysql-client)");
    err_clear();
    return 0;
}

static void tools_release(mytools_t *t)
{
    free(t->dump);
    free(t->client);
}

int mysql_check_version(const char *server, const char *v)
{
    if (strstr(v, "MariaDB"))
        return 0;
    char *end;
    long maj = strtol(v, &end, 10), min = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
    if (maj <= 0)
        return err_set(COFFER_EINVAL, "mysql: cannot read the version of the server at %s (\"%s\")",
                       server, v);
    if (maj < 5 || (maj == 5 && min < 5))
        return err_set(COFFER_EINVAL,
                       "mysql: the server at %s runs MySQL %ld.%ld, which is not supported "
                       "(5.5 or later; --single-transaction needs InnoDB): upgrade the server",
                       server, maj, min);
    return 0;
}

int mysql_quote_ident(const char *name, buf_t *out)
{
    int rc = buf_append_str(out, "`");
    for (const char *s = name; *s && !rc; s++)
        rc = *s == '`' ? buf_append_str(out, "``") : buf_append(out, s, 1);
    if (!rc)
        rc = buf_append_str(out, "`");
    return rc;
}

static void server_name(const mysql_conn_t *c, char *out, size_t len)
{
    if (c->socket && !c->host)
        snprintf(out, len, "%s", c->socket);
    else
        snprintf(out, len, "%s:%d", c->host ? c->host : "localhost", c->port > 0 ? c->port : 3306);
}

static int conn_args(const mysql_conn_t *c, svc_argv_t *a)
{
    int rc = 0;
    if (c->host)
        rc = svc_argv_addf(a, "--host=%s", c->host);
    if (!rc && c->port > 0)
        rc = svc_argv_addf(a, "--port=%d", c->port);
    if (!rc && c->host && c->port > 0)
        rc = svc_argv_add(a, "--protocol=TCP");
    if (!rc && c->socket)
        rc = svc_argv_addf(a, "--socket=%s", c->socket);
    if (!rc && c->user)
        rc = svc_argv_addf(a, "--user=%s", c->user);
    return rc;
}

static int conn_env(const mysql_conn_t *c, svc_argv_t *e)
{
    return c->password ? svc_argv_addf(e, "MYSQL_PWD=%s", c->password) : 0;
}

static void wipe_env(svc_argv_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        memset(e->v[i], 0, strlen(e->v[i]));
    svc_argv_release(e);
}

/* Run one SQL text through the client; output (batch, no column names) into out. */
static int client_sql(const mytools_t *t, const mysql_conn_t *c, char *const *env, const char *sql,
                      const char *what, buf_t *out)
{
    svc_argv_t a;
    svc_argv_init(&a);
    int rc = svc_argv_add(&a, t->client);
    if (!rc)
        rc = conn_args(c, &a);
    if (!rc)
        rc = svc_argv_add(&a, "--batch");
    if (!rc)
        rc = svc_argv_add(&a, "--skip-column-names");
    if (!rc)
        rc = svc_argv_add(&a, "--connect-timeout=15");
    if (!rc)
        rc = svc_capture(a.v, env, sql, what, out);
    svc_argv_release(&a);
    return rc;
}

static int pause_replica(const mytools_t *t, const mysql_conn_t *c, char *const *env,
                         const char *server, bool stop)
{
    buf_t out;
    buf_init(&out);
    char what[600];
    snprintf(what, sizeof what, "mysql: %s REPLICA SQL_THREAD on %s", stop ? "STOP" : "START",
             server);
    int rc = client_sql(
        t, c, env, stop ? "STOP REPLICA SQL_THREAD;\n" : "START REPLICA SQL_THREAD;\n", what, &out);
    buf_release(&out);
    return rc;
}

int mysql_backup(repo_t *r, const mysql_backup_opts_t *o, svc_report_fn report, void *ctx)
{
    mytools_t t = {0};
    svc_argv_t env, dbs;
    svc_argv_init(&env);
    svc_argv_init(&dbs);
    buf_t out, failed;
    buf_init(&out);
    buf_init(&failed);
    const char **sel = NULL;
    size_t n_sel = 0;
    char server[512], what[700];
    bool paused = false;
    int first_rc = 0, n_failed = 0;
    server_name(&o->conn, server, sizeof server);
    int rc = find_tools(&t, true);
    if (!rc)
        rc = conn_env(&o->conn, &env);
    if (rc)
        goto out;
    snprintf(what, sizeof what, "mysql: connecting to the server at %s", server);
    if ((rc = client_sql(&t, &o->conn, env.v,
                         "select version();\nselect schema_name from information_schema.schemata "
                         "order by 1;\n",
                         what, &out)))
        goto out;
    char *line = (char *)out.data, *version = NULL;
    while (line && *line && !rc) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (!version)
            version = line;
        else if (*line)
            rc = svc_argv_add(&dbs, line);
        line = nl ? nl + 1 : NULL;
    }
    if (rc || (rc = mysql_check_version(server, version ? version : "")))
        goto out;
    {
        /* --all-databases leaves the system schemas out unless they are named */
        svc_argv_t excl;
        svc_argv_init(&excl);
        for (size_t i = 0; i < o->n_excludes && !rc; i++)
            rc = svc_argv_add(&excl, o->excludes[i]);
        for (size_t i = 0; system_dbs[i] && !rc; i++)
            rc = svc_argv_add(&excl, system_dbs[i]);
        if (!rc)
            rc = svc_select("mysql", server, dbs.v, dbs.n, o->databases, o->n_databases,
                            o->all_databases, excl.v, excl.n, &sel, &n_sel);
        /* sel points into dbs or o->databases, never into excl */
        svc_argv_release(&excl);
        if (rc)
            goto out;
    }
    if (o->replica_pause) {
        /* only a configured replica has something to pause */
        buf_reset(&out);
        snprintf(what, sizeof what, "mysql: SHOW REPLICA STATUS on %s", server);
        if ((rc = client_sql(&t, &o->conn, env.v, "SHOW REPLICA STATUS;\n", what, &out)))
            goto out;
        if (out.len == 0) {
            log_warn("mysql: %s is not a replica: --replica-pause has nothing to pause", server);
        } else {
            if ((rc = pause_replica(&t, &o->conn, env.v, server, true)))
                goto out;
            paused = true;
        }
    }
    for (size_t i = 0; i < n_sel; i++) {
        if (o->common.stop && *o->common.stop) {
            first_rc = first_rc ? first_rc : err_set(COFFER_EINTR, "mysql: interrupted");
            break;
        }
        svc_argv_t a;
        svc_argv_init(&a);
        char fname[1024];
        size_t k = 0;
        for (const char *s = sel[i]; *s && k + 8 < sizeof fname; s++)
            fname[k++] = *s == '/' ? '_' : *s;
        snprintf(fname + k, sizeof fname - k, ".sql");
        int drc = svc_argv_add(&a, t.dump);
        if (!drc)
            drc = conn_args(&o->conn, &a);
        const char *fixed[] = {"--single-transaction", "--routines",       "--events", "--triggers",
                               "--hex-blob",           "--skip-dump-date", NULL};
        for (size_t f = 0; fixed[f] && !drc; f++)
            drc = svc_argv_add(&a, fixed[f]);
        for (size_t f = 0; f < o->n_extra_args && !drc; f++)
            drc = svc_argv_add(&a, o->extra_args[f]);
        if (!drc)
            drc = svc_argv_add(&a, "--");
        if (!drc)
            drc = svc_argv_add(&a, sel[i]);
        if (!drc) {
            svc_dump_t d = {.kind = "mysql",
                            .server = server,
                            .database = sel[i],
                            .file_name = fname,
                            .argv = a.v,
                            .env_add = env.v};
            drc = svc_backup_dump(r, &o->common, &d, report, ctx);
        }
        svc_argv_release(&a);
        if (drc) {
            if (!first_rc)
                first_rc = drc;
            n_failed++;
            buf_printf(&failed, "%s%s", failed.len ? ", " : "", sel[i]);
            if (drc == COFFER_EINTR)
                break;
        }
    }
    if (first_rc == COFFER_EINTR)
        rc = first_rc; /* its message says what was interrupted */
    else if (first_rc)
        rc = err_set(first_rc, "mysql: %d dump%s on %s failed (%s)", n_failed,
                     n_failed == 1 ? "" : "s", server, failed.len ? (char *)failed.data : "");
out:
    if (paused) {
        /* restart replication whatever happened to the dumps */
        int prc = pause_replica(&t, &o->conn, env.v, server, false);
        if (prc) {
            log_error("%s: run START REPLICA SQL_THREAD by hand", err_msg());
            if (!rc)
                rc = prc;
        }
    }
    free(sel);
    buf_release(&out);
    buf_release(&failed);
    svc_argv_release(&dbs);
    wipe_env(&env);
    tools_release(&t);
    return rc;
}

int mysql_restore(repo_t *r, const snapshot_t *s, const mysql_restore_opts_t *o,
                  const char **out_target)
{
    mytools_t t = {0};
    svc_argv_t env, a;
    svc_argv_init(&env);
    svc_argv_init(&a);
    buf_t sql, out;
    buf_init(&sql);
    buf_init(&out);
    node_t n;
    node_init(&n);
    char server[512], what[1024];
    const char *target = NULL;
    server_name(&o->conn, server, sizeof server);
    int rc = svc_snapshot_file(r, s, "mysql", o->force, &n);
    if (rc)
        goto out;
    const char *db = svc_snapshot_tag(s, "database");
    if (!db) {
        rc = err_set(COFFER_ECORRUPT, "mysql: the snapshot has no database= tag");
        goto out;
    }
    target = o->as ? o->as : db;
    if ((rc = find_tools(&t, false)) || (rc = conn_env(&o->conn, &env)))
        goto out;
    if (!o->no_create) {
        snprintf(what, sizeof what, "mysql: cannot create database %s on %s", target, server);
        if ((rc = buf_append_str(&sql, "CREATE DATABASE IF NOT EXISTS ")) ||
            (rc = mysql_quote_ident(target, &sql)) || (rc = buf_append_str(&sql, ";\n")) ||
            (rc = client_sql(&t, &o->conn, env.v, (char *)sql.data, what, &out)))
            goto out;
    }
    if (!(rc = svc_argv_add(&a, t.client)) && !(rc = conn_args(&o->conn, &a)) &&
        !(rc = svc_argv_add(&a, "--binary-mode")))
        rc = svc_argv_addf(&a, "--database=%s", target);
    for (size_t k = 0; k < o->n_extra_args && !rc; k++)
        rc = svc_argv_add(&a, o->extra_args[k]);
    snprintf(what, sizeof what, "mysql: restoring %s into %s on %s", n.name, target, server);
    if (!rc)
        rc = svc_restore_pipe(r, &n, a.v, env.v, what, o->stop, NULL, NULL);
out:
    if (!rc && out_target)
        *out_target = target;
    node_release(&n);
    buf_release(&sql);
    buf_release(&out);
    svc_argv_release(&a);
    wipe_env(&env);
    tools_release(&t);
    return rc;
}
