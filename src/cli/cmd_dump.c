/*
 * cmd_dump.c -- `coffer dump SNAP PATH`: write one file of a snapshot to stdout.
 *
 * Layer: cli. PATH is the path `coffer ls` shows ("/<root entry>/dir/file"). When the snapshot
 * has a single root entry, the path may also leave that entry out ("/dir/file"). Extents are
 * written in order, holes as zeros, every blob verified as it is read (repo_read_blob).
 */
#include "cli/cmds.h"
#include "common/error.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: coffer dump SNAP PATH [--host H] [--tag T]\n"
           "  SNAP   \"latest\" or an id prefix (see `coffer snapshots`)\n"
           "  PATH   a file as `coffer ls SNAP` shows it, e.g. /data/etc/hosts\n"
           "Writes the file's content to stdout (e.g. `coffer dump latest /pg.sql | psql`).\n");
}

/* The snapshot's only root entry (caller frees), or NULL when it has none or several. */
static char *single_root(repo_t *r, const uint8_t root[32])
{
    tree_t t;
    tree_init(&t);
    char *name = NULL;
    if (repo_load_tree(r, root, &t) == 0 && t.n == 1)
        name = strdup(t.nodes[0].name);
    tree_release(&t);
    return name;
}

static int write_all(const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(STDOUT_FILENO, b, n);
        if (w < 0 && errno == EINTR) {
            if (cli_stop)
                return err_set(COFFER_EINTR, "interrupted");
            continue;
        }
        if (w <= 0)
            return err_errno("cannot write to stdout");
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int dump_file(repo_t *r, const node_t *n, const char *path)
{
    static const uint8_t zeros[65536];
    buf_t b;
    buf_init(&b);
    int rc = 0;
    for (size_t i = 0; i < n->n_extents && !rc; i++) {
        const node_extent_t *e = &n->extents[i];
        if (cli_stop) {
            rc = err_set(COFFER_EINTR, "interrupted");
            break;
        }
        if (e->hole) {
            for (uint64_t left = e->len; left && !rc;) {
                size_t k = left < sizeof zeros ? (size_t)left : sizeof zeros;
                rc = write_all(zeros, k);
                left -= k;
            }
            continue;
        }
        buf_reset(&b);
        if ((rc = repo_read_blob(r, BLOB_DATA, e->id, &b))) {
            rc = err_ctx(rc, "while reading %s", path);
            break;
        }
        if (b.len != e->len) {
            char hex[65];
            hex_encode(e->id, 32, hex);
            rc = err_set(COFFER_ECORRUPT,
                         "%s: blob %.16s has %zu bytes, the tree says %llu: run `coffer check`",
                         path, hex, b.len, (unsigned long long)e->len);
            break;
        }
        rc = write_all(b.data, b.len);
    }
    buf_release(&b);
    return rc;
}

int cmd_dump(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"host", required_argument, 0, 'H'},
                                         {"tag", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    char *tags[64];
    snap_filter_t f = {.tags = tags};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            f.host = optarg;
            break;
        case 't':
            if (f.n_tags == 64)
                return cli_usage("dump", "too many --tag options");
            tags[f.n_tags++] = optarg;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("dump", "unknown option");
        }
    }
    if (argc - optind != 2)
        return cli_usage("dump", "give a snapshot (\"latest\" or an id) and the path of a file");
    const char *spec = argv[optind], *path = argv[optind + 1];
    if (path[0] != '/' || strspn(path, "/") == strlen(path))
        return cli_usage("dump", "PATH is a file as `coffer ls` shows it, e.g. /data/etc/hosts");
    repo_t *r = NULL;
    snapshot_t s;
    snapshot_init(&s);
    node_t n;
    node_init(&n);
    char *root = NULL, *alt = NULL, hex[65];
    int rc = cli_open_repo(cli, &r);
    if (rc)
        goto out;
    if ((rc = cli_find_snapshot(r, spec, &f, &s)) || (rc = repo_load_index(r)))
        goto out;
    hex_encode(s.id, 32, hex);
    rc = repo_find_path(r, s.tree, path, &n);
    if (rc == COFFER_ENOENT && (root = single_root(r, s.tree)) != NULL) {
        /* "/dir/file" in a snapshot of a single path: try "/<root>/dir/file" */
        size_t len = strlen(root) + strlen(path) + 2;
        if (!(alt = malloc(len))) {
            rc = err_set(COFFER_ENOMEM, "out of memory");
            goto out;
        }
        snprintf(alt, len, "/%s%s", root, path);
        if (repo_find_path(r, s.tree, alt, &n) == 0)
            rc = 0;
        else
            rc = err_set(COFFER_ENOENT, "no such path in the snapshot: %s", path);
    }
    if (rc) {
        if (rc == COFFER_ENOENT)
            rc = err_set(rc, "no such file in snapshot %.8s: %s (see `coffer ls %.8s`)", hex, path,
                         hex);
        goto out;
    }
    switch (n.type) {
    case NODE_FILE:
        rc = dump_file(r, &n, path);
        break;
    case NODE_DIR:
        rc = err_set(COFFER_EINVAL,
                     "%s is a directory: dump writes one file; use `coffer restore %.8s "
                     "--target DIR --include '%s'` for a directory",
                     path, hex, path);
        break;
    case NODE_SYMLINK:
        rc = err_set(COFFER_EINVAL, "%s is a symbolic link to %s, not a file", path,
                     n.link_target ? n.link_target : "?");
        break;
    default:
        rc = err_set(COFFER_EINVAL, "%s is not a regular file (a device, fifo or socket)", path);
        break;
    }
out:
    free(alt);
    free(root);
    node_release(&n);
    snapshot_release(&s);
    repo_close(r);
    return rc ? cli_fail(cli, rc) : EXIT_OK;
}
