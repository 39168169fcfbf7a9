/*
 * test_retention.c -- unit tests for src/repo/retention.c: every keep rule on synthetic
 * snapshot times (TZ=UTC), ISO weeks across a year boundary, combined policies, failed
 * snapshots, the nxs days/weeks/months mapping, durations, --group-by parsing and group keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/error.h"
#include "repo/retention.h"

#define NS 1000000000LL
#define HOUR (3600 * NS)
#define DAY (24 * HOUR)

/* A group of synthetic snapshots; snapshot i gets id {i+1, 0...}. */
typedef struct group {
    snapshot_t *s;
    const snapshot_t **ptr;
    retention_decision_t *d;
    size_t n;
} group_t;

static void group_init(group_t *g, size_t n)
{
    g->n = n;
    g->s = calloc(n, sizeof *g->s);
    g->ptr = calloc(n, sizeof *g->ptr);
    g->d = calloc(n, sizeof *g->d);
    assert_non_null(g->s);
    assert_non_null(g->ptr);
    assert_non_null(g->d);
    for (size_t i = 0; i < n; i++) {
        snapshot_init(&g->s[i]);
        g->s[i].id[0] = (uint8_t)(i + 1);
        g->s[i].id[1] = (uint8_t)((i + 1) >> 8);
        g->ptr[i] = &g->s[i];
    }
}

static void group_release(group_t *g)
{
    for (size_t i = 0; i < g->n; i++)
        snapshot_release(&g->s[i]);
    free(g->s);
    free(g->ptr);
    free(g->d);
}

static void set_failed(snapshot_t *s)
{
    free(s->status);
    s->status = strdup("failed");
    assert_non_null(s->status);
}

/* Seconds since the epoch of a UTC date and time. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm) * NS;
}

static size_t count_kept(const group_t *g)
{
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++) {
        assert_int_equal(g->d[i].keep, g->d[i].reasons != 0);
        k += g->d[i].keep;
    }
    return k;
}

static void apply_ok(const retention_policy_t *p, group_t *g)
{
    assert_int_equal(retention_apply(p, g->ptr, g->n, g->d), 0);
}

static int setup_tz(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static void test_keep_last(void **state)
{
    (void)state;
    group_t g;
    group_init(&g, 5);
    /* input order is not time order */
    int64_t t[5] = {3, 1, 5, 2, 4};
    for (size_t i = 0; i < 5; i++)
        g.s[i].time_ns = utc(2026, 1, 1, 0, 0) + t[i] * HOUR;
    retention_policy_t p = {.keep_last = 2};
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 2);
    assert_true(g.d[2].keep); /* t=5 */
    assert_true(g.d[4].keep); /* t=4 */
    assert_int_equal(g.d[2].reasons, RETENTION_LAST);

    p.keep_last = RETENTION_UNLIMITED;
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 5);

    /* more than there are: all kept */
    p.keep_last = 10;
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 5);
    group_release(&g);
}

/* 30 days, 4 snapshots a day (00:30, 06:30, 12:30, 23:30): keep-daily 7 keeps the 23:30 one of
 * the last 7 days. */
static void test_daily(void **state)
{
    (void)state;
    group_t g;
    group_init(&g, 120);
    static const int hours[4] = {0, 6, 12, 23};
    for (size_t i = 0; i < 120; i++)
        g.s[i].time_ns = utc(2026, 3, 1, hours[i % 4], 30) + (int64_t)(i / 4) * DAY;
    retention_policy_t p = {.keep_daily = 7};
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 7);
    for (size_t i = 0; i < 120; i++) {
        bool want = i / 4 >= 23 && i % 4 == 3;
        assert_int_equal(g.d[i].keep, want);
        if (want)
            assert_int_equal(g.d[i].reasons, RETENTION_DAILY);
    }

    /* unlimited: one per day, 30, and the oldest snapshot (an unlimited count is never used
     * up) */
    p.keep_daily = RETENTION_UNLIMITED;
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 31);
    assert_true(g.d[0].keep && !g.d[1].keep && g.d[3].keep);

    /* hourly: every snapshot is in its own hour */
    p = (retention_policy_t){.keep_hourly = 10};
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 10);
    assert_true(g.d[119].keep && g.d[110].keep && !g.d[109].keep);
    group_release(&g);
}

