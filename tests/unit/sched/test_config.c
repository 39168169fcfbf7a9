/*
 * test_config.c -- unit tests for src/sched/config.c: a full good file, includes, ${VAR}
 * substitution, secret files, retention (both forms), and bad files whose errors must name
 * file:line:column and what is expected.
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
#include "sched/config.h"

static char dir[256];

static void write_file(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int load(const char *name, cfg_t **out)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return cfg_load(p, out);
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/cfgtest.XXXXXX", t ? t : "/tmp");
    assert_non_null(mkdtemp(dir));
    char p[512];
    snprintf(p, sizeof p, "%s/conf.d", dir);
    mkdir(p, 0755);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char good[] =
    "include: [\"conf.d/*.yaml\"]\n"
    "repositories:\n"
    "  local:\n"
    "    url: ${CFGT_REPO:-/srv/backup}\n"
    "    password_file: pw.txt\n"
    "  s3:\n"
    "    url: s3://minio:9000/bucket/x\n"
    "    password: ${CFGT_PW}\n"
    "    env:\n"
    "      AWS_ACCESS_KEY_ID: AKIA\n"
    "      AWS_SECRET_ACCESS_KEY_file: aws.txt\n"
    "jobs:\n"
    "  - name: etc\n"
    "    type: files\n"
    "    paths: [/etc, /srv]\n"
    "    exclude: \"*.tmp\"\n"
    "    schedule: \"30 2 * * *\"\n"
    "    timezone: Europe/Berlin\n"
    "    repositories:\n"
    "      - local\n"
    "      - name: s3\n"
    "        retention: {keep_daily: 30, keep_within: 7d, keep_tags: [keep]}\n"
    "    retention: {days: 7, weeks: 4, months: 6, prune: true}\n"
    "    tags: [nightly]\n"
    "    hooks:\n"
    "      before: [\"echo a\", {command: \"echo b\", timeout: 2m, on_error: continue}]\n"
    "      after:\n"
    "        - command: echo c\n"
    "    limits: {nice: 10, ionice: \"best-effort:7\", threads: 2}\n"
    "    run_on: [backup-0]\n"
    "  - name: pg\n"
    "    type: postgres\n"
    "    options: {host: db, port: 5432, database: [a, b], all_databases: true}\n"
    "    env: {PGPASSWORD_file: pg.txt}\n"
    "    repositories: [local]\n"
    "copy:\n"
    "  - {from: local, to: s3, every: 10m}\n"
    "notifications:\n"
    "  - {type: webhook, url: \"http://127.0.0.1:1/x\", level: warning,\n"
    "     headers: {Authorization: \"Bearer ${CFGT_PW}\"}}\n"
    "  - {name: mail, type: email, smtp_url: \"smtp://127.0.0.1:25\", from: a@b, to: [c@d],\n"
    "     starttls: true, username: u, password_file: pw.txt}\n"
    "server: {listen: \"127.0.0.1:9100\", max_concurrent: 2, missed: skip}\n";

static void test_good(void **state)
{
    (void)state;
    setenv("CFGT_PW", "s3cr3t-value", 1);
    unsetenv("CFGT_REPO");
    write_file("pw.txt", "file-password\n");
    write_file("aws.txt", "aws-secret\n");
    write_file("pg.txt", "pg-secret");
    write_file("conf.d/extra.yaml", "jobs:\n  - {name: cmd, type: command, command: \"pg_dumpall\","
                                    " repositories: [s3], schedule: \"@hourly\"}\n");
    write_file("good.yaml", good);
    cfg_t *c = NULL;
    int rc = load("good.yaml", &c);
    if (rc)
        fail_msg("%s", err_msg());
    assert_int_equal(c->n_files, 2);
    assert_int_equal(c->n_repos, 2);
    assert_string_equal(c->repos[0].url, "/srv/backup");
    assert_string_equal(c->repos[0].password, "file-password");
    assert_string_equal(c->repos[1].password, "s3cr3t-value");
    assert_int_equal(c->repos[1].n_env, 2);
    assert_string_equal(c->repos[1].env[1].key, "AWS_SECRET_ACCESS_KEY");
    assert_string_equal(c->repos[1].env[1].value, "aws-secret");
    assert_int_equal(c->n_jobs, 3);
    const cfg_job_t *j = cfg_find_job(c, "etc");
    assert_non_null(j);
    assert_int_equal(j->n_paths, 2);
    assert_int_equal(j->n_excludes, 1);
    assert_true(j->has_schedule);
    assert_string_equal(j->timezone, "Europe/Berlin");
    assert_int_equal(j->n_targets, 2);
    assert_int_equal(j->targets[1].repo, 1);
    /* nxs-backup form mapped; the per-repository policy overrides */
    const cfg_retention_t *r0 = cfg_target_retention(j, &j->targets[0]);
    assert_int_equal(r0->keep_daily, 7);
    assert_int_equal(r0->keep_weekly, 4);
    assert_int_equal(r0->keep_monthly, 6);
    assert_true(r0->prune);
    const cfg_retention_t *r1 = cfg_target_retention(j, &j->targets[1]);
    assert_int_equal(r1->keep_daily, 30);
    assert_string_equal(r1->keep_within, "7d");
    assert_int_equal(j->n_before, 2);
    assert_int_equal(j->before[1].timeout_s, 120);
    assert_int_equal(j->before[1].on_error, CFG_ON_ERROR_CONTINUE);
    assert_int_equal(j->limits.ionice_class, CFG_IONICE_BEST_EFFORT);
    assert_int_equal(j->limits.ionice_level, 7);
    const cfg_job_t *pg = cfg_find_job(c, "pg");
    assert_int_equal(pg->n_options, 5);
    assert_string_equal(pg->options[2].key, "database");
    assert_string_equal(pg->options[3].value, "b");
    assert_null(pg->options[4].value); /* bare flag */
    assert_string_equal(pg->env[0].key, "PGPASSWORD");
    const cfg_job_t *cmd = cfg_find_job(c, "cmd");
    assert_int_equal(cmd->n_command, 3);
    assert_string_equal(cmd->filename, "cmd.out");
    assert_int_equal(c->n_copies, 1);
    assert_int_equal(c->copies[0].every_s, 600);
    assert_string_equal(c->copies[0].name, "local-to-s3");
    assert_int_equal(c->n_notify, 2);
    assert_int_equal(c->notify[0].level, CFG_LEVEL_WARNING);
    assert_string_equal(c->notify[1].password, "file-password");
    assert_int_equal(c->server.max_concurrent, 2);
    assert_false(c->server.run_missed);
    /* the printout masks every secret */
    buf_t b;
    buf_init(&b);
    assert_int_equal(cfg_print(c, &b), 0);
    const char *txt = (const char *)b.data;
    assert_null(strstr(txt, "s3cr3t"));
    assert_null(strstr(txt, "file-password"));
    assert_null(strstr(txt, "aws-secret"));
    assert_null(strstr(txt, "pg-secret"));
    assert_non_null(strstr(txt, "\"***\""));
    assert_non_null(strstr(txt, "keep_daily: 30"));
    /* and reads back as a valid config (minus secrets) */
    buf_release(&b);
    cfg_free(c);
}

