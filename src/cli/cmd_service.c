/*
 * cmd_service.c -- `coffer backup --postgres|--mysql|--redis|--ldap ...` and
 * `coffer restore SNAP --postgres|--mysql|--redis|--ldap ...`: the service sources on the
 * command line (doc/services.md).
 *
 * Layer: cli, a thin layer over the service APIs (source/postgres, mysql, redis, ldap): it
 * parses options, reads passwords from the environment (never flags), prints one line per
 * snapshot and maps errors to exit codes. cmd_backup and cmd_restore hand over to this file
 * when they see a service flag (cli_service_kind).
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "common/log.h"
#include "source/ldap/ldap.h"
#include "source/mysql/mysql.h"
#include "source/postgres/postgres.h"
#include "source/redis/redis.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 1024

enum { K_PG = 1, K_MY = 2, K_RE = 4, K_LD = 8, K_ALL = 15 };

static const struct {
    const char *flag, *kind;
    int bit;
} kinds[] = {{"--postgres", "postgres", K_PG},
             {"--mysql", "mysql", K_MY},
             {"--mariadb", "mysql", K_MY},
             {"--redis", "redis", K_RE},
             {"--ldap", "ldap", K_LD}};

const char *cli_service_kind(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            if (strcmp(argv[i], kinds[k].flag) == 0)
                return kinds[k].kind;
    }
    return NULL;
}

static int kind_bit(const char *kind)
{
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strcmp(kind, kinds[k].kind) == 0)
            return kinds[k].bit;
    return 0;
}

/* Options, with the services each applies to (backup and restore share the table). */
enum {
    O_KIND = 256,
    O_TAG,
    O_HOST,
    O_JOB,
    O_THREADS,
    O_SERVER,
    O_PORT,
    O_USER,
    O_SOCKET,
    O_DB,
    O_ALLDB,
    O_EXCL,
    O_GLOBALS,
    O_FORMAT,
    O_COMPRESS,
    O_SSLMODE,
    O_SSLROOT,
    O_SSLCERT,
    O_SSLKEY,
    O_MAINT,
    O_REPLICA,
    O_EXTRA,
    O_URI,
    O_BINDDN,
    O_BASE,
    O_SLAPCAT,
    O_SLAPADD,
    O_SLAPDCONF,
    O_CONFDIR,
    O_AS,
    O_CLEAN,
    O_JOBS,
    O_NOCREATE,
    O_NOOWNER,
    O_FORCE,
    O_TARGET,
    O_DBFILE,
    O_HELP,
};

static const struct {
    int id, kinds;
    bool backup, restore;
} applies[] = {
    {O_TAG, K_ALL, 1, 1},
    {O_HOST, K_ALL, 1, 1},
    {O_JOB, K_ALL, 1, 0},
    {O_THREADS, K_ALL, 1, 0},
    {O_SERVER, K_PG | K_MY | K_RE, 1, 1},
    {O_PORT, K_PG | K_MY | K_RE, 1, 1},
    {O_USER, K_PG | K_MY | K_RE, 1, 1},
    {O_SOCKET, K_MY, 1, 1},
    {O_DB, K_PG | K_MY, 1, 1},
    {O_ALLDB, K_PG | K_MY, 1, 0},
    {O_EXCL, K_PG | K_MY, 1, 0},
    {O_GLOBALS, K_PG, 1, 0},
    {O_FORMAT, K_PG, 1, 0},
    {O_COMPRESS, K_PG, 1, 0},
    {O_SSLMODE, K_PG, 1, 1},
    {O_SSLROOT, K_PG, 1, 1},
    {O_SSLCERT, K_PG, 1, 1},
    {O_SSLKEY, K_PG, 1, 1},
    {O_MAINT, K_PG, 1, 1},
    {O_REPLICA, K_MY, 1, 0},
    {O_EXTRA, K_ALL, 1, 1},
    {O_URI, K_LD, 1, 1},
    {O_BINDDN, K_LD, 1, 1},
    {O_BASE, K_LD, 1, 0},
    {O_SLAPCAT, K_LD, 1, 0},
    {O_SLAPADD, K_LD, 0, 1},
    {O_SLAPDCONF, K_LD, 1, 1},
    {O_CONFDIR, K_LD, 1, 1},
    {O_AS, K_PG | K_MY, 0, 1},
    {O_CLEAN, K_PG, 0, 1},
    {O_JOBS, K_PG, 0, 1},
    {O_NOCREATE, K_PG | K_MY, 0, 1},
    {O_NOOWNER, K_PG, 0, 1},
    {O_FORCE, K_ALL, 0, 1},
    {O_TARGET, K_RE, 0, 1},
    {O_DBFILE, K_RE, 0, 1},
};

