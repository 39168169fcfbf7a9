/*
 * test_manifests.c -- unit tests for src/operator/manifests.c (and the YAML writer it uses,
 * src/k8s/yamlout.c): DNS names, every-to-cron, the rendered objects of a small config (no
 * secret value, password files from Secrets, ${VAR} kept, defaults and overrides), the same
 * bytes twice, the config errors of the kubernetes: section, and YAML quoting that survives a
 * round trip through the project's YAML reader.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/error.h"
#include "k8s/yaml.h"
#include "k8s/yamlout.h"
#include "operator/manifests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/coffer-test-manifests-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int load(const char *text, cfg_t **out)
{
    char *path = write_tmp(text);
    cfg_load_opts_t o = {.manifest = true};
    int rc = cfg_load_opts(path, &o, out);
    unlink(path);
    free(path);
    return rc;
}

static void test_dns_name(void **state)
{
    (void)state;
    char *a = mf_dns_name("coffer", "pg", 52);
    assert_string_equal(a, "coffer-pg");
    char *b = mf_dns_name("coffer", "PG_main", 52);
    char *c = mf_dns_name("coffer", "pg-main", 52);
    assert_string_equal(c, "coffer-pg-main");
    assert_string_not_equal(b, c); /* changed names get a hash: no collision */
    assert_true(strncmp(b, "coffer-pg-main-", 15) == 0 && strlen(b) == 23);
    char longname[120];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    char *d = mf_dns_name("coffer", longname, 52);
    assert_int_equal(strlen(d), 52);
    free(a);
    free(b);
    free(c);
    free(d);
}

static void test_every(void **state)
{
    (void)state;
    char s[64];
    assert_int_equal(mf_every_to_cron(600, s, sizeof s), 0);
    assert_string_equal(s, "*/10 * * * *");
    assert_int_equal(mf_every_to_cron(3600, s, sizeof s), 0);
    assert_string_equal(s, "0 * * * *");
    assert_int_equal(mf_every_to_cron(6 * 3600, s, sizeof s), 0);
    assert_string_equal(s, "0 */6 * * *");
    assert_int_equal(mf_every_to_cron(86400, s, sizeof s), 0);
    assert_string_equal(s, "0 0 * * *");
    assert_int_equal(mf_every_to_cron(7 * 60, s, sizeof s), -1);
    assert_int_equal(mf_every_to_cron(5 * 3600, s, sizeof s), -1);
    assert_int_equal(mf_every_to_cron(90, s, sizeof s), -1);
}

static const char *CONFIG =
    "repositories:\n"
    "  main: {url: /srv/b, password: \"${MF_TEST_SECRET}\", env: {KEY: \"${MF_KEY}\"}}\n"
    "kubernetes:\n"
    "  namespace: ops\n"
    "  image: img:1\n"
    "  repositories: {main: {password: {secret: repo-pw, key: pw}, env_from: [creds]}}\n"
    "  volumes: {data: {claim: data-pvc}}\n"
    "  failed_jobs_history: 7\n"
    "jobs:\n"
    "  - name: files\n"
    "    type: files\n"
    "    paths: [/data]\n"
    "    schedule: \"0 1 * * *\"\n"
    "    repositories: [main]\n"
    "    kubernetes: {volumes: [{volume: data, path: /data}], run_as_user: 1000,\n"
    "                 failed_jobs_history: 1}\n"
    "  - {name: ad-hoc, type: files, paths: [/x], repositories: [main]}\n";

static void test_render(void **state)
{
    (void)state;
    setenv("MF_TEST_SECRET", "very-secret-value", 1);
    unsetenv("MF_KEY");
    cfg_t *c = NULL;
    assert_int_equal(load(CONFIG, &c), 0);
    mf_opts_t o = {.config_name = "test.yaml"};
    json_t *docs = NULL;
    buf_t notes, y1, y2;
    buf_init(&notes);
    buf_init(&y1);
    buf_init(&y2);
    assert_int_equal(mf_render(c, &o, &docs, &notes), 0);
    assert_non_null(strstr((char *)notes.data, "job ad-hoc has no schedule"));
    assert_int_equal(json_array_size(docs), 3); /* ServiceAccount, ConfigMap, CronJob */
    assert_int_equal(k8s_yaml_emit_docs(docs, &y1), 0);
    assert_int_equal(buf_append(&y1, "", 1), 0);
    const char *y = (const char *)y1.data;
    assert_null(strstr(y, "very-secret-value"));
    assert_non_null(strstr(y, "password_file: /etc/coffer/secrets/main/password"));
    assert_non_null(strstr(y, "KEY: ${MF_KEY}"));
    assert_non_null(strstr(y, "secretName: repo-pw"));
    assert_non_null(strstr(y, "claimName: data-pvc"));
    assert_non_null(strstr(y, "runAsUser: 1000"));
    assert_null(strstr(y, "DAC_READ_SEARCH")); /* not root: no capability added */
    assert_non_null(strstr(y, "failedJobsHistoryLimit: 1"));
    assert_non_null(strstr(y, "name: creds"));
    /* the YAML reads back as the same objects */
    json_t *back = NULL;
    assert_int_equal(k8s_yaml_parse_all(y, strlen(y), "manifests", &back), 0);
    assert_true(json_equal(back, docs));
    json_decref(back);
    /* the same config renders the same bytes */
    json_t *docs2 = NULL;
    assert_int_equal(mf_render(c, &o, &docs2, NULL), 0);
    assert_int_equal(k8s_yaml_emit_docs(docs2, &y2), 0);
    assert_int_equal(buf_append(&y2, "", 1), 0);
    assert_string_equal((char *)y2.data, y);
    /* --job of an unknown name */
    char *only[] = {"nope"};
    mf_opts_t bad = {.only = only, .n_only = 1};
    json_t *none = NULL;
    assert_int_equal(mf_render(c, &bad, &none, NULL), COFFER_EINVAL);
    assert_null(none);
    json_decref(docs);
    json_decref(docs2);
    buf_release(&notes);
    buf_release(&y1);
    buf_release(&y2);
    cfg_free(c);
}

