/*
 * test_prune.c -- unit tests for src/source/k8s/prune.c (export pruning, restore cleanup),
 * selector.c (label selectors) and jsondiff.c (field diffs of two objects).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "source/k8s/jsondiff.h"
#include "source/k8s/prune.h"
#include "source/k8s/selector.h"

static json_t *parse(const char *s)
{
    json_error_t je;
    json_t *v = json_loads(s, 0, &je);
    if (!v)
        fail_msg("bad test JSON: %s", je.text);
    return v;
}

static void assert_json(json_t *v, const char *want)
{
    json_t *w = parse(want);
    if (!json_equal(v, w)) {
        char *got = json_dumps(v, JSON_COMPACT);
        fail_msg("got %s\nwant %s", got, want);
    }
    json_decref(w);
}

static void test_export_prune(void **state)
{
    (void)state;
    json_t *o = parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\","
                      "\"uid\":\"u\",\"resourceVersion\":\"1\",\"selfLink\":\"/x\","
                      "\"creationTimestamp\":\"t\",\"generation\":2,\"managedFields\":[],"
                      "\"deletionTimestamp\":\"t\",\"deletionGracePeriodSeconds\":30,"
                      "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"{}"
                      "\"}},\"data\":{\"k\":\"v\"},\"status\":{\"x\":1}}");
    k8s_prune_opts_t po = {0};
    k8s_prune_export(o, &po);
    assert_json(o, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"},"
                   "\"data\":{\"k\":\"v\"}}");
    json_decref(o);
    o = parse("{\"metadata\":{\"name\":\"a\",\"annotations\":{\"kubectl.kubernetes.io/"
              "last-applied-configuration\":\"{}\",\"x\":\"y\"}},\"status\":{}}");
    po.keep_last_applied = true;
    po.keep_status = true;
    k8s_prune_export(o, &po);
    assert_non_null(json_object_get(o, "status"));
    assert_int_equal(
        json_object_size(json_object_get(json_object_get(o, "metadata"), "annotations")), 2);
    json_decref(o);
}

static void test_restore_service(void **state)
{
    (void)state;
    json_t *o = parse(
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\","
        "\"ownerReferences\":[{}],\"annotations\":{\"kubectl.kubernetes.io/"
        "last-applied-configuration\":\"{\\\"spec\\\":{\\\"ports\\\":[{\\\"nodePort\\\":30001}]}}"
        "\"}},\"spec\":{\"type\":\"NodePort\",\"clusterIP\":\"10.0.0.1\",\"clusterIPs\":[\"10.0.0."
        "1\"],\"healthCheckNodePort\":3,\"ports\":[{\"port\":1,\"nodePort\":30001},{\"port\":2,"
        "\"nodePort\":30002}]}}");
    k8s_clean_opts_t co = {0};
    k8s_clean_for_restore(o, &co);
    json_t *spec = json_object_get(o, "spec");
    assert_null(json_object_get(spec, "clusterIP"));
    assert_null(json_object_get(spec, "clusterIPs"));
    assert_null(json_object_get(spec, "healthCheckNodePort"));
    assert_null(json_object_get(json_object_get(o, "metadata"), "ownerReferences"));
    json_t *ports = json_object_get(spec, "ports");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ports, 0), "nodePort")),
                     30001); /* applied explicitly: kept */
    assert_null(json_object_get(json_array_get(ports, 1), "nodePort"));
    json_decref(o);
    o = parse("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"h\"},"
              "\"spec\":{\"clusterIP\":\"None\"}}");
    k8s_clean_for_restore(o, &co);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "spec"), "clusterIP")),
                        "None");
    json_decref(o);
}

