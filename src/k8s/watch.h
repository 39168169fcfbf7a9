/*
 * watch.h -- watch a resource: a list, then a stream of ADDED/MODIFIED/DELETED events from its
 * resourceVersion, with bookmarks, and a re-list when the server answers 410 Gone (the
 * resourceVersion was compacted), as client-go's reflector does.
 *
 * Layer: k8s (uses client). The event callback gets the type and the object (borrowed); it
 * returns 0 to go on, >0 to stop (k8s_watch returns 0 then), <0 an error code to fail with.
 * Each stream asks the server to end after timeout_s (default 300) and is then re-opened from
 * the last resourceVersion seen; the whole watch ends after duration_s (0 = until the callback
 * stops it).
 */
#ifndef COFFER_K8S_WATCH_H
#define COFFER_K8S_WATCH_H

#include "k8s/client.h"

typedef enum k8s_event {
    K8S_EV_ADDED,
    K8S_EV_MODIFIED,
    K8S_EV_DELETED,
    K8S_EV_BOOKMARK, /* obj carries only metadata.resourceVersion */
    K8S_EV_SYNC,     /* one per object of a (re-)list, before the stream starts */
    K8S_EV_RELIST,   /* a 410 Gone: a new list follows (obj NULL) */
} k8s_event_t;

typedef int (*k8s_event_cb)(k8s_event_t ev, json_t *obj, void *ud);

typedef struct k8s_watch_opts {
    const char *label_selector, *field_selector;
    const char *resource_version; /* start here without a list (NULL: list first) */
    int timeout_s;                /* per stream; 0 = 300 */
    double duration_s;            /* whole watch; 0 = no limit */
    bool bookmarks;               /* allowWatchBookmarks */
} k8s_watch_opts_t;

int k8s_watch(k8s_client_t *c, const k8s_res_t *r, const char *ns, const k8s_watch_opts_t *o,
              k8s_event_cb cb, void *ud);

/* Parse one watch line into type and object (exposed for tests). *out_obj is a new reference. */
int k8s_watch_parse_line(const char *line, size_t len, k8s_event_t *out_type, json_t **out_obj,
                         long *out_error_code);

#endif