/* More days than snapshot days: the oldest snapshot is kept too (restic >= 0.17). */
static void test_oldest_kept_when_counts_left(void **state)
{
    (void)state;
    group_t g;
    group_init(&g, 6);
    for (size_t i = 0; i < 6; i++)
        g.s[i].time_ns = utc(2026, 3, 1, 1 + (int)(i % 2) * 10, 0) + (int64_t)(i / 2) * DAY;
    retention_policy_t p = {.keep_daily = 7};
    apply_ok(&p, &g);
    /* the newest of each of the 3 days, plus the oldest snapshot */
    assert_int_equal(count_kept(&g), 4);
    assert_true(g.d[0].keep && g.d[1].keep && g.d[3].keep && g.d[5].keep);
    assert_false(g.d[2].keep || g.d[4].keep);
    /* with the count used up, the oldest is not kept */
    p.keep_daily = 2;
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 2);
    assert_true(g.d[3].keep && g.d[5].keep);
    group_release(&g);
}

/* One snapshot a day from 2025-12-20 to 2026-01-10. ISO weeks: 2025-W52 is Dec 22-28,
 * 2026-W01 is Dec 29 - Jan 4 (so Dec 29-31 belong to 2026-W01), 2026-W02 Jan 5-11. */
static void test_weekly_iso_year_boundary(void **state)
{
    (void)state;
    group_t g;
    group_init(&g, 22);
    for (size_t i = 0; i < 22; i++)
        g.s[i].time_ns = utc(2025, 12, 20, 12, 0) + (int64_t)i * DAY;
    retention_policy_t p = {.keep_weekly = 3};
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 3);
    /* newest of W02 = Jan 10 (i=21); of W01 = Jan 4 (i=15); of W52 = Dec 28 (i=8) */
    assert_true(g.d[21].keep && g.d[15].keep && g.d[8].keep);
    /* Dec 31 (i=11) is in 2026-W01, whose newest is Jan 4: not kept */
    assert_false(g.d[11].keep);

    p.keep_weekly = RETENTION_UNLIMITED;
    apply_ok(&p, &g);
    /* W02, W01, W52, W51 (Dec 20-21, newest Dec 21 = i=1); the oldest (i=0) by the rule for
     * the oldest snapshot */
    assert_int_equal(count_kept(&g), 5);
    assert_true(g.d[1].keep && g.d[0].keep);
    group_release(&g);
}

static void test_monthly_yearly(void **state)
{
    (void)state;
    group_t g;
    /* the 1st and 15th of each month, 2023-01 .. 2026-12 */
    group_init(&g, 96);
    for (size_t i = 0; i < 96; i++)
        g.s[i].time_ns = utc(2023 + (int)(i / 24), 1 + (int)(i / 2) % 12, i % 2 ? 15 : 1, 3, 0);
    retention_policy_t p = {.keep_monthly = 6};
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 6);
    for (size_t i = 95; i > 95 - 12; i -= 2)
        assert_true(g.d[i].keep && g.d[i].reasons == RETENTION_MONTHLY);

    p = (retention_policy_t){.keep_yearly = 3};
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 3);
    assert_true(g.d[95].keep && g.d[71].keep && g.d[47].keep); /* Dec 15 of 2026, 2025, 2024 */
    assert_false(g.d[23].keep);

    p.keep_yearly = 10; /* 4 years + the oldest */
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 5);
    assert_true(g.d[0].keep && g.d[23].keep);
    group_release(&g);
}

/* keep_within is relative to the newest snapshot, not to the clock. */
static void test_within(void **state)
{
    (void)state;
    group_t g;
    group_init(&g, 10);
    for (size_t i = 0; i < 10; i++)
        g.s[i].time_ns = utc(2001, 1, 1, 0, 0) + (int64_t)i * DAY;
    retention_policy_t p = {.keep_within_s = 3 * 86400};
    apply_ok(&p, &g);
    /* newer than day 9 - 3 days: days 7, 8, 9 (day 6 is exactly at the limit: removed) */
    assert_int_equal(count_kept(&g), 3);
    assert_true(g.d[7].keep && g.d[8].keep && g.d[9].keep && !g.d[6].keep);
    assert_int_equal(g.d[9].reasons, RETENTION_WITHIN);
    group_release(&g);
}