static void expect_error(const char *text, const char *msg)
{
    cfg_t *c = NULL;
    int rc = load(text, &c);
    if (!rc) {
        json_t *docs = NULL;
        mf_opts_t o = {0};
        rc = mf_render(c, &o, &docs, NULL);
        json_decref(docs);
        cfg_free(c);
    }
    assert_int_equal(rc, COFFER_EINVAL);
    if (!strstr(err_msg(), msg))
        fail_msg("expected \"%s\" in \"%s\"", msg, err_msg());
}

static void test_errors(void **state)
{
    (void)state;
    const char *repo = "repositories:\n  r: {url: /b, password: x}\n";
    char t[2048];
    snprintf(t, sizeof t, "%skubernetes: {nmespace: a}\n", repo);
    expect_error(t, "unknown key \"nmespace\" in kubernetes (did you mean \"namespace\"?)");
    snprintf(t, sizeof t, "%skubernetes: {image_pull_policy: sometimes}\n", repo);
    expect_error(t, "image_pull_policy: expected Always, IfNotPresent or Never");
    snprintf(t, sizeof t, "%s", repo);
    expect_error(t, "repository \"r\": its password would have to be in the ConfigMap");
    snprintf(t, sizeof t, "%skubernetes: {repositories: {q: {password: {secret: s, key: k}}}}\n",
             repo);
    expect_error(t, "kubernetes.repositories: repository \"q\" is not defined");
    snprintf(t, sizeof t, "%skubernetes: {repositories: {r: {password: {secret: s}}}}\n", repo);
    expect_error(t, "give the Secret and its key");
    snprintf(t, sizeof t, "%skubernetes: {volumes: {v: {claim: c, host_path: /x}}}\n", repo);
    expect_error(t, "give exactly one of claim");
    snprintf(t, sizeof t,
             "%skubernetes: {repositories: {r: {password: {secret: s, key: k}}}}\n"
             "jobs: [{name: j, type: files, paths: [/x], repositories: [r],\n"
             "        kubernetes: {volumes: [{claim: c}]}}]\n",
             repo);
    expect_error(t, "path (where the container sees it) is required");
    snprintf(t, sizeof t, "%skubernetes: {tolerations: [{key: a, operator: Exists, value: b}]}\n",
             repo);
    expect_error(t, "operator Exists takes no value");
    snprintf(t, sizeof t,
             "%skubernetes: {repositories: {r: {password: {secret: s, key: k}}}}\n"
             "jobs: [{name: j, type: files, paths: [/x], repositories: [r], env: {A_file: /x}}]\n",
             repo);
    expect_error(t, "env A_file reads a file the pod does not have");
    /* kubernetes: values are substituted here, strictly */
    unsetenv("MF_UNSET_IMAGE");
    snprintf(t, sizeof t, "%skubernetes: {image: \"${MF_UNSET_IMAGE}\"}\n", repo);
    expect_error(t, "environment variable MF_UNSET_IMAGE is not set");
}

static void test_yaml_quoting(void **state)
{
    (void)state;
    json_t *v =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:s, s:s, s:[]}", "a", "true", "b",
                  "0755", "c", "12:30", "d", "", "e", "*/5 * * * *", "f", "line1\nline2\n", "g",
                  "no", "h", 5, "i", 1, "j", " lead", "k", "${VAR}", "l");
    buf_t b;
    buf_init(&b);
    assert_int_equal(k8s_yaml_emit(v, &b), 0);
    json_t *back = NULL;
    assert_int_equal(k8s_yaml_parse((char *)b.data, b.len, "emitted", &back), 0);
    assert_true(json_equal(back, v));
    assert_int_equal(buf_append(&b, "", 1), 0);
    assert_non_null(strstr((char *)b.data, "f: |\n  line1\n  line2\n"));
    json_decref(back);
    json_decref(v);
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_dns_name),
                                       cmocka_unit_test(test_every), cmocka_unit_test(test_render),
                                       cmocka_unit_test(test_errors),
                                       cmocka_unit_test(test_yaml_quoting)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
