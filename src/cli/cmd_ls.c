/*
 * cmd_ls.c -- `coffer ls SNAP [PATH]`: list the entries of a snapshot.
 *
 * Layer: cli. Paths are shown as coffer restore --include and dump take them: "/<root entry>/a/b",
 * where the root entries are the basenames of the backed-up paths (doc/format.md §9.2). The
 * walk is depth-first in tree order (sorted by name), so the output is stable.
 */
#include "cli/cmds.h"
#include "common/error.h"
#include "common/timefmt.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LS_MAX_DEPTH 4096 /* deeper than any path a filesystem allows */

typedef struct ls_ctx {
    cli_t *cli;
    repo_t *r;
    bool lng;
    bool recursive;
    buf_t path;
    uint64_t count;
} ls_ctx_t;

static void help(void)
{
    printf("usage: coffer ls SNAP [PATH] [-l|--long] [--no-recursive] [--json]\n"
           "  SNAP            \"latest\" or an id prefix (see `coffer snapshots`)\n"
           "  PATH            list only this entry and what is below it, e.g. /data/etc\n"
           "  -l, --long      mode, owner, size and modification time (local time)\n"
           "  -R, --recursive list every level below PATH (the default)\n"
           "  --no-recursive  list only the entries directly inside PATH\n"
           "  --json          one JSON object per entry\n");
}

static const char *type_name(node_type_t t)
{
    switch (t) {
    case NODE_FILE:
        return "file";
    case NODE_DIR:
        return "dir";
    case NODE_SYMLINK:
        return "symlink";
    case NODE_CHR:
        return "chardev";
    case NODE_BLK:
        return "blockdev";
    case NODE_FIFO:
        return "fifo";
    case NODE_SOCK:
        return "socket";
    }
    return "unknown";
}

/* "drwxr-xr-x" as ls(1) shows it, setuid/setgid/sticky included. */
static void mode_string(const node_t *n, char out[11])
{
    static const char types[] = "?-dlcbps";
    uint32_t m = n->mode;
    out[0] = (unsigned)n->type < sizeof types - 1 ? types[n->type] : '?';
    out[1] = m & 0400 ? 'r' : '-';
    out[2] = m & 0200 ? 'w' : '-';
    out[3] = m & 04000 ? (m & 0100 ? 's' : 'S') : (m & 0100 ? 'x' : '-');
    out[4] = m & 040 ? 'r' : '-';
    out[5] = m & 020 ? 'w' : '-';
    out[6] = m & 02000 ? (m & 010 ? 's' : 'S') : (m & 010 ? 'x' : '-');
    out[7] = m & 04 ? 'r' : '-';
    out[8] = m & 02 ? 'w' : '-';
    out[9] = m & 01000 ? (m & 01 ? 't' : 'T') : (m & 01 ? 'x' : '-');
    out[10] = 0;
}

static void print_node(ls_ctx_t *c, const char *path, const node_t *n)
{
    c->count++;
    if (c->cli->json) {
        char ts[64];
        time_format_rfc3339(n->mtime_ns, true, ts, sizeof ts);
        json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:o,s:I,s:s}", "path", path, "type",
                              type_name(n->type), "mode", (json_int_t)n->mode, "uid",
                              (json_int_t)n->uid, "gid", (json_int_t)n->gid, "user",
                              n->user ? json_string(n->user) : json_null(), "group",
                              n->group ? json_string(n->group) : json_null(), "size",
                              (json_int_t)n->size, "mtime", ts);
        if (o && n->type == NODE_SYMLINK && n->link_target)
            json_object_set_new(o, "link_target", json_string(n->link_target));
        cli_json_line(o);
        return;
    }
    if (!c->lng) {
        printf("%s\n", path);
        return;
    }
    char mode[11], owner[80], ts[40], user[32], group[32];
    mode_string(n, mode);
    if (!n->user)
        snprintf(user, sizeof user, "%" PRIu32, n->uid);
    if (!n->group)
        snprintf(group, sizeof group, "%" PRIu32, n->gid);
    snprintf(owner, sizeof owner, "%s/%s", n->user ? n->user : user, n->group ? n->group : group);
    time_format_local(n->mtime_ns, ts, sizeof ts);
    if (n->type == NODE_CHR || n->type == NODE_BLK)
        printf("%s %-17s %12s %s %s\n", mode, owner, "-", ts, path);
    else
        printf("%s %-17s %12" PRIu64 " %s %s%s%s\n", mode, owner, n->size, ts, path,
               n->type == NODE_SYMLINK ? " -> " : "",
               n->type == NODE_SYMLINK && n->link_target ? n->link_target : "");
}

