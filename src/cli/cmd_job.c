/*
 * cmd_job.c -- `coffer job run|list|restore`: configured jobs from the command line.
 *
 *   job run NAME      one job end to end (sched/job.h), then notifications and the metrics
 *                     textfile/push (sched/report.h); exit code = the job's worst result
 *   job list          jobs with their schedule and next run time (--json: one document)
 *   job restore NAME [SNAP]
 *                     the job's latest good snapshot (or SNAP) from its first repository (or
 *                     --repository R): files and command jobs into --target DIR; service jobs
 *                     through `coffer restore SNAP --TYPE --OPTION VALUE...`; k8s through
 *                     `coffer k8s restore SNAP`. Arguments after `--` are passed on.
 *
 * Layer: cli. The configuration comes from --config FILE or $COFFER_CONFIG.
 */
#include "cli/cmds.h"
#include "common/cron.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "sched/config.h"
#include "sched/job.h"
#include "sched/report.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void help(void)
{
    printf("usage: coffer job run NAME [--config FILE] [--ignore-run-on]\n"
           "       coffer job copy NAME [--config FILE]   (one copy task, once)\n"
           "       coffer job list [--config FILE] [--json]\n"
           "       coffer job restore NAME [SNAP] [--config FILE] [--repository R]\n"
           "                          [--target DIR] [-- EXTRA-RESTORE-ARGS...]\n"
           "  --config FILE      the job configuration (default: $COFFER_CONFIG)\n"
           "  --ignore-run-on    run even when run_on names another host\n"
           "  --repository R     restore from repository R (default: the job's first)\n"
           "  --target DIR       where files and command jobs restore to\n"
           "exit (job run): the worst of the job's steps: 0 ok, 3 partial, 1 failed,\n"
           "      130 interrupted; notification failures never change it\n");
}

static int load(const char *path, cfg_t **out)
{
    if (!path || !*path)
        return cli_usage("job", "give the configuration with --config FILE or COFFER_CONFIG");
    int rc = cfg_load(path, out);
    if (rc)
        return cli_fail(NULL, rc == COFFER_ENOENT ? COFFER_EINVAL : rc);
    return 0;
}

