/*
 * mysql.h -- the mysql/mariadb service source: mariadb-dump (or mysqldump) per database
 * with --single-transaction --routines --events --triggers, each stored as its own snapshot;
 * restore through the mariadb (or mysql) client, optionally under another name.
 *
 * Layer: source/mysql (uses source/service). Databases are dumped without --databases, so
 * the dump holds no CREATE DATABASE / USE statement and restores into any database name. The
 * password reaches the programs as MYSQL_PWD in their environment, never argv. With
 * replica_pause, STOP REPLICA SQL_THREAD runs before the dump and START REPLICA SQL_THREAD
 * after it, also when the dump fails.
 */
#ifndef COFFER_SOURCE_MYSQL_MYSQL_H
#define COFFER_SOURCE_MYSQL_MYSQL_H

#include "source/service.h"

typedef struct mysql_conn {
    const char *host;     /* NULL: the client's default (socket or localhost) */
    int port;             /* 0: 3306 */
    const char *user;     /* NULL: the client's default */
    const char *password; /* NULL: MYSQL_PWD from the environment or option files */
    const char *socket;   /* unix socket path (instead of host/port) */
} mysql_conn_t;

typedef struct mysql_backup_opts {
    mysql_conn_t conn;
    char *const *databases;
    size_t n_databases;
    bool all_databases; /* all but information_schema, performance_schema, sys, mysql */
    char *const *excludes;
    size_t n_excludes;
    bool replica_pause;
    char *const *extra_args; /* more dump arguments */
    size_t n_extra_args;
    svc_common_t common;
} mysql_backup_opts_t;

int mysql_backup(repo_t *r, const mysql_backup_opts_t *o, svc_report_fn report, void *ctx);

typedef struct mysql_restore_opts {
    mysql_conn_t conn;
    const char *as; /* restore into this database instead of the original name */
    bool no_create; /* the database must exist already */
    bool force;     /* restore a failed snapshot */
    char *const *extra_args;
    size_t n_extra_args;
    volatile sig_atomic_t *stop;
} mysql_restore_opts_t;

int mysql_restore(repo_t *r, const snapshot_t *s, const mysql_restore_opts_t *o,
                  const char **out_target);

/* "11.4.2-MariaDB-log" / "8.0.36" -> is it supported (MySQL >= 5.5, any MariaDB)? */
int mysql_check_version(const char *server, const char *version);
/* A database name quoted as a MySQL identifier (`a``b`) into out. */
int mysql_quote_ident(const char *name, buf_t *out);

#endif
