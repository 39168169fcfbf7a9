/*
 * prune.h -- what an export removes from an object, and what a restore cleans up before it
 * creates the object in another cluster.
 *
 * Layer: source/k8s (uses jansson only). Both work in place on a JSON object (owned by the
 * caller) and never fail on unexpected shapes: a field that is not where the API puts it is
 * left alone.
 *
 * Export pruning: status; metadata uid, selfLink, resourceVersion, creationTimestamp,
 * generation, managedFields, deletionTimestamp, deletionGracePeriodSeconds; the
 * kubectl.kubernetes.io/last-applied-configuration annotation unless keep_last_applied (an
 * annotations map left empty is removed).
 *
 * Restore cleanup (by kind): everything export prunes plus ownerReferences; Service clusterIP(s)
 * (headless "None" kept) and nodePorts not in the last-applied configuration; Pod nodeName,
 * priority and service-account token volumes with their mounts; PV claimRef uid and
 * resourceVersion and the bind annotations; PVC bind, provisioner and selected-node
 * annotations; Job controller-uid labels and the generated selector; ServiceAccount references
 * to token Secrets.
 */
#ifndef COFFER_SOURCE_K8S_PRUNE_H
#define COFFER_SOURCE_K8S_PRUNE_H

#include <jansson.h>
#include <stdbool.h>

#define K8S_LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

typedef struct k8s_prune_opts {
    bool keep_last_applied;
    bool keep_status;
} k8s_prune_opts_t;

void k8s_prune_export(json_t *obj, const k8s_prune_opts_t *o);

typedef struct k8s_clean_opts {
    bool keep_nodeports; /* keep every Service nodePort, not only the ones applied explicitly */
} k8s_clean_opts_t;

/* group and kind of obj (from its apiVersion and kind) select the kind-specific steps. */
void k8s_clean_for_restore(json_t *obj, const k8s_clean_opts_t *o);

/* True for a Secret of type kubernetes.io/service-account-token (restore skips those: the
 * cluster makes its own). */
bool k8s_is_sa_token_secret(json_t *obj);

/* True when status says a Pod (Succeeded/Failed) or Job (a Complete or Failed condition) is
 * finished; false when status was pruned. */
bool k8s_is_completed(json_t *obj);

#endif
