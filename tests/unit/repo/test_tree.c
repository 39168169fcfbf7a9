/*
 * test_tree.c -- unit tests for src/repo/tree.c and node.c: encode/decode round trip of nodes
 * of every type (xattrs, extents with holes, names of the maximum length, negative times,
 * absent user/group names), determinism (insertion order does not change the bytes after
 * tree_sort), tree_find, node_copy, and a decoder that rejects unsorted or duplicate names,
 * invalid names ("", ".", "..", '/'), extents not adding up to the size, unsorted xattrs,
 * invalid modes and types, bad magic, trailing bytes, hostile counts, and every truncation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "repo/node.h"
#include "repo/tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static void fill_id(uint8_t id[32], uint8_t seed)
{
    for (int i = 0; i < 32; i++)
        id[i] = (uint8_t)(seed * 31 + i);
}

static void add_xattr(node_t *n, const char *name, const void *val, size_t len)
{
    node_xattr_t *nx = realloc(n->xattrs, (n->n_xattrs + 1) * sizeof *nx);
    assert_non_null(nx);
    n->xattrs = nx;
    nx[n->n_xattrs].name = xstrdup(name);
    nx[n->n_xattrs].value = NULL;
    if (len) {
        nx[n->n_xattrs].value = malloc(len);
        assert_non_null(nx[n->n_xattrs].value);
        memcpy(nx[n->n_xattrs].value, val, len);
    }
    nx[n->n_xattrs].len = len;
    n->n_xattrs++;
}

/* A node with every common field set; type-specific parts are added by the callers. */
static void base_node(node_t *n, const char *name, node_type_t type, int seed)
{
    node_init(n);
    n->name = xstrdup(name);
    n->type = type;
    n->mode = (uint32_t)(0644 + seed) & 07777;
    n->uid = 1000u + (uint32_t)seed;
    n->gid = UINT32_MAX - (uint32_t)seed;
    if (seed % 2) {
        n->user = xstrdup("alice");
        n->group = xstrdup("staff");
    }
    n->mtime_ns = seed % 3 ? 1700000000123456789ll + seed : -1234567890123ll; /* before 1970 */
    n->ctime_ns = INT64_MIN + seed;
    n->atime_ns = n->mtime_ns; /* not stored: decoded as mtime */
    n->inode = UINT64_MAX - (uint64_t)seed;
    n->dev = 0x803;
    n->nlink = 1 + (uint64_t)seed;
}

/* One node of each type, each with some xattrs. Added in a scrambled order. */
static void build_tree(tree_t *t, bool reversed)
{
    node_t nodes[9];
    size_t k = 0;

    /* regular file: blob, hole, blob; changed flag with a message */
    base_node(&nodes[k], "file.txt", NODE_FILE, 1);
    uint8_t id[32];
    fill_id(id, 1);
    assert_int_equal(node_add_extent(&nodes[k], id, 1000, false), 0);
    assert_int_equal(node_add_extent(&nodes[k], NULL, 1ull << 40, true), 0); /* 1 TiB hole */
    fill_id(id, 2);
    assert_int_equal(node_add_extent(&nodes[k], id, 5, false), 0);
    nodes[k].size = 1000 + (1ull << 40) + 5;
    nodes[k].flags = NODE_F_CHANGED;
    nodes[k].error = xstrdup("changed while read");
    add_xattr(&nodes[k], "security.capability", "\x01\x00\x00\x02", 4);
    add_xattr(&nodes[k], "user.empty", NULL, 0);
    add_xattr(&nodes[k], "user.mime", "text/plain", 10);
    k++;

    /* empty file: no extents */
    base_node(&nodes[k], "empty", NODE_FILE, 2);
    k++;

    /* unreadable file */
    base_node(&nodes[k], "locked", NODE_FILE, 3);
    nodes[k].flags = NODE_F_ERROR;
    nodes[k].error = xstrdup("permission denied");
    k++;

    base_node(&nodes[k], "dir", NODE_DIR, 4);
    fill_id(nodes[k].subtree, 9);
    nodes[k].mode = 01777;
    add_xattr(&nodes[k], "user.a", "1", 1);
    k++;

    base_node(&nodes[k], "link", NODE_SYMLINK, 5);
    nodes[k].link_target = xstrdup("../some/where with spaces");
    k++;

    base_node(&nodes[k], "tty", NODE_CHR, 6);
    nodes[k].rdev = (4ull << 8) | 1;
    k++;

    base_node(&nodes[k], "sda", NODE_BLK, 7);
    nodes[k].rdev = (8ull << 8);
    nodes[k].mode = 06755;
    k++;

    base_node(&nodes[k], "pipe", NODE_FIFO, 8);
    k++;

    /* a socket with a name of the maximum length in bytes, non-ASCII */
    char *longname = malloc(NODE_NAME_MAX + 1);
    assert_non_null(longname);
    for (int i = 0; i < NODE_NAME_MAX; i++)
        longname[i] = (char)(i % 2 ? 0xc3 : 0xa9);
    longname[NODE_NAME_MAX] = 0;
    base_node(&nodes[k], longname, NODE_SOCK, 9);
    free(longname);
    k++;

    for (size_t i = 0; i < k; i++)
        assert_int_equal(tree_add(t, &nodes[reversed ? k - 1 - i : (i * 5) % k]), 0);
}

