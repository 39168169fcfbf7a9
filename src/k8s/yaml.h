/*
 * yaml.h -- YAML documents (kubeconfig files, apply bodies) read into jansson values.
 *
 * Layer: k8s (uses common; libyaml, jansson). Mappings become objects (keys in document order),
 * sequences arrays; plain scalars true/false, null/~ and integers become JSON booleans, null and
 * integers, everything else (and every quoted scalar) a string. Aliases and anchors are refused
 * (no use in the files coffer reads, and no "billion laughs"); nesting is capped at
 * K8S_YAML_MAX_DEPTH and input at K8S_YAML_MAX_BYTES.
 */
#ifndef COFFER_K8S_YAML_H
#define COFFER_K8S_YAML_H

#include <jansson.h>
#include <stddef.h>

#define K8S_YAML_MAX_DEPTH 64
#define K8S_YAML_MAX_BYTES (16u << 20)

/* Parse the documents of data (n bytes). *out gets a JSON array with one value per document
 * (empty documents skipped); caller decrefs. `what` names the input in errors
 * ("kubeconfig /root/.kube/config"), which say the line and column. COFFER_ECORRUPT on bad
 * YAML, COFFER_ELIMIT on a limit. */
int k8s_yaml_parse_all(const char *data, size_t n, const char *what, json_t **out);

/* The first document only (COFFER_ECORRUPT when there is none). */
int k8s_yaml_parse(const char *data, size_t n, const char *what, json_t **out);

#endif
