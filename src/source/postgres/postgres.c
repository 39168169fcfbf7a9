/*
 * postgres.c -- the postgres service source (see postgres.h).
 *
 * Layer: source/postgres. One psql call before any dump reads the server version and the
 * list of databases, so a wrong password, a server that is down, an unknown database or an
 * unsupported version stop the run before a snapshot exists.
 */
#include "source/postgres/postgres.h"
#include "common/error.h"
#include "common/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG_MIN_SERVER 90200 /* oldest server pg_dump 15 can dump */

typedef struct pgtools {
    char *pg_dump, *pg_dumpall, *psql, *pg_restore;
} pgtools_t;

static void tools_release(pgtools_t *t)
{
    free(t->pg_dump);
    free(t->pg_dumpall);
    free(t->psql);
    free(t->pg_restore);
}

static int tool(const char *name, char **out)
{
    return svc_find_tool("postgres", name, "postgresql-client", out);
}

int postgres_tool_major(const char *s)
{
    const char *p = strstr(s, "PostgreSQL) ");
    if (!p)
        return 0;
    long v = strtol(p + 12, NULL, 10);
    return v > 0 && v < 1000 ? (int)v : 0;
}

int postgres_check_version(const char *server, long num, int dump_major)
{
    int smaj = num >= 100000 ? (int)(num / 10000) : (int)(num / 100); /* 9.6 -> 906 */
    if (num < PG_MIN_SERVER)
        return err_set(COFFER_EINVAL,
                       "postgres: the server at %s runs PostgreSQL %ld.%ld, which is not "
                       "supported (pg_dump %d needs 9.2 or later): upgrade the server",
                       server, num / 10000, (num / 100) % 100, dump_major);
    if (num >= 100000 && smaj > dump_major)
        return err_set(COFFER_EINVAL,
                       "postgres: pg_dump %d is older than the server at %s (PostgreSQL %d) and "
                       "cannot dump it: install postgresql-client-%d (pg_dump must be at least "
                       "the server's major version)",
                       dump_major, server, smaj, smaj);
    return 0;
}

int postgres_select(const char *server, char *const *avail, size_t n_avail, char *const *names,
                    size_t n_names, bool all, char *const *excl, size_t n_excl, const char ***out,
                    size_t *out_n)
{
    return svc_select("postgres", server, avail, n_avail, names, n_names, all, excl, n_excl, out,
                      out_n);
}

/* "HOST:PORT" as the programs will see it. */
static void server_name(const postgres_conn_t *c, char *out, size_t len)
{
    const char *h = c->host ? c->host : getenv("PGHOST");
    const char *pe = getenv("PGPORT");
    if (!h || !*h)
        h = "localhost";
    if (c->port > 0)
        snprintf(out, len, "%s:%d", h, c->port);
    else
        snprintf(out, len, "%s:%s", h, pe && *pe ? pe : "5432");
}

static int conn_args(const postgres_conn_t *c, svc_argv_t *a)
{
    int rc = svc_argv_add(a, "-w");
    if (!rc && c->host)
        rc = svc_argv_addf(a, "--host=%s", c->host);
    if (!rc && c->port > 0)
        rc = svc_argv_addf(a, "--port=%d", c->port);
    if (!rc && c->user)
        rc = svc_argv_addf(a, "--username=%s", c->user);
    return rc;
}

static int conn_env(const postgres_conn_t *c, svc_argv_t *e)
{
    int rc = 0;
    if (c->password)
        rc = svc_argv_addf(e, "PGPASSWORD=%s", c->password);
    if (!rc && c->sslmode)
        rc = svc_argv_addf(e, "PGSSLMODE=%s", c->sslmode);
    if (!rc && c->sslrootcert)
        rc = svc_argv_addf(e, "PGSSLROOTCERT=%s", c->sslrootcert);
    if (!rc && c->sslcert)
        rc = svc_argv_addf(e, "PGSSLCERT=%s", c->sslcert);
    if (!rc && c->sslkey)
        rc = svc_argv_addf(e, "PGSSLKEY=%s", c->sslkey);
    if (!rc && !getenv("PGCONNECT_TIMEOUT"))
        rc = svc_argv_add(e, "PGCONNECT_TIMEOUT=15");
    if (!rc && !getenv("PGAPPNAME"))
        rc = svc_argv_add(e, "PGAPPNAME=coffer");
    return rc;
}

static const char *maint_db(const postgres_conn_t *c)
{
    return c->maintenance_db ? c->maintenance_db : "postgres";
}

