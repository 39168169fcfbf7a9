/*
 * cmd_copy.c -- `coffer copy --to REPO2 [SNAP...]`: copy snapshots into another repository
 * (other keys, other storage) without re-chunking; the sidecar-to-cloud sync.
 *
 * Layer: cli. Source snapshots are copied oldest first; one the target already has (a target
 * snapshot whose `original` is the source's id or original) is skipped, so a rerun after an
 * interruption resumes: each copied snapshot is saved as soon as its data is flushed, and the
 * blobs of an interrupted one are indexed (checkpoint), so they are not uploaded again.
 * The target's password comes from COFFER_TO_PASSWORD / COFFER_TO_PASSWORD_FILE (or the
 * terminal); the global -o options apply to both ends, --to-option to the target only.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "repo/copy.h"
#include "repo/writer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 1024

static void help(void)
{
    printf("usage: coffer -r SRC copy --to DST [options] [SNAP...]\n"
           "  --to DST            target repository (must exist: `coffer -r DST init`)\n"
           "  --to-option K=V     storage option for the target only (repeatable)\n"
           "  --host H, --tag T, --path P   copy only matching snapshots\n"
           "  --threads N         copy workers (default: CPUs)\n"
           "Without SNAP every snapshot is copied; snapshots the target has are skipped.\n"
           "Target password: COFFER_TO_PASSWORD or COFFER_TO_PASSWORD_FILE.\n");
}

static const uint8_t *orig_of(const snapshot_t *s)
{
    return s->has_original ? s->original : s->id;
}

static bool same_paths(const snapshot_t *a, const snapshot_t *b)
{
    if (a->n_paths != b->n_paths)
        return false;
    for (size_t i = 0; i < a->n_paths; i++)
        if (strcmp(a->paths[i], b->paths[i]) != 0)
            return false;
    return true;
}

static bool is_failed(const snapshot_t *s)
{
    return s->status && strcmp(s->status, "failed") == 0;
}

typedef struct plan {
    snapshot_t *src, *dst; /* all snapshots of both ends */
    size_t n_src, n_dst;
    snapshot_t *made; /* snapshots written by this run, in order (never reallocated) */
    size_t n_made;
    const snapshot_t **copy; /* copy[i]: the target's copy of src[i], or NULL */
} plan_t;

/* Fill p->copy from the target's `original` fields (once, before copying). */
static void find_copies(plan_t *p)
{
    for (size_t i = 0; i < p->n_src; i++)
        for (size_t k = 0; k < p->n_dst && !p->copy[i]; k++)
            if (p->dst[k].has_original && memcmp(p->dst[k].original, orig_of(&p->src[i]), 32) == 0)
                p->copy[i] = &p->dst[k];
}

/* Record snapshot made (at p->made[...]) as the copy of every source with its original. */
static void add_copy(plan_t *p, const snapshot_t *made)
{
    for (size_t i = 0; i < p->n_src; i++)
        if (memcmp(orig_of(&p->src[i]), made->original, 32) == 0)
            p->copy[i] = made;
}

/* The target snapshot that is a copy of source snapshot s (one of p->src), or NULL. */
static const snapshot_t *copy_of(const plan_t *p, const snapshot_t *s)
{
    return p->copy[s - p->src];
}

/* The latest earlier source snapshot of the same host and paths that the target has. */
static void find_pair(const plan_t *p, const snapshot_t *s, const snapshot_t **out_src,
                      const snapshot_t **out_dst)
{
    *out_src = *out_dst = NULL;
    for (size_t i = 0; i < p->n_src; i++) {
        const snapshot_t *c = &p->src[i];
        if (c == s || is_failed(c) || c->time_ns > s->time_ns || !same_paths(c, s) ||
            strcmp(c->host ? c->host : "", s->host ? s->host : "") != 0)
            continue;
        if (*out_src && (*out_src)->time_ns >= c->time_ns)
            continue;
        const snapshot_t *d = copy_of(p, c);
        if (d) {
            *out_src = c;
            *out_dst = d;
        }
    }
}

static const snapshot_t *find_src(const plan_t *p, const uint8_t id[32])
{
    for (size_t i = 0; i < p->n_src; i++)
        if (memcmp(p->src[i].id, id, 32) == 0)
            return &p->src[i];
    return NULL;
}

