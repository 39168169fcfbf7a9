/*
 * test_sched.c -- unit tests for src/sched/sched.c's core, driven by a fake clock: due
 * times, no overlap (skipped slots), the concurrency limit, the missed-run policy from a
 * state file, every-N copy tasks, run_on, a DST day, and the state file round trip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/timefmt.h"
#include "sched/sched.h"

static int64_t at(const char *s)
{
    int64_t ns;
    assert_int_equal(time_parse_rfc3339(s, &ns), 0);
    return ns / 1000000000;
}

static cfg_t *conf(const char *text)
{
    cfg_t *c = NULL;
    if (cfg_load_buffer("test", text, strlen(text), false, &c))
        fail_msg("%s", err_msg());
    return c;
}

#define REPO "repositories: {r: {url: /x, password: p}}\n"

static void test_due_and_overlap(void **state)
{
    (void)state;
    cfg_t *c = conf(REPO "jobs:\n"
                         "  - {name: a, type: files, paths: [/x], repositories: [r],\n"
                         "     schedule: \"*/5 * * * *\", timezone: UTC}\n"
                         "  - {name: manual, type: files, paths: [/x], repositories: [r]}\n");
    sched_core_t s;
    assert_int_equal(sched_core_init(&s, c, at("2026-01-01T00:02:00Z"), NULL, NULL), 0);
    assert_int_equal(s.n, 1); /* a job without a schedule is not scheduled */
    assert_true(sched_core_wakeup(&s) == at("2026-01-01T00:05:00Z"));
    assert_int_equal(sched_core_take(&s, at("2026-01-01T00:04:59Z")), -1);
    assert_int_equal(sched_core_take(&s, at("2026-01-01T00:05:00Z")), 0);
    assert_int_equal(sched_core_take(&s, at("2026-01-01T00:05:01Z")), -1); /* running */
    assert_true(s.tasks[0].next_s == at("2026-01-01T00:10:00Z"));
    sched_core_done(&s, 0, at("2026-01-01T00:06:00Z"));
    assert_int_equal(sched_core_take(&s, at("2026-01-01T00:10:00Z")), 0);
    /* still running at 00:15 and 00:20: those slots are skipped, not caught up */
    assert_int_equal(sched_core_take(&s, at("2026-01-01T00:15:00Z")), -1);
    assert_int_equal(sched_core_take(&s, at("2026-01-01T00:20:30Z")), -1);
    sched_core_done(&s, 0, at("2026-01-01T00:21:00Z"));
    assert_int_equal(s.skipped, 1);
    assert_true(s.tasks[0].next_s == at("2026-01-01T00:25:00Z"));
    assert_int_equal(sched_core_take(&s, at("2026-01-01T00:21:01Z")), -1);
    sched_core_release(&s);
    cfg_free(c);
}

static void test_concurrency(void **state)
{
    (void)state;
    cfg_t *c = conf(REPO "jobs:\n"
                         "  - {name: a, type: files, paths: [/x], repositories: [r],\n"
                         "     schedule: \"0 * * * *\", timezone: UTC}\n"
                         "  - {name: b, type: files, paths: [/x], repositories: [r],\n"
                         "     schedule: \"0 * * * *\", timezone: UTC}\n"
                         "server: {max_concurrent: 1}\n");
    sched_core_t s;
    assert_int_equal(sched_core_init(&s, c, at("2026-01-01T00:30:00Z"), NULL, NULL), 0);
    ssize_t first = sched_core_take(&s, at("2026-01-01T01:00:00Z"));
    assert_true(first >= 0);
    assert_int_equal(sched_core_take(&s, at("2026-01-01T01:00:00Z")), -1); /* limit */
    sched_core_done(&s, (size_t)first, at("2026-01-01T01:20:00Z"));
    ssize_t second = sched_core_take(&s, at("2026-01-01T01:20:00Z"));
    assert_true(second >= 0 && second != first);
    assert_true(s.tasks[second].next_s == at("2026-01-01T02:00:00Z"));
    sched_core_release(&s);
    cfg_free(c);
}

