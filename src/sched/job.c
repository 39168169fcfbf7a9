/*
 * job.c -- the job runner (contract in job.h).
 *
 * Layer: sched. Order: before hooks (a failing hook with on_error: fail stops the job before
 * any backup), then for each target repository: backup, and retention when the backup left a
 * usable snapshot (exit 0 or 3); then after hooks, which always run and see the outcome in
 * COFFER_JOB_STATUS. A stop request interrupts the running child with SIGINT (a backup
 * checkpoints and exits 130) and skips the remaining steps, but still runs the after hooks.
 */
#include "sched/job.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_MAX_ARGS 8192

typedef struct strvec {
    char **v;
    size_t n, cap;
    char **owned; /* strings allocated here */
    size_t n_owned, cap_owned;
} strvec_t;

static int sv_push(strvec_t *s, const char *a)
{
    if (s->n + 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 32;
        if (nc > JOB_MAX_ARGS)
            return err_set(COFFER_ELIMIT, "a job's command line has more than %d arguments",
                           JOB_MAX_ARGS);
        char **nv = realloc(s->v, nc * sizeof *nv);
        if (!nv)
            return err_set(COFFER_ENOMEM, "out of memory");
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = (char *)a;
    s->v[s->n] = NULL;
    return 0;
}

/* Push prefix + a (a copy owned by s). */
static int sv_pushf(strvec_t *s, const char *prefix, const char *a)
{
    char *t = NULL;
    if (asprintf(&t, "%s%s", prefix, a) < 0)
        return err_set(COFFER_ENOMEM, "out of memory");
    if (s->n_owned == s->cap_owned) {
        size_t nc = s->cap_owned ? s->cap_owned * 2 : 16;
        char **no = realloc(s->owned, nc * sizeof *no);
        if (!no) {
            free(t);
            return err_set(COFFER_ENOMEM, "out of memory");
        }
        s->owned = no;
        s->cap_owned = nc;
    }
    s->owned[s->n_owned++] = t;
    return sv_push(s, t);
}

static void sv_free(strvec_t *s)
{
    for (size_t i = 0; i < s->n_owned; i++)
        free(s->owned[i]);
    free(s->owned);
    free(s->v);
    memset(s, 0, sizeof *s);
}

int job_worse(int a, int b)
{
    int ra = a == 0 ? 0 : a == 3 ? 1 : 2, rb = b == 0 ? 0 : b == 3 ? 1 : 2;
    return rb > ra ? b : a;
}

int job_repo_env(const cfg_repo_t *r, proc_env_t **out_env, size_t *out_n)
{
    size_t n = 3 + r->n_env;
    proc_env_t *e = calloc(n, sizeof *e);
    if (!e)
        return err_set(COFFER_ENOMEM, "out of memory");
    e[0] = (proc_env_t){"COFFER_PASSWORD_FILE", NULL};
    e[1] = (proc_env_t){"COFFER_REPOSITORY", NULL};
    e[2] = (proc_env_t){"COFFER_PASSWORD", r->password};
    for (size_t i = 0; i < r->n_env; i++)
        e[3 + i] = (proc_env_t){r->env[i].key, r->env[i].value};
    *out_env = e;
    *out_n = n;
    return 0;
}

/* The error message of a coffer child: its JSON error line, else its last stderr line. */
static char *child_error(const proc_result_t *pr, const char *what)
{
    const char *s = pr->err.data ? (const char *)pr->err.data : "";
    char *msg = NULL;
    const char *line = s;
    const char *last = NULL;
    size_t last_len = 0;
    while (*line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len) {
            json_t *j = json_loadb(line, len, 0, NULL);
            const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;
            const char *t = j ? json_string_value(json_object_get(j, "message_type")) : NULL;
            if (m && t && !strcmp(t, "error")) {
                free(msg);
                msg = strdup(m);
            }
            json_decref(j);
            last = line;
            last_len = len;
        }
        line = nl ? nl + 1 : line + len;
    }
    if (!msg && last && asprintf(&msg, "%.*s", (int)(last_len > 500 ? 500 : last_len), last) < 0)
        msg = NULL;
    if (!msg) {
        if (pr->timed_out)
            return strdup("timed out");
        char *t = NULL;
        if (asprintf(&t, "%s exited with status %d", what, pr->exit_code) < 0)
            return NULL;
        return t;
    }
    return msg;
}

