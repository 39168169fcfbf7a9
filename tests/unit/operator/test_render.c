/*
 * test_render.c -- unit tests for src/operator/render.c: child names within 63 characters and
 * unique, the job config of each target type, secrets never copied into rendered objects,
 * clear errors for a missing Repository or target, and the pod template's mounts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/error.h"
#include "operator/render.h"

#include <stdlib.h>
#include <string.h>

static json_t *repos_one(void)
{
    return json_pack("{s:{s:{s:s, s:{s:s, s:s}}}}", "local", "spec", "url", "/srv/repo",
                     "passwordSecretRef", "name", "pw", "key", "password");
}

static void test_child_name(void **state)
{
    (void)state;
    char *a = op_child_name("backup", "nightly");
    assert_string_equal(a, "coffer-backup-nightly");
    free(a);
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    char *b = op_child_name("backup", longname);
    longname[150] = 'y';
    char *c = op_child_name("backup", longname);
    assert_true(strlen(b) <= 63 && strlen(c) <= 63);
    assert_string_not_equal(b, c); /* the hash suffix keeps long names apart */
    assert_true(b[strlen(b) - 11] == '-');
    free(b);
    free(c);
}

static void test_config_files(void **state)
{
    (void)state;
    json_t *repos = repos_one();
    json_t *spec = json_pack("{s:{s:s, s:{s:s, s:[s], s:[s]}}, s:[s], s:{s:i, s:i}, s:[s]}",
                             "target", "type", "files", "files", "pvc", "data", "paths", "app",
                             "exclude", "*.tmp", "repositories", "local", "retention", "keepDaily",
                             7, "months", 6, "tags", "nightly");
    json_t *cfg = op_render_config("job1", spec, repos);
    assert_non_null(cfg);
    json_t *job = json_array_get(json_object_get(cfg, "jobs"), 0);
    assert_string_equal(json_string_value(json_object_get(job, "type")), "files");
    assert_string_equal(json_string_value(json_array_get(json_object_get(job, "paths"), 0)),
                        "/data/app");
    json_t *ret = json_object_get(job, "retention");
    assert_int_equal(json_integer_value(json_object_get(ret, "keep_daily")), 7);
    assert_int_equal(json_integer_value(json_object_get(ret, "months")), 6);
    json_t *r = json_object_get(json_object_get(cfg, "repositories"), "local");
    assert_string_equal(json_string_value(json_object_get(r, "password_file")),
                        "/etc/coffer/secrets/local/password");
    assert_null(json_object_get(r, "options"));
    json_decref(cfg);
    /* a Repository's storage options go into the config (the job passes them as -o) */
    json_object_set_new(json_object_get(json_object_get(repos, "local"), "spec"), "options",
                        json_pack("{s:s}", "s3.region", "eu-west-1"));
    cfg = op_render_config("job1", spec, repos);
    r = json_object_get(json_object_get(cfg, "repositories"), "local");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "options"), "s3.region")),
        "eu-west-1");
    json_decref(cfg);
    json_decref(spec);
    json_decref(repos);
}

static void test_config_service_and_errors(void **state)
{
    (void)state;
    json_t *repos = repos_one();
    json_t *spec = json_pack("{s:{s:s, s:{s:s, s:i, s:[s, s], s:{s:s, s:s}, s:b}}, s:[s]}",
                             "target", "type", "postgres", "postgres", "host", "db", "port", 5432,
                             "databases", "a", "b", "passwordSecretRef", "name", "dbpw", "key",
                             "password", "allDatabases", 0, "repositories", "local");
    json_t *cfg = op_render_config("pg", spec, repos);
    assert_non_null(cfg);
    json_t *opts = json_object_get(json_array_get(json_object_get(cfg, "jobs"), 0), "options");
    assert_string_equal(json_string_value(json_object_get(opts, "server")), "db");
    assert_string_equal(json_string_value(json_object_get(opts, "port")), "5432");
    assert_int_equal(json_array_size(json_object_get(opts, "database")), 2);
    char *text = json_dumps(cfg, 0);
    assert_null(strstr(text, "dbpw")); /* the Secret's name is not an option either */
    free(text);
    json_decref(cfg);

    json_t *bad =
        json_pack("{s:{s:s}, s:[s]}", "target", "type", "files", "repositories", "elsewhere");
    assert_null(op_render_config("x", bad, repos));
    assert_non_null(strstr(err_msg(), "Repository \"elsewhere\""));
    json_decref(bad);
    bad = json_pack("{s:[s]}", "repositories", "local");
    assert_null(op_render_config("x", bad, repos));
    assert_non_null(strstr(err_msg(), "spec.target.type"));
    json_decref(bad);
    json_decref(spec);
    json_decref(repos);
}

static void test_pod_template(void **state)
{
    (void)state;
    json_t *repos = repos_one();
    json_t *cr =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "apiVersion", "coffer.dev/v1alpha1", "kind",
                  "Backup", "metadata", "name", "b1", "namespace", "apps", "uid", "u-1");
    json_t *spec = json_pack("{s:{s:s, s:{s:s}}, s:[s], s:s}", "target", "type", "files", "files",
                             "pvc", "data", "repositories", "local", "runOn", "node-1");
    op_render_opts_t o = {.image = "coffer:test", .service_account = "coffer-job"};
    json_t *args = json_pack("[s, s]", "job", "run");
    json_t *tpl = op_render_pod_template(&o, cr, "backups", spec, repos, "cm", args);
    json_t *job = op_render_job(cr, "coffer-backup-b1", tpl, spec);
    char *text = json_dumps(job, JSON_SORT_KEYS);
    assert_non_null(strstr(text, "\"claimName\": \"data\""));
    assert_non_null(strstr(text, "\"readOnly\": true"));
    assert_non_null(strstr(text, "\"secretName\": \"pw\""));
    assert_non_null(strstr(text, "\"kubernetes.io/hostname\": \"node-1\""));
    assert_non_null(strstr(text, "\"uid\": \"u-1\""));
    assert_non_null(strstr(text, "\"exec\", \"--kind\", \"backups\""));
    free(text);
    json_decref(job);
    json_decref(args);
    json_decref(spec);
    json_decref(cr);
    json_decref(repos);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_name), cmocka_unit_test(test_config_files),
        cmocka_unit_test(test_config_service_and_errors), cmocka_unit_test(test_pod_template)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
