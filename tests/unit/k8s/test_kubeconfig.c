/*
 * test_kubeconfig.c -- unit tests for src/k8s/kubeconfig.c and src/k8s/yaml.c: contexts,
 * relative paths, base64 data, exec plugins, in-cluster files, and the errors for broken
 * files (naming the file and context, never a secret).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "k8s/execcred.h"
#include "k8s/kubeconfig.h"
#include "k8s/yaml.h"

static const char *KC = "apiVersion: v1\n"
                        "kind: Config\n"
                        "current-context: dev\n"
                        "clusters:\n"
                        "- name: c1\n"
                        "  cluster:\n"
                        "    server: https://10.0.0.1:6443/\n"
                        "    certificate-authority: certs/ca.crt\n"
                        "- name: c2\n"
                        "  cluster:\n"
                        "    server: https://k8s.example.com\n"
                        "    certificate-authority-data: aGVsbG8=\n"
                        "    insecure-skip-tls-verify: true\n"
                        "users:\n"
                        "- name: u1\n"
                        "  user:\n"
                        "    token: s3cret-token\n"
                        "- name: u2\n"
                        "  user:\n"
                        "    client-certificate-data: Y2VydA==\n"
                        "    client-key-data: a2V5\n"
                        "- name: u3\n"
                        "  user:\n"
                        "    exec:\n"
                        "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                        "      command: ./bin/get-token\n"
                        "      args: [--cluster, prod]\n"
                        "      env:\n"
                        "      - {name: A, value: b}\n"
                        "- name: basic\n"
                        "  user: {username: admin, password: pw}\n"
                        "contexts:\n"
                        "- name: dev\n"
                        "  context: {cluster: c1, user: u1, namespace: shop}\n"
                        "- name: prod\n"
                        "  context: {cluster: c2, user: u2}\n"
                        "- name: execctx\n"
                        "  context: {cluster: c1, user: u3}\n"
                        "- name: basicctx\n"
                        "  context: {cluster: c1, user: basic}\n"
                        "- name: nocluster\n"
                        "  context: {cluster: missing, user: u1}\n";

static void test_current_context(void **state)
{
    (void)state;
    k8s_config_t c;
    assert_int_equal(k8s_kubeconfig_parse(KC, strlen(KC), "/home/u/.kube/config", NULL, &c), 0);
    assert_string_equal(c.server, "https://10.0.0.1:6443");
    assert_string_equal(c.ca_file, "/home/u/.kube/certs/ca.crt");
    assert_string_equal(c.token, "s3cret-token");
    assert_string_equal(c.namespace, "shop");
    assert_string_equal(c.context, "dev");
    assert_false(c.insecure);
    assert_non_null(strstr(c.origin, "context \"dev\" of kubeconfig /home/u/.kube/config"));
    k8s_config_release(&c);
    k8s_config_release(NULL);
}

static void test_chosen_context_data(void **state)
{
    (void)state;
    k8s_config_t c;
    assert_int_equal(k8s_kubeconfig_parse(KC, strlen(KC), "kc", "prod", &c), 0);
    assert_string_equal(c.server, "https://k8s.example.com");
    assert_int_equal(c.ca_pem.len, 5);
    assert_memory_equal(c.ca_pem.data, "hello", 5);
    assert_memory_equal(c.cert_pem.data, "cert", 4);
    assert_memory_equal(c.key_pem.data, "key", 3);
    assert_true(c.insecure);
    assert_string_equal(c.namespace, "default");
    assert_null(c.token);
    k8s_config_release(&c);
}

static void test_exec(void **state)
{
    (void)state;
    k8s_config_t c;
    assert_int_equal(k8s_kubeconfig_parse(KC, strlen(KC), "/etc/kc", "execctx", &c), 0);
    assert_string_equal(c.exec.command, "/etc/bin/get-token");
    assert_string_equal(c.exec.args[0], "--cluster");
    assert_string_equal(c.exec.args[1], "prod");
    assert_null(c.exec.args[2]);
    assert_int_equal(c.exec.n_env, 1);
    assert_string_equal(c.exec.env[0], "A=b");
    assert_string_equal(c.exec.api_version, "client.authentication.k8s.io/v1beta1");
    k8s_config_release(&c);
}

static void expect_error(const char *text, const char *ctx, int code, const char *needle)
{
    k8s_config_t c;
    int rc = k8s_kubeconfig_parse(text, strlen(text), "/x/kc", ctx, &c);
    assert_int_equal(rc, code);
    if (!strstr(err_msg(), needle))
        fail_msg("message \"%s\" lacks \"%s\"", err_msg(), needle);
    assert_null(strstr(err_msg(), "s3cret"));
}

static void test_errors(void **state)
{
    (void)state;
    expect_error(KC, "nope", COFFER_EINVAL, "kubeconfig /x/kc has no context \"nope\"");
    expect_error(KC, "nocluster", COFFER_EINVAL, "cluster \"missing\" is not defined");
    expect_error(KC, "basicctx", COFFER_EINVAL, "basic auth");
    expect_error("clusters: [\n - {name: x\n", NULL, COFFER_ECORRUPT, "kubeconfig /x/kc: line");
    expect_error("kind: Config\n", NULL, COFFER_EINVAL, "has no current-context");
    expect_error("- a\n- b\n", NULL, COFFER_EINVAL, "is not a mapping");
    expect_error("current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
                 "clusters: [{name: c, cluster: {server: ftp://x}}]\n"
                 "users: [{name: u, user: {token: s3cret}}]\n",
                 NULL, COFFER_EINVAL, "is not an http(s) URL");
    expect_error("current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
                 "clusters: [{name: c, cluster: {server: https://x, "
                 "certificate-authority-data: \"!!!\"}}]\n"
                 "users: [{name: u, user: {token: s3cret}}]\n",
                 NULL, COFFER_EINVAL, "certificate-authority-data is not valid base64");
    expect_error("current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
                 "clusters: [{name: c, cluster: {server: https://x}}]\n"
                 "users: [{name: u, user: {client-certificate: /c.pem}}]\n",
                 NULL, COFFER_EINVAL, "client certificate without its key");
    expect_error("a: &x 1\nb: *x\n", NULL, COFFER_ECORRUPT, "not supported");
}

static void test_yaml_types(void **state)
{
    (void)state;
    const char *y = "a: 1\nb: \"1\"\nc: true\nd: ~\ne: [x, 2]\nf: 007\n---\n---\nz: 1\n";
    json_t *docs = NULL;
    assert_int_equal(k8s_yaml_parse_all(y, strlen(y), "t", &docs), 0);
    assert_int_equal(json_array_size(docs), 2);
    json_t *d = json_array_get(docs, 0);
    assert_true(json_is_integer(json_object_get(d, "a")));
    assert_true(json_is_string(json_object_get(d, "b")));
    assert_true(json_is_true(json_object_get(d, "c")));
    assert_true(json_is_null(json_object_get(d, "d")));
    assert_int_equal(json_array_size(json_object_get(d, "e")), 2);
    assert_string_equal(json_string_value(json_object_get(d, "f")), "007");
    /* keys keep document order */
    const char *k;
    json_t *v;
    const char *want[] = {"a", "b", "c", "d", "e", "f"};
    size_t i = 0;
    json_object_foreach(d, k, v) assert_string_equal(k, want[i++]);
    json_decref(docs);
    /* deep nesting is refused, not a stack overflow */
    char deep[400];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    assert_int_equal(k8s_yaml_parse_all(deep, strlen(deep), "deep", &docs), COFFER_ELIMIT);
}

