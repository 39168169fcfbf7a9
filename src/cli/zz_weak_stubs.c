/* TEMPORARY (lead's scratch, never committed): weak stand-ins so the binary links while the
 * real commands are being written. */
#include "cli/cmds.h"
#include <stdio.h>
#define W(n) __attribute__((weak)) int n(cli_t *c, int a, char **v) { (void)c; (void)a; (void)v; fprintf(stderr, #n " not built yet\n"); return 1; }
W(cmd_ls) W(cmd_diff) W(cmd_stats) W(cmd_dump) W(cmd_check) W(cmd_forget) W(cmd_prune) W(cmd_unlock) W(cmd_key)
