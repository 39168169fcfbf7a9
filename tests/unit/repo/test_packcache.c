/*
 * test_packcache.c -- unit tests for src/repo/packcache.c: bytes served from windows equal a
 * direct read, neighbouring reads hit, the LRU evicts, long ranges bypass the cache, and a
 * range running past the end of a pack is a short read as with storage_get.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "repo/packcache.h"

#include <stdlib.h>
#include <string.h>

#define OBJ (5u << 20)
#define WIN (1u << 20)

static void test_windows(void **state)
{
    (void)state;
    storage_t *st;
    assert_int_equal(storage_open("mem:packcache", true, &st), 0);
    uint8_t *data = malloc(OBJ);
    for (size_t i = 0; i < OBJ; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    assert_int_equal(storage_put(st, "data/p1", data, OBJ, NULL), 0);
    uint8_t id[32] = {1};
    packcache_t *c;
    assert_int_equal(packcache_new(WIN, 2, &c), 0);
    buf_t b;
    buf_init(&b);
    uint64_t hits, misses;
    /* neighbouring reads inside one window: one miss, then hits */
    for (uint64_t off = 1000; off < WIN - 5000; off += 100000) {
        b.len = 0;
        assert_int_equal(packcache_get(c, st, "data/p1", id, off, 4000, &b), 0);
        assert_int_equal(b.len, 4000);
        assert_memory_equal(b.data, data + off, 4000);
    }
    packcache_stats(c, &hits, &misses);
    assert_int_equal(misses, 1);
    assert_true(hits >= 9);
    /* a range across a window boundary is served whole */
    b.len = 0;
    assert_int_equal(packcache_get(c, st, "data/p1", id, 2 * WIN - 100, 300, &b), 0);
    assert_memory_equal(b.data, data + 2 * WIN - 100, 300);
    /* two more windows evict the least recently used one */
    b.len = 0;
    assert_int_equal(packcache_get(c, st, "data/p1", id, 3 * WIN + 5, 10, &b), 0);
    b.len = 0;
    assert_int_equal(packcache_get(c, st, "data/p1", id, 10, 10, &b), 0);
    packcache_stats(c, &hits, &misses);
    assert_int_equal(misses, 4);
    /* longer than a window: read directly, not counted */
    b.len = 0;
    assert_int_equal(packcache_get(c, st, "data/p1", id, 100, WIN + 1, &b), 0);
    assert_int_equal(b.len, WIN + 1);
    assert_memory_equal(b.data, data + 100, WIN + 1);
    /* past the end: the bytes that exist */
    b.len = 0;
    assert_int_equal(packcache_get(c, st, "data/p1", id, OBJ - 10, 100, &b), 0);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, data + OBJ - 10, 10);
    /* the same offsets in another pack are not confused with the first */
    memset(data, 0x5a, 4096);
    assert_int_equal(storage_put(st, "data/p2", data, 4096, NULL), 0);
    uint8_t id2[32] = {2};
    b.len = 0;
    assert_int_equal(packcache_get(c, st, "data/p2", id2, 10, 10, &b), 0);
    assert_int_equal(b.data[0], 0x5a);
    buf_release(&b);
    packcache_free(c);
    packcache_free(NULL);
    storage_close(st);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_windows)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
