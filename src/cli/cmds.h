/*
 * cmds.h -- the command functions main.c dispatches to, one cmd_*.c file each.
 *
 * Layer: cli. Each returns the process exit code (cli.h).
 */
#ifndef COFFER_CLI_CMDS_H
#define COFFER_CLI_CMDS_H

#include "cli/cli.h"

int cmd_init(cli_t *cli, int argc, char **argv);
int cmd_backup(cli_t *cli, int argc, char **argv);
int cmd_snapshots(cli_t *cli, int argc, char **argv);
int cmd_ls(cli_t *cli, int argc, char **argv);
int cmd_diff(cli_t *cli, int argc, char **argv);
int cmd_stats(cli_t *cli, int argc, char **argv);
int cmd_restore(cli_t *cli, int argc, char **argv);
int cmd_dump(cli_t *cli, int argc, char **argv);
int cmd_check(cli_t *cli, int argc, char **argv);
int cmd_forget(cli_t *cli, int argc, char **argv);
int cmd_prune(cli_t *cli, int argc, char **argv);
int cmd_unlock(cli_t *cli, int argc, char **argv);
int cmd_key(cli_t *cli, int argc, char **argv);
int cmd_copy(cli_t *cli, int argc, char **argv);
int cmd_config(cli_t *cli, int argc, char **argv);
int cmd_job(cli_t *cli, int argc, char **argv);
int cmd_run(cli_t *cli, int argc, char **argv);
int cmd_k8s(cli_t *cli, int argc, char **argv);
int cmd_k8s_manifests(cli_t *cli, int argc, char **argv);
int cmd_operator(cli_t *cli, int argc, char **argv);
/* Service sources (cmd_service.c): backup/restore hand over when argv has --postgres,
 * --mysql/--mariadb, --redis or --ldap (cli_service_kind returns the kind, or NULL). */
const char *cli_service_kind(int argc, char **argv);
int cmd_service_backup(cli_t *cli, int argc, char **argv);
int cmd_service_restore(cli_t *cli, int argc, char **argv);

#endif
