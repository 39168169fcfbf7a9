/*
 * test_writer.c -- unit tests for src/repo/writer.c (with repo.c) on in-process mem: storage:
 * 8 threads adding the same blob at once store it once; shared and private blobs from many
 * threads all read back and verify after reopening the repository, through a saved snapshot
 * and its tree; a second session deduplicates everything (nothing written); a writer freed
 * without flush (a crash) leaves uploaded packs that the next writer adopts, so re-adding
 * stores only what never landed; checkpoints make packs durable before the end; blob types
 * and lookups of unknown blobs.

 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "repo/repo.h"
#include "repo/tree.h"
#include "repo/writer.h"
#include "storage/storage.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define PASSWORD "correct horse"

/* ---- fixture: a fresh repository per test ---- */

typedef struct fx {
    char loc[64];
    repo_t *r;
} fx_t;

static unsigned seq;

static int setup_params(void **state, uint32_t pack_size)
{
    setenv("COFFER_KDF", "argon2id:ops=1,mem=8192", 1);
    fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->loc, sizeof f->loc, "mem:writer-%ld-%u", (long)time(NULL), ++seq);
    repo_params_t p;
    repo_params_default(&p);
    p.pack_size = pack_size;
    if (repo_create(f->loc, PASSWORD, &p, NULL, &f->r)) {
        fprintf(stderr, "repo_create: %s\n", err_msg());
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup_small(void **state)
{
    return setup_params(state, 64u << 10);
}

static int setup_default(void **state)
{
    return setup_params(state, PACK_SIZE_DEFAULT);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    repo_close(f->r);
    free(f);
    return 0;
}

static repo_t *reopen(const fx_t *f)
{
    repo_t *r;
    int rc = repo_open(f->loc, PASSWORD, &r);
    if (rc)
        fail_msg("repo_open: %s", err_msg());
    return r;
}

static int count_cb(void *ud, const char *name, const storage_stat_t *st)
{
    (void)name;
    (void)st;
    ++*(size_t *)ud;
    return 0;
}

static size_t count_objects(repo_t *r, const char *prefix)
{
    size_t n = 0;
    assert_int_equal(storage_list(repo_storage(r), prefix, count_cb, &n), 0);
    return n;
}

/* Deterministic content: blob `k` of length `n`, incompressible unless k is odd. */
static void gen(uint8_t *p, size_t n, uint32_t k)
{
    uint32_t x = k * 2654435761u + 12345;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = k % 2 ? (uint8_t)("coffer"[i % 6] + (i / 4096)) : (uint8_t)x;
    }
}

static size_t len_of(uint32_t k)
{
    return 1 + (k * 7919u) % 30000;
}

static void expect_blob(repo_t *r, uint8_t type, const uint8_t id[32], uint32_t k)
{
    size_t n = len_of(k);
    uint8_t *want = malloc(n);
    assert_non_null(want);
    gen(want, n, k);
    buf_t b;
    buf_init(&b);
    int rc = repo_read_blob(r, type, id, &b);
    if (rc)
        fail_msg("blob %u: %s", k, err_msg());
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    buf_release(&b);
    free(want);
}

static void add_gen(writer_t *w, uint32_t k, uint8_t id[32], bool *added)
{
    size_t n = len_of(k);
    uint8_t *p = malloc(n);
    assert_non_null(p);
    gen(p, n, k);
    int rc = writer_add_blob(w, BLOB_DATA, p, n, NULL, id, added);
    if (rc)
        fail_msg("writer_add_blob %u: %s", k, err_msg());
    free(p);
}

/* ---- many threads ---- */

enum { NT = 8, SHARED = 20, PRIVATE = 30 };

typedef struct th_ctx {
    writer_t *w;
    int t;
    pthread_barrier_t *bar;
    const uint8_t *same;
    size_t same_len;
    uint8_t same_id[32];
    bool same_added;
    uint8_t shared_ids[SHARED][32];
    uint8_t private_ids[PRIVATE][32];
    int shared_added;
    int rc;
} th_ctx_t;

