/*
 * cmd_diff.c -- `coffer diff SNAP1 SNAP2`: what changed from one snapshot to another.
 *
 * Layer: cli. Both trees are walked in parallel, merging the sorted names of each directory.
 * A directory whose subtree id is equal on both sides is identical all the way down (tree
 * blobs are content-addressed), so it is skipped without being read: diffing two snapshots
 * of a large, mostly unchanged tree reads only the directories on the paths that changed.
 *
 * Change letters: "+" added, "-" removed, "M" content changed (file extents, symlink target,
 * device number), "U" metadata only (mode, owner, mtime, xattrs), "T" type changed. Added or
 * removed directories list everything below them too. Byte counts are content bytes: for an
 * added or removed file all its stored extents, for a modified one the extents (by blob id)
 * that are only on one side.
 *
 * Two k8s export snapshots (kind "k8s"): each changed object is followed by its JSON diff, one
 * line per changed field ("~ spec.replicas: 2 -> 3", "+ path: value", "- path: value"); with
 * --json the modified line carries a "diff" array of {op, path, old, new}.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "source/k8s/jsondiff.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIFF_MAX_DEPTH 4096

typedef struct diff_ctx {
    cli_t *cli;
    repo_t *r;
    buf_t path;
    uint64_t added, removed, modified, metadata, typechg;
    uint64_t bytes_added, bytes_removed;
    bool k8s;          /* both snapshots are k8s exports: show JSON diffs of objects */
    json_t *json_diff; /* --json: the diff array of the current object */
} diff_ctx_t;

static void help(void)
{
    printf(
        "usage: coffer diff SNAP1 SNAP2 [--json]\n"
        "  SNAP1, SNAP2  \"latest\" or id prefixes (see `coffer snapshots`)\n"
        "Lines: \"+ PATH\" added, \"- PATH\" removed, \"M PATH\" content changed,\n"
        "       \"U PATH\" metadata only (mode, owner, mtime, xattrs), \"T PATH\" type changed;\n"
        "then a summary with counts and the content bytes added and removed.\n"
        "--json: one {\"path\",\"change\"} object per line, then a summary object.\n"
        "Two k8s export snapshots: each modified object is followed by the fields that\n"
        "changed (\"~ path: old -> new\", \"+ path: value\", \"- path: value\"; --json: a\n"
        "\"diff\" array of {op, path, old, new}).\n");
}

static void path_cut(diff_ctx_t *c, size_t len)
{
    c->path.len = len;
    if (c->path.data)
        c->path.data[len] = 0;
}

static int path_push(diff_ctx_t *c, const char *name)
{
    int rc = buf_put_u8(&c->path, '/');
    return rc ? rc : buf_append_str(&c->path, name);
}

static void report(diff_ctx_t *c, char letter)
{
    const char *change = "?";
    switch (letter) {
    case '+':
        c->added++;
        change = "added";
        break;
    case '-':
        c->removed++;
        change = "removed";
        break;
    case 'M':
        c->modified++;
        change = "modified";
        break;
    case 'U':
        c->metadata++;
        change = "metadata";
        break;
    case 'T':
        c->typechg++;
        change = "type";
        break;
    }
    const char *p = (const char *)c->path.data;
    if (c->cli->json) {
        json_t *o = json_pack("{s:s,s:s}", "path", p, "change", change);
        if (o && c->json_diff)
            json_object_set(o, "diff", c->json_diff);
        cli_json_line(o);
    } else {
        printf("%c %s\n", letter, p);
    }
}

static uint64_t content_bytes(const node_t *n)
{
    uint64_t sum = 0;
    if (n->type == NODE_FILE)
        for (size_t i = 0; i < n->n_extents; i++)
            if (!n->extents[i].hole)
                sum += n->extents[i].len;
    return sum;
}

static int tree_load(diff_ctx_t *c, const uint8_t id[32], tree_t *t)
{
    int rc = repo_load_tree(c->r, id, t);
    if (rc)
        rc = err_ctx(rc, "while comparing %s", c->path.len ? (const char *)c->path.data : "/");
    return rc;
}

