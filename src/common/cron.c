/*
 * cron.c -- cron expression parser and next-run computation (see cron.h for the rules).
 *
 * Layer: common. The search walks wall-clock ("civil") time, held as seconds since the epoch
 * of a UTC-like calendar (timegm/gmtime_r arithmetic, so no zone is involved), skipping whole
 * months, days and hours that cannot match. Each matching civil minute is then mapped to an
 * instant in the zone: the earliest instant showing that wall-clock time (so a repeated
 * autumn hour runs once), or, when no instant shows it (a spring-forward gap), the instant
 * the gap ends. Only the zone lookups need TZ and the mutex.
 */
#include "common/cron.h"
#include "common/error.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#define CRON_SEARCH_YEARS 30

typedef struct field_def {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] is value min + i (NULL: numbers only) */
    int n_names;
} field_def_t;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const field_def_t fields[5] = {
    {"minute", 0, 59, NULL, 0},          {"hour", 0, 23, NULL, 0},
    {"day-of-month", 1, 31, NULL, 0},    {"month", 1, 12, month_names, 12},
    {"day-of-week", 0, 7, dow_names, 7},
};

static const struct {
    const char *name, *expansion;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static int bad_token(const char *text, const field_def_t *f, const char *tok, size_t len,
                     const char *why)
{
    char expect[64];
    if (f->names)
        snprintf(expect, sizeof expect, "%d-%d or %s-%s", f->min, f->max, f->names[0],
                 f->names[f->n_names - 1]);
    else
        snprintf(expect, sizeof expect, "%d-%d", f->min, f->max);
    return err_set(COFFER_EINVAL,
                   "cron \"%s\": %s field: \"%.*s\" %s (expected %s, '*', "
                   "ranges A-B, steps /N and lists a,b)",
                   text, f->name, (int)len, tok, why, expect);
}

/* One value (number or name) at *p; advances *p. */
static int parse_value(const char **p, const field_def_t *f, int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s - '0');
            if (v > 1000)
                return -1;
            s++;
        }
        if (v < f->min || v > f->max)
            return -1;
        *out = (int)v;
        *p = s;
        return 0;
    }
    if (f->names && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]) &&
        isalpha((unsigned char)s[2]) && !isalnum((unsigned char)s[3])) {
        for (int i = 0; i < f->n_names; i++) {
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->min + i;
                *p = s + 3;
                return 0;
            }
        }
    }
    return -1;
}

/* Parse one comma-separated field of length len into a bit mask. */
static int parse_field(const char *text, const field_def_t *f, const char *s, size_t len,
                       uint64_t *out_bits)
{
    uint64_t bits = 0;
    const char *end = s + len;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *eitem = comma ? comma : end;
        size_t ilen = (size_t)(eitem - s);
        const char *p = s;
        int lo, hi, step = 1;
        bool star = false;
        if (ilen == 0)
            return bad_token(text, f, s, ilen, "is an empty list item");
        if (*p == '*') {
            lo = f->min;
            hi = f->max == 7 ? 6 : f->max;
            p++;
            star = true;
        } else {
            if (parse_value(&p, f, &lo))
                return bad_token(text, f, s, ilen, "is not a valid value");
            hi = lo;
            if (p < eitem && *p == '-') {
                p++;
                if (parse_value(&p, f, &hi))
                    return bad_token(text, f, s, ilen, "has a bad range end");
                if (hi < lo)
                    return bad_token(text, f, s, ilen, "is a range that runs backwards");
            }
        }
        if (p < eitem && *p == '/') {
            p++;
            long v = 0;
            if (!isdigit((unsigned char)*p))
                return bad_token(text, f, s, ilen, "has a bad step");
            while (p < eitem && isdigit((unsigned char)*p)) {
                v = v * 10 + (*p - '0');
                if (v > 1000)
                    return bad_token(text, f, s, ilen, "has a step that is too large");
                p++;
            }
            if (v < 1)
                return bad_token(text, f, s, ilen, "has a step of 0");
            step = (int)v;
            if (!star && hi == lo) /* "N/S" = N to the maximum */
                hi = f->max == 7 ? 6 : f->max;
        }
        if (p != eitem)
            return bad_token(text, f, s, ilen, "is not a valid value");
        for (int v = lo; v <= hi; v += step)
            bits |= 1ull << (v == 7 && f->max == 7 ? 0 : v);
        s = comma ? comma + 1 : end;
        if (comma && s == end)
            return bad_token(text, f, "", 0, "is an empty list item");
    }
    *out_bits = bits;
    return 0;
}