static void *add_thread(void *arg)
{
    th_ctx_t *c = arg;
    pthread_barrier_wait(c->bar);
    c->rc |=
        writer_add_blob(c->w, BLOB_DATA, c->same, c->same_len, NULL, c->same_id, &c->same_added);
    uint8_t *buf = malloc(30000);
    if (!buf) {
        c->rc = -1;
        return NULL;
    }
    int p = 0;
    for (int i = 0; i < SHARED + PRIVATE; i++) {
        bool added;
        if (i % 2 == 0 && i < 2 * SHARED) {
            /* shared blobs, interleaved with private ones, each thread in its own order */
            int s = (i / 2 + c->t * 3) % SHARED;
            uint32_t k = 1000 + (uint32_t)s;
            gen(buf, len_of(k), k);
            c->rc |=
                writer_add_blob(c->w, BLOB_DATA, buf, len_of(k), NULL, c->shared_ids[s], &added);
            c->shared_added += added;
        } else {
            uint32_t k = 2000 + (uint32_t)(c->t * PRIVATE + p);
            gen(buf, len_of(k), k);
            c->rc |=
                writer_add_blob(c->w, BLOB_DATA, buf, len_of(k), NULL, c->private_ids[p], &added);
            c->rc |= !added;
            p++;
        }
    }
    c->rc |= p != PRIVATE;
    free(buf);
    return NULL;
}

