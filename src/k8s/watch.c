/*
 * watch.c -- list + watch with resume and 410 handling (see watch.h).
 *
 * Layer: k8s. An ERROR event in the stream carries a Status; code 410 means the same as an
 * HTTP 410 before the stream started: re-list.
 */
#include "k8s/watch.h"
#include "common/error.h"
#include "common/log.h"
#include "common/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int k8s_watch_parse_line(const char *line, size_t len, k8s_event_t *out_type, json_t **out_obj,
                         long *out_error_code)
{
    json_error_t je;
    json_t *ev = json_loadb(line, len, 0, &je);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    if (!type || !json_is_object(obj)) {
        json_decref(ev);
        return err_set(COFFER_ECORRUPT, "k8s: a watch event is not {type, object}");
    }
    k8s_event_t t;
    if (!strcmp(type, "ADDED"))
        t = K8S_EV_ADDED;
    else if (!strcmp(type, "MODIFIED"))
        t = K8S_EV_MODIFIED;
    else if (!strcmp(type, "DELETED"))
        t = K8S_EV_DELETED;
    else if (!strcmp(type, "BOOKMARK"))
        t = K8S_EV_BOOKMARK;
    else if (!strcmp(type, "ERROR")) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        const char *msg = json_string_value(json_object_get(obj, "message"));
        *out_error_code = (long)code;
        int rc = err_set(COFFER_EIO, "k8s: watch error %lld: %s", (long long)code,
                         msg ? msg : "(no message)");
        json_decref(ev);
        return rc;
    } else {
        json_decref(ev);
        return err_set(COFFER_ECORRUPT, "k8s: unknown watch event type \"%s\"", type);
    }
    *out_type = t;
    *out_obj = json_incref(obj);
    json_decref(ev);
    return 0;
}

typedef struct wctx {
    k8s_event_cb cb;
    void *ud;
    char rv[64];
    long error_code;
    int stop; /* >0 the callback stopped us */
} wctx_t;

static void note_rv(wctx_t *w, json_t *obj)
{
    const char *rv =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    if (rv && strlen(rv) < sizeof w->rv)
        snprintf(w->rv, sizeof w->rv, "%s", rv);
}

#define WATCH_GONE 1000000 /* line callback result: the stream said 410 */

static int on_line(const char *line, size_t len, void *ud)
{
    wctx_t *w = ud;
    k8s_event_t t;
    json_t *obj = NULL;
    long code = 0;
    int rc = k8s_watch_parse_line(line, len, &t, &obj, &code);
    if (rc) {
        if (code == 410) {
            err_clear();
            return WATCH_GONE;
        }
        return rc;
    }
    note_rv(w, obj);
    rc = w->cb(t, obj, w->ud);
    json_decref(obj);
    if (rc > 0) {
        w->stop = rc;
        return rc;
    }
    return rc;
}

typedef struct lctx {
    wctx_t *w;
} lctx_t;

static int on_item(json_t *item, void *ud)
{
    wctx_t *w = ud;
    int rc = w->cb(K8S_EV_SYNC, item, w->ud);
    if (rc > 0)
        w->stop = rc;
    return rc;
}

static int relist(k8s_client_t *c, const k8s_res_t *r, const char *ns, const k8s_watch_opts_t *o,
                  wctx_t *w)
{
    k8s_list_opts_t lo = {.label_selector = o->label_selector, .field_selector = o->field_selector};
    char *rv = NULL;
    int rc = k8s_list(c, r, ns, &lo, on_item, w, &rv);
    if (rc > 0)
        return 0; /* stopped by the callback */
    if (rc)
        return rc;
    snprintf(w->rv, sizeof w->rv, "%s", rv ? rv : "");
    free(rv);
    return 0;
}

int k8s_watch(k8s_client_t *c, const k8s_res_t *r, const char *ns, const k8s_watch_opts_t *o,
              k8s_event_cb cb, void *ud)
{
    k8s_watch_opts_t def = {0};
    if (!o)
        o = &def;
    wctx_t w = {.cb = cb, .ud = ud};
    int rc = 0;
    int64_t t_end = o->duration_s > 0 ? time_monotonic_ns() + (int64_t)(o->duration_s * 1e9) : 0;
    if (o->resource_version)
        snprintf(w.rv, sizeof w.rv, "%s", o->resource_version);
    else if ((rc = relist(c, r, ns, o, &w)) || w.stop)
        return rc;
    buf_t path, what;
    buf_init(&path);
    buf_init(&what);
    if ((rc = k8s_what(&what, r, ns, NULL)))
        goto out;
    while (!w.stop) {
        int timeout = o->timeout_s > 0 ? o->timeout_s : 300;
        if (t_end) {
            int64_t left = (t_end - time_monotonic_ns()) / 1000000000;
            if (left <= 0)
                break;
            if (left < timeout)
                timeout = (int)left;
            if (timeout < 1)
                timeout = 1;
        }
        char ts[16];
        snprintf(ts, sizeof ts, "%d", timeout);
        buf_reset(&path);
        if ((rc = k8s_path(&path, r, ns, NULL, NULL)) || (rc = k8s_query(&path, "watch", "1")) ||
            (rc = k8s_query(&path, "resourceVersion", w.rv)) ||
            (rc = k8s_query(&path, "timeoutSeconds", ts)))
            break;
        if (o->bookmarks && (rc = k8s_query(&path, "allowWatchBookmarks", "true")))
            break;
        if (o->label_selector && *o->label_selector &&
            (rc = k8s_query(&path, "labelSelector", o->label_selector)))
            break;
        if (o->field_selector && *o->field_selector &&
            (rc = k8s_query(&path, "fieldSelector", o->field_selector)))
            break;
        rc = k8s_stream(c, (char *)path.data, (char *)what.data, on_line, &w);
        if (rc > 0 && rc != WATCH_GONE)
            rc = 0; /* the callback stopped us */
        if (rc == WATCH_GONE || (rc && k8s_last_http(c) == 410)) {
            log_debug("k8s: watch of %s: resourceVersion %s is too old; listing again",
                      (char *)what.data, w.rv);
            err_clear();
            if ((rc = cb(K8S_EV_RELIST, NULL, ud)) > 0) {
                rc = 0;
                break;
            }
            if (rc || (rc = relist(c, r, ns, o, &w)))
                break;
            continue;
        }
        if (rc)
            break;
    }
out:
    buf_release(&path);
    buf_release(&what);
    return rc < 0 ? rc : 0;
}