int cron_parse(const char *text, cron_expr_t *out)
{
    if (!text)
        return err_set(COFFER_EINVAL, "cron: no expression given");
    size_t tl = strlen(text);
    if (tl > CRON_MAX_TEXT)
        return err_set(COFFER_ELIMIT, "cron expression is longer than %d characters",
                       CRON_MAX_TEXT);
    const char *expr = text;
    while (isspace((unsigned char)*expr))
        expr++;
    if (*expr == '@') {
        size_t n = strcspn(expr, " \t\r\n");
        const char *rest = expr + n;
        while (isspace((unsigned char)*rest))
            rest++;
        const char *found = NULL;
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (strlen(macros[i].name) == n && strncasecmp(expr, macros[i].name, n) == 0)
                found = macros[i].expansion;
        if (!found || *rest)
            return err_set(COFFER_EINVAL,
                           "cron \"%s\": unknown macro \"%.*s\" (use @yearly, @annually, "
                           "@monthly, @weekly, @daily, @midnight or @hourly)",
                           text, (int)n, expr);
        expr = found;
    }
    const char *tok[6];
    size_t len[6];
    int n = 0;
    const char *p = expr;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (n < 6) {
            tok[n] = s;
            len[n] = (size_t)(p - s);
        }
        n++;
    }
    if (n != 5)
        return err_set(COFFER_EINVAL,
                       "cron \"%s\": expected 5 fields (minute hour day-of-month month "
                       "day-of-week) or a @macro such as @daily, got %d field%s",
                       text, n, n == 1 ? "" : "s");
    uint64_t bits[5];
    for (int i = 0; i < 5; i++) {
        int rc = parse_field(text, &fields[i], tok[i], len[i], &bits[i]);
        if (rc)
            return rc;
    }
    cron_expr_t c = {.minute = bits[0],
                     .hour = (uint32_t)bits[1],
                     .dom = (uint32_t)bits[2],
                     .month = (uint16_t)bits[3],
                     .dow = (uint8_t)bits[4],
                     .dom_star = tok[2][0] == '*',
                     .dow_star = tok[4][0] == '*'};
    *out = c;
    return 0;
}

static bool day_matches(const cron_expr_t *c, int mday, int wday)
{
    bool d = (c->dom >> mday) & 1, w = (c->dow >> wday) & 1;
    if (c->dom_star || c->dow_star)
        return d && w;
    return d || w;
}

bool cron_matches(const cron_expr_t *c, const struct tm *tm)
{
    return ((c->minute >> tm->tm_min) & 1) && ((c->hour >> tm->tm_hour) & 1) &&
           ((c->month >> (tm->tm_mon + 1)) & 1) && day_matches(c, tm->tm_mday, tm->tm_wday);
}

/* ---- zones ------------------------------------------------------------------------------ */

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

int cron_tz_check(const char *tz)
{
    if (!tz || !*tz)
        return 0;
    if (tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 200)
        goto bad;
    for (const char *p = tz; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
            goto bad;
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto bad;
    char magic[4];
    ssize_t got = read(fd, magic, 4);
    close(fd);
    if (got == 4 && memcmp(magic, "TZif", 4) == 0)
        return 0;
bad:
    return err_set(COFFER_EINVAL,
                   "time zone \"%s\" is not a known IANA zone name (examples: UTC, "
                   "Europe/Berlin, America/New_York; see /usr/share/zoneinfo)",
                   tz);
}

/* UTC offset (seconds east) at instant t in the zone TZ currently names. */
static long gmtoff_at(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm))
        return 0;
    return tm.tm_gmtoff;
}