static void test_incluster(void **state)
{
    (void)state;
    char dir[] = "/tmp/coffer-sa-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[256];
    snprintf(p, sizeof p, "%s/token", dir);
    FILE *f = fopen(p, "w");
    fputs("tok\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/namespace", dir);
    f = fopen(p, "w");
    fputs("team-a\n", f);
    fclose(f);
    unsetenv("KUBERNETES_SERVICE_HOST");
    k8s_config_t c;
    assert_int_equal(k8s_incluster_load(dir, &c), COFFER_ENOENT);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
    assert_int_equal(k8s_incluster_load(dir, &c), 0);
    assert_string_equal(c.server, "https://[fd00::1]:6443");
    assert_string_equal(c.namespace, "team-a");
    assert_non_null(c.token_file);
    assert_null(c.ca_file); /* no ca.crt in the directory */
    k8s_config_release(&c);
    unsetenv("KUBERNETES_SERVICE_HOST");
    snprintf(p, sizeof p, "%s/token", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/namespace", dir);
    unlink(p);
    rmdir(dir);
}

static void test_exec_parse(void **state)
{
    (void)state;
    k8s_cred_t c;
    const char *ok = "{\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\","
                     "\"expirationTimestamp\":\"2030-01-01T00:00:00Z\"}}";
    assert_int_equal(k8s_exec_parse(ok, strlen(ok), "plugin", &c), 0);
    assert_string_equal(c.token, "t");
    assert_true(c.expires_ns > 0);
    k8s_cred_release(&c);
    const char *bad = "{\"kind\":\"ExecCredential\",\"status\":{}}";
    assert_int_equal(k8s_exec_parse(bad, strlen(bad), "plugin", &c), COFFER_ECORRUPT);
    assert_int_equal(k8s_exec_parse("nope", 4, "plugin", &c), COFFER_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_current_context),
        cmocka_unit_test(test_chosen_context_data),
        cmocka_unit_test(test_exec),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_yaml_types),
        cmocka_unit_test(test_incluster),
        cmocka_unit_test(test_exec_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
