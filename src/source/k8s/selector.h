/*
 * selector.h -- Kubernetes label selectors evaluated on the client (restore filters).
 *
 * Layer: source/k8s (jansson). Grammar as kubectl's -l: comma-separated requirements
 * "k=v", "k==v", "k!=v", "k in (a,b)", "k notin (a,b)", "k", "!k". At most 64 requirements.
 */
#ifndef COFFER_SOURCE_K8S_SELECTOR_H
#define COFFER_SOURCE_K8S_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>

typedef struct k8s_selector k8s_selector_t;

/* COFFER_EINVAL naming the bad requirement. */
int k8s_selector_parse(const char *s, k8s_selector_t **out);
/* obj's metadata.labels satisfy every requirement (a NULL selector matches everything). */
bool k8s_selector_match(const k8s_selector_t *sel, json_t *obj);
void k8s_selector_free(k8s_selector_t *sel); /* accepts NULL */

#endif