static const struct option long_opts[] = {{"postgres", no_argument, 0, O_KIND},
                                          {"mysql", no_argument, 0, O_KIND},
                                          {"mariadb", no_argument, 0, O_KIND},
                                          {"redis", no_argument, 0, O_KIND},
                                          {"ldap", no_argument, 0, O_KIND},
                                          {"tag", required_argument, 0, O_TAG},
                                          {"host", required_argument, 0, O_HOST},
                                          {"job", required_argument, 0, O_JOB},
                                          {"threads", required_argument, 0, O_THREADS},
                                          {"server", required_argument, 0, O_SERVER},
                                          {"port", required_argument, 0, O_PORT},
                                          {"user", required_argument, 0, O_USER},
                                          {"socket", required_argument, 0, O_SOCKET},
                                          {"database", required_argument, 0, O_DB},
                                          {"all-databases", no_argument, 0, O_ALLDB},
                                          {"exclude-database", required_argument, 0, O_EXCL},
                                          {"globals", no_argument, 0, O_GLOBALS},
                                          {"format", required_argument, 0, O_FORMAT},
                                          {"compress", required_argument, 0, O_COMPRESS},
                                          {"sslmode", required_argument, 0, O_SSLMODE},
                                          {"sslrootcert", required_argument, 0, O_SSLROOT},
                                          {"sslcert", required_argument, 0, O_SSLCERT},
                                          {"sslkey", required_argument, 0, O_SSLKEY},
                                          {"maintenance-db", required_argument, 0, O_MAINT},
                                          {"replica-pause", no_argument, 0, O_REPLICA},
                                          {"extra-arg", required_argument, 0, O_EXTRA},
                                          {"uri", required_argument, 0, O_URI},
                                          {"bind-dn", required_argument, 0, O_BINDDN},
                                          {"base", required_argument, 0, O_BASE},
                                          {"slapcat", no_argument, 0, O_SLAPCAT},
                                          {"slapadd", no_argument, 0, O_SLAPADD},
                                          {"slapd-conf", required_argument, 0, O_SLAPDCONF},
                                          {"slapd-config-dir", required_argument, 0, O_CONFDIR},
                                          {"as", required_argument, 0, O_AS},
                                          {"clean", no_argument, 0, O_CLEAN},
                                          {"jobs", required_argument, 0, O_JOBS},
                                          {"no-create", no_argument, 0, O_NOCREATE},
                                          {"no-owner", no_argument, 0, O_NOOWNER},
                                          {"force", no_argument, 0, O_FORCE},
                                          {"target", required_argument, 0, O_TARGET},
                                          {"dbfilename", required_argument, 0, O_DBFILE},
                                          {"help", no_argument, 0, O_HELP},
                                          {0, 0, 0, 0}};