/* Record the error a + sep + b for a target (*errp, when given) and as the job's first. */
static void set_error(job_result_t *r, char **errp, const char *a, const char *sep, const char *b)
{
    char *t = NULL;
    if (asprintf(&t, "%s%s%s", a, sep, b) < 0)
        return;
    if (errp && !*errp)
        *errp = strdup(t);
    if (!r->error)
        r->error = t;
    else
        free(t);
}

/* Run hooks in order; returns the exit code the job gets from them (0, or 1 when a hook with
 * on_error: fail failed; then the remaining hooks are skipped). */
static int run_hooks(const cfg_job_t *j, const cfg_hook_t *h, size_t n, const char *phase,
                     const job_opts_t *o, job_result_t *r)
{
    char code[16];
    snprintf(code, sizeof code, "%d", r->exit_code);
    proc_env_t env[] = {{"COFFER_JOB", j->name},
                        {"COFFER_JOB_STATUS", r->exit_code == 0   ? "success"
                                              : r->exit_code == 3 ? "partial"
                                                                  : "failed"},
                        {"COFFER_JOB_EXIT_CODE", code},
                        {"COFFER_PASSWORD", NULL},
                        {"COFFER_PASSWORD_FILE", NULL}};
    for (size_t i = 0; i < n; i++) {
        char *argv[] = {"sh", "-c", h[i].command, NULL};
        proc_opts_t po = {.path = "/bin/sh",
                          .argv = argv,
                          .env = env,
                          .n_env = sizeof env / sizeof env[0],
                          .timeout_s = h[i].timeout_s,
                          .stop = o->stop,
                          .stop_signal = SIGTERM,
                          .passthrough_stderr = !o->quiet};
        proc_result_t pr;
        proc_result_init(&pr);
        int rc = proc_run(&po, &pr);
        bool ok = !rc && pr.exit_code == 0 && !pr.timed_out;
        if (!ok) {
            char why[128];
            if (rc)
                snprintf(why, sizeof why, "could not start: %s", err_msg());
            else if (pr.timed_out)
                snprintf(why, sizeof why, "timed out after %d s", h[i].timeout_s);
            else
                snprintf(why, sizeof why, "exited with status %d", pr.exit_code);
            if (h[i].on_error == CFG_ON_ERROR_CONTINUE) {
                log_warn("job %s: %s hook \"%s\" %s (on_error: continue)", j->name, phase,
                         h[i].command, why);
            } else {
                char what[64];
                snprintf(what, sizeof what, "%s hook", phase);
                set_error(r, NULL, what, " failed: ", why);
                log_error("job %s: %s hook \"%s\" %s", j->name, phase, h[i].command, why);
                proc_result_release(&pr);
                return 1;
            }
        }
        proc_result_release(&pr);
    }
    return 0;
}

static int add_common(strvec_t *a, const cfg_job_t *j)
{
    int rc = sv_push(a, "--job");
    if (!rc)
        rc = sv_push(a, j->name);
    for (size_t i = 0; i < j->n_tags && !rc; i++)
        if (!(rc = sv_push(a, "--tag")))
            rc = sv_push(a, j->tags[i]);
    if (!rc && j->host && !(rc = sv_push(a, "--host")))
        rc = sv_push(a, j->host);
    if (!rc && j->limits.threads) {
        char t[16];
        snprintf(t, sizeof t, "%d", j->limits.threads);
        if (!(rc = sv_push(a, "--threads")))
            rc = sv_pushf(a, "", t);
    }
    return rc;
}

