/*
 * cmd_prune.c -- `coffer prune`: two-phase removal of data no snapshot needs.
 *
 * Layer: cli. The work is in repo/prune.c; this prints the report. Exit 11 when another prune
 * holds the lease.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "repo/prune.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void help(void)
{
    printf("usage: coffer prune [--dry-run] [--max-unused PERCENT] [--json]\n"
           "  --dry-run            report, change nothing\n"
           "  --max-unused P       rewrite packs with more than P %% unused space (default 20)\n"
           "Packs no snapshot needs are condemned (phase 1) and deleted once no backup that\n"
           "was running at that moment is still alive (phase 2; at once when none was).\n");
}

int cmd_prune(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"dry-run", no_argument, 0, 'n'},
                                         {"max-unused", required_argument, 0, 'm'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    prune_opts_t po = {.max_unused = 0.2, .stop = &cli_stop};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hn", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            po.dry_run = true;
            break;
        case 'm': {
            char *end;
            double v = strtod(optarg, &end);
            if (*end == '%')
                end++;
            if (*end || v < 0 || v > 100)
                return cli_usage("prune", "--max-unused takes a percentage from 0 to 100");
            po.max_unused = v / 100.0;
            break;
        }
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("prune", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage("prune", "unexpected argument \"%s\"", argv[optind]);
    repo_t *r = NULL;
    prune_stats_t s = {0};
    int rc = cli_open_repo(cli, &r);
    if (!rc)
        rc = prune_run(r, &po, &s);
    repo_close(r);
    if (rc)
        return cli_fail(cli, rc);
    char del[32], rep[32];
    cli_fmt_bytes(s.bytes_deleted, del, sizeof del);
    cli_fmt_bytes(s.bytes_repacked, rep, sizeof rep);
    if (cli->json) {
        cli_json_line(
            json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "message_type",
                      "summary", "dry_run", po.dry_run, "snapshots", (json_int_t)s.snapshots,
                      "packs", (json_int_t)s.packs, "referenced_blobs",
                      (json_int_t)s.referenced_blobs, "packs_condemned",
                      (json_int_t)s.packs_condemned, "packs_repacked", (json_int_t)s.packs_repacked,
                      "blobs_repacked", (json_int_t)s.blobs_repacked, "packs_deleted",
                      (json_int_t)s.packs_deleted, "bytes_deleted", (json_int_t)s.bytes_deleted,
                      "packs_kept_referenced", (json_int_t)s.packs_kept_referenced, "lists_swept",
                      (json_int_t)s.lists_swept, "lists_waiting", (json_int_t)s.lists_waiting));
    } else if (!cli->quiet) {
        printf("%s%llu snapshots, %llu packs, %llu referenced blobs\n",
               po.dry_run ? "dry run: " : "", (unsigned long long)s.snapshots,
               (unsigned long long)s.packs, (unsigned long long)s.referenced_blobs);
        printf("condemned %llu packs (%llu rewritten: %llu blobs, %s)\n",
               (unsigned long long)s.packs_condemned, (unsigned long long)s.packs_repacked,
               (unsigned long long)s.blobs_repacked, rep);
        printf("%s %llu packs (%s)", po.dry_run ? "would delete" : "deleted",
               (unsigned long long)s.packs_deleted, del);
        if (s.packs_kept_referenced)
            printf(", kept %llu still referenced", (unsigned long long)s.packs_kept_referenced);
        printf("\n");
        if (s.lists_waiting)
            printf("%llu condemned list(s) wait for running backups; run prune again later\n",
                   (unsigned long long)s.lists_waiting);
    }
    return EXIT_OK;
}
