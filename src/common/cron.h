/*
 * cron.h -- 5-field cron expressions and their next run time in a named time zone.
 *
 * Layer: common. Syntax is Vixie cron's (crontab(5)): minute hour day-of-month month
 * day-of-week; each field a comma list of `*`, `N`, `A-B`, each optionally `/STEP`
 * (`N/STEP` means N to the field's maximum, as in cronie); month names jan-dec and day names
 * sun-sat (case-insensitive, also inside ranges); day-of-week 7 is Sunday. Macros:
 * @yearly @annually @monthly @weekly @daily @midnight @hourly (@reboot is refused).
 * Day rule (Vixie): when both day-of-month and day-of-week are restricted (neither field
 * starts with `*`), a day matches when EITHER matches; otherwise both must match.
 *
 * Time zones and DST (cron_next): expressions are matched against wall-clock time in the
 * zone. Like Vixie/Debian cron, a wall-clock time that does not exist (skipped by a
 * spring-forward change) runs once, at the first instant after the gap; a wall-clock time
 * that occurs twice (autumn fall-back) runs once, at its first occurrence.
 *
 * Thread safety: cron_parse and cron_matches are reentrant. cron_next and cron_tz_check
 * serialise on a process-wide mutex because glibc reads zones only through the TZ
 * environment variable: TZ is set for the computation and restored afterwards, so another
 * thread calling localtime_r at that moment may briefly see the job's zone.
 */
#ifndef COFFER_COMMON_CRON_H
#define COFFER_COMMON_CRON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define CRON_MAX_TEXT 1024 /* longest expression accepted */

typedef struct cron_expr {
    uint64_t minute; /* bit m: minute m (0-59) */
    uint32_t hour;   /* bit h (0-23) */
    uint32_t dom;    /* bit d (1-31) */
    uint16_t month;  /* bit m (1-12) */
    uint8_t dow;     /* bit d (0-6, 0 = Sunday) */
    bool dom_star;   /* the day-of-month field starts with '*' */
    bool dow_star;   /* the day-of-week field starts with '*' */
} cron_expr_t;

/* Parse text into *out. Errors: COFFER_EINVAL with a message naming the field and the bad
 * token ("cron \"...\": day-of-week field: \"fri-\" is not ..."); COFFER_ELIMIT over
 * CRON_MAX_TEXT. *out is written only on success. */
int cron_parse(const char *text, cron_expr_t *out);

/* Does the broken-down wall-clock time tm (tm_min, tm_hour, tm_mday, tm_mon, tm_wday) match? */
bool cron_matches(const cron_expr_t *c, const struct tm *tm);

/* Check that tz is a usable IANA zone name (a TZif file under $TZDIR or /usr/share/zoneinfo;
 * no absolute paths or ".."). NULL or "" means the process's local zone and is accepted.
 * 0 or COFFER_EINVAL with a message naming the zone. */
int cron_tz_check(const char *tz);

/* The first run time strictly after `after` (Unix seconds) in zone tz (NULL/"" = local),
 * in Unix seconds, into *out_t. Errors: COFFER_EINVAL (bad zone), COFFER_ENOENT when the
 * expression never matches within 30 years (e.g. "0 0 31 2 *"). */
int cron_next(const cron_expr_t *c, const char *tz, int64_t after, int64_t *out_t);

#endif
