/*
 * test_snapshot.c -- unit tests for src/repo/snapshot.c: JSON round trip of every field
 * (nanosecond times including one before 1970, paths, tags, tree, parent, status, the whole
 * summary, errors, command argv and exit status, program), defaults for absent optional
 * fields, the error cap (SNAP_MAX_ERRORS kept, the count exact), tag de-duplication, unknown
 * fields ignored, and COFFER_ECORRUPT (snapshot left empty) for a missing or invalid time or
 * tree, an invalid parent, wrong field types, non-JSON and non-object input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "repo/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static void full_snapshot(snapshot_t *s, int64_t t)
{
    snapshot_init(s);
    s->time_ns = t;
    s->host = xstrdup("db-1.example");
    s->user = xstrdup("backup");
    s->job = xstrdup("nightly-pg");
    s->kind = xstrdup("command");
    assert_int_equal(snapshot_add_path(s, "/data"), 0);
    assert_int_equal(snapshot_add_path(s, "/etc/with \"quotes\" and \\ and \xc3\xa9"), 0);
    assert_int_equal(snapshot_add_tag(s, "nightly"), 0);
    assert_int_equal(snapshot_add_tag(s, "pg"), 0);
    for (int i = 0; i < 32; i++) {
        s->tree[i] = (uint8_t)(i * 7);
        s->parent[i] = (uint8_t)(255 - i);
    }
    s->has_parent = true;
    s->status = xstrdup("partial");
    s->summary = (snap_summary_t){.files_new = 1,
                                  .files_changed = 2,
                                  .files_unchanged = 3,
                                  .dirs = 4,
                                  .others = 5,
                                  .bytes_read = 1ull << 40,
                                  .bytes_added = 7,
                                  .bytes_stored = 8,
                                  .blobs_added = 9,
                                  .duration_s = 1.5};
    assert_int_equal(snapshot_add_error(s, "/data/x", "vanished while reading"), 0);
    assert_int_equal(snapshot_add_error(s, "/data/y", "permission denied"), 0);
    s->command_argv = calloc(2, sizeof *s->command_argv);
    assert_non_null(s->command_argv);
    s->command_argv[0] = xstrdup("pg_dump");
    s->command_argv[1] = xstrdup("db");
    s->n_command_argv = 2;
    s->has_exit_status = true;
    s->exit_status = -2;
    s->program = xstrdup("coffer 0.1.0");
}

static void assert_strv_equal(char **a, size_t na, char **b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_string_equal(a[i], b[i]);
}

static void assert_snapshot_equal(const snapshot_t *a, const snapshot_t *b)
{
    assert_true(a->time_ns == b->time_ns);
    assert_string_equal(a->host, b->host);
    assert_string_equal(a->user, b->user);
    assert_string_equal(a->job, b->job);
    assert_string_equal(a->kind, b->kind);
    assert_strv_equal(a->paths, a->n_paths, b->paths, b->n_paths);
    assert_strv_equal(a->tags, a->n_tags, b->tags, b->n_tags);
    assert_memory_equal(a->tree, b->tree, 32);
    assert_int_equal(a->has_parent, b->has_parent);
    if (a->has_parent)
        assert_memory_equal(a->parent, b->parent, 32);
    assert_string_equal(a->status, b->status);
    assert_true(a->summary.files_new == b->summary.files_new);
    assert_true(a->summary.files_changed == b->summary.files_changed);
    assert_true(a->summary.files_unchanged == b->summary.files_unchanged);
    assert_true(a->summary.dirs == b->summary.dirs);
    assert_true(a->summary.others == b->summary.others);
    assert_true(a->summary.bytes_read == b->summary.bytes_read);
    assert_true(a->summary.bytes_added == b->summary.bytes_added);
    assert_true(a->summary.bytes_stored == b->summary.bytes_stored);
    assert_true(a->summary.blobs_added == b->summary.blobs_added);
    assert_true(a->summary.duration_s == b->summary.duration_s);
    assert_true(a->summary.errors == b->summary.errors);
    assert_int_equal(a->n_errors, b->n_errors);
    for (size_t i = 0; i < a->n_errors; i++) {
        assert_string_equal(a->errors[i].path, b->errors[i].path);
        assert_string_equal(a->errors[i].message, b->errors[i].message);
    }
    assert_strv_equal(a->command_argv, a->n_command_argv, b->command_argv, b->n_command_argv);
    assert_int_equal(a->has_exit_status, b->has_exit_status);
    if (a->has_exit_status)
        assert_int_equal(a->exit_status, b->exit_status);
    assert_string_equal(a->program, b->program);
}

static void roundtrip(const snapshot_t *s, snapshot_t *d)
{
    buf_t b;
    buf_init(&b);
    assert_int_equal(snapshot_encode(s, &b), 0);
    snapshot_init(d);
    int rc = snapshot_decode(b.data, b.len, "snap", d);
    if (rc)
        fail_msg("decode failed: %s\n%s", err_msg(), (const char *)b.data);
    buf_release(&b);
}

static void test_roundtrip_all_fields(void **state)
{
    (void)state;
    const int64_t times[] = {1795262400123456789ll, 0, 1, -1, -86400000000001ll};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        snapshot_t s, d;
        full_snapshot(&s, times[i]);
        roundtrip(&s, &d);
        assert_snapshot_equal(&s, &d);
        snapshot_release(&s);
        snapshot_release(&d);
    }
}

static void test_defaults(void **state)
{
    (void)state;
    snapshot_t s, d;
    snapshot_init(&s);
    s.time_ns = 1700000000000000000ll;
    roundtrip(&s, &d);
    assert_true(d.time_ns == s.time_ns);
    assert_false(d.has_parent);
    assert_string_equal(d.status, "complete");
    assert_string_equal(d.kind, "files");
    assert_int_equal(d.n_paths, 0);
    assert_int_equal(d.n_tags, 0);
    assert_int_equal(d.n_errors, 0);
    assert_int_equal(d.n_command_argv, 0);
    assert_false(d.has_exit_status);
    assert_memory_equal(d.tree, s.tree, 32);
    snapshot_release(&d);

    /* exit status without argv */
    s.has_exit_status = true;
    s.exit_status = 0;
    roundtrip(&s, &d);
    assert_true(d.has_exit_status);
    assert_int_equal(d.exit_status, 0);
    snapshot_release(&d);
    snapshot_release(&s);
}