static void test_tags(void **state)
{
    (void)state;
    group_t g;
    group_init(&g, 6);
    for (size_t i = 0; i < 6; i++)
        g.s[i].time_ns = utc(2026, 5, 1, 0, 0) + (int64_t)i * HOUR;
    assert_int_equal(snapshot_add_tag(&g.s[0], "keep"), 0);
    assert_int_equal(snapshot_add_tag(&g.s[1], "a"), 0);
    assert_int_equal(snapshot_add_tag(&g.s[2], "a"), 0);
    assert_int_equal(snapshot_add_tag(&g.s[2], "b"), 0);
    assert_int_equal(snapshot_add_tag(&g.s[3], "other"), 0);
    const char *tags[] = {"keep", "a,b", ""};
    retention_policy_t p = {.keep_tags = tags, .n_keep_tags = 3};
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 2);
    assert_true(g.d[0].keep && g.d[2].keep);
    assert_int_equal(g.d[0].reasons, RETENTION_TAG);
    /* tags consume no count: keep-last 1 still keeps the newest */
    p.keep_last = 1;
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 3);
    assert_true(g.d[5].keep);

    /* a list of only empty entries is an empty policy */
    const char *none[] = {"", ""};
    p = (retention_policy_t){.keep_tags = none, .n_keep_tags = 2};
    assert_true(retention_policy_empty(&p));
    group_release(&g);
}

/* Several rules keeping one snapshot: each reason once, the snapshot counted once. */
static void test_combined(void **state)
{
    (void)state;
    group_t g;
    group_init(&g, 40);
    for (size_t i = 0; i < 40; i++)
        g.s[i].time_ns = utc(2026, 1, 1, 12, 0) + (int64_t)i * DAY;
    assert_int_equal(snapshot_add_tag(&g.s[39], "x"), 0);
    const char *tags[] = {"x", "x"};
    retention_policy_t p = {.keep_last = 2,
                            .keep_daily = 5,
                            .keep_weekly = 2,
                            .keep_monthly = 2,
                            .keep_yearly = 1,
                            .keep_within_s = 86400 + 3600,
                            .keep_tags = tags,
                            .n_keep_tags = 2};
    apply_ok(&p, &g);
    unsigned all = RETENTION_LAST | RETENTION_DAILY | RETENTION_WEEKLY | RETENTION_MONTHLY |
                   RETENTION_YEARLY | RETENTION_WITHIN | RETENTION_TAG;
    assert_int_equal(g.d[39].reasons, all);
    /* Feb 9 (i=39) is a Monday in ISO week 7; Sun Feb 8 (i=38) is the newest of week 6 */
    assert_int_equal(g.d[38].reasons,
                     RETENTION_LAST | RETENTION_DAILY | RETENTION_WEEKLY | RETENTION_WITHIN);
    /* days 35..39 daily; January's newest, Jan 31 (i=30), monthly */
    assert_true(g.d[30].reasons & RETENTION_MONTHLY);
    assert_int_equal(count_kept(&g), 6);

    buf_t b;
    buf_init(&b);
    assert_int_equal(retention_reasons_format(g.d[38].reasons, &b), 0);
    assert_string_equal((char *)b.data, "last, daily, weekly, within");
    assert_int_equal(retention_reasons_format(0, &b), 0);
    assert_string_equal((char *)b.data, "");
    assert_int_equal(retention_policy_describe(&p, &b), 0);
    assert_string_equal((char *)b.data,
                        "keep 2 last, 5 daily, 2 weekly, 2 monthly, 1 yearly snapshots, those "
                        "within 25h of the newest, those with tag x or x");
    retention_policy_t q = {.keep_daily = -1, .keep_within_s = 7 * 86400};
    assert_int_equal(retention_policy_describe(&q, &b), 0);
    assert_string_equal((char *)b.data, "keep all daily snapshots, those within 7d of the newest");
    q = (retention_policy_t){0};
    assert_int_equal(retention_policy_describe(&q, &b), 0);
    assert_string_equal((char *)b.data, "empty policy: keep everything");
    buf_release(&b);
    assert_string_equal(retention_reason_name(RETENTION_FAILED_LATEST), "failed-latest");
    assert_string_equal(retention_reason_name(3), "?");
    group_release(&g);
}

