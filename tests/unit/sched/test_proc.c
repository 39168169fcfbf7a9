/*
 * test_proc.c -- unit tests for src/sched/proc.c (child processes: environment overlay and
 * removal, stdout/stderr capture, exit codes, timeout killing the whole process group, the
 * stop flag, nice) and job_worse from src/sched/job.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/timefmt.h"
#include "sched/job.h"
#include "sched/proc.h"

static int sh(const char *script, const proc_env_t *env, size_t n_env, int timeout_s,
              volatile sig_atomic_t *stop, proc_result_t *res)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    proc_opts_t o = {.path = "/bin/sh",
                     .argv = argv,
                     .env = env,
                     .n_env = n_env,
                     .timeout_s = timeout_s,
                     .stop = stop,
                     .has_nice = true,
                     .nice = 5};
    proc_result_init(res);
    return proc_run(&o, res);
}

static void test_env_and_capture(void **state)
{
    (void)state;
    setenv("PROC_TEST_DROP", "should-vanish", 1);
    setenv("PROC_TEST_KEEP", "kept", 1);
    proc_env_t env[] = {
        {"PROC_TEST_NEW", "first"}, {"PROC_TEST_DROP", NULL}, {"PROC_TEST_NEW", "second"}};
    proc_result_t r;
    assert_int_equal(sh("echo \"$PROC_TEST_NEW ${PROC_TEST_DROP-unset} $PROC_TEST_KEEP\"; "
                        "echo err >&2; cut -d' ' -f19 /proc/$$/stat; exit 7",
                        env, 3, 0, NULL, &r),
                     0);
    assert_int_equal(r.exit_code, 7);
    assert_false(r.timed_out);
    assert_string_equal((char *)r.out.data, "second unset kept\n5\n");
    assert_string_equal((char *)r.err.data, "err\n");
    proc_result_release(&r);
}

static void test_timeout_kills_group(void **state)
{
    (void)state;
    proc_result_t r;
    int64_t t0 = time_monotonic_ns();
    /* the grandchild (sleep) holds the pipes: only killing the group ends it */
    assert_int_equal(sh("sleep 30 & sleep 30; echo never", NULL, 0, 1, NULL, &r), 0);
    assert_true(r.timed_out);
    assert_int_equal(r.exit_code, 128 + SIGTERM);
    assert_true(time_monotonic_ns() - t0 < 10 * 1000000000LL);
    assert_int_equal(r.out.len, 0);
    proc_result_release(&r);
}

static void test_stop_flag(void **state)
{
    (void)state;
    volatile sig_atomic_t stop = 1;
    proc_result_t r;
    assert_int_equal(sh("trap 'kill $!; exit 130' INT; sleep 30 & wait", NULL, 0, 0, &stop, &r), 0);
    assert_true(r.stopped);
    assert_int_equal(r.exit_code, 130);
    proc_result_release(&r);
}

static void test_not_found(void **state)
{
    (void)state;
    char *argv[] = {"nope", NULL};
    proc_opts_t o = {.path = "/nonexistent/program", .argv = argv};
    proc_result_t r;
    proc_result_init(&r);
    assert_int_equal(proc_run(&o, &r), 0);
    assert_int_equal(r.exit_code, 127);
    proc_result_release(&r);
}

static void test_worse(void **state)
{
    (void)state;
    assert_int_equal(job_worse(0, 3), 3);
    assert_int_equal(job_worse(3, 0), 3);
    assert_int_equal(job_worse(3, 1), 1);
    assert_int_equal(job_worse(10, 3), 10);
    assert_int_equal(job_worse(10, 1), 10); /* between failures the first stays */
    assert_int_equal(job_worse(0, 130), 130);
    assert_int_equal(job_worse(0, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_and_capture), cmocka_unit_test(test_timeout_kills_group),
        cmocka_unit_test(test_stop_flag),       cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_worse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
