/*
 * exec.c -- the in-pod wrapper that runs a job and reports into the resource's status
 * (exec.h).
 *
 * Layer: operator. The status is written with merge patches of only the fields this run owns,
 * so it cannot undo what the operator wrote meanwhile; a failed status write is logged and the
 * job's exit code still decides the pod's fate (and the operator's follow-up).
 */
#include "operator/exec.h"

#include "common/error.h"
#include "common/log.h"
#include "k8s/kubeconfig.h"
#include "operator/kube.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct result {
    int exit_code;
    json_t *doc; /* the child's job_result line, or NULL */
} result_t;

static volatile sig_atomic_t child_pid;

static void forward_signal(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig == SIGTERM ? SIGINT : sig); /* SIGINT: the job checkpoints */
}

static int run(const char *bin, char *const *args, result_t *res)
{
    size_t n = 0;
    while (args[n])
        n++;
    char **argv = calloc(n + 3, sizeof *argv);
    int pfd[2];
    if (!argv || pipe(pfd)) {
        free(argv);
        return err_errno("cannot start the job");
    }
    argv[0] = "coffer";
    argv[1] = "--json";
    for (size_t i = 0; i < n; i++)
        argv[i + 2] = args[i];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    free(argv);
    close(pfd[1]);
    if (rc) {
        close(pfd[0]);
        errno = rc;
        return err_errno("cannot start %s", bin);
    }
    child_pid = pid;
    struct sigaction sa = {.sa_handler = forward_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    FILE *in = fdopen(pfd[0], "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (in && (len = getline(&line, &cap, in)) > 0) {
        fwrite(line, 1, (size_t)len, stdout);
        fflush(stdout);
        json_t *o = json_loads(line, 0, NULL);
        const char *mt = json_string_value(json_object_get(o, "message_type"));
        if (mt && !strcmp(mt, "job_result")) {
            json_decref(res->doc);
            res->doc = o;
        } else {
            json_decref(o);
        }
    }
    free(line);
    if (in)
        fclose(in);
    else
        close(pfd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    child_pid = 0;
    res->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return 0;
}

static json_t *final_status(const op_exec_opts_t *o, const json_t *obj, const result_t *r,
                            const char *error)
{
    bool backup = !strcmp(o->kind, "backups"), schedule = !strcmp(o->kind, "backupschedules");
    bool ok = r->exit_code == 0, partial = r->exit_code == 3;
    char now[40], msg[1024];
    op_now(now, sizeof now);
    const char *snap = NULL, *repo = NULL, *err = error;
    json_t *targets = json_object_get(r->doc, "repositories");
    size_t i, failed = 0;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        const char *s = json_string_value(json_object_get(t, "snapshot"));
        if (s && *s && !snap) {
            snap = s;
            repo = json_string_value(json_object_get(t, "repository"));
        }
        if (json_integer_value(json_object_get(t, "exit_code")) != 0)
            failed++;
    }
    if (!err)
        err = json_string_value(json_object_get(r->doc, "error"));
    if (ok)
        snprintf(msg, sizeof msg, "%s%s%s%s", snap ? "snapshot " : "done", snap ? snap : "",
                 repo ? " in repository " : "", repo ? repo : "");
    else
        snprintf(msg, sizeof msg, "exit code %d: %s", r->exit_code,
                 err ? err : "see the pod's log");
    const char *reason = schedule || backup ? (ok || partial ? "BackupSucceeded" : "BackupFailed")
                                            : (ok ? "RestoreSucceeded" : "RestoreFailed");
    json_t *st = json_object();
    if (schedule) {
        json_object_set_new(st, ok || partial ? "lastSuccessfulTime" : "lastFailureTime",
                            json_string(now));
        if (snap)
            json_object_set_new(st, "lastSnapshotID", json_string(snap));
        if (getenv("POD_NAME"))
            json_object_set_new(st, "lastBackup", json_string(getenv("POD_NAME")));
        json_object_set_new(st, "conditions",
                            op_conditions_set(obj, "LastRunSucceeded",
                                              ok || partial ? "True" : "False", reason, msg));
        return st;
    }
    json_object_set_new(st, "phase",
                        json_string(ok        ? "Completed"
                                    : partial ? "PartiallyFailed"
                                              : "Failed"));
    json_object_set_new(st, "completionTime", json_string(now));
    json_object_set_new(st, "message", json_string(msg));
    if (snap)
        json_object_set_new(st, "snapshotID", json_string(snap));
    json_t *added = json_object_get(r->doc, "bytes_added");
    if (json_is_integer(added))
        json_object_set(st, "bytesAdded", added);
    /* counts of the first repository's backup (the others hold the same files) */
    json_t *t0 = json_array_get(targets, 0);
    static const char *const counts[][2] = {{"files_new", "filesNew"},
                                            {"files_changed", "filesChanged"},
                                            {"files_unchanged", "filesUnchanged"},
                                            {"bytes_read", "bytesRead"}};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        json_t *v = json_object_get(t0, counts[k][0]);
        if (json_is_integer(v))
            json_object_set(st, counts[k][1], v);
    }
    if (json_is_integer(json_object_get(t0, "bytes_read")))
        json_object_set_new(st, "progress",
                            json_pack("{s:O, s:O}", "bytesDone", json_object_get(t0, "bytes_read"),
                                      "bytesTotal", json_object_get(t0, "bytes_read")));
    json_object_set_new(st, "errors", json_integer((json_int_t)(ok ? 0 : failed ? failed : 1)));
    json_object_set_new(
        st, "conditions",
        op_conditions_set(obj, "Succeeded", ok || partial ? "True" : "False", reason, msg));
    return st;
}

