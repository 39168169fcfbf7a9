/*
 * test_prune.c -- unit tests for src/repo/prune.c (two-phase prune, doc/format.md §11) on
 * in-process mem: storage, each "process" being its own repo_open:
 *  - snapshots A and B share blobs; with A's snapshot object removed, prune keeps every blob
 *    and tree of B readable and verified, and drops A's own blobs and tree from the index;
 *    a second prune finds nothing to do; the lease and the condemned list are gone;
 *  - with a writer session open during the mark, the condemned list waits (lists_waiting 1)
 *    and nothing at all is deleted; a writer opened after the mark never deduplicates against
 *    a condemned pack (a blob found only there is stored anew); the writer alive at the mark
 *    may deduplicate against it, and the sweep keeps that pack; once both writers ended, the
 *    next prune sweeps, and every blob of every remaining snapshot still reads back;
 *  - dry runs change nothing.

 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "repo/idset.h"
#include "repo/prune.h"
#include "repo/repo.h"
#include "repo/tree.h"
#include "repo/writer.h"
#include "storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PASSWORD "pw"
#define BLOB_LEN 8000

/* ---- fixture ---- */

typedef struct fx {
    char loc[64];
} fx_t;

static unsigned seq;

static int setup(void **state)
{
    setenv("COFFER_KDF", "argon2id:ops=1,mem=8192", 1);
    fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->loc, sizeof f->loc, "mem:prune-%ld-%u", (long)time(NULL), ++seq);
    repo_params_t p;
    repo_params_default(&p);
    p.pack_size = 64u << 10;
    repo_t *r;
    if (repo_create(f->loc, PASSWORD, &p, NULL, &r)) {
        fprintf(stderr, "repo_create: %s\n", err_msg());
        free(f);
        return -1;
    }
    repo_close(r);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static repo_t *open_repo(const fx_t *f)
{
    repo_t *r;
    if (repo_open(f->loc, PASSWORD, &r))
        fail_msg("repo_open: %s", err_msg());
    return r;
}

/* Blob k: BLOB_LEN incompressible bytes. */
static void gen(uint8_t *p, uint32_t k)
{
    uint32_t x = k * 2654435761u + 99;
    for (size_t i = 0; i < BLOB_LEN; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static void blob_id(repo_t *r, uint32_t k, uint8_t id[32])
{
    uint8_t buf[BLOB_LEN];
    gen(buf, k);
    assert_int_equal(repo_blob_id(r, BLOB_DATA, buf, sizeof buf, id), 0);
}

static bool add_blob(writer_t *w, uint32_t k, uint8_t id[32])
{
    uint8_t buf[BLOB_LEN];
    gen(buf, k);
    bool added;
    if (writer_add_blob(w, BLOB_DATA, buf, sizeof buf, NULL, id, &added))
        fail_msg("writer_add_blob %u: %s", k, err_msg());
    return added;
}

/* Add a tree with one file per blob k ("f<k>"); returns its id. */
static void add_tree(writer_t *w, const uint32_t *ks, size_t n, uint8_t out[32])
{
    tree_t t;
    tree_init(&t);
    for (size_t i = 0; i < n; i++) {
        node_t nd;
        node_init(&nd);
        char name[32];
        snprintf(name, sizeof name, "f%u", ks[i]);
        nd.name = strdup(name);
        assert_non_null(nd.name);
        nd.type = NODE_FILE;
        nd.mode = 0600;
        nd.size = BLOB_LEN;
        uint8_t id[32];
        (void)add_blob(w, ks[i], id);
        assert_int_equal(node_add_extent(&nd, id, BLOB_LEN, false), 0);
        assert_int_equal(tree_add(&t, &nd), 0);
    }
    assert_int_equal(tree_sort(&t), 0);
    buf_t b;
    buf_init(&b);
    assert_int_equal(tree_encode(&t, &b), 0);
    assert_int_equal(writer_add_blob(w, BLOB_TREE, b.data, b.len, NULL, out, NULL), 0);
    buf_release(&b);
    tree_release(&t);
}

static void save_snapshot(writer_t *w, const uint8_t tree[32], int64_t t, uint8_t out_id[32])
{
    assert_int_equal(writer_flush(w), 0);
    snapshot_t s;
    snapshot_init(&s);
    s.time_ns = t;
    memcpy(s.tree, tree, 32);
    assert_int_equal(writer_save_snapshot(w, &s), 0);
    memcpy(out_id, s.id, 32);
    snapshot_release(&s);
}

/* One backup session in its own "process": the files ks, one snapshot. */
static void backup(const fx_t *f, const uint32_t *ks, size_t n, int64_t t, uint8_t snap[32],
                   uint8_t tree[32])
{
    repo_t *r = open_repo(f);
    writer_t *w;
    assert_int_equal(writer_open(r, NULL, &w), 0);
    add_tree(w, ks, n, tree);
    save_snapshot(w, tree, t, snap);
    writer_free(w);
    repo_close(r);
}

static void remove_snapshot(const fx_t *f, const uint8_t id[32])
{
    repo_t *r = open_repo(f);
    char name[96];
    repo_obj_name("snapshots", id, name, sizeof name);
    assert_int_equal(storage_remove(repo_storage(r), name), 0);
    repo_close(r);
}

/* Every object name under a prefix. */
typedef struct names {
    char (*v)[128];
    size_t n, cap;
} names_t;

static int names_cb(void *ud, const char *name, const storage_stat_t *st)
{
    names_t *l = ud;
    (void)st;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v)
            return -1;
    }
    snprintf(l->v[l->n++], 128, "%s", name);
    return 0;
}

