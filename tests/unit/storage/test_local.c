/*
 * test_local.c -- unit tests for src/storage/local/local.c beyond the shared conformance
 * suite: file and directory modes, relative and odd root paths, no temp files left by any
 * outcome, and what is not an object (directories, symlinks, a file in the way).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[512];

static unsigned tmp_files_under(const char *dir)
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
        if (!strncmp(de->d_name, ".tmp-", 5))
            n++;
        else if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            n += tmp_files_under(p);
    }
    closedir(d);
    return n;
}

static storage_t *open_root(const char *sub, char *root, size_t root_size)
{
    storage_t *s;
    snprintf(root, root_size, "%s/%s", tmpdir, sub);
    int rc = storage_open(root, true, &s);
    if (rc)
        fail_msg("open %s: %s", root, err_msg());
    return s;
}

static void test_modes(void **state)
{
    (void)state;
    char root[600], p[800];
    struct stat st;
    mode_t old = umask(022);
    storage_t *s = open_root("modes/deep/repo", root, sizeof root);
    assert_int_equal(stat(root, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(storage_put(s, "data/ab/x", "x", 1, NULL), 0);
    snprintf(p, sizeof p, "%s/data/ab/x", root);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    snprintf(p, sizeof p, "%s/data/ab", root);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    storage_put_opts_t ow = {.overwrite = true};
    assert_int_equal(storage_put(s, "sessions/h", "1", 1, &ow), 0);
    assert_int_equal(storage_put(s, "sessions/h", "2", 1, &ow), 0);
    snprintf(p, sizeof p, "%s/sessions/h", root);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(tmp_files_under(root), 0);
    storage_close(s);
    umask(old);
}

static void test_relative_root(void **state)
{
    (void)state;
    char cwd[600], p[800];
    storage_t *s, *s2;
    struct stat st;
    buf_t b;
    buf_init(&b);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(storage_open("rel/repo", true, &s), 0);
    assert_int_equal(storage_open("local:rel/repo/", false, &s2), 0);
    assert_string_equal(storage_location(s), "rel/repo");
    assert_int_equal(chdir("/"), 0); /* the root was resolved at open */
    assert_int_equal(storage_put(s, "config", "c", 1, NULL), 0);
    assert_int_equal(storage_get(s2, "config", 0, 0, &b), 0);
    snprintf(p, sizeof p, "%s/rel/repo/config", tmpdir);
    assert_int_equal(stat(p, &st), 0);
    storage_close(s);
    storage_close(s2);
    assert_int_equal(chdir(cwd), 0);
    buf_release(&b);

    snprintf(p, sizeof p, "%s/rel//repo///", tmpdir);
    assert_int_equal(storage_open(p, false, &s), 0);
    assert_int_equal(storage_get(s, "config", 0, 0, &b), 0);
    storage_close(s);
    buf_release(&b);
}

static void test_not_a_repository(void **state)
{
    (void)state;
    char p[600];
    storage_t *s = NULL;
    snprintf(p, sizeof p, "%s/plainfile", tmpdir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(storage_open(p, false, &s), COFFER_ENOREPO);
    assert_non_null(strstr(err_msg(), p));
    snprintf(p, sizeof p, "%s/nope/deeper", tmpdir);
    assert_int_equal(storage_open(p, false, &s), COFFER_ENOREPO);
    assert_non_null(strstr(err_msg(), "run coffer init first"));
    assert_null(s);
    struct stat st;
    assert_int_equal(stat(p, &st), -1); /* create=false made nothing */
}

static void test_not_objects(void **state)
{
    (void)state;
    char root[600], p[800], target[800];
    storage_t *s = open_root("notobj", root, sizeof root);
    buf_t b;
    storage_stat_t st;
    buf_init(&b);
    assert_int_equal(storage_put(s, "data/ab/x", "x", 1, NULL), 0);
    assert_int_equal(storage_get(s, "data/ab", 0, 0, &b), COFFER_ENOENT);
    assert_int_equal(storage_stat(s, "data", &st), COFFER_ENOENT);
    assert_int_equal(storage_remove(s, "data/ab"), COFFER_ENOENT);

    snprintf(target, sizeof target, "%s/data/ab/x", root);
    snprintf(p, sizeof p, "%s/link", root);
    assert_int_equal(symlink(target, p), 0);
    assert_int_equal(storage_get(s, "link", 0, 0, &b), COFFER_ENOENT);
    assert_int_equal(storage_stat(s, "link", &st), COFFER_ENOENT);

    /* A file where a directory must go: a clean error, no temp file. */
    assert_int_equal(storage_put(s, "config", "c", 1, NULL), 0);
    int rc = storage_put(s, "config/sub", "y", 1, NULL);
    assert_true(rc == COFFER_EIO || rc == COFFER_ENOENT);
    assert_non_null(strstr(err_msg(), "config/sub"));
    assert_int_equal(storage_get(s, "config/sub", 0, 0, &b), COFFER_ENOENT);
    assert_int_equal(tmp_files_under(root), 0);
    assert_int_equal(b.len, 0);
    storage_close(s);
    buf_release(&b);
}

static void test_no_sync(void **state)
{
    (void)state;
    char root[600];
    storage_t *s = open_root("nosync", root, sizeof root);
    storage_put_opts_t fast = {.sync = false};
    assert_int_equal(storage_put(s, "index/a", "a", 1, &fast), 0);
    assert_int_equal(storage_put(s, "index/a", "b", 1, &fast), COFFER_EEXIST);
    assert_int_equal(tmp_files_under(root), 0);
    int64_t t;
    assert_int_equal(storage_now(s, &t), 0);
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
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_relative_root),
        cmocka_unit_test(test_not_a_repository),
        cmocka_unit_test(test_not_objects),
        cmocka_unit_test(test_no_sync),
    };
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/coffer-local-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    unsetenv("COFFER_FAULT");
    int failed = cmocka_run_group_tests_name("storage local driver", tests, NULL, NULL);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? 1 : 0;
}