static void test_error_cap_and_tags(void **state)
{
    (void)state;
    snapshot_t s, d;
    snapshot_init(&s);
    for (int i = 0; i < SNAP_MAX_ERRORS + 25; i++)
        assert_int_equal(snapshot_add_error(&s, i % 2 ? "/p" : NULL, "m"), 0);
    assert_int_equal(s.n_errors, SNAP_MAX_ERRORS);
    assert_true(s.summary.errors == SNAP_MAX_ERRORS + 25);
    assert_string_equal(s.errors[0].path, "");
    assert_int_equal(snapshot_add_tag(&s, "a"), 0);
    assert_int_equal(snapshot_add_tag(&s, "a"), 0);
    assert_int_equal(snapshot_add_tag(&s, "b"), 0);
    assert_int_equal(s.n_tags, 2);
    assert_true(snapshot_has_tag(&s, "b"));
    assert_false(snapshot_has_tag(&s, "c"));
    roundtrip(&s, &d);
    assert_int_equal(d.n_errors, SNAP_MAX_ERRORS);
    assert_true(d.summary.errors == SNAP_MAX_ERRORS + 25);
    assert_int_equal(d.n_tags, 2);
    snapshot_release(&s);
    snapshot_release(&d);
    snapshot_release(NULL);

    /* the path and tag caps */
    snapshot_init(&s);
    for (int i = 0; i < SNAP_MAX_TAGS; i++) {
        char t[16];
        snprintf(t, sizeof t, "t%d", i);
        assert_int_equal(snapshot_add_tag(&s, t), 0);
    }
    assert_int_equal(snapshot_add_tag(&s, "one-more"), COFFER_ELIMIT);
    snapshot_release(&s);
}

