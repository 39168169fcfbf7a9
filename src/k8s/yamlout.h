/*
 * yamlout.h -- JSON values written as block-style YAML (for manifests people read and diff).
 *
 * Layer: k8s (uses common; libyaml's emitter, jansson). Deterministic: object keys in their
 * insertion order, the same value always gives the same bytes. Strings that a YAML 1.1 reader
 * (kubectl) would take for something else (true, no, 010, 1e3, ~, "", 12:30...) are quoted;
 * strings with line breaks use the literal block style (|) where YAML allows it. JSON numbers,
 * booleans and null are written plain.
 */
#ifndef COFFER_K8S_YAMLOUT_H
#define COFFER_K8S_YAMLOUT_H

#include "common/buf.h"

#include <jansson.h>

/* Append each element of docs (a JSON array) to out as one YAML document, each starting with
 * "---". Errors: COFFER_EINVAL (a value YAML cannot hold), COFFER_ENOMEM. */
int k8s_yaml_emit_docs(const json_t *docs, buf_t *out);

/* Append one value as a YAML document without the "---" marker. */
int k8s_yaml_emit(const json_t *value, buf_t *out);

#endif