/* Build a tree with one file per blob (name "k<k>") and return its id. */
static void add_tree(writer_t *w, const uint32_t *ks, uint8_t (*ids)[32], size_t n, uint8_t out[32])
{
    tree_t t;
    tree_init(&t);
    for (size_t i = 0; i < n; i++) {
        node_t nd;
        node_init(&nd);
        char name[32];
        snprintf(name, sizeof name, "k%u", ks[i]);
        nd.name = strdup(name);
        assert_non_null(nd.name);
        nd.type = NODE_FILE;
        nd.mode = 0644;
        nd.size = len_of(ks[i]);
        assert_int_equal(node_add_extent(&nd, ids[i], nd.size, false), 0);
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

static void test_threads_same_blob_then_readback(void **state)
{
    fx_t *f = *state;
    writer_t *w;
    assert_int_equal(writer_open(f->r, NULL, &w), 0);
    assert_int_equal(count_objects(f->r, "sessions/"), 1);

    size_t same_len = 200000;
    uint8_t *same = malloc(same_len);
    assert_non_null(same);
    gen(same, same_len, 4);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NT);
    th_ctx_t *ctx = calloc(NT, sizeof *ctx);
    assert_non_null(ctx);
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) {
        ctx[t].w = w;
        ctx[t].t = t;
        ctx[t].bar = &bar;
        ctx[t].same = same;
        ctx[t].same_len = same_len;
        assert_int_equal(pthread_create(&th[t], NULL, add_thread, &ctx[t]), 0);
    }
    int same_added = 0, shared_added = 0;
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(ctx[t].rc, 0);
        same_added += ctx[t].same_added;
        shared_added += ctx[t].shared_added;
        assert_memory_equal(ctx[t].same_id, ctx[0].same_id, 32);
        for (int s = 0; s < SHARED; s++)
            assert_memory_equal(ctx[t].shared_ids[s], ctx[0].shared_ids[s], 32);
    }
    pthread_barrier_destroy(&bar);
    assert_int_equal(same_added, 1);
    assert_int_equal(shared_added, SHARED);
    const writer_stats_t *ws = writer_stats(w);
    assert_int_equal(atomic_load(&ws->blobs_added), 1 + SHARED + NT * PRIVATE);

    /* the id is the keyed HMAC of the content */
    uint8_t id[32];
    assert_int_equal(repo_blob_id(f->r, BLOB_DATA, same, same_len, id), 0);
    assert_memory_equal(id, ctx[0].same_id, 32);

    /* a tree over the shared and private blobs, then flush and a snapshot */
    size_t nb = SHARED + NT * PRIVATE;
    uint32_t *ks = calloc(nb, sizeof *ks);
    uint8_t(*ids)[32] = calloc(nb, 32);
    assert_non_null(ks);
    assert_non_null(ids);
    size_t j = 0;
    for (int s = 0; s < SHARED; s++, j++) {
        ks[j] = 1000 + (uint32_t)s;
        memcpy(ids[j], ctx[0].shared_ids[s], 32);
    }
    for (int t = 0; t < NT; t++)
        for (int p = 0; p < PRIVATE; p++, j++) {
            ks[j] = 2000 + (uint32_t)(t * PRIVATE + p);
            memcpy(ids[j], ctx[t].private_ids[p], 32);
        }
    uint8_t tree_id[32];
    add_tree(w, ks, ids, nb, tree_id);
    assert_int_equal(writer_flush(w), 0);
    assert_true(atomic_load(&ws->packs_written) >= 2); /* data and tree packs are separate */
    snapshot_t snap;
    snapshot_init(&snap);
    snap.time_ns = 1700000000000000000ll;
    memcpy(snap.tree, tree_id, 32);
    assert_int_equal(writer_save_snapshot(w, &snap), 0);
    writer_free(w);
    assert_int_equal(count_objects(f->r, "sessions/"), 0); /* the session object is gone */

    /* a fresh process: reopen, load, read everything through the snapshot's tree */
    repo_t *r2 = reopen(f);
    assert_int_equal(repo_load_index(r2), 0);
    assert_int_equal(index_count(repo_index(r2)), 1 + nb + 1);
    snapshot_t *snaps;
    size_t ns, bad;
    assert_int_equal(repo_list_snapshots(r2, &snaps, &ns, &bad), 0);
    assert_int_equal(ns, 1);
    assert_int_equal(bad, 0);
    assert_memory_equal(snaps[0].id, snap.id, 32);
    tree_t t;
    tree_init(&t);
    assert_int_equal(repo_load_tree(r2, snaps[0].tree, &t), 0);
    assert_int_equal(t.n, nb);
    for (size_t i = 0; i < nb; i++) {
        char name[32];
        snprintf(name, sizeof name, "k%u", ks[i]);
        const node_t *nd = tree_find(&t, name);
        assert_non_null(nd);
        assert_int_equal(nd->n_extents, 1);
        assert_memory_equal(nd->extents[0].id, ids[i], 32);
        expect_blob(r2, BLOB_DATA, nd->extents[0].id, ks[i]);
    }
    buf_t b;
    buf_init(&b);
    assert_int_equal(repo_read_blob(r2, BLOB_DATA, ctx[0].same_id, &b), 0);
    assert_int_equal(b.len, same_len);
    assert_memory_equal(b.data, same, same_len);
    /* the wrong type, and an unknown id */
    assert_int_equal(repo_read_blob(r2, BLOB_TREE, ctx[0].same_id, &b), COFFER_ECORRUPT);
    uint8_t unknown[32] = {0xde, 0xad};
    assert_int_equal(repo_read_blob(r2, BLOB_DATA, unknown, &b), COFFER_ENOENT);
    buf_release(&b);
    tree_release(&t);
    repo_free_snapshots(snaps, ns);

    /* second session: everything deduplicates, nothing is written */
    size_t packs_before = count_objects(r2, "data/"), idx_before = count_objects(r2, "index/");
    writer_t *w2;
    assert_int_equal(writer_open(r2, NULL, &w2), 0);
    bool added = true;
    uint8_t id2[32];
    assert_int_equal(writer_add_blob(w2, BLOB_DATA, same, same_len, NULL, id2, &added), 0);
    assert_false(added);
    for (size_t i = 0; i < nb; i++) {
        add_gen(w2, ks[i], id2, &added);
        assert_false(added);
        assert_memory_equal(id2, ids[i], 32);
    }
    uint8_t tree2[32];
    add_tree(w2, ks, ids, nb, tree2);
    assert_memory_equal(tree2, tree_id, 32); /* same directory, same bytes, same id */
    assert_int_equal(writer_flush(w2), 0);
    assert_int_equal(atomic_load(&writer_stats(w2)->blobs_added), 0);
    assert_int_equal(atomic_load(&writer_stats(w2)->packs_written), 0);
    assert_int_equal(atomic_load(&writer_stats(w2)->bytes_stored), 0);
    writer_free(w2);
    assert_int_equal(count_objects(r2, "data/"), packs_before);
    assert_int_equal(count_objects(r2, "index/"), idx_before);
    repo_close(r2);
    free(ks);
    free(ids);
    free(ctx);
    free(same);
}