static void assert_str_eq_or_null(const char *a, const char *b)
{
    if (!a || !b) {
        assert_true(a == b || (a && !*a) || (b && !*b));
        return;
    }
    assert_string_equal(a, b);
}

static void assert_node_equal(const node_t *a, const node_t *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->mode, b->mode);
    assert_int_equal(a->uid, b->uid);
    assert_int_equal(a->gid, b->gid);
    assert_str_eq_or_null(a->user, b->user);
    assert_str_eq_or_null(a->group, b->group);
    assert_true(a->mtime_ns == b->mtime_ns);
    assert_true(a->ctime_ns == b->ctime_ns);
    assert_true(a->size == b->size);
    assert_true(a->inode == b->inode);
    assert_true(a->dev == b->dev);
    assert_true(a->nlink == b->nlink);
    assert_true(a->rdev == b->rdev);
    assert_str_eq_or_null(a->link_target, b->link_target);
    assert_int_equal(a->n_xattrs, b->n_xattrs);
    for (size_t i = 0; i < a->n_xattrs; i++) {
        assert_string_equal(a->xattrs[i].name, b->xattrs[i].name);
        assert_int_equal(a->xattrs[i].len, b->xattrs[i].len);
        if (a->xattrs[i].len)
            assert_memory_equal(a->xattrs[i].value, b->xattrs[i].value, a->xattrs[i].len);
    }
    assert_int_equal(a->flags, b->flags);
    assert_str_eq_or_null(a->error, b->error);
    assert_int_equal(a->n_extents, b->n_extents);
    for (size_t i = 0; i < a->n_extents; i++) {
        assert_int_equal(a->extents[i].hole, b->extents[i].hole);
        assert_true(a->extents[i].len == b->extents[i].len);
        if (!a->extents[i].hole)
            assert_memory_equal(a->extents[i].id, b->extents[i].id, 32);
    }
    if (a->type == NODE_DIR)
        assert_memory_equal(a->subtree, b->subtree, 32);
}

static void encode_sorted(tree_t *t, buf_t *out)
{
    assert_int_equal(tree_sort(t), 0);
    assert_int_equal(tree_encode(t, out), 0);
}

