/*
 * cmd_k8s.c -- `coffer k8s export | restore`: Kubernetes objects to files, an archive or a
 * snapshot, and back into a cluster.
 *
 * Layer: cli. The work is in source/k8s (export.c, restore.c) over the API client in k8s/;
 * this file parses options, picks the sink and prints results. Exit codes: 0 ok, 1 failed,
 * 2 usage, 3 partial (export: a kind failed with a server error, the snapshot is saved with
 * status partial; restore: some objects failed, see the report), 130 interrupted. A kind the
 * account may not read (403) or the cluster does not serve (404) is a warning, exit 0: a
 * least-privilege export skips it by design.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "k8s/client.h"
#include "repo/writer.h"
#include "source/k8s/export.h"
#include "source/k8s/outdir.h"
#include "source/k8s/repotree.h"
#include "source/k8s/restore.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LIST 1024

typedef struct strlist {
    char *v[MAX_LIST];
    size_t n;
} strlist_t;

/* Add a comma-separated list (kinds) or one value; 0 or -1 when full. */
static int list_add(strlist_t *l, char *arg, bool split)
{
    if (!split) {
        if (l->n == MAX_LIST)
            return -1;
        l->v[l->n++] = arg;
        return 0;
    }
    for (char *s = arg, *e; s && *s; s = e ? e + 1 : NULL) {
        e = strchr(s, ',');
        if (e)
            *e = 0;
        if (!*s)
            continue;
        if (l->n == MAX_LIST)
            return -1;
        l->v[l->n++] = s;
    }
    return 0;
}

static int open_client(const char *kubeconfig, const char *context, k8s_client_t **out)
{
    k8s_config_t cfg;
    k8s_config_init(&cfg);
    int rc = k8s_config_auto(kubeconfig, context, &cfg);
    if (!rc)
        rc = k8s_client_new(&cfg, out);
    k8s_config_release(&cfg);
    return rc;
}

/* ---- export ------------------------------------------------------------------------------ */

static void export_help(void)
{
    printf(
        "usage: coffer k8s export [options] [--out DIR | --archive FILE]\n"
        "       coffer -r REPO k8s export [options]          (a snapshot of kind k8s)\n"
        "  --kubeconfig FILE        kubeconfig (default $KUBECONFIG, ~/.kube/config, in-cluster)\n"
        "  --context NAME           kubeconfig context (default: the current one)\n"
        "  -n, --namespace NS       namespace to export (repeatable; default: the context's)\n"
        "  -A, --all-namespaces     every namespace\n"
        "  -l, --selector SEL       label selector (k=v, k!=v, k in (a,b), k, !k)\n"
        "  --include-kinds LIST     only these kinds (comma-separated: configmaps,deploy,...)\n"
        "  --exclude-kinds LIST     not these kinds\n"
        "  --cluster-resources      also cluster-scoped kinds (CRDs, cluster roles, PVs, ...)\n"
        "  --include-secrets        export Secrets too (skipped with a warning otherwise)\n"
        "  --include-owned          keep objects owned by an exported object (pods of replica\n"
        "                           sets, ...) and events, endpoints, endpoint slices\n"
        "  --keep-last-applied      keep the kubectl last-applied-configuration annotation\n"
        "  --keep-status            keep .status\n"
        "  --page-size N            objects per list request (default 500)\n"
        "  --out DIR                write files into DIR (new or empty)\n"
        "  --archive FILE           write a tar.zst (a directory: dated name inside it;\n"
        "                           strftime %%-sequences in FILE are expanded, UTC)\n"
        "  --tag T, --host H, --job NAME   recorded in the snapshot (repository mode)\n"
        "Files: NS/RESOURCE[.GROUP]/NAME.json, cluster kinds under _cluster/ (doc/k8s.md).\n"
        "Kinds the account may not read (403) or the cluster lacks (404): one warning each,\n"
        "exit 0. exit: 0 ok, 1 failed, 2 usage, 3 partial (a kind failed; snapshot partial).\n");
}

typedef struct export_errs {
    snapshot_t *snap; /* repository mode: errors recorded in the snapshot */
} export_errs_t;