/* A writer freed without flush (an error path) indexes the packs it had uploaded, so nothing
 * needs adopting and its session object goes away. */
static void test_free_indexes_uploaded(void **state)
{
    fx_t *f = *state;
    enum { N = 40 };
    uint8_t ids[N][32];
    writer_t *w;
    assert_int_equal(writer_open(f->r, NULL, &w), 0);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t buf[10000];
        gen(buf, sizeof buf, 2 * i);
        bool added;
        assert_int_equal(writer_add_blob(w, BLOB_DATA, buf, sizeof buf, NULL, ids[i], &added), 0);
    }
    uint64_t uploaded = atomic_load(&writer_stats(w)->packs_written);
    assert_true(uploaded >= 1);
    writer_free(w); /* no flush: the open pack is dropped, the uploaded ones are indexed */
    assert_int_equal(count_objects(f->r, "index/"), 1);
    assert_int_equal(count_objects(f->r, "data/"), uploaded);
    assert_int_equal(count_objects(f->r, "sessions/"), 0);
    repo_t *r2 = reopen(f);
    assert_int_equal(repo_load_index(r2), 0);
    size_t known = 0;
    for (uint32_t i = 0; i < N; i++)
        known += index_lookup(repo_index(r2), ids[i], NULL);
    assert_true(known >= 1 && known < N);
    repo_close(r2);
}

/* The child process writes blobs and dies without ending its session (_exit: a crash). */
static void crash_child(const char *dir, int fd)
{
    repo_t *r = NULL;
    writer_t *w = NULL;
    uint64_t uploaded = 0;
    if (repo_open(dir, PASSWORD, &r) == 0 && writer_open(r, NULL, &w) == 0) {
        for (uint32_t i = 0; i < 40; i++) {
            uint8_t buf[10000], id[32];
            gen(buf, sizeof buf, 2 * i);
            if (writer_add_blob(w, BLOB_DATA, buf, sizeof buf, NULL, id, NULL))
                _exit(2);
        }
        uploaded = atomic_load(&writer_stats(w)->packs_written);
    }
    if (write(fd, &uploaded, sizeof uploaded) != (ssize_t)sizeof uploaded)
        _exit(3);
    _exit(0);
}

/* A writer that crashed leaves its session object and unindexed packs: the next writer sees
 * the session, adopts the packs; once the session is stale, a writer that ends cleanly
 * removes it, and later writers no longer list data/. */