typedef struct sopts {
    const char *kind;
    int bit;
    char *tags[MAX_LIST], *dbs[MAX_LIST], *excl[MAX_LIST], *extra[MAX_LIST];
    size_t n_tags, n_dbs, n_excl, n_extra;
    const char *host, *job, *server, *user, *socket, *format, *sslmode, *sslroot, *sslcert, *sslkey,
        *maint, *uri, *binddn, *base, *slapdconf, *confdir, *as, *target, *dbfile;
    int threads, port, compress, jobs;
    bool alldb, globals, replica, slapcat, slapadd, clean, nocreate, noowner, force;
} sopts_t;

static void help(bool backup)
{
    if (backup)
        printf("usage: coffer backup --postgres|--mysql|--redis|--ldap [options]\n"
               "One snapshot per database, kind = the service, tags kind=, server=, database=.\n"
               "  --server H --port P --user U   where to connect (postgres, mysql, redis)\n"
               "  --database DB        a database to dump (repeatable; postgres, mysql)\n"
               "  --all-databases      every database (postgres: not templates; mysql: not\n"
               "                       information_schema, performance_schema, sys, mysql)\n"
               "  --exclude-database DB  leave one out of --all-databases (repeatable)\n"
               "postgres: --globals (roles, tablespaces: snapshot of database _globals)\n"
               "          --format custom|plain (default custom, uncompressed: --compress N)\n"
               "          --sslmode M --sslrootcert F --sslcert F --sslkey F --maintenance-db DB\n"
               "mysql:    --socket PATH, --replica-pause (STOP/START REPLICA SQL_THREAD around)\n"
               "ldap:     --uri URI --bind-dn DN --base DN     (online export with ldapsearch)\n"
               "          --slapcat --base DN (--slapd-conf F | --slapd-config-dir D)\n"
               "all:      --extra-arg ARG (repeatable; passed to the dump program), --tag T,\n"
               "          --host H (snapshot host name), --job NAME, --threads N\n"
               "passwords (never flags): PGPASSWORD or PGPASSWORD_FILE (or PGPASSFILE),\n"
               "  MYSQL_PWD or MYSQL_PWD_FILE, REDISCLI_AUTH or REDISCLI_AUTH_FILE,\n"
               "  LDAP_PASSWORD or LDAP_PASSWORD_FILE\n"
               "exit: 0 ok, 1 a dump failed (its snapshot is marked failed) or could not start\n");
    else
        printf("usage: coffer restore SNAP --postgres|--mysql|--redis|--ldap [options]\n"
               "  SNAP                \"latest\" (of that kind; --database NAME, --tag T and\n"
               "                      --host H narrow it) or an id prefix\n"
               "postgres: --server H --port P --user U [--as DB] [--clean] [--jobs N]\n"
               "          [--no-create] [--no-owner]     (creates the database if missing)\n"
               "mysql:    --server H --port P --user U [--socket S] [--as DB] [--no-create]\n"
               "redis:    --target DIR [--dbfilename dump.rdb]   (server stopped)\n"
               "ldap:     --slapadd (--slapd-conf F | --slapd-config-dir D)  (server stopped)\n"
               "          or --uri URI --bind-dn DN   (ldapadd into a running server)\n"
               "all:      --force (restore a failed snapshot), --extra-arg ARG\n");
}

static int list_add(char **l, size_t *n, const char *v, const char *what)
{
    if (*n == MAX_LIST)
        return cli_usage("backup", "too many %s options", what);
    l[(*n)++] = (char *)v;
    return 0;
}

