/*
 * restore.h -- restore exported Kubernetes objects into a cluster.
 *
 * Layer: source/k8s (uses k8s, repo, common). Objects come from an export directory or from a
 * k8s snapshot; every file is parsed and checked (apiVersion, kind, metadata.name, a path of
 * the export layout) before anything is applied, so a malformed file stops the restore with a
 * message naming it and nothing half-done. Then: filters, skip rules (nodes, events,
 * completed pods and jobs, service-account token Secrets, controller-managed endpoint slices),
 * namespace mapping, restore-time cleanup (prune.h), the priority order, and per object a GET
 * and a create (or, with existing=update, a server-side apply). CRDs restored in the run are
 * waited on until Established before custom objects follow. Namespaces that objects need and
 * the set does not hold are created. Every object gets a result in the report; when the server
 * stops answering, the rest are reported "not-applied".
 *
 * Default priority (resource ids, doc/k8s.md): customresourcedefinitions, namespaces,
 * storageclasses, persistentvolumes, persistentvolumeclaims, clusterroles, roles,
 * serviceaccounts, clusterrolebindings, rolebindings, secrets, configmaps, limitranges,
 * priorityclasses, pods, replicasets, endpoints, services, then the rest alphabetically.
 */
#ifndef COFFER_SOURCE_K8S_RESTORE_H
#define COFFER_SOURCE_K8S_RESTORE_H

#include "k8s/client.h"
#include "repo/repo.h"
#include "source/k8s/prune.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct k8s_robj {
    char *path; /* NS/RESOURCE[.GROUP]/NAME.json as exported */
    char *rid;  /* RESOURCE[.GROUP] from the path */
    json_t *obj;
} k8s_robj_t;

typedef struct k8s_rset {
    k8s_robj_t *v;
    size_t n, cap;
} k8s_rset_t;

void k8s_rset_release(k8s_rset_t *s);
/* Load every *.json below dir. */
int k8s_rset_load_dir(const char *dir, k8s_rset_t *out);
/* Load every file of a snapshot tree (index loaded). */
int k8s_rset_load_snapshot(repo_t *r, const uint8_t tree[32], k8s_rset_t *out);

typedef enum k8s_action {
    K8S_CREATED,
    K8S_UPDATED,
    K8S_EXISTS,  /* skipped: it exists and existing=skip */
    K8S_SKIPPED, /* skipped by a rule (node, event, completed, token secret) */
    K8S_FAILED,
    K8S_NOT_APPLIED, /* never attempted: an earlier error stopped the restore */
    K8S_WOULD_CREATE,
    K8S_WOULD_UPDATE,
    K8S_WOULD_SKIP,
} k8s_action_t;

const char *k8s_action_name(k8s_action_t a);

typedef struct k8s_rresult {
    const char *path, *rid, *ns, *name; /* ns "" for cluster objects; after mapping */
    k8s_action_t action;
    const char *message; /* reason or error; may be NULL */
} k8s_rresult_t;

typedef void (*k8s_report_fn)(void *ud, const k8s_rresult_t *r);

typedef struct k8s_nsmap {
    const char *from, *to;
} k8s_nsmap_t;

typedef struct k8s_restore_opts {
    char *const *namespaces; /* only objects of these (original) namespaces; 0 = all */
    size_t n_namespaces;
    char *const *include_kinds, *const *exclude_kinds; /* resource, resource.group or Kind */
    size_t n_include, n_exclude;
    char *const *names; /* only objects with these names */
    size_t n_names;
    const char *label_selector;
    const k8s_nsmap_t *map;
    size_t n_map;
    char *const *priority; /* resource ids first, in this order (NULL: the default) */
    size_t n_priority;
    bool update_existing; /* --existing update: server-side apply; default skip */
    bool dry_run;
    bool keep_nodeports;
    int crd_wait_s; /* 0 = 60 */
    volatile sig_atomic_t *stop;
    k8s_report_fn report;
    void *ud;
} k8s_restore_opts_t;

typedef struct k8s_restore_stats {
    size_t created, updated, exists, skipped, failed, not_applied, planned, filtered;
} k8s_restore_stats_t;

/* Returns 0 when every object got a result (failures are counted: the caller exits 3), or an
 * error when the restore stopped (the report then holds not-applied entries). */
int k8s_restore(k8s_client_t *c, k8s_rset_t *set, const k8s_restore_opts_t *o,
                k8s_restore_stats_t *out_stats);

#endif
