/*
 * test_conformance.c -- one suite of storage contract tests, run against every driver.
 *
 * Targets: local (a mkdtemp directory), mem, and fault with no faults over local. Set
 * COFFER_TEST_LOCATIONS to whitespace-separated extra locations (e.g. an S3 or SFTP repository
 * started by an integration script) to run the same suite against them; each run works under
 * a fresh random sub-location and removes what it wrote. Each test opens its own fresh
 * location (base + "/tN", or base + "-tN" for names without '/', such as mem:).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "storage/storage.h"

#include <dirent.h>
#include <jansson.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct target {
    const char *label;
    char base[512]; /* location prefix */
    char root[512]; /* its directory, for targets backed by the local filesystem; else "" */
    bool builtin;   /* a driver of this tree: checks that need its exact behavior run */
};

static struct target *cur;
static unsigned seq;

struct fx {
    storage_t *s;
    char loc[600];
    char root[600]; /* "" unless cur->root is set */
};

static const char *sep_for(const char *base)
{
    return strchr(base, '/') ? "/" : "-";
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    seq++;
    snprintf(f->loc, sizeof f->loc, "%s%st%u", cur->base, sep_for(cur->base), seq);
    if (cur->root[0])
        snprintf(f->root, sizeof f->root, "%s/t%u", cur->root, seq);
    int rc = storage_open(f->loc, true, &f->s);
    if (rc)
        fail_msg("cannot open %s: %s", f->loc, err_msg());
    *state = f;
    return 0;
}

static int remove_cb(void *ud, const char *name, const storage_stat_t *st)
{
    (void)st;
    return storage_remove(ud, name) == 0 ? 0 : 1;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    if (f->s)
        storage_list(f->s, "", remove_cb, f->s); /* leave external servers clean */
    storage_close(f->s);
    free(f);
    return 0;
}

static int64_t host_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fill_pattern(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static void put_str(storage_t *s, const char *name, const char *text)
{
    int rc = storage_put(s, name, text, strlen(text), NULL);
    if (rc)
        fail_msg("put %s: %s", name, err_msg());
}

static void assert_content(storage_t *s, const char *name, const void *want, size_t len)
{
    buf_t b;
    buf_init(&b);
    int rc = storage_get(s, name, 0, 0, &b);
    if (rc)
        fail_msg("get %s: %s", name, err_msg());
    assert_int_equal(b.len, len);
    if (len)
        assert_memory_equal(b.data, want, len);
    buf_release(&b);
}

static void test_roundtrip(void **state)
{
    struct fx *f = *state;
    buf_t b;
    buf_init(&b);

    put_str(f->s, "config", "hello");
    assert_int_equal(buf_append_str(&b, "XY"), 0);
    assert_int_equal(storage_get(f->s, "config", 0, 0, &b), 0);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "XYhello", 7); /* appended after what was there */
    assert_int_equal(b.data[b.len], 0);

    assert_int_equal(storage_put(f->s, "keys/empty", NULL, 0, NULL), 0);
    assert_content(f->s, "keys/empty", "", 0);
    storage_stat_t st;
    assert_int_equal(storage_stat(f->s, "keys/empty", &st), 0);
    assert_int_equal(st.size, 0);

    size_t big = 8u << 20;
    uint8_t *data = malloc(big);
    assert_non_null(data);
    fill_pattern(data, big, 1);
    assert_int_equal(storage_put(f->s, "data/ab/big", data, big, NULL), 0);
    assert_content(f->s, "data/ab/big", data, big);
    assert_int_equal(storage_stat(f->s, "data/ab/big", &st), 0);
    assert_int_equal(st.size, big);
    free(data);
    buf_release(&b);
}

