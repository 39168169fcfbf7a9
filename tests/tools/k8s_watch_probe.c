/*
 * k8s_watch_probe.c -- test tool: run src/k8s/watch.c against a server and print one line per
 * event ("SYNC name", "ADDED name", "MODIFIED name", "DELETED name", "BOOKMARK rv", "RELIST"),
 * so an integration test can check list+watch, bookmarks and the re-list on 410 Gone.
 *
 * usage: k8s_watch_probe KUBECONFIG GROUP VERSION RESOURCE NAMESPACE SECONDS [RESOURCE_VERSION]
 * (GROUP "" for the core group). Exits 0 when the watch ended after SECONDS, 1 on an error.
 * Layer: tests (links libcoffer).
 */
#include "common/error.h"
#include "k8s/watch.h"

#include <stdio.h>
#include <stdlib.h>

static const char *name_of(json_t *o)
{
    const char *n = json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
    return n ? n : "?";
}

static int on_event(k8s_event_t ev, json_t *obj, void *ud)
{
    (void)ud;
    switch (ev) {
    case K8S_EV_SYNC:
        printf("SYNC %s\n", name_of(obj));
        break;
    case K8S_EV_ADDED:
        printf("ADDED %s\n", name_of(obj));
        break;
    case K8S_EV_MODIFIED:
        printf("MODIFIED %s\n", name_of(obj));
        break;
    case K8S_EV_DELETED:
        printf("DELETED %s\n", name_of(obj));
        break;
    case K8S_EV_BOOKMARK:
        printf("BOOKMARK %s\n", json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                                                  "resourceVersion")));
        break;
    case K8S_EV_RELIST:
        printf("RELIST\n");
        break;
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: k8s_watch_probe KUBECONFIG GROUP VERSION RESOURCE NAMESPACE "
                        "SECONDS [RESOURCE_VERSION]\n");
        return 2;
    }
    k8s_config_t cfg;
    k8s_client_t *c = NULL;
    int rc = k8s_kubeconfig_load(argv[1], NULL, &cfg);
    if (!rc)
        rc = k8s_client_new(&cfg, &c);
    if (!rc) {
        k8s_res_t r = {
            .group = argv[2], .version = argv[3], .resource = argv[4], .namespaced = true};
        k8s_watch_opts_t o = {.duration_s = atof(argv[6]),
                              .timeout_s = 1,
                              .bookmarks = true,
                              .resource_version = argc > 7 ? argv[7] : NULL};
        rc = k8s_watch(c, &r, argv[5], &o, on_event, NULL);
    }
    k8s_client_free(c);
    if (rc) {
        fprintf(stderr, "k8s_watch_probe: %s\n", err_msg());
        return 1;
    }
    return 0;
}