static void on_export_error(void *ud, const char *what, const char *message)
{
    export_errs_t *x = ud;
    log_warn("%s", message);
    if (x->snap)
        snapshot_add_error(x->snap, what, message);
}

typedef struct sink_mux {
    k8s_sink_fn fn;
    void *ud;
    export_errs_t errs;
} sink_mux_t;

static int mux_sink(void *ud, const char *path, const char *data, size_t n, int64_t ctime_ns)
{
    sink_mux_t *m = ud;
    return m->fn(m->ud, path, data, n, ctime_ns);
}

static void mux_error(void *ud, const char *what, const char *message)
{
    sink_mux_t *m = ud;
    on_export_error(&m->errs, what, message);
}

static int cmd_k8s_export(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"kubeconfig", required_argument, 0, 'K'},
                                         {"context", required_argument, 0, 'C'},
                                         {"namespace", required_argument, 0, 'n'},
                                         {"all-namespaces", no_argument, 0, 'A'},
                                         {"selector", required_argument, 0, 'l'},
                                         {"include-kinds", required_argument, 0, 'I'},
                                         {"exclude-kinds", required_argument, 0, 'X'},
                                         {"cluster-resources", no_argument, 0, 'c'},
                                         {"include-secrets", no_argument, 0, 'S'},
                                         {"include-owned", no_argument, 0, 'O'},
                                         {"keep-last-applied", no_argument, 0, 'L'},
                                         {"keep-status", no_argument, 0, 's'},
                                         {"page-size", required_argument, 0, 'p'},
                                         {"out", required_argument, 0, 'o'},
                                         {"archive", required_argument, 0, 'a'},
                                         {"tag", required_argument, 0, 't'},
                                         {"host", required_argument, 0, 'H'},
                                         {"job", required_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    static strlist_t nss, inc, exc, tags;
    nss.n = inc.n = exc.n = tags.n = 0;
    const char *kubeconfig = NULL, *context = NULL, *out_dir = NULL, *archive = NULL;
    const char *host = NULL, *job = NULL;
    k8s_export_opts_t eo = {.stop = &cli_stop};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "hn:Al:", opts, NULL)) != -1) {
        int full = 0;
        switch (ch) {
        case 'K':
            kubeconfig = optarg;
            break;
        case 'C':
            context = optarg;
            break;
        case 'n':
            full = list_add(&nss, optarg, false);
            break;
        case 'A':
            eo.all_namespaces = true;
            break;
        case 'l':
            eo.label_selector = optarg;
            break;
        case 'I':
            full = list_add(&inc, optarg, true);
            break;
        case 'X':
            full = list_add(&exc, optarg, true);
            break;
        case 'c':
            eo.cluster_resources = true;
            break;
        case 'S':
            eo.include_secrets = true;
            break;
        case 'O':
            eo.include_owned = true;
            break;
        case 'L':
            eo.prune.keep_last_applied = true;
            break;
        case 's':
            eo.prune.keep_status = true;
            break;
        case 'p':
            eo.page_size = atoi(optarg);
            if (eo.page_size < 1 || eo.page_size > 10000)
                return cli_usage("k8s export", "--page-size takes 1 to 10000");
            break;
        case 'o':
            out_dir = optarg;
            break;
        case 'a':
            archive = optarg;
            break;
        case 't':
            full = list_add(&tags, optarg, false);
            break;
        case 'H':
            host = optarg;
            break;
        case 'j':
            job = optarg;
            break;
        case 'h':
            export_help();
            return EXIT_OK;
        default:
            return cli_usage("k8s export", "unknown option");
        }
        if (full)
            return cli_usage("k8s export", "too many values for one option");
    }
    if (optind < argc)
        return cli_usage("k8s export", "unexpected argument \"%s\"", argv[optind]);
    if (out_dir && archive)
        return cli_usage("k8s export", "give either --out or --archive, not both");
    if (eo.all_namespaces && nss.n)
        return cli_usage("k8s export", "give either -n or --all-namespaces, not both");
    bool to_repo = !out_dir && !archive;
    if (to_repo && !cli->repo)
        return cli_usage("k8s export", "give --out DIR, --archive FILE, or a repository "
                                       "(-r REPO or COFFER_REPOSITORY)");
    eo.namespaces = nss.v;
    eo.n_namespaces = nss.n;
    eo.include_kinds = inc.v;
    eo.n_include = inc.n;
    eo.exclude_kinds = exc.v;
    eo.n_exclude = exc.n;

    int64_t t0 = time_monotonic_ns(), now = time_now_ns();
    k8s_client_t *c = NULL;
    k8s_outdir_t *dir = NULL;
    k8s_archive_t *ar = NULL;
    repo_t *r = NULL;
    writer_t *w = NULL;
    k8s_repotree_t *tree = NULL;
    snapshot_t snap;
    snapshot_init(&snap);
    k8s_export_stats_t st = {0};
    sink_mux_t mux = {0};
    const char *archive_name = NULL;
    int rc = open_client(kubeconfig, context, &c);
    if (rc)
        goto out;
    if (out_dir) {
        if ((rc = k8s_outdir_open(out_dir, &dir)))
            goto out;
        mux.fn = k8s_outdir_sink;
        mux.ud = dir;
    } else if (archive) {
        if ((rc = k8s_archive_open(archive, now, &ar)))
            goto out;
        mux.fn = k8s_archive_sink;
        mux.ud = ar;
    } else {
        writer_opts_t wo = {.purpose = "backup"};
        if ((rc = cli_open_repo(cli, &r)) || (rc = writer_open(r, &wo, &w)) ||
            (rc = k8s_repotree_new(r, w, &tree)))
            goto out;
        mux.fn = k8s_repotree_sink;
        mux.ud = tree;
        mux.errs.snap = &snap;
    }
    eo.sink = mux_sink;
    eo.on_error = mux_error;
    eo.ud = &mux;
    if ((rc = k8s_export(c, &eo, &st)))
        goto out;
    if (ar && (rc = k8s_archive_close(ar, 1, &archive_name)))
        goto out;
    if (to_repo) {
        char hostbuf[256] = "";
        if (!host)
            gethostname(hostbuf, sizeof hostbuf - 1);
        snap.time_ns = now;
        snap.host = strdup(host ? host : hostbuf);
        snap.user = strdup(getenv("USER") ? getenv("USER") : "");
        snap.job = strdup(job ? job : "");
        snap.kind = strdup("k8s");
        snap.program = strdup("coffer " COFFER_VERSION_STR);
        snap.status = strdup(st.errors ? "partial" : "complete");
        if (!snap.host || !snap.user || !snap.job || !snap.kind || !snap.program || !snap.status) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            goto out;
        }
        const k8s_config_t *cfg = k8s_client_config(c);
        buf_t p;
        buf_init(&p);
        if (eo.all_namespaces)
            rc = buf_printf(&p, "%s (all namespaces)", cfg->server);
        else if (!nss.n)
            rc = buf_printf(&p, "%s/%s", cfg->server, cfg->namespace);
        for (size_t i = 0; i < nss.n && !rc; i++) {
            buf_reset(&p);
            if (!(rc = buf_printf(&p, "%s/%s", cfg->server, nss.v[i])))
                rc = snapshot_add_path(&snap, (char *)p.data);
        }
        if (!rc && p.len && !nss.n)
            rc = snapshot_add_path(&snap, (char *)p.data);
        buf_release(&p);
        for (size_t i = 0; i < tags.n && !rc; i++)
            rc = snapshot_add_tag(&snap, tags.v[i]);
        uint64_t files = 0, dirs = 0;
        if (rc || (rc = k8s_repotree_finish(tree, snap.tree, &files, &dirs)) ||
            (rc = writer_flush(w)))
            goto out;
        const writer_stats_t *ws = writer_stats(w);
        snap.summary.files_new = files;
        snap.summary.dirs = dirs;
        snap.summary.bytes_read = st.bytes;
        snap.summary.bytes_added = atomic_load(&ws->bytes_added);
        snap.summary.bytes_stored = atomic_load(&ws->bytes_stored);
        snap.summary.blobs_added = atomic_load(&ws->blobs_added);
        snap.summary.duration_s = (double)(time_monotonic_ns() - t0) / 1e9;
        if ((rc = writer_save_snapshot(w, &snap)))
            goto out;
    }
    double secs = (double)(time_monotonic_ns() - t0) / 1e9;
    if (cli->json) {
        json_t *o = to_repo ? cli_snapshot_json(&snap) : json_object();
        json_object_set_new(o, "message_type", json_string("summary"));
        json_object_set_new(o, "objects", json_integer((json_int_t)st.objects));
        json_object_set_new(o, "bytes", json_integer((json_int_t)st.bytes));
        json_object_set_new(o, "kinds", json_integer((json_int_t)st.kinds));
        json_object_set_new(o, "kinds_skipped", json_integer((json_int_t)st.kinds_skipped));
        json_object_set_new(o, "owned_skipped", json_integer((json_int_t)st.owned_skipped));
        json_object_set_new(o, "errors", json_integer((json_int_t)st.errors));
        if (out_dir)
            json_object_set_new(o, "out", json_string(out_dir));
        if (archive_name)
            json_object_set_new(o, "archive", json_string(archive_name));
        cli_json_line(o);
    } else if (!cli->quiet) {
        char sz[32];
        cli_fmt_bytes(st.bytes, sz, sizeof sz);
        printf("exported %llu objects (%s) of %llu kinds in %.2f s; %llu kinds skipped, %llu "
               "owned objects skipped\n",
               (unsigned long long)st.objects, sz, (unsigned long long)st.kinds, secs,
               (unsigned long long)st.kinds_skipped, (unsigned long long)st.owned_skipped);
        if (out_dir)
            printf("files in %s\n", out_dir);
        if (archive_name)
            printf("archive %s\n", archive_name);
        if (to_repo) {
            char hex[65];
            hex_encode(snap.id, 32, hex);
            printf("snapshot %.8s saved (%s)\n", hex, snap.status);
        }
    }
    if (st.errors)
        rc =
            err_set(COFFER_EPARTIAL, "%llu kind%s could not be exported (see the warnings above)%s",
                    (unsigned long long)st.errors, st.errors == 1 ? "" : "s",
                    to_repo ? "; the snapshot was saved with status partial" : "");
