/*
 * error.h -- coffer's error codes and the per-thread error record.
 *
 * Layer: common (includes nothing of coffer's).
 * Every fallible function returns int: 0 on success, a negative COFFER_E* code on failure.
 * The failing function calls err_set() with a message; callers up the stack may add context
 * with err_ctx() ("while writing pack 3f2a..."). Commands print err_msg() and map the code to
 * an exit status (see cli/cli.h). Library layers never print.
 *
 * Thread safety: the record is thread-local; each thread has its own.
 */
#ifndef COFFER_COMMON_ERROR_H
#define COFFER_COMMON_ERROR_H

enum coffer_err {
    COFFER_OK = 0,
    COFFER_ENOMEM = -1,    /* out of memory */
    COFFER_EIO = -2,       /* I/O error from the OS or a backend */
    COFFER_EINVAL = -3,    /* bad argument or bad user input */
    COFFER_ENOENT = -4,    /* object or file does not exist */
    COFFER_EEXIST = -5,    /* create-only write found the object already there */
    COFFER_ECORRUPT = -6,  /* data failed an integrity check or does not parse */
    COFFER_EPASSWORD = -7, /* no key slot opens with the given password */
    COFFER_ENOREPO = -8,   /* no repository at the location */
    COFFER_EVERSION = -9,  /* repository format newer than this program */
    COFFER_ELEASE = -10,   /* could not get the prune lease */
    COFFER_EINTR = -11,    /* interrupted by a signal (SIGINT/SIGTERM) */
    COFFER_ENOSPC = -12,   /* no space left on the storage */
    COFFER_EPARTIAL = -13, /* finished, but some items could not be read */
    COFFER_ELIMIT = -14,   /* an input exceeded a built-in limit */
};

/* Set the thread's error record (replacing any context) and return code, so a caller can
 * write `return err_set(COFFER_EIO, "cannot open %s: %s", path, strerror(errno));`. */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepend context to the current message: "while X: <message>". Returns code unchanged. */
int err_ctx(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set from errno: message is "<what>: <strerror(errno)>", code mapped (ENOSPC, ENOENT...). */
int err_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The current message (borrowed; valid until the next err_* call on this thread). Never NULL. */
const char *err_msg(void);

/* The code last set on this thread (0 if none since err_clear). */
int err_code(void);

/* Clear the record. */
void err_clear(void);

/* A short name for a code: "ENOENT" etc. */
const char *err_name(int code);

#endif