static unsigned count_dir_entries(const char *dir)
{
    unsigned n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_create_only(void **state)
{
    struct fx *f = *state;
    put_str(f->s, "snapshots/s1", "first");
    assert_int_equal(storage_put(f->s, "snapshots/s1", "second", 6, NULL), COFFER_EEXIST);
    assert_non_null(strstr(err_msg(), "snapshots/s1"));
    storage_put_opts_t nosync = {.sync = false};
    assert_int_equal(storage_put(f->s, "snapshots/s1", "third", 5, &nosync), COFFER_EEXIST);
    assert_content(f->s, "snapshots/s1", "first", 5);
    if (f->root[0]) {
        char dir[700];
        snprintf(dir, sizeof dir, "%s/snapshots", f->root);
        assert_int_equal(count_dir_entries(dir), 1); /* no temp file left behind */
    }
}

static void test_overwrite(void **state)
{
    struct fx *f = *state;
    storage_put_opts_t ow = {.overwrite = true, .sync = true};
    put_str(f->s, "sessions/a", "one");
    assert_int_equal(storage_put(f->s, "sessions/a", "two-longer", 10, &ow), 0);
    assert_content(f->s, "sessions/a", "two-longer", 10);
    assert_int_equal(storage_put(f->s, "sessions/a", "3", 1, &ow), 0);
    assert_content(f->s, "sessions/a", "3", 1);
    assert_int_equal(storage_put(f->s, "sessions/b", "new", 3, &ow), 0); /* creates too */
    assert_content(f->s, "sessions/b", "new", 3);
}

static void test_ranged_get(void **state)
{
    struct fx *f = *state;
    uint8_t data[100];
    buf_t b;
    for (int i = 0; i < 100; i++)
        data[i] = (uint8_t)i;
    assert_int_equal(storage_put(f->s, "data/cd/r", data, sizeof data, NULL), 0);
    buf_init(&b);

    assert_int_equal(storage_get(f->s, "data/cd/r", 10, 20, &b), 0);
    assert_int_equal(b.len, 20);
    assert_memory_equal(b.data, data + 10, 20);

    buf_reset(&b);
    assert_int_equal(storage_get(f->s, "data/cd/r", 90, 50, &b), 0); /* past the end: short */
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, data + 90, 10);

    buf_reset(&b);
    assert_int_equal(storage_get(f->s, "data/cd/r", 40, 0, &b), 0); /* 0 = to the end */
    assert_int_equal(b.len, 60);
    assert_memory_equal(b.data, data + 40, 60);

    buf_reset(&b);
    assert_int_equal(storage_get(f->s, "data/cd/r", 100, 10, &b), 0); /* at the end: empty */
    assert_int_equal(b.len, 0);

    assert_int_equal(buf_append_str(&b, "keep"), 0);
    assert_int_equal(storage_get(f->s, "data/cd/r", 101, 1, &b), COFFER_EINVAL);
    assert_int_equal(b.len, 4); /* untouched on failure */
    assert_int_equal(storage_get(f->s, "data/cd/r", UINT64_MAX, 0, &b), COFFER_EINVAL);
    assert_int_equal(storage_get(f->s, "data/cd/missing", 0, 0, &b), COFFER_ENOENT);
    assert_non_null(strstr(err_msg(), "data/cd/missing"));
    assert_int_equal(b.len, 4);
    buf_release(&b);
}

static void test_stat(void **state)
{
    struct fx *f = *state;
    int64_t before = host_now_ns();
    put_str(f->s, "index/i1", "0123456789");
    storage_stat_t st = {.size = 77, .mtime_ns = 77};
    assert_int_equal(storage_stat(f->s, "index/i1", &st), 0);
    assert_int_equal(st.size, 10);
    int64_t slack = (cur->builtin ? 5 : 3600) * 1000000000ll;
    assert_true(st.mtime_ns > 1577836800ll * 1000000000); /* after 2020 */
    assert_true(st.mtime_ns > before - slack);
    assert_true(st.mtime_ns < host_now_ns() + slack);

    storage_stat_t untouched = {.size = 77, .mtime_ns = 77};
    assert_int_equal(storage_stat(f->s, "index/nope", &untouched), COFFER_ENOENT);
    assert_int_equal(untouched.size, 77);
    assert_int_equal(storage_stat(f->s, "index", &untouched), COFFER_ENOENT); /* a "dir" */
    assert_int_equal(untouched.mtime_ns, 77);
}

struct seen {
    unsigned n;
    char names[16][64];
    uint64_t sizes[16];
    int stop_after; /* 0: never stop */
};

static int collect_cb(void *ud, const char *name, const storage_stat_t *st)
{
    struct seen *s = ud;
    if (s->n < 16) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
        s->sizes[s->n] = st->size;
    }
    s->n++;
    return s->stop_after && (int)s->n >= s->stop_after ? 42 : 0;
}

static unsigned list_count(storage_t *s, const char *prefix)
{
    struct seen seen = {0};
    int rc = storage_list(s, prefix, collect_cb, &seen);
    if (rc)
        fail_msg("list '%s': %s", prefix, err_msg());
    return seen.n;
}

static bool seen_has(const struct seen *s, const char *name, uint64_t size)
{
    for (unsigned i = 0; i < s->n && i < 16; i++)
        if (!strcmp(s->names[i], name))
            return s->sizes[i] == size;
    return false;
}

static void touch(const char *path)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("junk", fp);
    fclose(fp);
}

