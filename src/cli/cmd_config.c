/*
 * cmd_config.c -- `coffer config check --config FILE`: load the job configuration (with its
 * includes and ${VAR} substitutions), report the first error with its file:line:column, or
 * print the effective configuration with secrets masked.
 *
 * Layer: cli (uses sched/config.h). Exit 0 valid, 1 invalid (message on stderr), 2 usage.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "sched/config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: coffer config check [--config FILE] [--quiet]\n"
           "Validates the job configuration (doc/config.md) and prints the effective\n"
           "configuration, includes merged and ${VAR} substituted, secrets shown as \"***\".\n"
           "  --config FILE   the configuration (default: $COFFER_CONFIG)\n"
           "exit: 0 valid, 1 invalid (the message names file:line:column), 2 usage\n");
}

int cmd_config(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *path = getenv("COFFER_CONFIG");
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("config", "unknown option");
        }
    }
    if (optind >= argc || strcmp(argv[optind], "check") != 0)
        return cli_usage("config", "give a subcommand: config check --config FILE");
    if (optind + 1 != argc)
        return cli_usage("config", "config check takes no arguments");
    if (!path || !*path)
        return cli_usage("config", "give the configuration with --config FILE or COFFER_CONFIG");
    cfg_t *cfg = NULL;
    int rc = cfg_load(path, &cfg);
    if (rc)
        return cli_fail(cli, rc == COFFER_ENOENT ? COFFER_EINVAL : rc);
    buf_t b;
    buf_init(&b);
    rc = cfg_print(cfg, &b);
    if (!rc && !cli->quiet)
        fputs(b.data ? (char *)b.data : "", stdout);
    buf_release(&b);
    cfg_free(cfg);
    return cli_fail(cli, rc);
}
