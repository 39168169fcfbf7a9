/*
 * test_metrics.c -- unit tests for src/sched/metrics.c (rendering, counters by result, label
 * escaping, textfile write and read-back) and src/sched/notify.c's message building and
 * level threshold.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "sched/metrics.h"
#include "sched/notify.h"

static job_result_t result(const char *job, int exit_code, const char *status, int64_t end_s)
{
    static job_target_result_t t[2];
    memset(t, 0, sizeof t);
    t[0].repo = "local";
    t[0].bytes_added = 1000;
    snprintf(t[0].snapshot, sizeof t[0].snapshot, "%s", "abcdef0123456789");
    snprintf(t[0].status, sizeof t[0].status, "complete");
    t[1].repo = "s3";
    t[1].bytes_added = 24;
    t[1].exit_code = exit_code;
    t[1].error = exit_code ? "s3: unreachable" : NULL;
    job_result_t r = {.job = (char *)job,
                      .exit_code = exit_code,
                      .level = exit_code == 0 ? CFG_LEVEL_INFO : CFG_LEVEL_ERROR,
                      .status = status,
                      .start_ns = (end_s - 3) * 1000000000LL,
                      .end_ns = end_s * 1000000000LL,
                      .duration_s = 3.25,
                      .bytes_added = 1024,
                      .error = exit_code ? "s3: unreachable" : NULL,
                      .targets = t,
                      .n_targets = 2};
    return r;
}

static void test_render(void **state)
{
    (void)state;
    metrics_t *m = metrics_new();
    assert_non_null(m);
    assert_int_equal(metrics_declare(m, "nightly", false, 1800000000), 0);
    assert_int_equal(metrics_declare(m, "we\"ird\\", false, 0), 0);
    job_result_t ok = result("nightly", 0, "success", 1700000000);
    job_result_t bad = result("nightly", 1, "failed", 1700000100);
    assert_int_equal(metrics_record(m, &ok, false), 0);
    assert_int_equal(metrics_record(m, &bad, false), 0);
    assert_int_equal(metrics_set_repo(m, "local", 4096, 2), 0);
    buf_t b;
    buf_init(&b);
    assert_int_equal(metrics_render(m, NULL, &b), 0);
    const char *t = (const char *)b.data;
    assert_non_null(strstr(t, "coffer_up 1\n"));
    assert_non_null(strstr(t, "coffer_job_last_success_timestamp_seconds{job=\"nightly\"} "
                              "1700000000\n"));
    assert_non_null(strstr(t, "coffer_job_last_run_timestamp_seconds{job=\"nightly\"} "
                              "1700000100\n"));
    assert_non_null(strstr(t, "coffer_job_runs_total{job=\"nightly\",result=\"success\"} 1\n"));
    assert_non_null(strstr(t, "coffer_job_runs_total{job=\"nightly\",result=\"failed\"} 1\n"));
    assert_non_null(strstr(t, "coffer_job_last_exit_code{job=\"nightly\"} 1\n"));
    assert_non_null(strstr(t, "coffer_backup_bytes_added_total{job=\"nightly\",repository="
                              "\"local\"} 2000\n"));
    assert_non_null(strstr(t, "coffer_repository_size_bytes{repository=\"local\"} 4096\n"));
    assert_non_null(strstr(t, "coffer_job_next_run_timestamp_seconds{job=\"nightly\"} "
                              "1800000000\n"));
    assert_non_null(strstr(t, "{job=\"we\\\"ird\\\\\"}"));
    assert_non_null(strstr(t, "# TYPE coffer_job_runs_total counter\n"));
    /* only one job: no other job's series */
    assert_int_equal(metrics_render(m, "nightly", &b), 0);
    assert_null(strstr((const char *)b.data, "ird"));
    /* textfile: atomic write and read-back of the last success */
    char dir[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/mtest.XXXXXX", tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(metrics_write_textfile(dir, "nightly", (const char *)b.data), 0);
    assert_true(metrics_textfile_last_success(dir, "nightly") == 1700000000);
    assert_true(metrics_textfile_last_success(dir, "other") == 0);
    assert_int_equal(metrics_write_textfile("/nonexistent/dir", "x", "y"), COFFER_ENOENT);
    char p[512];
    snprintf(p, sizeof p, "%s/coffer-nightly.prom", dir);
    unlink(p);
    rmdir(dir);
    buf_release(&b);
    metrics_free(m);
}

static void test_notify_message(void **state)
{
    (void)state;
    job_result_t bad = result("nightly", 1, "failed", 1700000100);
    char *body = NULL;
    assert_int_equal(notify_body_json(&bad, &body), 0);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "job")), "nightly");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(j, "repository")), "local,s3");
    assert_string_equal(json_string_value(json_object_get(j, "snapshot")), "abcdef0123456789");
    assert_string_equal(json_string_value(json_object_get(j, "error")), "s3: unreachable");
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_added")), 1024);
    assert_true(json_real_value(json_object_get(j, "duration_seconds")) == 3.25);
    const char *text = json_string_value(json_object_get(j, "text"));
    assert_non_null(strstr(text, "job nightly FAILED"));
    assert_non_null(strstr(text, "s3: unreachable"));
    assert_int_equal(json_array_size(json_object_get(j, "repositories")), 2);
    json_decref(j);
    free(body);
    cfg_notify_t n = {.level = CFG_LEVEL_ERROR};
    job_result_t ok = result("nightly", 0, "success", 1700000000);
    assert_true(notify_wanted(&n, &bad));
    assert_false(notify_wanted(&n, &ok));
    n.level = CFG_LEVEL_INFO;
    assert_true(notify_wanted(&n, &ok));
    char *only[] = {"other"};
    n.jobs = only;
    n.n_jobs = 1;
    assert_false(notify_wanted(&n, &bad));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_notify_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
