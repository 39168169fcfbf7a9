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
    static const char *bad[] = {"ftp://user@host:21/srv/repo", "https://example.com/repo",
                                "S3:bucket", "rclone:remote:path"};
    storage_t *s = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(storage_open(bad[i], true, &s), COFFER_EINVAL);
        assert_non_null(strstr(err_msg(), "not supported by this build"));
        assert_non_null(strstr(err_msg(), "local:/path"));
    }
    assert_int_equal(storage_open("s3x://AKIAKEY:secret@host/bucket", false, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "'s3x'"));
    assert_null(strstr(err_msg(), "secret")); /* only the scheme is quoted */
    assert_int_equal(storage_open("", false, &s), COFFER_EINVAL);
    assert_int_equal(storage_open(NULL, false, &s), COFFER_EINVAL);
    assert_int_equal(storage_open("local:", true, &s), COFFER_EINVAL);
    assert_int_equal(storage_open("mem:", true, &s), COFFER_EINVAL);
    assert_int_equal(storage_open("mem:bad name", true, &s), COFFER_EINVAL);
    assert_int_equal(storage_open("mem:never-created", false, &s), COFFER_ENOREPO);
    assert_null(s);
}

/* S3 locations that are refused before any request is sent (no server needed). */
static void test_s3_locations(void **state)
{
    (void)state;
    storage_t *s = NULL;
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "test-secret-value", 1);
    static const struct {
        const char *loc, *want;
    } bad[] = {
        {"s3://AKIAKEY:secret@host/bucket", "credentials never go in the URL"},
        {"s3://127.0.0.1:9", "no bucket"},
        {"s3://127.0.0.1:9/", "no bucket"},
        {"s3://127.0.0.1:9/Bad_Bucket", "not valid"},
        {"s3://127.0.0.1:9/ok-bucket/bad prefix", "prefix"},
        {"s3:", "incomplete"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(storage_open(bad[i].loc, true, &s), COFFER_EINVAL);
        if (!strstr(err_msg(), bad[i].want))
            fail_msg("%s: got '%s'", bad[i].loc, err_msg());
        assert_null(strstr(err_msg(), "secret"));
    }
    const char *http[] = {"s3.scheme=http"};
    storage_opts_t o = {.kv = http, .n = 1};
    assert_int_equal(storage_open_opts("s3://192.0.2.1:9000/bkt", true, &o, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "refusing plain http"));
    const char *badopt[] = {"s3.regoin=x"};
    storage_opts_t o2 = {.kv = badopt, .n = 1};
    assert_int_equal(storage_open_opts("s3://127.0.0.1:9/bkt", true, &o2, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "s3.regoin"));
    const char *small[] = {"s3.part-size=1MiB"};
    storage_opts_t o3 = {.kv = small, .n = 1};
    assert_int_equal(storage_open_opts("s3://127.0.0.1:9/bkt", true, &o3, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "5MiB"));
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(storage_open("s3://127.0.0.1:9/bkt", true, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "AWS_SECRET_ACCESS_KEY"));
    unsetenv("AWS_ACCESS_KEY_ID");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/coffer-test-credentials", 1);
    assert_int_equal(storage_open("s3://127.0.0.1:9/bkt", true, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "credentials"));
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    assert_null(s);
}

static void test_rate_limits(void **state)
{
    (void)state;
    storage_t *s = NULL;
    const char *kv[] = {"limit-upload=256", "limit-download=256KiB/s"};
    storage_opts_t o = {.kv = kv, .n = 2};
    assert_int_equal(storage_open_opts("mem:rate", true, &o, &s), 0);
    static uint8_t data[512 * 1024];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* 256 KiB of burst, then 256 KiB more at 256 KiB/s: about one second */
    assert_int_equal(storage_put(s, "data/a", data, sizeof data, NULL), 0);
    buf_t b;
    buf_init(&b);
    assert_int_equal(storage_get(s, "data/a", 0, 0, &b), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(el > 1.8); /* both directions waited about a second each */
    assert_true(el < 6);
    buf_release(&b);
    storage_close(s);
    s = NULL;
    const char *bad[] = {"limit-upload=fast"};
    storage_opts_t ob = {.kv = bad, .n = 1};
    assert_int_equal(storage_open_opts("mem:rate", false, &ob, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "KiB per second"));
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
        cmocka_unit_test(test_s3_locations),    cmocka_unit_test(test_rate_limits),
    };
    unsetenv("COFFER_FAULT");
    return cmocka_run_group_tests_name("storage generic layer", tests, NULL, NULL);
}
