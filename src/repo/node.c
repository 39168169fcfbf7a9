/*
 * node.c -- lifecycle helpers for node_t (see node.h).
 *
 * Layer: repo.
 */
#include "repo/node.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void node_init(node_t *n)
{
    memset(n, 0, sizeof *n);
}

void node_release(node_t *n)
{
    if (!n)
        return;
    free(n->name);
    free(n->user);
    free(n->group);
    free(n->link_target);
    for (size_t i = 0; i < n->n_xattrs; i++) {
        free(n->xattrs[i].name);
        free(n->xattrs[i].value);
    }
    free(n->xattrs);
    free(n->extents);
    free(n->error);
    node_init(n);
}

static int dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : err_set(COFFER_ENOMEM, "out of memory copying a node");
}

int node_copy(node_t *dst, const node_t *src)
{
    node_init(dst);
    *dst = *src;
    dst->name = dst->user = dst->group = dst->link_target = dst->error = NULL;
    dst->xattrs = NULL;
    dst->n_xattrs = 0;
    dst->extents = NULL;
    dst->n_extents = 0;
    int rc;
    if ((rc = dup_str(&dst->name, src->name)) || (rc = dup_str(&dst->user, src->user)) ||
        (rc = dup_str(&dst->group, src->group)) ||
        (rc = dup_str(&dst->link_target, src->link_target)) ||
        (rc = dup_str(&dst->error, src->error)))
        goto fail;
    if (src->n_extents) {
        dst->extents = malloc(src->n_extents * sizeof *dst->extents);
        if (!dst->extents) {
            rc = err_set(COFFER_ENOMEM, "out of memory copying a node");
            goto fail;
        }
        memcpy(dst->extents, src->extents, src->n_extents * sizeof *dst->extents);
        dst->n_extents = src->n_extents;
    }
    if (src->n_xattrs) {
        dst->xattrs = calloc(src->n_xattrs, sizeof *dst->xattrs);
        if (!dst->xattrs) {
            rc = err_set(COFFER_ENOMEM, "out of memory copying a node");
            goto fail;
        }
        dst->n_xattrs = src->n_xattrs;
        for (size_t i = 0; i < src->n_xattrs; i++) {
            if ((rc = dup_str(&dst->xattrs[i].name, src->xattrs[i].name)))
                goto fail;
            if (src->xattrs[i].len) {
                dst->xattrs[i].value = malloc(src->xattrs[i].len);
                if (!dst->xattrs[i].value) {
                    rc = err_set(COFFER_ENOMEM, "out of memory copying a node");
                    goto fail;
                }
                memcpy(dst->xattrs[i].value, src->xattrs[i].value, src->xattrs[i].len);
            }
            dst->xattrs[i].len = src->xattrs[i].len;
        }
    }
    return 0;
fail:
    node_release(dst);
    return rc;
}

int node_add_extent(node_t *n, const uint8_t id[32], uint64_t len, bool hole)
{
    /* grow by doubling when the count reaches a power of two */
    size_t c = n->n_extents;
    if (c == 0 || (c & (c - 1)) == 0) {
        size_t ncap = c ? c * 2 : 1;
        node_extent_t *ne = realloc(n->extents, ncap * sizeof *ne);
        if (!ne)
            return err_set(COFFER_ENOMEM, "out of memory adding an extent");
        n->extents = ne;
    }
    node_extent_t *e = &n->extents[c];
    if (id)
        memcpy(e->id, id, 32);
    else
        memset(e->id, 0, 32);
    e->len = len;
    e->hole = hole;
    n->n_extents = c + 1;
    return 0;
}

int node_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > NODE_NAME_MAX)
        return err_set(COFFER_ECORRUPT, "invalid entry name (length %zu)", len);
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return err_set(COFFER_ECORRUPT, "invalid entry name \"%.*s\"", (int)len, name);
    if (memchr(name, '/', len) || memchr(name, 0, len))
        return err_set(COFFER_ECORRUPT, "entry name contains '/' or NUL");
    return 0;
}
