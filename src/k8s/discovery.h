/*
 * discovery.h -- which resources the API server serves: groups, their preferred versions, and
 * per resource its kind, scope and verbs (the /api, /apis, /api/v1 and /apis/G/V documents).
 *
 * Layer: k8s (uses client). Only each group's preferred version is listed (so an object served
 * in two versions is seen once), subresources ("deployments/status") are left out. A group
 * version whose document cannot be read (an aggregated API that is down: 503) is skipped with
 * a warning, never fatal: export works on what the cluster can serve.
 */
#ifndef COFFER_K8S_DISCOVERY_H
#define COFFER_K8S_DISCOVERY_H

#include "k8s/client.h"

#include <stdbool.h>
#include <stddef.h>

enum {
    K8S_VERB_GET = 1u << 0,
    K8S_VERB_LIST = 1u << 1,
    K8S_VERB_WATCH = 1u << 2,
    K8S_VERB_CREATE = 1u << 3,
    K8S_VERB_UPDATE = 1u << 4,
    K8S_VERB_PATCH = 1u << 5,
    K8S_VERB_DELETE = 1u << 6,
};

typedef struct k8s_resource {
    char *group, *version, *resource, *kind, *singular; /* owned */
    char **short_names;
    size_t n_short;
    bool namespaced;
    bool has_status; /* a RESOURCE/status subresource is served */
    unsigned verbs;  /* K8S_VERB_* */
} k8s_resource_t;

typedef struct k8s_discovery {
    k8s_resource_t *res; /* sorted by group then resource */
    size_t n;
} k8s_discovery_t;

int k8s_discover(k8s_client_t *c, k8s_discovery_t *out);
void k8s_discovery_release(k8s_discovery_t *d); /* accepts NULL */

/* A k8s_res_t view of r (borrowed strings). */
k8s_res_t k8s_res_of(const k8s_resource_t *r);

/* Find by "resource", "resource.group", kind (case-insensitive), singular or a short name;
 * NULL when unknown. */
const k8s_resource_t *k8s_discovery_find(const k8s_discovery_t *d, const char *name);
/* Find by group and kind (exact). */
const k8s_resource_t *k8s_discovery_by_kind(const k8s_discovery_t *d, const char *group,
                                            const char *kind);
/* "resource.group" or "resource" for the core group, into out (>= 256 bytes). */
void k8s_resource_id(const k8s_resource_t *r, char *out, size_t n);

#endif
