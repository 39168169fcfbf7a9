/*
 * cmd_forget.c -- `coffer forget`: remove snapshots named by id, or by a retention policy
 * applied to each group of snapshots (repo/retention.h), then optionally prune.
 *
 * Layer: cli. Forget only removes `snapshots/<id>` objects; it deletes no data, so it needs no
 * writer session and no prune lease (doc/format.md §1). The data a removed snapshot alone
 * referenced goes away with `coffer prune` (or --prune). Every id is resolved before anything
 * is removed, so a mistyped id removes nothing. An empty policy with no ids is a usage error:
 * removing everything takes explicit ids.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "repo/retention.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORGET_MAX_FILTER_TAGS 64

enum {
    O_LAST = 256,
    O_HOURLY,
    O_DAILY,
    O_WEEKLY,
    O_MONTHLY,
    O_YEARLY,
    O_WITHIN,
    O_KEEP_TAG,
    O_GROUP_BY,
    O_HOST,
    O_TAG,
    O_PRUNE,
    O_JOB,
};

/* One group of snapshots: indices into the (filtered, oldest-first) snapshot array. */
typedef struct fgroup {
    char *key; /* owned */
    size_t *idx;
    size_t n;
} fgroup_t;

/* What forget decided for each snapshot of the filtered array. */
typedef struct plan {
    bool *remove;      /* n entries */
    unsigned *reasons; /* n entries: why kept */
    fgroup_t *groups;
    size_t n_groups;
    size_t n_remove;
} plan_t;

static void help(void)
{
    printf("usage: coffer forget [policy] [--group-by LIST] [--host H] [--tag T]... [--dry-run]\n"
           "                     [--prune] [--json]\n"
           "       coffer forget [--dry-run] [--prune] SNAP-ID...\n"
           "Removes snapshots: the ones named, or in each group those no policy rule keeps.\n"
           "Policy (counts: N, or -1 for unlimited):\n"
           "  --keep-last N          the N newest snapshots\n"
           "  --keep-hourly N        the newest snapshot of each of the last N hours with one\n"
           "  --keep-daily N         ... days\n"
           "  --keep-weekly N        ... ISO weeks\n"
           "  --keep-monthly N       ... months\n"
           "  --keep-yearly N        ... years\n"
           "  --keep-within DURATION every snapshot within DURATION of the newest one\n"
           "                         (h, d, w, m = 30 days, y = 365 days: 36h, 7d, 2w, 1y6m)\n"
           "  --keep-tag T           snapshots tagged T (\"a,b\": tagged a and b); repeatable\n"
           "Failed snapshots are never kept by the policy and use up no count; the newest one\n"
           "stays while it is newer than every good snapshot of its group.\n"
           "  --group-by LIST        group by host,paths,tags,job (default host,paths,job;\n"
           "                         '' for one group)\n"
           "  --host H, --tag T      only consider snapshots of host H / with tag T\n"
           "  --job NAME             only consider snapshots of the configured job NAME\n"
           "  -n, --dry-run          show what would be removed, remove nothing\n"
           "  --prune                run `coffer prune` afterwards to free the data\n");
}

static int parse_count(const char *opt, const char *arg, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < RETENTION_UNLIMITED || v > INT_MAX)
        return cli_usage("forget",
                         "--%s takes a count (a number >= 0, or -1 for unlimited), "
                         "not \"%s\"",
                         opt, arg);
    *out = (int)v;
    return 0;
}

static void plan_release(plan_t *pl)
{
    for (size_t g = 0; g < pl->n_groups; g++) {
        free(pl->groups[g].key);
        free(pl->groups[g].idx);
    }
    free(pl->groups);
    free(pl->remove);
    free(pl->reasons);
    memset(pl, 0, sizeof *pl);
}

typedef struct keyed {
    const char *key;
    size_t i;
} keyed_t;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Split snaps into groups by key (groups sorted by key, snapshots oldest first). */
static int make_groups(const snapshot_t *snaps, size_t n, unsigned flags, plan_t *pl)
{
    char **keys = calloc(n ? n : 1, sizeof *keys);
    keyed_t *k = calloc(n ? n : 1, sizeof *k);
    buf_t b;
    buf_init(&b);
    int rc = 0;
    if (!keys || !k) {
        rc = err_set(COFFER_ENOMEM, "out of memory grouping %zu snapshots", n);
        goto out;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        rc = retention_group_key(&snaps[i], flags, &b);
        if (!rc && !(keys[i] = strdup((const char *)b.data)))
            rc = err_set(COFFER_ENOMEM, "out of memory grouping %zu snapshots", n);
        k[i] = (keyed_t){keys[i], i};
    }
    if (rc)
        goto out;
    qsort(k, n, sizeof *k, cmp_keyed);
    pl->groups = calloc(n ? n : 1, sizeof *pl->groups);
    if (!pl->groups) {
        rc = err_set(COFFER_ENOMEM, "out of memory grouping %zu snapshots", n);
        goto out;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && strcmp(k[j].key, k[i].key) == 0)
            j++;
        fgroup_t *g = &pl->groups[pl->n_groups++];
        g->idx = calloc(j - i, sizeof *g->idx);
        g->key = strdup(k[i].key);
        if (!g->idx || !g->key) {
            rc = err_set(COFFER_ENOMEM, "out of memory grouping %zu snapshots", n);
            goto out;
        }
        for (size_t m = i; m < j; m++)
            g->idx[g->n++] = k[m].i;
        i = j;
    }