static int add_options(strvec_t *a, const cfg_job_t *j)
{
    int rc = 0;
    for (size_t i = 0; i < j->n_options && !rc; i++) {
        char *flag = NULL;
        if (asprintf(&flag, "--%s", j->options[i].key) < 0)
            return err_set(COFFER_ENOMEM, "out of memory");
        for (char *c = flag + 2; *c; c++)
            if (*c == '_')
                *c = '-';
        rc = sv_pushf(a, "", flag);
        free(flag);
        if (!rc && j->options[i].value)
            rc = sv_push(a, j->options[i].value);
    }
    return rc;
}

/* "coffer -r URL [-o KEY=VALUE]... --json": the repository's storage options and the job's
 * bandwidth limits (lim may be NULL) as global options. */
static int repo_prefix(strvec_t *a, const cfg_repo_t *repo, const cfg_limits_t *lim)
{
    int rc = sv_push(a, "coffer");
    if (!rc && !(rc = sv_push(a, "-r")))
        rc = sv_push(a, repo->url);
    for (size_t i = 0; i < repo->n_options && !rc; i++) {
        char *kv = NULL;
        if (asprintf(&kv, "%s=%s", repo->options[i].key, repo->options[i].value) < 0)
            return err_set(COFFER_ENOMEM, "out of memory");
        if (!(rc = sv_push(a, "-o")))
            rc = sv_pushf(a, "", kv);
        free(kv);
    }
    const int lims[2] = {lim ? lim->upload_kib : 0, lim ? lim->download_kib : 0};
    const char *names[2] = {"limit-upload=", "limit-download="};
    for (int i = 0; i < 2 && !rc; i++) {
        if (!lims[i])
            continue;
        char v[32];
        snprintf(v, sizeof v, "%d", lims[i]);
        if (!(rc = sv_push(a, "-o")))
            rc = sv_pushf(a, names[i], v);
    }
    if (!rc)
        rc = sv_push(a, "--json");
    return rc;
}

/* argv for the backup of job j into repository repo. */
static int backup_args(const cfg_job_t *j, const cfg_repo_t *repo, strvec_t *a)
{
    int rc = repo_prefix(a, repo, &j->limits);
    if (rc)
        return rc;
    if (!strcmp(j->type, "k8s")) {
        if (!(rc = sv_push(a, "k8s")) && !(rc = sv_push(a, "export")) && !(rc = add_options(a, j)))
            rc = add_common(a, j);
        return rc;
    }
    if ((rc = sv_push(a, "backup")) || (rc = add_common(a, j)))
        return rc;
    if (!strcmp(j->type, "files")) {
        for (size_t i = 0; i < j->n_excludes && !rc; i++)
            if (!(rc = sv_push(a, "--exclude")))
                rc = sv_push(a, j->excludes[i]);
        if (!rc)
            rc = sv_push(a, "--");
        for (size_t i = 0; i < j->n_paths && !rc; i++)
            rc = sv_push(a, j->paths[i]);
    } else if (!strcmp(j->type, "command")) {
        if (!(rc = sv_push(a, "--stdin-from-command")) && !(rc = sv_push(a, "--name")) &&
            !(rc = sv_push(a, j->filename)))
            rc = sv_push(a, "--");
        for (size_t i = 0; i < j->n_command && !rc; i++)
            rc = sv_push(a, j->command[i]);
    } else { /* postgres, mysql, redis, ldap */
        if (!(rc = sv_pushf(a, "--", j->type)))
            rc = add_options(a, j);
    }
    return rc;
}