out:
    if (ar && rc)
        k8s_archive_close(ar, 0, NULL);
    k8s_archive_free(ar);
    k8s_outdir_close(dir);
    k8s_repotree_free(tree);
    writer_free(w);
    repo_close(r);
    snapshot_release(&snap);
    k8s_client_free(c);
    return cli_fail(cli, rc);
}

/* ---- restore ----------------------------------------------------------------------------- */

static void restore_help(void)
{
    printf("usage: coffer -r REPO k8s restore SNAP [options]\n"
           "       coffer k8s restore --from DIR [options]      (an `export --out` directory)\n"
           "  --kubeconfig FILE, --context NAME   the target cluster (as for export)\n"
           "  -n, --namespace NS       only objects of these namespaces (repeatable)\n"
           "  --include-kinds LIST     only these kinds (resource, resource.group or Kind)\n"
           "  --exclude-kinds LIST     not these kinds\n"
           "  --name NAME              only objects with this name (repeatable)\n"
           "  -l, --selector SEL       only objects whose labels match\n"
           "  --namespace-map A:B      restore namespace A as B (repeatable; also PV claimRefs\n"
           "                           and binding subjects)\n"
           "  --priority LIST          restore these resources first, in this order\n"
           "                           (comma-separated; default in doc/k8s.md)\n"
           "  --existing skip|update   an object that exists: leave it (default) or apply ours\n"
           "                           (server-side apply, field manager coffer)\n"
           "  --dry-run                print the plan (create, update, skip per object); change\n"
           "                           nothing\n"
           "  --keep-nodeports         keep every Service nodePort (default: only those in the\n"
           "                           last-applied configuration)\n"
           "  --crd-wait SECS          how long to wait for restored CRDs to be Established (60)\n"
           "Report: one line per object (--json: one object per line), then a summary.\n"
           "exit: 0 ok, 1 failed (nothing or not everything attempted: see the report), 2 usage,\n"
           "      3 some objects failed (see the report)\n");
}

