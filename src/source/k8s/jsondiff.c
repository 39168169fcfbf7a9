/*
 * jsondiff.c -- structural JSON diff (see jsondiff.h).
 *
 * Layer: source/k8s. Recursive over the two documents with a path buffer; keys of b that a
 * lacks are reported after a's keys, in b's order.
 */
#include "source/k8s/jsondiff.h"
#include "common/buf.h"
#include "common/error.h"

#include <stdbool.h>
#include <string.h>

#define DIFF_MAX_DEPTH 64

typedef struct dctx {
    k8s_diff_cb cb;
    void *ud;
    buf_t path;
} dctx_t;

static int walk(dctx_t *c, json_t *a, json_t *b, int depth);

static int push(dctx_t *c, const char *fmt, const char *s, size_t idx)
{
    if (fmt[0] == '.')
        return c->path.len ? buf_printf(&c->path, ".%s", s) : buf_append_str(&c->path, s);
    if (s)
        return buf_printf(&c->path, "[%s]", s);
    return buf_printf(&c->path, "[%zu]", idx);
}

static void cut(dctx_t *c, size_t len)
{
    c->path.len = len;
    if (c->path.data)
        c->path.data[len] = 0;
}

static const char *path_of(dctx_t *c)
{
    return c->path.data ? (const char *)c->path.data : "";
}

static bool named_array(json_t *a)
{
    size_t n = json_array_size(a);
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *ni = json_string_value(json_object_get(json_array_get(a, i), "name"));
        if (!ni)
            return false;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(ni, json_string_value(json_object_get(json_array_get(a, k), "name"))))
                return false;
    }
    return true;
}

static json_t *by_name(json_t *a, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && !strcmp(n, name))
            return e;
    }
    return NULL;
}

static int walk_objects(dctx_t *c, json_t *a, json_t *b, int depth)
{
    size_t base = c->path.len;
    const char *k;
    json_t *va;
    int rc = 0;
    json_object_foreach(a, k, va)
    {
        json_t *vb = json_object_get(b, k);
        if ((rc = push(c, ".", k, 0)))
            return rc;
        rc = vb ? walk(c, va, vb, depth + 1) : c->cb(c->ud, path_of(c), va, NULL);
        cut(c, base);
        if (rc)
            return rc;
    }
    json_t *vb;
    json_object_foreach(b, k, vb)
    {
        if (json_object_get(a, k))
            continue;
        if ((rc = push(c, ".", k, 0)))
            return rc;
        rc = c->cb(c->ud, path_of(c), NULL, vb);
        cut(c, base);
        if (rc)
            return rc;
    }
    return 0;
}

static int walk_arrays(dctx_t *c, json_t *a, json_t *b, int depth)
{
    size_t base = c->path.len;
    int rc = 0;
    if (named_array(a) && named_array(b)) {
        size_t i;
        json_t *e;
        json_array_foreach(a, i, e)
        {
            const char *n = json_string_value(json_object_get(e, "name"));
            json_t *o = by_name(b, n);
            if ((rc = push(c, "[", n, 0)))
                return rc;
            rc = o ? walk(c, e, o, depth + 1) : c->cb(c->ud, path_of(c), e, NULL);
            cut(c, base);
            if (rc)
                return rc;
        }
        json_array_foreach(b, i, e)
        {
            const char *n = json_string_value(json_object_get(e, "name"));
            if (by_name(a, n))
                continue;
            if ((rc = push(c, "[", n, 0)))
                return rc;
            rc = c->cb(c->ud, path_of(c), NULL, e);
            cut(c, base);
            if (rc)
                return rc;
        }
        return 0;
    }
    size_t na = json_array_size(a), nb = json_array_size(b);
    for (size_t i = 0; i < na || i < nb; i++) {
        if ((rc = push(c, "[", NULL, i)))
            return rc;
        json_t *x = json_array_get(a, i), *y = json_array_get(b, i);
        rc = x && y ? walk(c, x, y, depth + 1) : c->cb(c->ud, path_of(c), x, y);
        cut(c, base);
        if (rc)
            return rc;
    }
    return 0;
}

static int walk(dctx_t *c, json_t *a, json_t *b, int depth)
{
    if (json_equal(a, b))
        return 0;
    if (depth < DIFF_MAX_DEPTH && json_is_object(a) && json_is_object(b))
        return walk_objects(c, a, b, depth);
    if (depth < DIFF_MAX_DEPTH && json_is_array(a) && json_is_array(b))
        return walk_arrays(c, a, b, depth);
    return c->cb(c->ud, path_of(c), a, b);
}

int k8s_json_diff(json_t *a, json_t *b, k8s_diff_cb cb, void *ud)
{
    dctx_t c = {.cb = cb, .ud = ud};
    buf_init(&c.path);
    int rc = buf_reserve(&c.path, 128);
    if (!rc) {
        c.path.data[0] = 0;
        rc = walk(&c, a, b, 0);
    }
    buf_release(&c.path);
    return rc;
}