/* Map civil seconds c to an instant (see the file comment); false when c is in a gap that
 * cannot be resolved (two transitions within a day: never seen in tzdata). */
static bool civil_to_instant(int64_t c, int64_t *out)
{
    long cand[5] = {gmtoff_at(c - 86400), gmtoff_at(c - 43200), gmtoff_at(c), gmtoff_at(c + 43200),
                    gmtoff_at(c + 86400)};
    bool found = false;
    int64_t best = 0;
    for (int i = 0; i < 5; i++) {
        int64_t t = c - cand[i];
        if (gmtoff_at(t) == cand[i] && (!found || t < best)) {
            best = t;
            found = true;
        }
    }
    if (found) {
        *out = best;
        return true;
    }
    /* a gap: the instant the offset changes between a day before and a day after */
    long before = cand[0];
    if (cand[4] == before)
        return false;
    int64_t lo = c - 86400, hi = c + 86400;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (gmtoff_at(mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    *out = hi;
    return true;
}

static int64_t civil_of(int64_t t)
{
    return t + gmtoff_at(t);
}

static int64_t civil_make(int year, int mon, int mday, int hour, int min)
{
    struct tm tm = {
        .tm_year = year, .tm_mon = mon, .tm_mday = mday, .tm_hour = hour, .tm_min = min};
    return (int64_t)timegm(&tm);
}

static int next_locked(const cron_expr_t *c, int64_t after, int64_t *out_t)
{
    int64_t ca = civil_of(after);
    int64_t cc = ca - (((ca % 60) + 60) % 60) + 60;
    int64_t limit = cc + (int64_t)CRON_SEARCH_YEARS * 366 * 86400;
    while (cc < limit) {
        time_t tt = (time_t)cc;
        struct tm tm;
        if (!gmtime_r(&tt, &tm))
            break;
        if (!((c->month >> (tm.tm_mon + 1)) & 1)) {
            cc = civil_make(tm.tm_year, tm.tm_mon + 1, 1, 0, 0);
        } else if (!day_matches(c, tm.tm_mday, tm.tm_wday)) {
            cc = civil_make(tm.tm_year, tm.tm_mon, tm.tm_mday + 1, 0, 0);
        } else if (!((c->hour >> tm.tm_hour) & 1)) {
            cc = civil_make(tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour + 1, 0);
        } else if (!((c->minute >> tm.tm_min) & 1)) {
            cc += 60;
        } else {
            int64_t t;
            if (civil_to_instant(cc, &t) && t > after) {
                *out_t = t;
                return 0;
            }
            cc += 60;
        }
    }
    return err_set(COFFER_ENOENT,
                   "the cron expression never matches within %d years (check the day of "
                   "month against the month, e.g. 31 in February)",
                   CRON_SEARCH_YEARS);
}

int cron_next(const cron_expr_t *c, const char *tz, int64_t after, int64_t *out_t)
{
    int rc = cron_tz_check(tz);
    if (rc)
        return rc;
    pthread_mutex_lock(&tz_lock);
    char *old = NULL;
    bool had_old = false;
    if (tz && *tz) {
        const char *o = getenv("TZ");
        if (o) {
            had_old = true;
            old = strdup(o);
        }
        if ((had_old && !old) || setenv("TZ", tz, 1) != 0) {
            free(old);
            pthread_mutex_unlock(&tz_lock);
            return err_set(COFFER_ENOMEM, "out of memory");
        }
    }
    tzset();
    int64_t t = 0;
    rc = next_locked(c, after, &t);
    if (tz && *tz) {
        if (had_old)
            setenv("TZ", old, 1);
        else
            unsetenv("TZ");
        tzset();
    }
    free(old);
    pthread_mutex_unlock(&tz_lock);
    if (!rc)
        *out_t = t;
    return rc;
}
