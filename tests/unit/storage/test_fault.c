/*
 * test_fault.c -- unit tests for src/storage/fault/fault.c: every fault kind does what its
 * spec says, the generic layer's retries cure transient faults and lost replies, kill-* end the
 * process with status 137 (checked in fork()ed children), and COFFER_FAULT wraps plain paths.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "storage/storage.h"

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[512];
static unsigned seq;

/* A fresh location "fault:SPEC:mem:fault-N" (or over a fresh local directory). */
static storage_t *open_fault(const char *spec, bool local, char *out_inner, size_t inner_size)
{
    char inner[700], loc[900];
    storage_t *s = NULL;
    seq++;
    if (local)
        snprintf(inner, sizeof inner, "%s/r%u", tmpdir, seq);
    else
        snprintf(inner, sizeof inner, "mem:fault-%ld-%u", (long)getpid(), seq);
    snprintf(loc, sizeof loc, "fault:%s:%s", spec, inner);
    int rc = storage_open(loc, true, &s);
    if (rc)
        fail_msg("open %s: %s", loc, err_msg());
    if (out_inner)
        snprintf(out_inner, inner_size, "%s", inner);
    return s;
}

static int put(storage_t *s, const char *name)
{
    return storage_put(s, name, name, strlen(name), NULL);
}

static bool exists(storage_t *s, const char *name)
{
    storage_stat_t st;
    return storage_stat(s, name, &st) == 0;
}

static void test_fail_put(void **state)
{
    (void)state;
    storage_t *s = open_fault("fail-put=2", false, NULL, 0);
    assert_int_equal(put(s, "a"), 0);
    assert_int_equal(put(s, "b"), COFFER_EIO);
    assert_non_null(strstr(err_msg(), "fail-put"));
    assert_non_null(strstr(err_msg(), "while writing b"));
    assert_false(exists(s, "b"));
    assert_int_equal(put(s, "c"), 0);
    assert_int_equal(put(s, "b"), 0); /* only the 2nd put fails */
    storage_close(s);
}

static void test_transient_put(void **state)
{
    (void)state;
    storage_t *s = open_fault("transient-put=2", false, NULL, 0);
    assert_int_equal(put(s, "a"), 0);
    assert_int_equal(put(s, "b"), 0); /* failed once, retried by storage.c */
    assert_true(exists(s, "b"));
    assert_int_equal(put(s, "c"), 0);
    storage_close(s);
}

static void test_retries_give_up(void **state)
{
    (void)state;
    storage_t *s = open_fault("transient-put=1,transient-count=6", false, NULL, 0);
    assert_int_equal(put(s, "a"), COFFER_EIO); /* 1 attempt + 5 retries, all failing */
    assert_non_null(strstr(err_msg(), "gave up after 6 attempts"));
    assert_false(exists(s, "a"));
    storage_close(s);

    s = open_fault("transient-put=1,transient-count=5", false, NULL, 0);
    assert_int_equal(put(s, "a"), 0); /* the 6th attempt succeeds */
    storage_close(s);
}

static void test_enospc_put(void **state)
{
    (void)state;
    storage_t *s = open_fault("enospc-put=1", false, NULL, 0);
    assert_int_equal(put(s, "data/ab/x"), COFFER_ENOSPC);
    assert_non_null(strstr(err_msg(), "nothing was written"));
    assert_false(exists(s, "data/ab/x"));
    assert_int_equal(put(s, "data/ab/x"), 0);
    storage_close(s);
}

static void test_crash_after_put(void **state)
{
    (void)state;
    buf_t b;
    int64_t t;
    buf_init(&b);
    storage_t *s = open_fault("crash-after-put=2", false, NULL, 0);
    assert_int_equal(put(s, "a"), 0);
    assert_int_equal(put(s, "b"), 0);
    assert_int_equal(put(s, "c"), COFFER_EIO);
    assert_non_null(strstr(err_msg(), "simulated crash"));
    assert_int_equal(put(s, "d"), COFFER_EIO);
    assert_int_equal(storage_remove(s, "a"), COFFER_EIO);
    assert_int_equal(storage_now(s, &t), COFFER_EIO);
    assert_int_equal(storage_get(s, "a", 0, 0, &b), 0); /* reads still work */
    assert_true(exists(s, "b"));
    assert_false(exists(s, "c"));
    storage_close(s);

    s = open_fault("crash-after-put=0", false, NULL, 0);
    assert_int_equal(put(s, "a"), COFFER_EIO);
    storage_close(s);
    buf_release(&b);
}