static int parse(int argc, char **argv, bool backup, sopts_t *o)
{
    const char *cmd = backup ? "backup" : "restore";
    int c, idx;
    o->kind = cli_service_kind(argc, argv);
    o->bit = kind_bit(o->kind);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_opts, &idx)) != -1) {
        if (c == '?')
            return cli_usage(cmd, "unknown option (see `coffer %s --%s --help`)", cmd, o->kind);
        if (c == 'h' || c == O_HELP) {
            help(backup);
            return -1;
        }
        if (c == O_KIND) {
            if (kind_bit(cli_service_kind(2, (char *[]){"", argv[optind - 1], NULL})) != o->bit)
                return cli_usage(cmd, "give one service: --postgres, --mysql, --redis or --ldap");
            continue;
        }
        for (size_t i = 0; i < sizeof applies / sizeof applies[0]; i++) {
            if (applies[i].id != c)
                continue;
            if (!(applies[i].kinds & o->bit) || !(backup ? applies[i].backup : applies[i].restore))
                return cli_usage(cmd, "--%s does not apply to %s --%s", long_opts[idx].name, cmd,
                                 o->kind);
        }
        int rc = 0;
        switch (c) {
        case O_TAG:
            rc = list_add(o->tags, &o->n_tags, optarg, "--tag");
            break;
        case O_HOST:
            o->host = optarg;
            break;
        case O_JOB:
            o->job = optarg;
            break;
        case O_THREADS:
            o->threads = atoi(optarg);
            if (o->threads < 1 || o->threads > 256)
                return cli_usage(cmd, "--threads takes 1 to 256");
            break;
        case O_SERVER:
            o->server = optarg;
            break;
        case O_PORT:
            o->port = atoi(optarg);
            if (o->port < 1 || o->port > 65535)
                return cli_usage(cmd, "--port takes 1 to 65535");
            break;
        case O_USER:
            o->user = optarg;
            break;
        case O_SOCKET:
            o->socket = optarg;
            break;
        case O_DB:
            rc = list_add(o->dbs, &o->n_dbs, optarg, "--database");
            break;
        case O_ALLDB:
            o->alldb = true;
            break;
        case O_EXCL:
            rc = list_add(o->excl, &o->n_excl, optarg, "--exclude-database");
            break;
        case O_GLOBALS:
            o->globals = true;
            break;
        case O_FORMAT:
            if (strcmp(optarg, "custom") != 0 && strcmp(optarg, "plain") != 0)
                return cli_usage(cmd, "--format is custom or plain");
            o->format = optarg;
            break;
        case O_COMPRESS:
            o->compress = atoi(optarg);
            if (o->compress < 0 || o->compress > 9)
                return cli_usage(cmd, "--compress takes 0 to 9");
            break;
        case O_SSLMODE:
            o->sslmode = optarg;
            break;
        case O_SSLROOT:
            o->sslroot = optarg;
            break;
        case O_SSLCERT:
            o->sslcert = optarg;
            break;
        case O_SSLKEY:
            o->sslkey = optarg;
            break;
        case O_MAINT:
            o->maint = optarg;
            break;
        case O_REPLICA:
            o->replica = true;
            break;
        case O_EXTRA:
            rc = list_add(o->extra, &o->n_extra, optarg, "--extra-arg");
            break;
        case O_URI:
            o->uri = optarg;
            break;
        case O_BINDDN:
            o->binddn = optarg;
            break;
        case O_BASE:
            o->base = optarg;
            break;
        case O_SLAPCAT:
            o->slapcat = true;
            break;
        case O_SLAPADD:
            o->slapadd = true;
            break;
        case O_SLAPDCONF:
            o->slapdconf = optarg;
            break;
        case O_CONFDIR:
            o->confdir = optarg;
            break;
        case O_AS:
            o->as = optarg;
            break;
        case O_CLEAN:
            o->clean = true;
            break;
        case O_JOBS:
            o->jobs = atoi(optarg);
            if (o->jobs < 1 || o->jobs > 64)
                return cli_usage(cmd, "--jobs takes 1 to 64");
            break;
        case O_NOCREATE:
            o->nocreate = true;
            break;
        case O_NOOWNER:
            o->noowner = true;
            break;
        case O_FORCE:
            o->force = true;
            break;
        case O_TARGET:
            o->target = optarg;
            break;
        case O_DBFILE:
            if (!*optarg || strchr(optarg, '/'))
                return cli_usage(cmd, "--dbfilename is a plain file name");
            o->dbfile = optarg;
            break;
        default:
            return cli_usage(cmd, "unknown option");
        }
        if (rc)
            return rc;
    }
    return 0;
}

