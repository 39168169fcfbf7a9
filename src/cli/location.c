/*
 * location.c -- the location check as the CLI shows it: `coffer check --location` and the
 * probe `coffer init` runs before it writes a repository to a remote location.
 *
 * Layer: cli. Opens the location named by -r with the -o options, runs storage_probe and
 * prints one line per step (or a JSON document). No password is needed: nothing is decrypted.
 */
#include "cli/location.h"

#include "common/error.h"
#include "storage/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *result_word(probe_result_t r)
{
    switch (r) {
    case PROBE_OK:
        return "ok";
    case PROBE_WARN:
        return "warning";
    case PROBE_FAIL:
        return "FAILED";
    default:
        return "skipped";
    }
}

static void print_report(cli_t *cli, const char *location, const char *driver,
                         const probe_report_t *r, bool always)
{
    if (cli->json) {
        json_t *o = probe_report_json(r);
        json_object_set_new(o, "message_type", json_string("location_check"));
        json_object_set_new(o, "location", json_string(location));
        json_object_set_new(o, "driver", json_string(driver));
        cli_json_line(o); /* takes the reference */
        return;
    }
    if (!always && r->failed == 0 && r->warned == 0)
        return;
    FILE *f = r->failed ? stderr : stdout;
    fprintf(f, "location check of %s (%s driver):\n", location, driver);
    for (int i = 0; i < r->n; i++) {
        const probe_step_t *st = &r->steps[i];
        fprintf(f, "  %-18s %-8s %7.1f ms  %s\n", st->name, result_word(st->result), st->ms,
                st->detail);
    }
    const char *k;
    json_t *v;
    json_object_foreach(r->server, k, v)
    {
        if (!strcmp(k, "driver"))
            continue;
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        fprintf(f, "  server %-18s %s\n", k, text ? text : "?");
        free(text);
    }
    fprintf(f, "%s\n",
            r->failed   ? "the location cannot hold a coffer repository as it is: fix the "
                          "failed steps first"
            : r->warned ? "the location works, with the warnings above"
                        : "the location supports everything coffer needs");
}

int cli_location_check(cli_t *cli, bool create, bool always_print, bool skip_local)
{
    if (!cli->repo || !*cli->repo)
        return err_set(COFFER_EINVAL, "no location given: use -r/--repo or set "
                                      "COFFER_REPOSITORY");
    storage_t *s = NULL;
    storage_opts_t so = cli_storage_opts(cli);
    int rc = storage_open_opts(cli->repo, create, &so, &s);
    if (rc)
        return rc;
    if (skip_local && (storage_features(s) & STORAGE_F_LOCAL)) {
        storage_close(s);
        return 0;
    }
    probe_report_t rep;
    rc = storage_probe(s, NULL, &rep);
    print_report(cli, storage_location(s), storage_name(s), &rep, always_print);
    probe_report_release(&rep);
    storage_close(s);
    return rc;
}