static unsigned count_tree_files(const char *dir)
{
    unsigned n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[1200];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            n += count_tree_files(p);
        else
            n++;
    }
    closedir(d);
    return n;
}

/* Run puts a, b, c in a child on `loc`; return the child's exit status (-1 if signaled). */
static int child_puts(const char *loc, const char *env_fault)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        storage_t *s;
        if (env_fault)
            setenv("COFFER_FAULT", env_fault, 1);
        if (storage_open(loc, true, &s))
            _exit(2);
        put(s, "data/aa/a");
        put(s, "data/aa/b");
        put(s, "data/aa/c");
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_kill_at_put(void **state)
{
    (void)state;
    char loc[900], root[700];
    storage_t *s;
    snprintf(root, sizeof root, "%s/kill-at", tmpdir);
    snprintf(loc, sizeof loc, "fault:kill-at-put=2:%s", root);
    assert_int_equal(child_puts(loc, NULL), 137);
    assert_int_equal(storage_open(root, false, &s), 0);
    assert_true(exists(s, "data/aa/a"));
    assert_false(exists(s, "data/aa/b")); /* killed before writing */
    char dir[800];
    snprintf(dir, sizeof dir, "%s/data/aa", root);
    assert_int_equal(count_tree_files(dir), 1);
    storage_close(s);
}

static void test_kill_after_put(void **state)
{
    (void)state;
    char loc[900], root[700];
    storage_t *s;
    snprintf(root, sizeof root, "%s/kill-after", tmpdir);
    snprintf(loc, sizeof loc, "fault:kill-after-put=2:%s", root);
    assert_int_equal(child_puts(loc, NULL), 137);
    assert_int_equal(storage_open(root, false, &s), 0);
    assert_true(exists(s, "data/aa/a"));
    assert_true(exists(s, "data/aa/b")); /* killed right after it landed */
    assert_false(exists(s, "data/aa/c"));
    storage_close(s);
}

static void test_env_kill(void **state)
{
    (void)state;
    char root[700];
    storage_t *s;
    snprintf(root, sizeof root, "%s/env-kill", tmpdir);
    assert_int_equal(child_puts(root, "kill-at-put=3"), 137); /* a plain path, like the CLI */
    assert_int_equal(storage_open(root, false, &s), 0);
    assert_true(exists(s, "data/aa/b"));
    assert_false(exists(s, "data/aa/c"));
    storage_close(s);
    snprintf(root, sizeof root, "%s/env-none", tmpdir);
    assert_int_equal(child_puts(root, NULL), 0);
}

static void test_get_faults(void **state)
{
    (void)state;
    uint8_t data[101];
    buf_t b;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    buf_init(&b);

    storage_t *s = open_fault("fail-get=2", false, NULL, 0);
    assert_int_equal(storage_put(s, "x", data, sizeof data, NULL), 0);
    assert_int_equal(storage_get(s, "x", 0, 0, &b), 0);
    assert_int_equal(buf_append_str(&b, ""), 0);
    size_t keep = b.len;
    assert_int_equal(storage_get(s, "x", 0, 0, &b), COFFER_EIO);
    assert_non_null(strstr(err_msg(), "while reading x"));
    assert_int_equal(b.len, keep);
    assert_int_equal(storage_get(s, "x", 0, 0, &b), 0);
    storage_close(s);

    s = open_fault("short-get=1", false, NULL, 0);
    assert_int_equal(storage_put(s, "x", data, sizeof data, NULL), 0);
    buf_reset(&b);
    assert_int_equal(storage_get(s, "x", 0, 0, &b), 0);
    assert_int_equal(b.len, 50);
    assert_memory_equal(b.data, data, 50);
    buf_reset(&b);
    assert_int_equal(storage_get(s, "x", 0, 0, &b), 0);
    assert_int_equal(b.len, sizeof data);
    storage_close(s);

    s = open_fault("flip-get=1", false, NULL, 0);
    assert_int_equal(storage_put(s, "x", data, sizeof data, NULL), 0);
    buf_reset(&b);
    assert_int_equal(buf_append_str(&b, "pre"), 0);
    assert_int_equal(storage_get(s, "x", 0, 0, &b), 0);
    assert_int_equal(b.len, 3 + sizeof data);
    assert_memory_equal(b.data, "pre", 3);
    int bits = 0;
    size_t where = 0;
    for (size_t i = 0; i < sizeof data; i++) {
        int d = __builtin_popcount(b.data[3 + i] ^ data[i]);
        if (d)
            where = i;
        bits += d;
    }
    assert_int_equal(bits, 1);
    assert_int_equal(where, sizeof data / 2);
    storage_close(s);

    s = open_fault("transient-get=1", false, NULL, 0);
    assert_int_equal(storage_put(s, "x", data, sizeof data, NULL), 0);
    buf_reset(&b);
    assert_int_equal(buf_append_str(&b, "pre"), 0);
    assert_int_equal(storage_get(s, "x", 10, 20, &b), 0); /* retried */
    assert_int_equal(b.len, 23);
    assert_memory_equal(b.data + 3, data + 10, 20);
    storage_close(s);
    buf_release(&b);
}

