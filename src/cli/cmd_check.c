/*
 * cmd_check.c -- `coffer check [--read-data | --read-data-subset N%|N/M]`: verify the
 * repository and list every problem found.
 *
 * Layer: cli. Findings go to stdout, one per line ("error: ...", "warning: ...", "info: ...")
 * with the snapshots each damage affects, then a summary line. --json prints one object per
 * finding and a summary object. Exit 0 when no error was found (warnings and infos allowed),
 * 1 when there are errors, and the usual codes when the repository cannot be opened.
 */
#include "cli/cmds.h"
#include "cli/location.h"
#include "common/error.h"
#include "repo/check.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOW_SNAPSHOTS 10 /* short ids listed per finding before "and N more" */

static void help(void)
{
    printf("usage: coffer check [--read-data | --read-data-subset N%%|N/M] [--threads N]\n"
           "       coffer check --location\n"
           "  (default)                check structure: key slots, index, packs present and\n"
           "                           plausible, snapshots and every tree they reach\n"
           "  --read-data              also read every pack and verify every blob\n"
           "  --read-data-subset S     read only some packs: \"10%%\" (random subset) or\n"
           "                           \"2/5\" (part 2 of 5, by pack id: 5 runs cover all)\n"
           "  --threads N              packs read in parallel (default: CPUs, at most 8)\n"
           "  --location               probe the storage location instead (write, read,\n"
           "                           ranged read, list, create-only, large upload,\n"
           "                           delete, clock); needs no repository or password\n"
           "exit status: 0 no errors (warnings allowed), 1 errors found\n");
}

static const char *sev_name(check_severity_t s)
{
    return s == CHECK_ERROR ? "error" : s == CHECK_WARNING ? "warning" : "info";
}

static void print_finding(cli_t *cli, const check_finding_t *f)
{
    char hex[65];
    if (cli->json) {
        json_t *snaps = json_array();
        for (size_t i = 0; i < f->n_snapshots; i++) {
            hex_encode(f->snapshots[i], 32, hex);
            json_array_append_new(snaps, json_string(hex));
        }
        cli_json_line(json_pack("{s:s,s:s,s:s,s:s,s:o}", "message_type", "finding", "severity",
                                sev_name(f->severity), "object", f->object, "message", f->message,
                                "snapshots", snaps));
        return;
    }
    if (cli->quiet && f->severity == CHECK_INFO)
        return;
    printf("%s: %s", sev_name(f->severity), f->message);
    if (f->n_snapshots) {
        printf("; affects snapshot%s ", f->n_snapshots == 1 ? "" : "s");
        for (size_t i = 0; i < f->n_snapshots && i < SHOW_SNAPSHOTS; i++) {
            hex_encode(f->snapshots[i], 32, hex);
            printf("%s%.8s", i ? ", " : "", hex);
        }
        if (f->n_snapshots > SHOW_SNAPSHOTS)
            printf(" and %zu more", f->n_snapshots - SHOW_SNAPSHOTS);
    }
    printf("\n");
}

static void print_summary(cli_t *cli, const check_report_t *rep, bool read_data)
{
    char bytes[32];
    cli_fmt_bytes(rep->bytes_read, bytes, sizeof bytes);
    if (cli->json) {
        cli_json_line(json_pack(
            "{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "message_type", "summary",
            "ok", rep->errors == 0, "errors", (json_int_t)rep->errors, "warnings",
            (json_int_t)rep->warnings, "infos", (json_int_t)rep->infos, "key_slots",
            (json_int_t)rep->key_slots, "index_segments", (json_int_t)rep->index_segments, "packs",
            (json_int_t)rep->packs, "snapshots", (json_int_t)rep->snapshots, "trees",
            (json_int_t)rep->trees, "data_blobs", (json_int_t)rep->data_blobs, "packs_read",
            (json_int_t)rep->packs_read, "bytes_read", (json_int_t)rep->bytes_read));
        return;
    }
    if (!cli->quiet) {
        printf("checked %zu snapshot%s, %zu tree%s, %zu pack%s in %zu index segment%s",
               rep->snapshots, rep->snapshots == 1 ? "" : "s", rep->trees,
               rep->trees == 1 ? "" : "s", rep->packs, rep->packs == 1 ? "" : "s",
               rep->index_segments, rep->index_segments == 1 ? "" : "s");
        if (read_data)
            printf("; read %zu pack%s (%s)", rep->packs_read, rep->packs_read == 1 ? "" : "s",
                   bytes);
        printf("\n");
    }
    if (rep->errors == 0 && rep->warnings == 0)
        printf("no errors were found\n");
    else if (rep->errors == 0)
        printf("no errors were found (%zu warning%s)\n", rep->warnings,
               rep->warnings == 1 ? "" : "s");
    else
        printf("%zu error%s, %zu warning%s\n", rep->errors, rep->errors == 1 ? "" : "s",
               rep->warnings, rep->warnings == 1 ? "" : "s");
}

int cmd_check(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"read-data", no_argument, 0, 'd'},
                                         {"read-data-subset", required_argument, 0, 's'},
                                         {"threads", required_argument, 0, 'T'},
                                         {"json", no_argument, 0, 'j'},
                                         {"location", no_argument, 0, 'L'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    static _Atomic uint64_t bytes, items;
    check_opts_t o = {.bytes = &bytes, .items = &items, .stop = &cli_stop};
    bool subset = false, location = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.read_data = true;
            break;
        case 's':
            if (check_parse_subset(optarg, &o))
                return cli_usage("check", "%s", err_msg());
            subset = true;
            break;
        case 'T': {
            char *end;
            long t = strtol(optarg, &end, 10);
            if (*end || t < 1 || t > 64)
                return cli_usage("check", "--threads needs a number from 1 to 64");
            o.threads = (int)t;
            break;
        }
        case 'j':
            cli->json = true;
            break;
        case 'L':
            location = true;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("check", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage("check", "unexpected argument \"%s\"", argv[optind]);
    if (subset && o.read_data)
        return cli_usage("check", "give either --read-data or --read-data-subset, not both");
    if (subset)
        o.read_data = true;
    if (location && (o.read_data || subset))
        return cli_usage("check", "--location checks the storage, not the data: give it alone");
    if (location)
        return cli_fail(cli, cli_location_check(cli, false, true, false));

    repo_t *r = NULL;
    int rc = cli_open_repo(cli, &r);
    if (rc)
        return cli_fail(cli, rc);
    check_report_t rep;
    check_report_init(&rep);
    cli_progress_t *pr =
        cli_progress_start(cli, o.read_data ? "reading packs" : "checking", &bytes, &items, 0);
    rc = check_run(r, &o, &rep);
    cli_progress_stop(pr);
    for (size_t i = 0; i < rep.n; i++)
        print_finding(cli, &rep.findings[i]);
    int code;
    if (rc) {
        /* the check could not finish: what it found so far was printed above */
        code = cli_fail(cli, rc);
    } else {
        print_summary(cli, &rep, o.read_data);
        code = rep.errors ? EXIT_FAIL : EXIT_OK;
    }
    check_report_release(&rep);
    repo_close(r);
    return code;
}