/* Truncate c->path back to len (keeping it NUL-terminated). */
static void path_cut(ls_ctx_t *c, size_t len)
{
    c->path.len = len;
    if (c->path.data)
        c->path.data[len] = 0;
}

static int ls_tree(ls_ctx_t *c, const uint8_t id[32], int depth)
{
    if (depth > LS_MAX_DEPTH)
        return err_set(COFFER_ELIMIT, "directories nested deeper than %d levels at %s",
                       LS_MAX_DEPTH, (const char *)c->path.data);
    tree_t t;
    tree_init(&t);
    int rc = repo_load_tree(c->r, id, &t);
    if (rc) {
        rc = err_ctx(rc, "while listing %s", c->path.len ? (const char *)c->path.data : "/");
        goto out;
    }
    size_t base = c->path.len;
    for (size_t i = 0; i < t.n; i++) {
        if (cli_stop) {
            rc = err_set(COFFER_EINTR, "interrupted");
            break;
        }
        const node_t *n = &t.nodes[i];
        path_cut(c, base);
        if ((rc = buf_put_u8(&c->path, '/')) || (rc = buf_append_str(&c->path, n->name)))
            break;
        print_node(c, (const char *)c->path.data, n);
        if (n->type == NODE_DIR && c->recursive && (rc = ls_tree(c, n->subtree, depth + 1)))
            break;
    }
    path_cut(c, base);
out:
    tree_release(&t);
    return rc;
}

int cmd_ls(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"long", no_argument, 0, 'l'},
                                         {"recursive", no_argument, 0, 'R'},
                                         {"no-recursive", no_argument, 0, 'N'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    ls_ctx_t c = {.cli = cli, .recursive = true};
    buf_init(&c.path);
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "hlR", opts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            c.lng = true;
            break;
        case 'R':
            c.recursive = true;
            break;
        case 'N':
            c.recursive = false;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("ls", "unknown option");
        }
    }
    int nargs = argc - optind;
    if (nargs < 1 || nargs > 2)
        return cli_usage("ls", "give a snapshot (\"latest\" or an id) and optionally a path");
    const char *spec = argv[optind];
    const char *path = nargs == 2 ? argv[optind + 1] : "/";
    if (path[0] != '/')
        return cli_usage("ls", "PATH starts with \"/\" followed by a root entry, e.g. /data/etc "
                               "(see `coffer ls SNAP --no-recursive`)");
    repo_t *r = NULL;
    snapshot_t s;
    snapshot_init(&s);
    node_t n;
    node_init(&n);
    int rc = cli_open_repo(cli, &r);
    if (rc)
        goto out;
    c.r = r;
    if ((rc = cli_find_snapshot(r, spec, NULL, &s)) || (rc = repo_load_index(r)))
        goto out;
    if ((rc = buf_reserve(&c.path, 256)))
        goto out;
    c.path.data[0] = 0;
    if (strspn(path, "/") == strlen(path)) { /* the snapshot's root: its entries */
        rc = ls_tree(&c, s.tree, 0);
        goto out;
    }
    if ((rc = repo_find_path(r, s.tree, path, &n)))
        goto out;
    /* the entry itself, under its canonical name (no doubled or trailing slashes) */
    for (const char *p = path; *p; p++) {
        if (*p == '/' && (p[1] == '/' || p[1] == 0))
            continue;
        if ((rc = buf_put_u8(&c.path, (uint8_t)*p)))
            goto out;
    }
    print_node(&c, (const char *)c.path.data, &n);
    if (n.type == NODE_DIR)
        rc = ls_tree(&c, n.subtree, 0);
out:
    node_release(&n);
    snapshot_release(&s);
    repo_close(r);
    buf_release(&c.path);
    if (rc)
        return cli_fail(cli, rc);
    fflush(stdout);
    if (ferror(stdout))
        return cli_fail(cli, err_set(COFFER_EIO, "cannot write the listing to stdout"));
    return EXIT_OK;
}