static int forget_args(const cfg_job_t *j, const cfg_retention_t *ret, const cfg_repo_t *repo,
                       strvec_t *a)
{
    const char *post[] = {"forget", "--job", j->name};
    int rc = repo_prefix(a, repo, &j->limits);
    for (size_t i = 0; i < 3 && !rc; i++)
        rc = sv_push(a, post[i]);
    const char *flags[] = {"--keep-last",   "--keep-hourly",  "--keep-daily",
                           "--keep-weekly", "--keep-monthly", "--keep-yearly"};
    const int vals[] = {ret->keep_last,   ret->keep_hourly,  ret->keep_daily,
                        ret->keep_weekly, ret->keep_monthly, ret->keep_yearly};
    for (int i = 0; i < 6 && !rc; i++) {
        if (!vals[i])
            continue;
        char v[16];
        snprintf(v, sizeof v, "%d", vals[i]);
        if (!(rc = sv_push(a, flags[i])))
            rc = sv_pushf(a, "", v);
    }
    if (!rc && ret->keep_within && !(rc = sv_push(a, "--keep-within")))
        rc = sv_push(a, ret->keep_within);
    for (size_t i = 0; i < ret->n_keep_tags && !rc; i++)
        if (!(rc = sv_push(a, "--keep-tag")))
            rc = sv_push(a, ret->keep_tags[i]);
    if (!rc && ret->prune)
        rc = sv_push(a, "--prune");
    return rc;
}

/* Environment for a child of job j on repository r: the repository's, then the job's. */
static int child_env(const cfg_job_t *j, const cfg_repo_t *r, bool with_job, proc_env_t **out,
                     size_t *out_n)
{
    proc_env_t *re = NULL;
    size_t rn = 0;
    int rc = job_repo_env(r, &re, &rn);
    if (rc)
        return rc;
    size_t extra = with_job ? j->n_env : 0;
    proc_env_t *e = realloc(re, (rn + extra) * sizeof *e);
    if (!e) {
        free(re);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < extra; i++)
        e[rn + i] = (proc_env_t){j->env[i].key, j->env[i].value};
    *out = e;
    *out_n = rn + extra;
    return 0;
}

static void parse_summary(const proc_result_t *pr, job_target_result_t *t)
{
    const char *s = pr->out.data ? (const char *)pr->out.data : "";
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        json_t *j = len ? json_loadb(s, len, 0, NULL) : NULL;
        const char *mt = j ? json_string_value(json_object_get(j, "message_type")) : NULL;
        if (mt && !strcmp(mt, "copy")) { /* coffer copy: the snapshot made in the target */
            const char *tid = json_string_value(json_object_get(j, "target"));
            if (tid)
                snprintf(t->snapshot, sizeof t->snapshot, "%s", tid);
        }
        if (mt && !strcmp(mt, "summary")) {
            const char *id = json_string_value(json_object_get(j, "id"));
            const char *st = json_string_value(json_object_get(j, "status"));
            json_t *sum = json_object_get(j, "summary");
            if (id)
                snprintf(t->snapshot, sizeof t->snapshot, "%s", id);
            if (st)
                snprintf(t->status, sizeof t->status, "%s", st);
            json_int_t ba = json_integer_value(json_object_get(sum, "bytes_added"));
            t->bytes_added = ba > 0 ? (uint64_t)ba : 0;
            static const char *const keys[] = {"files_new", "files_changed", "files_unchanged",
                                               "bytes_read"};
            uint64_t *dst[] = {&t->files_new, &t->files_changed, &t->files_unchanged,
                               &t->bytes_read};
            for (size_t k = 0; k < 4; k++) {
                json_int_t v = json_integer_value(json_object_get(sum, keys[k]));
                *dst[k] = v > 0 ? (uint64_t)v : 0;
            }
        }
        json_decref(j);
        s = nl ? nl + 1 : s + len;
    }
}