static names_t list_names(repo_t *r, const char *prefix)
{
    names_t l = {0};
    assert_int_equal(storage_list(repo_storage(r), prefix, names_cb, &l), 0);
    return l;
}

static size_t count_objects(repo_t *r, const char *prefix)
{
    names_t l = list_names(r, prefix);
    free(l.v);
    return l.n;
}

static prune_stats_t run_prune(const fx_t *f, bool dry)
{
    repo_t *r = open_repo(f);
    prune_opts_t o = {.dry_run = dry};
    prune_stats_t s;
    memset(&s, 0, sizeof s);
    int rc = prune_run(r, &o, &s);
    if (rc)
        fail_msg("prune_run: %s", err_msg());
    repo_close(r);
    return s;
}

/* Read and verify blob k in a fresh process view. */
static void expect_readable(repo_t *r, uint32_t k)
{
    uint8_t id[32], want[BLOB_LEN];
    blob_id(r, k, id);
    gen(want, k);
    buf_t b;
    buf_init(&b);
    int rc = repo_read_blob(r, BLOB_DATA, id, &b);
    if (rc)
        fail_msg("blob %u is lost: %s", k, err_msg());
    assert_int_equal(b.len, BLOB_LEN);
    assert_memory_equal(b.data, want, BLOB_LEN);
    buf_release(&b);
}

static bool in_index(repo_t *r, uint32_t k)
{
    uint8_t id[32];
    blob_id(r, k, id);
    return index_lookup(repo_index(r), id, NULL);
}

/* Every snapshot's tree and every blob it names reads and verifies. */
static void expect_all_snapshots_readable(const fx_t *f, size_t want_snaps)
{
    repo_t *r = open_repo(f);
    assert_int_equal(repo_load_index(r), 0);
    snapshot_t *snaps;
    size_t ns, bad;
    assert_int_equal(repo_list_snapshots(r, &snaps, &ns, &bad), 0);
    assert_int_equal(ns, want_snaps);
    assert_int_equal(bad, 0);
    buf_t b;
    buf_init(&b);
    for (size_t i = 0; i < ns; i++) {
        tree_t t;
        tree_init(&t);
        int rc = repo_load_tree(r, snaps[i].tree, &t);
        if (rc)
            fail_msg("tree of snapshot %zu is lost: %s", i, err_msg());
        for (size_t j = 0; j < t.n; j++) {
            assert_int_equal(t.nodes[j].n_extents, 1);
            rc = repo_read_blob(r, BLOB_DATA, t.nodes[j].extents[0].id, &b);
            if (rc)
                fail_msg("snapshot %zu, %s is lost: %s", i, t.nodes[j].name, err_msg());
            unsigned k;
            assert_int_equal(sscanf(t.nodes[j].name, "f%u", &k), 1);
            uint8_t want[BLOB_LEN];
            gen(want, k);
            assert_int_equal(b.len, BLOB_LEN);
            assert_memory_equal(b.data, want, BLOB_LEN);
        }
        tree_release(&t);
    }
    buf_release(&b);
    repo_free_snapshots(snaps, ns);
    repo_close(r);
}