/* Failed snapshots: never kept by a rule, never use a bucket; kept while newer than every good
 * snapshot. */
static void test_failed(void **state)
{
    (void)state;
    group_t g;
    group_init(&g, 6);
    /* day 0 good, day 1 failed(12:00) + good(08:00), day 2 failed, day 3 good, day 4 failed */
    g.s[0].time_ns = utc(2026, 6, 1, 8, 0);
    g.s[1].time_ns = utc(2026, 6, 2, 8, 0);
    g.s[2].time_ns = utc(2026, 6, 2, 12, 0);
    g.s[3].time_ns = utc(2026, 6, 3, 8, 0);
    g.s[4].time_ns = utc(2026, 6, 4, 8, 0);
    g.s[5].time_ns = utc(2026, 6, 5, 8, 0);
    set_failed(&g.s[2]);
    set_failed(&g.s[3]);
    set_failed(&g.s[5]);
    assert_int_equal(snapshot_add_tag(&g.s[3], "keep"), 0);
    const char *tags[] = {"keep"};
    retention_policy_t p = {
        .keep_daily = 2, .keep_tags = tags, .n_keep_tags = 1, .keep_within_s = 10 * 86400};
    apply_ok(&p, &g);
    /* failed and older than the newest good (day 3): removed even with a tag, within range */
    assert_false(g.d[2].keep);
    assert_false(g.d[3].keep);
    /* the failed latest run stays visible */
    assert_true(g.d[5].keep);
    assert_int_equal(g.d[5].reasons, RETENTION_FAILED_LATEST);
    /* daily 2: the good ones of day 3 and day 1 (the failed 12:00 run of day 1 does not take
     * the bucket) */
    assert_int_equal(g.d[4].reasons, RETENTION_DAILY | RETENTION_WITHIN);
    assert_int_equal(g.d[1].reasons, RETENTION_DAILY | RETENTION_WITHIN);
    assert_int_equal(g.d[0].reasons, RETENTION_WITHIN);

    /* keep-last 1 keeps the newest good snapshot, not the failed one */
    p = (retention_policy_t){.keep_last = 1};
    apply_ok(&p, &g);
    assert_int_equal(count_kept(&g), 2);
    assert_int_equal(g.d[4].reasons, RETENTION_LAST);

    /* within is measured from the newest good snapshot: a failed run 20 days later does not
     * push the good ones out */
    g.s[5].time_ns = utc(2026, 6, 25, 8, 0);
    p = (retention_policy_t){.keep_within_s = 86400};
    apply_ok(&p, &g);
    assert_true(g.d[4].keep && g.d[5].keep);

    /* only failed snapshots: all kept until a good one exists */
    group_t f;
    group_init(&f, 3);
    for (size_t i = 0; i < 3; i++) {
        f.s[i].time_ns = utc(2026, 6, 1, (int)i, 0);
        set_failed(&f.s[i]);
    }
    p = (retention_policy_t){.keep_last = 1};
    apply_ok(&p, &f);
    assert_int_equal(count_kept(&f), 3);
    group_release(&f);
    group_release(&g);
}

static void test_empty_policy_and_errors(void **state)
{
    (void)state;
    group_t g;
    group_init(&g, 3);
    retention_policy_t p = {0};
    assert_true(retention_policy_empty(&p));
    apply_ok(&p, &g);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(g.d[i].reasons, RETENTION_NO_POLICY);

    g.d[0].reasons = 12345;
    p.keep_daily = -2;
    assert_int_equal(retention_apply(&p, g.ptr, g.n, g.d), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "keep-daily"));
    assert_int_equal(g.d[0].reasons, 12345); /* untouched on failure */
    p = (retention_policy_t){.keep_within_s = -1};
    assert_int_equal(retention_policy_check(&p), COFFER_EINVAL);

    /* zero snapshots */
    p = (retention_policy_t){.keep_last = 3};
    assert_int_equal(retention_apply(&p, NULL, 0, NULL), 0);
    group_release(&g);
}