static int unknown_job(cli_t *cli, const cfg_t *c, const char *name, const char *path)
{
    buf_t b;
    buf_init(&b);
    for (size_t i = 0; i < c->n_jobs; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", c->jobs[i].name);
    int rc = err_set(COFFER_EINVAL, "job \"%s\" is not defined in %s (%s%s)", name, path,
                     c->n_jobs ? "jobs: " : "it defines no jobs", b.data ? (char *)b.data : "");
    buf_release(&b);
    return cli_fail(cli, rc);
}

static void print_result(cli_t *cli, const job_result_t *r)
{
    if (cli->json) {
        json_t *o = json_object();
        json_object_set_new(o, "message_type", json_string("job_result"));
        json_object_set_new(o, "job", json_string(r->job));
        json_object_set_new(o, "status", json_string(r->status));
        json_object_set_new(o, "exit_code", json_integer(r->exit_code));
        json_object_set_new(o, "duration_seconds", json_real(r->duration_s));
        json_object_set_new(o, "bytes_added", json_integer((json_int_t)r->bytes_added));
        json_object_set_new(o, "error", r->error ? json_string(r->error) : json_null());
        json_t *arr = json_array();
        for (size_t i = 0; i < r->n_targets; i++) {
            const job_target_result_t *t = &r->targets[i];
            json_t *x = json_object();
            json_object_set_new(x, "repository", json_string(t->repo));
            json_object_set_new(x, "snapshot", json_string(t->snapshot));
            json_object_set_new(x, "status", json_string(t->status));
            json_object_set_new(x, "exit_code", json_integer(t->exit_code));
            json_object_set_new(x, "bytes_added", json_integer((json_int_t)t->bytes_added));
            json_object_set_new(x, "files_new", json_integer((json_int_t)t->files_new));
            json_object_set_new(x, "files_changed", json_integer((json_int_t)t->files_changed));
            json_object_set_new(x, "files_unchanged", json_integer((json_int_t)t->files_unchanged));
            json_object_set_new(x, "bytes_read", json_integer((json_int_t)t->bytes_read));
            json_object_set_new(x, "error", t->error ? json_string(t->error) : json_null());
            json_array_append_new(arr, x);
        }
        json_object_set_new(o, "repositories", arr);
        cli_json_line(o);
        return;
    }
    if (cli->quiet)
        return;
    for (size_t i = 0; i < r->n_targets; i++) {
        const job_target_result_t *t = &r->targets[i];
        char added[32];
        cli_fmt_bytes(t->bytes_added, added, sizeof added);
        printf("%-16s exit %d  %s%.8s  %s added  %.1f s\n", t->repo, t->exit_code,
               t->snapshot[0] ? "snapshot " : "no snapshot", t->snapshot, added, t->duration_s);
    }
    printf("job %s: %s (exit %d) in %.1f s\n", r->job, r->status, r->exit_code, r->duration_s);
}

static int job_run_cmd(cli_t *cli, const char *path, const char *name, bool ignore_run_on)
{
    cfg_t *c = NULL;
    int rc = load(path, &c);
    if (rc)
        return rc;
    const cfg_job_t *j = cfg_find_job(c, name);
    if (!j) {
        rc = unknown_job(cli, c, name, path);
        cfg_free(c);
        return rc;
    }
    char who[512];
    if (!ignore_run_on && !report_run_on_here(j->run_on, j->n_run_on, who, sizeof who)) {
        if (!cli->quiet)
            printf("job %s runs only on %s%s; this is %s: skipped\n", name, j->run_on[0],
                   j->n_run_on > 1 ? " (and others)" : "", who);
        cfg_free(c);
        return EXIT_OK;
    }
    job_opts_t o = {.stop = &cli_stop,
                    .quiet = cli->quiet,
                    .repo_stats =
                        c->server.repo_stats && (c->server.pushgateway || c->server.textfile_dir)};
    job_result_t r;
    if ((rc = job_run(c, j, &o, &r))) {
        cfg_free(c);
        return cli_fail(cli, rc);
    }
    report_job(c, NULL, &r, false);
    print_result(cli, &r);
    if (r.exit_code && r.error && !cli->json)
        fprintf(stderr, "coffer: job %s: %s\n", r.job, r.error);
    int code = r.exit_code;
    job_result_release(&r);
    cfg_free(c);
    return code;
}

/* `job copy NAME`: one copy task once (what `coffer run` does on its schedule; the CronJobs of
 * `coffer k8s manifests` run it). Exit: the copy's. */
static int job_copy_cmd(cli_t *cli, const char *path, const char *name)
{
    cfg_t *c = NULL;
    int rc = load(path, &c);
    if (rc)
        return rc;
    const cfg_copy_t *k = NULL;
    for (size_t i = 0; i < c->n_copies && !k; i++)
        if (!strcmp(c->copies[i].name, name))
            k = &c->copies[i];
    if (!k) {
        buf_t b;
        buf_init(&b);
        for (size_t i = 0; i < c->n_copies; i++)
            buf_printf(&b, "%s%s", i ? ", " : "", c->copies[i].name);
        rc = err_set(COFFER_EINVAL, "copy task \"%s\" is not defined in %s (%s%s)", name, path,
                     c->n_copies ? "copy tasks: " : "it defines no copy tasks",
                     b.data ? (char *)b.data : "");
        buf_release(&b);
        cfg_free(c);
        return cli_fail(cli, rc);
    }
    job_opts_t o = {.stop = &cli_stop, .quiet = cli->quiet};
    job_result_t r;
    memset(&r, 0, sizeof r);
    job_run_copy(c, k, &o, &r);
    report_job(c, NULL, &r, true);
    print_result(cli, &r);
    if (r.exit_code && r.error && !cli->json)
        fprintf(stderr, "coffer: copy %s: %s\n", r.job ? r.job : name, r.error);
    int code = r.exit_code;
    job_result_release(&r);
    cfg_free(c);
    return code;
}

static int job_list_cmd(cli_t *cli, const char *path)
{
    cfg_t *c = NULL;
    int rc = load(path, &c);
    if (rc)
        return rc;
    int64_t now = time(NULL);
    json_t *arr = cli->json ? json_array() : NULL;
    if (!cli->json)
        printf("%-20s %-9s %-16s %-18s %-25s %s\n", "JOB", "TYPE", "SCHEDULE", "TIMEZONE",
               "NEXT RUN", "REPOSITORIES");
    for (size_t i = 0; i < c->n_jobs; i++) {
        const cfg_job_t *j = &c->jobs[i];
        char next[64] = "-";
        int64_t nt = 0;
        if (j->has_schedule) {
            if (cron_next(&j->cron, j->timezone, now, &nt) == 0)
                time_format_rfc3339(nt * 1000000000, false, next, sizeof next);
            else
                snprintf(next, sizeof next, "never");
        }
        bool here = report_run_on_here(j->run_on, j->n_run_on, NULL, 0);
        buf_t repos;
        buf_init(&repos);
        for (size_t t = 0; t < j->n_targets; t++)
            buf_printf(&repos, "%s%s", t ? "," : "", c->repos[j->targets[t].repo].name);
        const char *rs = repos.data ? (char *)repos.data : "";
        if (arr) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(j->name));
            json_object_set_new(o, "type", json_string(j->type));
            json_object_set_new(o, "schedule",
                                j->schedule ? json_string(j->schedule) : json_null());
            json_object_set_new(o, "timezone", json_string(j->timezone ? j->timezone : ""));
            json_object_set_new(o, "next_run", nt ? json_string(next) : json_null());
            json_object_set_new(o, "repositories", json_string(rs));
            json_object_set_new(o, "runs_here", json_boolean(here));
            json_array_append_new(arr, o);
        } else {
            printf("%-20s %-9s %-16s %-18s %-25s %s%s\n", j->name, j->type,
                   j->schedule ? j->schedule : "-", j->timezone ? j->timezone : "local", next, rs,
                   here ? "" : "  (not on this host: run_on)");
        }
        buf_release(&repos);
    }
    if (arr)
        cli_json_doc(arr);
    cfg_free(c);
    return EXIT_OK;
}

