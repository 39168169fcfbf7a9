/*
 * timefmt.c -- time helpers (see timefmt.h).
 *
 * Layer: common.
 */
#include "common/timefmt.h"
#include "common/error.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t time_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void split(int64_t ns, time_t *sec, long *frac)
{
    int64_t s = ns / 1000000000, f = ns % 1000000000;
    if (f < 0) {
        f += 1000000000;
        s--;
    }
    *sec = (time_t)s;
    *frac = (long)f;
}

void time_format_rfc3339(int64_t ns, bool frac, char *out, size_t n)
{
    time_t s;
    long f;
    split(ns, &s, &f);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac)
        snprintf(out, n, "%s.%09ldZ", base, f);
    else
        snprintf(out, n, "%sZ", base);
}

void time_format_local(int64_t ns, char *out, size_t n)
{
    time_t s;
    long f;
    split(ns, &s, &f);
    struct tm tm;
    localtime_r(&s, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

int time_parse_rfc3339(const char *s, int64_t *out_ns)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return COFFER_EINVAL;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (digits < 9) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        while (digits++ < 9)
            frac *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return COFFER_EINVAL;
        off = (int64_t)(hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return COFFER_EINVAL;
    }
    if (*p)
        return COFFER_EINVAL;
    time_t t = timegm(&tm);
    if (t < -9000000000ll || t > 9000000000ll) /* beyond ~ +-285 years of the epoch */
        return COFFER_EINVAL;
    *out_ns = ((int64_t)t - off) * 1000000000 + frac;
    return 0;
}