static void test_list_prefix(void **state)
{
    struct fx *f = *state;
    const char *names[] = {"config",   "data/ab/p1", "data/ab/p2", "data/cd/p3",
                           "datafile", "index/i1",   "keys/k1"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        put_str(f->s, names[i], names[i]);

    if (f->root[0]) { /* debris a crash or a person may leave in a local repository */
        char p[800];
        snprintf(p, sizeof p, "%s/data/ab/.tmp-0123456789abcdef", f->root);
        touch(p);
        snprintf(p, sizeof p, "%s/.tmp-x", f->root);
        touch(p);
        snprintf(p, sizeof p, "%s/data/ab/not an object", f->root);
        touch(p);
    }

    struct seen seen = {0};
    assert_int_equal(storage_list(f->s, "", collect_cb, &seen), 0);
    assert_int_equal(seen.n, 7);
    assert_true(seen_has(&seen, "data/ab/p1", 10));
    assert_true(seen_has(&seen, "config", 6));
    assert_int_equal(list_count(f->s, "data/"), 3);
    assert_int_equal(list_count(f->s, "data/a"), 2);
    assert_int_equal(list_count(f->s, "data/ab/"), 2);
    assert_int_equal(list_count(f->s, "data/ab/p1"), 1);
    assert_int_equal(list_count(f->s, "dat"), 4);
    assert_int_equal(list_count(f->s, "d"), 4);
    assert_int_equal(list_count(f->s, "nothing/"), 0);
    assert_int_equal(list_count(f->s, "data/zz/"), 0);

    struct seen stop = {.stop_after = 2};
    assert_int_equal(storage_list(f->s, "", collect_cb, &stop), 42); /* the cb's own value */
    assert_int_equal(stop.n, 2);
}

static void test_list_many(void **state)
{
    struct fx *f = *state;
    storage_put_opts_t fast = {.sync = false};
    char name[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "data/%02x/obj%04d", i % 256, i);
        int rc = storage_put(f->s, name, name, strlen(name), &fast);
        if (rc)
            fail_msg("put %s: %s", name, err_msg());
    }
    assert_int_equal(list_count(f->s, "data/"), 1000);
    assert_int_equal(list_count(f->s, "data/0a/"), 4); /* 10, 266, 522, 778 */
    assert_int_equal(list_count(f->s, "data/0a/obj0266"), 1);
    assert_int_equal(list_count(f->s, "index/"), 0);
}

static void test_remove(void **state)
{
    struct fx *f = *state;
    buf_t b;
    storage_stat_t st;
    buf_init(&b);
    put_str(f->s, "maint/lease", "x");
    assert_int_equal(storage_remove(f->s, "maint/lease"), 0);
    assert_int_equal(storage_get(f->s, "maint/lease", 0, 0, &b), COFFER_ENOENT);
    assert_int_equal(storage_stat(f->s, "maint/lease", &st), COFFER_ENOENT);
    assert_int_equal(storage_remove(f->s, "maint/lease"), COFFER_ENOENT);
    assert_non_null(strstr(err_msg(), "maint/lease"));
    assert_int_equal(storage_remove(f->s, "never/was"), COFFER_ENOENT);
    assert_int_equal(list_count(f->s, "maint/"), 0);
    put_str(f->s, "maint/lease", "again"); /* create-only works after removal */
    assert_content(f->s, "maint/lease", "again", 5);
    buf_release(&b);
}