out:
    if (keys)
        for (size_t i = 0; i < n; i++)
            free(keys[i]);
    free(keys);
    free(k);
    buf_release(&b);
    return rc;
}

/* Apply the policy to every group. */
static int plan_policy(const retention_policy_t *p, const snapshot_t *snaps, plan_t *pl)
{
    int rc = 0;
    for (size_t g = 0; g < pl->n_groups && !rc; g++) {
        fgroup_t *gr = &pl->groups[g];
        const snapshot_t **ptr = calloc(gr->n, sizeof *ptr);
        retention_decision_t *d = calloc(gr->n, sizeof *d);
        if (!ptr || !d)
            rc = err_set(COFFER_ENOMEM, "out of memory applying the retention policy");
        for (size_t i = 0; i < gr->n && !rc; i++)
            ptr[i] = &snaps[gr->idx[i]];
        if (!rc)
            rc = retention_apply(p, ptr, gr->n, d);
        for (size_t i = 0; i < gr->n && !rc; i++) {
            pl->remove[gr->idx[i]] = !d[i].keep;
            pl->reasons[gr->idx[i]] = d[i].reasons;
            pl->n_remove += !d[i].keep;
        }
        free(ptr);
        free(d);
    }
    return rc;
}

static void print_row(const snapshot_t *s, const char *reasons)
{
    char hex[65], ts[40], tagstr[256] = "";
    hex_encode(s->id, 32, hex);
    time_format_local(s->time_ns, ts, sizeof ts);
    size_t k = 0;
    for (size_t t = 0; t < s->n_tags && k < sizeof tagstr - 2; t++)
        k += (size_t)snprintf(tagstr + k, sizeof tagstr - k, "%s%s", t ? "," : "", s->tags[t]);
    char line[512];
    int len = snprintf(line, sizeof line, "%.8s   %-19s %-16.16s %-9s %-10s %s", hex, ts,
                       s->host ? s->host : "", s->status ? s->status : "complete", tagstr, reasons);
    size_t end = len < 0 ? 0 : (size_t)len < sizeof line ? (size_t)len : sizeof line - 1;
    while (end > 0 && line[end - 1] == ' ')
        end--;
    printf("%.*s\n", (int)end, line);
}

/* Human table of one group: kept snapshots with reasons, then removed ones. */
static int print_group(const snapshot_t *snaps, const plan_t *pl, const fgroup_t *g, bool policy)
{
    buf_t b;
    buf_init(&b);
    int rc = 0;
    size_t nrem = 0;
    for (size_t i = 0; i < g->n; i++)
        nrem += pl->remove[g->idx[i]];
    if (policy)
        printf("\nsnapshots for group %s:\n", g->key[0] ? g->key : "(all)");
    for (int pass = 0; pass < 2 && !rc; pass++) {
        size_t cnt = pass ? nrem : g->n - nrem;
        if (cnt == 0 || (!policy && pass == 0))
            continue;
        printf("%s %zu snapshot%s:\n", pass ? "remove" : "keep", cnt, cnt == 1 ? "" : "s");
        printf("%-10s %-19s %-16s %-9s %s\n", "ID", "Time", "Host", "Status",
               pass ? "Tags" : "Tags       Reasons");
        for (size_t i = 0; i < g->n && !rc; i++) {
            size_t x = g->idx[i];
            if (pl->remove[x] != (pass == 1))
                continue;
            rc = retention_reasons_format(pass ? 0 : pl->reasons[x], &b);
            if (!rc)
                print_row(&snaps[x], (const char *)b.data);
        }
    }
    buf_release(&b);
    return rc;
}

