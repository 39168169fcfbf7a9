/*
 * cmd_backup.c -- `coffer backup`: files and directories, or a command's stdout.
 *
 * Layer: cli. The parent snapshot is the latest non-failed snapshot of the same host and the
 * same set of paths (or --parent). Order of writes: packs, index, snapshot (the commit point).
 * SIGINT/SIGTERM stop the run cleanly: what was uploaded is indexed (a checkpoint), so the
 * next run does not upload it again; no snapshot is written; exit 130.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "repo/writer.h"
#include "source/command/command.h"
#include "source/files/backup.h"
#include "source/files/scan.h"

#include <getopt.h>
#include <pthread.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LIST 1024

/* The size scan that gives the progress line its total (and so an ETA). */
typedef struct scan_job {
    char *const *paths;
    size_t n;
    char *const *excludes;
    size_t n_excludes;
    volatile sig_atomic_t stop;
    _Atomic uint64_t total;
    cli_progress_t *prog;
} scan_job_t;

static void *scan_thread(void *arg)
{
    scan_job_t *s = arg;
    files_scan_size(s->paths, s->n, s->excludes, s->n_excludes, &s->stop, &s->total);
    if (!s->stop)
        cli_progress_set_total(s->prog, atomic_load(&s->total));
    return NULL;
}

static void help(void)
{
    printf("usage: coffer backup [options] PATH...\n"
           "       coffer backup [options] --stdin-from-command --name FILE -- CMD [ARG...]\n"
           "       coffer backup [options] --stdin --name FILE      (data from stdin)\n"
           "  --tag T             add a tag (repeatable)\n"
           "  --host H            host name to record (default: this host)\n"
           "  --exclude PATTERN   skip matching entries (repeatable; a pattern with '/'\n"
           "                      matches the full path, otherwise the name)\n"
           "  --parent SNAP       compare against this snapshot instead of the latest\n"
           "  --force             read every file (no parent)\n"
           "  --job NAME          job name to record\n"
           "  --threads N         worker threads (default: CPUs)\n"
           "exit: 0 ok, 3 some entries could not be read (snapshot saved, status partial),\n"
           "      1 failed (for a command: it exited non-zero; the snapshot is marked failed)\n");
}