static void test_roundtrip_every_type(void **state)
{
    (void)state;
    tree_t t, d;
    tree_init(&t);
    tree_init(&d);
    build_tree(&t, false);
    buf_t b;
    buf_init(&b);
    encode_sorted(&t, &b);
    assert_memory_equal(b.data, "CTR1", 4);
    assert_int_equal(tree_decode(b.data, b.len, "test tree", &d), 0);
    assert_int_equal(d.n, t.n);
    for (size_t i = 0; i < t.n; i++) {
        assert_node_equal(&t.nodes[i], &d.nodes[i]);
        assert_true(d.nodes[i].atime_ns == d.nodes[i].mtime_ns);
    }
    /* sorted bytewise: names with bytes >= 0x80 come last */
    for (size_t i = 1; i < d.n; i++)
        assert_true(strcmp(d.nodes[i - 1].name, d.nodes[i].name) < 0);
    assert_int_equal(d.nodes[d.n - 1].type, NODE_SOCK);
    assert_int_equal(strlen(d.nodes[d.n - 1].name), NODE_NAME_MAX);

    /* re-encoding the decoded tree gives the same bytes */
    buf_t b2;
    buf_init(&b2);
    assert_int_equal(tree_encode(&d, &b2), 0);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);

    /* tree_find */
    const node_t *f = tree_find(&d, "link");
    assert_non_null(f);
    assert_int_equal(f->type, NODE_SYMLINK);
    assert_non_null(tree_find(&d, "dir"));
    assert_non_null(tree_find(&d, "file.txt"));
    assert_null(tree_find(&d, "missing"));
    assert_null(tree_find(&d, ""));

    /* node_copy is deep and equal */
    for (size_t i = 0; i < d.n; i++) {
        node_t c;
        assert_int_equal(node_copy(&c, &d.nodes[i]), 0);
        assert_node_equal(&c, &d.nodes[i]);
        if (c.name)
            assert_ptr_not_equal(c.name, d.nodes[i].name);
        node_release(&c);
        assert_null(c.name);
    }
    node_release(NULL);
    buf_release(&b);
    buf_release(&b2);
    tree_release(&t);
    tree_release(&d);
    tree_release(NULL);
}

static void test_empty_tree(void **state)
{
    (void)state;
    tree_t t;
    tree_init(&t);
    buf_t b;
    buf_init(&b);
    encode_sorted(&t, &b);
    assert_int_equal(b.len, 5);
    assert_int_equal(tree_decode(b.data, b.len, "empty", &t), 0);
    assert_int_equal(t.n, 0);
    assert_null(tree_find(&t, "x"));
    buf_release(&b);
    tree_release(&t);
}

static void test_deterministic(void **state)
{
    (void)state;
    tree_t a, b;
    tree_init(&a);
    tree_init(&b);
    build_tree(&a, false);
    build_tree(&b, true);
    assert_string_not_equal(a.nodes[0].name, b.nodes[0].name); /* really different orders */
    buf_t ea, eb;
    buf_init(&ea);
    buf_init(&eb);
    encode_sorted(&a, &ea);
    encode_sorted(&b, &eb);
    assert_int_equal(ea.len, eb.len);
    assert_memory_equal(ea.data, eb.data, ea.len);
    /* sorting twice changes nothing */
    buf_reset(&eb);
    encode_sorted(&b, &eb);
    assert_memory_equal(ea.data, eb.data, ea.len);
    buf_release(&ea);
    buf_release(&eb);
    tree_release(&a);
    tree_release(&b);
}

static void test_sort_rejects_duplicates(void **state)
{
    (void)state;
    tree_t t;
    tree_init(&t);
    node_t n;
    base_node(&n, "same", NODE_FIFO, 1);
    assert_int_equal(tree_add(&t, &n), 0);
    assert_null(n.name); /* ownership moved */
    base_node(&n, "other", NODE_FIFO, 2);
    assert_int_equal(tree_add(&t, &n), 0);
    base_node(&n, "same", NODE_SOCK, 3);
    assert_int_equal(tree_add(&t, &n), 0);
    assert_int_equal(tree_sort(&t), COFFER_EINVAL);
    tree_release(&t);
}

/* Encode the given nodes in the given order, without sorting or validation. */
static void encode_raw(node_t *nodes, size_t n, buf_t *out)
{
    tree_t t;
    tree_init(&t);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tree_add(&t, &nodes[i]), 0);
    buf_reset(out);
    assert_int_equal(tree_encode(&t, out), 0);
    tree_release(&t);
}

static void expect_corrupt(const buf_t *b, const char *why)
{
    tree_t t;
    tree_init(&t);
    int rc = tree_decode(b->data, b->len, why, &t);
    if (rc != COFFER_ECORRUPT)
        fail_msg("%s: expected COFFER_ECORRUPT, got %d", why, rc);
    assert_int_equal(t.n, 0);
    assert_null(t.nodes);
    tree_release(&t);
}

