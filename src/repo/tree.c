/*
 * tree.c -- tree blob codec (see tree.h, doc/format.md §9.1).
 *
 * Layer: repo.
 */
#include "repo/tree.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

void tree_init(tree_t *t)
{
    memset(t, 0, sizeof *t);
}

void tree_release(tree_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        node_release(&t->nodes[i]);
    free(t->nodes);
    tree_init(t);
}

int tree_add(tree_t *t, node_t *n)
{
    if (t->n >= TREE_MAX_NODES)
        return err_set(COFFER_ELIMIT, "directory has more than %d entries", TREE_MAX_NODES);
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        node_t *nn = realloc(t->nodes, nc * sizeof *nn);
        if (!nn)
            return err_set(COFFER_ENOMEM, "out of memory building a tree");
        t->nodes = nn;
        t->cap = nc;
    }
    t->nodes[t->n++] = *n;
    node_init(n);
    return 0;
}

static int cmp_nodes(const void *a, const void *b)
{
    return strcmp(((const node_t *)a)->name, ((const node_t *)b)->name);
}

int tree_sort(tree_t *t)
{
    if (t->n > 1)
        qsort(t->nodes, t->n, sizeof *t->nodes, cmp_nodes);
    for (size_t i = 1; i < t->n; i++)
        if (strcmp(t->nodes[i - 1].name, t->nodes[i].name) == 0)
            return err_set(COFFER_EINVAL, "duplicate entry name \"%s\"", t->nodes[i].name);
    return 0;
}