/* argv and environment to copy snapshot `snap` from repository `from` into `to`. */
static int copy_args(const cfg_job_t *j, const cfg_repo_t *from, const cfg_repo_t *to,
                     const char *snap, strvec_t *a, proc_env_t **out_env, size_t *out_n)
{
    int rc = repo_prefix(a, from, &j->limits);
    for (size_t i = 0; i < to->n_options && !rc; i++) {
        char *kv = NULL;
        if (asprintf(&kv, "%s=%s", to->options[i].key, to->options[i].value) < 0)
            return err_set(COFFER_ENOMEM, "out of memory");
        if (!(rc = sv_push(a, "--to-option")))
            rc = sv_pushf(a, "", kv);
        free(kv);
    }
    const char *post[] = {"copy", "--to", to->url, snap};
    for (size_t i = 0; i < 4 && !rc; i++)
        rc = sv_push(a, post[i]);
    proc_env_t *e = NULL;
    size_t n = 0;
    if (!rc)
        rc = job_repo_env(from, &e, &n);
    proc_env_t *all = rc ? NULL : realloc(e, (n + 2 + to->n_env) * sizeof *all);
    if (!rc && !all) {
        free(e);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    if (rc)
        return rc;
    all[n++] = (proc_env_t){"COFFER_TO_PASSWORD_FILE", NULL};
    all[n++] = (proc_env_t){"COFFER_TO_PASSWORD", to->password};
    for (size_t i = 0; i < to->n_env; i++)
        all[n++] = (proc_env_t){to->env[i].key, to->env[i].value};
    *out_env = all;
    *out_n = n;
    return 0;
}

/* Back up job j into target tg; or, with copy_from and snap, copy that snapshot there. */
static int run_target(const cfg_t *c, const cfg_job_t *j, const cfg_target_t *tg,
                      const job_opts_t *o, const char *exe, const cfg_repo_t *copy_from,
                      const char *snap, job_result_t *r, job_target_result_t *t)
{
    const cfg_repo_t *repo = &c->repos[tg->repo];
    t->repo = repo->name;
    t->forget_exit = -1;
    int64_t t0 = time_monotonic_ns();
    strvec_t a = {0};
    proc_env_t *env = NULL;
    size_t n_env = 0;
    proc_result_t pr;
    proc_result_init(&pr);
    int rc = copy_from ? copy_args(j, copy_from, repo, snap, &a, &env, &n_env)
                       : backup_args(j, repo, &a);
    if (!rc && !copy_from)
        rc = child_env(j, repo, true, &env, &n_env);
    if (rc)
        goto out;
    proc_opts_t po = {.path = exe,
                      .argv = a.v,
                      .env = env,
                      .n_env = n_env,
                      .has_nice = j->limits.has_nice,
                      .nice = j->limits.nice,
                      .ionice_class = j->limits.ionice_class,
                      .ionice_level = j->limits.ionice_level,
                      .stop = o->stop,
                      .passthrough_stderr = !o->quiet};
    if (copy_from)
        log_info("job %s: copying snapshot %.8s from %s into %s", j->name, snap, copy_from->name,
                 repo->name);
    else
        log_info("job %s: backing up into %s", j->name, repo->name);
    if ((rc = proc_run(&po, &pr)))
        goto out;
    t->exit_code = pr.exit_code;
    parse_summary(&pr, t);
    if (copy_from && pr.exit_code == 0)
        snprintf(t->status, sizeof t->status, "%s", "copied");
    if (pr.exit_code != 0) {
        char *m = child_error(&pr, copy_from ? "copy" : "backup");
        set_error(r, &t->error, repo->name, ": ", m ? m : "backup failed");
        free(m);
    }
    const cfg_retention_t *ret = cfg_target_retention(j, tg);
    if ((pr.exit_code == 0 || pr.exit_code == 3) && ret->set && !(o->stop && *o->stop)) {
        sv_free(&a);
        free(env);
        env = NULL;
        if ((rc = forget_args(j, ret, repo, &a)) || (rc = child_env(j, repo, false, &env, &n_env)))
            goto out;
        po.argv = a.v;
        po.env = env;
        po.n_env = n_env;
        proc_result_release(&pr);
        proc_result_init(&pr);
        log_info("job %s: applying retention in %s", j->name, repo->name);
        if ((rc = proc_run(&po, &pr)))
            goto out;
        t->forget_exit = pr.exit_code;
        if (pr.exit_code != 0) {
            t->exit_code = job_worse(t->exit_code, pr.exit_code == 3 ? 1 : pr.exit_code);
            char *m = child_error(&pr, "forget");
            set_error(r, &t->error, repo->name, ": retention: ", m ? m : "forget failed");
            free(m);
        }
    }
    if (o->repo_stats && !(o->stop && *o->stop)) {
        sv_free(&a);
        if ((rc = repo_prefix(&a, repo, NULL)) || (rc = sv_push(&a, "stats")))
            goto out;
        po.argv = a.v;
        proc_result_release(&pr);
        proc_result_init(&pr);
        if (!proc_run(&po, &pr) && pr.exit_code == 0) {
            json_t *js = json_loadb(pr.out.data ? (char *)pr.out.data : "", pr.out.len,
                                    JSON_DISABLE_EOF_CHECK, NULL);
            json_t *sb = json_object_get(js, "stored_bytes"),
                   *sn = json_object_get(js, "snapshots");
            if (json_is_integer(sb) && json_is_integer(sn)) {
                t->has_stats = true;
                t->repo_stored_bytes = (uint64_t)json_integer_value(sb);
                t->repo_snapshots = (uint64_t)json_integer_value(sn);
            }
            json_decref(js);
        } else {
            log_warn("job %s: could not measure repository %s for the metrics", j->name,
                     repo->name);
        }
    }
out:
    if (rc) {
        t->exit_code = 1;
        set_error(r, &t->error, repo->name, ": ", err_msg());
        rc = 0;
    }
    t->duration_s = (double)(time_monotonic_ns() - t0) / 1e9;
    proc_result_release(&pr);
    sv_free(&a);
    free(env);
    return rc;
}

int job_run(const cfg_t *c, const cfg_job_t *j, const job_opts_t *o, job_result_t *out)
{
    job_result_t r = {0};
    r.start_ns = time_now_ns();
    int64_t m0 = time_monotonic_ns();
    const char *exe = o->exe ? o->exe : "/proc/self/exe";
    r.job = strdup(j->name);
    r.targets = calloc(j->n_targets ? j->n_targets : 1, sizeof *r.targets);
    if (!r.job || !r.targets) {
        free(r.job);
        free(r.targets);
        return err_set(COFFER_ENOMEM, "out of memory");
    }
    r.exit_code = run_hooks(j, j->before, j->n_before, "before", o, &r);
    if (r.exit_code == 0) {
        for (size_t i = 0; i < j->n_targets; i++) {
            if (o->stop && *o->stop) {
                r.exit_code = job_worse(r.exit_code, 130);
                set_error(&r, NULL, "stopped before all repositories were done", "", "");
                break;
            }
            job_target_result_t *t = &r.targets[r.n_targets++];
            /* fan_out: copy -- the first repository's new snapshot goes to the others */
            const job_target_result_t *first = r.n_targets > 1 ? &r.targets[0] : NULL;
            bool copy = j->fan_out_copy && first && first->snapshot[0] &&
                        (first->exit_code == 0 || first->exit_code == 3);
            if (j->fan_out_copy && first && !copy) {
                t->repo = c->repos[j->targets[i].repo].name;
                t->exit_code = 1;
                set_error(&r, &t->error, t->repo, ": ",
                          "not copied: the backup into the first repository failed");
                r.exit_code = job_worse(r.exit_code, 1);
                continue;
            }
            run_target(c, j, &j->targets[i], o, exe, copy ? &c->repos[j->targets[0].repo] : NULL,
                       copy ? first->snapshot : NULL, &r, t);
            r.exit_code = job_worse(r.exit_code, t->exit_code);
            r.bytes_added += t->bytes_added;
        }
    }
    r.exit_code = job_worse(r.exit_code, run_hooks(j, j->after, j->n_after, "after", o, &r));
    r.end_ns = time_now_ns();
    r.duration_s = (double)(time_monotonic_ns() - m0) / 1e9;
    r.level = r.exit_code == 0   ? CFG_LEVEL_INFO
              : r.exit_code == 3 ? CFG_LEVEL_WARNING
                                 : CFG_LEVEL_ERROR;
    r.status = r.exit_code == 0     ? "success"
               : r.exit_code == 3   ? "partial"
               : r.exit_code == 130 ? "interrupted"
                                    : "failed";
    *out = r;
    return 0;
}

void job_result_release(job_result_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_targets; i++)
        free(r->targets[i].error);
    free(r->targets);
    free(r->job);
    free(r->error);
    memset(r, 0, sizeof *r);
}