static void test_decode_rejects_names(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    node_t n[2];

    base_node(&n[0], "b", NODE_FIFO, 1);
    base_node(&n[1], "a", NODE_FIFO, 2);
    encode_raw(n, 2, &b);
    expect_corrupt(&b, "unsorted");

    base_node(&n[0], "a", NODE_FIFO, 1);
    base_node(&n[1], "a", NODE_SOCK, 2);
    encode_raw(n, 2, &b);
    expect_corrupt(&b, "duplicate");

    static const char *const bad[] = {"a/b", "/", ".", "..", "", "x/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        base_node(&n[0], bad[i], NODE_FIFO, 1);
        encode_raw(n, 1, &b);
        expect_corrupt(&b, bad[i]);
    }
    /* "..." and ".x" are fine */
    base_node(&n[0], "...", NODE_FIFO, 1);
    base_node(&n[1], ".x", NODE_FIFO, 1);
    encode_raw(n, 2, &b);
    tree_t t;
    tree_init(&t);
    assert_int_equal(tree_decode(b.data, b.len, "dots", &t), 0);
    assert_int_equal(t.n, 2);
    tree_release(&t);

    /* a name with a NUL byte inside */
    buf_reset(&b);
    assert_int_equal(buf_append(&b, "CTR1", 4), 0);
    assert_int_equal(buf_put_varint(&b, 1), 0);
    assert_int_equal(buf_put_bytes(&b, "a\0b", 3), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(buf_put_u8(&b, i == 0 ? NODE_FIFO : 0), 0);
    expect_corrupt(&b, "nul in name");

    /* a name longer than NODE_NAME_MAX */
    char *longname = malloc(NODE_NAME_MAX + 2);
    assert_non_null(longname);
    memset(longname, 'x', NODE_NAME_MAX + 1);
    longname[NODE_NAME_MAX + 1] = 0;
    base_node(&n[0], longname, NODE_FIFO, 1);
    free(longname);
    encode_raw(n, 1, &b);
    expect_corrupt(&b, "long name");
    buf_release(&b);
}

static void test_decode_rejects_content(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    node_t n[1];
    uint8_t id[32];
    fill_id(id, 3);

    /* extents adding up to less, or more, than the size */
    base_node(&n[0], "f", NODE_FILE, 1);
    assert_int_equal(node_add_extent(&n[0], id, 50, false), 0);
    n[0].size = 100;
    encode_raw(n, 1, &b);
    expect_corrupt(&b, "short extents");
    base_node(&n[0], "f", NODE_FILE, 1);
    assert_int_equal(node_add_extent(&n[0], id, 50, false), 0);
    assert_int_equal(node_add_extent(&n[0], NULL, 60, true), 0);
    n[0].size = 100;
    encode_raw(n, 1, &b);
    expect_corrupt(&b, "long extents");
    /* a file with a size but no extents */
    base_node(&n[0], "f", NODE_FILE, 1);
    n[0].size = 1;
    encode_raw(n, 1, &b);
    expect_corrupt(&b, "no extents");
    /* a blob extent larger than any blob */
    base_node(&n[0], "f", NODE_FILE, 1);
    assert_int_equal(node_add_extent(&n[0], id, (64ull << 20) + 1, false), 0);
    n[0].size = (64ull << 20) + 1;
    encode_raw(n, 1, &b);
    expect_corrupt(&b, "huge blob extent");

    /* xattrs out of order, and duplicated */
    base_node(&n[0], "x", NODE_FIFO, 1);
    add_xattr(&n[0], "user.b", "1", 1);
    add_xattr(&n[0], "user.a", "2", 1);
    encode_raw(n, 1, &b);
    expect_corrupt(&b, "xattrs unsorted");
    base_node(&n[0], "x", NODE_FIFO, 1);
    add_xattr(&n[0], "user.a", "1", 1);
    add_xattr(&n[0], "user.a", "2", 1);
    encode_raw(n, 1, &b);
    expect_corrupt(&b, "xattrs duplicated");

    /* mode outside 07777 */
    base_node(&n[0], "m", NODE_FIFO, 1);
    n[0].mode = 0100644;
    encode_raw(n, 1, &b);
    expect_corrupt(&b, "mode");

    /* unknown node types */
    base_node(&n[0], "t", NODE_FIFO, 1);
    n[0].type = (node_type_t)8;
    encode_raw(n, 1, &b);
    expect_corrupt(&b, "type 8");
    base_node(&n[0], "t", NODE_FIFO, 1);
    n[0].type = (node_type_t)0;
    encode_raw(n, 1, &b);
    expect_corrupt(&b, "type 0");

    /* bad magic, trailing bytes */
    base_node(&n[0], "ok", NODE_FIFO, 1);
    encode_raw(n, 1, &b);
    b.data[3] = '2';
    expect_corrupt(&b, "magic");
    b.data[3] = '1';
    assert_int_equal(buf_put_u8(&b, 0), 0);
    expect_corrupt(&b, "trailing");

    /* hostile counts: no allocation by count, just an error */
    uint64_t counts[] = {1, 2, 1000, TREE_MAX_NODES + 1ull, UINT64_MAX};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        buf_reset(&b);
        assert_int_equal(buf_append(&b, "CTR1", 4), 0);
        assert_int_equal(buf_put_varint(&b, counts[i]), 0);
        expect_corrupt(&b, "count");
    }
    buf_release(&b);
}

