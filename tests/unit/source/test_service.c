/*
 * test_service.c -- unit tests for src/source/service.c and the pure parts of the service
 * sources (postgres, mysql, ldap): database selection, version checks, identifier quoting,
 * the LDIF attribute filter, secrets from the environment and files, program lookup, the
 * process runner (environment additions reach the child and never its argv; stderr's error
 * line is picked for messages).
 *
 * Works in a private directory under $TMPDIR (or /tmp), removed afterwards; runs /bin/sh and
 * /usr/bin/env, which every Debian system has.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/error.h"
#include "source/ldap/ldap.h"
#include "source/mysql/mysql.h"
#include "source/postgres/postgres.h"
#include "source/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_select(void **state)
{
    (void)state;
    char *avail[] = {"app", "other", "postgres"};
    char *names[] = {"other", "app", "other"};
    char *excl[] = {"postgres"};
    const char **out = NULL;
    size_t n = 0;
    assert_int_equal(svc_select("postgres", "h:1", avail, 3, names, 3, false, NULL, 0, &out, &n),
                     0);
    assert_int_equal(n, 2); /* duplicates removed, order kept */
    assert_string_equal(out[0], "other");
    assert_string_equal(out[1], "app");
    free(out);
    assert_int_equal(svc_select("postgres", "h:1", avail, 3, NULL, 0, true, excl, 1, &out, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(out[0], "app");
    assert_string_equal(out[1], "other");
    free(out);
    char *unknown[] = {"nope"};
    out = NULL;
    assert_int_equal(svc_select("mysql", "h:1", avail, 3, unknown, 1, false, NULL, 0, &out, &n),
                     COFFER_ENOENT);
    assert_null(out);
    assert_non_null(strstr(err_msg(), "mysql: database \"nope\" does not exist on h:1"));
    assert_non_null(strstr(err_msg(), "app, other, postgres"));
    char *all_excl[] = {"app", "other", "postgres"};
    assert_int_equal(svc_select("postgres", "h:1", avail, 3, NULL, 0, true, all_excl, 3, &out, &n),
                     COFFER_EINVAL);
}

static void test_pg_versions(void **state)
{
    (void)state;
    assert_int_equal(postgres_tool_major("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n"),
                     15);
    assert_int_equal(postgres_tool_major("pg_dump (PostgreSQL) 9.6.24\n"), 9);
    assert_int_equal(postgres_tool_major("something else"), 0);
    assert_int_equal(postgres_check_version("h:5432", 150004, 15), 0);
    assert_int_equal(postgres_check_version("h:5432", 130010, 15), 0);
    assert_int_equal(postgres_check_version("h:5432", 90624, 15), 0);
    assert_int_equal(postgres_check_version("h:5432", 160002, 15), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "pg_dump 15 is older than the server at h:5432 "
                                      "(PostgreSQL 16)"));
    assert_non_null(strstr(err_msg(), "install postgresql-client-16"));
    assert_int_equal(postgres_check_version("h:5432", 90124, 15), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "PostgreSQL 9.1, which is not supported"));
}

static void test_mysql_helpers(void **state)
{
    (void)state;
    assert_int_equal(mysql_check_version("h:3306", "10.11.19-MariaDB-0+deb12u1"), 0);
    assert_int_equal(mysql_check_version("h:3306", "8.0.36"), 0);
    assert_int_equal(mysql_check_version("h:3306", "5.5.62-log"), 0);
    assert_int_equal(mysql_check_version("h:3306", "5.1.73"), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "MySQL 5.1, which is not supported"));
    assert_int_equal(mysql_check_version("h:3306", "garbage"), COFFER_EINVAL);
    buf_t b;
    buf_init(&b);
    assert_int_equal(mysql_quote_ident("a`b c", &b), 0);
    assert_string_equal((char *)b.data, "`a``b c`");
    buf_release(&b);
}

static int collect(void *ctx, const uint8_t *p, size_t n)
{
    return buf_append(ctx, p, n);
}

