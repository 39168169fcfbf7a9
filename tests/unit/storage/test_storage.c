/*
 * test_storage.c -- unit tests for src/storage/storage.c, the generic layer: location schemes,
 * name rules and their messages, error context, feature bits through the fault wrapper, and
 * retry backoff timing. Driver behavior is covered by test_conformance.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/error.h"
#include "storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void test_unknown_schemes(void **state)
{
    (void)state;
    static const char *bad[] = {"s3://bucket/prefix", "ftp://user@host:21/srv/repo",
                                "https://example.com/repo", "S3:bucket", "rclone:remote:path"};
    storage_t *s = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(storage_open(bad[i], true, &s), COFFER_EINVAL);
        assert_non_null(strstr(err_msg(), "not supported by this build"));
        assert_non_null(strstr(err_msg(), "local:/path"));
    }
    assert_int_equal(storage_open("s3://AKIAKEY:secret@host/bucket", false, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "'s3'"));
    assert_null(strstr(err_msg(), "secret")); /* only the scheme is quoted */
    assert_int_equal(storage_open("", false, &s), COFFER_EINVAL);
    assert_int_equal(storage_open(NULL, false, &s), COFFER_EINVAL);
    assert_int_equal(storage_open("local:", true, &s), COFFER_EINVAL);
    assert_int_equal(storage_open("mem:", true, &s), COFFER_EINVAL);
    assert_int_equal(storage_open("mem:bad name", true, &s), COFFER_EINVAL);
    assert_int_equal(storage_open("mem:never-created", false, &s), COFFER_ENOREPO);
    assert_null(s);
}

static void test_options(void **state)
{
    (void)state;
    storage_t *s = NULL;
    const char *kv[] = {"s3.region=eu-west-1", "other.x=1", "s3.region=us-east-2"};
    storage_opts_t o = {.kv = kv, .n = 3};
    assert_string_equal(storage_opt(&o, "s3.region"), "us-east-2"); /* the last one wins */
    assert_null(storage_opt(&o, "s3.reg"));
    assert_null(storage_opt(NULL, "s3.region"));
    /* Options of other drivers are ignored, so one list serves both ends of a copy. */
    assert_int_equal(storage_open_opts("mem:opts-a", true, &o, &s), 0);
    storage_close(s);
    s = NULL;
    const char *bad1[] = {"mem.bogus=secret-value"};
    storage_opts_t b1 = {.kv = bad1, .n = 1};
    assert_int_equal(storage_open_opts("mem:opts-a", false, &b1, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "mem.bogus"));
    assert_null(strstr(err_msg(), "secret-value")); /* values are never quoted */
    const char *bad2[] = {"novalue"};
    storage_opts_t b2 = {.kv = bad2, .n = 1};
    assert_int_equal(storage_open_opts("mem:opts-a", false, &b2, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "key=value"));
    const char *bad3[] = {"bogus=1"};
    storage_opts_t b3 = {.kv = bad3, .n = 1};
    assert_int_equal(storage_open_opts("fault::mem:opts-a", false, &b3, &s), COFFER_EINVAL);
    assert_null(s);
}

static void test_names_and_features(void **state)
{
    (void)state;
    storage_t *s;
    assert_int_equal(storage_open("mem:generic-a", true, &s), 0);
    assert_string_equal(storage_name(s), "mem");
    assert_string_equal(storage_location(s), "mem:generic-a");
    unsigned mem_features = storage_features(s);
    assert_true(mem_features & STORAGE_F_CREATE_ONLY);
    assert_false(mem_features & STORAGE_F_LOCAL);
    storage_close(s);

    assert_int_equal(storage_open("fault::fault::mem:generic-a", false, &s), 0);
    assert_string_equal(storage_name(s), "fault");
    assert_int_equal(storage_features(s), mem_features); /* the wrapped location's */
    storage_close(s);
}

static unsigned occurrences(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_error_context(void **state)
{
    (void)state;
    storage_t *s;
    assert_int_equal(storage_open("fault::fault::mem:generic-b", true, &s), 0);
    assert_int_equal(storage_put(s, "data/3f/3f2a", "x", 1, NULL), 0);
    assert_int_equal(storage_put(s, "data/3f/3f2a", "x", 1, NULL), COFFER_EEXIST);
    assert_int_equal(strncmp(err_msg(), "while writing data/3f/3f2a: ", 28), 0);
    assert_int_equal(occurrences(err_msg(), "while writing"), 1); /* not once per layer */
    assert_non_null(strstr(err_msg(), "already exists"));

    storage_stat_t st;
    assert_int_equal(storage_stat(s, "index/none", &st), COFFER_ENOENT);
    assert_non_null(strstr(err_msg(), "index/none"));
    assert_int_equal(storage_remove(s, "index/none"), COFFER_ENOENT);
    assert_non_null(strstr(err_msg(), "while removing index/none"));

    assert_int_equal(storage_put(s, "bad\nname\x1b[2J", "x", 1, NULL), COFFER_EINVAL);
    assert_null(strchr(err_msg(), '\n')); /* control characters are not echoed */
    assert_null(strchr(err_msg(), 0x1b));
    assert_int_equal(storage_put(s, "a/../b", "x", 1, NULL), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "'..'"));
    char longname[2000];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(storage_put(s, longname, "x", 1, NULL), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "1024"));
    assert_true(strlen(err_msg()) < 300); /* the name is abbreviated */
    storage_close(s);
}

static double elapsed_ms(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static void test_backoff(void **state)
{
    (void)state;
    storage_t *s;
    struct timespec t0;

    /* 5 retries from a 20 ms base: sleeps in [10,20]+[20,40]+[40,80]+[80,160]+[160,320]. */
    setenv("COFFER_STORAGE_RETRY_BASE_MS", "20", 1);
    assert_int_equal(
        storage_open("fault:transient-put=1,transient-count=5:mem:generic-c", true, &s), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(storage_put(s, "a", "x", 1, NULL), 0);
    double ms = elapsed_ms(&t0);
    assert_true(ms >= 300);
    assert_true(ms < 3000);
    storage_close(s);

    setenv("COFFER_STORAGE_RETRY_BASE_MS", "0", 1);
    assert_int_equal(
        storage_open("fault:transient-put=1,transient-count=5:mem:generic-d", true, &s), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(storage_put(s, "a", "x", 1, NULL), 0);
    assert_true(elapsed_ms(&t0) < 250);
    storage_close(s);
    unsetenv("COFFER_STORAGE_RETRY_BASE_MS");
}

static void test_now_probe(void **state)
{
    (void)state;
    storage_t *s;
    int64_t t;
    struct timespec host;
    assert_int_equal(storage_open("mem:generic-e", true, &s), 0); /* mem has no native clock */
    assert_int_equal(storage_now(s, &t), 0);
    clock_gettime(CLOCK_REALTIME, &host);
    int64_t h = (int64_t)host.tv_sec * 1000000000 + host.tv_nsec;
    assert_true(t <= h && t > h - 5000000000ll);
    storage_stat_t st;
    assert_int_equal(storage_stat(s, "maint", &st), COFFER_ENOENT);
    storage_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_schemes), cmocka_unit_test(test_names_and_features),
        cmocka_unit_test(test_error_context),   cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_now_probe),       cmocka_unit_test(test_options),
    };
    unsetenv("COFFER_FAULT");
    return cmocka_run_group_tests_name("storage generic layer", tests, NULL, NULL);
}