/* The server version and the databases that accept connections (templates left out). */
static int server_info(const pgtools_t *t, const postgres_conn_t *c, const char *server,
                       char *const *env, long *out_num, svc_argv_t *out_dbs)
{
    svc_argv_t a;
    svc_argv_init(&a);
    buf_t out;
    buf_init(&out);
    int rc = svc_argv_add(&a, t->psql);
    if (!rc)
        rc = conn_args(c, &a);
    if (!rc)
        rc = svc_argv_add(&a, "-X");
    if (!rc)
        rc = svc_argv_add(&a, "-A");
    if (!rc)
        rc = svc_argv_add(&a, "-t");
    if (!rc)
        rc = svc_argv_add(&a, "-0");
    if (!rc)
        rc = svc_argv_addf(&a, "--dbname=%s", maint_db(c));
    if (!rc)
        rc = svc_argv_add(&a, "-c");
    if (!rc)
        rc = svc_argv_add(&a, "select v from (select 0 o, current_setting('server_version_num') v "
                              "union all select 1, datname::text from pg_database where "
                              "datallowconn and not datistemplate) x order by o, v");
    char what[512];
    snprintf(what, sizeof what, "postgres: connecting to the server at %s (psql)", server);
    if (!rc)
        rc = svc_capture(a.v, env, NULL, what, &out);
    if (rc)
        goto out;
    char *s = (char *)out.data, *end = s + out.len;
    long num = -1;
    while (s < end && !rc) {
        size_t l = strnlen(s, (size_t)(end - s));
        while (l && (s[l - 1] == '\n'))
            s[--l] = 0;
        if (num < 0)
            num = strtol(s, NULL, 10);
        else if (l)
            rc = svc_argv_add(out_dbs, s);
        s += strlen(s) + 1;
        while (s < end && *s == '\n')
            s++;
    }
    if (!rc && num <= 0)
        rc = err_set(COFFER_EIO, "postgres: the server at %s did not report its version", server);
    if (!rc)
        *out_num = num;
out:
    buf_release(&out);
    svc_argv_release(&a);
    return rc;
}

static int dump_major(const char *pg_dump)
{
    char *const argv[] = {(char *)pg_dump, "--version", NULL};
    buf_t out;
    buf_init(&out);
    int rc = svc_capture(argv, NULL, NULL, "postgres: pg_dump --version", &out);
    if (!rc) {
        int m = postgres_tool_major((char *)out.data);
        rc = m > 0 ? m : err_set(COFFER_EINVAL, "postgres: cannot read the version of %s", pg_dump);
    }
    buf_release(&out);
    return rc;
}

static void file_name_for(const char *db, const char *ext, char *out, size_t len)
{
    size_t k = 0;
    for (const char *s = db; *s && k + 16 < len; s++)
        out[k++] = *s == '/' ? '_' : *s;
    snprintf(out + k, len - k, "%s", ext);
}

