/*
 * service.h -- what the service sources (postgres, mysql, redis, ldap) share: running a dump
 * or restore program with a controlled environment, storing a dump as one snapshot, feeding a
 * stored dump back into a program, and handling secrets.
 *
 * Layer: source (uses repo, common; the command source stores the stream). Invariants:
 *  - Secrets reach a program through its environment or a 0600 file in a private 0700
 *    temporary directory, never through argv; argv is recorded in the snapshot as is.
 *  - One snapshot per dump (per database): kind = the service, path
 *    /<kind>/<HOST_PORT>/<file>, tags kind=, server=, database=. A dump that exits non-zero or
 *    is killed gives a snapshot with status "failed"; a repository write error gives no
 *    snapshot at all. Never a snapshot that looks complete but is not.
 *  - Programs are looked up in PATH before anything starts; a missing one is a clear error
 *    naming the service, the program and the Debian package to install.
 *  - The caller ignores SIGPIPE (the CLI does): a program that exits early while being fed
 *    is reported through its exit status, not by killing coffer. Children get SIGPIPE back
 *    at its default and an empty signal mask.
 */
#ifndef COFFER_SOURCE_SERVICE_H
#define COFFER_SOURCE_SERVICE_H

#include "common/buf.h"
#include "repo/repo.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SVC_STDERR_KEEP (64u << 10) /* bytes of a program's stderr kept for messages */
#define SVC_CAPTURE_MAX (16u << 20) /* cap on a query program's captured stdout */
#define SVC_SECRET_MAX 65536        /* cap on a password read from a file */
#define SVC_MAX_ARGS 512            /* cap on the arguments of one program */

/* ---- programs ---------------------------------------------------------------------------- */

/* Find program `name` in PATH; *out_path (caller frees) is its full path. When missing:
 * COFFER_ENOENT, "<service>: <name> not found in PATH: install <package>". */
int svc_find_tool(const char *service, const char *name, const char *package, char **out_path);