static json_t *group_json(const snapshot_t *snaps, const plan_t *pl, const fgroup_t *g)
{
    json_t *keep = json_array(), *rem = json_array(), *why = json_object();
    for (size_t i = 0; i < g->n; i++) {
        size_t x = g->idx[i];
        char hex[65];
        hex_encode(snaps[x].id, 32, hex);
        if (pl->remove[x]) {
            json_array_append_new(rem, json_string(hex));
            continue;
        }
        json_array_append_new(keep, json_string(hex));
        json_t *r = json_array();
        for (int bit = 0; bit < RETENTION_N_REASONS; bit++)
            if (pl->reasons[x] & (1u << bit))
                json_array_append_new(r, json_string(retention_reason_name(1u << bit)));
        json_object_set_new(why, hex, r);
    }
    return json_pack("{s:s,s:o,s:o,s:o}", "group", g->key, "keep", keep, "remove", rem, "reasons",
                     why);
}

/* Remove the planned snapshots; a snapshot already gone is not an error. Returns 0 or the
 * first error, after trying every snapshot. */
static int remove_planned(cli_t *cli, repo_t *r, const snapshot_t *snaps, size_t n,
                          const plan_t *pl, size_t *out_removed)
{
    int first = 0;
    size_t failed = 0, removed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pl->remove[i])
            continue;
        if (cli_stop) {
            first = first ? first : err_set(COFFER_EINTR, "interrupted while removing snapshots");
            break;
        }
        char name[80], hex[65];
        repo_obj_name("snapshots", snaps[i].id, name, sizeof name);
        hex_encode(snaps[i].id, 32, hex);
        int rc = storage_remove(repo_storage(r), name);
        if (rc == COFFER_ENOENT) {
            err_clear();
            continue;
        }
        if (rc) {
            log_error("could not remove snapshot %.8s: %s", hex, err_msg());
            failed++;
            first = first ? first : rc;
            continue;
        }
        removed++;
        if (cli->verbose && !cli->json)
            printf("removed snapshot %.8s\n", hex);
    }
    *out_removed = removed;
    if (first && first != COFFER_EINTR)
        return err_set(first,
                       "could not remove %zu snapshot(s) (errors above); the others are "
                       "gone: run the same forget again",
                       failed);
    return first;
}

