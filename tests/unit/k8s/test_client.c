/*
 * test_client.c -- unit tests for the request-building parts of src/k8s/client.c (paths,
 * queries, object descriptions) and src/k8s/watch.c's event parser. Requests themselves are
 * tested against the test API server (tests/integration/test_k8s_*.sh).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "common/error.h"
#include "k8s/client.h"
#include "k8s/watch.h"

static void test_paths(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    k8s_res_t cm = {.group = "", .version = "v1", .resource = "configmaps", .namespaced = true};
    k8s_res_t dep = {
        .group = "apps", .version = "v1", .resource = "deployments", .namespaced = true};
    k8s_res_t crd = {
        .group = "apiextensions.k8s.io", .version = "v1", .resource = "customresourcedefinitions"};
    assert_int_equal(k8s_path(&b, &cm, "shop", "web", NULL), 0);
    assert_string_equal((char *)b.data, "/api/v1/namespaces/shop/configmaps/web");
    buf_reset(&b);
    assert_int_equal(k8s_path(&b, &dep, NULL, NULL, NULL), 0);
    assert_string_equal((char *)b.data, "/apis/apps/v1/deployments");
    buf_reset(&b);
    assert_int_equal(k8s_path(&b, &crd, "ignored", "a.b", "status"), 0);
    assert_string_equal((char *)b.data,
                        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/a.b/status");
    buf_reset(&b);
    assert_int_equal(k8s_path(&b, &cm, "shop", "we b/..", NULL), 0);
    assert_string_equal((char *)b.data, "/api/v1/namespaces/shop/configmaps/we%20b%2F..");
    assert_int_equal(k8s_query(&b, "labelSelector", "app in (a,b)"), 0);
    assert_int_equal(k8s_query(&b, "limit", "5"), 0);
    assert_non_null(strstr((char *)b.data, "?labelSelector=app%20in%20%28a%2Cb%29&limit=5"));
    buf_reset(&b);
    assert_int_equal(k8s_what(&b, &dep, "shop", "web"), 0);
    assert_string_equal((char *)b.data, "deployments.apps \"web\" in namespace \"shop\"");
    buf_release(&b);
}

static void test_watch_lines(void **state)
{
    (void)state;
    k8s_event_t t;
    json_t *o = NULL;
    long code = 0;
    const char *add = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}";
    assert_int_equal(k8s_watch_parse_line(add, strlen(add), &t, &o, &code), 0);
    assert_int_equal(t, K8S_EV_ADDED);
    json_decref(o);
    const char *bm =
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}";
    assert_int_equal(k8s_watch_parse_line(bm, strlen(bm), &t, &o, &code), 0);
    assert_int_equal(t, K8S_EV_BOOKMARK);
    json_decref(o);
    const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                       "\"message\":\"too old resource version\"}}";
    assert_int_equal(k8s_watch_parse_line(gone, strlen(gone), &t, &o, &code), COFFER_EIO);
    assert_int_equal(code, 410);
    assert_int_equal(k8s_watch_parse_line("{}", 2, &t, &o, &code), COFFER_ECORRUPT);
    assert_int_equal(k8s_watch_parse_line("xx", 2, &t, &o, &code), COFFER_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_watch_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