static int count_cb(void *ud, const char *name, const storage_stat_t *st)
{
    (void)name;
    (void)st;
    (*(unsigned *)ud)++;
    return 0;
}

static void test_list_remove_faults(void **state)
{
    (void)state;
    unsigned n = 0;
    storage_t *s = open_fault("fail-list=1,fail-remove=1", true, NULL, 0);
    assert_int_equal(put(s, "index/a"), 0);
    assert_int_equal(storage_list(s, "index/", count_cb, &n), COFFER_EIO);
    assert_non_null(strstr(err_msg(), "fail-list"));
    assert_int_equal(n, 0);
    assert_int_equal(storage_list(s, "index/", count_cb, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(storage_remove(s, "index/a"), COFFER_EIO);
    assert_true(exists(s, "index/a"));
    assert_int_equal(storage_remove(s, "index/a"), 0);
    assert_false(exists(s, "index/a"));
    storage_close(s);
}

static void test_lost_replies(void **state)
{
    (void)state;
    storage_t *s = open_fault("lost-reply-put=1,lost-reply-remove=1", false, NULL, 0);
    /* The retry finds the object it wrote itself: success, not EEXIST. */
    assert_int_equal(put(s, "snapshots/a"), 0);
    assert_true(exists(s, "snapshots/a"));
    /* The retry finds the object already gone: success, not ENOENT. */
    assert_int_equal(storage_remove(s, "snapshots/a"), 0);
    assert_false(exists(s, "snapshots/a"));
    storage_close(s);

    /* A retry that finds different content (someone else's object) is still EEXIST. */
    s = open_fault("transient-put=2", false, NULL, 0);
    assert_int_equal(storage_put(s, "c", "one", 3, NULL), 0);
    assert_int_equal(storage_put(s, "c", "two", 3, NULL), COFFER_EEXIST);
    assert_non_null(strstr(err_msg(), "other content"));
    assert_non_null(strstr(err_msg(), "while writing c"));
    storage_close(s);
}

static void test_counters_per_handle(void **state)
{
    (void)state;
    char inner[700], loc[900];
    storage_t *s1 = open_fault("fail-put=1", false, inner, sizeof inner);
    storage_t *s2;
    snprintf(loc, sizeof loc, "fault:fail-put=1:%s", inner);
    assert_int_equal(storage_open(loc, false, &s2), 0);
    assert_int_equal(put(s1, "a"), COFFER_EIO);
    assert_int_equal(put(s2, "a"), COFFER_EIO); /* its own first put */
    assert_int_equal(put(s1, "a"), 0);
    assert_int_equal(put(s2, "a"), COFFER_EEXIST);
    storage_close(s1);
    storage_close(s2);
}

struct worker {
    storage_t *s;
    int id;
    int failures;
};

static void *put_many(void *arg)
{
    struct worker *w = arg;
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "w%d/%d", w->id, i);
        int rc = put(w->s, name);
        if (rc == COFFER_EIO)
            w->failures++;
        else if (rc)
            w->failures += 100;
    }
    return NULL;
}

