/*
 * client.h -- a Kubernetes API client over libcurl: requests with authentication, TLS, retries
 * and errors decoded from Status objects; typed helpers for get, list (paginated), create,
 * server-side apply, patch, update, status updates and delete.
 *
 * Layer: k8s (uses common; libcurl, jansson). One client is one connection (keep-alive) and is
 * used from one thread at a time. Retries: 429 and 503 for every method, other 5xx and
 * connection failures for GET only, at most K8S_RETRIES times, waiting Retry-After seconds when
 * the server sends it (capped at 60) or an exponential backoff. A 401 re-reads a tokenFile and
 * re-runs an exec credential plugin once before failing.
 *
 * Errors: every failure sets the error record with a message of the form
 *   k8s: deployments.apps "web" in namespace "shop": forbidden: <the server's message>
 * and returns COFFER_ENOENT (404), COFFER_EEXIST (409), COFFER_EINVAL (400, 422), COFFER_EIO
 * (everything else); k8s_last_http() tells the HTTP status (0: no response) so callers can
 * tell 403 and 410 apart. Secrets never appear in messages.
 */
#ifndef COFFER_K8S_CLIENT_H
#define COFFER_K8S_CLIENT_H

#include "common/buf.h"
#include "k8s/kubeconfig.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define K8S_RETRIES 5
#define K8S_MAX_RESPONSE (512u << 20)

typedef struct k8s_client k8s_client_t;

/* What a request addresses: group "" is the core group. */
typedef struct k8s_res {
    const char *group, *version, *resource;
    bool namespaced;
} k8s_res_t;

/* The client takes ownership of *cfg (it is re-initialized). Runs an exec credential plugin
 * now when the configuration has one. */
int k8s_client_new(k8s_config_t *cfg, k8s_client_t **out);
void k8s_client_free(k8s_client_t *c); /* accepts NULL */
const k8s_config_t *k8s_client_config(const k8s_client_t *c);
/* HTTP status of the last response (0 when none arrived). */
long k8s_last_http(const k8s_client_t *c);
/* Reason of the last Status error ("Forbidden", "Expired"...) or "" (borrowed). */
const char *k8s_last_reason(const k8s_client_t *c);

/* One request. path starts with "/" and holds the query. body may be NULL. what names the
 * object for messages. *out_body (may be NULL) gets the parsed JSON response on success
 * (caller decrefs). */
int k8s_request(k8s_client_t *c, const char *method, const char *path, const char *content_type,
                const char *body, size_t body_len, const char *what, json_t **out_body);

/* Streaming GET for watches: every complete line of the response body goes to line_cb (return
 * non-zero from it to stop; that value is returned). A non-2xx answer is decoded like
 * k8s_request's. */
typedef int (*k8s_line_cb)(const char *line, size_t len, void *ud);
int k8s_stream(k8s_client_t *c, const char *path, const char *what, k8s_line_cb cb, void *ud);

/* URL path of a resource: /api/v1[/namespaces/NS]/RESOURCE[/NAME[/SUB]] or /apis/G/V/...
 * ns is ignored for cluster-scoped resources; NULL or "" ns on a namespaced resource means all
 * namespaces. Components are percent-encoded. Appends to out. */
int k8s_path(buf_t *out, const k8s_res_t *r, const char *ns, const char *name, const char *sub);
/* Append "&k=v" or "?k=v" (v percent-encoded). */
int k8s_query(buf_t *out, const char *key, const char *value);
/* "deployments.apps \"web\" in namespace \"shop\"" into out. */
int k8s_what(buf_t *out, const k8s_res_t *r, const char *ns, const char *name);

int k8s_get(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name, json_t **out);

/* List every object (following continue tokens, `limit` per page, 0 = 500). item_cb gets each
 * item with apiVersion and kind filled in (borrowed; incref to keep). *out_rv (may be NULL)
 * gets the list's resourceVersion (caller frees). A 410 on a continue token restarts the list
 * once from the beginning only when no item was delivered yet; otherwise it fails. */
typedef struct k8s_list_opts {
    const char *label_selector, *field_selector;
    int limit;
} k8s_list_opts_t;
typedef int (*k8s_item_cb)(json_t *item, void *ud);
int k8s_list(k8s_client_t *c, const k8s_res_t *r, const char *ns, const k8s_list_opts_t *o,
             k8s_item_cb item_cb, void *ud, char **out_rv);

int k8s_create(k8s_client_t *c, const k8s_res_t *r, const char *ns, json_t *obj, bool dry_run,
               json_t **out);
/* PUT (replace); obj must carry metadata.resourceVersion for optimistic concurrency or none. */
int k8s_update(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name, json_t *obj,
               bool dry_run, json_t **out);
/* PUT .../status. */
int k8s_update_status(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name,
                      json_t *obj, json_t **out);
/* Server-side apply (PATCH application/apply-patch+yaml, fieldManager=coffer, force=true). */
int k8s_apply(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name, json_t *obj,
              bool dry_run, json_t **out);
typedef enum k8s_patch_type {
    K8S_PATCH_MERGE,
    K8S_PATCH_STRATEGIC,
    K8S_PATCH_JSON
} k8s_patch_type_t;
int k8s_patch(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name,
              k8s_patch_type_t type, json_t *patch, json_t **out);
/* propagation: "Background", "Foreground", "Orphan" or NULL (server default). */
int k8s_delete(k8s_client_t *c, const k8s_res_t *r, const char *ns, const char *name,
               const char *propagation);

#endif
