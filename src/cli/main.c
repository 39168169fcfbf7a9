/*
 * main.c -- coffer's entry point: takes the global options out of argv (they may appear
 * anywhere before "--"), then dispatches to one command.
 *
 * Layer: cli. Each command lives in its own cmd_*.c file; this file only dispatches and
 * prints the overview help.
 */
#include "cli/cmds.h"
#include "common/log.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef COFFER_VERSION
#define COFFER_VERSION COFFER_VERSION_STR
#endif

typedef struct command {
    const char *name;
    int (*fn)(cli_t *, int, char **);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"init", cmd_init, "create a repository"},
    {"backup", cmd_backup, "back up files, directories or a command's output"},
    {"snapshots", cmd_snapshots, "list snapshots"},
    {"ls", cmd_ls, "list the files of a snapshot"},
    {"diff", cmd_diff, "show what changed between two snapshots"},
    {"stats", cmd_stats, "repository and snapshot sizes"},
    {"restore", cmd_restore, "restore a snapshot into a directory"},
    {"dump", cmd_dump, "write one file of a snapshot to stdout"},
    {"check", cmd_check, "verify the repository (structure, or all data)"},
    {"forget", cmd_forget, "remove snapshots by a retention policy"},
    {"prune", cmd_prune, "remove data no snapshot needs (two-phase)"},
    {"unlock", cmd_unlock, "remove a stale prune lease"},
    {"key", cmd_key, "list, add, remove key slots; change the password"},
    {"copy", cmd_copy, "copy snapshots into another repository"},
    {"config", cmd_config, "check a job configuration file"},
    {"job", cmd_job, "run, list or restore configured jobs"},
    {"run", cmd_run, "scheduler daemon: run configured jobs on their schedules"},
    {"k8s", cmd_k8s, "export Kubernetes objects; restore them into a cluster"},
    {"operator", cmd_operator, "in-cluster controller for the coffer.dev resources"},
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "coffer %s -- deduplicated, encrypted backups\n\n"
        "usage: coffer [-r REPO] [-o KEY=VALUE]... [--json] [-q] [-v] COMMAND [OPTIONS] [ARGS]\n\n"
        "commands:\n",
        COFFER_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nglobal options:\n"
               "  -r, --repo REPO   repository location (or COFFER_REPOSITORY)\n"
               "  -o, --option K=V  storage option, e.g. s3.region=eu-west-1 (repeatable;\n"
               "                    see doc/storage.md)\n"
               "  --json            machine-readable output (JSON lines)\n"
               "  -q, --quiet       no progress or informational output\n"
               "  -v, --verbose     more output (repeat for debug)\n"
               "password: COFFER_PASSWORD or COFFER_PASSWORD_FILE, or asked on the terminal\n"
               "exit codes: 0 ok, 1 failed, 2 usage, 3 partial, 10 no repository,\n"
               "            11 prune lease busy, 12 wrong password, 130 interrupted\n"
               "`coffer COMMAND --help` shows a command's options.\n");
}

int main(int argc, char **argv)
{
    /* Few malloc arenas: the worker threads' buffers are large and short-lived, and one arena
     * per thread multiplies what glibc keeps around (peak RSS, bench/RESULTS.md). */
    mallopt(M_ARENA_MAX, 2);
    cli_t cli = {.repo = getenv("COFFER_REPOSITORY")};
    char **args = calloc((size_t)argc + 1, sizeof *args);
    int n = 0;
    bool dashdash = false;
    if (!args)
        return EXIT_FAIL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (dashdash) {
            args[n++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            dashdash = true;
            args[n++] = argv[i];
        } else if (strcmp(a, "-r") == 0 || strcmp(a, "--repo") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "coffer: %s needs a repository location\n", a);
                free(args);
                return EXIT_USAGE;
            }
            cli.repo = argv[++i];
        } else if (strncmp(a, "--repo=", 7) == 0) {
            cli.repo = a + 7;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--option") == 0 ||
                   strncmp(a, "--option=", 9) == 0) {
            const char *kv = a[1] == '-' && a[8] == '=' ? a + 9 : NULL;
            if (!kv && i + 1 >= argc) {
                fprintf(stderr, "coffer: %s needs KEY=VALUE (for example s3.region=eu-west-1)\n",
                        a);
                free(args);
                return EXIT_USAGE;
            }
            if (cli.n_opts >= CLI_MAX_OPTS) {
                fprintf(stderr, "coffer: more than %d storage options given\n", CLI_MAX_OPTS);
                free(args);
                return EXIT_USAGE;
            }
            cli.opts[cli.n_opts++] = kv ? kv : argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            cli.json = true;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            cli.quiet = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            cli.verbose++;
        } else {
            args[n++] = argv[i];
        }
    }
    args[n] = NULL;
    if (n == 0 || strcmp(args[0], "help") == 0 || strcmp(args[0], "--help") == 0 ||
        strcmp(args[0], "-h") == 0) {
        if (n >= 2 && strcmp(args[0], "help") == 0) {
            /* `coffer help CMD` == `coffer CMD --help` */
            args[0] = args[1];
            args[1] = "--help";
        } else {
            usage(n == 0 ? stderr : stdout);
            free(args);
            return n == 0 ? EXIT_USAGE : EXIT_OK;
        }
    }
    if (strcmp(args[0], "version") == 0 || strcmp(args[0], "--version") == 0) {
        printf("coffer %s\n", COFFER_VERSION);
        free(args);
        return EXIT_OK;
    }
    if (cli.quiet)
        log_set_level(LOG_ERROR);
    if (cli.verbose >= 2)
        log_set_level(LOG_DEBUG);
    if (cli.json)
        log_set_json(1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(args[0], commands[i].name) == 0) {
            cli_catch_signals();
            int rc = commands[i].fn(&cli, n, args);
            free(args);
            fflush(stdout);
            return rc;
        }
    }
    fprintf(stderr, "coffer: unknown command \"%s\"\n\n", args[0]);
    usage(stderr);
    free(args);
    return EXIT_USAGE;
}