/* A growable NULL-terminated argv (strings owned). */
typedef struct svc_argv {
    char **v;
    size_t n, cap;
} svc_argv_t;
void svc_argv_init(svc_argv_t *a);
void svc_argv_release(svc_argv_t *a);
int svc_argv_add(svc_argv_t *a, const char *s);
int svc_argv_addf(svc_argv_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define SVC_IN_PIPE 0x1u    /* child's stdin is a pipe (svc_proc_t.in_fd), else /dev/null */
#define SVC_OUT_PIPE 0x2u   /* child's stdout is a pipe (svc_proc_t.out_fd) */
#define SVC_OUT_STDERR 0x4u /* child's stdout goes to its stderr (captured) */

/* A running program. stderr is read by a thread and its last SVC_STDERR_KEEP bytes kept. */
typedef struct svc_proc {
    pid_t pid;
    int in_fd, out_fd; /* -1 unless requested; the caller closes them (svc_proc_close_*) */
    int err_fd;
    bool err_thread;
    pthread_t err_tid;
    buf_t err; /* stderr tail, valid after svc_proc_wait */
    bool err_dropped;
    char line[1024]; /* svc_proc_last_line's copy */
} svc_proc_t;

/* Start argv (argv[0] a full path) with the current environment plus env_add ("NAME=VALUE"
 * entries that replace same-named variables; NULL-terminated, may be NULL). The secrets in
 * env_add are never logged. Errors: the program could not be started (named). */
int svc_proc_start(svc_proc_t *p, char *const *argv, char *const *env_add, unsigned flags);
void svc_proc_close_in(svc_proc_t *p);
void svc_proc_close_out(svc_proc_t *p);
/* Wait for the program; *out_status = exit code, or 128 + signal (and *out_signaled). Joins
 * the stderr thread. Closes fds still open. */
void svc_proc_wait(svc_proc_t *p, int *out_status, bool *out_signaled);
void svc_proc_release(svc_proc_t *p);
/* The last non-empty line of the program's stderr ("" when none); borrowed from p. */
const char *svc_proc_last_line(svc_proc_t *p);
/* Log each line of the program's stderr at `lvl` with a prefix. */
void svc_proc_log_stderr(svc_proc_t *p, int lvl, const char *prefix);

/* Run a program to completion and capture its stdout (at most SVC_CAPTURE_MAX bytes) into
 * *out (caller releases). stdin_data (may be NULL) is written to its stdin. A non-zero exit
 * is an error: "<what> failed: <last stderr line>", code COFFER_EIO. */
int svc_capture(char *const *argv, char *const *env_add, const char *stdin_data, const char *what,
                buf_t *out);

/* ---- secrets and private files ----------------------------------------------------------- */

/* A secret from the environment: variable `name`, else the file named by `name`_FILE (one
 * trailing newline removed). *out (caller frees with svc_secret_free) is NULL when neither is
 * set. Errors name the variable, never the value. */
int svc_secret_from_env(const char *name, char **out);
void svc_secret_free(char *s); /* wipes and frees; accepts NULL */

/* A private directory (0700) under $TMPDIR or /tmp; *out_path caller frees. */
int svc_tmpdir_new(char **out_path);
/* Remove the directory and the files in it (one level); accepts NULL. */
void svc_tmpdir_remove(const char *path);
/* Create dir/name with mode 0600 (O_EXCL) holding data; *out_path caller frees. */
int svc_write_private(const char *dir, const char *name, const void *data, size_t n,
                      char **out_path);

/* ---- snapshots ---------------------------------------------------------------------------- */

/* What every service backup shares (the CLI and the job runner fill it). */
typedef struct svc_common {
    const char *host;  /* snapshot host name; NULL = gethostname */
    const char *job;   /* job name recorded in the snapshot; NULL = "" */
    char *const *tags; /* extra tags */
    size_t n_tags;
    int threads;                 /* blob workers; 0 = CPUs */
    volatile sig_atomic_t *stop; /* set asynchronously to stop (COFFER_EINTR) */
    _Atomic uint64_t *bytes_done;
} svc_common_t;

/* One dump to run and store. */
typedef struct svc_dump {
    const char *kind;      /* "postgres", "mysql", "redis", "ldap" */
    const char *server;    /* "HOST:PORT" (tag server=) */
    const char *database;  /* tag database= (e.g. "app", "_globals", "0") */
    const char *file_name; /* the file's name, e.g. "app.dump" */
    char *const *argv;     /* the dump program (argv[0] full path); recorded as is */
    char *const *env_add;  /* added environment (secrets); NULL-terminated or NULL */
} svc_dump_t;

/* The result of one dump, for the caller's report. */
typedef struct svc_result {
    const char *kind, *server, *database; /* borrowed from the svc_dump_t */
    int rc;                               /* 0, or the error code */
    const char *message;                  /* the error message when rc != 0 (borrowed) */
    const snapshot_t *snap;               /* the saved snapshot, NULL when none was saved */
} svc_result_t;
typedef void (*svc_report_fn)(void *ctx, const svc_result_t *res);

/* "HOST:PORT" -> "HOST_PORT" with '/' and ':' replaced, for the snapshot path. out >= 256. */
void svc_server_dirname(const char *server, char *out, size_t len);

/* Run the dump and store its stdout as /<kind>/<server dir>/<file_name> in a new snapshot
 * (its own writer session). The parent is the latest non-failed snapshot of the same kind,
 * host and path. Calls report (may be NULL) once with the outcome. Returns 0 when a complete
 * snapshot was saved; COFFER_EIO when the program failed (a snapshot with status "failed"
 * was saved); other codes when nothing was saved (repository errors, COFFER_EINTR). */
int svc_backup_dump(repo_t *r, const svc_common_t *c, const svc_dump_t *d, svc_report_fn report,
                    void *ctx);

/* Find the dump file of a service snapshot: the single file under /<kind>/... Fills *out
 * (caller releases). Errors: not a snapshot of `kind`, or status failed (unless force). */
int svc_snapshot_file(repo_t *r, const snapshot_t *s, const char *kind, bool force, node_t *out);
/* The value of tag "key=..." of s (borrowed), or NULL. */
const char *svc_snapshot_tag(const snapshot_t *s, const char *key);

/* Write the content of file node n (index loaded) to fd, each blob verified as it is read.
 * Optional filter: called with each blob's bytes, writes itself (NULL: write as is). */
typedef int (*svc_filter_fn)(void *ctx, int fd, const uint8_t *p, size_t n, bool last);
int svc_write_file(repo_t *r, const node_t *n, int fd, volatile sig_atomic_t *stop,
                   svc_filter_fn filter, void *fctx);

/* Feed file node n into a program's stdin and wait for it. Succeeds when every byte was
 * written and the program exited 0; otherwise "<what> failed (exit N): <last stderr line>".
 * The program's stderr is logged at info level (warnings the restore survived). */
int svc_restore_pipe(repo_t *r, const node_t *n, char *const *argv, char *const *env_add,
                     const char *what, volatile sig_atomic_t *stop, svc_filter_fn filter,
                     void *fctx);

/* Pick databases: the named ones (each must be in avail, else COFFER_ENOENT naming it and
 * listing what exists) or all of avail minus excl. *out: caller frees the array; strings
 * borrowed from the inputs. */
int svc_select(const char *service, const char *server, char *const *avail, size_t n_avail,
               char *const *names, size_t n_names, bool all, char *const *excl, size_t n_excl,
               const char ***out, size_t *out_n);

/* Run a program with stdin from /dev/null; "<what> failed ..." on a non-zero exit. */
int svc_run(char *const *argv, char *const *env_add, const char *what);

#endif