#define TREE_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void expect_corrupt(const char *json)
{
    snapshot_t s;
    snapshot_init(&s);
    int rc = snapshot_decode(json, strlen(json), "snapshots/x", &s);
    if (rc != COFFER_ECORRUPT)
        fail_msg("expected COFFER_ECORRUPT for %s, got %d", json, rc);
    assert_non_null(strstr(err_msg(), "snapshots/x"));
    /* released and re-initialized */
    assert_null(s.host);
    assert_null(s.paths);
    assert_int_equal(s.n_paths, 0);
    assert_false(s.has_parent);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    /* minimal valid, with unknown fields ignored */
    const char *ok = "{\"time\":\"2026-11-21T10:00:00.5Z\",\"tree\":\"" TREE_HEX "\","
                     "\"future\":{\"x\":[1,2]},\"version\":1}";
    snapshot_t s;
    snapshot_init(&s);
    assert_int_equal(snapshot_decode(ok, strlen(ok), "ok", &s), 0);
    assert_int_equal(s.tree[1], 0x11);
    assert_true(s.time_ns % 1000000000 == 500000000);
    snapshot_release(&s);
    /* an offset time is converted to UTC */
    const char *off = "{\"time\":\"2026-11-21T12:00:00+02:00\",\"tree\":\"" TREE_HEX "\"}";
    const char *utc = "{\"time\":\"2026-11-21T10:00:00Z\",\"tree\":\"" TREE_HEX "\"}";
    snapshot_t a, b;
    snapshot_init(&a);
    snapshot_init(&b);
    assert_int_equal(snapshot_decode(off, strlen(off), "off", &a), 0);
    assert_int_equal(snapshot_decode(utc, strlen(utc), "utc", &b), 0);
    assert_true(a.time_ns == b.time_ns);
    snapshot_release(&a);
    snapshot_release(&b);

    expect_corrupt("{\"tree\":\"" TREE_HEX "\",\"host\":\"h\",\"paths\":[\"/a\"]}");
    expect_corrupt("{\"time\":\"2026-11-21T10:00:00Z\",\"host\":\"h\",\"paths\":[\"/a\"]}");
    expect_corrupt("{\"time\":\"yesterday\",\"tree\":\"" TREE_HEX "\"}");
    expect_corrupt("{\"time\":\"2026-11-21T10:00:00\",\"tree\":\"" TREE_HEX "\"}");
    expect_corrupt("{\"time\":12345,\"tree\":\"" TREE_HEX "\"}");
    expect_corrupt("{\"time\":\"2026-11-21T10:00:00Z\",\"tree\":\"abc\"}");
    expect_corrupt("{\"time\":\"2026-11-21T10:00:00Z\",\"tree\":\"" TREE_HEX "00\"}");
    expect_corrupt("{\"time\":\"2026-11-21T10:00:00Z\",\"tree\":null}");
    expect_corrupt("{\"time\":\"2026-11-21T10:00:00Z\",\"tree\":\"" TREE_HEX "\","
                   "\"parent\":\"zz\",\"host\":\"h\"}");
    expect_corrupt("{\"time\":\"2026-11-21T10:00:00Z\",\"tree\":\"" TREE_HEX "\","
                   "\"host\":5}");
    expect_corrupt("{\"time\":\"2026-11-21T10:00:00Z\",\"tree\":\"" TREE_HEX "\","
                   "\"paths\":\"/a\"}");
    expect_corrupt("{\"time\":\"2026-11-21T10:00:00Z\",\"tree\":\"" TREE_HEX "\","
                   "\"paths\":[\"/a\",7]}");
    expect_corrupt("{\"time\":\"2026-11-21T10:00:00Z\",\"tree\":\"" TREE_HEX "\","
                   "\"tags\":[null]}");
    expect_corrupt("[1,2,3]");
    expect_corrupt("\"just a string\"");
    expect_corrupt("{\"time\":");
    expect_corrupt("");
    /* a JSON text with an embedded NUL is not accepted as its prefix */
    const char nul[] = "{\"time\":\"2026-11-21T10:00:00Z\",\"tree\":\"" TREE_HEX "\"}\0junk";
    snapshot_init(&s);
    assert_int_equal(snapshot_decode(nul, sizeof nul - 1, "nul", &s), COFFER_ECORRUPT);
    snapshot_release(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_fields),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_error_cap_and_tags),
        cmocka_unit_test(test_decode_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