static void test_invalid_names(void **state)
{
    struct fx *f = *state;
    static const char *bad[] = {
        "",      "/abs",   "a//b",  "a/",       "../x", "a/../b", "./a",      "a/.",
        "..",    ".",      "sp ce", "a\\b",     "a:b",  "a*",     "\xc3\xa9", "data/ab/.tmp-1",
        "tab\t", "new\nl", "q?",    "per%cent",
    };
    buf_t b;
    storage_stat_t st;
    buf_init(&b);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(storage_put(f->s, bad[i], "x", 1, NULL), COFFER_EINVAL);
        assert_non_null(strstr(err_msg(), "invalid object name"));
        assert_int_equal(storage_get(f->s, bad[i], 0, 0, &b), COFFER_EINVAL);
        assert_int_equal(storage_stat(f->s, bad[i], &st), COFFER_EINVAL);
        assert_int_equal(storage_remove(f->s, bad[i]), COFFER_EINVAL);
    }
    static const char *bad_prefix[] = {"/a", "../", "a//", "a b", "a/../", "./"};
    for (size_t i = 0; i < sizeof bad_prefix / sizeof bad_prefix[0]; i++)
        assert_int_equal(storage_list(f->s, bad_prefix[i], collect_cb, &(struct seen){0}),
                         COFFER_EINVAL);

    /* Lengths: 1024 bytes in components of at most 255 is the longest valid name. */
    char longest[1100];
    size_t n = 0;
    const size_t parts[] = {255, 255, 255, 254, 1};
    for (size_t p = 0; p < 5; p++) {
        if (p)
            longest[n++] = '/';
        memset(longest + n, 'a' + (int)p, parts[p]);
        n += parts[p];
    }
    longest[n] = 0;
    assert_int_equal(n, 1024);
    if (cur->builtin) {
        assert_int_equal(storage_put(f->s, longest, "x", 1, NULL), 0);
        assert_content(f->s, longest, "x", 1);
    } else {
        /* S3 caps whole keys at 1024 bytes, prefix included: names up to 1024 minus the
         * prefix work, longer ones are refused with a clear error. */
        longest[900] = 0;
        assert_int_equal(storage_put(f->s, longest, "x", 1, NULL), 0);
        assert_content(f->s, longest, "x", 1);
        longest[900] = 'd';
    }
    longest[n] = 'z';
    longest[n + 1] = 0; /* 1025 */
    assert_int_equal(storage_put(f->s, longest, "x", 1, NULL), COFFER_EINVAL);
    char comp[300];
    memset(comp, 'c', 256);
    comp[256] = 0;
    assert_int_equal(storage_put(f->s, comp, "x", 1, NULL), COFFER_EINVAL);
    /* s3rver keeps each object in a file named after the key plus a suffix, so external
     * servers are held to 200-byte components only. */
    comp[cur->builtin ? 255 : 200] = 0;
    assert_int_equal(storage_put(f->s, comp, "x", 1, NULL), 0);
    assert_int_equal(storage_put(f->s, "Aa0._-/x.y", "x", 1, NULL), 0);
    buf_release(&b);
}

struct racer {
    storage_t *s;
    pthread_barrier_t *bar;
    const char *name;
    uint8_t *data;
    size_t len;
    int rc;
};

static void *race_put(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->bar);
    r->rc = storage_put(r->s, r->name, r->data, r->len, NULL);
    return NULL;
}

static void test_concurrent_put(void **state)
{
    struct fx *f = *state;
    enum { THREADS = 8, ROUNDS = 10, LEN = 64 * 1024 };
    struct racer r[THREADS];
    pthread_t th[THREADS];
    pthread_barrier_t bar;
    char name[64];
    bool atomic = true;

    if (!cur->builtin) {
        json_t *d = json_object();
        assert_int_equal(storage_describe(f->s, d), 0);
        const char *cw = json_string_value(json_object_get(d, "conditional_writes"));
        atomic = !cw || strcmp(cw, "emulated") != 0;
        printf("# conditional writes: %s\n", cw ? cw : "(not reported)");
        json_decref(d);
    }
    for (int round = 0; round < ROUNDS; round++) {
        snprintf(name, sizeof name, "data/ee/race%d", round);
        assert_int_equal(pthread_barrier_init(&bar, NULL, THREADS), 0);
        for (int i = 0; i < THREADS; i++) {
            r[i] = (struct racer){.s = f->s, .bar = &bar, .name = name, .len = LEN};
            r[i].data = malloc(LEN);
            assert_non_null(r[i].data);
            /* Without atomic create-only only same-content races are meaningful (names are
             * content hashes); s3rver even tears concurrent writes of different bodies. */
            fill_pattern(r[i].data, LEN, (uint64_t)(round * THREADS + (atomic ? i : 0) + 100));
            assert_int_equal(pthread_create(&th[i], NULL, race_put, &r[i]), 0);
        }
        int winners = 0, winner = -1;
        for (int i = 0; i < THREADS; i++) {
            pthread_join(th[i], NULL);
            if (r[i].rc == 0) {
                winners++;
                winner = i;
            } else {
                assert_int_equal(r[i].rc, COFFER_EEXIST);
            }
        }
        if (atomic) {
            assert_int_equal(winners, 1);
            assert_content(f->s, name, r[winner].data, LEN);
        } else {
            /* Without conditional writes create-only is HEAD then PUT: racers in the same
             * instant may all "win"; the object holds the (common) content. */
            assert_true(winners >= 1);
            /* s3rver may answer a PUT before its file is complete while a racing PUT of the
             * same key rewrites it: allow it a moment to settle. */
            buf_t got;
            buf_init(&got);
            for (int t = 0; t < 20; t++) {
                buf_reset(&got);
                assert_int_equal(storage_get(f->s, name, 0, 0, &got), 0);
                if (got.len == LEN && !memcmp(got.data, r[0].data, LEN))
                    break;
                usleep(100000);
            }
            buf_release(&got);
            assert_content(f->s, name, r[0].data, LEN);
        }
        for (int i = 0; i < THREADS; i++)
            free(r[i].data);
        pthread_barrier_destroy(&bar);
    }
    if (f->root[0]) {
        char dir[700];
        snprintf(dir, sizeof dir, "%s/data/ee", f->root);
        assert_int_equal(count_dir_entries(dir), ROUNDS); /* losers left no temp files */
    }
}

