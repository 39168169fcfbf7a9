/*
 * cmd_stats.c -- `coffer stats [SNAP...]`: repository totals, or the sizes of snapshots.
 *
 * Layer: cli. Without SNAP: snapshots, packs and their stored size (listing data/), blobs and
 * their uncompressed size (the index), compression ratio, and the deduplication ratio against
 * the restore size of every snapshot. With SNAPs: their file count and restore size, and the
 * blobs they reference (each counted once).
 *
 * Walking snapshots is fast because a tree id names its whole content: the size of every
 * directory is cached by its tree id, so a directory shared by many snapshots (or many places
 * in one) is read once. Its blobs were added to the unique set the first time, so skipping it
 * later keeps that set right as well.
 */
#include "cli/cmds.h"
#include "common/error.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATS_MAX_DEPTH 4096
#define STATS_MAX_SNAPS 1024

/* ---- a set / map of 32-byte ids (open addressing; ids are uniformly random) ---- */

typedef struct id_ent {
    uint8_t id[32];
    bool used;
    uint64_t a, b; /* trees: restore bytes, files; blobs: raw bytes, stored bytes */
} id_ent_t;

typedef struct id_map {
    id_ent_t *e;
    size_t cap, n;
} id_map_t;

static void id_map_release(id_map_t *m)
{
    free(m->e);
    memset(m, 0, sizeof *m);
}

