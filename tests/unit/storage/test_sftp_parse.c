/*
 * test_sftp_parse.c -- the SFTP driver's parsers: location forms (ports, IPv6, ~ paths, the
 * string shown in messages) and the extension list of a VERSION reply, including malformed
 * lengths. Error cases of locations are also covered through storage_open in test_sftp.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/error.h"
#include "storage/sftp/sftp_parse.h"

#include <string.h>

static void parse_ok(const char *in, const char *user, const char *host, int port, const char *root,
                     const char *shown)
{
    sftp_location_t l = {0};
    int rc = sftp_location_parse(in, &l);
    if (rc)
        fail_msg("%s: %s", in, err_msg());
    assert_string_equal(l.user, user);
    assert_string_equal(l.host, host);
    assert_int_equal(l.port, port);
    assert_string_equal(l.root, root);
    assert_string_equal(l.shown, shown);
    sftp_location_release(&l);
}

static void test_locations(void **state)
{
    (void)state;
    parse_ok("//backup@nas/srv/repo", "backup", "nas", 22, "/srv/repo",
             "sftp://backup@nas:22/srv/repo");
    parse_ok("//u@10.0.0.5:2222/srv/repo///", "u", "10.0.0.5", 2222, "/srv/repo",
             "sftp://u@10.0.0.5:2222/srv/repo");
    parse_ok("//u@[::1]:47500/x", "u", "::1", 47500, "/x", "sftp://u@[::1]:47500/x");
    parse_ok("//u@[fe80::1]/x", "u", "fe80::1", 22, "/x", "sftp://u@[fe80::1]:22/x");
    parse_ok("//u@h/~/backups/repo", "u", "h", 22, "backups/repo", "sftp://u@h:22/~/backups/repo");
    parse_ok("//u@h/~", "u", "h", 22, ".", "sftp://u@h:22/~/.");
    parse_ok("//u@h/~/", "u", "h", 22, ".", "sftp://u@h:22/~/.");
    parse_ok("//u@h//", "u", "h", 22, "/", "sftp://u@h:22/");
    parse_ok("//first.last@h:1/a%20b", "first.last", "h", 1, "/a%20b",
             "sftp://first.last@h:1/a%20b"); /* no %-decoding */
}

static void test_bad_locations(void **state)
{
    (void)state;
    static const char *bad[] = {"",           "//",         "//u@h",        "//u@h/",
                                "u@h/x",      "//h/x",      "//@h/x",       "//u@/x",
                                "//u@:22/x",  "//u@h:/x",   "//u@h:0/x",    "//u@h:65536/x",
                                "//u@h:2a/x", "//u@[::1/x", "//u@[::1]2/x", "//u@h@g/x",
                                "//u@h]/x",   "//u v@h/x",  "//u:pw@h/x",   "//u@h/a\nb"};
    sftp_location_t l = {.port = 7};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = sftp_location_parse(bad[i], &l);
        if (rc != COFFER_EINVAL)
            fail_msg("'%s' parsed (rc %d)", bad[i], rc);
        assert_int_equal(l.port, 7); /* untouched */
        assert_null(l.user);
    }
    assert_int_equal(sftp_location_parse("//u:hunter2@h/x", &l), COFFER_EINVAL);
    assert_null(strstr(err_msg(), "hunter2"));
    sftp_location_release(NULL);
}

/* Append an SSH string (u32 length + bytes). */
static size_t put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    memcpy(p + 4, s, n);
    return 4 + n;
}

static void test_version_extensions(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t n = 0;
    n += put_str(b + n, "posix-rename@openssh.com");
    n += put_str(b + n, "1");
    n += put_str(b + n, "fsync@openssh.com");
    n += put_str(b + n, "1");
    assert_true(sftp_version_has(b, n, "posix-rename@openssh.com"));
    assert_true(sftp_version_has(b, n, "fsync@openssh.com"));
    assert_false(sftp_version_has(b, n, "hardlink@openssh.com"));
    assert_false(sftp_version_has(b, n, "posix-rename")); /* whole names only */
    assert_false(sftp_version_has(b, 0, "fsync@openssh.com"));
    /* Truncated anywhere: never read past the end, never a false match on the cut pair. */
    for (size_t cut = 0; cut < n; cut++) {
        bool has = sftp_version_has(b, cut, "fsync@openssh.com");
        assert_false(has);
    }
    /* A name length larger than what remains stops the parse. */
    uint8_t evil[8] = {0xff, 0xff, 0xff, 0xf0, 'a', 'b', 'c', 'd'};
    assert_false(sftp_version_has(evil, sizeof evil, "abcd"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locations),
        cmocka_unit_test(test_bad_locations),
        cmocka_unit_test(test_version_extensions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
