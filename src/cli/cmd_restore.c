/*
 * cmd_restore.c -- `coffer restore SNAP --target DIR [--include PATTERN]...`.
 *
 * Layer: cli. Restores the snapshot's root entries under DIR (DIR/<basename of each backed-up
 * path>), with metadata. Errors on single entries give exit 3 after the rest was restored.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "common/timefmt.h"
#include "source/files/restore.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 1024

static void help(void)
{
    printf("usage: coffer restore SNAP --target DIR [--include PATTERN]... [--host H] [--tag T]\n"
           "  SNAP               \"latest\" or an id prefix (see `coffer snapshots`)\n"
           "  --target DIR       where to restore (created if missing)\n"
           "  --include PATTERN  restore only matching paths (as `coffer ls` shows them,\n"
           "                     e.g. \"/data/etc/*.conf\"); repeatable\n"
           "  --verify           read and verify all data, write nothing\n"
           "  --host H, --tag T  with \"latest\": the latest snapshot of that host / tag\n"
           "  --threads N        worker threads (default: CPUs)\n");
}

int cmd_restore(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", required_argument, 0, 't'}, {"include", required_argument, 0, 'i'},
        {"host", required_argument, 0, 'H'},   {"tag", required_argument, 0, 'g'},
        {"verify", no_argument, 0, 'V'},       {"threads", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    char *includes[MAX_LIST], *tags[64];
    size_t n_inc = 0;
    snap_filter_t f = {.tags = tags};
    const char *target = NULL;
    bool verify = false;
    int threads = 0, c;
    if (cli_service_kind(argc, argv))
        return cmd_service_restore(cli, argc, argv);
    optind = 1;
    while ((c = getopt_long(argc, argv, "ht:", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            target = optarg;
            break;
        case 'i':
            if (n_inc == MAX_LIST)
                return cli_usage("restore", "too many --include options");
            includes[n_inc++] = optarg;
            break;
        case 'H':
            f.host = optarg;
            break;
        case 'g':
            if (f.n_tags == 64)
                return cli_usage("restore", "too many --tag options");
            tags[f.n_tags++] = optarg;
            break;
        case 'V':
            verify = true;
            break;
        case 'T':
            threads = atoi(optarg);
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("restore", "unknown option");
        }
    }
    if (argc - optind != 1)
        return cli_usage("restore", "give exactly one snapshot (\"latest\" or an id)");
    if (!target && !verify)
        return cli_usage("restore", "--target DIR is required");
    const char *spec = argv[optind];
    int64_t t0 = time_monotonic_ns();
    repo_t *r = NULL;
    snapshot_t s;
    snapshot_init(&s);
    files_restore_stats_t st = {0};
    _Atomic uint64_t bytes = 0, items = 0;
    cli_progress_t *prog = NULL;
    int rc = cli_open_repo(cli, &r);
    if (rc)
        goto out;
    if ((rc = cli_find_snapshot(r, spec, &f, &s)) || (rc = repo_load_index(r)))
        goto out;
    files_restore_opts_t ro = {.includes = includes,
                               .n_includes = n_inc,
                               .threads = threads,
                               .verify_only = verify,
                               .stop = &cli_stop,
                               .bytes_done = &bytes,
                               .files_done = &items};
    uint64_t total = s.summary.bytes_read; /* an estimate for the progress line */
    prog =
        cli_progress_start(cli, verify ? "verify" : "restore", &bytes, &items, n_inc ? 0 : total);
    rc = files_restore(r, s.tree, target, &ro, &st);
    cli_progress_stop(prog);
    prog = NULL;
    if (rc)
        goto out;
    double el = (double)(time_monotonic_ns() - t0) / 1e9;
    char hex[65], bs[32];
    hex_encode(s.id, 32, hex);
    cli_fmt_bytes(st.bytes, bs, sizeof bs);
    if (cli->json) {
        cli_json_line(json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "message_type",
                                "summary", "snapshot", hex, "target", target ? target : "", "files",
                                (json_int_t)st.files, "dirs", (json_int_t)st.dirs, "others",
                                (json_int_t)st.others, "bytes", (json_int_t)st.bytes, "errors",
                                (json_int_t)st.errors, "warnings", (json_int_t)st.warnings,
                                "duration_s", el));
    } else if (!cli->quiet) {
        printf("%s snapshot %.8s%s%s: %llu files, %llu dirs, %llu other, %s in %.2f s\n",
               verify ? "verified" : "restored", hex, target ? " to " : "", target ? target : "",
               (unsigned long long)st.files, (unsigned long long)st.dirs,
               (unsigned long long)st.others, bs, el);
        if (st.warnings)
            printf("%llu metadata item(s) could not be applied (not root?)\n",
                   (unsigned long long)st.warnings);
    }
    if (st.errors)
        rc = err_set(COFFER_EPARTIAL, "%llu entr%s could not be restored (see warnings)",
                     (unsigned long long)st.errors, st.errors == 1 ? "y" : "ies");
out:
    cli_progress_stop(prog);
    snapshot_release(&s);
    repo_close(r);
    return cli_fail(cli, rc);
}