static void test_dwm(void **state)
{
    (void)state;
    retention_policy_t p = retention_from_dwm(7, 4, 6);
    assert_int_equal(p.keep_daily, 7);
    assert_int_equal(p.keep_weekly, 4);
    assert_int_equal(p.keep_monthly, 6);
    assert_int_equal(p.keep_last, 0);
    assert_int_equal(p.keep_hourly, 0);
    assert_int_equal(p.keep_yearly, 0);
    assert_int_equal(p.keep_within_s, 0);
    assert_int_equal(p.n_keep_tags, 0);

    /* a nightly backup for a year: 7 daily + 4 weekly + 6 monthly, with overlap */
    group_t g;
    group_init(&g, 365);
    for (size_t i = 0; i < 365; i++)
        g.s[i].time_ns = utc(2025, 1, 1, 2, 0) + (int64_t)i * DAY; /* .. 2025-12-31 (Wed) */
    apply_ok(&p, &g);
    /* daily: Dec 25-31; weekly: Dec 31 (ISO 2026-W01), Dec 28, 21, 14 (two of them already
     * daily); monthly: Dec 31, Nov 30, Oct 31, Sep 30, Aug 31, Jul 31 */
    assert_int_equal(count_kept(&g), 7 + 2 + 5);
    assert_true(g.d[364].reasons == (RETENTION_DAILY | RETENTION_WEEKLY | RETENTION_MONTHLY));
    assert_true(g.d[347].reasons == RETENTION_WEEKLY);  /* Dec 14 */
    assert_true(g.d[211].reasons == RETENTION_MONTHLY); /* Jul 31 */
    group_release(&g);
}

static void test_parse_duration(void **state)
{
    (void)state;
    int64_t s = 0;
    assert_int_equal(retention_parse_duration("7d", &s), 0);
    assert_int_equal(s, 7 * 86400);
    assert_int_equal(retention_parse_duration("2w", &s), 0);
    assert_int_equal(s, 14 * 86400);
    assert_int_equal(retention_parse_duration("1m", &s), 0);
    assert_int_equal(s, 30 * 86400);
    assert_int_equal(retention_parse_duration("1y", &s), 0);
    assert_int_equal(s, 365 * 86400);
    assert_int_equal(retention_parse_duration("36h", &s), 0);
    assert_int_equal(s, 36 * 3600);
    assert_int_equal(retention_parse_duration("1y6m2d", &s), 0);
    assert_int_equal(s, (365 + 180 + 2) * 86400);
    s = 99;
    assert_int_equal(retention_parse_duration("", &s), COFFER_EINVAL);
    assert_int_equal(retention_parse_duration("7", &s), COFFER_EINVAL);
    assert_int_equal(retention_parse_duration("d", &s), COFFER_EINVAL);
    assert_int_equal(retention_parse_duration("7x", &s), COFFER_EINVAL);
    assert_int_equal(retention_parse_duration("-7d", &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "-7d"));
    assert_int_equal(retention_parse_duration("300y", &s), COFFER_ELIMIT);
    assert_int_equal(retention_parse_duration("99999999999999999999999d", &s), COFFER_ELIMIT);
    assert_int_equal(retention_parse_duration("199y199y", &s), COFFER_ELIMIT);
    assert_int_equal(s, 99);
}

static void test_group_by(void **state)
{
    (void)state;
    unsigned f = 99;
    assert_int_equal(retention_parse_group_by("host,paths", &f), 0);
    assert_int_equal(f, RETENTION_GROUP_HOST | RETENTION_GROUP_PATHS);
    assert_int_equal(retention_parse_group_by("tags,job,host,paths", &f), 0);
    assert_int_equal(f, 15);
    assert_int_equal(retention_parse_group_by("", &f), 0);
    assert_int_equal(f, 0);
    f = 99;
    assert_int_equal(retention_parse_group_by("host,pathz", &f), COFFER_EINVAL);
    assert_int_equal(retention_parse_group_by("host,", &f), 0);
    assert_int_equal(retention_parse_group_by("hostpaths", &f), COFFER_EINVAL);
    assert_int_equal(f, RETENTION_GROUP_HOST);
}

