/*
 * cli.h -- what every command shares: global options, the password, opening the repository,
 * errors and exit codes, --json output, the progress line and signal handling.
 *
 * Layer: cli. Commands are `int cmd_NAME(cli_t *cli, int argc, char **argv)` returning the
 * process exit code (see cli_exit_code). argv[0] is the command name; global options have
 * been removed already, so commands parse only their own with getopt_long.
 *
 * Exit codes (README, DESIGN.md §9): 0 ok, 1 failed, 2 usage error, 3 partial, 10 no
 * repository, 11 prune lease busy, 12 wrong password, 130 interrupted.
 */
#ifndef COFFER_CLI_CLI_H
#define COFFER_CLI_CLI_H

#include "repo/repo.h"

#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_PARTIAL 3
#define EXIT_NOREPO 10
#define EXIT_LEASE 11
#define EXIT_PASSWORD 12
#define EXIT_INTERRUPTED 130

#define CLI_MAX_OPTS 64

typedef struct cli {
    const char *repo;               /* -r/--repo or COFFER_REPOSITORY */
    const char *opts[CLI_MAX_OPTS]; /* -o/--option KEY=VALUE, borrowed from argv */
    int n_opts;
    bool json;   /* --json: machine-readable lines on stdout */
    bool quiet;  /* -q: no progress, no informational output */
    int verbose; /* -v */
} cli_t;

/* Set by SIGINT/SIGTERM handlers installed with cli_catch_signals. */
extern volatile sig_atomic_t cli_stop;
void cli_catch_signals(void);

/* The password from COFFER_PASSWORD, COFFER_PASSWORD_FILE or a terminal prompt (confirm:
 * ask twice). Caller frees with cli_free_password (wipes it). */
int cli_get_password(const char *prompt, bool confirm, char **out);
/* A second password for `key add` / `key passwd`: COFFER_NEW_PASSWORD, COFFER_NEW_PASSWORD_FILE
 * or the terminal. */
int cli_get_new_password(char **out);
/* A secret from environment variable env, else the file named by env_file, else the
 * terminal (prompt; confirm: ask twice). Caller frees with cli_free_password. */
int cli_get_secret(const char *env, const char *env_file, const char *prompt, bool confirm,
                   char **out);
void cli_free_password(char *p);

/* Open the repository named by cli->repo with the password (prompting when needed). */
int cli_open_repo(cli_t *cli, repo_t **out);
/* The -o options as storage options (borrowed from cli). */
storage_opts_t cli_storage_opts(const cli_t *cli);

/* Map a COFFER_E* code to an exit code, and print the current error (human or JSON) and
 * return that exit code. */
int cli_exit_code(int rc);
int cli_fail(cli_t *cli, int rc);
/* Print a usage error for command `cmd` and return EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print a JSON value as one line on stdout and decref it. */
void cli_json_line(json_t *v);
/* Print with json_dumps(JSON_INDENT(2)) (for --json listings of one document). */
void cli_json_doc(json_t *v);

/* Human-readable sizes ("1.5 MiB") into out (>= 32 bytes). */
void cli_fmt_bytes(uint64_t n, char *out, size_t len);

/* Progress line on stderr when it is a terminal and not quiet/json: a thread redraws every
 * 200 ms with the caller's counters; total_bytes may be 0 (unknown: no ETA). */
typedef struct cli_progress cli_progress_t;
cli_progress_t *cli_progress_start(cli_t *cli, const char *verb, _Atomic uint64_t *bytes,
                                   _Atomic uint64_t *items, uint64_t total_bytes);
/* The total, once known (a scan running beside the work); accepts NULL. */
void cli_progress_set_total(cli_progress_t *p, uint64_t total);
void cli_progress_stop(cli_progress_t *p);

/* Resolve a snapshot spec ("latest" or id prefix) with optional host/tag/path filters; *out
 * is initialized by the call and must be released. */
typedef struct snap_filter {
    const char *host;
    char **tags;
    size_t n_tags;
    const char *path;
} snap_filter_t;
bool cli_snap_matches(const snapshot_t *s, const snap_filter_t *f);
int cli_find_snapshot(repo_t *r, const char *spec, const snap_filter_t *f, snapshot_t *out);

/* JSON description of a snapshot (for snapshots --json and backup summaries). */
json_t *cli_snapshot_json(const snapshot_t *s);

#endif
