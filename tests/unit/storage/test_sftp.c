/*
 * test_sftp.c -- the SFTP driver's checks that need no server: location syntax, options,
 * credentials from files, and an unreachable port. The driver against a real sshd is tested
 * by tests/integration/test_sftp.sh (conformance suite, round trip, host keys, drops).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/error.h"
#include "storage/storage.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A loopback port with nothing listening: bind one, note it, close it. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void expect_einval(const char *loc, const char *needle)
{
    storage_t *s = (storage_t *)&s; /* sentinel: must stay untouched */
    storage_t *orig = s;
    int rc = storage_open(loc, true, &s);
    if (rc != COFFER_EINVAL)
        fail_msg("%s: expected EINVAL, got %d (%s)", loc, rc, err_msg());
    assert_ptr_equal(s, orig);
    if (!strstr(err_msg(), needle))
        fail_msg("%s: message lacks '%s': %s", loc, needle, err_msg());
}

static void test_bad_locations(void **state)
{
    (void)state;
    expect_einval("sftp:host/path", "not a URL");
    expect_einval("sftp://host/srv/repo", "names no user");
    expect_einval("sftp://@host/srv/repo", "names no user");
    expect_einval("sftp://user@/srv/repo", "names no host");
    expect_einval("sftp://user@host", "no path");
    expect_einval("sftp://user@host/", "no path");
    expect_einval("sftp://user@host:0/srv", "bad port");
    expect_einval("sftp://user@host:70000/srv", "bad port");
    expect_einval("sftp://user@host:22x/srv", "bad port");
    expect_einval("sftp://user@host:/srv", "bad port");
    expect_einval("sftp://user@[::1/srv", "unclosed");
    expect_einval("sftp://user@[::1]x/srv", "after ']'");
    expect_einval("sftp://us er@host/srv", "space");
    /* A password in the URL is refused, and not echoed. */
    expect_einval("sftp://user:hunter2@host/srv", "COFFER_SFTP_PASSWORD");
    assert_null(strstr(err_msg(), "hunter2"));
}

static void test_bad_options(void **state)
{
    (void)state;
    storage_t *s = NULL;
    const char *kv1[] = {"sftp.connections=0"};
    storage_opts_t o1 = {.kv = kv1, .n = 1};
    assert_int_equal(storage_open_opts("sftp://u@127.0.0.1/x", false, &o1, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "sftp.connections"));
    const char *kv2[] = {"sftp.accept-new-host-key=maybe"};
    storage_opts_t o2 = {.kv = kv2, .n = 1};
    assert_int_equal(storage_open_opts("sftp://u@127.0.0.1/x", false, &o2, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "yes or no"));
    const char *kv3[] = {"sftp.password=secret"};
    storage_opts_t o3 = {.kv = kv3, .n = 1};
    assert_int_equal(storage_open_opts("sftp://u@127.0.0.1/x", false, &o3, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "sftp.password"));
    assert_null(strstr(err_msg(), "secret"));
    const char *kv4[] = {"sftp.timeout=abc"};
    storage_opts_t o4 = {.kv = kv4, .n = 1};
    assert_int_equal(storage_open_opts("sftp://u@127.0.0.1/x", false, &o4, &s), COFFER_EINVAL);
    assert_null(s);
}

static void test_password_file_missing(void **state)
{
    (void)state;
    storage_t *s = NULL;
    setenv("COFFER_SFTP_PASSWORD_FILE", "/nonexistent/coffer-pw", 1);
    assert_int_equal(storage_open("sftp://u@127.0.0.1/x", false, &s), COFFER_EINVAL);
    assert_non_null(strstr(err_msg(), "/nonexistent/coffer-pw"));
    unsetenv("COFFER_SFTP_PASSWORD_FILE");
    assert_null(s);
}

static void test_unreachable(void **state)
{
    (void)state;
    char loc[128];
    storage_t *s = NULL;
    snprintf(loc, sizeof loc, "sftp://u@127.0.0.1:%d/srv/repo", free_port());
    assert_int_equal(storage_open(loc, false, &s), COFFER_EIO);
    assert_non_null(strstr(err_msg(), "cannot connect to 127.0.0.1"));
    assert_non_null(strstr(err_msg(), "refused"));
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_locations),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_password_file_missing),
        cmocka_unit_test(test_unreachable),
    };
    unsetenv("COFFER_SFTP_PASSWORD");
    unsetenv("COFFER_SFTP_PASSWORD_FILE");
    unsetenv("COFFER_SFTP_KEY_PASSPHRASE");
    unsetenv("COFFER_SFTP_KEY_PASSPHRASE_FILE");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
