/*
 * location.h -- the CLI side of the location check (location.c).
 *
 * Layer: cli.
 */
#ifndef COFFER_CLI_LOCATION_H
#define COFFER_CLI_LOCATION_H

#include "cli/cli.h"

/* Probe the location of cli->repo (created first when create is set) and print the report:
 * always when always_print, otherwise only when a step failed or warned. Returns 0 when no
 * step failed, else an error naming the first failed step. skip_local: do nothing (return 0)
 * when the location is a local filesystem (init probes remote locations only). */
int cli_location_check(cli_t *cli, bool create, bool always_print, bool skip_local);

#endif