static void test_ldif_filter(void **state)
{
    (void)state;
    const char *in = "dn: uid=a,dc=x\r\n"
                     "objectClass: person\n"
                     "entryUUID: 1234\n"
                     "cn: A\n"
                     "createTimestamp: 2026\n"
                     "description:: bG9uZyB2YWx1ZQ==\n"
                     "jpegPhoto;binary:: AAAA\n"
                     " BBBB\n"
                     "ENTRYCSN: x\n"
                     " continued csn\n"
                     "sn: B\n"
                     "\n"
                     "# comment\n"
                     "dn: uid=b,dc=x\n"
                     "modifiersName: cn=admin\n"
                     "cn: last line without newline";
    const char *drop[] = {"entryUUID", "createTimestamp", "entryCSN", "modifiersName", NULL};
    const char *want = "dn: uid=a,dc=x\r\n"
                       "objectClass: person\n"
                       "cn: A\n"
                       "description:: bG9uZyB2YWx1ZQ==\n"
                       "jpegPhoto;binary:: AAAA\n"
                       " BBBB\n"
                       "sn: B\n"
                       "\n"
                       "# comment\n"
                       "dn: uid=b,dc=x\n"
                       "cn: last line without newline";
    /* every split point gives the same output */
    for (size_t step = 1; step <= strlen(in); step += (step < 8 ? 1 : 7)) {
        buf_t out;
        buf_init(&out);
        ldif_filter_t f;
        ldif_filter_init(&f, drop, collect, &out);
        size_t len = strlen(in);
        for (size_t off = 0; off < len; off += step) {
            size_t k = len - off < step ? len - off : step;
            assert_int_equal(ldif_filter_feed(&f, (const uint8_t *)in + off, k, off + k == len), 0);
        }
        assert_int_equal(out.len, strlen(want));
        assert_memory_equal(out.data, want, out.len);
        ldif_filter_release(&f);
        buf_release(&out);
    }
    /* jpegPhoto;binary is dropped by its base name */
    const char *drop2[] = {"jpegPhoto", NULL};
    buf_t out;
    buf_init(&out);
    ldif_filter_t f;
    ldif_filter_init(&f, drop2, collect, &out);
    const char *in2 = "jpegPhoto;binary:: AAAA\n BBBB\ncn: x\n";
    assert_int_equal(ldif_filter_feed(&f, (const uint8_t *)in2, strlen(in2), true), 0);
    assert_string_equal((char *)out.data, "cn: x\n");
    ldif_filter_release(&f);
    buf_release(&out);
}

typedef struct tdir {
    char path[512];
} tdir_t;

static int setup(void **state)
{
    tdir_t *t = calloc(1, sizeof *t);
    const char *base = getenv("TMPDIR");
    snprintf(t->path, sizeof t->path, "%s/test_service.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(t->path))
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tdir_t *t = *state;
    svc_tmpdir_remove(t->path);
    free(t);
    return 0;
}

static void test_secrets(void **state)
{
    tdir_t *t = *state;
    char *s = NULL, path[600];
    unsetenv("SVC_TEST_PW");
    unsetenv("SVC_TEST_PW_FILE");
    assert_int_equal(svc_secret_from_env("SVC_TEST_PW", &s), 0);
    assert_null(s);
    setenv("SVC_TEST_PW", "direct", 1);
    assert_int_equal(svc_secret_from_env("SVC_TEST_PW", &s), 0);
    assert_string_equal(s, "direct");
    svc_secret_free(s);
    unsetenv("SVC_TEST_PW");
    snprintf(path, sizeof path, "%s/pw", t->path);
    FILE *f = fopen(path, "w");
    fputs("from file \n", f);
    fclose(f);
    setenv("SVC_TEST_PW_FILE", path, 1);
    assert_int_equal(svc_secret_from_env("SVC_TEST_PW", &s), 0);
    assert_string_equal(s, "from file "); /* one trailing newline removed, nothing else */
    svc_secret_free(s);
    f = fopen(path, "w");
    fwrite("a\0b", 1, 3, f);
    fclose(f);
    s = NULL;
    assert_int_equal(svc_secret_from_env("SVC_TEST_PW", &s), COFFER_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err_msg(), "contains a NUL byte"));
    snprintf(path, sizeof path, "%s/missing", t->path);
    setenv("SVC_TEST_PW_FILE", path, 1);
    assert_int_equal(svc_secret_from_env("SVC_TEST_PW", &s), COFFER_ENOENT);
    assert_non_null(strstr(err_msg(), "SVC_TEST_PW_FILE"));
    unsetenv("SVC_TEST_PW_FILE");

    char *dir = NULL, *file = NULL;
    setenv("TMPDIR", t->path, 1);
    assert_int_equal(svc_tmpdir_new(&dir), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(svc_write_private(dir, "secret", "pw", 2, &file), 0);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 2);
    assert_int_equal(svc_write_private(dir, "secret", "pw", 2, &s), COFFER_EEXIST);
    svc_tmpdir_remove(dir);
    assert_int_not_equal(stat(dir, &st), 0);
    free(dir);
    free(file);
}

