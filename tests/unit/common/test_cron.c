/*
 * test_cron.c -- unit tests for src/common/cron.c: parsing (fields, names, steps, macros,
 * errors naming the field) and next-run tables in UTC, Europe/Berlin and America/New_York
 * across both DST changes of 2026.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cron.h"
#include "common/error.h"
#include "common/timefmt.h"

static int64_t at(const char *rfc3339)
{
    int64_t ns;
    assert_int_equal(time_parse_rfc3339(rfc3339, &ns), 0);
    return ns / 1000000000;
}

/* Follow the chain of next runs from `from` and compare with the expected UTC times. */
static void chain(const char *expr, const char *tz, const char *from, const char *const *want,
                  size_t n)
{
    cron_expr_t c;
    assert_int_equal(cron_parse(expr, &c), 0);
    int64_t t = at(from);
    for (size_t i = 0; i < n; i++) {
        int64_t nx;
        assert_int_equal(cron_next(&c, tz, t, &nx), 0);
        char got[64];
        time_format_rfc3339(nx * 1000000000, false, got, sizeof got);
        if (strcmp(got, want[i]) != 0)
            fail_msg("%s in %s, step %zu after %s: want %s, got %s", expr, tz ? tz : "local", i,
                     from, want[i], got);
        t = nx;
    }
}

#define CHAIN(expr, tz, from, ...)                                                                 \
    do {                                                                                           \
        static const char *const w_[] = {__VA_ARGS__};                                             \
        chain(expr, tz, from, w_, sizeof w_ / sizeof w_[0]);                                       \
    } while (0)

static void test_parse_fields(void **state)
{
    (void)state;
    cron_expr_t c;
    assert_int_equal(cron_parse("*/15 0-6/2 1,15 jan-MAR mon-fri", &c), 0);
    assert_true(c.minute == ((1ull << 0) | (1ull << 15) | (1ull << 30) | (1ull << 45)));
    assert_int_equal(c.hour, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 6));
    assert_int_equal(c.dom, (1u << 1) | (1u << 15));
    assert_int_equal(c.month, (1u << 1) | (1u << 2) | (1u << 3));
    assert_int_equal(c.dow, 0x3e);
    assert_false(c.dom_star);
    assert_false(c.dow_star);
    assert_int_equal(cron_parse("0 0 * * 7", &c), 0);
    assert_int_equal(c.dow, 1);
    assert_int_equal(cron_parse("0 0 * * 5-7", &c), 0);
    assert_int_equal(c.dow, (1u << 5) | (1u << 6) | 1u);
    assert_int_equal(cron_parse("5/20 * * * *", &c), 0);
    assert_true(c.minute == ((1ull << 5) | (1ull << 25) | (1ull << 45)));
    assert_int_equal(cron_parse("  @Daily ", &c), 0);
    assert_true(c.minute == 1 && c.hour == 1 && c.dom_star && c.dow_star);
    assert_int_equal(cron_parse("@hourly", &c), 0);
    assert_true(c.minute == 1 && c.hour == 0xffffff);
    assert_int_equal(cron_parse("@weekly", &c), 0);
    assert_int_equal(c.dow, 1);
}

static void expect_error(const char *expr, const char *needle1, const char *needle2)
{
    cron_expr_t c;
    assert_int_equal(cron_parse(expr, &c), COFFER_EINVAL);
    if (!strstr(err_msg(), needle1) || (needle2 && !strstr(err_msg(), needle2)))
        fail_msg("error for \"%s\" is \"%s\", expected \"%s\" and \"%s\"", expr, err_msg(), needle1,
                 needle2 ? needle2 : "");
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("61 * * * *", "minute field", "\"61\"");
    expect_error("* 24 * * *", "hour field", "\"24\"");
    expect_error("* * 0 * *", "day-of-month field", "\"0\"");
    expect_error("* * * 13 *", "month field", "\"13\"");
    expect_error("* * * * fri-", "day-of-week field", "\"fri-\"");
    expect_error("* * * * funday", "day-of-week field", "\"funday\"");
    expect_error("*/0 * * * *", "minute field", "step of 0");
    expect_error("5-1 * * * *", "minute field", "backwards");
    expect_error("1,,2 * * * *", "minute field", "empty");
    expect_error("* * *", "expected 5 fields", "got 3");
    expect_error("* * * * * *", "expected 5 fields", "got 6");
    expect_error("@reboot", "unknown macro", "@reboot");
    expect_error("", "expected 5 fields", NULL);
    char big[CRON_MAX_TEXT + 10];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cron_expr_t c;
    assert_int_equal(cron_parse(big, &c), COFFER_ELIMIT);
}

static void test_matches(void **state)
{
    (void)state;
    cron_expr_t c;
    assert_int_equal(cron_parse("30 9 13 * fri", &c), 0);
    struct tm tm = {.tm_min = 30, .tm_hour = 9, .tm_mday = 13, .tm_mon = 0, .tm_wday = 2};
    assert_true(cron_matches(&c, &tm)); /* the 13th, a Tuesday: OR rule */
    tm.tm_mday = 16;
    tm.tm_wday = 5;
    assert_true(cron_matches(&c, &tm)); /* a Friday, not the 13th */
    tm.tm_wday = 4;
    assert_false(cron_matches(&c, &tm));
    tm.tm_wday = 5;
    tm.tm_min = 31;
    assert_false(cron_matches(&c, &tm));
}