/* Report every entry below directory `id` with letter (+ or -), counting their bytes. */
static int whole_tree(diff_ctx_t *c, const uint8_t id[32], char letter, int depth)
{
    if (depth > DIFF_MAX_DEPTH)
        return err_set(COFFER_ELIMIT, "directories nested deeper than %d levels at %s",
                       DIFF_MAX_DEPTH, (const char *)c->path.data);
    tree_t t;
    tree_init(&t);
    int rc = tree_load(c, id, &t);
    size_t base = c->path.len;
    for (size_t i = 0; !rc && i < t.n; i++) {
        const node_t *n = &t.nodes[i];
        if (cli_stop) {
            rc = err_set(COFFER_EINTR, "interrupted");
            break;
        }
        path_cut(c, base);
        if ((rc = path_push(c, n->name)))
            break;
        report(c, letter);
        if (letter == '+')
            c->bytes_added += content_bytes(n);
        else
            c->bytes_removed += content_bytes(n);
        if (n->type == NODE_DIR)
            rc = whole_tree(c, n->subtree, letter, depth + 1);
    }
    path_cut(c, base);
    tree_release(&t);
    return rc;
}

/* One node added or removed (the path already names it). */
static int whole_node(diff_ctx_t *c, const node_t *n, char letter, int depth)
{
    report(c, letter);
    if (letter == '+')
        c->bytes_added += content_bytes(n);
    else
        c->bytes_removed += content_bytes(n);
    return n->type == NODE_DIR ? whole_tree(c, n->subtree, letter, depth + 1) : 0;
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool extents_eq(const node_t *a, const node_t *b)
{
    if (a->size != b->size || a->n_extents != b->n_extents)
        return false;
    for (size_t i = 0; i < a->n_extents; i++) {
        const node_extent_t *x = &a->extents[i], *y = &b->extents[i];
        if (x->hole != y->hole || x->len != y->len || (!x->hole && memcmp(x->id, y->id, 32)))
            return false;
    }
    return true;
}

static bool xattrs_eq(const node_t *a, const node_t *b)
{
    if (a->n_xattrs != b->n_xattrs)
        return false;
    for (size_t i = 0; i < a->n_xattrs; i++) {
        const node_xattr_t *x = &a->xattrs[i], *y = &b->xattrs[i];
        if (strcmp(x->name, y->name) != 0 || x->len != y->len ||
            (x->len && memcmp(x->value, y->value, x->len) != 0))
            return false;
    }
    return true;
}

static bool content_eq(const node_t *a, const node_t *b)
{
    switch (a->type) {
    case NODE_FILE:
        return extents_eq(a, b);
    case NODE_SYMLINK:
        return str_eq(a->link_target, b->link_target);
    case NODE_CHR:
    case NODE_BLK:
        return a->rdev == b->rdev;
    default:
        return true;
    }
}

static bool meta_eq(const node_t *a, const node_t *b)
{
    return a->mode == b->mode && a->uid == b->uid && a->gid == b->gid && str_eq(a->user, b->user) &&
           str_eq(a->group, b->group) && a->mtime_ns == b->mtime_ns && xattrs_eq(a, b);
}

typedef struct ext_ref {
    const uint8_t *id;
    uint64_t len;
} ext_ref_t;

static int ext_cmp(const void *x, const void *y)
{
    return memcmp(((const ext_ref_t *)x)->id, ((const ext_ref_t *)y)->id, 32);
}

static int stored_extents(const node_t *n, ext_ref_t **out, size_t *out_n)
{
    size_t k = 0;
    ext_ref_t *v = calloc(n->n_extents ? n->n_extents : 1, sizeof *v);
    if (!v)
        return err_set(COFFER_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->n_extents; i++)
        if (!n->extents[i].hole)
            v[k++] = (ext_ref_t){n->extents[i].id, n->extents[i].len};
    if (k > 1)
        qsort(v, k, sizeof *v, ext_cmp);
    *out = v;
    *out_n = k;
    return 0;
}

/* Bytes of a modified file: extents only in the new version are added, only in the old one
 * removed (a multiset difference by blob id, so a file that grew by one chunk counts one). */
static int count_modified(diff_ctx_t *c, const node_t *a, const node_t *b)
{
    ext_ref_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0, i = 0, j = 0;
    int rc = stored_extents(a, &x, &nx);
    if (!rc)
        rc = stored_extents(b, &y, &ny);
    if (rc)
        goto out;
    while (i < nx || j < ny) {
        int d = i == nx ? 1 : j == ny ? -1 : memcmp(x[i].id, y[j].id, 32);
        if (d < 0)
            c->bytes_removed += x[i++].len;
        else if (d > 0)
            c->bytes_added += y[j++].len;
        else
            i++, j++;
    }
out:
    free(x);
    free(y);
    return rc;
}

static int diff_trees(diff_ctx_t *c, const uint8_t a_id[32], const uint8_t b_id[32], int depth);

/* ---- k8s objects: a JSON diff of a changed file --------------------------------------------- */

static int read_file_json(diff_ctx_t *c, const node_t *n, json_t **out)
{
    buf_t data, blob;
    buf_init(&data);
    buf_init(&blob);
    int rc = 0;
    for (size_t i = 0; i < n->n_extents && !rc; i++) {
        if (n->extents[i].hole)
            continue;
        buf_reset(&blob);
        if (!(rc = repo_read_blob(c->r, BLOB_DATA, n->extents[i].id, &blob)))
            rc = buf_append(&data, blob.data, blob.len);
    }
    json_error_t je;
    json_t *v = rc ? NULL : json_loadb((const char *)data.data, data.len, 0, &je);
    buf_release(&data);
    buf_release(&blob);
    if (rc)
        return err_ctx(rc, "while comparing %s", (const char *)c->path.data);
    *out = v; /* NULL when it is not JSON: no field diff then */
    return 0;
}

static void print_value(json_t *v)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    fputs(s ? s : "?", stdout);
    free(s);
}