typedef struct report_ctx {
    cli_t *cli;
    int saved, failed;
} report_ctx_t;

static void report(void *ctx, const svc_result_t *res)
{
    report_ctx_t *rc = ctx;
    cli_t *cli = rc->cli;
    if (res->rc)
        rc->failed++;
    else
        rc->saved++;
    if (res->rc && res->rc != COFFER_EINTR)
        log_error("%s", res->message);
    if (!res->snap)
        return;
    const snapshot_t *s = res->snap;
    if (cli->json) {
        json_t *o = cli_snapshot_json(s);
        json_object_set_new(o, "message_type", json_string("summary"));
        cli_json_line(o);
        return;
    }
    if (cli->quiet)
        return;
    char hex[65], added[32], readb[32];
    hex_encode(s->id, 32, hex);
    cli_fmt_bytes(s->summary.bytes_added, added, sizeof added);
    cli_fmt_bytes(s->summary.bytes_read, readb, sizeof readb);
    printf("%s %s on %s: snapshot %.8s saved (%s): read %s, added %s in %.2f s\n", res->kind,
           res->database, res->server, hex, s->status, readb, added, s->summary.duration_s);
}

/* Secrets from the environment (VAR or VAR_FILE) for the chosen service. */
static int get_secret(const char *var, char **out)
{
    int rc = svc_secret_from_env(var, out);
    return rc;
}

int cmd_service_backup(cli_t *cli, int argc, char **argv)
{
    sopts_t o = {0};
    int rc = parse(argc, argv, true, &o);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if (optind < argc && strcmp(argv[optind], "--") != 0)
        return cli_usage("backup", "unexpected argument \"%s\" with --%s", argv[optind], o.kind);
    if ((o.bit & (K_PG | K_MY)) && !o.n_dbs && !o.alldb && !o.globals)
        return cli_usage("backup", "give --database NAME (repeatable) or --all-databases%s",
                         o.bit == K_PG ? " (or --globals)" : "");
    if (o.n_excl && !o.alldb)
        return cli_usage("backup", "--exclude-database goes with --all-databases");
    if (o.bit == K_LD && !o.slapcat && !o.uri)
        return cli_usage("backup", "--ldap needs --uri URI (ldapsearch) or --slapcat");
    if (o.bit == K_LD && !o.base)
        return cli_usage("backup", "--ldap needs --base DN (the suffix to export)");
    if (o.bit == K_LD && o.slapcat && (o.uri || o.binddn))
        return cli_usage("backup", "--slapcat reads the database files: no --uri/--bind-dn");

    repo_t *r = NULL;
    char *pw = NULL;
    _Atomic uint64_t bytes = 0, items = 0;
    report_ctx_t rctx = {.cli = cli};
    svc_common_t common = {.host = o.host,
                           .job = o.job,
                           .tags = o.tags,
                           .n_tags = o.n_tags,
                           .threads = o.threads,
                           .stop = &cli_stop,
                           .bytes_done = &bytes};
    const char *pwvar = o.bit == K_PG   ? "PGPASSWORD"
                        : o.bit == K_MY ? "MYSQL_PWD"
                        : o.bit == K_RE ? "REDISCLI_AUTH"
                                        : "LDAP_PASSWORD";
    if ((rc = get_secret(pwvar, &pw)))
        goto out;
    if ((rc = cli_open_repo(cli, &r)))
        goto out;
    cli_progress_t *prog = cli_progress_start(cli, "dump", &bytes, &items, 0);
    switch (o.bit) {
    case K_PG: {
        postgres_backup_opts_t po = {.conn = {.host = o.server,
                                              .port = o.port,
                                              .user = o.user,
                                              .password = pw,
                                              .sslmode = o.sslmode,
                                              .sslrootcert = o.sslroot,
                                              .sslcert = o.sslcert,
                                              .sslkey = o.sslkey,
                                              .maintenance_db = o.maint},
                                     .databases = o.dbs,
                                     .n_databases = o.n_dbs,
                                     .all_databases = o.alldb,
                                     .excludes = o.excl,
                                     .n_excludes = o.n_excl,
                                     .globals = o.globals,
                                     .plain = o.format && strcmp(o.format, "plain") == 0,
                                     .compress = o.compress,
                                     .extra_args = o.extra,
                                     .n_extra_args = o.n_extra,
                                     .common = common};
        rc = postgres_backup(r, &po, report, &rctx);
        break;
    }
    case K_MY: {
        mysql_backup_opts_t mo = {.conn = {.host = o.server,
                                           .port = o.port,
                                           .user = o.user,
                                           .password = pw,
                                           .socket = o.socket},
                                  .databases = o.dbs,
                                  .n_databases = o.n_dbs,
                                  .all_databases = o.alldb,
                                  .excludes = o.excl,
                                  .n_excludes = o.n_excl,
                                  .replica_pause = o.replica,
                                  .extra_args = o.extra,
                                  .n_extra_args = o.n_extra,
                                  .common = common};
        rc = mysql_backup(r, &mo, report, &rctx);
        break;
    }
    case K_RE: {
        redis_backup_opts_t ro = {
            .conn = {.host = o.server, .port = o.port, .user = o.user, .password = pw},
            .extra_args = o.extra,
            .n_extra_args = o.n_extra,
            .common = common};
        rc = redis_backup(r, &ro, report, &rctx);
        break;
    }
    default: {
        ldap_backup_opts_t lo = {.slapcat = o.slapcat,
                                 .slapd_conf = o.slapdconf,
                                 .config_dir = o.confdir,
                                 .base = o.base,
                                 .online = {.uri = o.uri, .bind_dn = o.binddn, .password = pw},
                                 .extra_args = o.extra,
                                 .n_extra_args = o.n_extra,
                                 .common = common};
        rc = ldap_backup(r, &lo, report, &rctx);
        break;
    }
    }
    cli_progress_stop(prog);
out:
    svc_secret_free(pw);
    repo_close(r);
    return cli_fail(cli, rc);
}