static int open_target(cli_t *cli, const char *to, const char **to_opts, size_t n_to_opts,
                       repo_t **out)
{
    const char *kv[CLI_MAX_OPTS * 2];
    size_t n = 0;
    for (int i = 0; i < cli->n_opts; i++)
        kv[n++] = cli->opts[i];
    for (size_t i = 0; i < n_to_opts; i++)
        kv[n++] = to_opts[i];
    storage_opts_t so = {.kv = kv, .n = n};
    char *pw = NULL;
    int rc = cli_get_secret("COFFER_TO_PASSWORD", "COFFER_TO_PASSWORD_FILE",
                            "target repository password: ", false, &pw);
    if (rc)
        return rc;
    rc = repo_open_opts(to, &so, pw, out);
    cli_free_password(pw);
    if (rc == COFFER_EPASSWORD)
        return err_set(rc,
                       "wrong password for the target repository %s: check "
                       "COFFER_TO_PASSWORD or COFFER_TO_PASSWORD_FILE",
                       to);
    if (rc)
        return err_ctx(rc, "opening the target repository");
    return 0;
}

static void report(cli_t *cli, const snapshot_t *s, const snapshot_t *n, const char *what)
{
    char a[65], b[65] = "";
    hex_encode(s->id, 32, a);
    if (n)
        hex_encode(n->id, 32, b);
    if (cli->json) {
        json_t *o =
            json_pack("{s:s, s:s, s:s}", "message_type", "copy", "source", a, "status", what);
        if (n)
            json_object_set_new(o, "target", json_string(b));
        cli_json_line(o); /* takes the reference */
    } else if (!cli->quiet) {
        char ts[40];
        time_format_local(s->time_ns, ts, sizeof ts);
        if (n)
            printf("snapshot %.8s (%s) copied as %.8s\n", a, ts, b);
        else
            printf("snapshot %.8s (%s) is already in the target\n", a, ts);
    }
}

int cmd_copy(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, 0, 'T'},   {"to-option", required_argument, 0, 'O'},
        {"host", required_argument, 0, 'H'}, {"tag", required_argument, 0, 't'},
        {"path", required_argument, 0, 'p'}, {"threads", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    const char *to = NULL;
    const char *to_opts[CLI_MAX_OPTS];
    size_t n_to_opts = 0;
    snap_filter_t f = {0};
    char *tags[64];
    int threads = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'T':
            to = optarg;
            break;
        case 'O':
            if (n_to_opts == CLI_MAX_OPTS)
                return cli_usage("copy", "too many --to-option options");
            to_opts[n_to_opts++] = optarg;
            break;
        case 'H':
            f.host = optarg;
            break;
        case 't':
            if (f.n_tags == 64)
                return cli_usage("copy", "too many --tag options");
            tags[f.n_tags++] = optarg;
            break;
        case 'p':
            f.path = optarg;
            break;
        case 'j':
            threads = atoi(optarg);
            if (threads < 1 || threads > 256)
                return cli_usage("copy", "--threads needs a number from 1 to 256");
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("copy", "unknown option");
        }
    }
    f.tags = tags;
    if (!to)
        return cli_usage("copy", "--to DST is required (the target repository)");
    if (cli->repo && strcmp(cli->repo, to) == 0)
        return cli_usage("copy", "the source and the target are the same repository");

    repo_t *src = NULL, *dst = NULL;
    writer_t *w = NULL;
    copier_t *cp = NULL;
    plan_t p = {0};
    bool *want = NULL;
    size_t copied = 0, skipped = 0, bad_src = 0;
    _Atomic uint64_t bytes = 0, items = 0;
    cli_progress_t *prog = NULL;
    int rc;
    if ((rc = cli_open_repo(cli, &src)) || (rc = open_target(cli, to, to_opts, n_to_opts, &dst)))
        goto out;
    if (memcmp(repo_id(src), repo_id(dst), 32) == 0) {
        rc = err_set(COFFER_EINVAL, "%s and %s are the same repository (same id)", cli->repo, to);
        goto out;
    }
    if ((rc = repo_list_snapshots(src, &p.src, &p.n_src, &bad_src)) ||
        (rc = repo_list_snapshots(dst, &p.dst, &p.n_dst, NULL)))
        goto out;
    want = calloc(p.n_src ? p.n_src : 1, sizeof *want);
    p.made = calloc(p.n_src ? p.n_src : 1, sizeof *p.made);
    p.copy = calloc(p.n_src ? p.n_src : 1, sizeof *p.copy);
    if (!want || !p.made || !p.copy) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    if (optind < argc) {
        for (int a = optind; a < argc; a++) {
            size_t i;
            if ((rc = repo_resolve_snapshot(p.src, p.n_src, argv[a], &i)))
                goto out;
            want[i] = true;
        }
    } else {
        for (size_t i = 0; i < p.n_src; i++)
            want[i] = cli_snap_matches(&p.src[i], &f);
    }
    find_copies(&p);
    if ((rc = repo_load_index(src)))
        goto out;
    writer_opts_t wo = {.purpose = "copy"};
    if ((rc = writer_open(dst, &wo, &w)))
        goto out;
    copy_opts_t co = {.threads = threads, .stop = &cli_stop, .bytes_done = &bytes};
    if ((rc = copier_new(src, dst, w, &co, &cp)))
        goto out;
    prog = cli_progress_start(cli, "copy", &bytes, &items, 0);
    for (size_t i = 0; i < p.n_src; i++) {
        const snapshot_t *s = &p.src[i];
        if (!want[i])
            continue;
        const snapshot_t *have = copy_of(&p, s);
        if (have) {
            skipped++;
            report(cli, s, NULL, "skipped");
            continue;
        }
        const snapshot_t *ps, *pd;
        find_pair(&p, s, &ps, &pd);
        const snapshot_t *par_src = s->has_parent ? find_src(&p, s->parent) : NULL;
        const snapshot_t *par_dst = par_src ? copy_of(&p, par_src) : NULL;
        snapshot_t n;
        if ((rc = copier_snapshot(cp, s, ps, pd, par_dst ? par_dst->id : NULL, &n)))
            goto interrupted;
        if ((rc = writer_flush(w)) || (rc = writer_save_snapshot(w, &n))) {
            snapshot_release(&n);
            goto out;
        }
        p.made[p.n_made++] = n;
        add_copy(&p, &p.made[p.n_made - 1]);
        atomic_fetch_add(&items, 1);
        copied++;
        cli_progress_stop(prog);
        prog = NULL;
        report(cli, s, &n, "copied");
        prog = cli_progress_start(cli, "copy", &bytes, &items, 0);
    }
    goto done;
