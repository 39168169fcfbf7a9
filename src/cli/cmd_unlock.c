/*
 * cmd_unlock.c -- `coffer unlock`: remove a stale prune lease.
 *
 * Layer: cli. Backups take no lock, so the only lock-like object is the prune lease; a lease
 * that is still being refreshed is left alone unless --remove-all is given.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "repo/prune.h"

#include <getopt.h>
#include <stdio.h>

int cmd_unlock(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"remove-all", no_argument, 0, 'a'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    bool force = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            force = true;
            break;
        case 'h':
            printf("usage: coffer unlock [--remove-all]\n"
                   "  removes the prune lease (maint/lease) when it is stale; --remove-all\n"
                   "  removes it even when it was refreshed recently\n");
            return EXIT_OK;
        default:
            return cli_usage("unlock", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage("unlock", "unexpected argument \"%s\"", argv[optind]);
    repo_t *r = NULL;
    bool removed = false;
    int rc = cli_open_repo(cli, &r);
    if (!rc)
        rc = prune_unlock(r, force, &removed);
    repo_close(r);
    if (rc)
        return cli_fail(cli, rc);
    if (cli->json)
        cli_json_line(json_pack("{s:s,s:b}", "message_type", "unlock", "removed", removed));
    else if (!cli->quiet)
        printf(removed ? "removed the prune lease\n" : "no lease to remove\n");
    return EXIT_OK;
}
