/*
 * cmd_k8s_manifests.c -- `coffer k8s manifests --config FILE`: the job configuration as
 * Kubernetes objects (a ConfigMap, a CronJob per scheduled job and copy task, ServiceAccounts
 * and RBAC), one multi-document YAML on stdout for `kubectl apply -f -`.
 *
 * Layer: cli (operator/manifests.h does the work; k8s/yamlout.h writes the YAML). The
 * configuration is loaded in manifest mode (sched/config.h): ${VAR}s unset here stay for the
 * pod, secret files are not read. Nothing is written on an error. Exit 0 ok, 1 the
 * configuration cannot be rendered (the message names file:line:column), 2 usage.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "k8s/yamlout.h"
#include "operator/manifests.h"
#include "sched/config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ONLY 256

static void help(void)
{
    printf("usage: coffer k8s manifests [--config FILE] [-n NS] [--create-namespace] "
           "[--job NAME]...\n"
           "Writes the Kubernetes objects that run the configured jobs (doc/k8s.md, "
           "\"Manifests\"):\n"
           "a ConfigMap with the configuration, one CronJob per job or copy task with a "
           "schedule,\nServiceAccounts and least-privilege RBAC, as YAML on stdout "
           "(kubectl apply -f -).\n"
           "  --config FILE        the job configuration (default: $COFFER_CONFIG)\n"
           "  -n, --namespace NS   namespace of the objects (default: kubernetes.namespace, "
           "else default)\n"
           "  --create-namespace   also write the Namespace\n"
           "  --job NAME           only this job or copy task (repeatable)\n"
           "exit: 0 ok, 1 the configuration cannot be rendered, 2 usage\n");
}

int cmd_k8s_manifests(cli_t *cli, int argc, char **argv)
{
    enum { OPT_CREATE_NS = 1000, OPT_JOB };
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"namespace", required_argument, 0, 'n'},
                                         {"create-namespace", no_argument, 0, OPT_CREATE_NS},
                                         {"job", required_argument, 0, OPT_JOB},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *path = getenv("COFFER_CONFIG");
    char *only[MAX_ONLY];
    mf_opts_t mo = {.only = only};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:n:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'n':
            mo.namespace_ = optarg;
            break;
        case OPT_CREATE_NS:
            mo.create_namespace = true;
            break;
        case OPT_JOB:
            if (mo.n_only == MAX_ONLY)
                return cli_usage("k8s manifests", "at most %d --job options", MAX_ONLY);
            only[mo.n_only++] = optarg;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("k8s manifests", "unknown option (see coffer k8s manifests --help)");
        }
    }
    if (optind != argc)
        return cli_usage("k8s manifests", "takes no arguments (give the file with --config)");
    if (!path || !*path)
        return cli_usage("k8s manifests",
                         "give the configuration with --config FILE or COFFER_CONFIG");
    if (mo.namespace_) {
        size_t n = strlen(mo.namespace_);
        bool ok = n > 0 && n <= 63;
        for (size_t i = 0; i < n && ok; i++)
            ok = (mo.namespace_[i] >= 'a' && mo.namespace_[i] <= 'z') ||
                 (mo.namespace_[i] >= '0' && mo.namespace_[i] <= '9') ||
                 (mo.namespace_[i] == '-' && i && i + 1 < n);
        if (!ok)
            return cli_usage("k8s manifests",
                             "--namespace %s is not a namespace name (up to 63 lower-case "
                             "letters, digits and '-')",
                             mo.namespace_);
    }
    mo.config_name = path;
    cfg_load_opts_t lo = {.manifest = true};
    cfg_t *cfg = NULL;
    json_t *docs = NULL;
    buf_t out, notes;
    buf_init(&out);
    buf_init(&notes);
    int rc = cfg_load_opts(path, &lo, &cfg);
    if (rc == COFFER_ENOENT)
        rc = COFFER_EINVAL;
    if (!rc)
        rc = mf_render(cfg, &mo, &docs, &notes);
    if (!rc)
        rc = k8s_yaml_emit_docs(docs, &out);
    if (!rc && notes.len && !cli->quiet)
        fwrite(notes.data, 1, notes.len, stderr);
    if (!rc && out.len && fwrite(out.data, 1, out.len, stdout) != out.len)
        rc = err_set(COFFER_EIO, "cannot write to stdout");
    if (!rc && fflush(stdout))
        rc = err_set(COFFER_EIO, "cannot write to stdout");
    json_decref(docs);
    buf_release(&out);
    buf_release(&notes);
    cfg_free(cfg);
    return cli_fail(cli, rc);
}