static void test_counters_atomic(void **state)
{
    (void)state;
    storage_t *s = open_fault("fail-put=37", false, NULL, 0);
    struct worker w[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.s = s, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, put_many, &w[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
    }
    assert_int_equal(failures, 1);
    storage_close(s);
}

static unsigned occurrences(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_env(void **state)
{
    (void)state;
    char root[700];
    storage_t *s;
    snprintf(root, sizeof root, "%s/env", tmpdir);

    setenv("COFFER_FAULT", "fail-put=1", 1);
    assert_int_equal(storage_open(root, true, &s), 0);
    assert_string_equal(storage_name(s), "fault");
    assert_string_equal(storage_location(s), root);
    assert_true(storage_features(s) & STORAGE_F_LOCAL);
    assert_int_equal(put(s, "a"), COFFER_EIO);
    assert_int_equal(put(s, "a"), 0);
    storage_close(s);

    /* crash-after-put also stops the clock: a crashed process writes no probe either. */
    int64_t t;
    setenv("COFFER_FAULT", "crash-after-put=0", 1);
    assert_int_equal(storage_open(root, false, &s), 0);
    assert_int_equal(storage_now(s, &t), COFFER_EIO);
    assert_int_equal(occurrences(err_msg(), "while reading the clock"), 1);
    storage_close(s);
    setenv("COFFER_FAULT", "fail-put=1", 1);

    /* An explicit fault: location is not wrapped a second time. */
    char loc[800];
    snprintf(loc, sizeof loc, "fault::%s", root);
    assert_int_equal(storage_open(loc, false, &s), 0);
    assert_int_equal(put(s, "b"), 0);
    storage_close(s);

    setenv("COFFER_FAULT", "no-such-fault=1", 1);
    assert_int_equal(storage_open(root, false, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "no-such-fault"));
    setenv("COFFER_FAULT", "fail-put=1:mem:x", 1);
    assert_int_equal(storage_open(root, false, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "COFFER_FAULT"));
    setenv("COFFER_FAULT", "fail-put=1", 1);
    assert_int_equal(storage_open("s3x://bucket/x", false, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "'s3x'"));

    unsetenv("COFFER_FAULT");
    assert_int_equal(storage_open(root, false, &s), 0);
    assert_string_equal(storage_name(s), "local"); /* inert when unset */
    assert_int_equal(put(s, "c"), 0);
    storage_close(s);
    setenv("COFFER_FAULT", "", 1);
    assert_int_equal(storage_open(root, false, &s), 0);
    assert_string_equal(storage_name(s), "local"); /* and when empty */
    storage_close(s);
    unsetenv("COFFER_FAULT");
}

static void test_bad_specs(void **state)
{
    (void)state;
    static const char *bad[] = {
        "fault:/tmp/x",                        /* no SPEC: part */
        "fault:bogus=1:mem:x",                 /* unknown key */
        "fault:fail-put:mem:x",                /* no value */
        "fault:fail-put=:mem:x",               /* empty value */
        "fault:fail-put=abc:mem:x",            /* not a number */
        "fault:fail-put=0:mem:x",              /* counts start at 1 */
        "fault:fail-put=1,fail-put=2:mem:x",   /* twice */
        "fault:transient-count=101:mem:x",     /* over the cap */
        "fault:fail-put=99999999999999:mem:x", /* over the cap */
        "fault:mem:x",                         /* "mem" is not a spec */
    };
    storage_t *s = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = storage_open(bad[i], true, &s);
        if (rc != COFFER_EINVAL)
            fail_msg("%s: got %d, want EINVAL", bad[i], rc);
    }
    assert_null(s);
    assert_int_equal(storage_open("fault:,,fail-get=3,:mem:ok", true, &s), 0);
    storage_close(s);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_put),        cmocka_unit_test(test_transient_put),
        cmocka_unit_test(test_retries_give_up), cmocka_unit_test(test_enospc_put),
        cmocka_unit_test(test_crash_after_put), cmocka_unit_test(test_kill_at_put),
        cmocka_unit_test(test_kill_after_put),  cmocka_unit_test(test_env_kill),
        cmocka_unit_test(test_get_faults),      cmocka_unit_test(test_list_remove_faults),
        cmocka_unit_test(test_lost_replies),    cmocka_unit_test(test_counters_per_handle),
        cmocka_unit_test(test_counters_atomic), cmocka_unit_test(test_env),
        cmocka_unit_test(test_bad_specs),
    };
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/coffer-fault-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    unsetenv("COFFER_FAULT");
    setenv("COFFER_STORAGE_RETRY_BASE_MS", "1", 1); /* keep retries fast */
    int failed = cmocka_run_group_tests_name("storage fault driver", tests, NULL, NULL);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? 1 : 0;
}