static void test_crash_then_adopt(void **state)
{
    (void)state;
    enum { N = 40 };
    char dir[] = "/tmp/coffer-test-adopt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    repo_params_t p;
    repo_params_default(&p);
    p.pack_size = 64u << 10;
    repo_t *r0;
    assert_int_equal(repo_create(dir, PASSWORD, &p, NULL, &r0), 0);
    repo_close(r0);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_child(dir, pfd[1]);
    uint64_t uploaded = 0;
    assert_int_equal(read(pfd[0], &uploaded, sizeof uploaded), (ssize_t)sizeof uploaded);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(pfd[0]);
    close(pfd[1]);
    assert_true(uploaded >= 1);

    repo_t *r2;
    assert_int_equal(repo_open(dir, PASSWORD, &r2), 0);
    assert_int_equal(count_objects(r2, "index/"), 0);
    assert_int_equal(count_objects(r2, "data/"), uploaded);
    assert_int_equal(count_objects(r2, "sessions/"), 1); /* the crashed writer's */
    uint8_t ids[N][32];
    for (uint32_t i = 0; i < N; i++) {
        uint8_t buf[10000];
        gen(buf, sizeof buf, 2 * i);
        assert_int_equal(repo_blob_id(r2, BLOB_DATA, buf, sizeof buf, ids[i]), 0);
    }
    writer_t *w2;
    assert_int_equal(writer_open(r2, NULL, &w2), 0);
    assert_int_equal(atomic_load(&writer_stats(w2)->packs_adopted), uploaded);
    /* the adopted packs' blobs are known again; re-adding stores only the lost ones */
    size_t known = 0;
    for (uint32_t i = 0; i < N; i++)
        known += index_lookup(repo_index(r2), ids[i], NULL);
    assert_true(known >= 1);
    assert_true(known < N);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t buf[10000], id[32];
        gen(buf, sizeof buf, 2 * i);
        bool was_known = index_lookup(repo_index(r2), ids[i], NULL), added;
        assert_int_equal(writer_add_blob(w2, BLOB_DATA, buf, sizeof buf, NULL, id, &added), 0);
        assert_memory_equal(id, ids[i], 32);
        assert_int_equal(added, !was_known);
    }
    assert_int_equal(atomic_load(&writer_stats(w2)->blobs_added), N - known);
    assert_int_equal(writer_flush(w2), 0);
    writer_free(w2);
    repo_close(r2);

    /* everything reads back, including blobs of adopted packs (sealed by the dead session) */
    repo_t *r3;
    assert_int_equal(repo_open(dir, PASSWORD, &r3), 0);
    assert_int_equal(repo_load_index(r3), 0);
    assert_int_equal(index_count(repo_index(r3)), N);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t want[10000];
        gen(want, sizeof want, 2 * i);
        buf_t b;
        buf_init(&b);
        int rc = repo_read_blob(r3, BLOB_DATA, ids[i], &b);
        if (rc)
            fail_msg("blob %u: %s", i, err_msg());
        assert_int_equal(b.len, sizeof want);
        assert_memory_equal(b.data, want, sizeof want);
        buf_release(&b);
    }
    /* the dead session was too recent to call dead, so it stays; a third writer adopts
     * nothing more */
    assert_int_equal(count_objects(r3, "sessions/"), 1);
    writer_t *w3;
    assert_int_equal(writer_open(r3, NULL, &w3), 0);
    assert_int_equal(atomic_load(&writer_stats(w3)->packs_adopted), 0);
    writer_free(w3);
    /* once it is stale, a writer that ends cleanly removes it */
    setenv("COFFER_STALE_SECS", "1", 1);
    sleep(2);
    assert_int_equal(writer_open(r3, NULL, &w3), 0);
    writer_free(w3);
    unsetenv("COFFER_STALE_SECS");
    assert_int_equal(count_objects(r3, "sessions/"), 0);
    repo_close(r3);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A checkpoint indexes the packs uploaded so far: a crash after it loses nothing of them. */
