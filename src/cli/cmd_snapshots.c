/*
 * cmd_snapshots.c -- `coffer snapshots`: list snapshots, oldest first, with filters.
 *
 * Layer: cli.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "common/timefmt.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: coffer snapshots [--host H] [--tag T]... [--path P] [--json]\n");
}

int cmd_snapshots(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"host", required_argument, 0, 'H'},
                                         {"tag", required_argument, 0, 't'},
                                         {"path", required_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    snap_filter_t f = {0};
    char *tags[64];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            f.host = optarg;
            break;
        case 't':
            if (f.n_tags == 64)
                return cli_usage("snapshots", "too many --tag options");
            tags[f.n_tags++] = optarg;
            break;
        case 'p':
            f.path = optarg;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("snapshots", "unknown option");
        }
    }
    f.tags = tags;
    if (optind < argc)
        return cli_usage("snapshots", "unexpected argument \"%s\"", argv[optind]);
    repo_t *r = NULL;
    int rc = cli_open_repo(cli, &r);
    if (rc)
        return cli_fail(cli, rc);
    snapshot_t *s = NULL;
    size_t n = 0, bad = 0;
    if ((rc = repo_list_snapshots(r, &s, &n, &bad))) {
        repo_close(r);
        return cli_fail(cli, rc);
    }
    json_t *arr = cli->json ? json_array() : NULL;
    size_t shown = 0;
    if (!cli->json)
        printf("%-10s %-19s %-16s %-9s %-10s %s\n", "ID", "Time", "Host", "Status", "Tags",
               "Paths");
    for (size_t i = 0; i < n; i++) {
        if (!cli_snap_matches(&s[i], &f))
            continue;
        shown++;
        if (cli->json) {
            json_array_append_new(arr, cli_snapshot_json(&s[i]));
            continue;
        }
        char hex[65], ts[40], tagstr[256] = "";
        hex_encode(s[i].id, 32, hex);
        time_format_local(s[i].time_ns, ts, sizeof ts);
        size_t k = 0;
        for (size_t t = 0; t < s[i].n_tags && k < sizeof tagstr - 2; t++)
            k +=
                (size_t)snprintf(tagstr + k, sizeof tagstr - k, "%s%s", t ? "," : "", s[i].tags[t]);
        printf("%.8s   %-19s %-16.16s %-9s %-10s ", hex, ts, s[i].host ? s[i].host : "",
               s[i].status ? s[i].status : "complete", tagstr);
        for (size_t p = 0; p < s[i].n_paths; p++)
            printf("%s%s", p ? " " : "", s[i].paths[p]);
        if (s[i].kind && strcmp(s[i].kind, "files") != 0)
            printf(" [%s]", s[i].kind);
        printf("\n");
    }
    if (cli->json)
        cli_json_doc(arr);
    else
        printf("%zu snapshot%s\n", shown, shown == 1 ? "" : "s");
    repo_free_snapshots(s, n);
    repo_close(r);
    if (bad)
        return cli_fail(cli, err_set(COFFER_EPARTIAL,
                                     "%zu snapshot(s) could not be read: run `coffer check`", bad));
    return EXIT_OK;
}
