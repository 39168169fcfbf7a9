/*
 * mkseeds.c -- writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/)
 * from the real encoders, so seeds follow the format. Built with the fuzz targets
 * (-Dfuzz=true, e.g. by `make test`); run by hand after a format change:
 *   build-asan/tests/fuzz/mkseeds tests/fuzz/corpus
 */
#include "repo/condemned.h"
#include "repo/envelope.h"
#include "repo/idxseg.h"
#include "repo/keyslot.h"
#include "repo/pack.h"
#include "repo/snapshot.h"
#include "repo/tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void put(const char *dir, const char *target, const char *name, const buf_t *b)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static void sample_tree(tree_t *t)
{
    const char *names[] = {"dir", "file", "link", "fifo", "empty"};
    node_type_t types[] = {NODE_DIR, NODE_FILE, NODE_SYMLINK, NODE_FIFO, NODE_FILE};
    for (int i = 0; i < 5; i++) {
        node_t n;
        node_init(&n);
        n.name = strdup(names[i]);
        n.type = types[i];
        n.mode = 0644;
        n.uid = 1000;
        n.gid = 1000;
        n.user = strdup("user");
        n.mtime_ns = 1700000000123456789ll;
        n.ctime_ns = -5;
        n.inode = 42 + (uint64_t)i;
        n.nlink = 1;
        if (types[i] == NODE_FILE && i == 1) {
            uint8_t id[32];
            memset(id, 0xab, 32);
            node_add_extent(&n, id, 1000, false);
            node_add_extent(&n, NULL, 5000, true);
            n.size = 6000;
            n.n_xattrs = 1;
            n.xattrs = calloc(1, sizeof *n.xattrs);
            n.xattrs[0].name = strdup("user.k");
            n.xattrs[0].value = (uint8_t *)strdup("v");
            n.xattrs[0].len = 1;
        }
        if (types[i] == NODE_SYMLINK)
            n.link_target = strdup("../target");
        if (types[i] == NODE_DIR)
            memset(n.subtree, 0xcd, 32);
        tree_add(t, &n);
    }
    tree_sort(t);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus";
    mkdir(dir, 0755);
    buf_t b;
    buf_init(&b);

    tree_t t;
    tree_init(&t);
    tree_encode(&t, &b);
    put(dir, "fuzz_tree", "empty", &b);
    sample_tree(&t);
    buf_reset(&b);
    tree_encode(&t, &b);
    put(dir, "fuzz_tree", "five", &b);
    tree_release(&t);

    pack_entry_t e[2] = {
        {.type = BLOB_DATA, .compressed = true, .offset = 0, .stored_len = 100, .raw_len = 300},
        {.type = BLOB_TREE, .offset = 100, .stored_len = 60, .raw_len = 32}};
    memset(e[0].id, 1, 32);
    memset(e[1].id, 2, 32);
    buf_reset(&b);
    pack_header_encode(e, 2, &b);
    put(dir, "fuzz_pack_header", "two", &b);
    buf_reset(&b);
    pack_header_encode(e, 0, &b);
    put(dir, "fuzz_pack_header", "zero", &b);

    idxseg_pack_t ps[2];
    memset(ps, 0, sizeof ps);
    memset(ps[0].id, 3, 32);
    memset(ps[1].id, 4, 32);
    ps[0].entries = e;
    ps[0].n = 2;
    ps[1].entries = e + 1;
    ps[1].n = 1;
    uint8_t sup[1][32];
    memset(sup, 9, sizeof sup);
    buf_reset(&b);
    idxseg_encode((const uint8_t(*)[32])sup, 1, ps, 2, &b);
    put(dir, "fuzz_index_segment", "two_packs", &b);
    buf_reset(&b);
    idxseg_encode(NULL, 0, NULL, 0, &b);
    put(dir, "fuzz_index_segment", "empty", &b);

    snapshot_t s;
    snapshot_init(&s);
    s.time_ns = 1700000000000000000ll;
    s.host = strdup("host");
    s.kind = strdup("files");
    snapshot_add_path(&s, "/data");
    snapshot_add_tag(&s, "nightly");
    snapshot_add_error(&s, "/data/x", "vanished");
    s.has_parent = true;
    s.status = strdup("partial");
    buf_reset(&b);
    snapshot_encode(&s, &b);
    put(dir, "fuzz_snapshot", "partial", &b);
    snapshot_release(&s);

    keyslot_kdf_t kdf = {.name = "scrypt", .n = 16, .r = 1, .p = 1};
    uint8_t rid[32] = {0}, master[32];
    memset(master, 7, 32);
    buf_reset(&b);
    keyslot_create(&kdf, "password", rid, master, "host", "user", &b);
    put(dir, "fuzz_keyslot", "scrypt", &b);

    condemned_t c;
    condemned_init(&c);
    c.packs = malloc(64);
    memset(c.packs, 5, 64);
    c.n_packs = 2;
    c.sessions = malloc(16);
    memset(c.sessions, 6, 16);
    c.n_sessions = 1;
    c.indexes = malloc(32);
    memset(c.indexes, 8, 32);
    c.n_indexes = 1;
    buf_reset(&b);
    condemned_encode(&c, &b);
    put(dir, "fuzz_condemned", "one", &b);
    condemned_release(&c);
    buf_release(&b);
    return 0;
}