/* Snapshots A (shared 0..9 + own 100..139) and B (shared 0..9 + own 200..209), A written
 * first so the shared blobs live in A's packs. */
enum { N_SHARED = 10, N_A = 40, N_B = 10 };

typedef struct ab {
    uint8_t snap_a[32], tree_a[32], snap_b[32], tree_b[32];
} ab_t;

static void make_ab(const fx_t *f, ab_t *ab)
{
    uint32_t ka[N_SHARED + N_A], kb[N_SHARED + N_B];
    for (uint32_t i = 0; i < N_SHARED; i++)
        ka[i] = kb[i] = i;
    for (uint32_t i = 0; i < N_A; i++)
        ka[N_SHARED + i] = 100 + i;
    for (uint32_t i = 0; i < N_B; i++)
        kb[N_SHARED + i] = 200 + i;
    backup(f, ka, N_SHARED + N_A, 1700000000000000000ll, ab->snap_a, ab->tree_a);
    backup(f, kb, N_SHARED + N_B, 1700000100000000000ll, ab->snap_b, ab->tree_b);
}

static void expect_b_intact(const fx_t *f, const ab_t *ab)
{
    repo_t *r = open_repo(f);
    assert_int_equal(repo_load_index(r), 0);
    for (uint32_t i = 0; i < N_SHARED; i++)
        expect_readable(r, i);
    for (uint32_t i = 0; i < N_B; i++)
        expect_readable(r, 200 + i);
    tree_t t;
    tree_init(&t);
    assert_int_equal(repo_load_tree(r, ab->tree_b, &t), 0);
    assert_int_equal(t.n, N_SHARED + N_B);
    tree_release(&t);
    repo_close(r);
}

/* ---- tests ---- */

static void test_prune_drops_only_unreferenced(void **state)
{
    fx_t *f = *state;
    ab_t ab;
    make_ab(f, &ab);
    expect_all_snapshots_readable(f, 2);

    /* nothing to do while both snapshots exist */
    prune_stats_t s0 = run_prune(f, false);
    assert_int_equal(s0.snapshots, 2);
    assert_int_equal(s0.packs_condemned, 0);
    assert_int_equal(s0.packs_deleted, 0);

    remove_snapshot(f, ab.snap_a);
    /* a dry run changes nothing */
    repo_t *r = open_repo(f);
    names_t before = list_names(r, "");
    repo_close(r);
    prune_stats_t sd = run_prune(f, true);
    assert_true(sd.packs_condemned >= 1);
    r = open_repo(f);
    names_t after = list_names(r, "");
    repo_close(r);
    assert_int_equal(after.n, before.n);
    free(before.v);
    free(after.v);

    prune_stats_t s = run_prune(f, false);
    assert_int_equal(s.snapshots, 1);
    assert_int_equal(s.lists_waiting, 0);
    assert_true(s.lists_swept >= 1);
    assert_true(s.packs_deleted >= 1);
    assert_true(s.bytes_deleted > 0);

    expect_b_intact(f, &ab);
    expect_all_snapshots_readable(f, 1);
    r = open_repo(f);
    assert_int_equal(repo_load_index(r), 0);
    for (uint32_t i = 0; i < N_A; i++)
        if (in_index(r, 100 + i))
            fail_msg("blob %u of the removed snapshot is still indexed", 100 + i);
    assert_false(index_lookup(repo_index(r), ab.tree_a, NULL));
    assert_int_equal(index_count(repo_index(r)), N_SHARED + N_B + 1);
    /* lease, condemned list and sessions are gone */
    assert_int_equal(count_objects(r, "maint/"), 0);
    assert_int_equal(count_objects(r, "sessions/"), 0);
    repo_close(r);

    /* again: nothing left to do */
    prune_stats_t s2 = run_prune(f, false);
    assert_int_equal(s2.packs_condemned, 0);
    assert_int_equal(s2.packs_deleted, 0);
    expect_b_intact(f, &ab);
}

