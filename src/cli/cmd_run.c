/*
 * cmd_run.c -- `coffer run --config FILE`: the scheduler daemon for a sidecar or a server
 * (sched/sched.h): runs jobs and copy tasks on their schedules, serves /metrics and /healthz,
 * reloads the configuration on SIGHUP, and on SIGTERM/SIGINT interrupts the running jobs
 * (they checkpoint) and exits.
 *
 * Layer: cli. Exit 0 after a clean stop, 1 when it cannot start (bad config, address in use).
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "common/log.h"
#include "sched/sched.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t reload_requested;

static void on_hup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

static void help(void)
{
    printf("usage: coffer run [--config FILE]\n"
           "Runs the configured jobs and copy tasks on their schedules until SIGTERM.\n"
           "  --config FILE   the job configuration (default: $COFFER_CONFIG)\n"
           "Signals: SIGHUP reloads the configuration (a bad one is refused and the old one\n"
           "kept); SIGTERM or SIGINT interrupts running jobs (a backup checkpoints) and exits.\n"
           "The server section of the configuration sets the metrics address (/metrics,\n"
           "/healthz), the state file (missed runs), concurrency and the missed-run policy.\n");
}

int cmd_run(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *path = getenv("COFFER_CONFIG");
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("run", "unknown option");
        }
    }
    if (optind != argc)
        return cli_usage("run", "run takes no arguments");
    if (!path || !*path)
        return cli_usage("run", "give the configuration with --config FILE or COFFER_CONFIG");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_hup;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    if (log_get_level() > LOG_INFO && !cli->quiet)
        log_set_level(LOG_INFO);
    sched_daemon_opts_t o = {
        .config_path = path, .stop = &cli_stop, .reload = &reload_requested, .quiet = cli->quiet};
    int rc = sched_daemon_run(&o);
    if (rc == COFFER_ENOENT)
        rc = COFFER_EINVAL;
    return cli_fail(cli, rc);
}