/* A copy task: `coffer -r FROM --json copy --to TO` with both passwords in the env. */
void job_run_copy(const cfg_t *c, const cfg_copy_t *k, const job_opts_t *o, job_result_t *r)
{
    const cfg_repo_t *from = &c->repos[k->from], *to = &c->repos[k->to];
    r->start_ns = time_now_ns();
    int64_t m0 = time_monotonic_ns();
    r->job = strdup(k->name);
    proc_env_t *env = NULL;
    size_t n = 0;
    int rc = job_repo_env(from, &env, &n);
    proc_env_t *all = rc ? NULL : realloc(env, (n + to->n_env + 2) * sizeof *all);
    if (!rc && !all)
        rc = err_set(COFFER_ENOMEM, "out of memory");
    if (!rc) {
        env = all;
        env[n++] = (proc_env_t){"COFFER_TO_PASSWORD_FILE", NULL};
        env[n++] = (proc_env_t){"COFFER_TO_PASSWORD", to->password};
        for (size_t i = 0; i < to->n_env; i++)
            env[n++] = (proc_env_t){to->env[i].key, to->env[i].value};
    }
    /* the source's storage options as -o, the target's as --to-option */
    size_t na = 0, cap = 8 + 2 * (from->n_options + to->n_options);
    char **argv = rc ? NULL : calloc(cap, sizeof *argv);
    char **kvs = rc ? NULL : calloc(from->n_options + to->n_options + 1, sizeof *kvs);
    size_t nkv = 0;
    if (!rc && (!argv || !kvs))
        rc = err_set(COFFER_ENOMEM, "out of memory");
    if (!rc) {
        argv[na++] = "coffer";
        argv[na++] = "-r";
        argv[na++] = from->url;
        for (size_t i = 0; i < from->n_options + to->n_options && !rc; i++) {
            const cfg_kv_t *kv =
                i < from->n_options ? &from->options[i] : &to->options[i - from->n_options];
            if (asprintf(&kvs[nkv], "%s=%s", kv->key, kv->value) < 0) {
                rc = err_set(COFFER_ENOMEM, "out of memory");
                break;
            }
            argv[na++] = i < from->n_options ? "-o" : "--to-option";
            argv[na++] = kvs[nkv++];
        }
        argv[na++] = "--json";
        argv[na++] = "copy";
        argv[na++] = "--to";
        argv[na++] = to->url;
    }
    proc_opts_t po = {.path = o->exe ? o->exe : "/proc/self/exe",
                      .argv = (char *const *)argv,
                      .env = env,
                      .n_env = n,
                      .stop = o->stop,
                      .passthrough_stderr = !o->quiet};
    proc_result_t pr;
    proc_result_init(&pr);
    if (!rc)
        rc = proc_run(&po, &pr);
    r->exit_code = rc ? 1 : pr.exit_code;
    if (r->exit_code) {
        const char *e = rc ? err_msg() : pr.err.len ? (const char *)pr.err.data : "copy failed";
        if (asprintf(&r->error, "%.500s", e) < 0)
            r->error = NULL;
    }
    free(env);
    for (size_t i = 0; i < nkv; i++)
        free(kvs[i]);
    free(kvs);
    free(argv);
    proc_result_release(&pr);
    r->end_ns = time_now_ns();
    r->duration_s = (double)(time_monotonic_ns() - m0) / 1e9;
    r->level = r->exit_code == 0 ? CFG_LEVEL_INFO : CFG_LEVEL_ERROR;
    r->status = r->exit_code == 0 ? "success" : r->exit_code == 130 ? "interrupted" : "failed";
}