/* A writer open at the mark holds the sweep back; a writer opened after the mark never
 * deduplicates against a condemned pack; the writer open at the mark may, and its blob is
 * kept by the sweep. */
static void test_prune_with_concurrent_writers(void **state)
{
    fx_t *f = *state;
    ab_t ab;
    make_ab(f, &ab);
    remove_snapshot(f, ab.snap_a);

    /* W1: a backup running across the mark (its index was read before the mark) */
    repo_t *r1 = open_repo(f);
    writer_t *w1;
    assert_int_equal(writer_open(r1, NULL, &w1), 0);

    repo_t *r = open_repo(f);
    names_t data_before = list_names(r, "data/"), idx_before = list_names(r, "index/");
    repo_close(r);

    prune_stats_t s = run_prune(f, false);
    assert_true(s.packs_condemned >= 1);
    assert_int_equal(s.lists_waiting, 1);
    assert_int_equal(s.lists_swept, 0);
    assert_int_equal(s.packs_deleted, 0);

    /* nothing was deleted: every pack and index segment is still there, and A's blobs
     * still read */
    r = open_repo(f);
    for (size_t i = 0; i < data_before.n; i++) {
        storage_stat_t st;
        if (storage_stat(repo_storage(r), data_before.v[i], &st))
            fail_msg("%s was deleted while a writer was running", data_before.v[i]);
    }
    for (size_t i = 0; i < idx_before.n; i++) {
        storage_stat_t st;
        if (storage_stat(repo_storage(r), idx_before.v[i], &st))
            fail_msg("%s was deleted while a writer was running", idx_before.v[i]);
    }
    names_t maint = list_names(r, "maint/");
    assert_int_equal(maint.n, 1);
    assert_int_equal(strncmp(maint.v[0], "maint/condemned-", 16), 0);
    free(maint.v);
    assert_int_equal(repo_load_index(r), 0);
    for (uint32_t i = 0; i < N_A; i++)
        expect_readable(r, 100 + i);
    repo_close(r);
    free(data_before.v);
    free(idx_before.v);

    /* W2: started after the mark. Blob 100 exists only in a condemned pack: stored anew.
     * Blob 0 (shared) has a live copy (repacked for B): deduplicated. */
    repo_t *r2 = open_repo(f);
    writer_t *w2;
    assert_int_equal(writer_open(r2, NULL, &w2), 0);
    uint8_t id[32];
    assert_true(add_blob(w2, 100, id));
    assert_int_equal(atomic_load(&writer_stats(w2)->blobs_added), 1);
    assert_false(add_blob(w2, 0, id));
    assert_int_equal(atomic_load(&writer_stats(w2)->blobs_added), 1);
    uint8_t tree_c[32], snap_c[32];
    add_tree(w2, (const uint32_t[]){0, 100}, 2, tree_c);
    save_snapshot(w2, tree_c, 1700000200000000000ll, snap_c);

    /* W1, alive at the mark, read the index before it: it may deduplicate blob 101 against
     * the condemned pack; the sweep must then keep that pack */
    assert_false(add_blob(w1, 101, id));
    uint8_t tree_d[32], snap_d[32];
    add_tree(w1, (const uint32_t[]){101}, 1, tree_d);
    save_snapshot(w1, tree_d, 1700000300000000000ll, snap_d);

    /* still waiting while W1 runs (W2 was not alive at the mark and does not hold it) */
    writer_free(w2);
    repo_close(r2);
    prune_stats_t sw = run_prune(f, false);
    assert_int_equal(sw.lists_swept, 0);
    assert_true(sw.lists_waiting >= 1);
    assert_int_equal(sw.packs_deleted, 0);

    writer_free(w1);
    repo_close(r1);

    prune_stats_t s2 = run_prune(f, false);
    assert_true(s2.lists_swept >= 1);
    assert_true(s2.packs_kept_referenced >= 1); /* the pack W1 deduplicated against */
    expect_b_intact(f, &ab);
    expect_all_snapshots_readable(f, 3); /* B, C, D */
    r = open_repo(f);
    assert_int_equal(repo_load_index(r), 0);
    expect_readable(r, 100);
    expect_readable(r, 101);
    repo_close(r);

    /* later prunes reclaim the rest without losing anything */
    for (int i = 0; i < 2; i++) {
        prune_stats_t sx = run_prune(f, false);
        assert_int_equal(sx.lists_waiting, 0);
    }
    expect_all_snapshots_readable(f, 3);
    r = open_repo(f);
    assert_int_equal(repo_load_index(r), 0);
    for (uint32_t i = 2; i < N_A; i++)
        if (in_index(r, 100 + i))
            fail_msg("blob %u of the removed snapshot is still indexed", 100 + i);
    assert_int_equal(count_objects(r, "maint/"), 0);
    repo_close(r);
}