const node_t *tree_find(const tree_t *t, const char *name)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->nodes[mid].name, name);
        if (c == 0)
            return &t->nodes[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int put_str(buf_t *b, const char *s)
{
    return buf_put_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

static int encode_node(const node_t *n, buf_t *b)
{
    int rc;
    if ((rc = put_str(b, n->name)) || (rc = buf_put_u8(b, (uint8_t)n->type)) ||
        (rc = buf_put_varint(b, n->mode)) || (rc = buf_put_varint(b, n->uid)) ||
        (rc = buf_put_varint(b, n->gid)) || (rc = put_str(b, n->user)) ||
        (rc = put_str(b, n->group)) || (rc = buf_put_varint(b, zigzag(n->mtime_ns))) ||
        (rc = buf_put_varint(b, zigzag(n->ctime_ns))) || (rc = buf_put_varint(b, n->size)) ||
        (rc = buf_put_varint(b, n->inode)) || (rc = buf_put_varint(b, n->dev)) ||
        (rc = buf_put_varint(b, n->nlink)) || (rc = buf_put_varint(b, n->rdev)) ||
        (rc = put_str(b, n->link_target)) || (rc = buf_put_varint(b, n->n_xattrs)))
        return rc;
    for (size_t i = 0; i < n->n_xattrs; i++)
        if ((rc = put_str(b, n->xattrs[i].name)) ||
            (rc = buf_put_bytes(b, n->xattrs[i].value, n->xattrs[i].len)))
            return rc;
    if ((rc = buf_put_varint(b, n->flags)) || (rc = put_str(b, n->error)))
        return rc;
    if (n->type == NODE_FILE) {
        if ((rc = buf_put_varint(b, n->n_extents)))
            return rc;
        for (size_t i = 0; i < n->n_extents; i++) {
            const node_extent_t *e = &n->extents[i];
            if ((rc = buf_put_u8(b, e->hole ? 1 : 0)) || (rc = buf_put_varint(b, e->len)))
                return rc;
            if (!e->hole && (rc = buf_append(b, e->id, 32)))
                return rc;
        }
    } else if (n->type == NODE_DIR) {
        if ((rc = buf_append(b, n->subtree, 32)))
            return rc;
    }
    return 0;
}

int tree_encode(const tree_t *t, buf_t *out)
{
    int rc = buf_append(out, "CTR1", 4);
    if (!rc)
        rc = buf_put_varint(out, t->n);
    for (size_t i = 0; i < t->n && !rc; i++)
        rc = encode_node(&t->nodes[i], out);
    return rc;
}

/* Read a varint-prefixed string (max bytes) into a fresh NUL-terminated copy; empty gives NULL
 * when allow_null. */
static int get_str(rd_t *r, size_t max, bool allow_null, char **out)
{
    const uint8_t *p;
    size_t n;
    int rc = rd_bytes(r, max, &p, &n);
    if (rc)
        return rc;
    if (n == 0 && allow_null) {
        *out = NULL;
        return 0;
    }
    if (memchr(p, 0, n))
        return err_set(COFFER_ECORRUPT, "%s: string contains NUL", r->what);
    char *s = malloc(n + 1);
    if (!s)
        return err_set(COFFER_ENOMEM, "out of memory reading %s", r->what);
    memcpy(s, p, n);
    s[n] = 0;
    *out = s;
    return 0;
}

static int get_u32v(rd_t *r, uint32_t *out)
{
    uint64_t v;
    int rc = rd_varint(r, &v);
    if (rc)
        return rc;
    if (v > UINT32_MAX)
        return err_set(COFFER_ECORRUPT, "%s: value out of range", r->what);
    *out = (uint32_t)v;
    return 0;
}

static int decode_node(rd_t *r, node_t *n)
{
    int rc;
    uint8_t type;
    uint64_t mt, ct, nx;
    if ((rc = get_str(r, NODE_NAME_MAX, false, &n->name)))
        return rc;
    if ((rc = node_name_valid(n->name, strlen(n->name))))
        return err_ctx(rc, "in %s", r->what);
    if ((rc = rd_u8(r, &type)))
        return rc;
    if (type < NODE_FILE || type > NODE_SOCK)
        return err_set(COFFER_ECORRUPT, "%s: unknown node type %u", r->what, type);
    n->type = (node_type_t)type;
    if ((rc = get_u32v(r, &n->mode)) || (rc = get_u32v(r, &n->uid)) ||
        (rc = get_u32v(r, &n->gid)) || (rc = get_str(r, 1024, true, &n->user)) ||
        (rc = get_str(r, 1024, true, &n->group)) || (rc = rd_varint(r, &mt)) ||
        (rc = rd_varint(r, &ct)) || (rc = rd_varint(r, &n->size)) ||
        (rc = rd_varint(r, &n->inode)) || (rc = rd_varint(r, &n->dev)) ||
        (rc = rd_varint(r, &n->nlink)) || (rc = rd_varint(r, &n->rdev)) ||
        (rc = get_str(r, NODE_LINK_MAX, true, &n->link_target)) || (rc = rd_varint(r, &nx)))
        return rc;
    if (n->mode > 07777)
        return err_set(COFFER_ECORRUPT, "%s: invalid mode", r->what);
    n->mtime_ns = unzigzag(mt);
    n->ctime_ns = unzigzag(ct);
    n->atime_ns = n->mtime_ns; /* atime is not stored: restore sets it to mtime */
    if (nx > NODE_XATTR_MAX || nx > r->left / 2)
        return err_set(COFFER_ECORRUPT, "%s: too many xattrs", r->what);
    if (nx) {
        n->xattrs = calloc((size_t)nx, sizeof *n->xattrs);
        if (!n->xattrs)
            return err_set(COFFER_ENOMEM, "out of memory reading %s", r->what);
        for (size_t i = 0; i < nx; i++) {
            const uint8_t *p;
            size_t len;
            n->n_xattrs = i + 1;
            if ((rc = get_str(r, 255, false, &n->xattrs[i].name)) ||
                (rc = rd_bytes(r, NODE_XATTR_VALUE_MAX, &p, &len)))
                return rc;
            if (len) {
                n->xattrs[i].value = malloc(len);
                if (!n->xattrs[i].value)
                    return err_set(COFFER_ENOMEM, "out of memory reading %s", r->what);
                memcpy(n->xattrs[i].value, p, len);
            }
            n->xattrs[i].len = len;
            if (i && strcmp(n->xattrs[i - 1].name, n->xattrs[i].name) >= 0)
                return err_set(COFFER_ECORRUPT, "%s: xattrs not sorted", r->what);
        }
    }
    if ((rc = get_u32v(r, &n->flags)) || (rc = get_str(r, 65536, true, &n->error)))
        return rc;
    if (n->type == NODE_FILE) {
        uint64_t ne, total = 0;
        if ((rc = rd_varint(r, &ne)))
            return rc;
        if (ne > r->left / 2)
            return err_set(COFFER_ECORRUPT, "%s: invalid extent count", r->what);
        for (uint64_t i = 0; i < ne; i++) {
            uint8_t kind;
            uint64_t len;
            const uint8_t *id = NULL;
            if ((rc = rd_u8(r, &kind)) || (rc = rd_varint(r, &len)))
                return rc;
            if (kind > 1 || (kind == 0 && len > (64u << 20)) || len > UINT64_MAX - total)
                return err_set(COFFER_ECORRUPT, "%s: invalid extent", r->what);
            if (kind == 0 && (rc = rd_raw(r, 32, &id)))
                return rc;
            if ((rc = node_add_extent(n, id, len, kind == 1)))
                return rc;
            total += len;
        }
        if (total != n->size)
            return err_set(COFFER_ECORRUPT, "%s: extents of \"%s\" do not add up to its size",
                           r->what, n->name);
    } else if (n->type == NODE_DIR) {
        const uint8_t *id;
        if ((rc = rd_raw(r, 32, &id)))
            return rc;
        memcpy(n->subtree, id, 32);
    }
    return 0;
}

int tree_decode(const void *data, size_t n, const char *what, tree_t *t)
{
    rd_t r;
    rd_init(&r, data, n, what);
    const uint8_t *magic;
    uint64_t count;
    int rc = rd_raw(&r, 4, &magic);
    if (rc)
        return rc;
    if (memcmp(magic, "CTR1", 4) != 0)
        return err_set(COFFER_ECORRUPT, "%s: bad tree magic", what);
    if ((rc = rd_varint(&r, &count)))
        return rc;
    if (count > TREE_MAX_NODES || count > r.left / 16)
        return err_set(COFFER_ECORRUPT, "%s: invalid entry count", what);
    for (uint64_t i = 0; i < count; i++) {
        node_t nd;
        node_init(&nd);
        rc = decode_node(&r, &nd);
        if (!rc && t->n && strcmp(t->nodes[t->n - 1].name, nd.name) >= 0)
            rc = err_set(COFFER_ECORRUPT, "%s: entries not sorted or not unique", what);
        if (!rc)
            rc = tree_add(t, &nd);
        if (rc) {
            node_release(&nd);
            tree_release(t);
            return rc;
        }
    }
    if (r.left) {
        tree_release(t);
        return err_set(COFFER_ECORRUPT, "%s: trailing bytes after the tree", what);
    }
    return 0;
}
