/*
 * error.c -- the per-thread error record (see error.h).
 *
 * Layer: common. Messages are capped at ERR_MAX bytes; longer ones are truncated, never
 * overflowed.
 */
#include "common/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERR_MAX 2048

static _Thread_local char err_buf[ERR_MAX];
static _Thread_local int err_last;

int err_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    err_last = code;
    return code;
}

int err_ctx(int code, const char *fmt, ...)
{
    char ctx[ERR_MAX];
    char old[ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    if (old[0])
        snprintf(err_buf, sizeof err_buf, "%s: %s", ctx, old);
    else
        snprintf(err_buf, sizeof err_buf, "%s", ctx);
    if (err_last == 0)
        err_last = code;
    return code;
}

static int map_errno(int e)
{
    switch (e) {
    case ENOMEM:
        return COFFER_ENOMEM;
    case ENOENT:
    case ENOTDIR:
        return COFFER_ENOENT;
    case EEXIST:
        return COFFER_EEXIST;
    case ENOSPC:
    case EDQUOT:
        return COFFER_ENOSPC;
    case EINTR:
        return COFFER_EINTR;
    default:
        return COFFER_EIO;
    }
}

int err_errno(const char *fmt, ...)
{
    int e = errno;
    char what[ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err_buf, sizeof err_buf, "%s: %s", what, strerror(e));
    err_last = map_errno(e);
    errno = e;
    return err_last;
}

const char *err_msg(void)
{
    return err_buf[0] ? err_buf : "unknown error";
}

int err_code(void)
{
    return err_last;
}

void err_clear(void)
{
    err_buf[0] = 0;
    err_last = 0;
}

const char *err_name(int code)
{
    switch (code) {
    case COFFER_OK:
        return "OK";
    case COFFER_ENOMEM:
        return "ENOMEM";
    case COFFER_EIO:
        return "EIO";
    case COFFER_EINVAL:
        return "EINVAL";
    case COFFER_ENOENT:
        return "ENOENT";
    case COFFER_EEXIST:
        return "EEXIST";
    case COFFER_ECORRUPT:
        return "ECORRUPT";
    case COFFER_EPASSWORD:
        return "EPASSWORD";
    case COFFER_ENOREPO:
        return "ENOREPO";
    case COFFER_EVERSION:
        return "EVERSION";
    case COFFER_ELEASE:
        return "ELEASE";
    case COFFER_EINTR:
        return "EINTR";
    case COFFER_ENOSPC:
        return "ENOSPC";
    case COFFER_EPARTIAL:
        return "EPARTIAL";
    case COFFER_ELIMIT:
        return "ELIMIT";
    default:
        return "E?";
    }
}