interrupted:
    if (rc == COFFER_EINTR) {
        if (writer_flush(w))
            log_warn("could not save progress: %s", err_msg());
        err_set(COFFER_EINTR,
                "copy interrupted: %zu snapshot(s) were copied; what was "
                "uploaded is kept and the next copy resumes from there",
                copied);
    }
    goto out;
done:
    cli_progress_stop(prog);
    prog = NULL;
    if (cli->json) {
        const copy_stats_t *st = copier_stats(cp);
        const writer_stats_t *ws = writer_stats(w);
        json_t *o =
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "message_type", "summary",
                      "snapshots_copied", (json_int_t)copied, "snapshots_skipped",
                      (json_int_t)skipped, "blobs_read", (json_int_t)atomic_load(&st->blobs_read),
                      "blobs_mapped", (json_int_t)atomic_load(&st->blobs_mapped), "blobs_added",
                      (json_int_t)atomic_load(&ws->blobs_added), "bytes_added",
                      (json_int_t)atomic_load(&ws->bytes_added), "bytes_stored",
                      (json_int_t)atomic_load(&ws->bytes_stored));
        cli_json_line(o); /* takes the reference */
    } else if (!cli->quiet) {
        char added[32];
        cli_fmt_bytes(atomic_load(&writer_stats(w)->bytes_stored), added, sizeof added);
        printf("%zu snapshot%s copied, %zu already in the target; %s stored\n", copied,
               copied == 1 ? "" : "s", skipped, added);
    }
    if (bad_src)
        rc = err_set(COFFER_EPARTIAL,
                     "%zu source snapshot(s) could not be read and were not copied: run "
                     "`coffer check` on the source",
                     bad_src);
out:
    cli_progress_stop(prog);
    copier_free(cp);
    writer_free(w);
    for (size_t i = 0; i < p.n_made; i++)
        snapshot_release(&p.made[i]);
    free(p.made);
    free(p.copy);
    repo_free_snapshots(p.src, p.n_src);
    repo_free_snapshots(p.dst, p.n_dst);
    free(want);
    repo_close(src);
    repo_close(dst);
    return cli_fail(cli, rc);
}