static void test_restore_kinds(void **state)
{
    (void)state;
    k8s_clean_opts_t co = {0};
    json_t *pod = parse(
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"spec\":{"
        "\"nodeName\":\"n\",\"priority\":5,\"containers\":[{\"name\":\"c\",\"volumeMounts\":[{"
        "\"name\":\"kube-api-access-x\"},{\"name\":\"d\"}]}],\"volumes\":[{\"name\":\"kube-api-"
        "access-x\"},{\"name\":\"old\",\"secret\":{\"secretName\":\"sa-token-abcde\"}},{\"name\":"
        "\"d\"}]},\"status\":{\"phase\":\"Succeeded\"}}");
    assert_true(k8s_is_completed(pod));
    k8s_clean_for_restore(pod, &co);
    assert_json(json_object_get(pod, "spec"),
                "{\"containers\":[{\"name\":\"c\",\"volumeMounts\":[{\"name\":\"d\"}]}],"
                "\"volumes\":[{\"name\":\"d\"}]}");
    assert_false(k8s_is_completed(pod)); /* status gone */
    json_decref(pod);
    json_t *job =
        parse("{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"j\","
              "\"labels\":{\"controller-uid\":\"u\"}},\"spec\":{\"selector\":{},"
              "\"template\":{\"metadata\":{\"labels\":{\"batch.kubernetes.io/"
              "controller-uid\":\"u\",\"job-name\":\"j\"}}}}}");
    k8s_clean_for_restore(job, &co);
    assert_json(job, "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"j\"},"
                     "\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"job-name\":\"j\"}}}}}");
    json_decref(job);
    json_t *pv = parse("{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolume\",\"metadata\":{"
                       "\"name\":\"v\",\"annotations\":{\"pv.kubernetes.io/bound-by-controller\":"
                       "\"yes\"}},\"spec\":{\"claimRef\":{\"name\":\"c\",\"namespace\":\"n\","
                       "\"uid\":\"u\",\"resourceVersion\":\"1\"}}}");
    k8s_clean_for_restore(pv, &co);
    assert_json(pv, "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolume\",\"metadata\":{\"name\":"
                    "\"v\"},\"spec\":{\"claimRef\":{\"name\":\"c\",\"namespace\":\"n\"}}}");
    json_decref(pv);
    json_t *sec = parse("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"type\":\"kubernetes.io/"
                        "service-account-token\",\"metadata\":{\"name\":\"t\"}}");
    assert_true(k8s_is_sa_token_secret(sec));
    json_decref(sec);
    json_t *job2 = parse("{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"status\":{\"conditions\":"
                         "[{\"type\":\"Complete\",\"status\":\"True\"}]}}");
    assert_true(k8s_is_completed(job2));
    json_decref(job2);
}

static void test_selector(void **state)
{
    (void)state;
    json_t *o = parse("{\"metadata\":{\"labels\":{\"app\":\"web\",\"tier\":\"front\"}}}");
    json_t *bare = parse("{\"metadata\":{}}");
    struct {
        const char *sel;
        bool o, bare;
    } cases[] = {
        {"app=web", true, false},
        {"app==web,tier=front", true, false},
        {"app!=web", false, true},
        {"app in (db, web)", true, false},
        {"app notin (web)", false, true},
        {"tier", true, false},
        {"!tier", false, true},
        {"", true, true},
        {"app=web, tier in (back)", false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        k8s_selector_t *s = NULL;
        assert_int_equal(k8s_selector_parse(cases[i].sel, &s), 0);
        if (k8s_selector_match(s, o) != cases[i].o || k8s_selector_match(s, bare) != cases[i].bare)
            fail_msg("selector \"%s\"", cases[i].sel);
        k8s_selector_free(s);
    }
    k8s_selector_t *s = NULL;
    assert_int_equal(k8s_selector_parse("app in web", &s), COFFER_EINVAL);
    assert_int_equal(k8s_selector_parse("a=b,,=c", &s), COFFER_EINVAL);
    assert_int_equal(k8s_selector_parse("app in (a", &s), COFFER_EINVAL);
    json_decref(o);
    json_decref(bare);
}

typedef struct diffs {
    char lines[16][256];
    size_t n;
} diffs_t;

static int collect(void *ud, const char *path, json_t *a, json_t *b)
{
    diffs_t *d = ud;
    char *x = a ? json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    char *y = b ? json_dumps(b, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    snprintf(d->lines[d->n++], 256, "%s %s %s", path, x ? x : "-", y ? y : "-");
    free(x);
    free(y);
    return 0;
}

static void test_jsondiff(void **state)
{
    (void)state;
    json_t *a = parse("{\"spec\":{\"replicas\":2,\"containers\":[{\"name\":\"web\",\"image\":"
                      "\"n:1\"},{\"name\":\"side\"}],\"args\":[\"a\",\"b\"]},\"x\":1}");
    json_t *b = parse("{\"spec\":{\"replicas\":3,\"containers\":[{\"name\":\"web\",\"image\":"
                      "\"n:2\"},{\"name\":\"new\"}],\"args\":[\"a\"]},\"y\":true}");
    diffs_t d = {0};
    assert_int_equal(k8s_json_diff(a, b, collect, &d), 0);
    const char *want[] = {"spec.replicas 2 3",
                          "spec.containers[web].image \"n:1\" \"n:2\"",
                          "spec.containers[side] {\"name\":\"side\"} -",
                          "spec.containers[new] - {\"name\":\"new\"}",
                          "spec.args[1] \"b\" -",
                          "x 1 -",
                          "y - true"};
    assert_int_equal(d.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < d.n; i++)
        assert_string_equal(d.lines[i], want[i]);
    d.n = 0;
    assert_int_equal(k8s_json_diff(a, a, collect, &d), 0);
    assert_int_equal(d.n, 0);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_prune),  cmocka_unit_test(test_restore_service),
        cmocka_unit_test(test_restore_kinds), cmocka_unit_test(test_selector),
        cmocka_unit_test(test_jsondiff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