static size_t id_slot(const id_map_t *m, const uint8_t id[32])
{
    uint64_t h;
    memcpy(&h, id, sizeof h);
    size_t i = (size_t)h & (m->cap - 1);
    while (m->e[i].used && memcmp(m->e[i].id, id, 32) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static id_ent_t *id_map_get(const id_map_t *m, const uint8_t id[32])
{
    if (!m->cap)
        return NULL;
    id_ent_t *e = &m->e[id_slot(m, id)];
    return e->used ? e : NULL;
}

/* Insert (or find) id; *out_new tells which. */
static int id_map_put(id_map_t *m, const uint8_t id[32], id_ent_t **out, bool *out_new)
{
    if ((m->n + 1) * 10 > m->cap * 7) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        id_ent_t *ne = calloc(ncap, sizeof *ne);
        if (!ne)
            return err_set(COFFER_ENOMEM, "out of memory (%zu ids)", m->n);
        id_map_t nm = {ne, ncap, 0};
        for (size_t i = 0; i < m->cap; i++)
            if (m->e[i].used) {
                nm.e[id_slot(&nm, m->e[i].id)] = m->e[i];
                nm.n++;
            }
        free(m->e);
        *m = nm;
    }
    id_ent_t *e = &m->e[id_slot(m, id)];
    *out_new = !e->used;
    if (!e->used) {
        memcpy(e->id, id, 32);
        e->used = true;
        m->n++;
    }
    *out = e;
    return 0;
}

/* ---- walking snapshots ---- */

typedef struct stats_ctx {
    repo_t *r;
    index_t *ix;
    id_map_t trees; /* tree id -> restore bytes, files below */
    id_map_t blobs; /* unique blobs referenced: raw bytes, stored bytes */
    bool want_blobs;
    uint64_t blob_bytes, blob_stored, data_blobs, tree_blobs, missing;
} stats_ctx_t;

static int add_blob(stats_ctx_t *c, uint8_t type, const uint8_t id[32], uint64_t raw)
{
    id_ent_t *e;
    bool fresh;
    int rc = id_map_put(&c->blobs, id, &e, &fresh);
    if (rc || !fresh)
        return rc;
    blob_loc_t loc;
    if (index_lookup(c->ix, id, &loc)) {
        if (type == BLOB_TREE)
            raw = loc.raw_len;
        e->b = loc.stored_len;
    } else {
        c->missing++;
    }
    e->a = raw;
    c->blob_bytes += raw;
    c->blob_stored += e->b;
    if (type == BLOB_TREE)
        c->tree_blobs++;
    else
        c->data_blobs++;
    return 0;
}

static int tree_size(stats_ctx_t *c, const uint8_t id[32], int depth, uint64_t *out_bytes,
                     uint64_t *out_files)
{
    id_ent_t *e = id_map_get(&c->trees, id);
    if (e) {
        *out_bytes = e->a;
        *out_files = e->b;
        return 0;
    }
    if (cli_stop)
        return err_set(COFFER_EINTR, "interrupted");
    if (depth > STATS_MAX_DEPTH)
        return err_set(COFFER_ELIMIT, "directories nested deeper than %d levels", STATS_MAX_DEPTH);
    tree_t t;
    tree_init(&t);
    uint64_t bytes = 0, files = 0;
    int rc = repo_load_tree(c->r, id, &t);
    if (!rc && c->want_blobs)
        rc = add_blob(c, BLOB_TREE, id, 0);
    for (size_t i = 0; !rc && i < t.n; i++) {
        const node_t *n = &t.nodes[i];
        if (n->type == NODE_FILE) {
            bytes += n->size;
            files++;
            for (size_t k = 0; c->want_blobs && !rc && k < n->n_extents; k++)
                if (!n->extents[k].hole)
                    rc = add_blob(c, BLOB_DATA, n->extents[k].id, n->extents[k].len);
        } else if (n->type == NODE_DIR) {
            uint64_t b, f;
            if (!(rc = tree_size(c, n->subtree, depth + 1, &b, &f))) {
                bytes += b;
                files += f;
            }
        }
    }
    tree_release(&t);
    if (rc)
        return rc;
    bool fresh;
    if ((rc = id_map_put(&c->trees, id, &e, &fresh)))
        return rc;
    e->a = bytes;
    e->b = files;
    *out_bytes = bytes;
    *out_files = files;
    return 0;
}

/* ---- repository totals ---- */

typedef struct pack_tot {
    uint64_t n, bytes;
} pack_tot_t;

static int count_pack(void *ud, const char *name, const storage_stat_t *st)
{
    (void)name;
    pack_tot_t *p = ud;
    p->n++;
    p->bytes += st->size;
    return 0;
}

typedef struct blob_tot {
    uint64_t data, tree, raw_data, raw_tree, stored;
} blob_tot_t;

static int count_blob(void *ud, const uint8_t id[32], const blob_loc_t *loc)
{
    (void)id;
    blob_tot_t *b = ud;
    if (loc->pack == INDEX_PACK_PENDING)
        return 0;
    if (loc->type == BLOB_TREE) {
        b->tree++;
        b->raw_tree += loc->raw_len;
    } else {
        b->data++;
        b->raw_data += loc->raw_len;
    }
    b->stored += loc->stored_len;
    return 0;
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

static void line_bytes(const char *label, uint64_t n)
{
    char s[32];
    cli_fmt_bytes(n, s, sizeof s);
    printf("  %-26s %s\n", label, s);
}

static int repo_totals(cli_t *cli, repo_t *r)
{
    snapshot_t *snaps = NULL;
    size_t n_snaps = 0, bad = 0;
    stats_ctx_t c = {.r = r, .ix = repo_index(r)};
    pack_tot_t packs = {0};
    blob_tot_t blobs = {0};
    uint64_t restore = 0, files = 0;
    int rc;
    if ((rc = repo_list_snapshots(r, &snaps, &n_snaps, &bad)) ||
        (rc = storage_list(repo_storage(r), "data/", count_pack, &packs)) ||
        (rc = index_foreach(repo_index(r), count_blob, &blobs)))
        goto out;
    for (size_t i = 0; i < n_snaps; i++) {
        uint64_t b, f;
        if ((rc = tree_size(&c, snaps[i].tree, 0, &b, &f))) {
            char hex[65];
            hex_encode(snaps[i].id, 32, hex);
            rc = err_ctx(rc, "while reading snapshot %.8s", hex);
            goto out;
        }
        restore += b;
        files += f;
    }
    uint64_t raw = blobs.raw_data + blobs.raw_tree;
    if (cli->json) {
        cli_json_line(json_pack(
            "{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f}", "message_type", "stats",
            "snapshots", (json_int_t)n_snaps, "packs", (json_int_t)packs.n, "stored_bytes",
            (json_int_t)packs.bytes, "data_blobs", (json_int_t)blobs.data, "tree_blobs",
            (json_int_t)blobs.tree, "raw_bytes", (json_int_t)raw, "raw_data_bytes",
            (json_int_t)blobs.raw_data, "blob_stored_bytes", (json_int_t)blobs.stored,
            "restore_size", (json_int_t)restore, "files", (json_int_t)files, "compression_ratio",
            ratio(raw, packs.bytes), "dedup_ratio", ratio(restore, blobs.raw_data)));
    } else {
        printf("repository %s\n", cli->repo);
        printf("  %-26s %zu\n", "snapshots:", n_snaps);
        printf("  %-26s %" PRIu64 "\n", "packs:", packs.n);
        printf("  %-26s %" PRIu64 " data, %" PRIu64 " tree\n", "blobs:", blobs.data, blobs.tree);
        line_bytes("stored size (packs):", packs.bytes);
        line_bytes("uncompressed blob size:", raw);
        printf("  %-26s %.2fx\n", "compression ratio:", ratio(raw, packs.bytes));
        line_bytes("restore size (all snaps):", restore);
        printf("  %-26s %" PRIu64 "\n", "files (all snaps):", files);
        printf("  %-26s %.2fx\n", "deduplication ratio:", ratio(restore, blobs.raw_data));
        printf("  %-26s %.2fx\n", "restore size / stored:", ratio(restore, packs.bytes));
    }
out:
    repo_free_snapshots(snaps, n_snaps);
    id_map_release(&c.trees);
    id_map_release(&c.blobs);
    if (!rc && bad)
        rc = err_set(COFFER_EPARTIAL, "%zu snapshot(s) could not be read: run `coffer check`", bad);
    return rc;
}

/* ---- chosen snapshots ---- */

enum { MODE_ALL, MODE_RESTORE, MODE_RAW };

static int snap_stats(cli_t *cli, repo_t *r, snapshot_t *snaps, size_t n, int mode)
{
    stats_ctx_t c = {.r = r, .ix = repo_index(r), .want_blobs = mode != MODE_RESTORE};
    uint64_t restore = 0, files = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t b, f;
        if ((rc = tree_size(&c, snaps[i].tree, 0, &b, &f))) {
            char hex[65];
            hex_encode(snaps[i].id, 32, hex);
            rc = err_ctx(rc, "while reading snapshot %.8s", hex);
            goto out;
        }
        restore += b;
        files += f;
    }
    if (cli->json) {
        json_t *ids = json_array();
        for (size_t i = 0; i < n; i++) {
            char hex[65];
            hex_encode(snaps[i].id, 32, hex);
            json_array_append_new(ids, json_string(hex));
        }
        json_t *o = json_pack("{s:s,s:o}", "message_type", "stats", "snapshots", ids);
        if (o && mode != MODE_RAW) {
            json_object_set_new(o, "files", json_integer((json_int_t)files));
            json_object_set_new(o, "restore_size", json_integer((json_int_t)restore));
        }
        if (o && mode != MODE_RESTORE) {
            json_object_set_new(o, "data_blobs", json_integer((json_int_t)c.data_blobs));
            json_object_set_new(o, "tree_blobs", json_integer((json_int_t)c.tree_blobs));
            json_object_set_new(o, "raw_bytes", json_integer((json_int_t)c.blob_bytes));
            json_object_set_new(o, "stored_bytes", json_integer((json_int_t)c.blob_stored));
        }
        cli_json_line(o);
    } else {
        printf("%zu snapshot%s:", n, n == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++) {
            char hex[65];
            hex_encode(snaps[i].id, 32, hex);
            printf(" %.8s", hex);
        }
        printf("\n");
        if (mode != MODE_RAW) {
            printf("  %-26s %" PRIu64 "\n", "files:", files);
            line_bytes("restore size:", restore);
        }
        if (mode != MODE_RESTORE) {
            printf("  %-26s %" PRIu64 " data, %" PRIu64 " tree\n", "unique blobs:", c.data_blobs,
                   c.tree_blobs);
            line_bytes("unique blob size:", c.blob_bytes);
            line_bytes("stored size of those:", c.blob_stored);
        }
    }
    if (c.missing)
        rc = err_set(COFFER_EPARTIAL,
                     "%" PRIu64 " referenced blob(s) are not in the index: run `coffer check`",
                     c.missing);
out:
    id_map_release(&c.trees);
    id_map_release(&c.blobs);
    return rc;
}

static void help(void)
{
    printf("usage: coffer stats [SNAP...] [--mode restore-size|raw-data] [--json]\n"
           "  without SNAP    repository totals: snapshots, packs, blobs, stored and\n"
           "                  uncompressed sizes, compression and deduplication ratios\n"
           "  SNAP...         \"latest\" or id prefixes: their files, restore size and the\n"
           "                  blobs they reference (each counted once)\n"
           "  --mode M        restore-size: files and restore size only; raw-data: unique\n"
           "                  blobs only (without SNAP: over all snapshots)\n");
}

int cmd_stats(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"mode", required_argument, 0, 'm'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int mode = MODE_ALL, ch;
    bool mode_set = false;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            if (strcmp(optarg, "restore-size") == 0)
                mode = MODE_RESTORE;
            else if (strcmp(optarg, "raw-data") == 0)
                mode = MODE_RAW;
            else
                return cli_usage("stats", "--mode is restore-size or raw-data");
            mode_set = true;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("stats", "unknown option");
        }
    }
    size_t n_specs = (size_t)(argc - optind);
    if (n_specs > STATS_MAX_SNAPS)
        return cli_usage("stats", "at most %d snapshots", STATS_MAX_SNAPS);
    repo_t *r = NULL;
    snapshot_t *snaps = NULL;
    size_t n = 0;
    int rc = cli_open_repo(cli, &r);
    if (rc)
        goto out;
    if ((rc = repo_load_index(r)))
        goto out;
    if (n_specs == 0 && !mode_set) {
        rc = repo_totals(cli, r);
        goto out;
    }
    if (n_specs == 0) {
        size_t bad = 0;
        if ((rc = repo_list_snapshots(r, &snaps, &n, &bad)))
            goto out;
        rc = snap_stats(cli, r, snaps, n, mode);
        if (!rc && bad)
            rc = err_set(COFFER_EPARTIAL, "%zu snapshot(s) could not be read: run `coffer check`",
                         bad);
        goto out;
    }
    if (!(snaps = calloc(n_specs, sizeof *snaps))) {
        rc = err_set(COFFER_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_specs; i++) {
        snapshot_init(&snaps[n]);
        if ((rc = cli_find_snapshot(r, argv[optind + (int)i], NULL, &snaps[n])))
            goto out;
        bool dup = false; /* the same snapshot named twice counts once */
        for (size_t k = 0; k < n && !dup; k++)
            dup = memcmp(snaps[k].id, snaps[n].id, 32) == 0;
        if (dup)
            snapshot_release(&snaps[n]);
        else
            n++;
    }
    rc = snap_stats(cli, r, snaps, n, mode);
out:
    repo_free_snapshots(snaps, n);
    repo_close(r);
    return rc ? cli_fail(cli, rc) : EXIT_OK;
}