typedef struct rep_ctx {
    cli_t *cli;
} rep_ctx_t;

static void on_report(void *ud, const k8s_rresult_t *r)
{
    rep_ctx_t *x = ud;
    if (x->cli->json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "message_type", "object", "action",
                              k8s_action_name(r->action), "resource", r->rid, "namespace", r->ns,
                              "name", r->name, "path", r->path);
        if (o && r->message)
            json_object_set_new(o, "message", json_string(r->message));
        cli_json_line(o);
        return;
    }
    if (x->cli->quiet && r->action != K8S_FAILED)
        return;
    printf("%-13s %s %s%s%s%s%s\n", k8s_action_name(r->action), r->rid, r->ns, r->ns[0] ? "/" : "",
           r->name, r->message ? ": " : "", r->message ? r->message : "");
    fflush(stdout);
}

static int cmd_k8s_restore(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"kubeconfig", required_argument, 0, 'K'},
                                         {"context", required_argument, 0, 'C'},
                                         {"namespace", required_argument, 0, 'n'},
                                         {"include-kinds", required_argument, 0, 'I'},
                                         {"exclude-kinds", required_argument, 0, 'X'},
                                         {"name", required_argument, 0, 'N'},
                                         {"selector", required_argument, 0, 'l'},
                                         {"namespace-map", required_argument, 0, 'm'},
                                         {"priority", required_argument, 0, 'P'},
                                         {"existing", required_argument, 0, 'e'},
                                         {"dry-run", no_argument, 0, 'd'},
                                         {"keep-nodeports", no_argument, 0, 'k'},
                                         {"crd-wait", required_argument, 0, 'w'},
                                         {"from", required_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    static strlist_t nss, inc, exc, names, prio, maps;
    static k8s_nsmap_t map[MAX_LIST];
    nss.n = inc.n = exc.n = names.n = prio.n = maps.n = 0;
    const char *kubeconfig = NULL, *context = NULL, *from = NULL;
    rep_ctx_t rx = {.cli = cli};
    k8s_restore_opts_t ro = {.stop = &cli_stop, .report = on_report, .ud = &rx};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "hn:l:", opts, NULL)) != -1) {
        int full = 0;
        switch (ch) {
        case 'K':
            kubeconfig = optarg;
            break;
        case 'C':
            context = optarg;
            break;
        case 'n':
            full = list_add(&nss, optarg, false);
            break;
        case 'I':
            full = list_add(&inc, optarg, true);
            break;
        case 'X':
            full = list_add(&exc, optarg, true);
            break;
        case 'N':
            full = list_add(&names, optarg, false);
            break;
        case 'l':
            ro.label_selector = optarg;
            break;
        case 'm': {
            char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg || !colon[1] || strchr(colon + 1, ':'))
                return cli_usage("k8s restore", "--namespace-map takes FROM:TO, not \"%s\"",
                                 optarg);
            *colon = 0;
            if (maps.n == MAX_LIST)
                return cli_usage("k8s restore", "too many --namespace-map options");
            map[maps.n].from = optarg;
            map[maps.n].to = colon + 1;
            maps.n++;
            break;
        }
        case 'P':
            full = list_add(&prio, optarg, true);
            break;
        case 'e':
            if (!strcmp(optarg, "update"))
                ro.update_existing = true;
            else if (strcmp(optarg, "skip") != 0)
                return cli_usage("k8s restore", "--existing takes skip or update");
            break;
        case 'd':
            ro.dry_run = true;
            break;
        case 'k':
            ro.keep_nodeports = true;
            break;
        case 'w':
            ro.crd_wait_s = atoi(optarg);
            if (ro.crd_wait_s < 1 || ro.crd_wait_s > 3600)
                return cli_usage("k8s restore", "--crd-wait takes 1 to 3600 seconds");
            break;
        case 'f':
            from = optarg;
            break;
        case 'h':
            restore_help();
            return EXIT_OK;
        default:
            return cli_usage("k8s restore", "unknown option");
        }
        if (full)
            return cli_usage("k8s restore", "too many values for one option");
    }
    int nargs = argc - optind;
    if (from && nargs)
        return cli_usage("k8s restore", "give either a snapshot or --from DIR, not both");
    if (!from && nargs != 1)
        return cli_usage("k8s restore", "give a snapshot (\"latest\" or an id) or --from DIR");
    ro.namespaces = nss.v;
    ro.n_namespaces = nss.n;
    ro.include_kinds = inc.v;
    ro.n_include = inc.n;
    ro.exclude_kinds = exc.v;
    ro.n_exclude = exc.n;
    ro.names = names.v;
    ro.n_names = names.n;
    ro.map = map;
    ro.n_map = maps.n;
    if (prio.n) {
        ro.priority = prio.v;
        ro.n_priority = prio.n;
    }
    k8s_rset_t set = {0};
    repo_t *r = NULL;
    k8s_client_t *c = NULL;
    snapshot_t snap;
    snapshot_init(&snap);
    k8s_restore_stats_t st = {0};
    int rc;
    if (from) {
        rc = k8s_rset_load_dir(from, &set);
    } else {
        if (!(rc = cli_open_repo(cli, &r)) &&
            !(rc = cli_find_snapshot(r, argv[optind], NULL, &snap)) && !(rc = repo_load_index(r))) {
            if (!snap.kind || strcmp(snap.kind, "k8s") != 0) {
                char hex[65];
                hex_encode(snap.id, 32, hex);
                rc = err_set(COFFER_EINVAL,
                             "snapshot %.8s is of kind %s, not k8s; use `coffer "
                             "restore` for it",
                             hex, snap.kind ? snap.kind : "files");
            } else {
                rc = k8s_rset_load_snapshot(r, snap.tree, &set);
            }
        }
    }
    if (rc)
        goto out;
    if ((rc = open_client(kubeconfig, context, &c)))
        goto out;
    rc = k8s_restore(c, &set, &ro, &st);
    if (cli->json) {
        cli_json_line(json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "message_type",
                                "summary", "dry_run", ro.dry_run, "created", (json_int_t)st.created,
                                "updated", (json_int_t)st.updated, "exists", (json_int_t)st.exists,
                                "skipped", (json_int_t)st.skipped, "failed", (json_int_t)st.failed,
                                "not_applied", (json_int_t)st.not_applied, "planned",
                                (json_int_t)st.planned, "filtered", (json_int_t)st.filtered));
    } else if (!cli->quiet) {
        if (ro.dry_run)
            printf("dry run: %zu objects planned, nothing changed; %zu skipped by rules, %zu "
                   "filtered out\n",
                   st.planned, st.skipped, st.filtered);
        else
            printf("%zu created, %zu updated, %zu existed, %zu skipped, %zu failed, %zu not "
                   "applied; %zu filtered out\n",
                   st.created, st.updated, st.exists, st.skipped, st.failed, st.not_applied,
                   st.filtered);
    }
    if (!rc && st.failed)
        rc = err_set(COFFER_EPARTIAL, "%zu object%s could not be restored (see the report)",
                     st.failed, st.failed == 1 ? "" : "s");
out:
    k8s_client_free(c);
    k8s_rset_release(&set);
    snapshot_release(&snap);
    repo_close(r);
    return cli_fail(cli, rc);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static void k8s_help(void)
{
    printf("usage: coffer k8s export [options]      Kubernetes objects to files, an archive or a "
           "snapshot\n"
           "       coffer k8s restore SNAP [options] objects from a snapshot (or --from DIR) "
           "into a cluster\n"
           "       coffer k8s manifests --config F   CronJobs, ConfigMap and RBAC for the "
           "configured jobs\n"
           "`coffer k8s SUBCOMMAND --help` shows its options.\n");
}

int cmd_k8s(cli_t *cli, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        k8s_help();
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (!strcmp(argv[1], "export"))
        return cmd_k8s_export(cli, argc - 1, argv + 1);
    if (!strcmp(argv[1], "restore"))
        return cmd_k8s_restore(cli, argc - 1, argv + 1);
    if (!strcmp(argv[1], "manifests"))
        return cmd_k8s_manifests(cli, argc - 1, argv + 1);
    return cli_usage("k8s", "unknown subcommand \"%s\" (export, restore, manifests)", argv[1]);
}