int cmd_service_restore(cli_t *cli, int argc, char **argv)
{
    sopts_t o = {0};
    int rc = parse(argc, argv, false, &o);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if (argc - optind != 1)
        return cli_usage("restore", "give exactly one snapshot (\"latest\" or an id)");
    if (o.n_dbs > 1)
        return cli_usage("restore", "--database selects one database's snapshot");
    if (o.bit == K_RE && !o.target)
        return cli_usage("restore", "--redis needs --target DIR (the stopped server's data "
                                    "directory)");
    if (o.bit == K_LD && !o.slapadd && !o.uri)
        return cli_usage("restore", "--ldap needs --slapadd (with --slapd-conf or "
                                    "--slapd-config-dir) or --uri URI (ldapadd)");
    if (o.bit == K_LD && o.slapadd && !o.slapdconf && !o.confdir)
        return cli_usage("restore", "--slapadd needs --slapd-conf FILE or --slapd-config-dir "
                                    "DIR (the new database's configuration)");
    const char *spec = argv[optind];
    char kindtag[64], dbtag[1024];
    char *tags[MAX_LIST + 2];
    snprintf(kindtag, sizeof kindtag, "kind=%s", o.kind);
    snap_filter_t f = {.host = o.host, .tags = tags};
    /* "latest" means the latest of this kind (and database); an id names one snapshot, and a
     * snapshot of another kind gets a clear error from the service */
    if (strcmp(spec, "latest") == 0)
        tags[f.n_tags++] = kindtag;
    if (o.n_dbs) {
        snprintf(dbtag, sizeof dbtag, "database=%s", o.dbs[0]);
        tags[f.n_tags++] = dbtag;
    }
    for (size_t i = 0; i < o.n_tags; i++)
        tags[f.n_tags++] = o.tags[i];

    repo_t *r = NULL;
    char *pw = NULL, *path = NULL;
    const char *target = NULL;
    snapshot_t s;
    snapshot_init(&s);
    const char *pwvar = o.bit == K_PG   ? "PGPASSWORD"
                        : o.bit == K_MY ? "MYSQL_PWD"
                        : o.bit == K_RE ? "REDISCLI_AUTH"
                                        : "LDAP_PASSWORD";
    if ((rc = get_secret(pwvar, &pw)) || (rc = cli_open_repo(cli, &r)))
        goto out;
    if ((rc = cli_find_snapshot(r, spec, &f, &s))) {
        if (rc == COFFER_ENOENT && strcmp(spec, "latest") == 0)
            rc = err_set(rc,
                         "no %s snapshot%s%s to restore (see `coffer snapshots --tag "
                         "kind=%s`)",
                         o.kind, o.n_dbs ? " of database " : "", o.n_dbs ? o.dbs[0] : "", o.kind);
        goto out;
    }
    if ((rc = repo_load_index(r)))
        goto out;
    switch (o.bit) {
    case K_PG: {
        postgres_restore_opts_t po = {.conn = {.host = o.server,
                                               .port = o.port,
                                               .user = o.user,
                                               .password = pw,
                                               .sslmode = o.sslmode,
                                               .sslrootcert = o.sslroot,
                                               .sslcert = o.sslcert,
                                               .sslkey = o.sslkey,
                                               .maintenance_db = o.maint},
                                      .as = o.as,
                                      .clean = o.clean,
                                      .no_create = o.nocreate,
                                      .no_owner = o.noowner,
                                      .jobs = o.jobs,
                                      .force = o.force,
                                      .extra_args = o.extra,
                                      .n_extra_args = o.n_extra,
                                      .stop = &cli_stop};
        rc = postgres_restore(r, &s, &po, &target);
        break;
    }
    case K_MY: {
        mysql_restore_opts_t mo = {.conn = {.host = o.server,
                                            .port = o.port,
                                            .user = o.user,
                                            .password = pw,
                                            .socket = o.socket},
                                   .as = o.as,
                                   .no_create = o.nocreate,
                                   .force = o.force,
                                   .extra_args = o.extra,
                                   .n_extra_args = o.n_extra,
                                   .stop = &cli_stop};
        rc = mysql_restore(r, &s, &mo, &target);
        break;
    }
    case K_RE: {
        redis_restore_opts_t ro = {
            .target_dir = o.target, .dbfilename = o.dbfile, .force = o.force, .stop = &cli_stop};
        rc = redis_restore(r, &s, &ro, &path);
        target = path;
        break;
    }
    default: {
        ldap_restore_opts_t lo = {.slapadd = o.slapadd,
                                  .slapd_conf = o.slapdconf,
                                  .config_dir = o.confdir,
                                  .online = {.uri = o.uri, .bind_dn = o.binddn, .password = pw},
                                  .force = o.force,
                                  .extra_args = o.extra,
                                  .n_extra_args = o.n_extra,
                                  .stop = &cli_stop};
        rc = ldap_restore(r, &s, &lo);
        target = o.slapadd ? "the new database" : o.uri;
        break;
    }
    }
    if (rc)
        goto out;
    char hex[65];
    hex_encode(s.id, 32, hex);
    if (cli->json)
        cli_json_line(json_pack("{s:s,s:s,s:s,s:s}", "message_type", "summary", "snapshot", hex,
                                "kind", o.kind, "target", target ? target : ""));
    else if (!cli->quiet)
        printf("restored %s snapshot %.8s into %s\n", o.kind, hex, target ? target : "?");
out:
    free(path);
    snapshot_release(&s);
    svc_secret_free(pw);
    repo_close(r);
    return cli_fail(cli, rc);
}