static void test_missing_location(void **state)
{
    struct fx *f = *state;
    char loc[700];
    storage_t *s = (storage_t *)f; /* sentinel: must stay untouched */
    if (!cur->builtin)
        skip(); /* a missing prefix in an existing bucket is not detectable */
    snprintf(loc, sizeof loc, "%s%smissing", f->loc, sep_for(f->loc));
    assert_int_equal(storage_open(loc, false, &s), COFFER_ENOREPO);
    assert_ptr_equal(s, (storage_t *)f);
    assert_non_null(strstr(err_msg(), "coffer init"));
}

static void test_two_handles(void **state)
{
    struct fx *f = *state;
    storage_t *s2 = NULL;
    int rc = storage_open(f->loc, false, &s2);
    if (rc)
        fail_msg("reopen %s: %s", f->loc, err_msg());
    put_str(f->s, "keys/k", "shared");
    assert_content(s2, "keys/k", "shared", 6);
    assert_int_equal(storage_put(s2, "keys/k", "x", 1, NULL), COFFER_EEXIST);
    assert_int_equal(storage_remove(s2, "keys/k"), 0);
    assert_int_equal(storage_remove(f->s, "keys/k"), COFFER_ENOENT);
    assert_string_equal(storage_location(s2), f->loc);
    assert_non_null(storage_name(s2));
    if (cur->builtin)
        assert_true(storage_features(s2) & STORAGE_F_CREATE_ONLY);
    if (f->root[0])
        assert_true(storage_features(s2) & STORAGE_F_LOCAL);
    storage_close(s2);
    storage_close(NULL);
}

static void test_now(void **state)
{
    struct fx *f = *state;
    int64_t t = 0;
    int64_t before = host_now_ns();
    assert_int_equal(storage_now(f->s, &t), 0);
    int64_t slack = (cur->builtin ? 5 : 300) * 1000000000ll;
    assert_true(t > before - slack);
    assert_true(t < host_now_ns() + slack);
    assert_int_equal(list_count(f->s, ""), 0); /* no probe object left behind */
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void add_external(struct target *t, size_t *n, size_t max)
{
    const char *p = getenv("COFFER_TEST_LOCATIONS");
    while (p && *p && *n < max) {
        p += strspn(p, " \t\n");
        size_t len = strcspn(p, " \t\n");
        if (!len)
            break;
        char loc[400];
        snprintf(loc, sizeof loc, "%.*s", (int)len, p);
        p += len;
        struct target *x = &t[(*n)++];
        x->label = "external";
        snprintf(x->base, sizeof x->base, "%s%sconformance-%ld-%x", loc, sep_for(loc),
                 (long)getpid(), (unsigned)time(NULL));
        printf("# external target: %s\n", x->base);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_create_only, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_overwrite, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ranged_get, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stat, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_list_prefix, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_list_many, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_remove, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_names, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_put, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_location, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_two_handles, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_now, fx_setup, fx_teardown),
    };
    char tmp[512];
    const char *tdir = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/coffer-conformance-XXXXXX", tdir && *tdir ? tdir : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    unsetenv("COFFER_FAULT"); /* the fault target below must be the only wrapper */

    struct target targets[16] = {0};
    size_t n = 0;
    targets[n] = (struct target){.label = "local", .builtin = true};
    snprintf(targets[n].base, sizeof targets[n].base, "%s/local", tmp);
    snprintf(targets[n].root, sizeof targets[n].root, "%s/local", tmp);
    n++;
    targets[n] = (struct target){.label = "mem", .builtin = true};
    snprintf(targets[n].base, sizeof targets[n].base, "mem:conformance-%ld", (long)getpid());
    n++;
    targets[n] = (struct target){.label = "fault-none-over-local", .builtin = true};
    snprintf(targets[n].base, sizeof targets[n].base, "fault::%s/fault", tmp);
    snprintf(targets[n].root, sizeof targets[n].root, "%s/fault", tmp);
    n++;
    add_external(targets, &n, sizeof targets / sizeof targets[0]);

    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        cur = &targets[i];
        char group[64];
        snprintf(group, sizeof group, "storage conformance: %s", cur->label);
        failed += _cmocka_run_group_tests(group, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    }
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? 1 : 0;
}