static void test_next_utc(void **state)
{
    (void)state;
    CHAIN("*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", "2026-01-01T00:15:00Z",
          "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z");
    CHAIN("* * * * *", "UTC", "2026-01-01T00:07:59Z", "2026-01-01T00:08:00Z",
          "2026-01-01T00:09:00Z");
    /* Vixie OR rule: the 13th or any Friday */
    CHAIN("0 0 13 * fri", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
          "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z");
    /* a star-prefixed day-of-month makes it AND: odd days that are Fridays */
    CHAIN("0 0 */2 * fri", "UTC", "2026-01-01T00:00:00Z", "2026-01-09T00:00:00Z",
          "2026-01-23T00:00:00Z", "2026-02-13T00:00:00Z");
    CHAIN("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z",
          "2032-02-29T00:00:00Z");
    CHAIN("@monthly", "UTC", "2026-12-15T10:00:00Z", "2027-01-01T00:00:00Z",
          "2027-02-01T00:00:00Z");
    CHAIN("@yearly", "UTC", "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z");
    CHAIN("0 12 * * sun", "UTC", "2026-11-21T12:00:00Z", "2026-11-22T12:00:00Z",
          "2026-11-29T12:00:00Z");
    cron_expr_t c;
    int64_t nx;
    assert_int_equal(cron_parse("0 0 31 2 *", &c), 0);
    assert_int_equal(cron_next(&c, "UTC", at("2026-01-01T00:00:00Z"), &nx), COFFER_ENOENT);
    assert_non_null(strstr(err_msg(), "never matches"));
}

static void test_next_berlin(void **state)
{
    (void)state;
    /* winter: CET = UTC+1 */
    CHAIN("0 3 * * *", "Europe/Berlin", "2026-01-10T12:00:00Z", "2026-01-11T02:00:00Z");
    /* spring forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z): 02:30 does not exist and
     * runs once at 03:00 CEST; the next day it is 02:30 CEST (00:30Z) */
    CHAIN("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z",
          "2026-03-30T00:30:00Z");
    /* every 20 minutes through the gap: 02:00, 02:20, 02:40 collapse into one run at 03:00 */
    CHAIN("*/20 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z", "2026-03-29T00:40:00Z",
          "2026-03-29T01:00:00Z", "2026-03-29T01:20:00Z");
    /* fall back 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z): 02:30 occurs twice, runs once
     * (the first time, 00:30Z), then 02:30 CET on the 26th (01:30Z) */
    CHAIN("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z",
          "2026-10-26T01:30:00Z");
    /* hourly through the repeated hour: 02:00 CEST runs, 02:00 CET does not repeat it */
    CHAIN("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z",
          "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z");
    /* starting inside the repeated hour (second pass): 02:30 already ran at 00:30Z */
    CHAIN("30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", "2026-10-26T01:30:00Z");
}

static void test_next_new_york(void **state)
{
    (void)state;
    /* spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z) */
    CHAIN("0 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z",
          "2026-03-09T06:00:00Z");
    CHAIN("*/30 * * * *", "America/New_York", "2026-03-08T06:20:00Z", "2026-03-08T06:30:00Z",
          "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z");
    /* fall back 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z): 01:30 runs once, at 05:30Z */
    CHAIN("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z",
          "2026-11-02T06:30:00Z");
    CHAIN("*/30 * * * *", "America/New_York", "2026-11-01T04:50:00Z", "2026-11-01T05:00:00Z",
          "2026-11-01T05:30:00Z", "2026-11-01T07:00:00Z");
    /* a weekday job in summer: EDT = UTC-4 */
    CHAIN("15 8 * * mon-fri", "America/New_York", "2026-07-03T13:00:00Z", "2026-07-06T12:15:00Z");
}

static void test_tz(void **state)
{
    (void)state;
    assert_int_equal(cron_tz_check("Europe/Berlin"), 0);
    assert_int_equal(cron_tz_check(NULL), 0);
    assert_int_equal(cron_tz_check("UTC"), 0);
    assert_int_equal(cron_tz_check("Mars/Olympus"), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "Mars/Olympus"));
    assert_int_equal(cron_tz_check("../../etc/passwd"), COFFER_EINVAL);
    assert_int_equal(cron_tz_check("/etc/localtime"), COFFER_EINVAL);
    cron_expr_t c;
    int64_t nx;
    assert_int_equal(cron_parse("* * * * *", &c), 0);
    assert_int_equal(cron_next(&c, "Nowhere/City", 0, &nx), COFFER_EINVAL);
    /* the process zone is restored after a computation in another zone */
    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    assert_int_equal(cron_next(&c, "Europe/Berlin", 0, &nx), 0);
    assert_string_equal(getenv("TZ"), "Asia/Tokyo");
    unsetenv("TZ");
    assert_int_equal(cron_next(&c, "Europe/Berlin", 0, &nx), 0);
    assert_null(getenv("TZ"));
    assert_true(nx == 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields), cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_matches),      cmocka_unit_test(test_next_utc),
        cmocka_unit_test(test_next_berlin),  cmocka_unit_test(test_next_new_york),
        cmocka_unit_test(test_tz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