static void test_missed(void **state)
{
    (void)state;
    const char *jobs = "jobs:\n"
                       "  - {name: a, type: files, paths: [/x], repositories: [r],\n"
                       "     schedule: \"0 3 * * *\", timezone: UTC}\n";
    char text[1024];
    snprintf(text, sizeof text, "%s%s", REPO, jobs);
    cfg_t *c = conf(text);
    sched_state_t st = {0};
    sched_state_entry_t *e = sched_state_get(&st, "a", false, true);
    e->last_run_s = at("2026-01-01T03:00:00Z");
    sched_core_t s;
    /* down over the 2026-01-02 03:00 slot: run once at start */
    int64_t now = at("2026-01-02T10:00:00Z");
    assert_int_equal(sched_core_init(&s, c, now, &st, NULL), 0);
    assert_int_equal(sched_core_take(&s, now), 0);
    assert_true(s.tasks[0].next_s == at("2026-01-03T03:00:00Z"));
    sched_core_release(&s);
    /* not missed: the last run was the latest slot */
    e->last_run_s = at("2026-01-02T03:00:00Z");
    assert_int_equal(sched_core_init(&s, c, now, &st, NULL), 0);
    assert_int_equal(sched_core_take(&s, now), -1);
    sched_core_release(&s);
    cfg_free(c);
    /* missed: skip */
    snprintf(text, sizeof text, "%s%sserver: {missed: skip}\n", REPO, jobs);
    c = conf(text);
    e->last_run_s = at("2026-01-01T03:00:00Z");
    assert_int_equal(sched_core_init(&s, c, now, &st, NULL), 0);
    assert_int_equal(sched_core_take(&s, now), -1);
    assert_true(sched_core_wakeup(&s) == at("2026-01-03T03:00:00Z"));
    sched_core_release(&s);
    cfg_free(c);
    sched_state_release(&st);
}

static bool only_here(char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], "here"))
            return true;
    return n == 0;
}

static void test_copy_and_run_on(void **state)
{
    (void)state;
    cfg_t *c = conf("repositories: {a: {url: /a, password: p}, b: {url: /b, password: p}}\n"
                    "jobs:\n"
                    "  - {name: elsewhere, type: files, paths: [/x], repositories: [a],\n"
                    "     schedule: \"* * * * *\", run_on: [other-host]}\n"
                    "  - {name: mine, type: files, paths: [/x], repositories: [a],\n"
                    "     schedule: \"* * * * *\", run_on: [here, x]}\n"
                    "copy:\n  - {from: a, to: b, every: 10m}\n");
    sched_core_t s;
    int64_t now = at("2026-05-01T12:00:30Z");
    assert_int_equal(sched_core_init(&s, c, now, NULL, only_here), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(sched_core_find(&s, "elsewhere", false), -1);
    ssize_t k = sched_core_find(&s, "a-to-b", true);
    assert_true(k >= 0);
    /* a copy task that never ran starts at once, then every 10 minutes */
    assert_int_equal(sched_core_take(&s, now), k);
    assert_true(s.tasks[k].next_s == now + 600);
    sched_core_done(&s, (size_t)k, now + 5);
    ssize_t m = sched_core_take(&s, at("2026-05-01T12:01:00Z"));
    assert_int_equal(m, sched_core_find(&s, "mine", false));
    sched_core_release(&s);
    cfg_free(c);
}

static void test_dst(void **state)
{
    (void)state;
    cfg_t *c = conf(REPO "jobs:\n"
                         "  - {name: a, type: files, paths: [/x], repositories: [r],\n"
                         "     schedule: \"30 2 * * *\", timezone: Europe/Berlin}\n");
    sched_core_t s;
    assert_int_equal(sched_core_init(&s, c, at("2026-03-28T12:00:00Z"), NULL, NULL), 0);
    /* 02:30 does not exist on 2026-03-29: it runs once, at 03:00 CEST (01:00Z) */
    assert_true(sched_core_wakeup(&s) == at("2026-03-29T01:00:00Z"));
    assert_int_equal(sched_core_take(&s, at("2026-03-29T01:00:00Z")), 0);
    sched_core_done(&s, 0, at("2026-03-29T01:05:00Z"));
    assert_true(sched_core_wakeup(&s) == at("2026-03-30T00:30:00Z"));
    sched_core_release(&s);
    cfg_free(c);
}

static void test_state_file(void **state)
{
    (void)state;
    char path[256];
    const char *t = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/state-%d.json", t ? t : "/tmp", (int)getpid());
    sched_state_t st = {0}, back = {0};
    assert_int_equal(sched_state_load(path, &back), 0); /* missing: empty */
    assert_int_equal(back.n, 0);
    sched_state_get(&st, "job1", false, true)->last_run_s = 100;
    sched_state_get(&st, "job1", false, true)->last_success_s = 90;
    sched_state_get(&st, "job1", true, true)->last_run_s = 7;
    assert_int_equal(sched_state_save(path, &st), 0);
    assert_int_equal(sched_state_load(path, &back), 0);
    assert_int_equal(back.n, 2);
    assert_true(sched_state_get(&back, "job1", false, false)->last_success_s == 90);
    assert_true(sched_state_get(&back, "job1", true, false)->last_run_s == 7);
    sched_state_release(&back);
    FILE *f = fopen(path, "w");
    fputs("{not json", f);
    fclose(f);
    assert_int_equal(sched_state_load(path, &back), COFFER_ECORRUPT);
    assert_non_null(strstr(err_msg(), "move it away"));
    unlink(path);
    sched_state_release(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_and_overlap),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_missed),
        cmocka_unit_test(test_copy_and_run_on),
        cmocka_unit_test(test_dst),
        cmocka_unit_test(test_state_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
