/*
 * export.h -- export Kubernetes objects as one pretty-printed, pruned JSON file each.
 *
 * Layer: source/k8s (uses k8s, common). Layout (doc/k8s.md):
 *   NAMESPACE/RESOURCE/NAME.json           core group   (shop/configmaps/web.json)
 *   NAMESPACE/RESOURCE.GROUP/NAME.json     other groups (shop/deployments.apps/web.json)
 *   _cluster/RESOURCE[.GROUP]/NAME.json    cluster-scoped (_cluster/namespaces/shop.json)
 * "_cluster" cannot clash with a namespace (namespace names have no '_').
 *
 * What is exported: every kind the server lists (discovery: verbs list and get) in the chosen
 * namespaces, filtered by label selector and include/exclude kinds; the Namespace objects of
 * those namespaces; with cluster_resources every listable cluster-scoped kind; always the CRDs
 * of exported custom objects and the PVs bound to exported PVCs. Skipped by default: Secrets
 * (unless include_secrets; one warning), Events, Endpoints, EndpointSlices, and objects whose
 * controller (ownerReferences controller=true) is of an exported kind (unless include_owned);
 * cluster kinds nodes, componentstatuses, csinodes, volumeattachments unless included by name.
 *
 * Errors: a kind the server does not know (404) or the account may not read (403) is one
 * warning and counted in kinds_skipped, never fatal. Any other failure of one kind (5xx after
 * retries, a malformed list) is recorded through the error callback and the export goes on
 * (the command exits 3, "partial"). A failure to reach the server at all, or of the sink, stops
 * the export with that error.
 */
#ifndef COFFER_SOURCE_K8S_EXPORT_H
#define COFFER_SOURCE_K8S_EXPORT_H

#include "k8s/client.h"
#include "source/k8s/prune.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct k8s_export_stats {
    uint64_t objects, bytes, kinds, kinds_skipped, owned_skipped, errors;
} k8s_export_stats_t;

/* The sink gets each file: path as in the layout above, the JSON text (n bytes, ends with a
 * newline) and the object's creationTimestamp in ns (0 if none). Called in a stable order
 * (resource id, then namespace, then name). Returns 0 or an error code (stops the export). */
typedef int (*k8s_sink_fn)(void *ud, const char *path, const char *data, size_t n,
                           int64_t ctime_ns);
/* Called for a per-kind failure that does not stop the export (message is err_msg()). */
typedef void (*k8s_error_fn)(void *ud, const char *what, const char *message);

typedef struct k8s_export_opts {
    char *const *namespaces; /* NULL/0 with all_namespaces false: the context's namespace */
    size_t n_namespaces;
    bool all_namespaces;
    const char *label_selector;
    char *const *include_kinds; /* names as kubectl takes them: configmaps, cm, deploy, ... */
    size_t n_include;
    char *const *exclude_kinds;
    size_t n_exclude;
    bool cluster_resources;
    bool include_secrets;
    bool include_owned;
    k8s_prune_opts_t prune;
    int page_size;               /* 0 = 500 */
    volatile sig_atomic_t *stop; /* may be NULL */
    k8s_sink_fn sink;
    k8s_error_fn on_error; /* may be NULL */
    void *ud;
} k8s_export_opts_t;

int k8s_export(k8s_client_t *c, const k8s_export_opts_t *o, k8s_export_stats_t *out_stats);

/* Serialize obj the way export writes it (2-space indent, API key order, trailing newline);
 * *out malloc'd, caller frees. */
int k8s_export_dump(json_t *obj, char **out, size_t *out_n);

#endif