static void test_group_key(void **state)
{
    (void)state;
    snapshot_t a, b;
    snapshot_init(&a);
    snapshot_init(&b);
    a.host = strdup("db1");
    a.job = strdup("nightly");
    assert_int_equal(snapshot_add_path(&a, "/srv"), 0);
    assert_int_equal(snapshot_add_path(&a, "/etc"), 0);
    assert_int_equal(snapshot_add_tag(&a, "z"), 0);
    assert_int_equal(snapshot_add_tag(&a, "a"), 0);
    b.host = strdup("db1");
    assert_int_equal(snapshot_add_path(&b, "/etc"), 0);
    assert_int_equal(snapshot_add_path(&b, "/srv"), 0);

    buf_t k, k2;
    buf_init(&k);
    buf_init(&k2);
    assert_int_equal(retention_group_key(&a, RETENTION_GROUP_DEFAULT, &k), 0);
    assert_string_equal((char *)k.data, "host=db1 paths=/etc,/srv job=nightly");
    assert_int_equal(retention_group_key(&a, 15, &k), 0);
    assert_string_equal((char *)k.data, "host=db1 paths=/etc,/srv tags=a,z job=nightly");
    assert_int_equal(retention_group_key(&a, RETENTION_GROUP_TAGS, &k), 0);
    assert_string_equal((char *)k.data, "tags=a,z");
    assert_int_equal(retention_group_key(&a, 0, &k), 0);
    assert_string_equal((char *)k.data, "");
    /* an empty result in a fresh buffer is still a C string */
    buf_t fresh;
    buf_init(&fresh);
    assert_int_equal(retention_group_key(&a, 0, &fresh), 0);
    assert_non_null(fresh.data);
    assert_string_equal((char *)fresh.data, "");
    buf_release(&fresh);
    buf_init(&fresh);
    assert_int_equal(retention_reasons_format(0, &fresh), 0);
    assert_string_equal((char *)fresh.data, "");
    buf_release(&fresh);

    /* path order does not matter; a missing job is an empty job */
    assert_int_equal(retention_group_key(&a, RETENTION_GROUP_HOST | RETENTION_GROUP_PATHS, &k), 0);
    assert_int_equal(retention_group_key(&b, RETENTION_GROUP_HOST | RETENTION_GROUP_PATHS, &k2), 0);
    assert_string_equal((char *)k.data, (char *)k2.data);
    assert_int_equal(retention_group_key(&b, RETENTION_GROUP_DEFAULT, &k2), 0);
    assert_string_equal((char *)k2.data, "host=db1 paths=/etc,/srv job=");

    /* one path "/a,/b" differs from two paths "/a" and "/b"; spaces are escaped */
    snapshot_t c, d;
    snapshot_init(&c);
    snapshot_init(&d);
    assert_int_equal(snapshot_add_path(&c, "/a,/b"), 0);
    assert_int_equal(snapshot_add_path(&d, "/a"), 0);
    assert_int_equal(snapshot_add_path(&d, "/b"), 0);
    assert_int_equal(retention_group_key(&c, RETENTION_GROUP_PATHS, &k), 0);
    assert_int_equal(retention_group_key(&d, RETENTION_GROUP_PATHS, &k2), 0);
    assert_string_not_equal((char *)k.data, (char *)k2.data);
    assert_string_equal((char *)k.data, "paths=/a\\,/b");
    c.host = strdup("my host");
    assert_int_equal(retention_group_key(&c, RETENTION_GROUP_HOST, &k), 0);
    assert_string_equal((char *)k.data, "host=my\\ host");

    buf_release(&k);
    buf_release(&k2);
    snapshot_release(&a);
    snapshot_release(&b);
    snapshot_release(&c);
    snapshot_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_last),
        cmocka_unit_test(test_daily),
        cmocka_unit_test(test_oldest_kept_when_counts_left),
        cmocka_unit_test(test_weekly_iso_year_boundary),
        cmocka_unit_test(test_monthly_yearly),
        cmocka_unit_test(test_within),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_combined),
        cmocka_unit_test(test_failed),
        cmocka_unit_test(test_empty_policy_and_errors),
        cmocka_unit_test(test_dwm),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_group_by),
        cmocka_unit_test(test_group_key),
    };
    return cmocka_run_group_tests(tests, setup_tz, NULL);
}