static void expect_bad(const char *text, const char *where, const char *what)
{
    write_file("bad.yaml", text);
    cfg_t *c = NULL;
    int rc = load("bad.yaml", &c);
    if (rc == 0) {
        cfg_free(c);
        fail_msg("config accepted, expected an error with \"%s\"", what);
    }
    if ((where && !strstr(err_msg(), where)) || !strstr(err_msg(), what))
        fail_msg("error \"%s\" lacks \"%s\" / \"%s\"", err_msg(), where ? where : "", what);
}

#define R "repositories: {r: {url: /x, password: p}}\n"

static void test_bad(void **state)
{
    (void)state;
    expect_bad(R "jobs:\n  - name: a\n    type: files\n    pahts: [/x]\n    repositories: [r]\n",
               "bad.yaml:5:5:", "unknown key \"pahts\" in job (did you mean \"paths\"?)");
    expect_bad(R "jobs:\n  - {name: a, type: files, paths: [/x], repositories: [r],\n"
                 "     schedule: \"61 * * * *\"}\n",
               "bad.yaml:4:16:", "minute field");
    expect_bad(R "jobs:\n  - {name: a, type: files, paths: /x, repositories: [nope]}\n",
               "bad.yaml:3:", "repository \"nope\" is not defined");
    expect_bad(R "jobs:\n  - {name: a, type: tape, repositories: [r]}\n",
               "bad.yaml:3:", "\"tape\" is not a job type");
    expect_bad(R "jobs:\n  - {name: a, type: files, repositories: [r]}\n", NULL,
               "type files needs paths");
    expect_bad(R "jobs: {name: a}\n", "bad.yaml:2:7:", "expected a list");
    expect_bad(R "jobs:\n  - {name: a, type: files, paths: [/x], repositories: [r],\n"
                 "     retention: {keep_daily: lots}}\n",
               "bad.yaml:4:30:", "keep_daily: expected a whole number");
    expect_bad(R "jobs:\n  - {name: a, type: files, paths: [/x], repositories: [r],\n"
                 "     retention: {days: 7, keep_daily: 3}}\n",
               NULL, "say the same thing");
    expect_bad("repositories: {r: {url: /x, password_file: /nonexistent/pw}}\n",
               "bad.yaml:1:44:", "cannot read secret file /nonexistent/pw");
    unsetenv("CFGT_UNSET");
    expect_bad("repositories: {r: {url: \"${CFGT_UNSET}\", password: p}}\n",
               "bad.yaml:1:", "environment variable CFGT_UNSET is not set");
    expect_bad("repositories: {r: {url: \"${bad\", password: p}}\n", NULL,
               "bad variable reference");
    expect_bad("repositories: {r: {url: /x}}\n", NULL, "password or password_file is required");
    expect_bad("server: {listen: 9100}\n", "bad.yaml:1:18:", "expected HOST:PORT");
    expect_bad(R "jobs:\n  - {name: a, type: files, paths: [/x], repositories: [r],\n"
                 "     timezone: Mars/Base}\n",
               NULL, "\"Mars/Base\" is not a known IANA zone");
    expect_bad(R "jobs:\n  - {name: a, type: postgres, repositories: [r],\n"
                 "     options: {password: x}}\n",
               NULL, "secret on a command line");
    expect_bad("jobs: [\n", "bad.yaml:", "YAML syntax error");
    expect_bad("a: &x [*x, *x]\nrepositories: {}\n", "bad.yaml:1:1:", "unknown key \"a\"");
    expect_bad(R "jobs:\n  - {name: a, type: files, paths: [/x], repositories: [r]}\n"
                 "  - {name: a, type: files, paths: [/x], repositories: [r]}\n",
               "bad.yaml:4:", "job \"a\" is defined twice");
    expect_bad("include: [missing.yaml]\n", "bad.yaml:1:10:", "does not exist");
    write_file("conf.d/loop.yaml", "include: [loop.yaml]\n");
    expect_bad("include: [conf.d/loop.yaml]\n", NULL, "included twice");
    unlink("conf.d/loop.yaml");
    char lp[512];
    snprintf(lp, sizeof lp, "%s/conf.d/loop.yaml", dir);
    unlink(lp);
    expect_bad("copy:\n  - {from: r, to: r, every: 10m}\n" R, NULL, "same repository");
    expect_bad("notifications:\n  - {type: email, smtp_url: \"smtp://x\", from: a}\n", NULL,
               "smtp_url, from and to are required");
}

static void test_buffer_and_subst(void **state)
{
    (void)state;
    setenv("CFGT_HOST", "db1", 1);
    const char *t =
        "repositories: {r: {url: \"/b/${CFGT_HOST}/$${HOME}\", password: \"${E:-dflt}\"}}\n";
    cfg_t *c = NULL;
    assert_int_equal(cfg_load_buffer("mem", t, strlen(t), false, &c), 0);
    assert_string_equal(c->repos[0].url, "/b/db1/${HOME}");
    assert_string_equal(c->repos[0].password, "dflt");
    cfg_free(c);
    /* an empty document is an empty config */
    assert_int_equal(cfg_load_buffer("mem", "", 0, false, &c), 0);
    assert_int_equal(c->n_jobs, 0);
    assert_int_equal(c->server.max_concurrent, 1);
    assert_true(c->server.run_missed);
    cfg_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_buffer_and_subst),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