static void test_decode_every_truncation(void **state)
{
    (void)state;
    tree_t t;
    tree_init(&t);
    build_tree(&t, false);
    buf_t b;
    buf_init(&b);
    encode_sorted(&t, &b);
    for (size_t len = 0; len < b.len; len++) {
        tree_t d;
        tree_init(&d);
        /* copy so ASan catches any read past the prefix */
        uint8_t *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, b.data, len);
        int rc = tree_decode(p, len, "truncated", &d);
        if (rc != COFFER_ECORRUPT)
            fail_msg("prefix of %zu of %zu bytes: expected COFFER_ECORRUPT, got %d", len, b.len,
                     rc);
        assert_int_equal(d.n, 0);
        free(p);
        tree_release(&d);
    }
    tree_t d;
    tree_init(&d);
    assert_int_equal(tree_decode(b.data, b.len, "whole", &d), 0);
    assert_int_equal(d.n, t.n);
    tree_release(&d);
    buf_release(&b);
    tree_release(&t);
}

static void test_many_nodes(void **state)
{
    (void)state;
    tree_t t, d;
    tree_init(&t);
    tree_init(&d);
    for (int i = 5000; i > 0; i--) {
        node_t n;
        char name[32];
        snprintf(name, sizeof name, "n%05d", i);
        base_node(&n, name, NODE_FILE, i);
        uint8_t id[32];
        fill_id(id, (uint8_t)i);
        assert_int_equal(node_add_extent(&n, id, (uint64_t)i, false), 0);
        n.size = (uint64_t)i;
        assert_int_equal(tree_add(&t, &n), 0);
    }
    buf_t b;
    buf_init(&b);
    encode_sorted(&t, &b);
    assert_int_equal(tree_decode(b.data, b.len, "many", &d), 0);
    assert_int_equal(d.n, 5000);
    assert_string_equal(d.nodes[0].name, "n00001");
    const node_t *f = tree_find(&d, "n04321");
    assert_non_null(f);
    assert_true(f->size == 4321);
    buf_release(&b);
    tree_release(&t);
    tree_release(&d);
}

static void test_node_name_valid(void **state)
{
    (void)state;
    assert_int_equal(node_name_valid("a", 1), 0);
    assert_int_equal(node_name_valid("a.b", 3), 0);
    assert_int_equal(node_name_valid("", 0), COFFER_ECORRUPT);
    assert_int_equal(node_name_valid(".", 1), COFFER_ECORRUPT);
    assert_int_equal(node_name_valid("..", 2), COFFER_ECORRUPT);
    assert_int_equal(node_name_valid("a/b", 3), COFFER_ECORRUPT);
    assert_int_equal(node_name_valid("a\0b", 3), COFFER_ECORRUPT);
    /* length is what counts, not the NUL: ".." followed by more bytes is fine */
    assert_int_equal(node_name_valid("..x", 3), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_empty_tree),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_sort_rejects_duplicates),
        cmocka_unit_test(test_decode_rejects_names),
        cmocka_unit_test(test_decode_rejects_content),
        cmocka_unit_test(test_decode_every_truncation),
        cmocka_unit_test(test_many_nodes),
        cmocka_unit_test(test_node_name_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