/* The newest good snapshot of job j in repository repo, via `coffer snapshots --json`. */
static int latest_of_job(const cfg_job_t *j, const cfg_repo_t *repo, char *out, size_t n)
{
    proc_env_t *env = NULL;
    size_t n_env = 0;
    int rc = job_repo_env(repo, &env, &n_env);
    if (rc)
        return rc;
    const char *argv[] = {"coffer", "-r", repo->url, "--json", "snapshots", NULL};
    proc_opts_t po = {.path = "/proc/self/exe",
                      .argv = (char *const *)argv,
                      .env = env,
                      .n_env = n_env,
                      .stop = &cli_stop,
                      .passthrough_stderr = true};
    proc_result_t pr;
    proc_result_init(&pr);
    rc = proc_run(&po, &pr);
    free(env);
    if (!rc && pr.exit_code != 0)
        rc = err_set(COFFER_EIO, "cannot list the snapshots of repository %s (exit %d)", repo->name,
                     pr.exit_code);
    json_t *arr =
        rc ? NULL : json_loadb(pr.out.data ? (char *)pr.out.data : "", pr.out.len, 0, NULL);
    const char *best = NULL, *best_time = NULL;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *s = json_array_get(arr, i);
        const char *job = json_string_value(json_object_get(s, "job"));
        const char *st = json_string_value(json_object_get(s, "status"));
        const char *tm = json_string_value(json_object_get(s, "time"));
        const char *id = json_string_value(json_object_get(s, "id"));
        if (!job || strcmp(job, j->name) || !id || !tm || (st && !strcmp(st, "failed")))
            continue;
        if (!best_time || strcmp(tm, best_time) > 0) {
            best = id;
            best_time = tm;
        }
    }
    if (!rc && !best)
        rc = err_set(COFFER_ENOENT,
                     "repository %s has no good snapshot of job %s (run `coffer job run %s` "
                     "first)",
                     repo->name, j->name, j->name);
    if (!rc)
        snprintf(out, n, "%s", best);
    json_decref(arr);
    proc_result_release(&pr);
    return rc;
}

