/*
 * test_creds.c -- S3 credential sources and their order: option files, *_FILE variables,
 * AWS_* variables, the shared credentials file with profiles; errors name the variable or
 * file and never the secret.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/error.h"
#include "storage/s3/creds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static void write_file(const char *name, const char *text, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void clear_env(void)
{
    static const char *vars[] = {"AWS_ACCESS_KEY_ID",
                                 "AWS_SECRET_ACCESS_KEY",
                                 "AWS_SESSION_TOKEN",
                                 "AWS_ACCESS_KEY_ID_FILE",
                                 "AWS_SECRET_ACCESS_KEY_FILE",
                                 "AWS_SESSION_TOKEN_FILE",
                                 "AWS_PROFILE",
                                 "AWS_SHARED_CREDENTIALS_FILE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("HOME", dir, 1);
}

static void test_order(void **state)
{
    (void)state;
    char ak[512], sk[512], ini[512];
    s3_creds_t c;
    clear_env();
    assert_int_equal(s3_creds_load(NULL, &c), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "AWS_ACCESS_KEY_ID"));

    write_file("credentials",
               "# comment\n[default]\naws_access_key_id = AKDEF\naws_secret_access_key=SKDEF\n"
               "\n[ci] \r\naws_access_key_id=AKCI\naws_secret_access_key = SK CI \n"
               "aws_session_token=TOK\n",
               ini, sizeof ini);
    setenv("AWS_SHARED_CREDENTIALS_FILE", ini, 1);
    assert_int_equal(s3_creds_load(NULL, &c), 0);
    assert_string_equal(c.access_key, "AKDEF");
    assert_string_equal(c.secret_key, "SKDEF");
    assert_null(c.session_token);
    s3_creds_release(&c);
    setenv("AWS_PROFILE", "ci", 1);
    assert_int_equal(s3_creds_load(NULL, &c), 0);
    assert_string_equal(c.secret_key, "SK CI");
    assert_string_equal(c.session_token, "TOK");
    s3_creds_release(&c);
    const char *kv[] = {"s3.profile=nope"};
    storage_opts_t o = {.kv = kv, .n = 1};
    assert_int_equal(s3_creds_load(&o, &c), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "'nope'"));

    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
    assert_int_equal(s3_creds_load(NULL, &c), 0);
    assert_string_equal(c.access_key, "AKENV");
    s3_creds_release(&c);

    write_file("ak", "AKFILE\n", ak, sizeof ak);
    write_file("sk", "  SKFILE  \n", sk, sizeof sk);
    setenv("AWS_ACCESS_KEY_ID_FILE", ak, 1);
    setenv("AWS_SECRET_ACCESS_KEY_FILE", sk, 1);
    assert_int_equal(s3_creds_load(NULL, &c), 0);
    assert_string_equal(c.access_key, "AKFILE");
    assert_string_equal(c.secret_key, "SKFILE");
    s3_creds_release(&c);

    char ak2[512];
    write_file("ak2", "AKOPT", ak2, sizeof ak2);
    char o1[600], o2[600];
    snprintf(o1, sizeof o1, "s3.access-key-file=%s", ak2);
    snprintf(o2, sizeof o2, "s3.secret-key-file=%s", sk);
    const char *kv2[] = {o1, o2};
    storage_opts_t opts = {.kv = kv2, .n = 2};
    assert_int_equal(s3_creds_load(&opts, &c), 0);
    assert_string_equal(c.access_key, "AKOPT");
    s3_creds_release(&c);
    clear_env();
}

static void test_errors(void **state)
{
    (void)state;
    char sk[512];
    s3_creds_t c;
    clear_env();
    setenv("AWS_SECRET_ACCESS_KEY", "only-the-secret", 1);
    assert_int_equal(s3_creds_load(NULL, &c), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "AWS_ACCESS_KEY_ID is not"));
    assert_null(strstr(err_msg(), "only-the-secret"));
    clear_env();
    write_file("empty", "\n \n", sk, sizeof sk);
    setenv("AWS_ACCESS_KEY_ID_FILE", "/nonexistent/ak", 1);
    setenv("AWS_SECRET_ACCESS_KEY_FILE", sk, 1);
    assert_int_equal(s3_creds_load(NULL, &c), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "AWS_ACCESS_KEY_ID_FILE"));
    write_file("ak", "AK", sk, sizeof sk);
    setenv("AWS_ACCESS_KEY_ID_FILE", sk, 1);
    write_file("sk2", "two\nlines\n", sk, sizeof sk);
    setenv("AWS_SECRET_ACCESS_KEY_FILE", sk, 1);
    assert_int_equal(s3_creds_load(NULL, &c), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "one non-empty line"));
    assert_null(strstr(err_msg(), "lines"));
    clear_env();
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/coffer-creds-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_order), cmocka_unit_test(test_errors)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    static const char *files[] = {"credentials", "ak", "sk", "ak2", "empty", "sk2"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    return rc;
}