static void test_names_and_tools(void **state)
{
    (void)state;
    char out[256];
    svc_server_dirname("127.0.0.1:5432", out, sizeof out);
    assert_string_equal(out, "127.0.0.1_5432");
    svc_server_dirname("/var/run/postgresql:5432", out, sizeof out);
    assert_string_equal(out, "_var_run_postgresql_5432");
    svc_server_dirname("", out, sizeof out);
    assert_string_equal(out, "default");
    char *p = NULL;
    assert_int_equal(svc_find_tool("x", "sh", "dash", &p), 0);
    assert_non_null(strstr(p, "/sh"));
    free(p);
    p = NULL;
    assert_int_equal(svc_find_tool("postgres", "no-such-tool-xyz", "postgresql-client", &p),
                     COFFER_ENOENT);
    assert_null(p);
    assert_string_equal(err_msg(),
                        "postgres: no-such-tool-xyz not found in PATH: install postgresql-client");
}

static void test_process(void **state)
{
    (void)state;
    char *env_path = NULL, *sh = NULL;
    assert_int_equal(svc_find_tool("t", "env", "coreutils", &env_path), 0);
    assert_int_equal(svc_find_tool("t", "sh", "dash", &sh), 0);
    /* env_add reaches the child, replaces a same-named variable, and is not in argv */
    setenv("SVC_TEST_VAR", "old", 1);
    char *argv[] = {env_path, NULL};
    char *env_add[] = {"SVC_TEST_VAR=new", "SVC_TEST_PASSWORD=hunter2", NULL};
    buf_t out;
    buf_init(&out);
    assert_int_equal(svc_capture(argv, env_add, NULL, "env", &out), 0);
    assert_non_null(strstr((char *)out.data, "SVC_TEST_VAR=new\n"));
    assert_null(strstr((char *)out.data, "SVC_TEST_VAR=old"));
    assert_non_null(strstr((char *)out.data, "SVC_TEST_PASSWORD=hunter2\n"));
    unsetenv("SVC_TEST_VAR");
    /* stdin data reaches the program */
    char *cat[] = {sh, "-c", "cat", NULL};
    assert_int_equal(svc_capture(cat, NULL, "hello\n", "cat", &out), 0);
    assert_string_equal((char *)out.data, "hello\n");
    /* a failure names the program and picks the error line of its stderr */
    char *bad[] = {sh, "-c",
                   "echo 'prog: error: it broke' >&2; echo '\tHint: try again' >&2; exit 3", NULL};
    assert_int_equal(svc_capture(bad, NULL, NULL, "svc: the step", &out), COFFER_EIO);
    assert_string_equal(err_msg(), "svc: the step failed (exit 3): prog: error: it broke");
    char *killed[] = {sh, "-c", "kill -9 $$", NULL};
    assert_int_equal(svc_run(killed, NULL, "svc: killed step"), COFFER_EIO);
    assert_string_equal(err_msg(), "svc: killed step was killed by signal 9");
    char *none[] = {"/nonexistent/program", NULL};
    assert_int_equal(svc_run(none, NULL, "svc: missing"), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "cannot run /nonexistent/program"));
    buf_release(&out);
    free(env_path);
    free(sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_pg_versions),
        cmocka_unit_test(test_mysql_helpers),
        cmocka_unit_test(test_ldif_filter),
        cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
        cmocka_unit_test(test_names_and_tools),
        cmocka_unit_test(test_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