static int on_field(void *ud, const char *path, json_t *old_v, json_t *new_v)
{
    diff_ctx_t *c = ud;
    const char *op = !old_v ? "add" : !new_v ? "remove" : "replace";
    if (c->json_diff) {
        json_t *e = json_pack("{s:s,s:s}", "op", op, "path", path);
        if (e && old_v)
            json_object_set(e, "old", old_v);
        if (e && new_v)
            json_object_set(e, "new", new_v);
        json_array_append_new(c->json_diff, e);
        return 0;
    }
    printf("    %c %s: ", !old_v ? '+' : !new_v ? '-' : '~', path);
    print_value(old_v ? old_v : new_v);
    if (old_v && new_v) {
        fputs(" -> ", stdout);
        print_value(new_v);
    }
    putchar('\n');
    return 0;
}

/* A modified k8s object: report it with the diff of its fields. */
static int report_object(diff_ctx_t *c, const node_t *a, const node_t *b)
{
    json_t *ja = NULL, *jb = NULL;
    int rc = read_file_json(c, a, &ja);
    if (!rc)
        rc = read_file_json(c, b, &jb);
    if (rc || !ja || !jb) {
        json_decref(ja);
        json_decref(jb);
        if (!rc)
            report(c, 'M');
        return rc;
    }
    if (c->cli->json) {
        c->json_diff = json_array();
        rc = k8s_json_diff(ja, jb, on_field, c);
        report(c, 'M');
        json_decref(c->json_diff);
        c->json_diff = NULL;
    } else {
        report(c, 'M');
        rc = k8s_json_diff(ja, jb, on_field, c);
    }
    json_decref(ja);
    json_decref(jb);
    return rc;
}

/* Two nodes of the same name (the path already names them). */
static int diff_nodes(diff_ctx_t *c, const node_t *a, const node_t *b, int depth)
{
    if (a->type != b->type) {
        report(c, 'T');
        c->bytes_removed += content_bytes(a);
        c->bytes_added += content_bytes(b);
        int rc = 0;
        if (a->type == NODE_DIR)
            rc = whole_tree(c, a->subtree, '-', depth + 1);
        if (!rc && b->type == NODE_DIR)
            rc = whole_tree(c, b->subtree, '+', depth + 1);
        return rc;
    }
    if (!content_eq(a, b)) {
        int rc = c->k8s && a->type == NODE_FILE ? report_object(c, a, b) : (report(c, 'M'), 0);
        return !rc && a->type == NODE_FILE ? count_modified(c, a, b) : rc;
    }
    if (!meta_eq(a, b))
        report(c, 'U');
    if (a->type == NODE_DIR)
        return diff_trees(c, a->subtree, b->subtree, depth + 1);
    return 0;
}

