/*
 * command.h -- the command source: run a program and store its stdout as one file of a
 * snapshot, recording its exit status.
 *
 * Layer: source/command (uses repo, common). The program is started with fork/exec (argv as
 * given, no shell); secrets reach it through the environment, never argv. Its stdout is read
 * through the chunker; blobs are compressed and encrypted by a worker pool. Its stderr passes
 * through to ours. A non-zero exit status or a death by signal marks the result failed.
 */
#ifndef COFFER_SOURCE_COMMAND_COMMAND_H
#define COFFER_SOURCE_COMMAND_COMMAND_H

#include "repo/writer.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct command_result {
    int exit_status; /* exit code, or 128 + signal number */
    bool signaled;
    uint64_t bytes;
} command_result_t;

typedef struct command_opts {
    char *const *argv;           /* program and arguments (argv[0] searched in PATH) */
    const char *name;            /* file name in the snapshot */
    int threads;                 /* blob workers; 0 = CPU count */
    volatile sig_atomic_t *stop; /* stop early: the program is sent SIGTERM */
    _Atomic uint64_t *bytes_done;
} command_opts_t;

/* Store from fd (a pipe or file) as a file node named name; fills *out_node (caller
 * releases). Used for the program's stdout and for `backup --stdin`. */
int command_store_stream(repo_t *r, writer_t *w, int fd, const char *name, int threads,
                         volatile sig_atomic_t *stop, _Atomic uint64_t *bytes_done,
                         node_t *out_node);

/* Run the program and store its output; builds the root tree {name} and sets snap->tree,
 * command fields and bytes_read. Returns 0 when the data was stored, whatever the exit
 * status (see *out_res); an error when the program could not start or storing failed. */
int command_backup(repo_t *r, writer_t *w, const command_opts_t *o, snapshot_t *snap,
                   command_result_t *out_res);

#endif