static bool same_paths(const snapshot_t *s, char *const *paths, size_t n)
{
    if (s->n_paths != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < s->n_paths && !found; k++)
            found = strcmp(s->paths[k], paths[i]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Find the parent: latest non-failed files snapshot of host with the same paths. */
static int find_parent(repo_t *r, const char *host, char *const *paths, size_t n, const char *spec,
                       snapshot_t *out, bool *found)
{
    snapshot_t *all = NULL;
    size_t cnt = 0;
    *found = false;
    int rc = repo_list_snapshots(r, &all, &cnt, NULL);
    if (rc)
        return rc;
    if (spec) {
        size_t i;
        rc = repo_resolve_snapshot(all, cnt, spec, &i);
        if (!rc) {
            *out = all[i];
            snapshot_init(&all[i]);
            *found = true;
        }
    } else {
        for (size_t i = cnt; i-- > 0;) {
            const snapshot_t *s = &all[i];
            if (s->status && strcmp(s->status, "failed") == 0)
                continue;
            if ((s->kind && strcmp(s->kind, "files") != 0) || !s->host ||
                strcmp(s->host, host) != 0 || !same_paths(s, paths, n))
                continue;
            *out = all[i];
            snapshot_init(&all[i]);
            *found = true;
            break;
        }
    }
    repo_free_snapshots(all, cnt);
    return rc;
}

static void print_summary(cli_t *cli, const snapshot_t *s, bool is_command)
{
    if (cli->json) {
        json_t *o = cli_snapshot_json(s);
        json_object_set_new(o, "message_type", json_string("summary"));
        cli_json_line(o);
        return;
    }
    if (cli->quiet)
        return;
    char hex[65], added[32], stored[32], readb[32];
    hex_encode(s->id, 32, hex);
    cli_fmt_bytes(s->summary.bytes_added, added, sizeof added);
    cli_fmt_bytes(s->summary.bytes_stored, stored, sizeof stored);
    cli_fmt_bytes(s->summary.bytes_read, readb, sizeof readb);
    if (is_command)
        printf("command exited with status %d\n", s->exit_status);
    else
        printf("files: %llu new, %llu changed, %llu unchanged; dirs: %llu; other: %llu\n",
               (unsigned long long)s->summary.files_new,
               (unsigned long long)s->summary.files_changed,
               (unsigned long long)s->summary.files_unchanged, (unsigned long long)s->summary.dirs,
               (unsigned long long)s->summary.others);
    printf("read %s, added %s (%s stored) in %.2f s\n", readb, added, stored,
           s->summary.duration_s);
    if (s->summary.errors)
        printf("%llu entr%s could not be read (see the warnings above)\n",
               (unsigned long long)s->summary.errors, s->summary.errors == 1 ? "y" : "ies");
    printf("snapshot %.8s saved (%s)\n", hex, s->status);
}

int cmd_backup(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"tag", required_argument, 0, 't'},     {"host", required_argument, 0, 'H'},
        {"exclude", required_argument, 0, 'e'}, {"parent", required_argument, 0, 'P'},
        {"force", no_argument, 0, 'f'},         {"job", required_argument, 0, 'j'},
        {"threads", required_argument, 0, 'T'}, {"stdin-from-command", no_argument, 0, 'C'},
        {"stdin", no_argument, 0, 'S'},         {"name", required_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    char *tags[MAX_LIST], *excludes[MAX_LIST];
    size_t n_tags = 0, n_excl = 0;
    const char *host = NULL, *parent_spec = NULL, *job = NULL, *name = NULL;
    bool force = false, from_cmd = false, from_stdin = false;
    int threads = 0, c;
    if (cli_service_kind(argc, argv))
        return cmd_service_backup(cli, argc, argv);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (n_tags == MAX_LIST)
                return cli_usage("backup", "too many --tag options");
            tags[n_tags++] = optarg;
            break;
        case 'e':
            if (n_excl == MAX_LIST)
                return cli_usage("backup", "too many --exclude options");
            excludes[n_excl++] = optarg;
            break;
        case 'H':
            host = optarg;
            break;
        case 'P':
            parent_spec = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'j':
            job = optarg;
            break;
        case 'T':
            threads = atoi(optarg);
            if (threads < 1 || threads > 256)
                return cli_usage("backup", "--threads takes 1 to 256");
            break;
        case 'C':
            from_cmd = true;
            break;
        case 'S':
            from_stdin = true;
            break;
        case 'n':
            name = optarg;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("backup", "unknown option");
        }
    }
    char **rest = argv + optind;
    int nrest = argc - optind;
    if (nrest > 0 && strcmp(rest[0], "--") == 0) {
        rest++;
        nrest--;
    }
    if (from_cmd || from_stdin) {
        if (!name || !*name || strchr(name, '/'))
            return cli_usage("backup", "--name FILE (a plain file name) is required with "
                                       "--stdin-from-command and --stdin");
        if (from_cmd && nrest < 1)
            return cli_usage("backup", "give the command after --: backup "
                                       "--stdin-from-command --name F -- CMD [ARG...]");
        if (from_stdin && nrest > 0)
            return cli_usage("backup", "--stdin takes no paths");
    } else if (nrest < 1) {
        return cli_usage("backup", "give at least one PATH to back up");
    }

    char hostbuf[256] = "";
    if (!host) {
        gethostname(hostbuf, sizeof hostbuf - 1);
        host = hostbuf;
    }
    /* absolute, canonical paths: the snapshot records them, and the parent matches on them */
    char **paths = NULL;
    size_t n_paths = 0;
    if (!from_cmd && !from_stdin) {
        paths = calloc((size_t)nrest, sizeof *paths);
        if (!paths)
            return cli_fail(cli, err_set(COFFER_ENOMEM, "out of memory"));
        for (int i = 0; i < nrest; i++) {
            char *rp = realpath(rest[i], NULL);
            if (!rp) {
                int rc = err_errno("cannot back up %s", rest[i]);
                for (size_t k = 0; k < n_paths; k++)
                    free(paths[k]);
                free(paths);
                return cli_fail(cli, rc);
            }
            paths[n_paths++] = rp;
        }
    }

    int64_t t0 = time_monotonic_ns();
    repo_t *r = NULL;
    writer_t *w = NULL;
    snapshot_t snap, parent;
    snapshot_init(&snap);
    snapshot_init(&parent);
    bool have_parent = false, is_command = from_cmd || from_stdin;
    cli_progress_t *prog = NULL;
    files_progress_t fprog = {0};
    command_result_t cres = {0};
    int rc = cli_open_repo(cli, &r);
    if (rc)
        goto out;
    writer_opts_t wo = {.purpose = "backup"};
    if ((rc = writer_open(r, &wo, &w)))
        goto out;
    snap.time_ns = time_now_ns();
    char userbuf[64];
    snprintf(userbuf, sizeof userbuf, "%s", getenv("USER") ? getenv("USER") : "");
    snap.host = strdup(host);
    snap.user = strdup(userbuf);
    snap.job = strdup(job ? job : "");
    snap.kind = strdup(from_cmd ? "command" : from_stdin ? "stdin" : "files");
    snap.program = strdup("coffer " COFFER_VERSION_STR);
    for (size_t i = 0; i < n_tags && !rc; i++)
        rc = snapshot_add_tag(&snap, tags[i]);
    if (rc)
        goto out;
    if (!snap.host || !snap.user || !snap.job || !snap.kind || !snap.program) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }

    if (is_command) {
        prog = cli_progress_start(cli, "read", &fprog.bytes_done, &fprog.files_done, 0);
        if (from_cmd) {
            command_opts_t co = {.argv = rest,
                                 .name = name,
                                 .threads = threads,
                                 .stop = &cli_stop,
                                 .bytes_done = &fprog.bytes_done};
            rc = command_backup(r, w, &co, &snap, &cres);
        } else {
            node_t n;
            node_init(&n);
            rc = command_store_stream(r, w, 0, name, threads, &cli_stop, &fprog.bytes_done, &n);
            if (!rc) {
                tree_t t;
                tree_init(&t);
                buf_t b;
                buf_init(&b);
                snap.summary.bytes_read = n.size;
                snap.summary.files_new = 1;
                if (!(rc = tree_add(&t, &n)) && !(rc = tree_encode(&t, &b)))
                    rc = writer_add_blob(w, BLOB_TREE, b.data, b.len, NULL, snap.tree, NULL);
                buf_release(&b);
                tree_release(&t);
            }
            node_release(&n);
        }
        if (!rc)
            rc = snapshot_add_path(&snap, name);
    } else {
        if (!force &&
            (rc = find_parent(r, host, paths, n_paths, parent_spec, &parent, &have_parent)))
            goto out;
        files_backup_opts_t fo = {.paths = paths,
                                  .n_paths = n_paths,
                                  .excludes = excludes,
                                  .n_excludes = n_excl,
                                  .parent_tree = have_parent ? parent.tree : NULL,
                                  .threads = threads,
                                  .stop = &cli_stop,
                                  .progress = &fprog};
        if (have_parent) {
            snap.has_parent = true;
            memcpy(snap.parent, parent.id, 32);
        }
        prog = cli_progress_start(cli, "backup", &fprog.bytes_done, &fprog.files_done, 0);
        scan_job_t scan = {
            .paths = paths, .n = n_paths, .excludes = excludes, .n_excludes = n_excl, .prog = prog};
        pthread_t scan_tid;
        bool scanning = prog && pthread_create(&scan_tid, NULL, scan_thread, &scan) == 0;
        rc = files_backup(r, w, &fo, &snap);
        if (scanning) {
            scan.stop = 1;
            pthread_join(scan_tid, NULL);
        }
    }
    cli_progress_stop(prog);
    prog = NULL;
    if (rc) {
        if (rc == COFFER_EINTR) {
            /* index what was uploaded so the next run reuses it */
            int crc = writer_flush(w);
            if (crc)
                log_warn("could not save progress: %s", err_msg());
            err_set(COFFER_EINTR, "backup interrupted: no snapshot was written; what was "
                                  "uploaded is kept and reused by the next backup");
        }
        goto out;
    }
    if ((rc = writer_flush(w)))
        goto out;
    const writer_stats_t *ws = writer_stats(w);
    snap.summary.bytes_added = atomic_load(&ws->bytes_added);
    snap.summary.bytes_stored = atomic_load(&ws->bytes_stored);
    snap.summary.blobs_added = atomic_load(&ws->blobs_added);
    snap.summary.duration_s = (double)(time_monotonic_ns() - t0) / 1e9;
    bool cmd_failed = from_cmd && (cres.exit_status != 0 || cres.signaled);
    snap.status = strdup(cmd_failed ? "failed" : snap.summary.errors ? "partial" : "complete");
    if (!snap.status) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = writer_save_snapshot(w, &snap)))
        goto out;
    print_summary(cli, &snap, is_command);
    char sid[65];
    hex_encode(snap.id, 32, sid);
    if (cmd_failed)
        rc = err_set(COFFER_EIO,
                     "command \"%s\" %s %d: snapshot %.8s is marked failed and will not be used "
                     "as a parent or kept by retention",
                     rest[0], cres.signaled ? "was killed by signal" : "exited with status",
                     cres.signaled ? cres.exit_status - 128 : cres.exit_status, sid);
    else if (snap.summary.errors)
        rc = err_set(COFFER_EPARTIAL,
                     "%llu entr%s could not be read; the snapshot was saved with status partial",
                     (unsigned long long)snap.summary.errors,
                     snap.summary.errors == 1 ? "y" : "ies");
out:
    cli_progress_stop(prog);
    writer_free(w);
    repo_close(r);
    snapshot_release(&snap);
    snapshot_release(&parent);
    for (size_t k = 0; k < n_paths; k++)
        free(paths[k]);
    free(paths);
    return cli_fail(cli, rc);
}