static int diff_trees(diff_ctx_t *c, const uint8_t a_id[32], const uint8_t b_id[32], int depth)
{
    if (memcmp(a_id, b_id, 32) == 0)
        return 0; /* same tree blob: identical below */
    if (depth > DIFF_MAX_DEPTH)
        return err_set(COFFER_ELIMIT, "directories nested deeper than %d levels at %s",
                       DIFF_MAX_DEPTH, (const char *)c->path.data);
    tree_t a, b;
    tree_init(&a);
    tree_init(&b);
    int rc = tree_load(c, a_id, &a);
    if (!rc)
        rc = tree_load(c, b_id, &b);
    size_t base = c->path.len, i = 0, j = 0;
    while (!rc && (i < a.n || j < b.n)) {
        if (cli_stop) {
            rc = err_set(COFFER_EINTR, "interrupted");
            break;
        }
        int d = i == a.n ? 1 : j == b.n ? -1 : strcmp(a.nodes[i].name, b.nodes[j].name);
        const node_t *n = d <= 0 ? &a.nodes[i] : &b.nodes[j];
        path_cut(c, base);
        if ((rc = path_push(c, n->name)))
            break;
        if (d < 0) {
            rc = whole_node(c, &a.nodes[i++], '-', depth);
        } else if (d > 0) {
            rc = whole_node(c, &b.nodes[j++], '+', depth);
        } else {
            rc = diff_nodes(c, &a.nodes[i], &b.nodes[j], depth);
            i++, j++;
        }
    }
    path_cut(c, base);
    tree_release(&a);
    tree_release(&b);
    return rc;
}

int cmd_diff(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("diff", "unknown option");
        }
    }
    if (argc - optind != 2)
        return cli_usage("diff", "give two snapshots (\"latest\" or ids)");
    diff_ctx_t c = {.cli = cli};
    buf_init(&c.path);
    snapshot_t s1, s2;
    snapshot_init(&s1);
    snapshot_init(&s2);
    repo_t *r = NULL;
    int rc = cli_open_repo(cli, &r);
    if (rc)
        goto out;
    c.r = r;
    if ((rc = cli_find_snapshot(r, argv[optind], NULL, &s1)) ||
        (rc = cli_find_snapshot(r, argv[optind + 1], NULL, &s2)) || (rc = repo_load_index(r)) ||
        (rc = buf_reserve(&c.path, 256)))
        goto out;
    c.path.data[0] = 0;
    c.k8s = s1.kind && s2.kind && !strcmp(s1.kind, "k8s") && !strcmp(s2.kind, "k8s");
    if ((rc = diff_trees(&c, s1.tree, s2.tree, 0)))
        goto out;
    if (cli->json) {
        char h1[65], h2[65];
        hex_encode(s1.id, 32, h1);
        hex_encode(s2.id, 32, h2);
        cli_json_line(
            json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "message_type", "summary",
                      "snapshot1", h1, "snapshot2", h2, "added", (json_int_t)c.added, "removed",
                      (json_int_t)c.removed, "modified", (json_int_t)c.modified, "metadata",
                      (json_int_t)c.metadata, "type_changed", (json_int_t)c.typechg, "bytes_added",
                      (json_int_t)c.bytes_added, "bytes_removed", (json_int_t)c.bytes_removed));
    } else if (!cli->quiet) {
        char ba[32], br[32];
        cli_fmt_bytes(c.bytes_added, ba, sizeof ba);
        cli_fmt_bytes(c.bytes_removed, br, sizeof br);
        printf("%" PRIu64 " added, %" PRIu64 " removed, %" PRIu64 " modified, %" PRIu64
               " metadata only, %" PRIu64 " type changed; %s added, %s removed\n",
               c.added, c.removed, c.modified, c.metadata, c.typechg, ba, br);
    }
out:
    snapshot_release(&s1);
    snapshot_release(&s2);
    repo_close(r);
    buf_release(&c.path);
    if (rc)
        return cli_fail(cli, rc);
    fflush(stdout);
    if (ferror(stdout))
        return cli_fail(cli, err_set(COFFER_EIO, "cannot write to stdout"));
    return EXIT_OK;
}