int postgres_backup(repo_t *r, const postgres_backup_opts_t *o, svc_report_fn report, void *ctx)
{
    pgtools_t t = {0};
    svc_argv_t env, dbs;
    svc_argv_init(&env);
    svc_argv_init(&dbs);
    const char **sel = NULL;
    size_t n_sel = 0;
    char server[512];
    long num = 0;
    buf_t failed;
    buf_init(&failed);
    int first_rc = 0, n_failed = 0;
    server_name(&o->conn, server, sizeof server);
    int rc = tool("pg_dump", &t.pg_dump);
    if (!rc)
        rc = tool("psql", &t.psql);
    if (!rc && o->globals)
        rc = tool("pg_dumpall", &t.pg_dumpall);
    if (!rc)
        rc = conn_env(&o->conn, &env);
    if (rc)
        goto out;
    int major = dump_major(t.pg_dump);
    if (major < 0) {
        rc = major;
        goto out;
    }
    if ((rc = server_info(&t, &o->conn, server, env.v, &num, &dbs)) ||
        (rc = postgres_check_version(server, num, major)))
        goto out;
    if ((o->n_databases || o->all_databases) &&
        (rc = postgres_select(server, dbs.v, dbs.n, o->databases, o->n_databases, o->all_databases,
                              o->excludes, o->n_excludes, &sel, &n_sel)))
        goto out;
    if (!n_sel && !o->globals) {
        rc = err_set(COFFER_EINVAL,
                     "postgres: nothing to back up on %s: give --database NAME, "
                     "--all-databases or --globals",
                     server);
        goto out;
    }
    for (size_t i = 0; i <= n_sel; i++) {
        bool globals = i == n_sel;
        if (globals && !o->globals)
            break;
        if (o->common.stop && *o->common.stop) {
            rc = err_set(COFFER_EINTR, "postgres: interrupted");
            goto out;
        }
        svc_argv_t a;
        svc_argv_init(&a);
        char fname[1024];
        const char *db = globals ? "_globals" : sel[i];
        file_name_for(db, globals || o->plain ? ".sql" : ".dump", fname, sizeof fname);
        int drc = svc_argv_add(&a, globals ? t.pg_dumpall : t.pg_dump);
        if (!drc)
            drc = conn_args(&o->conn, &a);
        if (!drc && globals)
            drc = svc_argv_add(&a, "--globals-only");
        if (!drc && globals)
            drc = svc_argv_addf(&a, "--database=%s", maint_db(&o->conn));
        if (!drc && !globals)
            drc = svc_argv_add(&a, o->plain ? "--format=plain" : "--format=custom");
        if (!drc && !globals && !o->plain)
            drc = svc_argv_addf(&a, "--compress=%d", o->compress);
        for (size_t k = 0; k < o->n_extra_args && !drc && !globals; k++)
            drc = svc_argv_add(&a, o->extra_args[k]);
        if (!drc && !globals)
            drc = svc_argv_add(&a, sel[i]);
        if (!drc) {
            svc_dump_t d = {.kind = "postgres",
                            .server = server,
                            .database = db,
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
            buf_printf(&failed, "%s%s", failed.len ? ", " : "", db);
            log_debug("%s", err_msg());
            if (drc == COFFER_EINTR)
                break;
        }
    }
    if (first_rc == COFFER_EINTR)
        rc = first_rc; /* its message says what was interrupted */
    else if (first_rc)
        rc = err_set(first_rc, "postgres: %d dump%s on %s failed (%s)", n_failed,
                     n_failed == 1 ? "" : "s", server, (char *)failed.data);
out:
    buf_release(&failed);
    free(sel);
    svc_argv_release(&dbs);
    for (size_t i = 0; i < env.n; i++)
        memset(env.v[i], 0, strlen(env.v[i]));
    svc_argv_release(&env);
    tools_release(&t);
    return rc;
}

/* Create database `name` unless it exists (psql quotes it with format %I). */
static int ensure_database(const pgtools_t *t, const postgres_conn_t *c, const char *server,
                           char *const *env, const char *name)
{
    svc_argv_t a;
    svc_argv_init(&a);
    buf_t out;
    buf_init(&out);
    int rc = svc_argv_add(&a, t->psql);
    if (!rc)
        rc = conn_args(c, &a);
    if (!rc)
        rc = svc_argv_add(&a, "-X");
    if (!rc)
        rc = svc_argv_add(&a, "-q");
    if (!rc)
        rc = svc_argv_add(&a, "-v");
    if (!rc)
        rc = svc_argv_add(&a, "ON_ERROR_STOP=1");
    if (!rc)
        rc = svc_argv_add(&a, "-v");
    if (!rc)
        rc = svc_argv_addf(&a, "target=%s", name);
    if (!rc)
        rc = svc_argv_addf(&a, "--dbname=%s", maint_db(c));
    char what[512];
    snprintf(what, sizeof what, "postgres: cannot create database \"%s\" on %s", name, server);
    if (!rc)
        rc = svc_capture(a.v, env,
                         "select format('CREATE DATABASE %I TEMPLATE template0', :'target') "
                         "where not exists (select 1 from pg_database where datname = "
                         ":'target') \\gexec\n",
                         what, &out);
    if (!rc && out.len)
        log_info("postgres: created database %s on %s", name, server);
    buf_release(&out);
    svc_argv_release(&a);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int postgres_restore(repo_t *r, const snapshot_t *s, const postgres_restore_opts_t *o,
                     const char **out_target)
{
    pgtools_t t = {0};
    svc_argv_t env, a;
    svc_argv_init(&env);
    svc_argv_init(&a);
    node_t n;
    node_init(&n);
    char *tmpdir = NULL, *tmpfile = NULL;
    char server[512], what[1024];
    const char *target = NULL;
    bool globals = false, plain = false;
    server_name(&o->conn, server, sizeof server);
    int rc = svc_snapshot_file(r, s, "postgres", o->force, &n);
    if (rc)
        goto out;
    const char *db = svc_snapshot_tag(s, "database");
    if (!db) {
        rc = err_set(COFFER_ECORRUPT, "postgres: the snapshot has no database= tag");
        goto out;
    }
    globals = strcmp(db, "_globals") == 0;
    plain = ends_with(n.name, ".sql");
    target = o->as ? o->as : db;
    if (globals && o->as) {
        rc = err_set(COFFER_EINVAL, "postgres: --as does not apply to a _globals snapshot "
                                    "(roles and tablespaces belong to the server)");
        goto out;
    }
    if (plain && o->clean) {
        rc = err_set(COFFER_EINVAL, "postgres: --clean needs a custom-format dump; this one is "
                                    "plain SQL: drop the database first, then restore");
        goto out;
    }
    if ((rc = tool("psql", &t.psql)) || (!plain && (rc = tool("pg_restore", &t.pg_restore))) ||
        (rc = conn_env(&o->conn, &env)))
        goto out;
    if (!globals && !o->no_create && (rc = ensure_database(&t, &o->conn, server, env.v, target)))
        goto out;
    if (plain) {
        /* psql reads the dump from stdin; roles that exist already are reported and skipped */
        if (!(rc = svc_argv_add(&a, t.psql)) && !(rc = conn_args(&o->conn, &a)) &&
            !(rc = svc_argv_add(&a, "-X")) && !(rc = svc_argv_add(&a, "-q")) &&
            !(rc = svc_argv_add(&a, "--output=/dev/null")) && !globals)
            rc = svc_argv_add(&a, "--set=ON_ERROR_STOP=1");
        if (!rc)
            rc = svc_argv_addf(&a, "--dbname=%s", globals ? maint_db(&o->conn) : target);
        for (size_t k = 0; k < o->n_extra_args && !rc; k++)
            rc = svc_argv_add(&a, o->extra_args[k]);
        if (!rc)
            rc = svc_argv_add(&a, "--file=-");
        snprintf(what, sizeof what, "postgres: restoring %s into %s on %s (psql)", n.name,
                 globals ? "the server" : target, server);
        if (!rc)
            rc = svc_restore_pipe(r, &n, a.v, env.v, what, o->stop, NULL, NULL);
        goto out;
    }
    if (!(rc = svc_argv_add(&a, t.pg_restore)) && !(rc = conn_args(&o->conn, &a)))
        rc = svc_argv_addf(&a, "--dbname=%s", target);
    if (!rc && o->clean && !(rc = svc_argv_add(&a, "--clean")))
        rc = svc_argv_add(&a, "--if-exists");
    if (!rc && o->no_owner)
        rc = svc_argv_add(&a, "--no-owner");
    if (!rc && o->jobs > 1)
        rc = svc_argv_addf(&a, "--jobs=%d", o->jobs);
    for (size_t k = 0; k < o->n_extra_args && !rc; k++)
        rc = svc_argv_add(&a, o->extra_args[k]);
    snprintf(what, sizeof what, "postgres: restoring %s into %s on %s (pg_restore)", n.name, target,
             server);
    if (rc)
        goto out;
    if (o->jobs > 1) {
        /* parallel restore reads the archive from a file: a private 0600 copy, removed after */
        if ((rc = svc_tmpdir_new(&tmpdir)) ||
            (rc = svc_write_private(tmpdir, "restore.dump", "", 0, &tmpfile)))
            goto out;
        int fd = open(tmpfile, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0) {
            rc = err_errno("cannot open %s", tmpfile);
            goto out;
        }
        rc = svc_write_file(r, &n, fd, o->stop, NULL, NULL);
        if (close(fd) != 0 && !rc)
            rc = err_errno("cannot write %s", tmpfile);
        if (rc) {
            rc = err_ctx(rc, "while writing the dump to %s for pg_restore --jobs", tmpfile);
            goto out;
        }
        if (!(rc = svc_argv_add(&a, tmpfile)))
            rc = svc_run(a.v, env.v, what);
    } else {
        rc = svc_restore_pipe(r, &n, a.v, env.v, what, o->stop, NULL, NULL);
    }
out:
    if (!rc && out_target)
        *out_target = globals ? "the server (roles and tablespaces)" : target;
    svc_tmpdir_remove(tmpdir);
    free(tmpdir);
    free(tmpfile);
    node_release(&n);
    svc_argv_release(&a);
    for (size_t i = 0; i < env.n; i++)
        memset(env.v[i], 0, strlen(env.v[i]));
    svc_argv_release(&env);
    tools_release(&t);
    return rc;
}
