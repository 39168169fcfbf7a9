/*
 * postgres.h -- the postgres service source: pg_dump per database (and pg_dumpall
 * --globals-only for roles), each stored as its own snapshot; restore through pg_restore or
 * psql into a server, creating the database when missing.
 *
 * Layer: source/postgres (uses source/service). Connection parameters go to the programs as
 * -h/-p/-U (recorded in the snapshot) and, for the password and TLS settings, as PGPASSWORD,
 * PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY in their environment (never argv). Programs
 * run with -w (never prompt). A server newer than pg_dump, or older than 9.2, is refused
 * before anything is dumped.
 */
#ifndef COFFER_SOURCE_POSTGRES_POSTGRES_H
#define COFFER_SOURCE_POSTGRES_POSTGRES_H

#include "source/service.h"

typedef struct postgres_conn {
    const char *host;     /* host, IP or socket directory; NULL: PGHOST or libpq default */
    int port;             /* 0: PGPORT or 5432 */
    const char *user;     /* NULL: PGUSER or the login name */
    const char *password; /* NULL: libpq's own (PGPASSWORD, PGPASSFILE, ~/.pgpass) */
    const char *sslmode, *sslrootcert, *sslcert, *sslkey; /* NULL: libpq defaults */
    const char *maintenance_db; /* for listing and creating databases; NULL: "postgres" */
} postgres_conn_t;

typedef struct postgres_backup_opts {
    postgres_conn_t conn;
    char *const *databases; /* databases to dump (must exist) */
    size_t n_databases;
    bool all_databases;    /* every database that accepts connections, except templates */
    char *const *excludes; /* names left out of all_databases */
    size_t n_excludes;
    bool globals;            /* also roles and tablespaces (database "_globals") */
    bool plain;              /* plain SQL (-Fp) instead of the custom format (-Fc) */
    int compress;            /* custom format: pg_dump -Z level (default 0: deduplicates) */
    char *const *extra_args; /* more pg_dump arguments */
    size_t n_extra_args;
    svc_common_t common;
} postgres_backup_opts_t;

/* Dump each selected database into its own snapshot (report is called per snapshot). Returns
 * 0 when every dump was saved complete; otherwise the code of the first failure, with a
 * message naming every database that failed. Nothing is dumped when the server cannot be
 * reached, its version is not supported, or a named database does not exist. */
int postgres_backup(repo_t *r, const postgres_backup_opts_t *o, svc_report_fn report, void *ctx);

typedef struct postgres_restore_opts {
    postgres_conn_t conn;
    const char *as; /* restore into this database instead of the original name */
    bool clean;     /* drop objects before recreating them (custom format) */
    bool no_create; /* the database must exist already */
    bool no_owner;  /* do not restore ownership (restoring to another server) */
    int jobs;       /* pg_restore -j (custom format); > 1 uses a private temporary file */
    bool force;     /* restore a snapshot whose status is failed */
    char *const *extra_args;
    size_t n_extra_args;
    volatile sig_atomic_t *stop;
} postgres_restore_opts_t;

/* Restore the dump of snapshot s (index loaded) into the server. *out_target (may be NULL)
 * gets the database restored into (borrowed from s or o). */
int postgres_restore(repo_t *r, const snapshot_t *s, const postgres_restore_opts_t *o,
                     const char **out_target);

/* Pure helpers (unit-tested). */
/* server_version_num (e.g. 150004) against pg_dump's major version (e.g. 15). */
int postgres_check_version(const char *server, long server_num, int dump_major);
/* The major version in `pg_dump --version` output ("pg_dump (PostgreSQL) 15.4 ..."): > 0, or
 * 0 when it cannot be read. */
int postgres_tool_major(const char *version_output);
/* Pick databases: the named ones (each must be in avail) or all of avail minus excludes.
 * *out (caller frees the array only; strings borrowed from the inputs). */
int postgres_select(const char *server, char *const *avail, size_t n_avail, char *const *names,
                    size_t n_names, bool all, char *const *excl, size_t n_excl, const char ***out,
                    size_t *out_n);

#endif