int op_exec(const op_exec_opts_t *o, char *const *args)
{
    const k8s_res_t *res = op_res_by_plural(o->kind);
    if (!res) {
        log_error("operator exec: --kind must be backups, restores or backupschedules");
        return 2;
    }
    k8s_config_t cfg;
    k8s_client_t *kc = NULL;
    json_t *obj = NULL;
    int rc = k8s_config_auto(o->kubeconfig, o->context, &cfg);
    if (!rc)
        rc = k8s_client_new(&cfg, &kc);
    if (!rc)
        rc = k8s_get(kc, res, o->namespace, o->name, &obj);
    if (rc) {
        /* without the API the job still runs; the operator sees the Job's outcome */
        log_warn("cannot report into %s %s/%s: %s", o->kind, o->namespace, o->name, err_msg());
        err_clear();
    }
    bool run_kind = strcmp(o->kind, "backupschedules") != 0;
    if (obj && run_kind) {
        char now[40], msg[256];
        op_now(now, sizeof now);
        snprintf(msg, sizeof msg, "pod %s is running the job",
                 getenv("POD_NAME") ? getenv("POD_NAME") : "(unknown)");
        json_t *st = json_pack(
            "{s:s, s:s, s:o}", "phase", "InProgress", "startTime", now, "conditions",
            op_conditions_set(
                obj, "Succeeded", "Unknown",
                !strcmp(o->kind, "backups") ? "BackupInProgress" : "RestoreInProgress", msg));
        if (op_patch_status(kc, res, o->namespace, o->name, st))
            log_warn("cannot mark %s/%s InProgress: %s", o->namespace, o->name, err_msg());
        err_clear();
        json_decref(st);
    }
    result_t r = {.exit_code = 1};
    char errbuf[512] = "";
    if (run(o->coffer_bin, args, &r)) {
        snprintf(errbuf, sizeof errbuf, "%s", err_msg());
        log_error("%s", errbuf);
        r.exit_code = 1;
    }
    if (obj) {
        json_t *fresh = NULL;
        if (k8s_get(kc, res, o->namespace, o->name, &fresh) == 0) {
            json_decref(obj);
            obj = fresh;
        }
        err_clear();
        json_t *st = final_status(o, obj, &r, errbuf[0] ? errbuf : NULL);
        if (op_patch_status(kc, res, o->namespace, o->name, st))
            log_warn("cannot report the result into %s/%s: %s", o->namespace, o->name, err_msg());
        else
            op_event(kc, obj, r.exit_code == 0 ? "Normal" : "Warning",
                     r.exit_code == 0 ? "RunSucceeded" : "RunFailed", "%s",
                     json_string_value(json_object_get(st, "message"))
                         ? json_string_value(json_object_get(st, "message"))
                         : "run finished");
        err_clear();
        json_decref(st);
    }
    json_decref(r.doc);
    json_decref(obj);
    k8s_client_free(kc);
    return r.exit_code;
}