static int job_restore_cmd(cli_t *cli, const char *path, const char *name, const char *snap,
                           const char *repo_name, const char *target, char **extra, int n_extra)
{
    cfg_t *c = NULL;
    int rc = load(path, &c);
    if (rc)
        return rc;
    const cfg_job_t *j = cfg_find_job(c, name);
    const cfg_repo_t *repo = NULL;
    char id[80];
    char **argv = NULL;
    proc_env_t *env = NULL;
    size_t n_env = 0;
    proc_result_t pr;
    proc_result_init(&pr);
    if (!j) {
        rc = unknown_job(cli, c, name, path);
        cfg_free(c);
        return rc;
    }
    if (repo_name) {
        repo = cfg_find_repo(c, repo_name);
        bool listed = false;
        for (size_t t = 0; repo && t < j->n_targets; t++)
            listed |= &c->repos[j->targets[t].repo] == repo;
        if (!listed) {
            rc = err_set(COFFER_EINVAL, "job %s does not back up into a repository named %s", name,
                         repo_name);
            goto out;
        }
    } else {
        repo = &c->repos[j->targets[0].repo];
    }
    bool to_dir = !strcmp(j->type, "files") || !strcmp(j->type, "command");
    if (to_dir && !target) {
        rc = err_set(COFFER_EINVAL, "job %s is of type %s: give --target DIR to restore into", name,
                     j->type);
        goto out;
    }
    if (snap)
        snprintf(id, sizeof id, "%s", snap);
    else if ((rc = latest_of_job(j, repo, id, sizeof id)))
        goto out;
    argv = calloc((size_t)n_extra + 2 * j->n_options + 16, sizeof *argv);
    if (!argv) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    size_t k = 0;
    char *flags[64] = {0};
    size_t nf = 0;
    argv[k++] = "coffer";
    argv[k++] = "-r";
    argv[k++] = repo->url;
    if (!strcmp(j->type, "k8s")) {
        argv[k++] = "k8s";
        argv[k++] = "restore";
        argv[k++] = id;
    } else {
        argv[k++] = "restore";
        argv[k++] = id;
        if (to_dir) {
            argv[k++] = "--target";
            argv[k++] = (char *)target;
        } else {
            char *tf = NULL;
            if (asprintf(&tf, "--%s", j->type) < 0) {
                rc = err_set(COFFER_ENOMEM, "out of memory");
                goto out;
            }
            argv[k++] = flags[nf++] = tf;
            for (size_t i = 0; i < j->n_options && nf < 63; i++) {
                char *f = NULL;
                if (asprintf(&f, "--%s", j->options[i].key) < 0)
                    break;
                for (char *p = f + 2; *p; p++)
                    if (*p == '_')
                        *p = '-';
                argv[k++] = flags[nf++] = f;
                if (j->options[i].value)
                    argv[k++] = j->options[i].value;
            }
        }
    }
    for (int i = 0; i < n_extra; i++)
        argv[k++] = extra[i];
    argv[k] = NULL;
    if ((rc = job_repo_env(repo, &env, &n_env)))
        goto out;
    /* the job's env carries service secrets the restore needs too */
    proc_env_t *all = realloc(env, (n_env + j->n_env) * sizeof *all);
    if (!all) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    env = all;
    for (size_t i = 0; i < j->n_env; i++)
        env[n_env++] = (proc_env_t){j->env[i].key, j->env[i].value};
    if (!cli->quiet)
        fprintf(stderr, "restoring snapshot %.8s of job %s from %s\n", id, name, repo->name);
    proc_opts_t po = {.path = "/proc/self/exe",
                      .argv = argv,
                      .env = env,
                      .n_env = n_env,
                      .stop = &cli_stop,
                      .passthrough_stderr = true};
    if (!(rc = proc_run(&po, &pr))) {
        if (pr.out.len)
            fwrite(pr.out.data, 1, pr.out.len, stdout);
        int code = pr.exit_code;
        for (size_t i = 0; i < nf; i++)
            free(flags[i]);
        free(argv);
        free(env);
        proc_result_release(&pr);
        cfg_free(c);
        return code;
    }
    for (size_t i = 0; i < nf; i++)
        free(flags[i]);
out:
    free(argv);
    free(env);
    proc_result_release(&pr);
    cfg_free(c);
    return cli_fail(cli, rc);
}

int cmd_job(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"ignore-run-on", no_argument, 0, 'I'},
                                         {"repository", required_argument, 0, 'R'},
                                         {"target", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *path = getenv("COFFER_CONFIG"), *repo = NULL, *target = NULL;
    bool ignore_run_on = false;
    /* everything after "--" goes to the restore command untouched */
    char **extra = NULL;
    int n_extra = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            extra = argv + i + 1;
            n_extra = argc - i - 1;
            argc = i;
            break;
        }
    }
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'I':
            ignore_run_on = true;
            break;
        case 'R':
            repo = optarg;
            break;
        case 't':
            target = optarg;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("job", "unknown option");
        }
    }
    char **pos = argv + optind;
    int npos = argc - optind;
    if (npos > 3)
        return cli_usage("job", "too many arguments");
    if (npos < 1)
        return cli_usage("job", "give a subcommand: run, list or restore");
    if (!strcmp(pos[0], "run")) {
        if (npos != 2)
            return cli_usage("job", "job run takes one job name");
        return job_run_cmd(cli, path, pos[1], ignore_run_on);
    }
    if (!strcmp(pos[0], "copy")) {
        if (npos != 2)
            return cli_usage("job", "job copy takes one copy task name");
        return job_copy_cmd(cli, path, pos[1]);
    }
    if (!strcmp(pos[0], "list")) {
        if (npos != 1)
            return cli_usage("job", "job list takes no arguments");
        return job_list_cmd(cli, path);
    }
    if (!strcmp(pos[0], "restore")) {
        if (npos < 2)
            return cli_usage("job", "job restore takes a job name and optionally a snapshot");
        return job_restore_cmd(cli, path, pos[1], npos == 3 ? pos[2] : NULL, repo, target, extra,
                               n_extra);
    }
    return cli_usage("job", "unknown subcommand \"%s\": use run, copy, list or restore", pos[0]);
}
