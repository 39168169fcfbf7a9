/*
 * jsondiff.h -- the differences between two JSON documents, as paths with old and new values
 * (for `coffer diff` of two k8s export snapshots).
 *
 * Layer: source/k8s (jansson). Objects are compared key by key; arrays whose elements are all
 * objects with distinct "name" strings (containers, env, ports, volumes) are matched by name
 * and shown as containers[web]; other arrays by index. Paths read like kubectl's JSONPath
 * without the leading dot: spec.template.spec.containers[web].image. Depth is capped at 64
 * (deeper differences are reported at the cap as one replaced value).
 */
#ifndef COFFER_SOURCE_K8S_JSONDIFF_H
#define COFFER_SOURCE_K8S_JSONDIFF_H

#include <jansson.h>

/* old_v NULL: added; new_v NULL: removed; both: replaced. Values are borrowed. Return non-zero
 * to stop (returned by k8s_json_diff). */
typedef int (*k8s_diff_cb)(void *ud, const char *path, json_t *old_v, json_t *new_v);

int k8s_json_diff(json_t *a, json_t *b, k8s_diff_cb cb, void *ud);

#endif
