/*
 * cmd_operator.c -- `coffer operator`: the in-cluster controller for the coffer.dev resources,
 * and `coffer operator exec`, what the Jobs it creates run.
 *
 * Layer: cli. Options map onto op_opts_t / op_exec_opts_t (src/operator). The image the Jobs
 * run defaults to $COFFER_IMAGE, the ServiceAccount of the Jobs to $COFFER_JOB_SERVICE_ACCOUNT
 * (else "coffer-job").
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "common/log.h"
#include "operator/controller.h"
#include "operator/exec.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: coffer operator [options]\n"
           "       coffer operator exec --kind KIND --namespace NS --name NAME -- ARGS...\n"
           "  --kubeconfig FILE, --context NAME   the cluster (default: $KUBECONFIG,\n"
           "                      ~/.kube/config, or the in-cluster service account)\n"
           "  -n, --namespace NS  watch one namespace (default: all namespaces)\n"
           "  --image IMAGE       image of the Jobs (default $COFFER_IMAGE or coffer:%s)\n"
           "  --job-service-account NAME  ServiceAccount of the Jobs (default coffer-job)\n"
           "  --lease-namespace NS, --lease-name NAME  the leader election Lease\n"
           "                      (default: the watched or the context's namespace,\n"
           "                      coffer-operator)\n"
           "  --lease-duration S  seconds a leader's lease lasts (default 15)\n"
           "  --identity ID       this replica's name in the Lease (default $POD_NAME_pid)\n"
           "  --resync S          reconcile everything every S seconds (default 30)\n"
           "  --metrics-addr HOST:PORT  serve /metrics and /healthz\n"
           "  --deadline S        watchdog: fail runs without activeDeadlineSeconds after S\n"
           "                      seconds (default 21600)\n"
           "  --watchdog-grace S  time past a run's deadline before the watchdog fails it\n"
           "                      (default 60)\n",
           COFFER_VERSION_STR);
}

static int self_path(char *out, size_t n)
{
    ssize_t r = readlink("/proc/self/exe", out, n - 1);
    if (r <= 0)
        return err_errno("cannot find this executable (/proc/self/exe)");
    out[r] = 0;
    return 0;
}

static int cmd_exec(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"kind", required_argument, 0, 'k'},    {"namespace", required_argument, 0, 'n'},
        {"name", required_argument, 0, 'N'},    {"kubeconfig", required_argument, 0, 'K'},
        {"context", required_argument, 0, 'C'}, {0, 0, 0, 0}};
    op_exec_opts_t o = {0};
    char self[PATH_MAX];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+n:", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            o.kind = optarg;
            break;
        case 'n':
            o.namespace = optarg;
            break;
        case 'N':
            o.name = optarg;
            break;
        case 'K':
            o.kubeconfig = optarg;
            break;
        case 'C':
            o.context = optarg;
            break;
        default:
            return cli_usage("operator exec", "unknown option");
        }
    }
    if (optind < argc && !strcmp(argv[optind], "--"))
        optind++;
    if (!o.kind || !o.namespace || !o.name || optind >= argc)
        return cli_usage("operator exec", "needs --kind, --namespace, --name and -- ARGS");
    int rc = self_path(self, sizeof self);
    if (rc)
        return cli_fail(cli, rc);
    o.coffer_bin = self;
    return op_exec(&o, argv + optind);
}

int cmd_operator(cli_t *cli, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "exec"))
        return cmd_exec(cli, argc - 1, argv + 1);
    static const struct option opts[] = {{"kubeconfig", required_argument, 0, 'K'},
                                         {"context", required_argument, 0, 'C'},
                                         {"namespace", required_argument, 0, 'n'},
                                         {"image", required_argument, 0, 'i'},
                                         {"job-service-account", required_argument, 0, 'S'},
                                         {"lease-namespace", required_argument, 0, 'L'},
                                         {"lease-name", required_argument, 0, 'l'},
                                         {"lease-duration", required_argument, 0, 'd'},
                                         {"identity", required_argument, 0, 'I'},
                                         {"resync", required_argument, 0, 'r'},
                                         {"metrics-addr", required_argument, 0, 'm'},
                                         {"deadline", required_argument, 0, 'D'},
                                         {"watchdog-grace", required_argument, 0, 'G'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    static char image[256];
    snprintf(image, sizeof image, "coffer:%s", COFFER_VERSION_STR);
    op_opts_t o = {.render = {.image = getenv("COFFER_IMAGE") ? getenv("COFFER_IMAGE") : image,
                              .service_account = getenv("COFFER_JOB_SERVICE_ACCOUNT")
                                                     ? getenv("COFFER_JOB_SERVICE_ACCOUNT")
                                                     : "coffer-job"},
                   .stop = &cli_stop};
    char self[PATH_MAX];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hn:", opts, NULL)) != -1) {
        long v;
        char *end;
        switch (c) {
        case 'K':
            o.kubeconfig = optarg;
            break;
        case 'C':
            o.context = optarg;
            break;
        case 'n':
            o.namespace = optarg;
            break;
        case 'i':
            o.render.image = optarg;
            break;
        case 'S':
            o.render.service_account = optarg;
            break;
        case 'L':
            o.lease_namespace = optarg;
            break;
        case 'l':
            o.lease_name = optarg;
            break;
        case 'I':
            o.identity = optarg;
            break;
        case 'm':
            o.metrics_addr = optarg;
            break;
        case 'd':
        case 'r':
        case 'D':
        case 'G':
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 30 * 86400)
                return cli_usage("operator", "--%s needs a number of seconds",
                                 c == 'd'   ? "lease-duration"
                                 : c == 'r' ? "resync"
                                 : c == 'D' ? "deadline"
                                            : "watchdog-grace");
            if (c == 'd')
                o.lease_duration_s = (int)v;
            else if (c == 'r')
                o.resync_s = (int)v;
            else if (c == 'D')
                o.default_deadline_s = v;
            else
                o.watchdog_grace_s = v;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("operator", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage("operator", "unexpected argument \"%s\"", argv[optind]);
    int rc = self_path(self, sizeof self);
    if (rc)
        return cli_fail(cli, rc);
    o.coffer_bin = self;
    return cli_fail(cli, operator_run(&o));
}