int cmd_forget(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"keep-last", required_argument, 0, O_LAST},
                                         {"keep-hourly", required_argument, 0, O_HOURLY},
                                         {"keep-daily", required_argument, 0, O_DAILY},
                                         {"keep-weekly", required_argument, 0, O_WEEKLY},
                                         {"keep-monthly", required_argument, 0, O_MONTHLY},
                                         {"keep-yearly", required_argument, 0, O_YEARLY},
                                         {"keep-within", required_argument, 0, O_WITHIN},
                                         {"keep-tag", required_argument, 0, O_KEEP_TAG},
                                         {"group-by", required_argument, 0, O_GROUP_BY},
                                         {"host", required_argument, 0, O_HOST},
                                         {"tag", required_argument, 0, O_TAG},
                                         {"dry-run", no_argument, 0, 'n'},
                                         {"prune", no_argument, 0, O_PRUNE},
                                         {"job", required_argument, 0, O_JOB},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    retention_policy_t pol = {0};
    const char *keep_tags[RETENTION_MAX_TAGS];
    char *tags[FORGET_MAX_FILTER_TAGS];
    snap_filter_t f = {0};
    unsigned group_flags = RETENTION_GROUP_DEFAULT;
    bool dry_run = false, prune = false;
    const char *job = NULL;
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "nh", opts, NULL)) != -1) {
        const char *name = c >= O_LAST && c <= O_YEARLY ? opts[c - O_LAST].name : NULL;
        switch (c) {
        case O_LAST:
        case O_HOURLY:
        case O_DAILY:
        case O_WEEKLY:
        case O_MONTHLY:
        case O_YEARLY: {
            int *dst[] = {&pol.keep_last,   &pol.keep_hourly,  &pol.keep_daily,
                          &pol.keep_weekly, &pol.keep_monthly, &pol.keep_yearly};
            if ((rc = parse_count(name, optarg, dst[c - O_LAST])))
                return rc;
            break;
        }
        case O_WITHIN:
            if (retention_parse_duration(optarg, &pol.keep_within_s))
                return cli_usage("forget", "--keep-within: %s", err_msg());
            break;
        case O_KEEP_TAG:
            if (pol.n_keep_tags == RETENTION_MAX_TAGS)
                return cli_usage("forget", "too many --keep-tag options (limit %d)",
                                 RETENTION_MAX_TAGS);
            keep_tags[pol.n_keep_tags++] = optarg;
            break;
        case O_GROUP_BY:
            if (retention_parse_group_by(optarg, &group_flags))
                return cli_usage("forget", "--group-by: %s", err_msg());
            break;
        case O_HOST:
            f.host = optarg;
            break;
        case O_TAG:
            if (f.n_tags == FORGET_MAX_FILTER_TAGS)
                return cli_usage("forget", "too many --tag options (limit %d)",
                                 FORGET_MAX_FILTER_TAGS);
            tags[f.n_tags++] = optarg;
            break;
        case 'n':
            dry_run = true;
            break;
        case O_PRUNE:
            prune = true;
            break;
        case O_JOB:
            job = optarg;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("forget", "unknown option");
        }
    }
    f.tags = tags;
    pol.keep_tags = keep_tags;
    char **ids = argv + optind;
    size_t n_ids = (size_t)(argc - optind);
    bool policy = !retention_policy_empty(&pol);
    if (!policy && n_ids == 0)
        return cli_usage("forget",
                         "no policy and no snapshot ids: give --keep-last/-hourly/-daily/"
                         "-weekly/-monthly/-yearly/-within/-tag, or the ids of the snapshots "
                         "to remove (removing every snapshot takes their explicit ids)");
    if (policy && n_ids)
        return cli_usage("forget", "give either snapshot ids or a policy, not both");
    if (policy && retention_policy_check(&pol))
        return cli_usage("forget", "%s", err_msg());

    repo_t *r = NULL;
    snapshot_t *s = NULL;
    size_t n = 0, bad = 0, removed = 0;
    plan_t pl = {0};
    buf_t desc;
    buf_init(&desc);
    if ((rc = cli_open_repo(cli, &r)) || (rc = repo_list_snapshots(r, &s, &n, &bad)))
        goto out;
    /* keep only the snapshots the filters select, oldest first */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (cli_snap_matches(&s[i], &f) && (!job || (s[i].job && strcmp(s[i].job, job) == 0)))
            s[k++] = s[i];
        else
            snapshot_release(&s[i]);
    }
    n = k;
    pl.remove = calloc(n ? n : 1, sizeof *pl.remove);
    pl.reasons = calloc(n ? n : 1, sizeof *pl.reasons);
    if (!pl.remove || !pl.reasons) {
        rc = err_set(COFFER_ENOMEM, "out of memory planning forget of %zu snapshots", n);
        goto out;
    }
    if (policy) {
        if ((rc = make_groups(s, n, group_flags, &pl)) || (rc = plan_policy(&pol, s, &pl)) ||
            (rc = retention_policy_describe(&pol, &desc)))
            goto out;
    } else {
        for (size_t i = 0; i < n_ids; i++) {
            size_t x;
            if ((rc = repo_resolve_snapshot(s, n, ids[i], &x)))
                goto out;
            pl.n_remove += !pl.remove[x];
            pl.remove[x] = true;
        }
        /* one unnamed group holding the named snapshots */
        pl.groups = calloc(1, sizeof *pl.groups);
        pl.n_groups = pl.groups ? 1 : 0;
        if (!pl.groups || !(pl.groups[0].key = strdup("")) ||
            !(pl.groups[0].idx = calloc(pl.n_remove, sizeof *pl.groups[0].idx))) {
            rc = err_set(COFFER_ENOMEM, "out of memory planning forget");
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (pl.remove[i])
                pl.groups[0].idx[pl.groups[0].n++] = i;
    }

    if (cli->json) {
        json_t *arr = json_array();
        for (size_t g = 0; g < pl.n_groups; g++)
            json_array_append_new(arr, group_json(s, &pl, &pl.groups[g]));
        cli_json_doc(arr);
    } else if (!cli->quiet) {
        if (policy)
            printf("Applying policy: %s\n", (const char *)desc.data);
        for (size_t g = 0; g < pl.n_groups && !rc; g++)
            rc = print_group(s, &pl, &pl.groups[g], policy);
        if (rc)
            goto out;
    }
    if (!dry_run) {
        rc = remove_planned(cli, r, s, n, &pl, &removed);
        if (!cli->json && !cli->quiet)
            printf("\nremoved %zu snapshot%s\n", removed, removed == 1 ? "" : "s");
        if (rc)
            goto out;
    } else if (!cli->json && !cli->quiet) {
        printf("\nwould remove %zu snapshot%s (dry run: nothing removed)\n", pl.n_remove,
               pl.n_remove == 1 ? "" : "s");
    }
out:
    plan_release(&pl);
    buf_release(&desc);
    repo_free_snapshots(s, n);
    repo_close(r);
    if (rc)
        return cli_fail(cli, rc);
    if (prune && dry_run) {
        if (!cli->json && !cli->quiet)
            printf("--prune skipped: this is a dry run\n");
    } else if (prune) {
        /* the repository is closed first: prune opens it itself and takes the lease */
        char prune_name[] = "prune";
        char *pargv[] = {prune_name, NULL};
        int prc = cmd_prune(cli, 1, pargv);
        if (prc != EXIT_OK)
            return prc;
    }
    if (bad)
        return cli_fail(cli, err_set(COFFER_EPARTIAL,
                                     "%zu snapshot(s) could not be read and were neither kept "
                                     "nor removed: run `coffer check`",
                                     bad));
    return EXIT_OK;
}