static void test_checkpoint_survives_crash(void **state)
{
    fx_t *f = *state;
    writer_t *w;
    assert_int_equal(writer_open(f->r, NULL, &w), 0);
    uint8_t ids[20][32];
    for (uint32_t i = 0; i < 20; i++) {
        bool added;
        add_gen(w, 3000 + 2 * i, ids[i], &added);
        assert_true(added);
    }
    assert_int_equal(writer_checkpoint(w), 0);
    uint64_t packs = atomic_load(&writer_stats(w)->packs_written);
    assert_true(packs >= 1);
    assert_int_equal(count_objects(f->r, "index/"), 1);
    assert_int_equal(writer_checkpoint(w), 0); /* nothing new: no segment */
    assert_int_equal(count_objects(f->r, "index/"), 1);
    writer_free(w);

    repo_t *r2 = reopen(f);
    assert_int_equal(repo_load_index(r2), 0);
    size_t found = 0;
    for (uint32_t i = 0; i < 20; i++)
        if (index_lookup(repo_index(r2), ids[i], NULL)) {
            expect_blob(r2, BLOB_DATA, ids[i], 3000 + 2 * i);
            found++;
        }
    assert_true(found >= 1);
    writer_t *w2;
    assert_int_equal(writer_open(r2, &(writer_opts_t){.no_adopt = true}, &w2), 0);
    assert_int_equal(atomic_load(&writer_stats(w2)->packs_adopted), 0);
    writer_free(w2);
    repo_close(r2);
}

/* The same bytes stored as a data blob and as a tree blob get different ids (separate id
 * keys), so the tree stays readable as a tree. */
static void test_same_bytes_data_and_tree(void **state)
{
    fx_t *f = *state;
    writer_t *w;
    assert_int_equal(writer_open(f->r, NULL, &w), 0);
    tree_t t;
    tree_init(&t);
    node_t nd;
    node_init(&nd);
    nd.name = strdup("empty");
    assert_non_null(nd.name);
    nd.type = NODE_FILE;
    assert_int_equal(tree_add(&t, &nd), 0);
    buf_t enc;
    buf_init(&enc);
    assert_int_equal(tree_encode(&t, &enc), 0);
    uint8_t id_data[32], id_tree[32];
    bool added;
    assert_int_equal(writer_add_blob(w, BLOB_DATA, enc.data, enc.len, NULL, id_data, &added), 0);
    assert_true(added);
    assert_int_equal(writer_add_blob(w, BLOB_TREE, enc.data, enc.len, NULL, id_tree, &added), 0);
    assert_true(added);
    assert_memory_not_equal(id_data, id_tree, 32);
    assert_int_equal(writer_flush(w), 0);
    writer_free(w);
    repo_t *r2 = reopen(f);
    assert_int_equal(repo_load_index(r2), 0);
    tree_t back;
    tree_init(&back);
    int rc = repo_load_tree(r2, id_tree, &back);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", err_msg());
    size_t n = back.n;
    tree_release(&back);
    repo_close(r2);
    buf_release(&enc);
    tree_release(&t);
    if (rc)
        fail_msg("tree blob unreadable: %s", msg);
    assert_int_equal(n, 1);
}

/* A pack also closes when it holds PACK_HEADER_MAX_ENTRIES blobs: 200001 tiny blobs (far
 * below the byte target) all store, in more than one pack. */
static void test_many_tiny_blobs(void **state)
{
    fx_t *f = *state;
    writer_t *w;
    assert_int_equal(writer_open(f->r, NULL, &w), 0);
    for (uint32_t i = 0; i <= 200000; i++) {
        uint8_t data[16] = {0}, id[32];
        memcpy(data, &i, sizeof i);
        int rc = writer_add_blob(w, BLOB_DATA, data, sizeof data, NULL, id, NULL);
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", err_msg());
            writer_free(w);
            fail_msg("blob #%u failed: %s (%s)", i, err_name(rc), msg);
        }
    }
    assert_int_equal(writer_flush(w), 0);
    assert_int_equal(atomic_load(&writer_stats(w)->blobs_added), 200001);
    writer_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_threads_same_blob_then_readback, setup_small,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_indexes_uploaded, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_crash_then_adopt, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_survives_crash, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_same_bytes_data_and_tree, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_many_tiny_blobs, setup_default, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