/* A writer whose liveness a pruner could not see (its session object vanished) must not
 * commit a snapshot that may reference data the prune deleted: the save fails, nothing is
 * lost, and a new run stores the blob again. */
static void test_writer_with_lost_heartbeat(void **state)
{
    fx_t *f = *state;
    ab_t ab;
    make_ab(f, &ab);
    remove_snapshot(f, ab.snap_a);

    repo_t *r1 = open_repo(f);
    writer_t *w1;
    assert_int_equal(writer_open(r1, NULL, &w1), 0);
    char hex[33], name[64];
    hex_encode(writer_session(w1)->id, 16, hex);
    snprintf(name, sizeof name, "sessions/%s", hex);
    assert_int_equal(storage_remove(repo_storage(r1), name), 0);

    prune_stats_t s = run_prune(f, false);
    assert_true(s.packs_deleted >= 1);

    uint8_t id[32], tree_d[32], snap_d[32];
    (void)add_blob(w1, 101, id);
    add_tree(w1, (const uint32_t[]){101}, 1, tree_d);
    assert_int_equal(writer_flush(w1), 0);
    snapshot_t sn;
    snapshot_init(&sn);
    sn.time_ns = 1700000300000000000ll;
    memcpy(sn.tree, tree_d, 32);
    assert_int_equal(writer_save_snapshot(w1, &sn), COFFER_EIO);
    assert_non_null(strstr(err_msg(), "run the backup again"));
    snapshot_release(&sn);
    writer_free(w1);
    repo_close(r1);

    /* the rerun stores blob 101 again and its snapshot reads back */
    repo_t *r2 = open_repo(f);
    writer_t *w2;
    assert_int_equal(writer_open(r2, NULL, &w2), 0);
    assert_true(add_blob(w2, 101, id));
    add_tree(w2, (const uint32_t[]){101}, 1, tree_d);
    save_snapshot(w2, tree_d, 1700000400000000000ll, snap_d);
    writer_free(w2);
    repo_close(r2);
    repo_t *r = open_repo(f);
    assert_int_equal(repo_load_index(r), 0);
    buf_t b;
    buf_init(&b);
    assert_int_equal(repo_read_blob(r, BLOB_DATA, id, &b), 0);
    buf_release(&b);
    repo_close(r);
}

static void test_prune_lease(void **state)
{
    fx_t *f = *state;
    ab_t ab;
    make_ab(f, &ab);
    /* a fresh lease held by someone else: prune refuses, deletes nothing */
    repo_t *r = open_repo(f);
    assert_int_equal(storage_put(repo_storage(r), "maint/lease", "x", 1, NULL), 0);
    prune_opts_t o = {0};
    prune_stats_t s;
    assert_int_equal(prune_run(r, &o, &s), COFFER_ELEASE);
    bool removed = true;
    assert_int_equal(prune_unlock(r, false, &removed), COFFER_ELEASE);
    assert_false(removed);
    assert_int_equal(prune_unlock(r, true, &removed), 0);
    assert_true(removed);
    assert_int_equal(prune_unlock(r, true, &removed), 0);
    assert_false(removed);
    repo_close(r);
    remove_snapshot(f, ab.snap_a);
    prune_stats_t s2 = run_prune(f, false);
    assert_true(s2.packs_deleted >= 1);
    expect_b_intact(f, &ab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prune_drops_only_unreferenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_with_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_with_lost_heartbeat, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
